#include "postgres/embedded.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* The port only names the socket file (.s.PGSQL.5432); it is pinned in the
 * server's configuration and in our own connections so that a PGPORT exported
 * for some other cluster cannot make us look at the wrong socket. */
#define MT__PG_PORT "5432"
#define MT__PG_USER "moontask"
#define MT__PG_DB "moontask"
#define MT__PG_WAIT_MS 60000
#define MT__PG_MAX_GROUPS 256
#define MT__PATH_MAX 4096

/* Names inside the cluster folder. The tools run in that folder and get these
 * relative names, because pg_ctl pastes its paths into a /bin/sh command line
 * inside double quotes, where a checkout named with " $ ` or \ would break. */
#define MT__DATA "data"
#define MT__DATA_INIT "data.init"
#define MT__LOG "postgres.log"

/* Who runs initdb, pg_ctl and so the server: ourselves, or, when we are root,
 * an unprivileged account the children switch to between fork and exec. */
typedef struct pg_user_s {
  int drop;
  uid_t uid;
  gid_t gid;
  char name[256];
  gid_t groups[MT__PG_MAX_GROUPS];
  int ngroups;
} pg_user_t;

/* Where a child failed before exec, reported back over a close-on-exec pipe
 * (the way libuv's uv_spawn does) so the caller gets errno, not a guess. */
enum { CHILD_USER = 1, CHILD_CHDIR, CHILD_LOG, CHILD_EXEC };

typedef struct child_fail_s {
  int stage;
  int error;
} child_fail_t;

static uint64_t fnv1a64(const char *s) {
  uint64_t h = UINT64_C(14695981039346656037);
  for (; *s != '\0'; s++) {
    h ^= (unsigned char)*s;
    h *= UINT64_C(1099511628211);
  }
  return h;
}

static int join(char *out, size_t size, const char *dir, const char *name,
                mt_err_t *err) {
  int n = snprintf(out, size, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= size)
    return mt_err_set(err, MT_EINVAL, "path too long: %s/%s", dir, name);
  return 0;
}

/* Percent-encodes everything but RFC 3986 unreserved characters, so that any
 * directory name survives as a libpq URL query value. */
static int url_encode(char *out, size_t size, const char *in) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = 0;
  for (; *in != '\0'; in++) {
    unsigned char c = (unsigned char)*in;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      if (n + 1 >= size)
        return -1;
      out[n++] = (char)c;
    } else {
      if (n + 3 >= size)
        return -1;
      out[n++] = '%';
      out[n++] = hex[c >> 4];
      out[n++] = hex[c & 15];
    }
  }
  if (n >= size)
    return -1;
  out[n] = '\0';
  return 0;
}

int mt_embedded_locate(mt_embedded_t *db, const char *workdir, mt_err_t *err) {
  char hash[17];
  char host[3 * MT__PATH_MAX];
  int n;

  if (db == NULL)
    return mt_err_set(err, MT_EINVAL, "mt_embedded_locate: db is NULL");
  memset(db, 0, sizeof *db);
  if (workdir == NULL)
    workdir = ".";
  if (realpath(workdir, db->workdir) == NULL) {
    int e = errno;
    return mt_err_set(err, e == ENOENT ? MT_ENOTFOUND : MT_ESYS,
                      "cannot resolve %s: %s", workdir, strerror(e));
  }
  snprintf(hash, sizeof hash, "%016" PRIx64, fnv1a64(db->workdir));

  /* As root the cluster cannot live in the checkout: the server user may not
   * be able to enter it (think /root). A folder keyed by the checkout's path
   * keeps one cluster per checkout all the same. */
  if (geteuid() == 0)
    n = snprintf(db->root, sizeof db->root, "/var/tmp/moontask-%s", hash);
  else
    n = snprintf(db->root, sizeof db->root, "%s/.moontask", db->workdir);
  if (n < 0 || (size_t)n >= sizeof db->root)
    return mt_err_set(err, MT_EINVAL, "path too long: %s", db->workdir);

  if (join(db->data_dir, sizeof db->data_dir, db->root, MT__DATA, err) < 0 ||
      join(db->log_file, sizeof db->log_file, db->root, MT__LOG, err) < 0)
    return MT_EINVAL;

  /* sun_path holds about 107 bytes and the server appends "/.s.PGSQL.5432"
   * (plus ".lock" for its lock file), so a deep checkout gets its socket in a
   * short private folder under /tmp instead. */
  n = snprintf(db->socket_dir, sizeof db->socket_dir, "%s", db->root);
  if (n < 0 || (size_t)n >= sizeof db->socket_dir ||
      strlen(db->socket_dir) + 20 > 100)
    snprintf(db->socket_dir, sizeof db->socket_dir, "/tmp/moontask-%ld-%s",
             (long)geteuid(), hash);

  if (url_encode(host, sizeof host, db->socket_dir) < 0)
    return mt_err_set(err, MT_EINVAL, "path too long: %s", db->socket_dir);
  /* The port is in the URL too, so that a PGPORT set for another server
   * does not send clients to a socket that is not ours. */
  n = snprintf(db->url, sizeof db->url,
               "postgresql:///%s?host=%s&port=" MT__PG_PORT "&user=%s",
               MT__PG_DB, host, MT__PG_USER);
  if (n < 0 || (size_t)n >= sizeof db->url)
    return mt_err_set(err, MT_EINVAL, "path too long: %s", db->socket_dir);
  return 0;
}

static int is_executable(const char *dir, const char *name) {
  char path[MT__PATH_MAX];
  struct stat st;
  int n = snprintf(path, sizeof path, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= sizeof path)
    return 0;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static int has_server_bins(const char *dir) {
  return is_executable(dir, "initdb") && is_executable(dir, "pg_ctl") &&
         is_executable(dir, "postgres");
}

/* Finds one directory holding initdb, pg_ctl and postgres: PATH first, so a
 * user can choose a version, then the newest Debian-style installation
 * (these are not on PATH there). */
static int find_bindir(char *out, size_t size, mt_err_t *err) {
  const char *path = getenv("PATH");
  const char *base = "/usr/lib/postgresql";
  long best_major = -1, best_minor = -1;
  DIR *dir;
  struct dirent *de;

  while (path != NULL && *path != '\0') {
    const char *end = strchr(path, ':');
    size_t len = end != NULL ? (size_t)(end - path) : strlen(path);
    /* Relative entries (including the empty one, meaning ".") are skipped:
     * the children run in another directory and maybe as another user. */
    if (len > 0 && len < size && path[0] == '/') {
      memcpy(out, path, len);
      out[len] = '\0';
      if (has_server_bins(out))
        return 0;
    }
    path = end != NULL ? end + 1 : NULL;
  }

  out[0] = '\0';
  dir = opendir(base);
  while (dir != NULL && (de = readdir(dir)) != NULL) {
    char bin[MT__PATH_MAX];
    char *rest;
    long major, minor = 0;
    int n;
    if (de->d_name[0] < '0' || de->d_name[0] > '9')
      continue;
    major = strtol(de->d_name, &rest, 10);
    if (*rest == '.')
      minor = strtol(rest + 1, NULL, 10);
    if (major < best_major || (major == best_major && minor <= best_minor))
      continue;
    n = snprintf(bin, sizeof bin, "%s/%s/bin", base, de->d_name);
    if (n < 0 || (size_t)n >= sizeof bin || (size_t)n >= size ||
        !has_server_bins(bin))
      continue;
    memcpy(out, bin, (size_t)n + 1);
    best_major = major;
    best_minor = minor;
  }
  if (dir != NULL)
    closedir(dir);
  if (out[0] != '\0')
    return 0;
  return mt_err_set(err, MT_EIO,
                    "PostgreSQL server binaries (initdb, pg_ctl, postgres) "
                    "not found on PATH or in %s/*/bin; install PostgreSQL "
                    "(e.g. `apt-get install postgresql`) or configure a "
                    "database URL",
                    base);
}

/* PostgreSQL refuses to run as root, so root hands the server to "postgres"
 * when the package created it, else to "nobody". The group list is read here
 * because initgroups() is not async-signal-safe and cannot run after fork. */
static int server_user(pg_user_t *u, mt_err_t *err) {
  struct passwd *pw;
  int n = MT__PG_MAX_GROUPS;

  memset(u, 0, sizeof *u);
  if (geteuid() != 0) {
    u->uid = geteuid();
    u->gid = getegid();
    return 0;
  }
  pw = getpwnam("postgres");
  if (pw == NULL)
    pw = getpwnam("nobody");
  if (pw == NULL || pw->pw_uid == 0)
    return mt_err_set(err, MT_ESYS,
                      "running as root and no unprivileged user (postgres "
                      "or nobody) to run the embedded database as");
  u->drop = 1;
  u->uid = pw->pw_uid;
  u->gid = pw->pw_gid;
  snprintf(u->name, sizeof u->name, "%s", pw->pw_name);
  /* With more groups than fit the list is cut short; the server needs none of
   * its supplementary groups, they are kept only to mimic a login. */
  if (getgrouplist(u->name, u->gid, u->groups, &n) < 0)
    n = MT__PG_MAX_GROUPS;
  u->ngroups = n;
  return 0;
}

/* Makes path a private directory owned by uid:gid. An existing one is accepted
 * only if it is a real directory that belongs to that user or to us: the
 * folders live in world-writable /tmp and /var/tmp, where someone else could
 * have planted one first. */
static int ensure_dir(const char *path, uid_t uid, gid_t gid, mt_err_t *err) {
  struct stat st;

  if (mkdir(path, 0700) < 0 && errno != EEXIST)
    return mt_err_set(err, MT_ESYS, "cannot create %s: %s", path,
                      strerror(errno));
  if (lstat(path, &st) < 0)
    return mt_err_set(err, MT_ESYS, "cannot stat %s: %s", path,
                      strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return mt_err_set(err, MT_ESYS, "%s exists and is not a directory", path);
  if (st.st_uid != uid && st.st_uid != geteuid())
    return mt_err_set(err, MT_ESYS, "%s belongs to uid %ld, not to uid %ld",
                      path, (long)st.st_uid, (long)uid);
  if (geteuid() == 0 && (st.st_uid != uid || st.st_gid != gid) &&
      chown(path, uid, gid) < 0)
    return mt_err_set(err, MT_ESYS, "cannot chown %s: %s", path,
                      strerror(errno));
  if ((st.st_mode & 07777) != 0700 && chmod(path, 0700) < 0)
    return mt_err_set(err, MT_ESYS, "cannot chmod %s: %s", path,
                      strerror(errno));
  return 0;
}

/* Writes a whole small file. Files inside the data directory are handed to
 * the server user, who must read them after root wrote them. */
static int write_file(const char *path, const char *text, mode_t mode,
                      const pg_user_t *owner, mt_err_t *err) {
  size_t len = strlen(text), off = 0;
  int fd =
      open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0)
    return mt_err_set(err, MT_ESYS, "cannot write %s: %s", path,
                      strerror(errno));
  if (owner != NULL && owner->drop && fchown(fd, owner->uid, owner->gid) < 0)
    goto fail;
  while (off < len) {
    ssize_t w = write(fd, text + off, len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      goto fail;
    off += (size_t)w;
  }
  if (close(fd) < 0)
    return mt_err_set(err, MT_ESYS, "cannot write %s: %s", path,
                      strerror(errno));
  return 0;

fail:
  mt_err_set(err, MT_ESYS, "cannot write %s: %s", path, strerror(errno));
  close(fd);
  return MT_ESYS;
}

/* Copies the last few lines of the log into out, for error messages: the
 * cause of a failed initdb or start is almost always at the end. */
static void log_tail(const char *path, char *out, size_t size) {
  char buf[640];
  char *start = buf;
  ssize_t got;
  off_t at;
  struct stat st;
  int fd = open(path, O_RDONLY | O_CLOEXEC);

  out[0] = '\0';
  if (fd < 0)
    return;
  if (fstat(fd, &st) < 0) {
    close(fd);
    return;
  }
  at = st.st_size > (off_t)(sizeof buf - 1)
           ? st.st_size - (off_t)(sizeof buf - 1)
           : 0;
  got = pread(fd, buf, sizeof buf - 1, at);
  close(fd);
  if (got <= 0)
    return;
  buf[got] = '\0';
  if (at > 0 && strchr(buf, '\n') != NULL)
    start = strchr(buf, '\n') + 1;
  while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == ' '))
    buf[--got] = '\0';
  snprintf(out, size, "%s", start);
}

/* Closes descriptors lo..hi; async-signal-safe, for the child after fork.
 * close_range(2) does it in one call where the kernel has it. */
static int close_from(int lo, int hi, long maxfd) {
  int fd;
  if (lo > hi)
    return 0;
#ifdef SYS_close_range
  if (syscall(SYS_close_range, (unsigned)lo, (unsigned)hi, 0u) == 0)
    return 0;
#endif
  for (fd = lo; fd <= hi && fd < maxfd; fd++)
    close(fd);
  return 0;
}

/* Runs argv[0] (an absolute path) with cwd as working directory, stdin from
 * /dev/null and stdout/stderr appended to log, as the server user. Only
 * async-signal-safe calls happen between fork and exec, since the caller may
 * have threads; every descriptor but the three standard ones is closed so the
 * long-lived postmaster inherits none of ours (the lock file above all).
 * *status gets the exit status, or 128 + signal. */
static int run_child(const pg_user_t *u, const char *cwd, const char *log,
                     char *const argv[], int *status, mt_err_t *err) {
  char home[MT__PATH_MAX + 8];
  char **envp = NULL;
  size_t nenv = 0, i, j = 0;
  int pipefd[2] = {-1, -1};
  long maxfd = sysconf(_SC_OPEN_MAX);
  sigset_t all, old;
  child_fail_t cf;
  pid_t pid;
  ssize_t got;
  int rc = MT_ESYS, wstatus;

  if (maxfd < 0 || maxfd > 65536)
    maxfd = 65536;
  /* The server user gets its own HOME: root's is not theirs to read, and
   * "nobody"'s does not exist. */
  if (snprintf(home, sizeof home, "HOME=%s", cwd) >= (int)sizeof home) {
    rc = mt_err_set(err, MT_EINVAL, "path too long: %s", cwd);
    goto fail;
  }
  while (environ[nenv] != NULL)
    nenv++;
  envp = calloc(nenv + 2, sizeof *envp);
  if (envp == NULL) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto fail;
  }
  for (i = 0; i < nenv; i++)
    if (!u->drop || strncmp(environ[i], "HOME=", 5) != 0)
      envp[j++] = environ[i];
  if (u->drop)
    envp[j++] = home;
  envp[j] = NULL;

  if (pipe2(pipefd, O_CLOEXEC) < 0) {
    mt_err_set(err, MT_ESYS, "pipe: %s", strerror(errno));
    goto fail;
  }
  /* Signals stay blocked across fork so that no handler of ours runs in the
   * child before it has reset them all to their defaults. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid = fork();
  if (pid == 0) {
    sigset_t none;
    int fd, sig;
    cf.stage = CHILD_USER;
    if (u->drop && (setgroups((size_t)u->ngroups, u->groups) < 0 ||
                    setgid(u->gid) < 0 || setuid(u->uid) < 0))
      goto child_fail;
    cf.stage = CHILD_CHDIR;
    if (chdir(cwd) < 0)
      goto child_fail;
    /* The log is opened after the switch so it belongs to the server user,
     * who appends to it later through pg_ctl -l. */
    cf.stage = CHILD_LOG;
    fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0)
      goto child_fail;
    if (dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
      goto child_fail;
    fd = open("/dev/null", O_RDONLY);
    if (fd < 0 || dup2(fd, 0) < 0)
      goto child_fail;
    if (close_from(3, pipefd[1] - 1, maxfd) < 0 ||
        close_from(pipefd[1] + 1, (int)maxfd - 1, maxfd) < 0)
      goto child_fail;
    for (sig = 1; sig < NSIG; sig++)
      signal(sig, SIG_DFL);
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    cf.stage = CHILD_EXEC;
    execve(argv[0], argv, envp);
  child_fail:
    cf.error = errno;
    while (write(pipefd[1], &cf, sizeof cf) < 0 && errno == EINTR)
      ;
    _exit(127);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (pid < 0) {
    mt_err_set(err, MT_ESYS, "fork: %s", strerror(errno));
    goto fail;
  }
  close(pipefd[1]);
  pipefd[1] = -1;
  do
    got = read(pipefd[0], &cf, sizeof cf);
  while (got < 0 && errno == EINTR);
  while (waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) {
      mt_err_set(err, MT_ESYS, "waitpid: %s", strerror(errno));
      goto fail;
    }
  }
  if (got == (ssize_t)sizeof cf) {
    static const char *what[] = {"", "switch to user", "enter", "open", "run"};
    const char *obj = cf.stage == CHILD_USER    ? u->name
                      : cf.stage == CHILD_CHDIR ? cwd
                      : cf.stage == CHILD_LOG   ? log
                                                : argv[0];
    mt_err_set(err, MT_ESYS, "cannot %s %s: %s",
               what[cf.stage >= 1 && cf.stage <= 4 ? cf.stage : 0], obj,
               strerror(cf.error));
    goto fail;
  }
  *status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  rc = 0;

fail:
  if (pipefd[0] >= 0)
    close(pipefd[0]);
  if (pipefd[1] >= 0)
    close(pipefd[1]);
  free(envp);
  return rc;
}

/* Runs a PostgreSQL tool and turns a non-zero exit into an error that quotes
 * the end of the log, where the tool and the server say what went wrong. */
static int run_tool(const mt_embedded_t *db, const pg_user_t *u,
                    const char *what, char *const argv[], mt_err_t *err) {
  char tail[640];
  int status = -1,
      rc = run_child(u, db->root, db->log_file, argv, &status, err);
  if (rc < 0)
    return rc;
  if (status == 0)
    return 0;
  log_tail(db->log_file, tail, sizeof tail);
  return mt_err_set(err, MT_EIO, "%s failed (exit %d); end of %s:\n%s", what,
                    status, db->log_file, tail);
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* Creates the cluster in data.init and renames it to data only once it is
 * complete, so a run interrupted half-way (Ctrl-C during the first start)
 * leaves nothing that looks like a cluster; the leftover is cleared here the
 * next time, under the lock. */
static int init_cluster(const mt_embedded_t *db, const pg_user_t *u,
                        const char *bindir, mt_err_t *err) {
  char tmp[MT__PATH_MAX], conf[MT__PATH_MAX], initdb[MT__PATH_MAX];
  struct stat st;
  /* The C locale sorts the same on every machine and needs no generated
   * locales. */
  char *argv[] = {initdb,  "-D", MT__DATA_INIT, "-U",         MT__PG_USER, "-A",
                  "trust", "-E", "UTF8",        "--locale=C", NULL};
  int rc;

  if ((rc = join(initdb, sizeof initdb, bindir, "initdb", err)) < 0 ||
      (rc = join(tmp, sizeof tmp, db->root, MT__DATA_INIT, err)) < 0 ||
      (rc = join(conf, sizeof conf, tmp, "postgresql.conf", err)) < 0)
    return rc;
  if (lstat(tmp, &st) == 0 &&
      nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0)
    return mt_err_set(err, MT_ESYS, "cannot remove %s: %s", tmp,
                      strerror(errno));
  if ((rc = run_tool(db, u, "initdb", argv, err)) < 0)
    return rc;

  /* Our settings live in moontask.conf, rewritten before every start (the
   * socket folder follows the checkout); including it last lets it win over
   * whatever initdb chose. */
  {
    FILE *f = fopen(conf, "ae");
    if (f == NULL)
      return mt_err_set(err, MT_ESYS, "cannot open %s: %s", conf,
                        strerror(errno));
    fputs("\n# Added by moontask: settings for the embedded cluster.\n"
          "include 'moontask.conf'\n",
          f);
    if (fclose(f) != 0)
      return mt_err_set(err, MT_ESYS, "cannot write %s: %s", conf,
                        strerror(errno));
  }
  if (rename(tmp, db->data_dir) < 0)
    return mt_err_set(err, MT_ESYS, "cannot rename %s to %s: %s", tmp,
                      db->data_dir, strerror(errno));
  fprintf(stderr, "moontask: initialised embedded database in %s\n", db->root);
  return 0;
}

/* Writes data/moontask.conf. The socket folder is a list setting, so it is
 * double-quoted for the list (with "" for a quote) and then single-quoted for
 * the file (with '' and \\ for a quote and a backslash). */
static int write_server_conf(const mt_embedded_t *db, const pg_user_t *u,
                             mt_err_t *err) {
  char path[MT__PATH_MAX];
  char dir[4 * MT__PATH_MAX + 8];
  char text[sizeof dir + 512];
  const char *s;
  size_t n = 0;
  int rc;

  if ((rc = join(path, sizeof path, db->data_dir, "moontask.conf", err)) < 0)
    return rc;
  dir[n++] = '"';
  for (s = db->socket_dir; *s != '\0'; s++) {
    if (*s == '"')
      dir[n++] = '"';
    if (*s == '\'')
      dir[n++] = '\'';
    if (*s == '\\')
      dir[n++] = '\\';
    dir[n++] = *s;
  }
  dir[n++] = '"';
  dir[n] = '\0';
  n = (size_t)snprintf(
      text, sizeof text,
      "# Written by moontask before every start; edits are lost.\n"
      "listen_addresses = ''\n"
      "port = " MT__PG_PORT "\n"
      "unix_socket_directories = '%s'\n"
      "max_connections = 100\n"
      "shared_buffers = 128MB\n",
      dir);
  if (n >= sizeof text)
    return mt_err_set(err, MT_EINVAL, "path too long: %s", db->socket_dir);
  return write_file(path, text, 0600, u, err);
}

/* Asks the server whether it accepts connections. It names the "postgres"
 * database because "moontask" may not exist yet, and asking for it would put
 * a FATAL line in the server log on every first start. */
static PGPing ping(const mt_embedded_t *db) {
  const char *keys[] = {"host", "port", "dbname", "user", "connect_timeout",
                        NULL};
  const char *vals[] = {db->socket_dir, MT__PG_PORT, "postgres",
                        MT__PG_USER,    "5",         NULL};
  return PQpingParams(keys, vals, 0);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Brings the server to accepting connections. A server still starting (or
 * recovering) answers PQPING_REJECT and is waited for rather than started a
 * second time; pg_ctl runs at most once. */
static int start_server(const mt_embedded_t *db, const pg_user_t *u,
                        const char *bindir, mt_err_t *err) {
  char pg_ctl[MT__PATH_MAX];
  char *argv[] = {pg_ctl, "start", "-D", MT__DATA, "-l", MT__LOG,
                  "-w",   "-t",    "60", "-s",     NULL};
  char tail[640];
  long deadline = now_ms() + MT__PG_WAIT_MS;
  int started = 0, rc;

  if ((rc = join(pg_ctl, sizeof pg_ctl, bindir, "pg_ctl", err)) < 0)
    return rc;
  for (;;) {
    PGPing p = ping(db);
    if (p == PQPING_OK)
      return 0;
    if (p == PQPING_NO_ATTEMPT)
      return mt_err_set(err, MT_EINVAL, "bad connection parameters for %s",
                        db->socket_dir);
    if (p == PQPING_NO_RESPONSE && !started) {
      if ((rc = write_server_conf(db, u, err)) < 0 ||
          (rc = run_tool(db, u, "pg_ctl start", argv, err)) < 0)
        return rc;
      started = 1;
      deadline = now_ms() + MT__PG_WAIT_MS;
      continue;
    }
    if (now_ms() > deadline)
      break;
    sleep_ms(50);
  }
  log_tail(db->log_file, tail, sizeof tail);
  return mt_err_set(err, MT_ETIMEDOUT,
                    "embedded database in %s does not accept connections; "
                    "end of %s:\n%s",
                    db->root, db->log_file, tail);
}

static int ensure_database(const mt_embedded_t *db, mt_err_t *err) {
  const char *keys[] = {"host", "port", "dbname", "user", "connect_timeout",
                        NULL};
  const char *vals[] = {db->socket_dir, MT__PG_PORT, "postgres",
                        MT__PG_USER,    "10",        NULL};
  PGconn *conn = PQconnectdbParams(keys, vals, 0);
  PGresult *res = NULL;
  int rc = MT_EDB;

  if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
    goto fail;
  res =
      PQexec(conn, "SELECT 1 FROM pg_database WHERE datname = '" MT__PG_DB "'");
  if (PQresultStatus(res) != PGRES_TUPLES_OK)
    goto fail;
  if (PQntuples(res) == 0) {
    PQclear(res);
    res = PQexec(conn, "CREATE DATABASE " MT__PG_DB);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
      goto fail;
  }
  rc = 0;

fail:
  if (rc < 0) {
    const char *msg = conn != NULL ? PQerrorMessage(conn) : "out of memory";
    size_t len = strlen(msg);
    while (len > 0 && msg[len - 1] == '\n')
      len--;
    mt_err_set(err, rc, "embedded database: %.*s", (int)len, msg);
  }
  PQclear(res);
  PQfinish(conn);
  return rc;
}

/* Takes the cluster lock: one start or stop at a time per cluster, across
 * processes. The descriptor is close-on-exec so the postmaster, which
 * outlives us, never inherits the lock. */
static int lock_root(const mt_embedded_t *db, int *fd, mt_err_t *err) {
  char path[MT__PATH_MAX];
  int rc;

  if ((rc = join(path, sizeof path, db->root, "lock", err)) < 0)
    return rc;
  *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (*fd < 0)
    return mt_err_set(err, MT_ESYS, "cannot open %s: %s", path,
                      strerror(errno));
  while (flock(*fd, LOCK_EX) < 0) {
    if (errno != EINTR) {
      rc =
          mt_err_set(err, MT_ESYS, "cannot lock %s: %s", path, strerror(errno));
      close(*fd);
      *fd = -1;
      return rc;
    }
  }
  return 0;
}

/* Reads the postmaster's pid from the first line of postmaster.pid; 0 if
 * there is none. */
static long read_pid(const mt_embedded_t *db) {
  char path[MT__PATH_MAX], line[32];
  long pid = 0;
  FILE *f;

  if (join(path, sizeof path, db->data_dir, "postmaster.pid", NULL) < 0)
    return 0;
  f = fopen(path, "re");
  if (f == NULL)
    return 0;
  if (fgets(line, sizeof line, f) != NULL)
    pid = strtol(line, NULL, 10);
  fclose(f);
  return pid > 0 ? pid : 0;
}

/* Whether pid names a live process. A zombie is not: where PID 1 does not
 * reap (some containers and VMs), a stopped postmaster lingers as one. */
static int process_alive(long pid) {
  char path[64], buf[256], *paren;
  ssize_t got;
  int fd;

  if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
    return 0;
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 1;
  got = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (got <= 0)
    return 1;
  buf[got] = '\0';
  paren = strrchr(buf, ')');
  return paren == NULL || paren[1] == '\0' || paren[2] != 'Z';
}

int mt_embedded_start(mt_embedded_t *db, mt_err_t *err) {
  char bindir[MT__PATH_MAX], path[MT__PATH_MAX], text[MT__PATH_MAX + 256];
  pg_user_t u;
  struct stat st;
  int lockfd = -1, rc;

  if (db == NULL || db->root[0] == '\0')
    return mt_err_set(err, MT_EINVAL,
                      "mt_embedded_start: call mt_embedded_locate first");
  if ((rc = find_bindir(bindir, sizeof bindir, err)) < 0 ||
      (rc = server_user(&u, err)) < 0)
    return rc;

  if (u.drop) {
    /* The checkout keeps a pointer to the cluster so that a human looking
     * for the database finds it. The folder may belong to the checkout's
     * owner from an unprivileged run; that is fine, it only holds the note. */
    if ((rc = join(path, sizeof path, db->workdir, ".moontask", err)) < 0)
      return rc;
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
      return mt_err_set(err, MT_ESYS, "cannot create %s: %s", path,
                        strerror(errno));
  }
  if ((rc = ensure_dir(db->root, u.uid, u.gid, err)) < 0 ||
      (rc = lock_root(db, &lockfd, err)) < 0)
    goto fail;
  if (u.drop) {
    int n = snprintf(text, sizeof text,
                     "%s\n# The embedded PostgreSQL cluster of this "
                     "checkout, run as user %s.\n",
                     db->root, u.name);
    if (n < 0 || (size_t)n >= sizeof text) {
      rc = mt_err_set(err, MT_EINVAL, "path too long: %s", db->root);
      goto fail;
    }
    rc = join(path, sizeof path, db->workdir, ".moontask/cluster", err);
    if (rc < 0 || (rc = write_file(path, text, 0644, NULL, err)) < 0)
      goto fail;
  }
  if (strcmp(db->socket_dir, db->root) != 0 &&
      (rc = ensure_dir(db->socket_dir, u.uid, u.gid, err)) < 0)
    goto fail;

  if ((rc = join(path, sizeof path, db->data_dir, "PG_VERSION", err)) < 0)
    goto fail;
  if (stat(path, &st) < 0) {
    if (lstat(db->data_dir, &st) == 0) {
      rc = mt_err_set(err, MT_ESTATE,
                      "%s exists but is not a PostgreSQL data directory",
                      db->data_dir);
      goto fail;
    }
    if ((rc = init_cluster(db, &u, bindir, err)) < 0)
      goto fail;
  }
  if ((rc = start_server(db, &u, bindir, err)) < 0 ||
      (rc = ensure_database(db, err)) < 0)
    goto fail;
  rc = 0;

fail:
  if (lockfd >= 0)
    close(lockfd);
  return rc;
}

int mt_embedded_stop(mt_embedded_t *db, mt_err_t *err) {
  char bindir[MT__PATH_MAX], pg_ctl[MT__PATH_MAX];
  char *argv[] = {pg_ctl, "stop", "-D", MT__DATA, "-m", "fast",
                  "-w",   "-t",   "60", "-s",     NULL};
  pg_user_t u;
  struct stat st;
  long pid;
  int lockfd = -1, rc;

  if (db == NULL || db->root[0] == '\0')
    return mt_err_set(err, MT_EINVAL,
                      "mt_embedded_stop: call mt_embedded_locate first");
  /* No data directory, no server: stopping must not create the cluster
   * folder just to find that out. */
  if (lstat(db->data_dir, &st) < 0 && errno == ENOENT)
    return 0;
  if ((rc = lock_root(db, &lockfd, err)) < 0)
    return rc;
  /* pg_ctl stop fails on a missing or stale postmaster.pid (a crashed
   * server); both mean there is nothing to stop, which is success here. */
  pid = read_pid(db);
  if (pid == 0 || !process_alive(pid)) {
    rc = 0;
    goto fail;
  }
  if ((rc = find_bindir(bindir, sizeof bindir, err)) < 0 ||
      (rc = server_user(&u, err)) < 0 ||
      (rc = join(pg_ctl, sizeof pg_ctl, bindir, "pg_ctl", err)) < 0 ||
      (rc = run_tool(db, &u, "pg_ctl stop", argv, err)) < 0)
    goto fail;
  rc = 0;

fail:
  if (lockfd >= 0)
    close(lockfd);
  return rc;
}

int mt_embedded_status(mt_embedded_t *db, int *running, long *pid,
                       mt_err_t *err) {
  int up;

  if (db == NULL || db->root[0] == '\0' || running == NULL || pid == NULL)
    return mt_err_set(err, MT_EINVAL,
                      "mt_embedded_status: NULL argument or db not located");
  up = ping(db) == PQPING_OK;
  *running = up;
  *pid = up ? read_pid(db) : 0;
  return 0;
}
