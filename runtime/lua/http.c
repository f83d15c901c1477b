#include "lua/http.h"

#include <curl/curl.h>
#include <lauxlib.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/clock.h"
#include "lua/env.h"
#include "lua/json.h"

#define HANDLE_KEY "moontask.http.handle"     /* the registry's slot */
#define HANDLE_META "moontask.http.handle_mt" /* its metatable */
#define CALL_META "moontask.http.call"

/* A response's header block may hold this much; curl itself refuses a
 * single header line past 100 KiB. */
#define HEAD_MAX (1024 * 1024)

/* ---- libcurl, once per process ----------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

/* curl_global_init is thread-safe only from 7.84, and once is enough. (The
 * AWS client calls it too; libcurl counts the calls.) */
static void curl_init(void) {
  curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- the state's easy handle ------------------------------------------- */

static int handle_gc(lua_State *L) {
  CURL **easy = luaL_checkudata(L, 1, HANDLE_META);
  if (*easy != NULL)
    curl_easy_cleanup(*easy);
  *easy = NULL;
  return 0;
}

/* The state's easy handle, made on first use. A handle is kept for the
 * life of the state so that its connection cache, DNS cache and TLS
 * sessions serve every call the worker makes; curl_easy_reset between
 * calls clears the options and keeps those. Stack: unchanged. */
static CURL *state_handle(lua_State *L) {
  CURL *easy = NULL;
  if (lua_getfield(L, LUA_REGISTRYINDEX, HANDLE_KEY) == LUA_TUSERDATA)
    easy = *(CURL **)lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (easy != NULL)
    return easy;
  if (curl_init_result != CURLE_OK)
    luaL_error(L, "moontask.http: libcurl could not be initialised: %s",
               curl_easy_strerror(curl_init_result));
  CURL **slot = lua_newuserdatauv(L, sizeof *slot, 0);
  *slot = NULL;
  luaL_setmetatable(L, HANDLE_META);
  if ((*slot = curl_easy_init()) == NULL)
    luaL_error(L, "moontask.http: out of memory");
  lua_setfield(L, LUA_REGISTRYINDEX, HANDLE_KEY);
  return *slot;
}

/* ---- one call ---------------------------------------------------------- */

enum { STOP_NONE, STOP_DEADLINE, STOP_ABORT };

/* What one request holds outside Lua's heap. It lives in a to-be-closed
 * userdata, so it is released when the call returns or raises, whichever
 * comes first; call_release accepts a released call. */
typedef struct http_call_s {
  CURLU *url;
  struct curl_slist *headers;
  mt_buf_t sent; /* a table body, encoded */
  mt_buf_t body;
  mt_buf_t head;   /* the last response's header lines */
  size_t max_body; /* bytes */
  int too_large;   /* the body or the header block passed its limit */
  int no_memory;
  double deadline;         /* the guard's deadline; 0: none */
  const atomic_int *abort; /* the runtime's abort flag; may be NULL */
  int stopped;             /* STOP_*: why the progress callback stopped it */
  char errbuf[CURL_ERROR_SIZE];
} http_call_t;

static int call_release(lua_State *L) {
  http_call_t *c = luaL_checkudata(L, 1, CALL_META);
  curl_url_cleanup(c->url);
  c->url = NULL;
  curl_slist_free_all(c->headers);
  c->headers = NULL;
  mt_buf_free(&c->sent);
  mt_buf_free(&c->body);
  mt_buf_free(&c->head);
  return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg) {
  http_call_t *c = arg;
  size_t len = size * n;
  if (len > c->max_body - c->body.len) {
    c->too_large = 1;
    return 0;
  }
  if (mt_buf_append(&c->body, data, len) != 0) {
    c->no_memory = 1;
    return 0;
  }
  return len;
}

/* Keeps the header lines of the last response only: a redirect or a
 * "100 Continue" starts a new block with its status line. */
static size_t on_header(char *data, size_t size, size_t n, void *arg) {
  http_call_t *c = arg;
  size_t len = size * n;
  if (len >= 5 && memcmp(data, "HTTP/", 5) == 0)
    mt_buf_reset(&c->head);
  if (c->head.len + len > HEAD_MAX) {
    c->too_large = 1;
    return 0;
  }
  if (mt_buf_append(&c->head, data, len) != 0) {
    c->no_memory = 1;
    return 0;
  }
  return len;
}

/* libcurl calls this often while data moves, and about once a second
 * while it waits. The deadline is also curl's own CURLOPT_TIMEOUT_MS,
 * which is exact; the abort flag (the runtime shutting down) only this
 * sees. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow) {
  http_call_t *c = arg;
  (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
  if (c->abort != NULL && atomic_load(c->abort)) {
    c->stopped = STOP_ABORT;
    return 1;
  }
  if (c->deadline > 0 && mt_now() >= c->deadline) {
    c->stopped = STOP_DEADLINE;
    return 1;
  }
  return 0;
}

/* ---- options ----------------------------------------------------------- */

typedef struct http_opts_s {
  char method[24];
  int body;    /* stack index of the body; 0: none */
  int headers; /* stack index of the headers table; 0: none */
  double timeout;
  int json;
  lua_Integer max_body;
  lua_Integer redirects;
} http_opts_t;

static const char *const option_names[] = {"method",    "headers", "body",
                                           "timeout",   "json",    "max_body",
                                           "redirects", NULL};

/* Reads the options table at index o into *opts, refusing what it does not
 * know: a misspelt `timout` would otherwise be silently ignored. The
 * values read stay on the stack (the body, the headers table) for the
 * call to use. Stack: -> (body) (headers). */
static void read_options(lua_State *L, int o, int fixed_method, int fixed_body,
                         http_opts_t *opts) {
  if (o == 0)
    return;
  lua_pushnil(L);
  while (lua_next(L, o) != 0) {
    lua_pop(L, 1);
    const char *key =
        lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    int known = 0;
    for (const char *const *n = option_names; key != NULL && *n; n++)
      known |= strcmp(key, *n) == 0;
    if (!known) {
      luaL_argerror(L, o,
                    lua_pushfstring(L,
                                    "unknown option %s%s%s (options: "
                                    "method, headers, body, timeout, "
                                    "json, max_body, redirects)",
                                    key ? "\"" : "a key of type ",
                                    key ? key : luaL_typename(L, -1),
                                    key ? "\"" : ""));
    }
  }
  int t;
  if ((t = mt_lua_rawfield(L, o, "method")) != LUA_TNIL) {
    size_t len;
    const char *m = lua_tolstring(L, -1, &len);
    luaL_argcheck(L, !fixed_method, o,
                  "method is set by the function (use http.request)");
    luaL_argcheck(L, t == LUA_TSTRING && len >= 1 && len < sizeof opts->method,
                  o, "method must be a string such as \"PATCH\"");
    for (size_t i = 0; i < len; i++) {
      char ch = m[i];
      luaL_argcheck(L, (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z'), o,
                    "method must be letters only, such as \"PATCH\"");
      opts->method[i] = ch >= 'a' ? (char)(ch - 'a' + 'A') : ch;
    }
    opts->method[len] = '\0';
  }
  lua_pop(L, 1);
  if ((t = mt_lua_rawfield(L, o, "body")) != LUA_TNIL) {
    luaL_argcheck(L, !fixed_body, o,
                  "body is an argument of http.post, not an option");
    luaL_argcheck(L, t == LUA_TSTRING || t == LUA_TTABLE, o,
                  "body must be a string, or a table to send as JSON");
    opts->body = lua_gettop(L);
  } else {
    lua_pop(L, 1);
  }
  if ((t = mt_lua_rawfield(L, o, "headers")) != LUA_TNIL) {
    luaL_argcheck(L, t == LUA_TTABLE, o, "headers must be a table");
    opts->headers = lua_gettop(L);
  } else {
    lua_pop(L, 1);
  }
  if ((t = mt_lua_rawfield(L, o, "timeout")) != LUA_TNIL) {
    opts->timeout = lua_tonumber(L, -1);
    luaL_argcheck(L, t == LUA_TNUMBER && opts->timeout > 0, o,
                  "timeout must be a positive number of seconds");
  }
  lua_pop(L, 1);
  if ((t = mt_lua_rawfield(L, o, "json")) != LUA_TNIL) {
    luaL_argcheck(L, t == LUA_TBOOLEAN, o, "json must be true or false");
    opts->json = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  if (mt_lua_rawfield(L, o, "max_body") != LUA_TNIL) {
    int whole;
    opts->max_body = lua_tointegerx(L, -1, &whole);
    luaL_argcheck(L, whole && opts->max_body >= 0, o,
                  "max_body must be a whole number of bytes");
  }
  lua_pop(L, 1);
  if (mt_lua_rawfield(L, o, "redirects") != LUA_TNIL) {
    int whole;
    opts->redirects = lua_tointegerx(L, -1, &whole);
    luaL_argcheck(L,
                  whole && opts->redirects >= 0 &&
                      opts->redirects <= MT_HTTP_REDIRECTS_MAX,
                  o, "redirects must be a whole number from 0 to 20");
  }
  lua_pop(L, 1);
}

/* A header name is an HTTP token. */
static int token_char(unsigned char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
         (ch >= 'A' && ch <= 'Z') ||
         (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* Appends "line" to the call's header list, raising without memory. */
static void add_header(lua_State *L, http_call_t *c, const char *line) {
  struct curl_slist *l = curl_slist_append(c->headers, line);
  if (l == NULL)
    luaL_error(L, "moontask.http: out of memory");
  c->headers = l;
}

/* Turns the headers table into libcurl's list, refusing what would not be
 * one header line: a name that is not a token, a value with a line break
 * (which could smuggle in a header or a request of its own). Sets *given
 * bits for the headers the call supplies defaults for. */
enum { GIVEN_TYPE = 1, GIVEN_AGENT = 2, GIVEN_EXPECT = 4 };

static int build_headers(lua_State *L, int h, http_call_t *c) {
  int given = 0;
  lua_pushnil(L);
  while (lua_next(L, h) != 0) {
    size_t nlen, vlen;
    if (lua_type(L, -2) != LUA_TSTRING ||
        (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
      luaL_error(L,
                 "moontask.http: headers must map names to strings, not "
                 "%s to %s",
                 luaL_typename(L, -2), luaL_typename(L, -1));
    const char *name = lua_tolstring(L, -2, &nlen);
    const char *value = lua_tolstring(L, -1, &vlen);
    int ok = nlen > 0 && nlen < 256;
    for (size_t i = 0; ok && i < nlen; i++)
      ok = token_char((unsigned char)name[i]);
    if (!ok)
      luaL_error(L, "moontask.http: \"%s\" is not a header name",
                 nlen < 256 ? name : "(a very long name)");
    for (size_t i = 0; i < vlen; i++)
      if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
        luaL_error(L,
                   "moontask.http: the value of header %s holds a line break "
                   "or a NUL byte",
                   name);
    if (strcasecmp(name, "Content-Type") == 0)
      given |= GIVEN_TYPE;
    else if (strcasecmp(name, "User-Agent") == 0)
      given |= GIVEN_AGENT;
    else if (strcasecmp(name, "Expect") == 0)
      given |= GIVEN_EXPECT;
    /* "Name;" is libcurl's way to send a header with an empty value
     * ("Name:" would remove it). */
    lua_pushfstring(L, vlen > 0 ? "%s: %s" : "%s;", name, value);
    add_header(L, c, lua_tostring(L, -1));
    lua_pop(L, 2);
  }
  return given;
}

/* "https://api.example.org" or "http://127.0.0.1:8080": what messages name
 * a request by. Never its path or query, which may carry a key. */
static void origin(CURLU *u, char *out, size_t size) {
  char *scheme = NULL, *host = NULL, *port = NULL;
  curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
  curl_url_get(u, CURLUPART_HOST, &host, 0);
  curl_url_get(u, CURLUPART_PORT, &port, 0);
  snprintf(out, size, "%s://%.200s%s%s", scheme ? scheme : "?",
           host ? host : "?", port ? ":" : "", port ? port : "");
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
}

static int is_tls_error(CURLcode rc) {
  switch (rc) {
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_SHUTDOWN_FAILED:
  case CURLE_USE_SSL_FAILED: return 1;
  default: return 0;
  }
}

/* Stack: -> headers. The header lines of the response, names lower-cased,
 * a name sent more than once joined with ", " (RFC 9110 5.3). */
static void push_headers(lua_State *L, const mt_buf_t *head) {
  lua_newtable(L);
  if (head->data == NULL)
    return;
  const char *p = head->data, *end = p + head->len;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (eol == NULL)
      eol = end;
    const char *stop = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
    const char *colon = memchr(p, ':', (size_t)(stop - p));
    size_t n = colon != NULL ? (size_t)(colon - p) : 0;
    int status_line = stop - p >= 5 && memcmp(p, "HTTP/", 5) == 0;
    if (n > 0 && n < 256 && !status_line) {
      char name[256];
      for (size_t i = 0; i < n; i++)
        name[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] - 'A' + 'a' : p[i]);
      const char *v = colon + 1, *ve = stop;
      while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
      while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
      lua_pushlstring(L, name, n);
      lua_pushvalue(L, -1);
      if (lua_rawget(L, -3) == LUA_TSTRING) {
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, (size_t)(ve - v));
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, (size_t)(ve - v));
      }
      lua_rawset(L, -3);
    }
    p = eol + 1;
  }
}

/* Stack: -> nil, message, code */
static int fail(lua_State *L, const char *method, const char *where,
                const char *code, const char *fmt, const char *detail) {
  luaL_pushfail(L);
  lua_pushfstring(L, "%s %s: ", method, where);
  lua_pushfstring(L, fmt, detail);
  lua_concat(L, 2);
  lua_pushstring(L, code);
  return 3;
}

/* The one request function behind request, get and post. url at index 1;
 * the body, when the function takes it, at body_arg; options at opts_arg
 * (may be absent). fixed_method: what get and post send. */
static int do_request(lua_State *L, const char *fixed_method, int body_arg,
                      int opts_arg) {
  size_t url_len;
  const char *url = luaL_checklstring(L, 1, &url_len);
  http_opts_t o = {.max_body = -1, .redirects = MT_HTTP_REDIRECTS};
  if (!lua_isnoneornil(L, opts_arg))
    luaL_checktype(L, opts_arg, LUA_TTABLE);
  else
    opts_arg = 0;
  if (body_arg != 0) {
    int t = lua_type(L, body_arg);
    luaL_argexpected(L,
                     t == LUA_TNONE || t == LUA_TNIL || t == LUA_TSTRING ||
                         t == LUA_TTABLE,
                     body_arg, "string, table or nil");
    o.body = t == LUA_TSTRING || t == LUA_TTABLE ? body_arg : 0;
  }
  lua_settop(L, opts_arg > body_arg ? opts_arg : (body_arg > 1 ? body_arg : 1));
  read_options(L, opts_arg, fixed_method != NULL, body_arg != 0, &o);
  if (fixed_method != NULL)
    snprintf(o.method, sizeof o.method, "%s", fixed_method);
  else if (o.method[0] == '\0')
    snprintf(o.method, sizeof o.method, "%s", o.body != 0 ? "POST" : "GET");

  /* A task out of time or being aborted does not start a request. */
  mt_lua_guard_t *g = mt_lua_guard(L);
  mt_lua_guard_check(L);
  pthread_once(&curl_once, curl_init);
  CURL *easy = state_handle(L);

  http_call_t *c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, CALL_META);
  lua_toclose(L, -1);

  /* The URL is parsed here, once, for the checks and the messages; a
   * malformed one is the caller's data (from configuration, say), so it
   * fails the call rather than raising. */
  CURLUcode uc;
  if ((c->url = curl_url()) == NULL)
    return luaL_error(L, "moontask.http: out of memory");
  if ((uc = curl_url_set(c->url, CURLUPART_URL, url, 0)) != CURLUE_OK ||
      strlen(url) != url_len)
    return fail(L, o.method, "(URL)", "url", "not a valid URL: %s",
                uc != CURLUE_OK ? curl_url_strerror(uc) : "it holds a NUL");
  char where[300];
  origin(c->url, where, sizeof where);
  if (strncasecmp(where, "http://", 7) != 0 &&
      strncasecmp(where, "https://", 8) != 0)
    return fail(L, o.method, where, "url", "%s",
                "only http and https URLs are supported");

  int given = o.headers != 0 ? build_headers(L, o.headers, c) : 0;
  const char *send = NULL;
  size_t send_len = 0;
  if (o.body != 0 && lua_type(L, o.body) == LUA_TTABLE) {
    mt_err_t err;
    if (mt_json_encode(L, o.body, &c->sent, &err) != 0)
      return luaL_error(L, "moontask.http: the body cannot be sent as JSON: %s",
                        err.msg);
    send = c->sent.data;
    send_len = c->sent.len;
    if (!(given & GIVEN_TYPE))
      add_header(L, c, "Content-Type: application/json");
  } else if (o.body != 0) {
    send = lua_tolstring(L, o.body, &send_len);
  }
  /* curl waits up to a second for "100 Continue" before a large body,
   * which many servers never send. */
  if (!(given & GIVEN_EXPECT))
    add_header(L, c, "Expect:");

  /* The call's time: the task's remaining time, or the call's own timeout
   * when that is shorter. Which of the two binds decides what running out
   * means: the call's own returns nil, "timeout"; the task's ends the
   * task, as any other code past its deadline does. */
  double limit, now = mt_now();
  int task_bound = g->deadline > 0;
  if (task_bound) {
    limit = g->deadline - now;
    if (o.timeout > 0 && o.timeout < limit) {
      limit = o.timeout;
      task_bound = 0;
    }
  } else {
    limit = o.timeout > 0 ? o.timeout : MT_HTTP_DEFAULT_TIMEOUT;
  }
  long limit_ms = limit * 1000 < 1 ? 1 : (long)ceil(limit * 1000);
  size_t max_body = o.max_body >= 0 ? (size_t)o.max_body : MT_HTTP_MAX_BODY;
  if (g->limit > 0 && max_body > g->limit)
    max_body = g->limit; /* it could never be held anyway */
  c->max_body = max_body;
  c->deadline = g->deadline;
  c->abort = g->abort;

  curl_easy_reset(easy);
  curl_easy_setopt(easy, CURLOPT_URL, url);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, o.redirects > 0 ? 1L : 0L);
  curl_easy_setopt(easy, CURLOPT_MAXREDIRS, (long)o.redirects);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, limit_ms);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, limit_ms);
  curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(easy, CURLOPT_XFERINFODATA, c);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, c);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, c);
  curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_body);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, c->errbuf);
  /* Compressed answers are welcome; max_body counts what they inflate
   * to, so a small compressed bomb is refused like a big body. */
  curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
  if (!(given & GIVEN_AGENT))
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "moontask");
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, c->headers);
  if (strcmp(o.method, "HEAD") == 0) {
    curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
  } else if (strcmp(o.method, "GET") == 0 && send == NULL) {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  } else {
    if (send != NULL || strcmp(o.method, "POST") == 0) {
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)send_len);
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, send != NULL ? send : "");
    }
    if (strcmp(o.method, "POST") != 0)
      curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, o.method);
  }

  CURLcode rc = curl_easy_perform(easy);
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  /* The handle must not keep pointers into this call's buffers. */
  curl_easy_reset(easy);

  /* Out of the task's time, or aborted: the task ends here, as it would
   * anywhere else (curl's timer may fire a hair before our clock agrees,
   * so a timeout bound by the task's deadline counts as reaching it). */
  if (((task_bound && rc == CURLE_OPERATION_TIMEDOUT) ||
       c->stopped == STOP_DEADLINE) &&
      g->stopping == MT_LUA_RUNNING)
    g->stopping = MT_LUA_TIMED_OUT;
  mt_lua_guard_check(L);
  if (c->no_memory)
    return luaL_error(L, "moontask.http: out of memory");

  if (rc != CURLE_OK) {
    const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
    char secs[64];
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      snprintf(secs, sizeof secs, "%g", limit);
      return fail(L, o.method, where, "timeout", "timed out after %ss", secs);
    }
    if (c->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
      snprintf(secs, sizeof secs, "%zu", max_body);
      return fail(L, o.method, where, "too_large",
                  "the response is larger than %s bytes (max_body)", secs);
    }
    if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY)
      return fail(L, o.method, where, "resolve", "%s", detail);
    if (rc == CURLE_COULDNT_CONNECT)
      return fail(L, o.method, where, "connect", "%s", detail);
    if (is_tls_error(rc))
      return fail(L, o.method, where, "tls", "TLS: %s", detail);
    if (rc == CURLE_TOO_MANY_REDIRECTS)
      return fail(L, o.method, where, "redirects", "%s", detail);
    if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL)
      return fail(L, o.method, where, "url", "%s", detail);
    return fail(L, o.method, where, "transfer", "%s", detail);
  }

  /* Stack: -> res */
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  push_headers(L, &c->head);
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, c->body.data != NULL ? c->body.data : "", c->body.len);
  lua_setfield(L, -2, "body");
  if (o.json && c->body.len > 0) {
    mt_err_t err;
    if (mt_json_decode(L, c->body.data, c->body.len, &err) != 0) {
      char what[64];
      snprintf(what, sizeof what,
               "the response (status %ld) is not JSON: ", status);
      lua_pushstring(L, err.msg);
      return fail(L, o.method, where, "json", "%s",
                  lua_pushfstring(L, "%s%s", what, lua_tostring(L, -1)));
    }
    lua_setfield(L, -2, "json");
  }
  return 1;
}

/* http.request(url [, opts]) -> res | nil, message, code */
static int http_request(lua_State *L) { return do_request(L, NULL, 0, 2); }

/* http.get(url [, opts]) */
static int http_get(lua_State *L) { return do_request(L, "GET", 0, 2); }

/* http.post(url, body [, opts]): body a string, or a table sent as JSON */
static int http_post(lua_State *L) { return do_request(L, "POST", 2, 3); }

static const luaL_Reg http_funcs[] = {{"request", http_request},
                                      {"get", http_get},
                                      {"post", http_post},
                                      {NULL, NULL}};

static const luaL_Reg call_meta[] = {
    {"__close", call_release}, {"__gc", call_release}, {NULL, NULL}};

int mt_lua_http_open(lua_State *L) {
  pthread_once(&curl_once, curl_init);
  /* The metatables of what no script ever sees: the state's handle and a
   * call's buffers. Hidden all the same. */
  luaL_newmetatable(L, CALL_META);
  luaL_setfuncs(L, call_meta, 0);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  luaL_newmetatable(L, HANDLE_META);
  lua_pushcfunction(L, handle_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);
  luaL_newlib(L, http_funcs);
  return 1;
}
