#include "aws/credentials.h"

#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "aws/http.h"
#include "common/buf.h"
#include "common/clock.h"
#include "json/doc.h"

#define DEFAULT_REFRESH_AHEAD 600.0
/* However short-lived the credentials, a refresh waits at least this long,
 * so that a source handing out already-expired ones is not hammered. */
#define MIN_REFRESH_INTERVAL 1.0
/* A failing refresh is retried after 1, 2, 4, ... seconds, up to this. */
#define MAX_RETRY_INTERVAL 60.0

#define CONTAINER_HOST "http://169.254.170.2"
#define IMDS_HOST "http://169.254.169.254"
/* IMDS answers in milliseconds on EC2; elsewhere nothing answers at all,
 * and start-up should not wait long to find that out. */
#define IMDS_TIMEOUT_MS 1000
#define IMDS_TOKEN_TTL "21600"

/* Tokens and profiles are small; anything bigger is not what we think. */
#define MAX_TOKEN_FILE (64 * 1024)
#define MAX_SHARED_FILE (1024 * 1024)

typedef enum source_e {
  SRC_ENV,
  SRC_PROFILE,
  SRC_WEB_IDENTITY,
  SRC_CONTAINER,
  SRC_IMDS
} source_t;

typedef struct creds_s {
  char *akid, *secret, *token;
  double expires_at; /* 0: never */
} creds_t;

struct mt_aws_creds_provider_s {
  source_t kind;
  char source[512];
  /* What a refresh needs, fixed at open: the refresh thread reads these
   * without the lock, and never the environment (getenv races setenv). */
  char *role_arn, *session_name, *token_file, *sts_url; /* web identity */
  char *url; /* container: the credentials URL; IMDS: the endpoint */
  char *auth_token, *auth_token_file; /* container */
  double refresh_ahead;
  /* The lock guards everything below. */
  pthread_mutex_t lock;
  pthread_cond_t cond; /* wakes the refresh thread to stop */
  creds_t cur;
  double next_refresh;
  int failures; /* refreshes failed in a row */
  mt_err_t refresh_err;
  /* The owner's reference, and the refresh thread's while it runs: close
   * does not wait for a refresh in flight, and the last one out frees. */
  int refs;
  int stop, fetching, thread_started;
  pthread_t thread;
};

/* ---- small helpers ------------------------------------------------------ */

/* The value of an environment variable, NULL when unset or empty (the SDKs
 * treat both alike). */
static const char *env(const char *name) {
  const char *v = getenv(name);
  return v != NULL && *v != '\0' ? v : NULL;
}

static void wipe_free(char *s) {
  if (s == NULL)
    return;
  explicit_bzero(s, strlen(s));
  free(s);
}

static void wipe_buf(mt_buf_t *b) {
  if (b->data != NULL)
    explicit_bzero(b->data, b->cap);
  mt_buf_free(b);
}

static void creds_free(creds_t *c) {
  wipe_free(c->akid);
  wipe_free(c->secret);
  wipe_free(c->token);
  memset(c, 0, sizeof *c);
}

/* Replaces *dst with a copy of s (NULL stays NULL). */
static int set_str(char **dst, const char *s) {
  char *copy = NULL;
  if (s != NULL && (copy = strdup(s)) == NULL)
    return MT_ENOMEM;
  wipe_free(*dst);
  *dst = copy;
  return 0;
}

static void trim_buf(mt_buf_t *b) {
  size_t start = 0;
  while (b->len > 0 && strchr(" \t\r\n", b->data[b->len - 1]) != NULL)
    b->data[--b->len] = '\0';
  while (start < b->len && strchr(" \t\r\n", b->data[start]) != NULL)
    start++;
  if (start > 0) {
    memmove(b->data, b->data + start, b->len - start + 1);
    b->len -= start;
  }
}

/* "2024-05-01T12:00:00Z", with optional fractional seconds and a numeric
 * offset in place of Z, as STS, ECS and IMDS write expiry times. */
static int parse_time(const char *s, double *out) {
  struct tm tm;
  int n = 0, off = 0;
  memset(&tm, 0, sizeof tm);
  if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
             &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
    return -1;
  const char *rest = s + n;
  if (*rest == '.')
    for (rest++; *rest >= '0' && *rest <= '9'; rest++)
      ;
  if (*rest == '+' || *rest == '-') {
    int hh, mm;
    if (sscanf(rest + 1, "%2d:%2d", &hh, &mm) != 2)
      return -1;
    off = (hh * 3600 + mm * 60) * (*rest == '-' ? -1 : 1);
  } else if (*rest != 'Z' && *rest != 'z' && *rest != '\0') {
    return -1;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  time_t t = timegm(&tm);
  if (t == (time_t)-1)
    return -1;
  *out = (double)t - off;
  return 0;
}

static void format_time(double t, char *out, size_t cap) {
  time_t secs = (time_t)t;
  struct tm tm;
  gmtime_r(&secs, &tm);
  strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Reads a whole file. *missing (when not NULL) is set, and 0 returned, if
 * it does not exist. */
static int read_file(const char *path, size_t max, mt_buf_t *out, int *missing,
                     mt_err_t *err) {
  char chunk[4096];
  size_t n;
  int rc = 0;
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    if (errno == ENOENT && missing != NULL) {
      *missing = 1;
      return 0;
    }
    return mt_err_set(err, MT_ECONFIG, "cannot read %s: %s", path,
                      strerror(errno));
  }
  if (missing != NULL)
    *missing = 0;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (out->len + n > max) {
      rc =
          mt_err_set(err, MT_ECONFIG, "%s is larger than %zu bytes", path, max);
      break;
    }
    if (mt_buf_append(out, chunk, n) != 0) {
      rc = mt_err_set(err, MT_ENOMEM, "out of memory");
      break;
    }
  }
  if (rc == 0 && ferror(f))
    rc = mt_err_set(err, MT_ECONFIG, "cannot read %s: %s", path,
                    strerror(errno));
  explicit_bzero(chunk, sizeof chunk);
  fclose(f);
  if (out->data == NULL && rc == 0 && mt_buf_puts(out, "") != 0)
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
  return rc;
}

/* $HOME, else the password database's idea of it. */
static const char *home_dir(void) {
  const char *home = env("HOME");
  if (home != NULL)
    return home;
  struct passwd *pw = getpwuid(getuid());
  return pw != NULL ? pw->pw_dir : "";
}

/* A file named by the environment (with "~/" meaning the home folder, as
 * the SDKs read it), else the default under ~/.aws. */
static char *shared_path(const char *var, const char *name) {
  const char *v = env(var);
  mt_buf_t b = MT_BUF_INIT;
  int rc;
  if (v != NULL && v[0] == '~' && v[1] == '/')
    rc = mt_buf_printf(&b, "%s%s", home_dir(), v + 1);
  else if (v != NULL)
    rc = mt_buf_puts(&b, v);
  else
    rc = mt_buf_printf(&b, "%s/.aws/%s", home_dir(), name);
  if (rc != 0)
    mt_buf_free(&b);
  return b.data;
}

static int form_append(mt_buf_t *b, const char *key, const char *value) {
  static const char hex[] = "0123456789ABCDEF";
  if (mt_buf_printf(b, "%s%s=", b->len ? "&" : "", key) != 0)
    return MT_ENOMEM;
  for (const unsigned char *s = (const unsigned char *)value; *s; s++) {
    int plain = (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
                *s == '.' || *s == '~';
    char esc[3] = {'%', hex[*s >> 4], hex[*s & 15]};
    if ((plain ? mt_buf_putc(b, (char)*s) : mt_buf_append(b, esc, 3)) != 0)
      return MT_ENOMEM;
  }
  return 0;
}

/* The text of the first <tag>...</tag> in xml, entities decoded, or NULL
 * (also when out of memory: the caller reports it as missing). */
static char *xml_text(const char *xml, const char *tag) {
  char open[64], close[64];
  snprintf(open, sizeof open, "<%s>", tag);
  snprintf(close, sizeof close, "</%s>", tag);
  const char *a = xml != NULL ? strstr(xml, open) : NULL;
  if (a == NULL)
    return NULL;
  a += strlen(open);
  const char *b = strstr(a, close);
  if (b == NULL)
    return NULL;
  char *out = malloc((size_t)(b - a) + 1), *o = out;
  if (out == NULL)
    return NULL;
  static const struct {
    const char *entity;
    char c;
  } entities[] = {{"&amp;", '&'},
                  {"&lt;", '<'},
                  {"&gt;", '>'},
                  {"&quot;", '"'},
                  {"&apos;", '\''}};
  while (a < b) {
    size_t i, n = sizeof entities / sizeof *entities;
    for (i = 0; i < n; i++) {
      size_t len = strlen(entities[i].entity);
      if ((size_t)(b - a) >= len && memcmp(a, entities[i].entity, len) == 0) {
        *o++ = entities[i].c;
        a += len;
        break;
      }
    }
    if (i == n)
      *o++ = *a++;
  }
  *o = '\0';
  return out;
}

/* Removes every occurrence of secret from a message, in case a server
 * quoted back what we sent it. */
static void scrub(mt_err_t *err, const char *secret) {
  size_t len = secret != NULL ? strlen(secret) : 0;
  char *at;
  if (len < 4)
    return;
  while ((at = strstr(err->msg, secret)) != NULL) {
    static const char mark[] = "<redacted>";
    size_t tail = strlen(at + len) + 1;
    if (len >= sizeof mark - 1) {
      memcpy(at, mark, sizeof mark - 1);
      memmove(at + sizeof mark - 1, at + len, tail);
    } else {
      memmove(at, at + len, tail);
    }
  }
}

/* ---- the credential documents ---------------------------------------- */

/* Credentials from the JSON that ECS and IMDS serve: AccessKeyId,
 * SecretAccessKey, Token, Expiration (and IMDS's "Code": "Success"). */
static int json_creds(const mt_http_resp_t *resp, const char *what,
                      creds_t *out, mt_err_t *err) {
  mt_jdoc_t *doc = NULL;
  mt_err_t why;
  int rc = 0;
  if (mt_jdoc_parse(resp->body.data ? resp->body.data : "", resp->body.len,
                    &doc, &why) != 0 ||
      mt_jdoc_root(doc)->type != MT_JV_OBJECT) {
    /* Not the parser's message: it may quote the document, secrets and
     * all. */
    rc = mt_err_set(err, MT_EIO,
                    "%s answered something other than a JSON object", what);
    goto done;
  }
  const mt_jval_t *root = mt_jdoc_root(doc);
  const char *code = mt_jval_get_str(root, "Code");
  const char *akid = mt_jval_get_str(root, "AccessKeyId");
  const char *secret = mt_jval_get_str(root, "SecretAccessKey");
  const char *token = mt_jval_get_str(root, "Token");
  const char *expiration = mt_jval_get_str(root, "Expiration");
  if (code != NULL && strcmp(code, "Success") != 0) {
    rc = mt_err_set(err, MT_EIO, "%s answered Code \"%.64s\"", what, code);
    goto done;
  }
  if (akid == NULL || secret == NULL) {
    rc = mt_err_set(err, MT_EIO, "%s answered without %s", what,
                    akid == NULL ? "AccessKeyId" : "SecretAccessKey");
    goto done;
  }
  if (expiration != NULL && parse_time(expiration, &out->expires_at) != 0) {
    rc = mt_err_set(err, MT_EIO,
                    "%s answered an Expiration that is not a time: \"%.64s\"",
                    what, expiration);
    goto done;
  }
  if (set_str(&out->akid, akid) != 0 || set_str(&out->secret, secret) != 0 ||
      set_str(&out->token, token) != 0)
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
done:
  mt_jdoc_free(doc);
  if (rc != 0)
    creds_free(out);
  return rc;
}

/* ---- fetching, for open and for the refresh thread --------------------- */

/* A request's response body may hold secrets: wipe it with the rest. */
static void resp_free(mt_http_resp_t *resp) {
  wipe_buf(&resp->body);
  mt_http_resp_free(resp);
}

static int sts_fetch(const mt_aws_creds_provider_t *p, creds_t *out,
                     mt_err_t *err) {
  mt_buf_t token = MT_BUF_INIT, body = MT_BUF_INIT;
  mt_http_resp_t resp;
  char *code = NULL, *message = NULL, *expiration = NULL;
  int missing = 0, rc;
  memset(&resp, 0, sizeof resp);
  if ((rc = read_file(p->token_file, MAX_TOKEN_FILE, &token, &missing, err)) !=
      0)
    goto done;
  trim_buf(&token);
  if (missing || token.len == 0) {
    rc = mt_err_set(err, MT_ECONFIG, "web identity token file %s is %s",
                    p->token_file, missing ? "missing" : "empty");
    goto done;
  }
  if (form_append(&body, "Action", "AssumeRoleWithWebIdentity") != 0 ||
      form_append(&body, "Version", "2011-06-15") != 0 ||
      form_append(&body, "RoleArn", p->role_arn) != 0 ||
      form_append(&body, "RoleSessionName", p->session_name) != 0 ||
      form_append(&body, "WebIdentityToken", token.data) != 0) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto done;
  }
  /* The token travels in the body: URLs end up in error messages. */
  mt_http_header_t headers[] = {
      {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
      {"Accept", "application/xml"}};
  mt_http_req_t req = {.method = "POST",
                       .url = p->sts_url,
                       .headers = headers,
                       .nheaders = 2,
                       .body = body.data,
                       .body_len = body.len,
                       .op = "sts.AssumeRoleWithWebIdentity",
                       .max_attempts = 3,
                       .connect_timeout_ms = 3000,
                       .timeout_ms = 10000};
  mt_err_t why;
  if ((rc = mt_http_fetch_sync(&req, &resp, &why)) != 0) {
    scrub(&why, token.data);
    rc =
        mt_err_set(err, rc, "web identity (role %s): %s", p->role_arn, why.msg);
    goto done;
  }
  if (resp.status != 200) {
    code = xml_text(resp.body.data, "Code");
    message = xml_text(resp.body.data, "Message");
    rc = mt_err_set(
        err, MT_EIO,
        "web identity (role %s): STS at %s answered %ld %.64s: %.512s",
        p->role_arn, p->sts_url, resp.status, code ? code : "",
        message ? message : "");
    if (err != NULL)
      scrub(err, token.data);
    goto done;
  }
  out->akid = xml_text(resp.body.data, "AccessKeyId");
  out->secret = xml_text(resp.body.data, "SecretAccessKey");
  out->token = xml_text(resp.body.data, "SessionToken");
  expiration = xml_text(resp.body.data, "Expiration");
  if (out->akid == NULL || out->secret == NULL || out->token == NULL ||
      expiration == NULL) {
    rc = mt_err_set(err, MT_EIO,
                    "web identity (role %s): STS at %s answered without %s",
                    p->role_arn, p->sts_url,
                    out->akid == NULL     ? "AccessKeyId"
                    : out->secret == NULL ? "SecretAccessKey"
                    : out->token == NULL  ? "SessionToken"
                                          : "Expiration");
    goto done;
  }
  if (parse_time(expiration, &out->expires_at) != 0)
    rc = mt_err_set(
        err, MT_EIO,
        "web identity (role %s): STS answered an Expiration that is not a time: \"%.64s\"",
        p->role_arn, expiration);
done:
  if (rc != 0)
    creds_free(out);
  wipe_buf(&token);
  wipe_buf(&body);
  resp_free(&resp);
  free(code);
  free(message);
  free(expiration);
  return rc;
}

static int container_fetch(const mt_aws_creds_provider_t *p, creds_t *out,
                           mt_err_t *err) {
  mt_buf_t token = MT_BUF_INIT, what = MT_BUF_INIT;
  mt_http_resp_t resp;
  mt_http_header_t headers[2] = {{"Accept", "application/json"}, {NULL, NULL}};
  size_t nheaders = 1;
  int rc = 0;
  memset(&resp, 0, sizeof resp);
  if (mt_buf_printf(&what, "container credentials at %s", p->url) != 0) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto done;
  }
  /* A token file is read each time: EKS Pod Identity rotates it. */
  if (p->auth_token_file != NULL) {
    if ((rc = read_file(p->auth_token_file, MAX_TOKEN_FILE, &token, NULL,
                        err)) != 0)
      goto done;
    trim_buf(&token);
  } else if (p->auth_token != NULL && mt_buf_puts(&token, p->auth_token)) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto done;
  }
  if (token.len > 0) {
    if (strpbrk(token.data, "\r\n") != NULL) {
      rc = mt_err_set(
          err, MT_ECONFIG,
          "the container authorization token %s has a line break in it",
          p->auth_token_file ? p->auth_token_file
                             : "(AWS_CONTAINER_AUTHORIZATION_TOKEN)");
      goto done;
    }
    headers[nheaders++] = (mt_http_header_t){"Authorization", token.data};
  }
  mt_http_req_t req = {.url = p->url,
                       .headers = headers,
                       .nheaders = nheaders,
                       .op = "container.GetCredentials",
                       .max_attempts = 3,
                       .connect_timeout_ms = 1000,
                       .timeout_ms = 5000};
  mt_err_t why;
  if ((rc = mt_http_fetch_sync(&req, &resp, &why)) != 0) {
    scrub(&why, token.data);
    rc = mt_err_set(err, rc, "container credentials: %s", why.msg);
    goto done;
  }
  if (resp.status != 200) {
    rc = mt_err_set(err, MT_EIO, "%s answered %ld%s", what.data, resp.status,
                    resp.status == 401 || resp.status == 403
                        ? " (is the authorization token right?)"
                        : "");
    goto done;
  }
  rc = json_creds(&resp, what.data, out, err);
done:
  wipe_buf(&token);
  mt_buf_free(&what);
  resp_free(&resp);
  return rc;
}

/* One IMDS request with the session token (or for it). */
static int imds_get(const mt_aws_creds_provider_t *p, const char *method,
                    const char *path, const mt_http_header_t *header,
                    mt_http_resp_t *resp, mt_err_t *err) {
  mt_buf_t url = MT_BUF_INIT;
  mt_err_t why;
  int rc;
  if (mt_buf_printf(&url, "%s%s", p->url, path) != 0)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  /* One attempt: should IMDS be there but slow, the refresh thread tries
   * again soon enough, and at start-up a machine off EC2 waits one
   * timeout, not five. */
  mt_http_req_t req = {.method = method,
                       .url = url.data,
                       .headers = header,
                       .nheaders = 1,
                       .op = "imds",
                       .max_attempts = 1,
                       .connect_timeout_ms = IMDS_TIMEOUT_MS,
                       .timeout_ms = IMDS_TIMEOUT_MS};
  rc = mt_http_fetch_sync(&req, resp, &why);
  if (rc != 0)
    mt_err_set(err, rc, "%s", why.msg);
  else if (resp->status != 200)
    rc = mt_err_set(err, MT_EIO, "%s %s answered %ld", method, url.data,
                    resp->status);
  mt_buf_free(&url);
  return rc;
}

static int imds_fetch(const mt_aws_creds_provider_t *p, creds_t *out,
                      char *role_out, size_t role_cap, mt_err_t *err) {
  static const char creds_path[] =
      "/latest/meta-data/iam/security-credentials/";
  mt_http_resp_t token, role, doc;
  mt_buf_t path = MT_BUF_INIT, what = MT_BUF_INIT;
  int rc;
  memset(&token, 0, sizeof token);
  memset(&role, 0, sizeof role);
  memset(&doc, 0, sizeof doc);
  mt_http_header_t ttl = {"X-aws-ec2-metadata-token-ttl-seconds",
                          IMDS_TOKEN_TTL};
  if ((rc = imds_get(p, "PUT", "/latest/api/token", &ttl, &token, err)) != 0)
    goto done;
  trim_buf(&token.body);
  if (token.body.len == 0) {
    rc = mt_err_set(err, MT_EIO, "PUT %s/latest/api/token answered no token",
                    p->url);
    goto done;
  }
  mt_http_header_t auth = {"X-aws-ec2-metadata-token", token.body.data};
  if ((rc = imds_get(p, "GET", creds_path, &auth, &role, err)) != 0)
    goto done;
  /* One role per instance profile; the listing has it on its first line. */
  if (role.body.data == NULL && mt_buf_puts(&role.body, "") != 0) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto done;
  }
  trim_buf(&role.body);
  char *nl = strchr(role.body.data, '\n');
  if (nl != NULL)
    *nl = '\0';
  if (role.body.data[0] == '\0' || strchr(role.body.data, '/') != NULL) {
    rc = mt_err_set(err, MT_EIO, "%s%s lists no IAM role for this instance",
                    p->url, creds_path);
    goto done;
  }
  if (role_out != NULL)
    snprintf(role_out, role_cap, "%s", role.body.data);
  if (mt_buf_printf(&path, "%s%s", creds_path, role.body.data) != 0 ||
      mt_buf_printf(&what, "EC2 instance metadata at %s%s", p->url,
                    path.data) != 0) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto done;
  }
  if ((rc = imds_get(p, "GET", path.data, &auth, &doc, err)) != 0)
    goto done;
  rc = json_creds(&doc, what.data, out, err);
done:
  resp_free(&token);
  resp_free(&role);
  resp_free(&doc);
  mt_buf_free(&path);
  mt_buf_free(&what);
  return rc;
}

/* Fetches from the source that won; blocking. */
static int fetch(const mt_aws_creds_provider_t *p, creds_t *out, char *role_out,
                 size_t role_cap, mt_err_t *err) {
  switch (p->kind) {
  case SRC_WEB_IDENTITY: return sts_fetch(p, out, err);
  case SRC_CONTAINER: return container_fetch(p, out, err);
  case SRC_IMDS: return imds_fetch(p, out, role_out, role_cap, err);
  default:
    return mt_err_set(err, MT_ESTATE, "%s cannot be refreshed", p->source);
  }
}

/* ---- refreshing ------------------------------------------------------- */

/* When to refresh credentials just obtained: refresh_ahead before they
 * expire, or halfway through the life of short-lived ones, so that there
 * is time for a failed refresh to be retried before they run out. */
static void schedule(mt_aws_creds_provider_t *p, double now) {
  double expires = p->cur.expires_at;
  double at = expires - p->refresh_ahead;
  if (at < now + (expires - now) / 2)
    at = now + (expires - now) / 2;
  if (at < now + MIN_REFRESH_INTERVAL)
    at = now + MIN_REFRESH_INTERVAL;
  p->next_refresh = at;
}

static void provider_destroy(mt_aws_creds_provider_t *p) {
  creds_free(&p->cur);
  wipe_free(p->role_arn);
  wipe_free(p->session_name);
  wipe_free(p->token_file);
  wipe_free(p->sts_url);
  wipe_free(p->url);
  wipe_free(p->auth_token);
  wipe_free(p->auth_token_file);
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->cond);
  explicit_bzero(p, sizeof *p);
  free(p);
}

static void *refresh_main(void *arg) {
  mt_aws_creds_provider_t *p = arg;
  pthread_mutex_lock(&p->lock);
  while (!p->stop) {
    double now = mt_epoch_now();
    /* A refresh may bring credentials without an expiry: they need no
     * more refreshing. */
    if (p->cur.expires_at == 0) {
      pthread_cond_wait(&p->cond, &p->lock);
      continue;
    }
    if (now < p->next_refresh) {
      struct timespec ts;
      ts.tv_sec = (time_t)p->next_refresh;
      ts.tv_nsec = (long)((p->next_refresh - (double)ts.tv_sec) * 1e9);
      pthread_cond_timedwait(&p->cond, &p->lock, &ts);
      continue;
    }
    /* Fetch without the lock: readers keep the current credentials the
     * while. */
    p->fetching = 1;
    pthread_mutex_unlock(&p->lock);
    creds_t fresh;
    mt_err_t err;
    memset(&fresh, 0, sizeof fresh);
    int rc = fetch(p, &fresh, NULL, 0, &err);
    pthread_mutex_lock(&p->lock);
    p->fetching = 0;
    now = mt_epoch_now();
    if (rc == 0) {
      creds_free(&p->cur);
      p->cur = fresh;
      p->failures = 0;
      schedule(p, now);
      continue;
    }
    double delay = MIN_REFRESH_INTERVAL *
                   (double)(1 << (p->failures < 6 ? p->failures : 6));
    if (delay > MAX_RETRY_INTERVAL)
      delay = MAX_RETRY_INTERVAL;
    p->failures++;
    p->next_refresh = now + delay;
    snprintf(p->refresh_err.msg, sizeof p->refresh_err.msg, "%s", err.msg);
    if (!p->stop)
      fprintf(
          stderr,
          "moontask: refreshing AWS credentials from %s failed (retrying in %.0f s): %s\n",
          p->source, delay, err.msg);
  }
  int last = --p->refs == 0;
  pthread_mutex_unlock(&p->lock);
  if (last)
    provider_destroy(p);
  return NULL;
}

/* ---- the chain ------------------------------------------------------- */

/* A profile as one file has it. */
typedef struct profile_s {
  int found;
  char *akid, *secret, *token;
  char *role_arn, *web_identity_token_file, *role_session_name;
  char *source_profile, *credential_source, *credential_process, *sso;
  char *region;
} profile_t;

static void profile_free(profile_t *pr) {
  wipe_free(pr->akid);
  wipe_free(pr->secret);
  wipe_free(pr->token);
  free(pr->role_arn);
  free(pr->web_identity_token_file);
  free(pr->role_session_name);
  free(pr->source_profile);
  free(pr->credential_source);
  free(pr->credential_process);
  free(pr->sso);
  free(pr->region);
  memset(pr, 0, sizeof *pr);
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  char *end = s + strlen(s);
  while (end > s && strchr(" \t\r\n", end[-1]) != NULL)
    *--end = '\0';
  return s;
}

/* Whether a section header's inner text names the profile: "[name]" in the
 * credentials file; "[profile name]" in the config file, where the default
 * profile is "[default]". */
static int section_matches(const char *inner, const char *name, int config) {
  if (!config)
    return strcmp(inner, name) == 0;
  if (strcmp(name, "default") == 0 && strcmp(inner, "default") == 0)
    return 1;
  if (strncmp(inner, "profile", 7) != 0 ||
      (inner[7] != ' ' && inner[7] != '\t'))
    return 0;
  inner += 7;
  while (*inner == ' ' || *inner == '\t')
    inner++;
  return strcmp(inner, name) == 0;
}

/* Reads profile `name` from an INI text (which it cuts up) into pr. Keys
 * are case-insensitive and the last one wins; comments are whole lines
 * starting with '#' or ';'; indented lines are sub-settings of the key
 * above them ("s3 =\n  max_concurrent_requests = 4") and skipped. */
static int ini_profile(char *text, const char *name, int config,
                       profile_t *pr) {
  int in = 0;
  for (char *line = text, *next; line != NULL; line = next) {
    next = strchr(line, '\n');
    if (next != NULL)
      *next++ = '\0';
    int indented = *line == ' ' || *line == '\t';
    char *s = trim(line);
    if (*s == '\0' || *s == '#' || *s == ';')
      continue;
    if (*s == '[') {
      char *close = strchr(s, ']');
      if (close == NULL)
        continue;
      *close = '\0';
      in = section_matches(trim(s + 1), name, config);
      pr->found |= in;
      continue;
    }
    char *eq = strchr(s, '=');
    if (!in || indented || eq == NULL)
      continue;
    *eq = '\0';
    char *key = trim(s), *value = trim(eq + 1);
    static const struct {
      const char *key;
      size_t offset;
    } keys[] = {
        {"aws_access_key_id", offsetof(profile_t, akid)},
        {"aws_secret_access_key", offsetof(profile_t, secret)},
        {"aws_session_token", offsetof(profile_t, token)},
        {"aws_security_token", offsetof(profile_t, token)}, /* its old name */
        {"role_arn", offsetof(profile_t, role_arn)},
        {"web_identity_token_file",
         offsetof(profile_t, web_identity_token_file)},
        {"role_session_name", offsetof(profile_t, role_session_name)},
        {"source_profile", offsetof(profile_t, source_profile)},
        {"credential_source", offsetof(profile_t, credential_source)},
        {"credential_process", offsetof(profile_t, credential_process)},
        {"sso_session", offsetof(profile_t, sso)},
        {"sso_start_url", offsetof(profile_t, sso)},
        {"sso_account_id", offsetof(profile_t, sso)},
        {"region", offsetof(profile_t, region)},
    };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
      if (strcasecmp(key, keys[i].key) == 0) {
        char **field = (char **)(void *)((char *)pr + keys[i].offset);
        if (set_str(field, *value ? value : NULL) != 0)
          return MT_ENOMEM;
        break;
      }
  }
  return 0;
}

/* Reads a shared file's profile; a missing file is an empty one. */
static int read_profile(const char *path, const char *name, int config,
                        profile_t *pr, mt_err_t *err) {
  mt_buf_t text = MT_BUF_INIT;
  int missing = 0;
  int rc = read_file(path, MAX_SHARED_FILE, &text, &missing, err);
  if (rc == 0 && !missing && ini_profile(text.data, name, config, pr) != 0)
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
  wipe_buf(&text);
  return rc;
}

static int take_static(mt_aws_creds_provider_t *p, profile_t *pr) {
  p->cur.akid = pr->akid;
  p->cur.secret = pr->secret;
  p->cur.token = pr->token;
  pr->akid = pr->secret = pr->token = NULL;
  return 0;
}

static int from_env(mt_aws_creds_provider_t *p, int *found, mt_buf_t *tried,
                    mt_err_t *err) {
  const char *akid = env("AWS_ACCESS_KEY_ID");
  const char *secret = env("AWS_SECRET_ACCESS_KEY");
  if (akid == NULL && secret == NULL)
    return mt_buf_puts(tried, "environment: AWS_ACCESS_KEY_ID is not set");
  /* Half a key pair is a mistake to report, not a reason to look on. */
  if (akid == NULL || secret == NULL)
    return mt_err_set(err, MT_ECONFIG, "the environment has %s but no %s",
                      akid ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                      akid ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
  if (set_str(&p->cur.akid, akid) != 0 ||
      set_str(&p->cur.secret, secret) != 0 ||
      set_str(&p->cur.token, env("AWS_SESSION_TOKEN")) != 0)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  p->kind = SRC_ENV;
  snprintf(p->source, sizeof p->source, "environment");
  *found = 1;
  return 0;
}

static int from_profile(mt_aws_creds_provider_t *p,
                        const mt_aws_creds_opts_t *opts, char **region,
                        int *found, mt_buf_t *tried, mt_err_t *err) {
  const char *name = opts->profile, *from = "configured";
  if (name == NULL && (name = env("AWS_PROFILE")) != NULL)
    from = "from AWS_PROFILE";
  int explicit = name != NULL;
  if (name == NULL)
    name = "default";
  char *paths[2] = {shared_path("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
                    shared_path("AWS_CONFIG_FILE", "config")};
  profile_t prs[2];
  int rc = 0;
  memset(prs, 0, sizeof prs);
  if (paths[0] == NULL || paths[1] == NULL) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto done;
  }
  /* The credentials file first: where both have keys, it wins. */
  for (int i = 0; i < 2; i++)
    if ((rc = read_profile(paths[i], name, i, &prs[i], err)) != 0)
      goto done;
  if (prs[1].region != NULL && *region == NULL)
    *region = strdup(prs[1].region);
  if (!prs[0].found && !prs[1].found) {
    if (explicit)
      rc = mt_err_set(err, MT_ECONFIG,
                      "profile \"%s\" (%s) is in neither %s nor %s", name, from,
                      paths[0], paths[1]);
    else
      rc = mt_buf_printf(tried, "; shared files: no profile \"%s\" in %s or %s",
                         name, paths[0], paths[1]);
    goto done;
  }
  for (int i = 0; i < 2; i++) {
    profile_t *pr = &prs[i];
    if (!pr->found || (pr->akid == NULL && pr->secret == NULL))
      continue;
    if (pr->akid == NULL || pr->secret == NULL) {
      rc = mt_err_set(err, MT_ECONFIG, "profile \"%s\" in %s has no %s", name,
                      paths[i],
                      pr->akid ? "aws_secret_access_key" : "aws_access_key_id");
      goto done;
    }
    take_static(p, pr);
    p->kind = SRC_PROFILE;
    snprintf(p->source, sizeof p->source, "profile \"%s\" in %s", name,
             paths[i]);
    *found = 1;
    goto done;
  }
  /* No static keys: what else does the profile say? The config file's
   * settings count, then the credentials file's. */
  for (int i = 1; i >= 0; i--) {
    profile_t *pr = &prs[i];
    const char *what = NULL;
    if (pr->role_arn != NULL && pr->web_identity_token_file != NULL) {
      if (set_str(&p->role_arn, pr->role_arn) != 0 ||
          set_str(&p->token_file, pr->web_identity_token_file) != 0 ||
          set_str(&p->session_name, pr->role_session_name) != 0) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto done;
      }
      p->kind = SRC_WEB_IDENTITY;
      snprintf(p->source, sizeof p->source,
               "web identity (profile \"%s\" in %s, role %s)", name, paths[i],
               pr->role_arn);
      *found = 1;
      goto done;
    }
    if (pr->role_arn != NULL)
      what = pr->source_profile ? "role_arn with source_profile"
             : pr->credential_source
                 ? "role_arn with credential_source"
                 : "role_arn without web_identity_token_file";
    else if (pr->credential_process != NULL)
      what = "credential_process";
    else if (pr->sso != NULL)
      what = "IAM Identity Center (sso_*)";
    if (what != NULL) {
      rc = mt_err_set(
          err, MT_ECONFIG,
          "profile \"%s\" in %s uses %s, which moontask does not support; give it aws_access_key_id and aws_secret_access_key, or set the AWS_* environment variables",
          name, paths[i], what);
      goto done;
    }
  }
  rc = mt_buf_printf(tried, "; shared files: profile \"%s\" has no credentials",
                     name);
done:
  for (int i = 0; i < 2; i++) {
    profile_free(&prs[i]);
    free(paths[i]);
  }
  if (rc == MT_ENOMEM && err != NULL && err->msg[0] == '\0')
    mt_err_set(err, MT_ENOMEM, "out of memory");
  return rc;
}

static int from_web_identity(mt_aws_creds_provider_t *p, int *found,
                             mt_buf_t *tried, mt_err_t *err) {
  const char *file = env("AWS_WEB_IDENTITY_TOKEN_FILE");
  const char *role = env("AWS_ROLE_ARN");
  if (file == NULL && role == NULL)
    return mt_buf_puts(
        tried, "; web identity: AWS_WEB_IDENTITY_TOKEN_FILE is not set");
  if (file == NULL || role == NULL)
    return mt_err_set(err, MT_ECONFIG, "the environment has %s but no %s",
                      file ? "AWS_WEB_IDENTITY_TOKEN_FILE" : "AWS_ROLE_ARN",
                      file ? "AWS_ROLE_ARN" : "AWS_WEB_IDENTITY_TOKEN_FILE");
  if (set_str(&p->role_arn, role) != 0 || set_str(&p->token_file, file) != 0 ||
      set_str(&p->session_name, env("AWS_ROLE_SESSION_NAME")) != 0)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  p->kind = SRC_WEB_IDENTITY;
  snprintf(p->source, sizeof p->source, "web identity (role %s)", role);
  *found = 1;
  return 0;
}

/* Plain http is for the agent on this host only: the SDKs refuse to send
 * the authorization token anywhere else unencrypted, and so do we. */
static int container_host_allowed(const char *url) {
  static const char *const hosts[] = {"localhost", "169.254.170.2",
                                      "169.254.170.23", "[::1]",
                                      "[fd00:ec2::23]"};
  if (strncasecmp(url, "https://", 8) == 0)
    return 1;
  if (strncasecmp(url, "http://", 7) != 0)
    return 0;
  const char *host = url + 7;
  size_t len = strcspn(host, host[0] == '[' ? "]" : ":/?#");
  if (host[0] == '[' && host[len] == ']')
    len++;
  if (len > 4 && strncmp(host, "127.", 4) == 0)
    return 1;
  for (size_t i = 0; i < sizeof hosts / sizeof *hosts; i++)
    if (strlen(hosts[i]) == len && strncasecmp(host, hosts[i], len) == 0)
      return 1;
  return 0;
}

static int from_container(mt_aws_creds_provider_t *p,
                          const mt_aws_creds_opts_t *opts, int *found,
                          mt_buf_t *tried, mt_err_t *err) {
  const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  mt_buf_t url = MT_BUF_INIT;
  if (rel == NULL && full == NULL)
    return mt_buf_puts(
        tried,
        "; container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI are not set");
  if (rel != NULL) {
    const char *host =
        opts->container_host ? opts->container_host : CONTAINER_HOST;
    if (mt_buf_printf(&url, "%s%s%s", host, rel[0] == '/' ? "" : "/", rel))
      return mt_err_set(err, MT_ENOMEM, "out of memory");
  } else {
    if (!container_host_allowed(full))
      return mt_err_set(
          err, MT_ECONFIG,
          "AWS_CONTAINER_CREDENTIALS_FULL_URI %s is plain http to a host that is neither this one (loopback) nor the ECS or EKS agent; use https",
          full);
    if (mt_buf_puts(&url, full) != 0)
      return mt_err_set(err, MT_ENOMEM, "out of memory");
  }
  p->url = url.data;
  if (set_str(&p->auth_token_file,
              env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) != 0 ||
      set_str(&p->auth_token, env("AWS_CONTAINER_AUTHORIZATION_TOKEN")) != 0)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  /* The path may carry a credential id: name only where it is served. */
  const char *after_scheme = strstr(p->url, "://");
  size_t origin = after_scheme ? (size_t)(after_scheme + 3 - p->url) : 0;
  origin += strcspn(p->url + origin, "/?#");
  p->kind = SRC_CONTAINER;
  snprintf(p->source, sizeof p->source, "container credentials (%.*s)",
           (int)origin, p->url);
  *found = 1;
  return 0;
}

static int from_imds(mt_aws_creds_provider_t *p, int *found, mt_buf_t *tried,
                     mt_err_t *err) {
  const char *disabled = env("AWS_EC2_METADATA_DISABLED");
  if (disabled != NULL && strcasecmp(disabled, "true") == 0)
    return mt_buf_puts(
        tried,
        "; EC2 instance metadata: disabled by AWS_EC2_METADATA_DISABLED");
  const char *endpoint = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  const char *mode = env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
  if (endpoint == NULL)
    endpoint = mode != NULL && strcasecmp(mode, "IPv6") == 0
                   ? "http://[fd00:ec2::254]"
                   : IMDS_HOST;
  if (set_str(&p->url, endpoint) != 0)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  size_t len = strlen(p->url);
  while (len > 0 && p->url[len - 1] == '/')
    p->url[--len] = '\0';
  p->kind = SRC_IMDS;
  *found = 1;
  return 0;
}

/* STS's endpoint: the caller's, the environment's, the region's. */
static int sts_endpoint(mt_aws_creds_provider_t *p,
                        const mt_aws_creds_opts_t *opts, const char *region,
                        mt_err_t *err) {
  const char *url = opts->sts_endpoint;
  mt_buf_t b = MT_BUF_INIT;
  if (url == NULL)
    url = env("AWS_ENDPOINT_URL_STS");
  if (url == NULL)
    url = env("AWS_ENDPOINT_URL");
  int rc = url != NULL ? mt_buf_puts(&b, url)
           : region == NULL
               ? mt_buf_puts(&b, "https://sts.amazonaws.com")
               : mt_buf_printf(&b, "https://sts.%s.amazonaws.com%s", region,
                               strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
  if (rc != 0)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  p->sts_url = b.data;
  if (p->session_name == NULL) {
    char name[64];
    /* Session names show in CloudTrail: say who, and when it started. */
    snprintf(name, sizeof name, "moontask-%ld", (long)time(NULL));
    if (set_str(&p->session_name, name) != 0)
      return mt_err_set(err, MT_ENOMEM, "out of memory");
  }
  return 0;
}

int mt_aws_creds_open(const mt_aws_creds_opts_t *opts,
                      mt_aws_creds_provider_t **out, mt_err_t *err) {
  static const mt_aws_creds_opts_t defaults = {0};
  mt_aws_creds_provider_t *p = NULL;
  mt_buf_t tried = MT_BUF_INIT;
  char *region = NULL;
  int found = 0, rc = 0;
  *out = NULL;
  if (opts == NULL)
    opts = &defaults;
  if ((p = calloc(1, sizeof *p)) == NULL)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->cond, NULL);
  p->refs = 1;
  p->refresh_ahead =
      opts->refresh_ahead > 0 ? opts->refresh_ahead : DEFAULT_REFRESH_AHEAD;
  if (opts->region != NULL)
    region = strdup(opts->region);
  else if (env("AWS_REGION") != NULL)
    region = strdup(env("AWS_REGION"));
  else if (env("AWS_DEFAULT_REGION") != NULL)
    region = strdup(env("AWS_DEFAULT_REGION"));
  /* Each step either finds its source configured (found), fails because
   * it is configured wrongly (rc), or notes in `tried` why it was passed
   * over, for the message should none be configured. */
  rc = from_env(p, &found, &tried, err);
  if (rc == 0 && !found)
    rc = from_profile(p, opts, &region, &found, &tried, err);
  if (rc == 0 && !found)
    rc = from_web_identity(p, &found, &tried, err);
  if (rc == 0 && !found)
    rc = from_container(p, opts, &found, &tried, err);
  if (rc == 0 && !found)
    rc = from_imds(p, &found, &tried, err);
  if (rc == MT_ENOMEM) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto done;
  }
  if (rc != 0)
    goto done;
  if (!found) {
    rc =
        mt_err_set(err, MT_ECONFIG, "no AWS credentials found: %s", tried.data);
    goto done;
  }
  if (p->kind == SRC_WEB_IDENTITY &&
      (rc = sts_endpoint(p, opts, region, err)) != 0)
    goto done;
  if (p->kind == SRC_WEB_IDENTITY || p->kind == SRC_CONTAINER ||
      p->kind == SRC_IMDS) {
    char role[128] = "";
    mt_err_t why;
    rc = fetch(p, &p->cur, role, sizeof role, &why);
    if (rc != 0 && p->kind == SRC_IMDS) {
      /* The last resort failing means there were no credentials at all. */
      rc = mt_err_set(err, MT_ECONFIG,
                      "no AWS credentials found: %s; EC2 instance metadata: %s",
                      tried.data ? tried.data : "", why.msg);
      goto done;
    }
    if (rc != 0) {
      mt_err_set(err, rc, "%s", why.msg);
      goto done;
    }
    if (p->kind == SRC_IMDS)
      snprintf(p->source, sizeof p->source,
               "EC2 instance metadata (role %s at %s)", role, p->url);
  }
  if (p->cur.expires_at > 0) {
    schedule(p, mt_epoch_now());
    p->refs++;
    if (pthread_create(&p->thread, NULL, refresh_main, p) != 0) {
      p->refs--;
      rc = mt_err_set(
          err, MT_ESYS,
          "cannot start the thread that refreshes AWS credentials from %s: %s",
          p->source, strerror(errno));
      goto done;
    }
    p->thread_started = 1;
  }
  *out = p;
  p = NULL;
done:
  if (p != NULL)
    provider_destroy(p);
  mt_buf_free(&tried);
  free(region);
  return rc;
}

int mt_aws_creds_get(mt_aws_creds_provider_t *p, mt_aws_creds_copy_t *out,
                     mt_err_t *err) {
  int rc = 0;
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&p->lock);
  const creds_t *c = &p->cur;
  if (c->expires_at > 0 && mt_epoch_now() >= c->expires_at) {
    char when[32];
    format_time(c->expires_at, when, sizeof when);
    rc = mt_err_set(
        err, MT_ESTATE,
        "the AWS credentials from %s expired at %s, and refreshing them failed: %s",
        p->source, when,
        p->failures > 0 ? p->refresh_err.msg : "not tried yet");
    goto done;
  }
  size_t a = strlen(c->akid) + 1, s = strlen(c->secret) + 1;
  size_t t = c->token != NULL ? strlen(c->token) + 1 : 0;
  if ((out->mem = malloc(a + s + t)) == NULL) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto done;
  }
  out->mem_len = a + s + t;
  memcpy(out->mem, c->akid, a);
  memcpy(out->mem + a, c->secret, s);
  if (t > 0)
    memcpy(out->mem + a + s, c->token, t);
  out->creds.access_key_id = out->mem;
  out->creds.secret_access_key = out->mem + a;
  out->creds.session_token = t > 0 ? out->mem + a + s : NULL;
  out->expires_at = c->expires_at;
done:
  pthread_mutex_unlock(&p->lock);
  return rc;
}

void mt_aws_creds_copy_free(mt_aws_creds_copy_t *c) {
  if (c == NULL)
    return;
  if (c->mem != NULL)
    explicit_bzero(c->mem, c->mem_len);
  free(c->mem);
  memset(c, 0, sizeof *c);
}

const char *mt_aws_creds_source(const mt_aws_creds_provider_t *p) {
  return p->source;
}

void mt_aws_creds_close(mt_aws_creds_provider_t *p) {
  if (p == NULL)
    return;
  pthread_mutex_lock(&p->lock);
  p->stop = 1;
  pthread_cond_signal(&p->cond);
  /* A thread that is waiting sees stop at once and is joined; one in the
   * middle of a fetch may take its timeouts to notice, so it is let go
   * and frees the provider itself if it is the last out. */
  int started = p->thread_started, join = !p->fetching;
  pthread_mutex_unlock(&p->lock);
  if (started && join)
    pthread_join(p->thread, NULL);
  else if (started)
    pthread_detach(p->thread);
  pthread_mutex_lock(&p->lock);
  int last = --p->refs == 0;
  pthread_mutex_unlock(&p->lock);
  if (last)
    provider_destroy(p);
}
