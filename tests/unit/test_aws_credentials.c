/*
 * The AWS credential chain (runtime/aws/credentials.h): each source, their
 * order, refreshes ahead of expiry, and error messages that name what is
 * wrong without quoting a secret.
 *
 * Every case starts from an environment with no AWS_* variable, HOME in a
 * fresh temporary folder (removed at exit) and instance metadata disabled,
 * so that nothing of the machine's own AWS set-up leaks in. The network
 * sources run against tests/aws/fake_http.py (container credentials,
 * IMDSv2, an STS that refuses a token) and moto (STS
 * AssumeRoleWithWebIdentity), both on 127.0.0.1 and stopped by PID.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "../aws/fake_server.h"
#include "aws/credentials.h"
#include "aws/http.h"
#include "test.h"

#define WATCHDOG_SECONDS 60

extern char **environ;

/* Every secret a case hands the chain or the fakes hand out: no message
 * and no source description may contain any of them. */
static const char *const secrets[] = {
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYENVSECRET",
    "PROFILESECRETx9Q2",
    "CONFIGSECRETk3L8",
    "SESSIONTOKENenv77",
    "ecs-secret-",
    "ecs-session-token-",
    "imds-secret-",
    "imds-session-token-",
    "sts-secret-",
    "sts-session-token-",
    "right-container-token",
    "wrong-container-token",
    "bad-token",
    "eyJhbGciOiJSUzI1NiJ9.fake-web-identity",
};

static void assert_clean(const char *text) {
  for (size_t i = 0; i < sizeof secrets / sizeof *secrets; i++)
    if (strstr(text, secrets[i]) != NULL)
      MT__FAIL("a secret (%s) in \"%s\"", secrets[i], text);
}

static char tmp[64];

/* Removes the temporary folder: at the end of each case, and at exit for a
 * case that failed (the runner's children end with _exit, which skips
 * atexit handlers, so a passing case must do it itself). */
static void remove_tmp(void) {
  char path[PATH_MAX + 512];
  if (tmp[0] == '\0')
    return;
  const char *subs[] = {".aws", ""};
  for (int i = 0; i < 2; i++) {
    char dir[128];
    snprintf(dir, sizeof dir, "%s/%s", tmp, subs[i]);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
    }
    if (d != NULL)
      closedir(d);
    rmdir(dir);
  }
  tmp[0] = '\0';
}

/* A clean slate: no AWS_* variables, HOME in a new temporary folder, no
 * instance metadata. */
static void setup(void) {
  char *names[256];
  size_t n = 0;
  alarm(WATCHDOG_SECONDS);
  for (char **e = environ; *e != NULL && n < 256; e++)
    if (strncmp(*e, "AWS_", 4) == 0)
      names[n++] = strndup(*e, strcspn(*e, "="));
  for (size_t i = 0; i < n; i++) {
    unsetenv(names[i]);
    free(names[i]);
  }
  snprintf(tmp, sizeof tmp, "/tmp/mt-creds-XXXXXX");
  ASSERT_TRUE(mkdtemp(tmp) != NULL);
  atexit(remove_tmp);
  setenv("HOME", tmp, 1);
  setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

/* Writes text to a file under the temporary folder; returns its path. */
static const char *write_file(const char *name, const char *text) {
  static char paths[8][PATH_MAX];
  static int next;
  char *path = paths[next++ % 8];
  snprintf(path, PATH_MAX, "%s/%s", tmp, name);
  if (strncmp(name, ".aws/", 5) == 0) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/.aws", tmp);
    mkdir(dir, 0700);
  }
  FILE *f = fopen(path, "w");
  ASSERT_TRUE(f != NULL);
  fputs(text, f);
  fclose(f);
  return path;
}

/* Opens a provider that must succeed, and checks what it reports. */
static mt_aws_creds_provider_t *open_ok(const mt_aws_creds_opts_t *opts) {
  mt_aws_creds_provider_t *p = NULL;
  mt_err_t err;
  int rc = mt_aws_creds_open(opts, &p, &err);
  if (rc != 0)
    MT__FAIL("mt_aws_creds_open: %s: %s", mt_strerror(rc), err.msg);
  assert_clean(mt_aws_creds_source(p));
  return p;
}

/* Opens a provider that must fail with code; returns the message. */
static const char *open_fails(const mt_aws_creds_opts_t *opts, int code) {
  static mt_err_t err;
  mt_aws_creds_provider_t *p = NULL;
  int rc = mt_aws_creds_open(opts, &p, &err);
  if (rc == 0)
    MT__FAIL("mt_aws_creds_open succeeded with %s", mt_aws_creds_source(p));
  if (rc != code)
    MT__FAIL("mt_aws_creds_open: %s, not %s: %s", mt_strerror(rc),
             mt_strerror(code), err.msg);
  ASSERT_TRUE(p == NULL);
  assert_clean(err.msg);
  return err.msg;
}

static void get_ok(mt_aws_creds_provider_t *p, mt_aws_creds_copy_t *c) {
  mt_err_t err;
  int rc = mt_aws_creds_get(p, c, &err);
  if (rc != 0)
    MT__FAIL("mt_aws_creds_get: %s", err.msg);
}

static double epoch_now(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

#define ASSERT_CONTAINS(hay, needle)                     \
  do {                                                   \
    if (strstr((hay), (needle)) == NULL)                 \
      MT__FAIL("\"%s\" not in \"%s\"", (needle), (hay)); \
  } while (0)

TEST(creds_environment) {
  mt_aws_creds_copy_t c;
  setup();
  setenv("AWS_ACCESS_KEY_ID", "AKIAENVEXAMPLE", 1);
  setenv("AWS_SECRET_ACCESS_KEY", secrets[0], 1);
  mt_aws_creds_provider_t *p = open_ok(NULL);
  ASSERT_EQ_STR(mt_aws_creds_source(p), "environment");
  get_ok(p, &c);
  ASSERT_EQ_STR(c.creds.access_key_id, "AKIAENVEXAMPLE");
  ASSERT_EQ_STR(c.creds.secret_access_key, secrets[0]);
  ASSERT_TRUE(c.creds.session_token == NULL);
  ASSERT_TRUE(c.expires_at == 0);
  mt_aws_creds_copy_free(&c);
  ASSERT_TRUE(c.mem == NULL);
  mt_aws_creds_close(p);
  /* With a session token, and a token alone is not half a pair. */
  setenv("AWS_SESSION_TOKEN", secrets[3], 1);
  p = open_ok(NULL);
  get_ok(p, &c);
  ASSERT_EQ_STR(c.creds.session_token, secrets[3]);
  mt_aws_creds_copy_free(&c);
  mt_aws_creds_close(p);
  mt_aws_creds_copy_free(NULL);
  mt_aws_creds_close(NULL);
  remove_tmp();
}

TEST(creds_environment_half_a_pair_is_an_error) {
  setup();
  setenv("AWS_SECRET_ACCESS_KEY", secrets[0], 1);
  /* A profile further down the chain does not paper over the mistake. */
  write_file(".aws/credentials", "[default]\naws_access_key_id = AKIAFILE\n"
                                 "aws_secret_access_key = PROFILESECRETx9Q2\n");
  const char *msg = open_fails(NULL, MT_ECONFIG);
  ASSERT_EQ_STR(msg, "the environment has AWS_SECRET_ACCESS_KEY but no "
                     "AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  setenv("AWS_ACCESS_KEY_ID", "AKIAENVEXAMPLE", 1);
  msg = open_fails(NULL, MT_ECONFIG);
  ASSERT_CONTAINS(msg, "no AWS_SECRET_ACCESS_KEY");
  remove_tmp();
}

TEST(creds_shared_credentials_file_profiles) {
  mt_aws_creds_copy_t c;
  char want[PATH_MAX + 64];
  setup();
  const char *path = write_file(".aws/credentials",
                                "# a comment\n"
                                "[default]\n"
                                "aws_access_key_id = AKIADEFAULT\n"
                                "aws_secret_access_key = PROFILESECRETx9Q2\n"
                                "\n"
                                "[ci]\n"
                                "; another comment\n"
                                "AWS_Access_Key_Id=AKIACI\n"
                                "aws_secret_access_key=PROFILESECRETx9Q2\n"
                                "aws_session_token = SESSIONTOKENenv77\n"
                                "s3 =\n"
                                "  aws_access_key_id = AKIANESTED\n"
                                "[other]\n"
                                "aws_access_key_id = AKIAOTHER\n"
                                "aws_secret_access_key = PROFILESECRETx9Q2\n");
  mt_aws_creds_provider_t *p = open_ok(NULL);
  snprintf(want, sizeof want, "profile \"default\" in %s", path);
  ASSERT_EQ_STR(mt_aws_creds_source(p), want);
  get_ok(p, &c);
  ASSERT_EQ_STR(c.creds.access_key_id, "AKIADEFAULT");
  ASSERT_EQ_STR(c.creds.secret_access_key, "PROFILESECRETx9Q2");
  ASSERT_TRUE(c.creds.session_token == NULL);
  mt_aws_creds_copy_free(&c);
  mt_aws_creds_close(p);
  /* AWS_PROFILE picks a profile; keys are case-insensitive, indented
   * lines belong to the setting above them. */
  setenv("AWS_PROFILE", "ci", 1);
  p = open_ok(NULL);
  get_ok(p, &c);
  ASSERT_EQ_STR(c.creds.access_key_id, "AKIACI");
  ASSERT_EQ_STR(c.creds.session_token, "SESSIONTOKENenv77");
  mt_aws_creds_copy_free(&c);
  mt_aws_creds_close(p);
  /* A configured name wins over AWS_PROFILE. */
  mt_aws_creds_opts_t opts = {.profile = "other"};
  p = open_ok(&opts);
  get_ok(p, &c);
  ASSERT_EQ_STR(c.creds.access_key_id, "AKIAOTHER");
  mt_aws_creds_copy_free(&c);
  mt_aws_creds_close(p);
  remove_tmp();
}

TEST(creds_shared_config_file_profiles) {
  mt_aws_creds_copy_t c;
  char want[PATH_MAX + 64];
  setup();
  /* Files named by the environment, "~/" read as the home folder. */
  write_file("conf", "[default]\n"
                     "region = eu-west-1\n"
                     "aws_access_key_id = AKIACONFDEFAULT\n"
                     "aws_secret_access_key = CONFIGSECRETk3L8\n"
                     "[cfg]\n" /* not a profile in the config file */
                     "aws_access_key_id = AKIAWRONG\n"
                     "aws_secret_access_key = CONFIGSECRETk3L8\n"
                     "[profile   cfg]\n"
                     "aws_access_key_id = AKIACFG\n"
                     "aws_secret_access_key = CONFIGSECRETk3L8\n"
                     "aws_session_token = SESSIONTOKENenv77\n");
  setenv("AWS_CONFIG_FILE", "~/conf", 1);
  setenv("AWS_SHARED_CREDENTIALS_FILE", "~/nowhere", 1);
  mt_aws_creds_provider_t *p = open_ok(NULL);
  get_ok(p, &c);
  ASSERT_EQ_STR(c.creds.access_key_id, "AKIACONFDEFAULT");
  mt_aws_creds_copy_free(&c);
  mt_aws_creds_close(p);
  setenv("AWS_PROFILE", "cfg", 1);
  p = open_ok(NULL);
  snprintf(want, sizeof want, "profile \"cfg\" in %s/conf", tmp);
  ASSERT_EQ_STR(mt_aws_creds_source(p), want);
  get_ok(p, &c);
  ASSERT_EQ_STR(c.creds.access_key_id, "AKIACFG");
  ASSERT_EQ_STR(c.creds.session_token, "SESSIONTOKENenv77");
  mt_aws_creds_copy_free(&c);
  mt_aws_creds_close(p);
  remove_tmp();
}

TEST(creds_profile_errors_name_what_is_missing) {
  char want[PATH_MAX + 128];
  setup();
  const char *path = write_file(".aws/credentials",
                                "[half]\naws_access_key_id = AKIAHALF\n"
                                "[other-half]\n"
                                "aws_secret_access_key = PROFILESECRETx9Q2\n");
  write_file(".aws/config",
             "[profile chained]\nrole_arn = arn:aws:iam::1:role/r\n"
             "source_profile = half\n"
             "[profile process]\ncredential_process = /bin/creds\n"
             "[profile sso]\nsso_start_url = https://x.awsapps.com/start\n");
  mt_aws_creds_opts_t opts = {.profile = "half"};
  const char *msg = open_fails(&opts, MT_ECONFIG);
  snprintf(want, sizeof want,
           "profile \"half\" in %s has no aws_secret_access_key", path);
  ASSERT_EQ_STR(msg, want);
  opts.profile = "other-half";
  msg = open_fails(&opts, MT_ECONFIG);
  ASSERT_CONTAINS(msg, "has no aws_access_key_id");
  opts.profile = "chained";
  ASSERT_CONTAINS(open_fails(&opts, MT_ECONFIG),
                  "uses role_arn with source_profile, which moontask does "
                  "not support");
  opts.profile = "process";
  ASSERT_CONTAINS(open_fails(&opts, MT_ECONFIG), "credential_process");
  opts.profile = "sso";
  ASSERT_CONTAINS(open_fails(&opts, MT_ECONFIG), "sso");
  /* A profile asked for by name must exist. */
  setenv("AWS_PROFILE", "nope", 1);
  msg = open_fails(NULL, MT_ECONFIG);
  ASSERT_CONTAINS(msg, "profile \"nope\" (from AWS_PROFILE) is in neither");
  ASSERT_CONTAINS(msg, path);
  remove_tmp();
}

TEST(creds_none_found_lists_what_was_tried) {
  setup();
  const char *msg = open_fails(NULL, MT_ECONFIG);
  ASSERT_CONTAINS(msg, "no AWS credentials found");
  ASSERT_CONTAINS(msg, "AWS_ACCESS_KEY_ID is not set");
  ASSERT_CONTAINS(msg, "no profile \"default\"");
  ASSERT_CONTAINS(msg, "AWS_WEB_IDENTITY_TOKEN_FILE is not set");
  ASSERT_CONTAINS(msg, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  ASSERT_CONTAINS(msg, "disabled by AWS_EC2_METADATA_DISABLED");
  /* A default profile with settings but no credentials is passed over. */
  write_file(".aws/config", "[default]\nregion = eu-west-1\n");
  ASSERT_CONTAINS(open_fails(NULL, MT_ECONFIG),
                  "profile \"default\" has no credentials");
  remove_tmp();
}

TEST(creds_precedence) {
  fake_server_t s;
  mt_aws_creds_copy_t c;
  char host[64];
  setup();
  fake_server_start(&s, "fake_http.py", NULL);
  snprintf(host, sizeof host, "http://127.0.0.1:%d", s.port);
  mt_aws_creds_opts_t opts = {.container_host = host};
  setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/creds", 1);
  write_file(".aws/config", "[default]\naws_access_key_id = AKIACONFIG\n"
                            "aws_secret_access_key = CONFIGSECRETk3L8\n");
  write_file(".aws/credentials", "[default]\naws_access_key_id = AKIACREDS\n"
                                 "aws_secret_access_key = PROFILESECRETx9Q2\n");
  setenv("AWS_ACCESS_KEY_ID", "AKIAENVEXAMPLE", 1);
  setenv("AWS_SECRET_ACCESS_KEY", secrets[0], 1);
  const char *want[] = {"AKIAENVEXAMPLE", "AKIACREDS", "AKIACONFIG",
                        "ASIAECS0001"};
  for (int step = 0; step < 4; step++) {
    /* Each step takes away the source that won the one before. */
    if (step == 1) {
      unsetenv("AWS_ACCESS_KEY_ID");
      unsetenv("AWS_SECRET_ACCESS_KEY");
    } else if (step == 2) {
      write_file(".aws/credentials", "[elsewhere]\n");
    } else if (step == 3) {
      write_file(".aws/config", "[default]\nregion = eu-west-1\n");
    }
    mt_aws_creds_provider_t *p = open_ok(&opts);
    get_ok(p, &c);
    ASSERT_EQ_STR(c.creds.access_key_id, want[step]);
    mt_aws_creds_copy_free(&c);
    mt_aws_creds_close(p);
  }
  fake_server_stop(&s);
  remove_tmp();
}

TEST(creds_web_identity_with_moto_sts) {
  fake_server_t moto;
  mt_aws_creds_copy_t c;
  char url[64];
  setup();
  fake_server_start(&moto, "moto_sts.py", NULL);
  snprintf(url, sizeof url, "http://127.0.0.1:%d", moto.port);
  const char *token =
      write_file("token", "eyJhbGciOiJSUzI1NiJ9.fake-web-identity.sig\n");
  setenv("AWS_WEB_IDENTITY_TOKEN_FILE", token, 1);
  setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/moontask", 1);
  setenv("AWS_ROLE_SESSION_NAME", "unit-test", 1);
  setenv("AWS_ENDPOINT_URL_STS", url, 1);
  setenv("AWS_REGION", "us-east-1", 1);
  double before = epoch_now();
  mt_aws_creds_provider_t *p = open_ok(NULL);
  ASSERT_EQ_STR(mt_aws_creds_source(p),
                "web identity (role arn:aws:iam::123456789012:role/moontask)");
  get_ok(p, &c);
  ASSERT_TRUE(strncmp(c.creds.access_key_id, "ASIA", 4) == 0);
  ASSERT_TRUE(strlen(c.creds.secret_access_key) > 20);
  ASSERT_TRUE(c.creds.session_token != NULL &&
              strlen(c.creds.session_token) > 20);
  ASSERT_TRUE(c.expires_at > before + 60);
  mt_aws_creds_copy_free(&c);
  mt_aws_creds_close(p);
  /* Half configured is an error, not a reason to look on. */
  unsetenv("AWS_ROLE_ARN");
  ASSERT_CONTAINS(open_fails(NULL, MT_ECONFIG),
                  "has AWS_WEB_IDENTITY_TOKEN_FILE but no AWS_ROLE_ARN");
  fake_server_stop(&moto);
  remove_tmp();
}

TEST(creds_web_identity_errors_and_profiles) {
  fake_server_t s;
  mt_aws_creds_copy_t c;
  char url[64];
  setup();
  fake_server_start(&s, "fake_http.py", NULL);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/sts", s.port);
  mt_aws_creds_opts_t opts = {.sts_endpoint = url};
  setenv("AWS_WEB_IDENTITY_TOKEN_FILE", write_file("bad", "bad-token"), 1);
  setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/moontask", 1);
  /* STS's refusal is an error naming the role, the code and STS. */
  const char *msg = open_fails(&opts, MT_EIO);
  ASSERT_CONTAINS(msg, "arn:aws:iam::123456789012:role/moontask");
  ASSERT_CONTAINS(msg, "InvalidIdentityToken");
  ASSERT_CONTAINS(msg, url);
  /* A token file that is not there. */
  setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token", 1);
  ASSERT_CONTAINS(open_fails(&opts, MT_ECONFIG),
                  "web identity token file /nonexistent/token is missing");
  /* The same from a profile's role_arn and web_identity_token_file. */
  unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
  unsetenv("AWS_ROLE_ARN");
  char config[PATH_MAX * 2];
  snprintf(config, sizeof config,
           "[profile wi]\nrole_arn = arn:aws:iam::1:role/wi\n"
           "web_identity_token_file = %s\n",
           write_file("good", "eyJhbGciOiJSUzI1NiJ9.fake-web-identity.x"));
  write_file(".aws/config", config);
  setenv("AWS_PROFILE", "wi", 1);
  mt_aws_creds_provider_t *p = open_ok(&opts);
  ASSERT_CONTAINS(mt_aws_creds_source(p), "role arn:aws:iam::1:role/wi");
  get_ok(p, &c);
  ASSERT_EQ_STR(c.creds.access_key_id, "ASIASTS0001");
  ASSERT_EQ_STR(c.creds.session_token, "sts-session-token-1");
  mt_aws_creds_copy_free(&c);
  mt_aws_creds_close(p);
  fake_server_stop(&s);
  remove_tmp();
}

TEST(creds_container) {
  fake_server_t s;
  mt_aws_creds_copy_t c;
  char host[64], full[128];
  setup();
  const char *args[] = {"--ecs-token", "right-container-token", NULL};
  fake_server_start(&s, "fake_http.py", args);
  snprintf(host, sizeof host, "http://127.0.0.1:%d", s.port);
  mt_aws_creds_opts_t opts = {.container_host = host};
  setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/creds", 1);
  setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "right-container-token", 1);
  double before = epoch_now();
  mt_aws_creds_provider_t *p = open_ok(&opts);
  char want[128];
  snprintf(want, sizeof want, "container credentials (%s)", host);
  ASSERT_EQ_STR(mt_aws_creds_source(p), want);
  get_ok(p, &c);
  ASSERT_EQ_STR(c.creds.access_key_id, "ASIAECS0001");
  ASSERT_EQ_STR(c.creds.secret_access_key, "ecs-secret-1");
  ASSERT_EQ_STR(c.creds.session_token, "ecs-session-token-1");
  ASSERT_TRUE(c.expires_at > before + 3500 && c.expires_at < before + 3700);
  mt_aws_creds_copy_free(&c);
  mt_aws_creds_close(p);
  /* The wrong token: refused, and the token is not in the message. */
  setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong-container-token", 1);
  ASSERT_CONTAINS(open_fails(&opts, MT_EIO), "answered 401");
  /* The full URI, with the token in a file (read at every fetch). */
  unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  snprintf(full, sizeof full, "%s/ecs/creds", host);
  setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", full, 1);
  setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
         write_file("ecs-token", "right-container-token\n"), 1);
  p = open_ok(NULL);
  get_ok(p, &c);
  ASSERT_EQ_STR(c.creds.access_key_id, "ASIAECS0002");
  mt_aws_creds_copy_free(&c);
  mt_aws_creds_close(p);
  /* Plain http elsewhere than this host would carry the token in the
   * clear: refused. */
  setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds", 1);
  ASSERT_CONTAINS(open_fails(NULL, MT_ECONFIG), "use https");
  fake_server_stop(&s);
  remove_tmp();
}

TEST(creds_imds_v2) {
  fake_server_t s;
  mt_aws_creds_copy_t c;
  mt_http_resp_t resp;
  mt_err_t err;
  char endpoint[64], url[128];
  setup();
  fake_server_start(&s, "fake_http.py", NULL);
  snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d/", s.port);
  unsetenv("AWS_EC2_METADATA_DISABLED");
  setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint, 1);
  mt_aws_creds_provider_t *p = open_ok(NULL);
  char want[128];
  snprintf(want, sizeof want,
           "EC2 instance metadata (role moontask-role at http://127.0.0.1:%d)",
           s.port);
  ASSERT_EQ_STR(mt_aws_creds_source(p), want);
  get_ok(p, &c);
  ASSERT_EQ_STR(c.creds.access_key_id, "ASIAIMDS0001");
  ASSERT_EQ_STR(c.creds.session_token, "imds-session-token-1");
  ASSERT_TRUE(c.expires_at > epoch_now() + 3000);
  mt_aws_creds_copy_free(&c);
  mt_aws_creds_close(p);
  /* IMDSv2: a session token first (the fake refuses requests without). */
  snprintf(url, sizeof url, "http://127.0.0.1:%d/counts", s.port);
  mt_http_req_t req = {.url = url};
  ASSERT_EQ_INT(mt_http_fetch_sync(&req, &resp, &err), 0);
  ASSERT_CONTAINS(resp.body.data, "\"/latest/api/token\": 1");
  mt_http_resp_free(&resp);
  fake_server_stop(&s);
  remove_tmp();
}

TEST(creds_imds_absent_fails_fast) {
  char endpoint[64];
  setup();
  unsetenv("AWS_EC2_METADATA_DISABLED");
  snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d",
           fake_server_closed_port());
  setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint, 1);
  double t0 = epoch_now();
  const char *msg = open_fails(NULL, MT_ECONFIG);
  ASSERT_TRUE(epoch_now() - t0 < 5);
  ASSERT_CONTAINS(msg, "no AWS credentials found");
  ASSERT_CONTAINS(msg, "EC2 instance metadata: PUT ");
  ASSERT_CONTAINS(msg, endpoint);
  remove_tmp();
}

/* Polls until the provider hands out other credentials than `first`,
 * checking that every get succeeds meanwhile. Returns the seconds it took,
 * or fails after `limit`. */
static double wait_for_refresh(mt_aws_creds_provider_t *p, const char *first,
                               mt_aws_creds_copy_t *out, double limit) {
  double t0 = epoch_now();
  for (;;) {
    get_ok(p, out);
    if (strcmp(out->creds.access_key_id, first) != 0)
      return epoch_now() - t0;
    mt_aws_creds_copy_free(out);
    if (epoch_now() - t0 > limit)
      MT__FAIL("credentials %s not refreshed within %.0f s", first, limit);
    usleep(50 * 1000);
  }
}

TEST(creds_refreshed_before_expiry) {
  fake_server_t s;
  mt_aws_creds_copy_t first, next;
  char host[64];
  setup();
  /* Credentials that live 6 s: refreshed halfway, long before expiry. */
  const char *args[] = {"--creds-ttl", "6", NULL};
  fake_server_start(&s, "fake_http.py", args);
  snprintf(host, sizeof host, "http://127.0.0.1:%d", s.port);
  setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/creds", 1);
  mt_aws_creds_opts_t opts = {.container_host = host};
  mt_aws_creds_provider_t *p = open_ok(&opts);
  get_ok(p, &first);
  ASSERT_EQ_STR(first.creds.access_key_id, "ASIAECS0001");
  wait_for_refresh(p, "ASIAECS0001", &next, 15);
  ASSERT_TRUE(epoch_now() < first.expires_at);
  ASSERT_EQ_STR(next.creds.access_key_id, "ASIAECS0002");
  ASSERT_EQ_STR(next.creds.secret_access_key, "ecs-secret-2");
  ASSERT_TRUE(next.expires_at > first.expires_at);
  /* A copy stays as it was after the provider moved on. */
  ASSERT_EQ_STR(first.creds.secret_access_key, "ecs-secret-1");
  mt_aws_creds_copy_free(&first);
  mt_aws_creds_copy_free(&next);
  mt_aws_creds_close(p);
  /* The same from IMDS. */
  char endpoint[64];
  snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", s.port);
  unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  unsetenv("AWS_EC2_METADATA_DISABLED");
  setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint, 1);
  p = open_ok(NULL);
  get_ok(p, &first);
  ASSERT_EQ_STR(first.creds.access_key_id, "ASIAIMDS0001");
  wait_for_refresh(p, "ASIAIMDS0001", &next, 15);
  ASSERT_TRUE(epoch_now() < first.expires_at);
  ASSERT_EQ_STR(next.creds.access_key_id, "ASIAIMDS0002");
  mt_aws_creds_copy_free(&first);
  mt_aws_creds_copy_free(&next);
  mt_aws_creds_close(p);
  fake_server_stop(&s);
  remove_tmp();
}

TEST(creds_failed_refresh_keeps_old_until_expiry) {
  fake_server_t s;
  mt_aws_creds_copy_t c;
  mt_err_t err;
  char host[64];
  setup();
  const char *args[] = {"--creds-ttl", "4", NULL};
  fake_server_start(&s, "fake_http.py", args);
  snprintf(host, sizeof host, "http://127.0.0.1:%d", s.port);
  setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/creds", 1);
  mt_aws_creds_opts_t opts = {.container_host = host};
  mt_aws_creds_provider_t *p = open_ok(&opts);
  get_ok(p, &c);
  double expires = c.expires_at;
  mt_aws_creds_copy_free(&c);
  /* The source goes away: refreshes fail, the old credentials serve on
   * until they expire, and then the error says why there are no others. */
  fake_server_stop(&s);
  int served = 0, rc;
  while ((rc = mt_aws_creds_get(p, &c, &err)) == 0) {
    ASSERT_EQ_STR(c.creds.access_key_id, "ASIAECS0001");
    ASSERT_TRUE(epoch_now() < expires + 1);
    mt_aws_creds_copy_free(&c);
    served++;
    usleep(50 * 1000);
  }
  ASSERT_EQ_INT(rc, MT_ESTATE);
  ASSERT_TRUE(served > 0);
  ASSERT_TRUE(epoch_now() >= expires);
  ASSERT_CONTAINS(err.msg, "the AWS credentials from container credentials");
  ASSERT_CONTAINS(err.msg, "refreshing them failed: container credentials: ");
  ASSERT_CONTAINS(err.msg, host);
  assert_clean(err.msg);
  ASSERT_TRUE(c.mem == NULL);
  mt_aws_creds_close(p);
  remove_tmp();
}

/* Several threads read while the provider refreshes under them. */
typedef struct reader_s {
  mt_aws_creds_provider_t *p;
  double until;
  int failures;
  int reads;
} reader_t;

static void *reader(void *arg) {
  reader_t *r = arg;
  while (epoch_now() < r->until) {
    mt_aws_creds_copy_t c;
    mt_err_t err;
    /* Key id and secret come from the same fetch: their numbers agree. */
    if (mt_aws_creds_get(r->p, &c, &err) != 0 ||
        strncmp(c.creds.access_key_id, "ASIAECS", 7) != 0 ||
        atoi(c.creds.access_key_id + 7) != atoi(c.creds.secret_access_key + 11))
      r->failures++;
    mt_aws_creds_copy_free(&c);
    r->reads++;
  }
  return NULL;
}

TEST(creds_get_from_many_threads) {
  fake_server_t s;
  char host[64];
  setup();
  const char *args[] = {"--creds-ttl", "3", NULL};
  fake_server_start(&s, "fake_http.py", args);
  snprintf(host, sizeof host, "http://127.0.0.1:%d", s.port);
  setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/creds", 1);
  mt_aws_creds_opts_t opts = {.container_host = host};
  mt_aws_creds_provider_t *p = open_ok(&opts);
  reader_t r[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    r[i] = (reader_t){p, epoch_now() + 3, 0, 0};
    ASSERT_EQ_INT(pthread_create(&t[i], NULL, reader, &r[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    ASSERT_EQ_INT(r[i].failures, 0);
    ASSERT_TRUE(r[i].reads > 0);
  }
  mt_aws_creds_copy_t c;
  get_ok(p, &c);
  ASSERT_TRUE(strcmp(c.creds.access_key_id, "ASIAECS0001") != 0);
  mt_aws_creds_copy_free(&c);
  mt_aws_creds_close(p);
  fake_server_stop(&s);
  remove_tmp();
}
