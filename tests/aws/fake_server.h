/*
 * Starting and stopping the python servers of tests/aws (fake_http.py,
 * moto_sts.py) from a unit test: each listens on 127.0.0.1 on a port it
 * picks and reports, and is stopped by its PID.
 *
 * A server must never outlive its test, however the test ends: the case
 * stops it itself when it passes (fake_server_stop), an atexit handler
 * stops it when an ASSERT fails (they exit(1)) or SKIP runs, the kernel
 * kills it should the test die of a signal (PR_SET_PDEATHSIG), and the
 * server exits by itself once the test's end of its stdin closes.
 *
 * Header-only (static functions) because the unit-test build compiles
 * the .c files of tests/unit alone; test_http.c and test_aws_credentials.c
 * include it.
 */
#ifndef MT_TESTS_AWS_FAKE_SERVER_H
#define MT_TESTS_AWS_FAKE_SERVER_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../unit/test.h"

/* moto takes a few seconds to import. */
#define FAKE_SERVER_START_SECONDS 30
#define FAKE_SERVER_MAX 4

typedef struct fake_server_s {
  pid_t pid;
  int port;
  int stdin_fd; /* our end of its stdin: closing it ends the server */
} fake_server_t;

static pid_t fake_server_pids[FAKE_SERVER_MAX];

static inline void fake_server_kill(pid_t pid) {
  kill(pid, SIGTERM);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
}

static inline void fake_server_stop_all(void) {
  for (int i = 0; i < FAKE_SERVER_MAX; i++)
    if (fake_server_pids[i] > 0) {
      fake_server_kill(fake_server_pids[i]);
      fake_server_pids[i] = 0;
    }
}

/* Finds python3 on PATH, as execvp would; 0 if there is none. */
static inline int fake_server_python(char *out, size_t cap) {
  const char *path = getenv("PATH");
  if (path == NULL)
    path = "/usr/bin:/bin";
  while (*path) {
    const char *colon = strchr(path, ':');
    size_t len = colon ? (size_t)(colon - path) : strlen(path);
    snprintf(out, cap, "%.*s/python3", (int)len, path);
    if (access(out, X_OK) == 0)
      return 1;
    path += len + (colon != NULL);
  }
  return 0;
}

/* Starts `python3 tests/aws/<script> args...` (args NULL-terminated, may be
 * NULL) and waits for its "PORT n" line. Skips the case when python3 is
 * missing or the script exits 3 (a module it needs is not installed). */
static inline void fake_server_start(fake_server_t *s, const char *script,
                                     const char *const *args) {
  static int registered;
  char root[PATH_MAX], file[PATH_MAX + 64], python[PATH_MAX];
  const char *argv[16];
  int in[2], out[2], n = 0;
  if (!mt_test_source_root(root))
    MT__FAIL("cannot find the source tree (set MT_SOURCE_DIR)");
  snprintf(file, sizeof file, "%s/tests/aws/%s", root, script);
  if (!fake_server_python(python, sizeof python))
    SKIP("python3 not found on PATH; it runs the fake servers in tests/aws");
  argv[n++] = python;
  argv[n++] = file;
  for (int i = 0; args != NULL && args[i] != NULL && n < 15; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  if (!registered) {
    atexit(fake_server_stop_all);
    registered = 1;
  }
  /* Close-on-exec, so that a second server does not hold the first one's
   * stdin open (dup2 clears the flag on the copies the child keeps). */
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
    MT__FAIL("pipe: %s", strerror(errno));
  pid_t parent = getpid();
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0)
    MT__FAIL("fork: %s", strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(1);
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[0]);
    close(in[1]);
    close(out[0]);
    close(out[1]);
    execv(python, (char *const *)argv);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  for (int i = 0; i < FAKE_SERVER_MAX; i++)
    if (fake_server_pids[i] == 0) {
      fake_server_pids[i] = pid;
      break;
    }
  s->pid = pid;
  s->stdin_fd = in[1];
  s->port = 0;
  char line[128];
  size_t len = 0;
  while (len < sizeof line - 1) {
    struct pollfd p = {out[0], POLLIN, 0};
    if (poll(&p, 1, FAKE_SERVER_START_SECONDS * 1000) <= 0)
      MT__FAIL("%s did not report its port within %d s", script,
               FAKE_SERVER_START_SECONDS);
    ssize_t got = read(out[0], line + len, 1);
    if (got <= 0)
      break;
    if (line[len] == '\n')
      break;
    len++;
  }
  line[len] = '\0';
  close(out[0]);
  if (sscanf(line, "PORT %d", &s->port) != 1) {
    int status = 0;
    waitpid(pid, &status, 0);
    for (int i = 0; i < FAKE_SERVER_MAX; i++)
      if (fake_server_pids[i] == pid)
        fake_server_pids[i] = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
      SKIP("%s: a python module it needs is missing (see its stderr)", script);
    MT__FAIL("%s did not start (exit status %d)", script, status);
  }
}

static inline void fake_server_stop(fake_server_t *s) {
  if (s->pid <= 0)
    return;
  close(s->stdin_fd);
  fake_server_kill(s->pid);
  for (int i = 0; i < FAKE_SERVER_MAX; i++)
    if (fake_server_pids[i] == s->pid)
      fake_server_pids[i] = 0;
  s->pid = 0;
}

/* A port on 127.0.0.1 that nothing listens on (bound, then released). */

static inline int fake_server_closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &alen) != 0)
    MT__FAIL("cannot find a free port: %s", strerror(errno));
  close(fd);
  return ntohs(a.sin_port);
}

#endif
