/*
 * A snapshot of the operator's script files: every `*.lua` file under the
 * tasks, schemas and library folders, read into memory at one moment, with
 * a content hash each. A hot reload validates one snapshot and hands the
 * same snapshot to every worker, so that each loads exactly the version
 * that was checked, whatever the files on disk do meanwhile (an editor
 * halfway through a save, a deploy copying files one by one): no worker
 * runs a mix, and a task saved together with its schema applies together.
 *
 * A snapshot is immutable once read and counted by reference: any thread
 * may read it and take or drop a reference. Paths are kept as the loader
 * would open them ("<root>/<relative path>"), so that messages name the
 * same file:line as a load from disk.
 */
#ifndef MT_LUA_SOURCES_H
#define MT_LUA_SOURCES_H

#include <stddef.h>

#include "common/error.h"

typedef struct mt_sources_s mt_sources_t;

/* The hex digits of a content hash (the first 64 bits of SHA-256). */
#define MT_SOURCES_HASH_HEX 16

/* Reads every *.lua file under each of the n roots (NULL or missing roots
 * are skipped: a schemas folder is optional), recursively, as
 * mt_sources_walk walks. The folder `skip` (the lib folder; may be NULL)
 * is read only as a root of its own: the other roots leave it out by
 * identity, however it is spelled, as the task loader does. Each file
 * remembers its root (mt_sources_root). Returns 0, MT_ECONFIG naming a
 * file that could not be read, or MT_ENOMEM. */
int mt_sources_read(mt_sources_t **out, const char *const *roots, size_t n,
                    const char *skip, mt_err_t *err);

/* The walk both the snapshot and the task loader make of a folder: every
 * `*.lua` regular file below it, dot files and folders skipped. Symlinks
 * are followed (a shared folder linked in is fine), but one that leads to
 * a folder already on the path is refused, and the folder skip names (the
 * lib folder, whose files are modules) is left out by identity, however it
 * is reached. visit gets each file's path (root/rel) and its path relative
 * to root, visit_dir each folder's path (root/rel, the root first); either
 * may be NULL, and a non-zero return stops the walk. A root that cannot be
 * opened is MT_ECONFIG, "cannot open <what> <path>". */
struct stat;
typedef struct mt_sources_walk_s {
  const char *what;        /* "tasks folder", for messages */
  const struct stat *skip; /* a folder to leave out, or NULL */
  int (*visit)(void *arg, const char *path, const char *rel, mt_err_t *err);
  int (*visit_dir)(void *arg, const char *path, mt_err_t *err);
  void *arg;
} mt_sources_walk_t;

int mt_sources_walk(const char *root, const mt_sources_walk_t *w,
                    mt_err_t *err);

/* Another reference; returns s. */
mt_sources_t *mt_sources_ref(mt_sources_t *s);

/* Drops a reference, freeing the snapshot with the last; accepts NULL. */
void mt_sources_unref(mt_sources_t *s);

/* The content of the file at path (as read, not NUL-terminated inside:
 * use *len), or NULL if the snapshot has no such file. */
const char *mt_sources_get(const mt_sources_t *s, const char *path,
                           size_t *len);

/* The files, in path order: how many, the i-th path, and the root it was
 * read under (as mt_sources_read was given it). */
size_t mt_sources_count(const mt_sources_t *s);
const char *mt_sources_path(const mt_sources_t *s, size_t i);
const char *mt_sources_root(const mt_sources_t *s, size_t i);

/* The content hash of one file ("" when there is no such file), and of
 * the whole snapshot (every path and content). */
const char *mt_sources_file_hash(const mt_sources_t *s, const char *path);
const char *mt_sources_hash(const mt_sources_t *s);

/* One hash of some of a snapshot's files: those at paths (a path the
 * snapshot lacks counts as absent), each by path and content, and every
 * file read under the root `folder` (NULL: none), by that root's hash,
 * made once when the snapshot was read. A task's version is its parts'
 * (lua/tasks.c). Returns 0 or MT_ENOMEM. */
int mt_sources_hash_parts(const mt_sources_t *s, const char *const *paths,
                          size_t n, const char *folder,
                          char out[MT_SOURCES_HASH_HEX + 1]);

#endif
