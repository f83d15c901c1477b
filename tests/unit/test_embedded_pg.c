/* The embedded PostgreSQL cluster: path layout, and a real server started,
 * queried and stopped in throw-away checkouts under /tmp. The cases that
 * start a server need the PostgreSQL server binaries (not a database URL)
 * and skip on a machine without them. */
#include "postgres/embedded.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

/* The cluster a running test started, stopped at exit because a failed
 * ASSERT exits the process: a failing test must not leave a server behind.
 * Forked children never run it (they _exit, and the pid is checked). */
static mt_embedded_t watched;
static int watching;
static pid_t watcher;

static void stop_watched(void) {
  mt_err_t err;
  if (watching && getpid() == watcher && mt_embedded_stop(&watched, &err) < 0)
    fprintf(stderr, "cleanup: could not stop %s: %s\n", watched.root, err.msg);
}

static void watch(const mt_embedded_t *db) {
  static int registered;
  if (!registered) {
    atexit(stop_watched);
    registered = 1;
  }
  watched = *db;
  watcher = getpid();
  watching = 1;
}

static void make_workdir(char *out, size_t size) {
  ASSERT_TRUE(snprintf(out, size, "/tmp/moontask-test-XXXXXX") < (int)size);
  ASSERT_TRUE(mkdtemp(out) != NULL);
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* Removes a tree this test created; the prefix check keeps a wrong path
 * computed by the code under test from deleting anything else. */
static void remove_tree(const char *path, const char *prefix) {
  struct stat st;
  ASSERT_TRUE(strncmp(path, prefix, strlen(prefix)) == 0);
  ASSERT_TRUE(strlen(path) > strlen(prefix));
  if (lstat(path, &st) < 0 && errno == ENOENT)
    return;
  ASSERT_EQ_INT(nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* Removes the checkout and, when it lives elsewhere, its cluster and socket
 * folder: only the paths this test's checkout owns. */
static void cleanup(const mt_embedded_t *db) {
  if (strcmp(db->socket_dir, db->root) != 0)
    remove_tree(db->socket_dir, "/tmp/moontask-");
  if (strncmp(db->root, db->workdir, strlen(db->workdir)) != 0)
    remove_tree(db->root, "/var/tmp/moontask-");
  remove_tree(db->workdir, "/tmp/moontask-test-");
}

static int exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

/* Whether pid is alive and not a zombie: the stopped postmaster is not our
 * child, and where PID 1 does not reap it lingers as a zombie. */
static int process_alive(long pid) {
  char path[64], state = '?';
  FILE *f;
  if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
    return 0;
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  f = fopen(path, "r");
  if (f == NULL)
    return 0;
  if (fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
    state = '?';
  fclose(f);
  return state != 'Z';
}

static uint64_t fnv1a64(const char *s) {
  uint64_t h = UINT64_C(14695981039346656037);
  for (; *s != '\0'; s++) {
    h ^= (unsigned char)*s;
    h *= UINT64_C(1099511628211);
  }
  return h;
}

/* Runs one single-value query on a fresh connection and compares the value. */
static void expect_value(const char *url, const char *sql, const char *want) {
  PGconn *conn = PQconnectdb(url);
  PGresult *res;
  if (PQstatus(conn) != CONNECTION_OK)
    MT__FAIL("connect %s: %s", url, PQerrorMessage(conn));
  res = PQexec(conn, sql);
  if (PQresultStatus(res) != PGRES_TUPLES_OK)
    MT__FAIL("%s: %s", sql, PQerrorMessage(conn));
  ASSERT_EQ_INT(PQntuples(res), 1);
  ASSERT_EQ_STR(PQgetvalue(res, 0, 0), want);
  PQclear(res);
  PQfinish(conn);
}

static int has_server_binaries(const char *dir) {
  static const char *const names[] = {"initdb", "pg_ctl", "postgres"};
  char path[4096 + 16];
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    if (access(path, X_OK) != 0)
      return 0;
  }
  return 1;
}

/* Skips the case unless initdb, pg_ctl and postgres are where
 * mt_embedded_start looks for them (PATH, then /usr/lib/postgresql/N/bin):
 * without them a start failure says nothing about our code. */
static void require_server_binaries(void) {
  char dir[4096];
  const char *path = getenv("PATH");
  while (path != NULL && *path != '\0') {
    const char *end = strchr(path, ':');
    size_t len = end != NULL ? (size_t)(end - path) : strlen(path);
    if (len > 0 && len < sizeof dir && path[0] == '/') {
      memcpy(dir, path, len);
      dir[len] = '\0';
      if (has_server_binaries(dir))
        return;
    }
    path = end != NULL ? end + 1 : NULL;
  }
  DIR *versions = opendir("/usr/lib/postgresql");
  struct dirent *de;
  int found = 0;
  while (!found && versions != NULL && (de = readdir(versions)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    snprintf(dir, sizeof dir, "/usr/lib/postgresql/%s/bin", de->d_name);
    found = has_server_binaries(dir);
  }
  if (versions != NULL)
    closedir(versions);
  if (!found)
    SKIP("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found "
         "on PATH or in /usr/lib/postgresql/*/bin: install PostgreSQL");
}

static void start_or_fail(mt_embedded_t *db) {
  mt_err_t err = {{0}};
  int rc = mt_embedded_start(db, &err);
  if (rc != 0)
    MT__FAIL("mt_embedded_start: %s: %s", mt_strerror(rc), err.msg);
}

static void stop_or_fail(mt_embedded_t *db) {
  mt_err_t err = {{0}};
  int rc = mt_embedded_stop(db, &err);
  if (rc != 0)
    MT__FAIL("mt_embedded_stop: %s: %s", mt_strerror(rc), err.msg);
}

TEST(embedded_locate_paths) {
  char a[64], b[64], deep[512], cwd[4096], want[8192], hash[17];
  mt_embedded_t da, da2, db, dn, dd;
  mt_err_t err;

  make_workdir(a, sizeof a);
  make_workdir(b, sizeof b);
  ASSERT_EQ_INT(mt_embedded_locate(&da, a, &err), 0);
  ASSERT_EQ_INT(mt_embedded_locate(&da2, a, &err), 0);
  ASSERT_EQ_INT(mt_embedded_locate(&db, b, &err), 0);
  ASSERT_TRUE(memcmp(&da, &da2, sizeof da) == 0);
  ASSERT_EQ_STR(da.workdir, a);
  ASSERT_TRUE(strcmp(da.root, db.root) != 0);
  ASSERT_TRUE(strcmp(da.url, db.url) != 0);

  snprintf(hash, sizeof hash, "%016" PRIx64, fnv1a64(a));
  if (geteuid() == 0)
    snprintf(want, sizeof want, "/var/tmp/moontask-%s", hash);
  else
    snprintf(want, sizeof want, "%s/.moontask", a);
  ASSERT_EQ_STR(da.root, want);
  snprintf(want, sizeof want, "%s/data", da.root);
  ASSERT_EQ_STR(da.data_dir, want);
  snprintf(want, sizeof want, "%s/postgres.log", da.root);
  ASSERT_EQ_STR(da.log_file, want);
  ASSERT_EQ_STR(da.socket_dir, da.root);

  /* The socket folder is percent-encoded whole, slashes included. */
  snprintf(want, sizeof want,
           "postgresql:///moontask?host=%s&port=5432&user=moontask",
           da.socket_dir);
  for (char *p = want + strlen("postgresql:///moontask?host="); *p != '&'; p++)
    if (*p == '/') {
      memmove(p + 3, p + 1, strlen(p + 1) + 1);
      memcpy(p, "%2F", 3);
    }
  ASSERT_EQ_STR(da.url, want);

  /* Locating has no side effects. */
  ASSERT_TRUE(!exists(da.root));
  snprintf(want, sizeof want, "%s/.moontask", a);
  ASSERT_TRUE(!exists(want));

  /* NULL means the current directory. */
  ASSERT_TRUE(getcwd(cwd, sizeof cwd) != NULL);
  ASSERT_EQ_INT(chdir(a), 0);
  ASSERT_EQ_INT(mt_embedded_locate(&dn, NULL, &err), 0);
  ASSERT_EQ_INT(chdir(cwd), 0);
  ASSERT_TRUE(memcmp(&da, &dn, sizeof da) == 0);

  /* A checkout too deep for a socket path gets a short socket folder. */
  snprintf(deep, sizeof deep, "%s/%0100d", a, 0);
  ASSERT_EQ_INT(mkdir(deep, 0700), 0);
  ASSERT_EQ_INT(mt_embedded_locate(&dd, deep, &err), 0);
  ASSERT_TRUE(strlen(dd.socket_dir) + 20 <= 100);
  if (geteuid() == 0) {
    ASSERT_EQ_STR(dd.socket_dir, dd.root);
  } else {
    snprintf(want, sizeof want, "/tmp/moontask-%ld-%016" PRIx64,
             (long)geteuid(), fnv1a64(deep));
    ASSERT_EQ_STR(dd.socket_dir, want);
  }

  snprintf(want, sizeof want, "%s/missing", a);
  ASSERT_EQ_INT(mt_embedded_locate(&dn, want, &err), MT_ENOTFOUND);

  ASSERT_EQ_INT(rmdir(deep), 0);
  ASSERT_EQ_INT(rmdir(a), 0);
  ASSERT_EQ_INT(rmdir(b), 0);
}

TEST(embedded_start_status_stop) {
  char dir[64], path[8192], line[4096];
  mt_embedded_t db;
  mt_err_t err;
  int running;
  long pid, pid2;
  FILE *f;

  require_server_binaries();

  make_workdir(dir, sizeof dir);
  ASSERT_EQ_INT(mt_embedded_locate(&db, dir, &err), 0);

  /* Nothing there yet: not running, and stopping is a no-op that creates
   * nothing. */
  ASSERT_EQ_INT(mt_embedded_status(&db, &running, &pid, &err), 0);
  ASSERT_EQ_INT(running, 0);
  ASSERT_EQ_INT(pid, 0);
  stop_or_fail(&db);
  ASSERT_TRUE(!exists(db.root));

  watch(&db);
  start_or_fail(&db);
  ASSERT_EQ_INT(mt_embedded_status(&db, &running, &pid, &err), 0);
  ASSERT_EQ_INT(running, 1);
  ASSERT_TRUE(pid > 0);
  ASSERT_EQ_INT(kill((pid_t)pid, 0), 0);
  expect_value(db.url, "SELECT 1", "1");
  expect_value(db.url, "SELECT current_database() || ' ' || current_user",
               "moontask moontask");
  expect_value(db.url, "SHOW listen_addresses", "");
  expect_value(db.url, "SHOW fsync", "on");
  expect_value(db.url, "SHOW synchronous_commit", "on");
  expect_value(db.url, "SHOW max_connections", "100");
  expect_value(db.url, "SHOW shared_buffers", "128MB");
  expect_value(db.url,
               "SELECT pg_encoding_to_char(encoding) FROM "
               "pg_database WHERE datname = 'moontask'",
               "UTF8");

  /* Starting a running cluster changes nothing. */
  start_or_fail(&db);
  ASSERT_EQ_INT(mt_embedded_status(&db, &running, &pid2, &err), 0);
  ASSERT_EQ_INT(running, 1);
  ASSERT_EQ_INT(pid2, pid);

  if (geteuid() == 0) {
    snprintf(path, sizeof path, "%s/.moontask/cluster", dir);
    f = fopen(path, "r");
    ASSERT_TRUE(f != NULL);
    ASSERT_TRUE(fgets(line, sizeof line, f) != NULL);
    fclose(f);
    line[strcspn(line, "\n")] = '\0';
    ASSERT_EQ_STR(line, db.root);
  }

  stop_or_fail(&db);
  ASSERT_EQ_INT(mt_embedded_status(&db, &running, &pid2, &err), 0);
  ASSERT_EQ_INT(running, 0);
  ASSERT_EQ_INT(pid2, 0);
  /* The postmaster removes its pid file (which pg_ctl waits for) just
   * before it exits: give it a moment to be gone. */
  for (int i = 0; i < 100 && process_alive(pid); i++)
    usleep(50 * 1000);
  ASSERT_TRUE(!process_alive(pid));
  stop_or_fail(&db);

  /* Stopping keeps the cluster and its log. */
  snprintf(path, sizeof path, "%s/PG_VERSION", db.data_dir);
  ASSERT_TRUE(exists(path));
  ASSERT_TRUE(exists(db.log_file));

  start_or_fail(&db);
  ASSERT_EQ_INT(mt_embedded_status(&db, &running, &pid2, &err), 0);
  ASSERT_EQ_INT(running, 1);
  ASSERT_TRUE(pid2 > 0 && pid2 != pid);
  expect_value(db.url, "SELECT 1", "1");
  stop_or_fail(&db);
  watching = 0;
  ASSERT_EQ_INT(mt_embedded_status(&db, &running, &pid2, &err), 0);
  ASSERT_EQ_INT(running, 0);

  cleanup(&db);
}

TEST(embedded_concurrent_start) {
  char dir[64];
  mt_embedded_t db;
  mt_err_t err;
  pid_t kids[2];
  int running, status;
  long pid;

  require_server_binaries();

  make_workdir(dir, sizeof dir);
  ASSERT_EQ_INT(mt_embedded_locate(&db, dir, &err), 0);
  watch(&db);
  fflush(NULL);
  for (int i = 0; i < 2; i++) {
    kids[i] = fork();
    ASSERT_TRUE(kids[i] >= 0);
    if (kids[i] == 0) {
      mt_embedded_t mine;
      mt_err_t cerr = {{0}};
      int rc = mt_embedded_locate(&mine, dir, &cerr);
      if (rc == 0)
        rc = mt_embedded_start(&mine, &cerr);
      if (rc != 0)
        fprintf(stderr, "child %d: %s: %s\n", i, mt_strerror(rc), cerr.msg);
      _exit(rc == 0 ? 0 : 1);
    }
  }
  for (int i = 0; i < 2; i++) {
    ASSERT_EQ_INT(waitpid(kids[i], &status, 0), kids[i]);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ_INT(WEXITSTATUS(status), 0);
  }
  ASSERT_EQ_INT(mt_embedded_status(&db, &running, &pid, &err), 0);
  ASSERT_EQ_INT(running, 1);
  expect_value(db.url, "SELECT 1", "1");
  stop_or_fail(&db);
  watching = 0;
  cleanup(&db);
}
