/*
 * moontask.http against a local server this test starts
 * (toolkit_http_server.py): methods, headers, bodies as text and as JSON,
 * JSON decoding, redirects, the body limit, and the time limits: a call's
 * own timeout returns nil, "timeout" promptly, while the task's deadline
 * and the runtime's abort end the task, however slow the server.
 */
#include <pthread.h>

#include "../aws/fake_server.h"
#include "common/clock.h"
#include "test.h"
#include "toolkit_test.h"

#define SERVER "../unit/toolkit_http_server.py"

static fake_server_t server;
static char base[64];

/* Starts the server (its URL in base) and a sandboxed state. */
static void start(kit_t *k) {
  fake_server_start(&server, SERVER, NULL);
  snprintf(base, sizeof base, "http://127.0.0.1:%d", server.port);
  kit_open(k, "/nonexistent", NULL, NULL);
}

static void stop(kit_t *k) {
  kit_close(k);
  fake_server_stop(&server);
}

/* Runs a snippet with the server's URL as the local BASE; returns the
 * string it returns. */
static const char *run(kit_t *k, const char *body) {
  char src[4096];
  snprintf(src, sizeof src, "local BASE = '%s'\n%s", base, body);
  return kit_string(k, src);
}

static void ok(kit_t *k, const char *body) {
  char src[4096];
  snprintf(src, sizeof src, "local BASE = '%s'\n%s", base, body);
  kit_ok(k, src);
}

TEST(http_get_decodes_json_faithfully) {
  kit_t k;
  start(&k);
  ok(&k, "local res, err = moontask.http.get(BASE .. '/json', { json = true "
         "})\n"
         "assert(res, err)\n"
         "assert(res.status == 200, res.status)\n"
         "assert(res.headers['content-type'] == 'application/json')\n"
         "local j = res.json\n"
         "assert(math.type(j.id) == 'integer' and j.id == 42)\n"
         "assert(j.big == 9007199254740993, 'lost digits: ' .. "
         "tostring(j.big))\n"
         "assert(json.is_array(j.list) and not json.is_array(j.obj))\n"
         "assert(j.none == json.null and j.name == 'caf\\u{e9}')\n"
         "assert(moontask.json.encode(j.list) == '[]')\n"
         /* The raw text stays, for signatures over it. */
         "assert(res.body:find('9007199254740993', 1, true))\n"
         /* Without json = true, no decoding. */
         "assert(moontask.http.get(BASE .. '/json').json == nil)\n");
  stop(&k);
}

TEST(http_post_sends_a_table_as_json) {
  kit_t k;
  start(&k);
  ok(&k, "local res, err = moontask.http.post(BASE .. '/echo',\n"
         "  { amount = 2500, tags = json.array(), meta = {} }, { json = true "
         "})\n"
         "assert(res, err)\n"
         "local got = res.json\n"
         "assert(got.method == 'POST', got.method)\n"
         "assert(got.headers['content-type'] == 'application/json')\n"
         "assert(got.body == '{\"amount\":2500,\"meta\":{},\"tags\":[]}', "
         "got.body)\n"
         "assert(got.headers['user-agent'] == 'moontask')\n"
         "assert(got.headers['expect'] == nil, 'asked for 100-continue')\n");
  stop(&k);
}

TEST(http_methods_headers_and_string_bodies) {
  kit_t k;
  start(&k);
  ok(&k,
     "local http = moontask.http\n"
     "local res = assert(http.request(BASE .. '/echo', { method = 'put',\n"
     "  body = 'plain text', headers = { ['Content-Type'] = 'text/plain',\n"
     "  ['X-Signature'] = 'abc123', ['X-Empty'] = '' }, json = true }))\n"
     "local got = res.json\n"
     "assert(got.method == 'PUT' and got.body == 'plain text')\n"
     "assert(got.headers['content-type'] == 'text/plain')\n"
     "assert(got.headers['x-signature'] == 'abc123')\n"
     "assert(got.headers['x-empty'] == '', 'empty header not sent')\n"
     "got = assert(http.request(BASE .. '/echo', { method = 'DELETE', json = "
     "true })).json\n"
     "assert(got.method == 'DELETE' and got.body == '')\n"
     "got = assert(http.request(BASE .. '/echo', { method = 'PATCH',\n"
     "  body = { n = 1 }, json = true })).json\n"
     "assert(got.method == 'PATCH' and got.body == '{\"n\":1}')\n"
     /* A body alone makes a POST. */
     "got = assert(http.request(BASE .. '/echo', { body = 'x', json = true "
     "})).json\n"
     "assert(got.method == 'POST')\n"
     "local head = assert(http.request(BASE .. '/json', { method = 'HEAD' "
     "}))\n"
     "assert(head.status == 200 and head.body == '')\n"
     "assert(http.get(BASE .. '/echo', { headers = { ['User-Agent'] = 'me' "
     "},\n"
     "  json = true }).json.headers['user-agent'] == 'me')\n");
  stop(&k);
}

TEST(http_statuses_and_response_headers) {
  kit_t k;
  start(&k);
  ok(&k, "local http = moontask.http\n"
         /* A status is an answer, not a failure. */
         "local res, err = http.get(BASE .. '/status/404')\n"
         "assert(res and res.status == 404 and res.body == 'status 404', "
         "err)\n"
         "assert(http.post(BASE .. '/status/503', '').status == 503)\n"
         "local h = http.get(BASE .. '/headers').headers\n"
         "assert(h['x-multi'] == 'one, two', h['x-multi'])\n"
         "assert(h['x-mixed-case'] == 'padded', h['x-mixed-case'])\n"
         "assert(h['content-length'] == '2')\n");
  stop(&k);
}

TEST(http_redirects_are_followed_and_limited) {
  kit_t k;
  start(&k);
  ok(&k, "local http = moontask.http\n"
         "local res = assert(http.get(BASE .. '/redirect/5'))\n"
         "assert(res.status == 200 and res.body == 'arrived')\n"
         "local none, err, code = http.get(BASE .. '/redirect/6')\n"
         "assert(none == nil and code == 'redirects', tostring(code))\n"
         "assert(err:find('^GET http://127.0.0.1:%d+: '), err)\n"
         "res = assert(http.get(BASE .. '/redirect/1', { redirects = 0 }))\n"
         "assert(res.status == 302 and res.headers.location == "
         "'/redirect/0')\n"
         "res = assert(http.get(BASE .. '/redirect/7', { redirects = 8 }))\n"
         "assert(res.status == 200)\n");
  stop(&k);
}

TEST(http_response_body_is_limited) {
  kit_t k;
  start(&k);
  ok(&k,
     "local http = moontask.http\n"
     "for _, path in ipairs({ '/big?n=2048', '/chunked?n=2048' }) do\n"
     "  local res, err, code = http.get(BASE .. path, { max_body = 1024 })\n"
     "  assert(res == nil and code == 'too_large', path .. ': ' .. "
     "tostring(code))\n"
     "  assert(err:find('larger than 1024 bytes (max_body)', 1, true), err)\n"
     "  res = assert(http.get(BASE .. path, { max_body = 2048 }))\n"
     "  assert(#res.body == 2048)\n"
     "end\n"
     /* The default: 10 MiB. */
     "local res, err, code = http.get(BASE .. '/chunked?n=' .. (10 * 1024 * "
     "1024 + 1))\n"
     "assert(code == 'too_large', tostring(code))\n"
     "assert(#assert(http.get(BASE .. '/big?n=' .. 10 * 1024 * 1024)).body "
     "== 10 * 1024 * 1024)\n");
  stop(&k);
}

TEST(http_json_option_refuses_what_is_not_json) {
  kit_t k;
  start(&k);
  const char *err =
      run(&k, "local res, err, code = moontask.http.get(BASE .. '/notjson', "
              "{ json = true })\n"
              "assert(res == nil and code == 'json', tostring(code))\n"
              "return err\n");
  if (strstr(err, "GET http://127.0.0.1:") == NULL ||
      strstr(err, ": the response (status 200) is not JSON: ") == NULL)
    MT__FAIL("message: %s", err);
  stop(&k);
}

TEST(http_call_timeout_returns_nil_promptly) {
  kit_t k;
  start(&k);
  double begin = mt_now();
  const char *out =
      run(&k, "local t0 = os.clock()\n"
              "local res, err, code = moontask.http.get(BASE .. '/slow?s=10', "
              "{ timeout = 0.3 })\n"
              "assert(res == nil and code == 'timeout', tostring(code))\n"
              /* The handler carries on after its own timeout. */
              "return err\n");
  double took = mt_now() - begin;
  if (strstr(out, ": timed out after 0.3s") == NULL)
    MT__FAIL("message: %s", out);
  fprintf(stderr, "a call's 0.3 s timeout returned after %.3f s\n", took);
  ASSERT_TRUE(took >= 0.29 && took < 1.0);
  stop(&k);
}

/* The slow server runs past the task's deadline: the task ends there, as
 * any code past its deadline does ("timed out"), whether the server sends
 * nothing or keeps sending. */
TEST(http_task_deadline_ends_the_task) {
  kit_t k;
  start(&k);
  const char *paths[] = {"/slow?s=10", "/drip?s=10"};
  for (size_t i = 0; i < 2; i++) {
    char src[512];
    mt_err_t err;
    snprintf(src, sizeof src,
             "local ok, e = pcall(moontask.http.get, '%s%s')\n"
             "return 'the handler went on after its deadline'\n",
             base, paths[i]);
    double begin = mt_now();
    int rc = kit_run(&k, src, 0.5, 1, &err);
    double took = mt_now() - begin;
    fprintf(stderr, "%s: a task with 0.5 s left ended after %.3f s\n", paths[i],
            took);
    if (rc == 0)
      MT__FAIL("%s: the task went on: %s", paths[i], lua_tostring(k.L, -1));
    if (strstr(err.msg, "timed out") == NULL)
      MT__FAIL("%s: %s", paths[i], err.msg);
    ASSERT_TRUE(took >= 0.49 && took < 0.8);
  }
  stop(&k);
}

static void *raise_abort(void *arg) {
  struct timespec ts = {0, 300 * 1000 * 1000};
  nanosleep(&ts, NULL);
  atomic_store((atomic_int *)arg, 1);
  return NULL;
}

TEST(http_abort_flag_stops_the_call) {
  kit_t k;
  start(&k);
  pthread_t t;
  mt_err_t err;
  char src[256];
  snprintf(src, sizeof src, "return moontask.http.get('%s/slow?s=10')", base);
  ASSERT_EQ_INT(0, pthread_create(&t, NULL, raise_abort, &k.abort));
  double begin = mt_now();
  int rc = kit_run(&k, src, 20, 1, &err);
  double took = mt_now() - begin;
  pthread_join(t, NULL);
  fprintf(stderr, "aborted 0.3 s in, the call ended after %.3f s\n", took);
  ASSERT_TRUE(rc != 0);
  if (strstr(err.msg, "shutting down") == NULL)
    MT__FAIL("%s", err.msg);
  /* libcurl calls the progress callback about once a second while the
   * server sends nothing. */
  ASSERT_TRUE(took < 1.6);
  stop(&k);
}

TEST(http_connection_failures_are_nil_err) {
  kit_t k;
  start(&k);
  char src[1024];
  int closed = fake_server_closed_port();
  snprintf(src, sizeof src,
           "local res, err, code = moontask.http.get("
           "'http://127.0.0.1:%d/secret/path?key=sk_live_abc')\n"
           "assert(res == nil and code == 'connect', tostring(code))\n"
           "return err\n",
           closed);
  const char *err = kit_string(&k, src);
  char want[64];
  snprintf(want, sizeof want, "GET http://127.0.0.1:%d: ", closed);
  if (strstr(err, want) == NULL)
    MT__FAIL("\"%s\" lacks \"%s\"", err, want);
  /* The path and query (which may carry a key) are never in a message. */
  ASSERT_TRUE(strstr(err, "sk_live_abc") == NULL);
  ASSERT_TRUE(strstr(err, "/secret") == NULL);
  /* .invalid never resolves (RFC 6761). */
  err = kit_string(&k, "local res, err, code = moontask.http.get("
                       "'http://moontask-test.invalid/', { timeout = 5 })\n"
                       "assert(res == nil and code == 'resolve', "
                       "tostring(code) .. ': ' .. tostring(err))\n"
                       "return err\n");
  ASSERT_TRUE(strstr(err, "GET http://moontask-test.invalid: ") != NULL);
  stop(&k);
}

TEST(http_tls_certificates_are_verified) {
  char folder[] = "/tmp/mt-unit-tls.XXXXXX";
  ASSERT_TRUE(mkdtemp(folder) != NULL);
  const char *args[] = {"--tls-dir", folder, NULL};
  fake_server_start(&server, SERVER, args);
  kit_t k;
  kit_open(&k, "/nonexistent", NULL, NULL);
  char src[512];
  snprintf(src, sizeof src,
           "local res, err, code = moontask.http.get('https://127.0.0.1:%d/"
           "json')\n"
           "assert(res == nil and code == 'tls', tostring(code) .. ': ' .. "
           "tostring(err))\n"
           "return err\n",
           server.port);
  const char *err = kit_string(&k, src);
  if (strstr(err, ": TLS: ") == NULL)
    MT__FAIL("message: %s", err);
  kit_close(&k);
  fake_server_stop(&server);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", folder);
  ASSERT_EQ_INT(0, system(cmd));
}

TEST(http_bad_urls_fail_the_call) {
  kit_t k;
  kit_open(&k, "/nonexistent", NULL, NULL);
  kit_ok(&k, "local http = moontask.http\n"
             "for _, url in ipairs({ 'ftp://example.org/x', "
             "'file:///etc/passwd',\n"
             "    'not a url', '', 'gopher://x', 'http://' }) do\n"
             "  local res, err, code = http.get(url)\n"
             "  assert(res == nil and code == 'url', url .. ': ' .. "
             "tostring(code))\n"
             "  assert(not err:find('passwd'), err)\n"
             "end\n");
  kit_close(&k);
}

TEST(http_misuse_raises) {
  kit_t k;
  kit_open(&k, "/nonexistent", NULL, NULL);
  const char *cases[][2] = {
      {"moontask.http.get()", "bad argument #1 to 'get'"},
      {"moontask.http.get('http://x', 5)", "bad argument #2 to 'get'"},
      {"moontask.http.get('http://x', { timout = 1 })",
       "unknown option \"timout\""},
      {"moontask.http.get('http://x', { method = 'POST' })",
       "method is set by the function"},
      {"moontask.http.request('http://x', { method = 'GE T' })",
       "method must be letters only"},
      {"moontask.http.request('http://x', { body = 5 })",
       "body must be a string, or a table to send as JSON"},
      {"moontask.http.request('http://x', { timeout = 0 })",
       "timeout must be a positive number of seconds"},
      {"moontask.http.request('http://x', { max_body = -1 })",
       "max_body must be a whole number of bytes"},
      {"moontask.http.request('http://x', { redirects = 21 })",
       "redirects must be a whole number from 0 to 20"},
      {"moontask.http.request('http://x', { json = 'yes' })",
       "json must be true or false"},
      {"moontask.http.request('http://x', { headers = "
       "{ ['X-A'] = 'a\\r\\nX-Injected: 1' } })",
       "the value of header X-A holds a line break"},
      {"moontask.http.request('http://x', { headers = { ['Bad Name'] = 'a' "
       "} })",
       "\"Bad Name\" is not a header name"},
      {"moontask.http.request('http://x', { headers = { 'a' } })",
       "headers must map names to strings"},
      {"moontask.http.post('http://x', { f = print })",
       "the body cannot be sent as JSON"},
      {"moontask.http.post('http://x', 'b', { body = 'c' })",
       "body is an argument of http.post"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    kit_raises(&k, cases[i][0], cases[i][1]);
  kit_close(&k);
}
