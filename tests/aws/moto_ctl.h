/*
 * What the typed AWS clients' tests share (test_aws_sqs.c,
 * test_aws_scheduler.c): a moto_server of the case's own (tests/aws/
 * moto_sts.py, started and stopped by PID through fake_server.h), the
 * queues, group and role tests/aws/moto_ctl.py sets up in it, a client on
 * a loop pointed at it, and moto_ctl() to read AWS's state back through
 * boto3, an SDK that is not ours.
 *
 * Each case starts from an environment with no AWS_* variable but the
 * region and the keys it sets itself, and with instance metadata off, so
 * that nothing of the machine's own AWS set-up leaks in. A case that
 * fails ends the process; fake_server.h's atexit handler, the pipe on the
 * server's stdin and PR_SET_PDEATHSIG stop moto then, and a moto_ctl.py
 * still running dies with the test (PR_SET_PDEATHSIG too).
 *
 * Header-only (static functions), as fake_server.h is, because the unit
 * tests are compiled from tests/unit alone.
 */
#ifndef MT_TESTS_AWS_MOTO_CTL_H
#define MT_TESTS_AWS_MOTO_CTL_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "../unit/test.h"
#include "aws/client.h"
#include "aws/credentials.h"
#include "common/buf.h"
#include "fake_server.h"
#include "json/doc.h"

#define AWS_FIXTURE_WATCHDOG_SECONDS 120
#define AWS_FIXTURE_REGION "eu-west-1"
#define AWS_FIXTURE_KEY_ID "AKIDMOTOFIXTURE"
#define AWS_FIXTURE_SECRET "fixture-secret-key-do-not-print-0123456789"

extern char **environ;

/* Runs `python3 tests/aws/moto_ctl.py <port> cmd args...` (NULL-ended)
 * and returns its JSON answer, which the caller frees with mt_jdoc_free.
 * The case fails if the script does; it is skipped if boto3 is missing. */
static inline mt_jdoc_t *moto_ctl(const fake_server_t *moto, const char *cmd,
                                  ...) {
  char root[PATH_MAX], file[PATH_MAX + 64], python[PATH_MAX], port[16];
  const char *argv[16];
  int out[2], n = 0, status = 0;
  va_list ap;
  if (!mt_test_source_root(root))
    MT__FAIL("cannot find the source tree (set MT_SOURCE_DIR)");
  if (!fake_server_python(python, sizeof python))
    SKIP("python3 not found on PATH; tests/aws/moto_ctl.py needs it");
  snprintf(file, sizeof file, "%s/tests/aws/moto_ctl.py", root);
  snprintf(port, sizeof port, "%d", moto->port);
  argv[n++] = python;
  argv[n++] = file;
  argv[n++] = port;
  argv[n++] = cmd;
  va_start(ap, cmd);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && n < 15)
    argv[n++] = a;
  va_end(ap);
  argv[n] = NULL;
  if (pipe2(out, O_CLOEXEC) != 0)
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
    dup2(out[1], 1);
    execv(python, (char *const *)argv);
    _exit(127);
  }
  close(out[1]);
  mt_buf_t text = MT_BUF_INIT;
  char chunk[4096];
  ssize_t got;
  while ((got = read(out[0], chunk, sizeof chunk)) != 0) {
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      MT__FAIL("reading moto_ctl.py: %s", strerror(errno));
    mt_buf_append(&text, chunk, (size_t)got);
  }
  close(out[0]);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
    SKIP("moto_ctl.py: boto3 is missing (pip install 'moto[server]')");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    MT__FAIL("moto_ctl.py %s failed (status %d); its stderr is above", cmd,
             status);
  mt_jdoc_t *doc = NULL;
  mt_err_t err;
  if (mt_jdoc_parse(text.data ? text.data : "", text.len, &doc, &err) != 0)
    MT__FAIL("moto_ctl.py %s: %s in \"%s\"", cmd, err.msg,
             text.data ? text.data : "");
  mt_buf_free(&text);
  return doc;
}

/* The string member key of obj; the case fails if there is none. */
static inline const char *ctl_str(const mt_jval_t *obj, const char *key) {
  const mt_jval_t *v = mt_jval_get(obj, key);
  if (v == NULL || v->type != MT_JV_STRING)
    MT__FAIL("no string \"%s\" in moto_ctl.py's answer", key);
  return v->u.str;
}

/* The integer member key of obj; the case fails if there is none. */
static inline long ctl_int(const mt_jval_t *obj, const char *key) {
  const mt_jval_t *v = mt_jval_get(obj, key);
  if (v == NULL || v->type != MT_JV_NUMBER || !v->is_int)
    MT__FAIL("no integer \"%s\" in moto_ctl.py's answer", key);
  return (long)v->u.num.i;
}

/* Removes every AWS_* variable, then sets the region, the keys (token may
 * be NULL) and switches instance metadata off. */
static inline void aws_fixture_env(const char *key_id, const char *secret,
                                   const char *token) {
  char *names[256];
  size_t n = 0;
  for (char **e = environ; *e != NULL && n < 256; e++)
    if (strncmp(*e, "AWS_", 4) == 0)
      names[n++] = strndup(*e, strcspn(*e, "="));
  for (size_t i = 0; i < n; i++) {
    unsetenv(names[i]);
    free(names[i]);
  }
  setenv("AWS_REGION", AWS_FIXTURE_REGION, 1);
  setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  setenv("AWS_ACCESS_KEY_ID", key_id, 1);
  setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
  if (token != NULL)
    setenv("AWS_SESSION_TOKEN", token, 1);
}

typedef struct aws_fixture_s {
  fake_server_t moto;
  char endpoint[64];
  uv_loop_t loop;
  mt_aws_creds_provider_t *creds;
  mt_aws_t *aws;
  mt_jdoc_t *setup; /* moto_ctl.py setup's answer; the strings below */
  const char *std_url, *std_arn, *fifo_url, *fifo_arn, *dlq_arn, *group,
      *role_arn;
} aws_fixture_t;

/* Short backoff: a retry in these tests is a fault, not a wait. */
static const mt_http_opts_t aws_fixture_http = {.backoff_base_ms = 10,
                                                .backoff_cap_ms = 100};

/* Opens a provider from the environment and a client on f's loop. */
static inline void aws_fixture_client(aws_fixture_t *f, mt_aws_t **aws,
                                      mt_aws_creds_provider_t **creds) {
  mt_err_t err;
  int rc = mt_aws_creds_open(NULL, creds, &err);
  if (rc != 0)
    MT__FAIL("mt_aws_creds_open: %s", err.msg);
  mt_aws_conf_t conf = {.region = AWS_FIXTURE_REGION,
                        .endpoint = f->endpoint,
                        .queue_url = f->std_url,
                        .schedule_group = f->group,
                        .role_arn = f->role_arn};
  if ((rc = mt_aws_new(&f->loop, &conf, *creds, &aws_fixture_http, aws,
                       &err)) != 0)
    MT__FAIL("mt_aws_new: %s", err.msg);
}

/* moto with the set-up made, and a client with long-term keys. */
static inline void aws_fixture_start(aws_fixture_t *f) {
  memset(f, 0, sizeof *f);
  alarm(AWS_FIXTURE_WATCHDOG_SECONDS);
  aws_fixture_env(AWS_FIXTURE_KEY_ID, AWS_FIXTURE_SECRET, NULL);
  fake_server_start(&f->moto, "moto_sts.py", NULL);
  snprintf(f->endpoint, sizeof f->endpoint, "http://127.0.0.1:%d",
           f->moto.port);
  f->setup = moto_ctl(&f->moto, "setup", NULL);
  const mt_jval_t *s = mt_jdoc_root(f->setup);
  f->std_url = ctl_str(s, "std_url");
  f->std_arn = ctl_str(s, "std_arn");
  f->fifo_url = ctl_str(s, "fifo_url");
  f->fifo_arn = ctl_str(s, "fifo_arn");
  f->dlq_arn = ctl_str(s, "dlq_arn");
  f->group = ctl_str(s, "group");
  f->role_arn = ctl_str(s, "role_arn");
  ASSERT_EQ_INT(uv_loop_init(&f->loop), 0);
  aws_fixture_client(f, &f->aws, &f->creds);
}

/* Runs f's loop until *flag is set; fails if the loop runs dry first. */
static inline void aws_fixture_wait(aws_fixture_t *f, const int *flag) {
  while (!*flag && uv_run(&f->loop, UV_RUN_ONCE) != 0)
    ;
  if (!*flag)
    MT__FAIL("the loop ran dry before the callback came");
}

/* Frees a client and its provider (either may be NULL). */
static inline void aws_fixture_close(mt_aws_t *aws,
                                     mt_aws_creds_provider_t *creds) {
  mt_aws_free(aws);
  mt_aws_creds_close(creds);
}

static inline void aws_fixture_stop(aws_fixture_t *f) {
  aws_fixture_close(f->aws, f->creds);
  f->aws = NULL;
  f->creds = NULL;
  uv_run(&f->loop, UV_RUN_DEFAULT);
  ASSERT_EQ_INT(uv_loop_close(&f->loop), 0);
  mt_jdoc_free(f->setup);
  f->setup = NULL;
  fake_server_stop(&f->moto);
}

#endif
