/* Hot reload for `moontask run` (cli/reload.h): the version of the task
 * files a runtime runs, and how a new one replaces it. */
#include "cli/reload.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "discovery/discovery.h"
#include "json/write.h"
#include "lua/sources.h"
#include "lua/stdlib.h"
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

static mt_task_defaults_t defaults_of(const mt_reload_t *r,
                                      mt_sources_t *sources) {
  mt_task_defaults_t defaults = mt_cli_task_defaults(r->cli);
  defaults.sources = sources;
  return defaults;
}

mt_task_defaults_t mt_reload_defaults(const mt_reload_t *r) {
  return defaults_of(r, r->sources);
}

/* A task file's queue must be one config.lua declares: moontask.schedule
 * would refuse every task of it. */
static int check_queues(const mt_reload_t *r, const mt_registry_t *reg,
                        mt_err_t *err) {
  const mt_config_t *cfg = &r->cli->cfg;
  for (size_t i = 0; i < reg->count; i++) {
    const char *queue = reg->defs[i].queue;
    size_t k = 0;
    while (queue != NULL && k < cfg->nqueues &&
           strcmp(cfg->queues[k].name, queue) != 0)
      k++;
    if (queue != NULL && k == cfg->nqueues)
      return mt_err_set(err, MT_ECONFIG,
                        "%s: queue \"%s\" is not declared in %s's queues",
                        reg->defs[i].file, queue,
                        cfg->config_file ? cfg->config_file : "config.lua");
  }
  return 0;
}

/* Reads a snapshot of r's folders and loads its definitions (checking
 * the whole set: every file loads under the load-time limit, every
 * definition, schema and recurring schedule is valid). */
static int load_version(const mt_reload_t *r, mt_sources_t **sources,
                        mt_registry_t *reg, mt_err_t *err) {
  int rc = mt_sources_read(sources, r->folders, 3, r->lib_dir, err);
  if (rc != 0)
    return rc;
  mt_task_defaults_t defaults = defaults_of(r, *sources);
  rc = mt_lua_registry_load(r->cli->cfg.tasks_dir, &defaults, reg, err);
  return rc != 0 ? rc : check_queues(r, reg, err);
}

int mt_reload_load(mt_reload_t *r, mt_err_t *err) {
  mt_lua_lib_dir(r->cli->cfg.tasks_dir, r->cli->cfg.lib_dir, r->lib_dir,
                 sizeof r->lib_dir);
  r->folders[0] = r->cli->cfg.tasks_dir;
  r->folders[1] = r->cli->cfg.schemas_dir;
  r->folders[2] = r->lib_dir;
  r->folders[3] = NULL;
  return load_version(r, &r->sources, &r->reg, err);
}

void mt_reload_free(mt_reload_t *r) {
  mt_registry_free(&r->reg);
  mt_sources_unref(r->sources);
  r->sources = NULL;
}

const char *mt_reload_version(const mt_reload_t *r) {
  return mt_sources_hash(r->sources);
}

static void sleep_until(double at) {
  double left = at - mt_now();
  if (left <= 0)
    return;
  struct timespec ts = {(time_t)left,
                        (long)((left - (double)(time_t)left) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

void *mt_reload_prepare(void *arg) {
  mt_reload_t *r = arg;
  prepared_t *p = calloc(1, sizeof *p);
  if (p == NULL)
    return NULL;
  /* The whole new set is checked before anything changes. */
  double read_at = mt_now();
  p->rc = load_version(r, &p->sources, &p->reg, &p->err);
  /* Only files at rest make a version: a save of several files (a task
   * and its module, a deploy) may be under way while they are read, and
   * a snapshot taken between two of its renames would be a mix of old and
   * new. So the files are read again MT_RELOAD_SETTLE_MS after the last
   * read, until two reads agree. (A bounded number of times:
   * under endless changes the latest set is taken, and the next change
   * reloads again.) */
  for (int tries = 0; p->rc == 0 && tries < 20; tries++) {
    sleep_until(read_at + MT_RELOAD_SETTLE_MS / 1000.0);
    mt_sources_t *again = NULL;
    read_at = mt_now();
    if (mt_sources_read(&again, r->folders, 3, r->lib_dir, &p->err) != 0 ||
        strcmp(mt_sources_hash(again), mt_sources_hash(p->sources)) == 0) {
      mt_sources_unref(again);
      break;
    }
    mt_registry_free(&p->reg);
    mt_sources_unref(p->sources);
    p->reg = (mt_registry_t){0};
    p->sources = again;
    mt_task_defaults_t defaults = defaults_of(r, again);
    p->rc = mt_lua_registry_load(r->cli->cfg.tasks_dir, &defaults, &p->reg,
                                 &p->err);
  }
  if (p->rc == 0)
    p->unchanged =
        strcmp(mt_sources_hash(p->sources), mt_sources_hash(r->sources)) == 0;
  /* The task files' recurring schedules follow, in one transaction: the
   * new set's, and those of the tasks it no longer has (as definitions
   * with no schedule, which the sync empties). Here, off the loop, since
   * it is I/O; apply can then refuse the set only for want of memory, and
   * says that the schedules already follow it. */
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
    if (p->rc == 0) /* the new set's queues and priorities */
      p->rc = mt_store_sync_definitions(store, &p->reg, &p->err);
    mt_store_free(store);
    free(defs);
  }
  return p;
}

/* Logs what changed: tasks added, changed and removed, with versions. */
static void log_changes(const mt_reload_t *r, const prepared_t *p) {
  mt_log(MT_LOG_INFO, "reloaded the tasks: version %s (was %s)",
         mt_sources_hash(p->sources), mt_sources_hash(r->sources));
  for (size_t i = 0; i < p->reg.count; i++) {
    const mt_task_def_t *def = &p->reg.defs[i];
    const mt_task_def_t *old = mt_registry_find(&r->reg, def->name);
    if (old == NULL)
      mt_log(MT_LOG_INFO, "  added %s (%s)", def->name, def->version);
    else if (strcmp(def->version, old->version) != 0)
      mt_log(MT_LOG_INFO, "  changed %s (%s, was %s)", def->name, def->version,
             old->version);
  }
  for (size_t i = 0; i < r->reg.count; i++)
    if (mt_registry_find(&p->reg, r->reg.defs[i].name) == NULL)
      mt_log(MT_LOG_INFO,
             "  removed %s: its scheduled tasks stay scheduled "
             "until it comes back",
             r->reg.defs[i].name);
}

void mt_reload_apply(void *arg, void *prepared, int apply) {
  mt_reload_t *r = arg;
  prepared_t *p = prepared;
  mt_err_t err;
  if (p == NULL) {
    mt_log(MT_LOG_WARN, "reload: out of memory; the tasks running stay");
    return;
  }
  if (!apply) {
    /* after the run: nothing to do */
  } else if (p->rc != 0) {
    mt_log(MT_LOG_WARN, "reload refused, version %s keeps running: %s",
           mt_sources_hash(r->sources), p->err.msg);
    snprintf(r->refused, sizeof r->refused, "%s", p->err.msg);
    mt_metric_add(MT_METRIC_RELOAD_ERRORS, NULL, NULL, 1);
  } else if (p->unchanged) {
    mt_log(MT_LOG_INFO, "reload: nothing changed (version %s)",
           mt_sources_hash(r->sources));
  } else if (r->backend->ops->retarget(r->backend, &p->reg, &err) != 0) {
    mt_log(MT_LOG_WARN,
           "reload: %s; version %s keeps running, though the recurring "
           "schedules of the task files follow version %s",
           err.msg, mt_sources_hash(r->sources), mt_sources_hash(p->sources));
    snprintf(r->refused, sizeof r->refused, "%s", err.msg);
    mt_metric_add(MT_METRIC_RELOAD_ERRORS, NULL, NULL, 1);
  } else {
    log_changes(r, p);
    r->refused[0] = '\0';
    mt_metric_add(MT_METRIC_RELOADS, NULL, NULL, 1);
    mt_task_defaults_t defaults = defaults_of(r, p->sources);
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

int mt_reload_pid_file(const mt_cli_t *cli, char path[4096], int *fd,
                       mt_err_t *err) {
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
  /* The lock says "this pid is a live runtime": the kernel drops it with
   * the process, however the process ends. */
  int f = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  char pid[32];
  int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (f < 0 || flock(f, LOCK_EX | LOCK_NB) != 0 ||
      write(f, pid, (size_t)len) != len) {
    int e = errno;
    if (f >= 0)
      close(f);
    return mt_err_set(err, MT_ESYS, "cannot write %s: %s", path, strerror(e));
  }
  *fd = f;
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
    /* A file whose lock nobody holds was left by a runtime that died: its
     * pid may be another process's by now, which SIGHUP would end. */
    int f = open(path, O_RDONLY | O_CLOEXEC);
    int live =
        f >= 0 && flock(f, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    if (f >= 0)
      close(f);
    if (!live)
      unlink(path);
    else if (kill((pid_t)pid, SIGHUP) == 0) {
      printf("reload sent to runtime %ld\n", pid);
      sent++;
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

char *mt_reload_describe(void *arg) {
  const mt_reload_t *r = arg;
  mt_buf_t out = MT_BUF_INIT;
  /* No version when none loaded (`moontask status` where the files are
   * broken). */
  const char *version = r->sources ? mt_sources_hash(r->sources) : NULL;
  int e = mt_buf_puts(&out, "{\"version\":") ||
          (version ? mt_json_write_string(&out, version, strlen(version))
                   : mt_buf_puts(&out, "null")) ||
          mt_buf_puts(&out, ",\"tasks\":[");
  for (size_t i = 0; !e && i < r->reg.count; i++) {
    const mt_task_def_t *def = &r->reg.defs[i];
    const char *file = def->file ? def->file : "";
    e = mt_buf_puts(&out, i ? ",{\"name\":" : "{\"name\":") ||
        mt_json_write_string(&out, def->name, strlen(def->name)) ||
        mt_buf_puts(&out, ",\"version\":") ||
        mt_json_write_string(&out, def->version, strlen(def->version)) ||
        mt_buf_puts(&out, ",\"file\":") ||
        mt_json_write_string(&out, file, strlen(file)) ||
        mt_buf_putc(&out, '}');
  }
  e = e || mt_buf_puts(&out, "],\"error\":");
  if (!e && r->refused[0])
    e = mt_json_write_string(&out, r->refused, strlen(r->refused));
  else if (!e)
    e = mt_buf_puts(&out, "null");
  if (e || mt_buf_putc(&out, '}')) {
    mt_buf_free(&out);
    return NULL;
  }
  return out.data;
}
