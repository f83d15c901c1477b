/*
 * The AWS backend's HTTP client (runtime/aws/http.h) on a real libuv loop,
 * against tests/aws/fake_http.py on 127.0.0.1: which answers are retried
 * and how often, that prepare runs before every attempt, that backoff
 * ceilings grow, timeouts and their message, counts per operation, reused
 * connections, cancellation by mt_http_free, and the blocking fetch.
 *
 * No assertion holds time to a tight bound: the cases count attempts and
 * order events, and check waits only from below (a timer never fires
 * early). An alarm ends a case whose awaited event never comes; the server
 * goes with it (tests/aws/fake_server.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "../aws/fake_server.h"
#include "aws/http.h"
#include "common/buf.h"
#include "common/error.h"
#include "test.h"

#define WATCHDOG_SECONDS 60

typedef struct result_s {
  int calls;
  int rc;
  long status;
  int attempts;
  char content_type[128];
  char request_id[128];
  mt_buf_t body;
  char err[MT_ERR_MAX];
} result_t;

static void on_done(int rc, mt_http_resp_t *resp, const mt_err_t *err,
                    void *arg) {
  result_t *r = arg;
  r->calls++;
  r->rc = rc;
  r->status = resp->status;
  r->attempts = resp->attempts;
  snprintf(r->content_type, sizeof r->content_type, "%s", resp->content_type);
  snprintf(r->request_id, sizeof r->request_id, "%s", resp->request_id);
  mt_buf_free(&r->body);
  r->body = resp->body; /* moved out, as the header allows */
  resp->body = (mt_buf_t)MT_BUF_INIT;
  snprintf(r->err, sizeof r->err, "%s", err->msg);
}

/* Sends req and runs the loop until its callback came. out holds the
 * previous run's result, or zeroes. */
static void run(uv_loop_t *loop, mt_http_t *h, const mt_http_req_t *req,
                result_t *out) {
  mt_err_t err;
  mt_buf_free(&out->body);
  memset(out, 0, sizeof *out);
  int rc = mt_http_send(h, req, on_done, out, &err);
  if (rc != 0)
    MT__FAIL("mt_http_send: %s", err.msg);
  while (out->calls == 0 && uv_run(loop, UV_RUN_ONCE) != 0)
    ;
  ASSERT_EQ_INT(out->calls, 1);
}

/* Frees the client, lets its handles close, and checks none is left. */
static void close_client(uv_loop_t *loop, mt_http_t *h) {
  mt_http_free(h);
  uv_run(loop, UV_RUN_DEFAULT);
  ASSERT_EQ_INT(uv_loop_close(loop), 0);
}

static mt_http_t *open_client(uv_loop_t *loop, const mt_http_opts_t *opts) {
  mt_http_t *h = NULL;
  mt_err_t err;
  alarm(WATCHDOG_SECONDS);
  ASSERT_EQ_INT(uv_loop_init(loop), 0);
  if (mt_http_new(loop, opts, &h, &err) != 0)
    MT__FAIL("mt_http_new: %s", err.msg);
  return h;
}

/* Short backoff so that five attempts take well under a second. */
static const mt_http_opts_t fast = {.backoff_base_ms = 5, .backoff_cap_ms = 50};

static void seq_url(char *url, size_t cap, const fake_server_t *s,
                    const char *key, const char *codes, const char *body) {
  snprintf(url, cap, "http://127.0.0.1:%d/seq?key=%s&codes=%s%s%s", s->port,
           key, codes, body ? "&body=" : "", body ? body : "");
}

/* Counts prepare calls and tags each attempt with its number. */
typedef struct prep_s {
  int calls;
  uint64_t at[16]; /* uv_hrtime() of each call */
} prep_t;

static int prepare_count(const mt_http_req_t *req, mt_http_headers_t *add,
                         void *arg, mt_err_t *err) {
  (void)req;
  (void)err;
  prep_t *p = arg;
  char n[16];
  if (p->calls < 16)
    p->at[p->calls] = uv_hrtime();
  p->calls++;
  snprintf(n, sizeof n, "%d", p->calls);
  ASSERT_EQ_INT(add->n, 0); /* each attempt starts afresh */
  return mt_http_headers_add(add, "X-Attempt", n);
}

static uint64_t stat_of(mt_http_t *h, const char *op, int which) {
  mt_http_stat_t st[16];
  size_t n = mt_http_stats(h, st, 16);
  for (size_t i = 0; i < n && i < 16; i++)
    if (strcmp(st[i].op, op) == 0)
      return which == 0   ? st[i].attempts
             : which == 1 ? st[i].retries
                          : st[i].errors;
  MT__FAIL("no stats for %s", op);
}

TEST(http_retry_500_then_200) {
  fake_server_t s;
  uv_loop_t loop;
  result_t r = {0};
  prep_t p = {0};
  char url[256];
  fake_server_start(&s, "fake_http.py", NULL);
  mt_http_t *h = open_client(&loop, &fast);
  seq_url(url, sizeof url, &s, "a", "500,200", NULL);
  mt_http_req_t req = {.url = url,
                       .op = "test.seq",
                       .prepare = prepare_count,
                       .prepare_arg = &p};
  run(&loop, h, &req, &r);
  ASSERT_EQ_INT(r.rc, 0);
  ASSERT_EQ_INT(r.status, 200);
  ASSERT_EQ_INT(r.attempts, 2);
  ASSERT_EQ_INT(p.calls, 2);
  ASSERT_EQ_STR(r.content_type, "application/json");
  ASSERT_EQ_STR(r.request_id, "req-a-2");
  ASSERT_TRUE(strstr(r.body.data, "\"n\": 2") != NULL);
  /* The second attempt carried its own header, not the first one's too. */
  ASSERT_TRUE(strstr(r.body.data, "\"attempt\": \"2\"") != NULL);
  ASSERT_EQ_INT(stat_of(h, "test.seq", 0), 2);
  ASSERT_EQ_INT(stat_of(h, "test.seq", 1), 1);
  ASSERT_EQ_INT(stat_of(h, "test.seq", 2), 0);
  mt_buf_free(&r.body);
  close_client(&loop, h);
  fake_server_stop(&s);
}

TEST(http_retries_stop_at_max_attempts) {
  fake_server_t s;
  uv_loop_t loop;
  result_t r = {0};
  prep_t p = {0};
  char url[256];
  fake_server_start(&s, "fake_http.py", NULL);
  mt_http_t *h = open_client(&loop, &fast);
  /* The client's default: five attempts. */
  seq_url(url, sizeof url, &s, "b", "503", NULL);
  mt_http_req_t req = {.url = url,
                       .op = "test.always503",
                       .prepare = prepare_count,
                       .prepare_arg = &p};
  run(&loop, h, &req, &r);
  ASSERT_EQ_INT(r.rc, 0); /* a response came: the status tells */
  ASSERT_EQ_INT(r.status, 503);
  ASSERT_EQ_INT(r.attempts, 5);
  ASSERT_EQ_INT(p.calls, 5);
  /* A request's own limit wins over the client's. */
  p.calls = 0;
  seq_url(url, sizeof url, &s, "c", "500", NULL);
  req.max_attempts = 2;
  run(&loop, h, &req, &r);
  ASSERT_EQ_INT(r.status, 500);
  ASSERT_EQ_INT(r.attempts, 2);
  ASSERT_EQ_INT(p.calls, 2);
  ASSERT_EQ_INT(stat_of(h, "test.always503", 0), 7);
  ASSERT_EQ_INT(stat_of(h, "test.always503", 1), 5);
  ASSERT_EQ_INT(stat_of(h, "test.always503", 2), 2);
  mt_buf_free(&r.body);
  close_client(&loop, h);
  fake_server_stop(&s);
}

TEST(http_retry_429_and_aws_throttling) {
  fake_server_t s;
  uv_loop_t loop;
  result_t r = {0};
  char url[256];
  fake_server_start(&s, "fake_http.py", NULL);
  mt_http_t *h = open_client(&loop, &fast);
  mt_http_req_t req = {.url = url, .op = "test.throttle"};
  seq_url(url, sizeof url, &s, "t429", "429,429,200", NULL);
  run(&loop, h, &req, &r);
  ASSERT_EQ_INT(r.status, 200);
  ASSERT_EQ_INT(r.attempts, 3);
  /* AWS's throttling comes as a 400 naming its code in the body. */
  seq_url(url, sizeof url, &s, "tjson", "400,200", "throttle-json");
  run(&loop, h, &req, &r);
  ASSERT_EQ_INT(r.status, 200);
  ASSERT_EQ_INT(r.attempts, 2);
  seq_url(url, sizeof url, &s, "txml", "400,400,200", "throttle-xml");
  run(&loop, h, &req, &r);
  ASSERT_EQ_INT(r.status, 200);
  ASSERT_EQ_INT(r.attempts, 3);
  mt_buf_free(&r.body);
  close_client(&loop, h);
  fake_server_stop(&s);
}

TEST(http_non_retryable_400_returns_at_once) {
  fake_server_t s;
  uv_loop_t loop;
  result_t r = {0};
  prep_t p = {0};
  char url[256];
  fake_server_start(&s, "fake_http.py", NULL);
  mt_http_t *h = open_client(&loop, &fast);
  seq_url(url, sizeof url, &s, "v", "400,200", "invalid-json");
  mt_http_req_t req = {.url = url,
                       .op = "test.invalid",
                       .prepare = prepare_count,
                       .prepare_arg = &p};
  run(&loop, h, &req, &r);
  ASSERT_EQ_INT(r.rc, 0);
  ASSERT_EQ_INT(r.status, 400);
  ASSERT_EQ_INT(r.attempts, 1);
  ASSERT_EQ_INT(p.calls, 1);
  ASSERT_TRUE(strstr(r.body.data, "InvalidParameterValue") != NULL);
  ASSERT_EQ_INT(stat_of(h, "test.invalid", 2), 1);
  /* The server saw one request for the key: the next one gets its 200. */
  run(&loop, h, &req, &r);
  ASSERT_EQ_INT(r.status, 200);
  ASSERT_TRUE(strstr(r.body.data, "\"n\": 2") != NULL);
  mt_buf_free(&r.body);
  close_client(&loop, h);
  fake_server_stop(&s);
}

static int retry_409(const mt_http_resp_t *resp) { return resp->status == 409; }

static int retry_nothing(const mt_http_resp_t *resp) {
  (void)resp;
  return 0;
}

TEST(http_caller_classifier) {
  fake_server_t s;
  uv_loop_t loop;
  result_t r = {0};
  char url[256];
  fake_server_start(&s, "fake_http.py", NULL);
  mt_http_t *h = open_client(&loop, &fast);
  seq_url(url, sizeof url, &s, "k409", "409,200", NULL);
  mt_http_req_t req = {.url = url, .retryable = retry_409};
  run(&loop, h, &req, &r);
  ASSERT_EQ_INT(r.status, 200);
  ASSERT_EQ_INT(r.attempts, 2);
  /* A classifier that sees no throttling in a ThrottlingException body is
   * obeyed; 5xx and 429 stay retried whatever it says. */
  req.retryable = retry_nothing;
  seq_url(url, sizeof url, &s, "knot", "400,200", "throttle-json");
  run(&loop, h, &req, &r);
  ASSERT_EQ_INT(r.status, 400);
  ASSERT_EQ_INT(r.attempts, 1);
  seq_url(url, sizeof url, &s, "k5xx", "502,200", NULL);
  run(&loop, h, &req, &r);
  ASSERT_EQ_INT(r.status, 200);
  ASSERT_EQ_INT(r.attempts, 2);
  /* Stats under "other" when the request has no label. */
  ASSERT_EQ_INT(stat_of(h, "other", 0), 5);
  mt_buf_free(&r.body);
  close_client(&loop, h);
  fake_server_stop(&s);
}

static double almost_one(void *arg) {
  (void)arg;
  return 0.999;
}

TEST(http_backoff_grows) {
  fake_server_t s;
  uv_loop_t loop;
  result_t r = {0};
  prep_t p = {0};
  char url[256];
  fake_server_start(&s, "fake_http.py", NULL);
  /* Jitter pinned near its top: each wait is its ceiling, 100 ms doubling,
   * longer than a request to the fake takes, so that the gaps between
   * attempts grow as the waits do. */
  mt_http_opts_t opts = {
      .backoff_base_ms = 100, .backoff_cap_ms = 10000, .random = almost_one};
  mt_http_t *h = open_client(&loop, &opts);
  seq_url(url, sizeof url, &s, "g", "500", NULL);
  mt_http_req_t req = {.url = url,
                       .max_attempts = 4,
                       .prepare = prepare_count,
                       .prepare_arg = &p};
  run(&loop, h, &req, &r);
  ASSERT_EQ_INT(r.attempts, 4);
  ASSERT_EQ_INT(p.calls, 4);
  uint64_t prev = 0;
  for (int i = 1; i < 4; i++) {
    uint64_t gap_ms = (p.at[i] - p.at[i - 1]) / 1000000;
    uint64_t ceiling = mt_http_backoff_ms(100, 10000, i, 0.999);
    if (gap_ms < ceiling)
      MT__FAIL("attempt %d came %llu ms after the one before, not %llu", i + 1,
               (unsigned long long)gap_ms, (unsigned long long)ceiling);
    /* Each wait's floor is twice the one before: the gaps grow. */
    ASSERT_TRUE(gap_ms > prev);
    prev = gap_ms;
  }
  mt_buf_free(&r.body);
  close_client(&loop, h);
  fake_server_stop(&s);
}

TEST(http_backoff_full_jitter) {
  /* Ceilings: base * 2^(attempt-1), capped. */
  ASSERT_EQ_INT(mt_http_backoff_ms(100, 20000, 1, 0.9999999), 99);
  ASSERT_EQ_INT(mt_http_backoff_ms(100, 20000, 2, 0.9999999), 199);
  ASSERT_EQ_INT(mt_http_backoff_ms(100, 20000, 8, 0.9999999), 12799);
  ASSERT_EQ_INT(mt_http_backoff_ms(100, 20000, 9, 0.9999999), 19999);
  ASSERT_EQ_INT(mt_http_backoff_ms(100, 20000, 1000, 0.9999999), 19999);
  /* Full jitter: anywhere from nothing up to the ceiling. */
  ASSERT_EQ_INT(mt_http_backoff_ms(100, 20000, 5, 0), 0);
  ASSERT_EQ_INT(mt_http_backoff_ms(100, 20000, 5, 0.5), 800);
  ASSERT_EQ_INT(mt_http_backoff_ms(100, 20000, 5, 1.0), 1599);
}

TEST(http_timeout_names_url_and_timeout) {
  fake_server_t s;
  uv_loop_t loop;
  result_t r = {0};
  char url[256];
  fake_server_start(&s, "fake_http.py", NULL);
  mt_http_t *h = open_client(&loop, &fast);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/hang?s=20", s.port);
  mt_http_req_t req = {
      .url = url, .op = "test.hang", .max_attempts = 2, .timeout_ms = 300};
  uint64_t t0 = uv_hrtime();
  run(&loop, h, &req, &r);
  uint64_t took_ms = (uv_hrtime() - t0) / 1000000;
  ASSERT_EQ_INT(r.rc, MT_ETIMEDOUT);
  ASSERT_EQ_INT(r.status, 0);
  ASSERT_EQ_INT(r.attempts, 2); /* a timeout is retried */
  ASSERT_TRUE(strstr(r.err, url) != NULL);
  ASSERT_TRUE(strstr(r.err, "timeout 300 ms") != NULL);
  ASSERT_TRUE(strstr(r.err, "attempt 2 of 2") != NULL);
  ASSERT_TRUE(took_ms >= 600 && took_ms < 15000);
  ASSERT_EQ_INT(stat_of(h, "test.hang", 2), 1);
  mt_buf_free(&r.body);
  close_client(&loop, h);
  fake_server_stop(&s);
}

TEST(http_connection_refused_is_retried) {
  uv_loop_t loop;
  result_t r = {0};
  prep_t p = {0};
  char url[128];
  mt_http_t *h = open_client(&loop, &fast);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/nothing",
           fake_server_closed_port());
  mt_http_req_t req = {.url = url,
                       .max_attempts = 3,
                       .prepare = prepare_count,
                       .prepare_arg = &p};
  run(&loop, h, &req, &r);
  ASSERT_EQ_INT(r.rc, MT_EIO);
  ASSERT_EQ_INT(r.attempts, 3);
  ASSERT_EQ_INT(p.calls, 3);
  ASSERT_TRUE(strstr(r.err, url) != NULL);
  ASSERT_TRUE(strstr(r.err, "attempt 3 of 3") != NULL);
  close_client(&loop, h);
}

/* Chains requests: each completion sends the next, as a poller would. */
typedef struct chain_s {
  mt_http_t *h;
  const mt_http_req_t *req;
  int left;
  int failures;
  int conns[32];
  int n;
} chain_t;

static void on_chain(int rc, mt_http_resp_t *resp, const mt_err_t *err,
                     void *arg) {
  chain_t *c = arg;
  mt_err_t e;
  (void)err;
  const char *conn =
      resp->body.data ? strstr(resp->body.data, "\"conn\": ") : NULL;
  if (rc != 0 || resp->status != 200 || conn == NULL) {
    c->failures++;
    return;
  }
  c->conns[c->n++] = atoi(conn + 8);
  if (--c->left > 0 && mt_http_send(c->h, c->req, on_chain, c, &e) != 0)
    c->failures++;
}

TEST(http_connections_are_reused) {
  fake_server_t s;
  uv_loop_t loop;
  result_t r = {0};
  char url[256], stats_url[128];
  fake_server_start(&s, "fake_http.py", NULL);
  mt_http_t *h = open_client(&loop, &fast);
  seq_url(url, sizeof url, &s, "reuse", "200", NULL);
  mt_http_req_t req = {.url = url, .op = "test.reuse"};
  chain_t c = {.h = h, .req = &req, .left = 10};
  mt_err_t err;
  ASSERT_EQ_INT(mt_http_send(h, &req, on_chain, &c, &err), 0);
  while (c.left > 0 && c.failures == 0 && uv_run(&loop, UV_RUN_ONCE) != 0)
    ;
  ASSERT_EQ_INT(c.failures, 0);
  ASSERT_EQ_INT(c.n, 10);
  /* One after the other, they all rode the first connection. */
  for (int i = 1; i < c.n; i++)
    ASSERT_EQ_INT(c.conns[i], c.conns[0]);
  snprintf(stats_url, sizeof stats_url, "http://127.0.0.1:%d/stats", s.port);
  mt_http_req_t st = {.url = stats_url};
  run(&loop, h, &st, &r);
  ASSERT_EQ_INT(r.status, 200);
  int conns = 0, requests = 0;
  ASSERT_EQ_INT(sscanf(r.body.data, "{\"connections\": %d, \"requests\": %d",
                       &conns, &requests),
                2);
  ASSERT_EQ_INT(requests, 11);
  ASSERT_TRUE(conns < requests);
  ASSERT_EQ_INT(conns, 1);
  ASSERT_EQ_INT(stat_of(h, "test.reuse", 0), 10);
  mt_buf_free(&r.body);
  close_client(&loop, h);
  fake_server_stop(&s);
}

TEST(http_stats_per_operation) {
  fake_server_t s;
  uv_loop_t loop;
  result_t r = {0};
  char url[256];
  fake_server_start(&s, "fake_http.py", NULL);
  mt_http_t *h = open_client(&loop, &fast);
  mt_http_req_t recv = {.url = url, .op = "sqs.ReceiveMessage"};
  mt_http_req_t create = {.url = url,
                          .op = "scheduler.CreateSchedule",
                          .method = "POST",
                          .body = "{}",
                          .body_len = 2};
  seq_url(url, sizeof url, &s, "s1", "200", NULL);
  run(&loop, h, &recv, &r);
  run(&loop, h, &recv, &r);
  seq_url(url, sizeof url, &s, "s2", "500,200", NULL);
  run(&loop, h, &create, &r);
  ASSERT_TRUE(strstr(r.body.data, "\"method\": \"POST\"") != NULL);
  seq_url(url, sizeof url, &s, "s3", "404", NULL);
  run(&loop, h, &create, &r);
  mt_http_stat_t st[4];
  ASSERT_EQ_INT(mt_http_stats(h, st, 4), 2);
  ASSERT_EQ_STR(st[0].op, "sqs.ReceiveMessage");
  ASSERT_EQ_INT(st[0].attempts, 2);
  ASSERT_EQ_INT(st[0].retries, 0);
  ASSERT_EQ_INT(st[0].errors, 0);
  ASSERT_EQ_STR(st[1].op, "scheduler.CreateSchedule");
  ASSERT_EQ_INT(st[1].attempts, 3);
  ASSERT_EQ_INT(st[1].retries, 1);
  ASSERT_EQ_INT(st[1].errors, 1);
  /* Fewer slots than labels: the count still says how many there are. */
  ASSERT_EQ_INT(mt_http_stats(h, st, 1), 2);
  mt_buf_free(&r.body);
  close_client(&loop, h);
  fake_server_stop(&s);
}

static void on_free_timer(uv_timer_t *t) {
  mt_http_free(t->data);
  uv_close((uv_handle_t *)t, NULL);
}

TEST(http_free_cancels_pending_requests) {
  fake_server_t s;
  uv_loop_t loop;
  result_t hung, waiting;
  char hang_url[128], seq[256];
  mt_err_t err;
  fake_server_start(&s, "fake_http.py", NULL);
  /* A long backoff, so that the second request is waiting when freed: a
   * full minute, not a random part of one (with the client's own jitter,
   * about one run in a hundred retried before the free). */
  mt_http_opts_t opts = {
      .backoff_base_ms = 60000, .backoff_cap_ms = 60000, .random = almost_one};
  mt_http_t *h = open_client(&loop, &opts);
  snprintf(hang_url, sizeof hang_url, "http://127.0.0.1:%d/hang?s=20", s.port);
  seq_url(seq, sizeof seq, &s, "f", "500", NULL);
  mt_http_req_t a = {.url = hang_url}, b = {.url = seq};
  memset(&hung, 0, sizeof hung);
  memset(&waiting, 0, sizeof waiting);
  ASSERT_EQ_INT(mt_http_send(h, &a, on_done, &hung, &err), 0);
  ASSERT_EQ_INT(mt_http_send(h, &b, on_done, &waiting, &err), 0);
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  t.data = h;
  uv_timer_start(&t, on_free_timer, 500, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ_INT(uv_loop_close(&loop), 0);
  ASSERT_EQ_INT(hung.calls, 1);
  ASSERT_EQ_INT(hung.rc, MT_EIO);
  ASSERT_TRUE(strstr(hung.err, "cancelled") != NULL);
  ASSERT_TRUE(strstr(hung.err, hang_url) != NULL);
  ASSERT_EQ_INT(waiting.calls, 1);
  ASSERT_EQ_INT(waiting.rc, MT_EIO);
  ASSERT_EQ_INT(waiting.attempts, 1);
  mt_buf_free(&hung.body);
  mt_buf_free(&waiting.body);
  fake_server_stop(&s);
}

static mt_http_t *free_in_callback;

static void on_done_then_free(int rc, mt_http_resp_t *resp, const mt_err_t *err,
                              void *arg) {
  on_done(rc, resp, err, arg);
  mt_http_free(free_in_callback);
}

TEST(http_free_from_completion_callback) {
  fake_server_t s;
  uv_loop_t loop;
  result_t r1, r2;
  char url[256];
  mt_err_t err;
  fake_server_start(&s, "fake_http.py", NULL);
  mt_http_t *h = open_client(&loop, &fast);
  seq_url(url, sizeof url, &s, "cb", "200", NULL);
  mt_http_req_t req = {.url = url};
  memset(&r1, 0, sizeof r1);
  memset(&r2, 0, sizeof r2);
  /* Both answered in the same turn of the loop, perhaps: the first
   * callback frees the client, and the second is cancelled, once. */
  free_in_callback = h;
  ASSERT_EQ_INT(mt_http_send(h, &req, on_done_then_free, &r1, &err), 0);
  ASSERT_EQ_INT(mt_http_send(h, &req, on_done, &r2, &err), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ_INT(uv_loop_close(&loop), 0);
  ASSERT_EQ_INT(r1.calls + r2.calls, 2);
  ASSERT_EQ_INT(r1.calls, 1);
  ASSERT_EQ_INT(r1.status, 200);
  ASSERT_TRUE(r2.status == 200 || r2.rc == MT_EIO);
  mt_buf_free(&r1.body);
  mt_buf_free(&r2.body);
  fake_server_stop(&s);
}

TEST(http_fetch_sync) {
  fake_server_t s;
  mt_http_resp_t resp;
  mt_err_t err;
  char url[256];
  alarm(WATCHDOG_SECONDS);
  fake_server_start(&s, "fake_http.py", NULL);
  seq_url(url, sizeof url, &s, "sync", "500,200", NULL);
  mt_http_req_t req = {.url = url};
  ASSERT_EQ_INT(mt_http_fetch_sync(&req, &resp, &err), 0);
  ASSERT_EQ_INT(resp.status, 200);
  ASSERT_EQ_INT(resp.attempts, 2);
  ASSERT_TRUE(strstr(resp.body.data, "\"n\": 2") != NULL);
  mt_http_resp_free(&resp);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/hang?s=20", s.port);
  req.timeout_ms = 200;
  req.max_attempts = 1;
  ASSERT_EQ_INT(mt_http_fetch_sync(&req, &resp, &err), MT_ETIMEDOUT);
  ASSERT_EQ_INT(resp.status, 0);
  ASSERT_TRUE(strstr(err.msg, url) != NULL);
  mt_http_resp_free(&resp);
  /* Bad requests fail before anything is sent. */
  req.url = NULL;
  ASSERT_EQ_INT(mt_http_fetch_sync(&req, &resp, &err), MT_EINVAL);
  mt_http_resp_free(&resp);
  fake_server_stop(&s);
}

static int refuse(const mt_http_req_t *req, mt_http_headers_t *add, void *arg,
                  mt_err_t *err) {
  (void)req;
  (void)add;
  int *calls = arg;
  if (++*calls < 2)
    return 0;
  return mt_err_set(err, MT_ECONFIG, "no credentials");
}

TEST(http_prepare_failure_ends_request) {
  fake_server_t s;
  uv_loop_t loop;
  result_t r = {0};
  char url[256];
  int calls = 1;
  mt_err_t err;
  fake_server_start(&s, "fake_http.py", NULL);
  mt_http_t *h = open_client(&loop, &fast);
  seq_url(url, sizeof url, &s, "p", "500,200", NULL);
  /* Refused at once: mt_http_send says so and never calls back. */
  mt_http_req_t req = {.url = url, .prepare = refuse, .prepare_arg = &calls};
  memset(&r, 0, sizeof r);
  ASSERT_EQ_INT(mt_http_send(h, &req, on_done, &r, &err), MT_ECONFIG);
  ASSERT_TRUE(strstr(err.msg, "no credentials") != NULL);
  /* Refused on the retry: the completion callback says so. */
  calls = 0;
  run(&loop, h, &req, &r);
  ASSERT_EQ_INT(r.rc, MT_ECONFIG);
  ASSERT_EQ_INT(r.attempts, 1);
  ASSERT_TRUE(strstr(r.err, "preparing attempt 2: no credentials") != NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  ASSERT_EQ_INT(r.calls, 1);
  mt_buf_free(&r.body);
  close_client(&loop, h);
  fake_server_stop(&s);
}

static int classify(const char *body) {
  mt_http_resp_t resp;
  memset(&resp, 0, sizeof resp);
  resp.status = 400;
  mt_buf_puts(&resp.body, body);
  int retry = mt_http_aws_retryable(&resp);
  mt_http_resp_free(&resp);
  return retry;
}

TEST(http_aws_retryable_bodies) {
  ASSERT_EQ_INT(
      classify("{\"__type\":\"com.amazonaws.sqs#ThrottlingException\"}"), 1);
  ASSERT_EQ_INT(classify("{\"__type\":\"ThrottlingException:http://internal."
                         "amazon.com/coral/com.amazon.coral.availability/\"}"),
                1);
  ASSERT_EQ_INT(classify(" {\"code\": \"Throttling\", \"message\": \"x\"}"), 1);
  ASSERT_EQ_INT(classify("{\"Error\":{\"Code\":\"RequestThrottled\"}}"), 1);
  ASSERT_EQ_INT(classify("<?xml version=\"1.0\"?><ErrorResponse><Error><Code>"
                         "RequestThrottled</Code></Error></ErrorResponse>"),
                1);
  ASSERT_EQ_INT(classify("<Error><Code>SlowDown</Code></Error>"), 1);
  ASSERT_EQ_INT(classify("<ErrorResponse><Error><Code>AWS.SimpleQueueService."
                         "RequestThrottled</Code></Error></ErrorResponse>"),
                1);
  ASSERT_EQ_INT(
      classify("{\"__type\":\"com.amazonaws.sqs#InvalidParameterValue\"}"), 0);
  ASSERT_EQ_INT(classify("<Error><Code>AccessDenied</Code></Error>"), 0);
  ASSERT_EQ_INT(classify("{\"message\":\"Throttling\"}"), 0);
  ASSERT_EQ_INT(classify("{\"__type\":"), 0);
  ASSERT_EQ_INT(classify("Throttling"), 0);
  ASSERT_EQ_INT(classify(""), 0);
}

TEST(http_headers_list) {
  mt_http_headers_t h = MT_HTTP_HEADERS_INIT;
  ASSERT_EQ_INT(mt_http_headers_add(&h, "X-Amz-Date", "20240101T000000Z"), 0);
  ASSERT_EQ_INT(mt_http_headers_add(&h, "Empty", ""), 0);
  ASSERT_EQ_INT(mt_http_headers_add(&h, "Bad", "a\r\nInjected: 1"), MT_EINVAL);
  ASSERT_EQ_INT(mt_http_headers_add(&h, "Bad: name", "v"), MT_EINVAL);
  ASSERT_EQ_INT(mt_http_headers_add(&h, "", "v"), MT_EINVAL);
  ASSERT_EQ_INT(h.n, 2);
  ASSERT_EQ_STR(mt_http_headers_get(&h, "x-amz-date"), "20240101T000000Z");
  ASSERT_TRUE(mt_http_headers_get(&h, "Host") == NULL);
  mt_http_headers_free(&h);
  ASSERT_EQ_INT(h.n, 0);
  mt_http_headers_free(NULL);
  mt_http_resp_free(NULL);
  mt_http_free(NULL);
}

static char tls_dir[64];

static void remove_tls_dir(void) {
  char path[128];
  if (tls_dir[0] == '\0')
    return;
  snprintf(path, sizeof path, "%s/cert.pem", tls_dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/key.pem", tls_dir);
  unlink(path);
  rmdir(tls_dir);
  tls_dir[0] = '\0';
}

TEST(http_tls_peer_is_verified) {
  fake_server_t s;
  uv_loop_t loop;
  result_t r = {0};
  char url[256], ca[128];
  snprintf(tls_dir, sizeof tls_dir, "/tmp/mt-http-tls-XXXXXX");
  ASSERT_TRUE(mkdtemp(tls_dir) != NULL);
  atexit(remove_tls_dir);
  const char *args[] = {"--tls-dir", tls_dir, NULL};
  fake_server_start(&s, "fake_http.py", args);
  snprintf(url, sizeof url, "https://127.0.0.1:%d/seq?key=tls", s.port);
  mt_http_req_t req = {.url = url};
  /* Self-signed, so untrusted: a failed verification is not retried. */
  mt_http_t *h = open_client(&loop, &fast);
  run(&loop, h, &req, &r);
  ASSERT_EQ_INT(r.rc, MT_EIO);
  ASSERT_EQ_INT(r.attempts, 1);
  ASSERT_TRUE(strstr(r.err, url) != NULL);
  ASSERT_TRUE(strstr(r.err, "certificate") != NULL);
  close_client(&loop, h);
  /* Trusted through the tests' CA option, it is the same server. */
  snprintf(ca, sizeof ca, "%s/cert.pem", tls_dir);
  mt_http_opts_t opts = fast;
  opts.ca_file = ca;
  h = open_client(&loop, &opts);
  run(&loop, h, &req, &r);
  ASSERT_EQ_INT(r.rc, 0);
  ASSERT_EQ_INT(r.status, 200);
  mt_buf_free(&r.body);
  close_client(&loop, h);
  fake_server_stop(&s);
  remove_tls_dir();
}
