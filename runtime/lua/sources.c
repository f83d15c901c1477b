#include "lua/sources.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"

typedef struct source_s {
  char *path;
  char *text;
  size_t len;
  size_t root; /* index into roots */
  char hash[MT_SOURCES_HASH_HEX + 1];
} source_t;

typedef struct root_s {
  char *path;                         /* as mt_sources_read was given it */
  char hash[MT_SOURCES_HASH_HEX + 1]; /* of its files, in path order */
} root_t;

struct mt_sources_s {
  atomic_int refs;
  source_t *files; /* sorted by path */
  size_t n, cap;
  root_t *roots;
  size_t nroots;
  size_t reading; /* the root being read */
  char hash[MT_SOURCES_HASH_HEX + 1];
};

/* The folders on the way from a root to the one being read: a symlink
 * that leads back up is a loop, not more files. */
typedef struct dir_chain_s {
  dev_t dev;
  ino_t ino;
  const struct dir_chain_s *up;
} dir_chain_t;

static void hex_hash(const unsigned char *digest, char out[]) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < MT_SOURCES_HASH_HEX / 2; i++) {
    out[2 * i] = digits[digest[i] >> 4];
    out[2 * i + 1] = digits[digest[i] & 15];
  }
  out[MT_SOURCES_HASH_HEX] = '\0';
}

static int add_file(mt_sources_t *s, const char *path, mt_err_t *err) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return mt_err_set(err, MT_ECONFIG, "cannot read %s", path);
  mt_buf_t text = MT_BUF_INIT;
  char chunk[8192];
  size_t got;
  int rc = 0;
  while (rc == 0 && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
    rc = mt_buf_append(&text, chunk, got);
  int bad = ferror(f);
  fclose(f);
  if (rc == 0 && bad)
    rc = mt_err_set(err, MT_ECONFIG, "cannot read %s", path);
  if (rc == 0 && s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 32;
    source_t *grown = realloc(s->files, cap * sizeof *grown);
    if (grown == NULL)
      rc = MT_ENOMEM;
    else {
      s->files = grown;
      s->cap = cap;
    }
  }
  source_t *src = rc == 0 ? &s->files[s->n] : NULL;
  if (rc == 0 && (src->path = strdup(path)) == NULL)
    rc = MT_ENOMEM;
  if (rc != 0) {
    mt_buf_free(&text);
    return rc == MT_ENOMEM ? mt_err_set(err, rc, "out of memory") : rc;
  }
  src->len = text.len;
  src->root = s->reading;
  src->text = text.data != NULL ? text.data : strdup("");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  EVP_Digest(src->text, src->len, digest, &dlen, EVP_sha256(), NULL);
  hex_hash(digest, src->hash);
  s->n++;
  return 0;
}

/* The walk of mt_sources_walk below root/rel, up the folders read so
 * far. */
static int walk(const char *root, const char *rel, const dir_chain_t *up,
                const mt_sources_walk_t *w, mt_err_t *err) {
  char path[8192];
  struct stat self;
  snprintf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel);
  if (stat(path, &self) != 0)
    return mt_err_set(err, MT_ECONFIG, "cannot open %s %s", w->what, path);
  for (const dir_chain_t *c = up; c != NULL; c = c->up)
    if (c->dev == self.st_dev && c->ino == self.st_ino)
      return mt_err_set(err, MT_ECONFIG,
                        "%s: a symlink loop (it leads back to a folder that "
                        "contains it)",
                        path);
  dir_chain_t here = {self.st_dev, self.st_ino, up};
  int rc = w->visit_dir != NULL ? w->visit_dir(w->arg, path, err) : 0;
  if (rc != 0)
    return rc;
  DIR *d = opendir(path);
  if (d == NULL)
    return mt_err_set(err, MT_ECONFIG, "cannot open %s %s", w->what, path);
  struct dirent *e;
  while (rc == 0 && (e = readdir(d)) != NULL) {
    char child[4096], full[8192];
    struct stat st;
    size_t n = strlen(e->d_name);
    if (e->d_name[0] == '.' ||
        snprintf(child, sizeof child, "%s%s%s", rel, *rel ? "/" : "",
                 e->d_name) >= (int)sizeof child ||
        snprintf(full, sizeof full, "%s/%s", root, child) >= (int)sizeof full ||
        stat(full, &st) != 0)
      continue;
    if (S_ISDIR(st.st_mode)) {
      if (w->skip == NULL || st.st_dev != w->skip->st_dev ||
          st.st_ino != w->skip->st_ino)
        rc = walk(root, child, &here, w, err);
    } else if (w->visit != NULL && S_ISREG(st.st_mode) && n > 4 &&
               strcmp(e->d_name + n - 4, ".lua") == 0) {
      rc = w->visit(w->arg, full, child, err);
    }
  }
  closedir(d);
  return rc;
}

int mt_sources_walk(const char *root, const mt_sources_walk_t *w,
                    mt_err_t *err) {
  return walk(root, "", NULL, w, err);
}

static int visit_file(void *arg, const char *path, const char *rel,
                      mt_err_t *err) {
  (void)rel;
  return add_file(arg, path, err);
}

static int by_path(const void *a, const void *b) {
  return strcmp(((const source_t *)a)->path, ((const source_t *)b)->path);
}

/* A SHA-256 context ready for updates, or NULL without memory. */
static EVP_MD_CTX *sha256_begin(void) {
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(md);
    md = NULL;
  }
  return md;
}

/* The hash of the files of root r (all of them when r is n, past the
 * last root), by path and content, in path order. */
static int digest_files(const mt_sources_t *s, size_t r,
                        char out[MT_SOURCES_HASH_HEX + 1]) {
  EVP_MD_CTX *md = sha256_begin();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  if (md == NULL)
    return MT_ENOMEM;
  for (size_t i = 0; i < s->n; i++) {
    if (r < s->nroots && s->files[i].root != r)
      continue;
    EVP_DigestUpdate(md, s->files[i].path, strlen(s->files[i].path) + 1);
    EVP_DigestUpdate(md, s->files[i].hash, MT_SOURCES_HASH_HEX);
  }
  EVP_DigestFinal_ex(md, digest, &dlen);
  EVP_MD_CTX_free(md);
  hex_hash(digest, out);
  return 0;
}

int mt_sources_read(mt_sources_t **out, const char *const *roots, size_t n,
                    const char *skip, mt_err_t *err) {
  mt_sources_t *s = calloc(1, sizeof *s);
  if (s == NULL || (s->roots = calloc(n ? n : 1, sizeof *s->roots)) == NULL) {
    free(s);
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  }
  atomic_init(&s->refs, 1);
  s->nroots = n;
  struct stat skip_st;
  int has_skip = skip != NULL && stat(skip, &skip_st) == 0;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    struct stat st;
    if (roots[i] == NULL)
      continue;
    if ((s->roots[i].path = strdup(roots[i])) == NULL) {
      rc = mt_err_set(err, MT_ENOMEM, "out of memory");
      break;
    }
    /* The skipped folder is left out of the others, not out of itself. */
    int own = has_skip && stat(roots[i], &st) == 0 &&
              st.st_dev == skip_st.st_dev && st.st_ino == skip_st.st_ino;
    mt_sources_walk_t w = {.what = "folder",
                           .skip = has_skip && !own ? &skip_st : NULL,
                           .visit = visit_file,
                           .arg = s};
    s->reading = i;
    if (stat(roots[i], &st) == 0 && S_ISDIR(st.st_mode))
      rc = mt_sources_walk(roots[i], &w, err);
  }
  if (rc == 0 && s->n > 0)
    qsort(s->files, s->n, sizeof *s->files, by_path);
  /* Each root's hash, and the snapshot's: every path and content. */
  for (size_t i = 0; rc == 0 && i <= n; i++)
    if (digest_files(s, i, i < n ? s->roots[i].hash : s->hash) != 0)
      rc = mt_err_set(err, MT_ENOMEM, "out of memory");
  if (rc != 0) {
    mt_sources_unref(s);
    return rc;
  }
  *out = s;
  return 0;
}

mt_sources_t *mt_sources_ref(mt_sources_t *s) {
  atomic_fetch_add(&s->refs, 1);
  return s;
}

void mt_sources_unref(mt_sources_t *s) {
  if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
    return;
  for (size_t i = 0; i < s->n; i++) {
    free(s->files[i].path);
    free(s->files[i].text);
  }
  for (size_t i = 0; i < s->nroots; i++)
    free(s->roots[i].path);
  free(s->roots);
  free(s->files);
  free(s);
}

static const source_t *find(const mt_sources_t *s, const char *path) {
  source_t key = {.path = (char *)path};
  return s->n ? bsearch(&key, s->files, s->n, sizeof *s->files, by_path) : NULL;
}

const char *mt_sources_get(const mt_sources_t *s, const char *path,
                           size_t *len) {
  const source_t *src = find(s, path);
  if (src == NULL)
    return NULL;
  *len = src->len;
  return src->text;
}

size_t mt_sources_count(const mt_sources_t *s) { return s->n; }

const char *mt_sources_path(const mt_sources_t *s, size_t i) {
  return s->files[i].path;
}

const char *mt_sources_root(const mt_sources_t *s, size_t i) {
  return s->roots[s->files[i].root].path;
}

const char *mt_sources_file_hash(const mt_sources_t *s, const char *path) {
  const source_t *src = find(s, path);
  return src != NULL ? src->hash : "";
}

const char *mt_sources_hash(const mt_sources_t *s) { return s->hash; }

int mt_sources_hash_parts(const mt_sources_t *s, const char *const *paths,
                          size_t n, const char *folder,
                          char out[MT_SOURCES_HASH_HEX + 1]) {
  EVP_MD_CTX *md = sha256_begin();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  if (md == NULL)
    return MT_ENOMEM;
  /* Each part as its path and its content's hash: a file that moves is a
   * change too. A named file the snapshot lacks counts by its path. */
  for (size_t i = 0; i < n; i++) {
    const char *hash = mt_sources_file_hash(s, paths[i]);
    EVP_DigestUpdate(md, paths[i], strlen(paths[i]) + 1);
    EVP_DigestUpdate(md, hash, strlen(hash));
  }
  for (size_t r = 0; folder != NULL && r < s->nroots; r++)
    if (s->roots[r].path != NULL && strcmp(s->roots[r].path, folder) == 0)
      EVP_DigestUpdate(md, s->roots[r].hash, MT_SOURCES_HASH_HEX);
  EVP_DigestFinal_ex(md, digest, &dlen);
  EVP_MD_CTX_free(md);
  hex_hash(digest, out);
  return 0;
}
