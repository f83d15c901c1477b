/* Hot reload for `moontask run` (cli/reload.h): the version of the task
 * files a runtime runs, and how a new one replaces it. */
#include "cli/reload.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lua/sources.h"
#include "lua/tasks.h"
#include "postgres/store.h"

/* What prepare made, for apply. */
typedef struct prepared_s {
  mt_sources_t *sources;
  mt_registry_t reg;
  int rc;
  mt_err_t err;
  int unchanged;
} prepared_t;

/* The folders whose files make a version: tasks (the lib folder is inside
 * unless configured elsewhere) and schemas. */
static void roots(const mt_cli_t *cli, const char *out[3]) {
  out[0] = cli->cfg.tasks_dir;
  out[1] = cli->cfg.schemas_dir;
  out[2] = cli->cfg.lib_dir;
}

int mt_reload_load(mt_reload_t *r, mt_err_t *err) {
  const char *dirs[3];
  roots(r->cli, dirs);
  int rc = mt_sources_read(&r->sources, dirs, 3, err);
  if (rc != 0)
    return rc;
  mt_task_defaults_t defaults = mt_cli_task_defaults(r->cli);
  defaults.sources = r->sources;
  return mt_lua_registry_load(r->cli->cfg.tasks_dir, &defaults, &r->reg, err);
}

void mt_reload_free(mt_reload_t *r) {
  mt_registry_free(&r->reg);
  mt_sources_unref(r->sources);
  r->sources = NULL;
}

const char *mt_reload_version(const mt_reload_t *r) {
  return mt_sources_hash(r->sources);
}

void *mt_reload_prepare(void *arg) {
  mt_reload_t *r = arg;
  prepared_t *p = calloc(1, sizeof *p);
  if (p == NULL)
    return NULL;
  const char *dirs[3];
  roots(r->cli, dirs);
  p->rc = mt_sources_read(&p->sources, dirs, 3, &p->err);
  /* The whole new set is checked before anything changes: every file
   * loads (under the load-time limit), every definition, schema and
   * recurring schedule is valid. */
  if (p->rc == 0) {
    mt_task_defaults_t defaults = mt_cli_task_defaults(r->cli);
    defaults.sources = p->sources;
    p->rc = mt_lua_registry_load(r->cli->cfg.tasks_dir, &defaults, &p->reg,
                                 &p->err);
  }
  if (p->rc == 0)
    p->unchanged =
        strcmp(mt_sources_hash(p->sources), mt_sources_hash(r->sources)) == 0;
  /* The task files' recurring schedules follow, in one transaction: the
   * new set's, and those of the tasks it no longer has (as definitions
   * with no schedule, which the sync empties). */
  if (p->rc == 0 && !p->unchanged) {
    size_t n = p->reg.count + r->reg.count;
    mt_task_def_t *defs = calloc(n ? n : 1, sizeof *defs);
    mt_registry_t both = {.defs = defs, .count = p->reg.count};
    for (size_t i = 0; defs != NULL && i < p->reg.count; i++)
      defs[i] = p->reg.defs[i]; /* read only: the copies own nothing */
    for (size_t i = 0; defs != NULL && i < r->reg.count; i++)
      if (mt_registry_find(&p->reg, r->reg.defs[i].name) == NULL)
        defs[both.count++].name = r->reg.defs[i].name;
    mt_store_t *store = NULL;
    if (defs == NULL)
      p->rc = mt_err_set(&p->err, MT_ENOMEM, "out of memory");
    else
      p->rc = mt_store_open(&store, r->url, "moontask reload", &p->err);
    if (p->rc == 0)
      p->rc = mt_store_sync_file_schedules(store, &both, &p->err);
    mt_store_free(store);
    free(defs);
  }
  return p;
}

/* Logs what changed: tasks added, changed and removed, with versions. */
static void log_changes(const mt_reload_t *r, const prepared_t *p) {
  fprintf(stderr, "moontask: reloaded the tasks: version %s (was %s)\n",
          mt_sources_hash(p->sources), mt_sources_hash(r->sources));
  for (size_t i = 0; i < p->reg.count; i++) {
    const mt_task_def_t *def = &p->reg.defs[i];
    const mt_task_def_t *old = mt_registry_find(&r->reg, def->name);
    if (old == NULL)
      fprintf(stderr, "moontask:   added %s (%s)\n", def->name, def->version);
    else if (strcmp(def->version, old->version) != 0)
      fprintf(stderr, "moontask:   changed %s (%s, was %s)\n", def->name,
              def->version, old->version);
  }
  for (size_t i = 0; i < r->reg.count; i++)
    if (mt_registry_find(&p->reg, r->reg.defs[i].name) == NULL)
      fprintf(stderr,
              "moontask:   removed %s: its scheduled tasks stay scheduled "
              "until it comes back\n",
              r->reg.defs[i].name);
}

void mt_reload_apply(void *arg, void *prepared, int apply) {
  mt_reload_t *r = arg;
  prepared_t *p = prepared;
  mt_err_t err;
  if (p == NULL) {
    fprintf(stderr, "moontask: reload: out of memory; the tasks running "
                    "stay\n");
    return;
  }
  if (!apply) {
    /* after the run: nothing to do */
  } else if (p->rc != 0) {
    fprintf(stderr, "moontask: reload refused, version %s keeps running: %s\n",
            mt_sources_hash(r->sources), p->err.msg);
  } else if (p->unchanged) {
    fprintf(stderr, "moontask: reload: nothing changed (version %s)\n",
            mt_sources_hash(r->sources));
  } else if (r->backend->ops->retarget(r->backend, &p->reg, &err) != 0) {
    fprintf(stderr, "moontask: reload: %s; version %s keeps running\n", err.msg,
            mt_sources_hash(r->sources));
  } else {
    log_changes(r, p);
    mt_task_defaults_t defaults = mt_cli_task_defaults(r->cli);
    defaults.sources = p->sources;
    mt_executor_reload(r->executor, &defaults);
    /* The new version is the running one now. */
    mt_registry_t old_reg = r->reg;
    mt_sources_t *old_sources = r->sources;
    r->reg = p->reg;
    r->sources = p->sources;
    p->reg = old_reg;
    p->sources = old_sources;
  }
  mt_registry_free(&p->reg);
  mt_sources_unref(p->sources);
  free(p);
}

/* ---- finding running runtimes: pid files -------------------------------- */

/* Where the pid files of the runtimes started from one configuration
 * live: ${XDG_RUNTIME_DIR:-/tmp}/moontask-<uid>/<a hash of config.lua's
 * real path, or of the working folder without one>. Outside the project,
 * so that a checkout stays clean, and one folder per configuration, so
 * that `moontask reload` reaches exactly the runtimes of this one. */
static void run_dir(const mt_cli_t *cli, char out[4096]) {
  char real[4096];
  const char *base = getenv("XDG_RUNTIME_DIR");
  const char *what = cli->cfg.config_file != NULL ? cli->cfg.config_file : ".";
  if (realpath(what, real) == NULL)
    snprintf(real, sizeof real, "%s", what);
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (const char *p = real; *p; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ULL;
  snprintf(out, 4096, "%.3000s/moontask-%ld/%016llx",
           base != NULL && *base == '/' ? base : "/tmp", (long)getuid(),
           (unsigned long long)h);
}

int mt_reload_pid_file(const mt_cli_t *cli, char path[4096], mt_err_t *err) {
  char dir[4096];
  run_dir(cli, dir);
  /* The parent is private to the user: no one else may plant a pid. */
  char parent[4096];
  snprintf(parent, sizeof parent, "%s", dir);
  char *cut = strrchr(parent, '/');
  if (cut != NULL)
    *cut = '\0';
  struct stat st;
  if ((mkdir(parent, 0700) != 0 && errno != EEXIST) ||
      (mkdir(dir, 0700) != 0 && errno != EEXIST))
    return mt_err_set(err, MT_ESYS, "cannot make %s: %s", dir, strerror(errno));
  if (lstat(parent, &st) != 0 || !S_ISDIR(st.st_mode) ||
      st.st_uid != getuid() || (st.st_mode & 077) != 0)
    return mt_err_set(err, MT_ESYS,
                      "%s is not a folder of this user's alone: refusing to "
                      "keep a pid file there",
                      parent);
  if (snprintf(path, 4096, "%.4000s/%ld", dir, (long)getpid()) >= 4096)
    return mt_err_set(err, MT_ESYS, "the folder %s has too long a name", dir);
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return mt_err_set(err, MT_ESYS, "cannot write %s: %s", path,
                      strerror(errno));
  fprintf(f, "%ld\n", (long)getpid());
  fclose(f);
  return 0;
}

int mt_cmd_reload(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  if (cli->argc != 1)
    return mt_cli_fail(mt_err_set(&err, MT_EINVAL, "usage: moontask reload"),
                       &err);
  char dir[4096];
  run_dir(cli, dir);
  DIR *d = opendir(dir);
  int sent = 0;
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0)
      continue;
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (kill((pid_t)pid, SIGHUP) == 0) {
      printf("reload sent to runtime %ld\n", pid);
      sent++;
    } else if (errno == ESRCH) {
      unlink(path); /* a runtime that died without removing its file */
    }
  }
  if (d != NULL)
    closedir(d);
  if (sent == 0)
    return mt_cli_fail(mt_err_set(&err, MT_ENOTFOUND,
                                  "no running runtime found (no live pid file "
                                  "in %s)",
                                  dir),
                       &err);
  return 0;
}
