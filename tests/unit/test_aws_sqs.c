/*
 * The typed SQS client (runtime/aws/sqs.h) and the signed-request client
 * under it (runtime/aws/client.h).
 *
 * The SQS cases run against a moto_server of their own (tests/aws/
 * moto_ctl.h) over SQS's JSON protocol, and check what they did through
 * boto3 (tests/aws/moto_ctl.py: queue counts, messages peeked), not
 * through our own answers alone: delays, long polls woken by a message
 * sent during the wait, batches with a bad entry, visibility changes, FIFO
 * groups and deduplication, queue attributes. One case switches moto's
 * authentication on, so that botocore's signer checks ours on every
 * request, with temporary credentials and their session token.
 *
 * The client cases use tests/aws/fake_aws.py for what moto does not do: a
 * retry must carry a fresh date and signature, each of AWS's error shapes
 * must come out as the right kind and code, and a secret quoted back by
 * the server must not reach a message.
 *
 * Times are only bounded from above loosely (a long poll that ends before
 * its wait ran out) and never tightly; the cases count messages instead.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "../aws/fake_server.h"
#include "../aws/moto_ctl.h"
#include "aws/client.h"
#include "aws/http.h"
#include "aws/scheduler.h"
#include "aws/sqs.h"
#include "json/doc.h"
#include "test.h"

#define ASSERT_CONTAINS(hay, needle)                     \
  do {                                                   \
    if (strstr((hay), (needle)) == NULL)                 \
      MT__FAIL("\"%s\" not in \"%s\"", (needle), (hay)); \
  } while (0)

#define ASSERT_LACKS(hay, needle)                                  \
  do {                                                             \
    if (strstr((hay), (needle)) != NULL)                           \
      MT__FAIL("\"%s\" should not be in \"%s\"", (needle), (hay)); \
  } while (0)

/* What one callback saw, copied out before its strings went. */
typedef struct got_s {
  int calls;
  int rc;
  mt_aws_kind_t kind;
  long status;
  int attempts;
  char code[128];
  char message[512];
  char err[MT_ERR_MAX];
  /* SendMessage */
  char message_id[128];
  int has_sequence;
  /* ReceiveMessage */
  size_t n;
  struct {
    char id[128];
    char handle[1024];
    char body[256];
    long receive_count;
    char group[64];
    int64_t sent;
  } msgs[MT_SQS_MAX_BATCH];
  /* batches */
  size_t failed;
  struct {
    int ok, sender_fault;
    char code[64];
  } entries[MT_SQS_MAX_BATCH];
  /* GetQueueAttributes */
  char arn[256];
  long visibility;
  int fifo, content_dedup;
  char dlq_arn[256];
  long max_receive;
} got_t;

static void keep(got_t *g, const mt_aws_result_t *res) {
  g->calls++;
  g->rc = res->rc;
  g->kind = res->kind;
  g->status = res->status;
  g->attempts = res->attempts;
  snprintf(g->code, sizeof g->code, "%s", res->code);
  snprintf(g->message, sizeof g->message, "%s", res->message);
  snprintf(g->err, sizeof g->err, "%s", res->err.msg);
  /* rc and kind agree, and the message says what went wrong. */
  ASSERT_EQ_INT(res->rc == 0, res->kind == MT_AWS_OK);
  if (res->rc != 0)
    ASSERT_TRUE(res->err.msg[0] != '\0');
}

static void on_send(const mt_aws_result_t *res, const mt_sqs_sent_t *out,
                    void *arg) {
  got_t *g = arg;
  keep(g, res);
  ASSERT_EQ_INT(out != NULL, res->rc == 0);
  if (out != NULL) {
    ASSERT_TRUE(out->message_id != NULL);
    snprintf(g->message_id, sizeof g->message_id, "%s", out->message_id);
    g->has_sequence = out->sequence_number != NULL;
  }
}

static void on_receive(const mt_aws_result_t *res, const mt_sqs_received_t *out,
                       void *arg) {
  got_t *g = arg;
  keep(g, res);
  ASSERT_EQ_INT(out != NULL, res->rc == 0);
  g->n = out != NULL ? out->n : 0;
  for (size_t i = 0; i < g->n && i < MT_SQS_MAX_BATCH; i++) {
    const mt_sqs_message_t *m = &out->messages[i];
    ASSERT_EQ_INT(strlen(m->body), m->body_len);
    snprintf(g->msgs[i].id, sizeof g->msgs[i].id, "%s", m->message_id);
    snprintf(g->msgs[i].handle, sizeof g->msgs[i].handle, "%s",
             m->receipt_handle);
    snprintf(g->msgs[i].body, sizeof g->msgs[i].body, "%s", m->body);
    snprintf(g->msgs[i].group, sizeof g->msgs[i].group, "%s",
             m->group_id ? m->group_id : "");
    g->msgs[i].receive_count = m->receive_count;
    g->msgs[i].sent = m->sent_timestamp;
  }
}

static void on_batch(const mt_aws_result_t *res, const mt_sqs_batch_t *out,
                     void *arg) {
  got_t *g = arg;
  keep(g, res);
  ASSERT_EQ_INT(out != NULL, res->rc == 0);
  g->n = out != NULL ? out->n : 0;
  g->failed = out != NULL ? out->failed : 0;
  for (size_t i = 0; i < g->n && i < MT_SQS_MAX_BATCH; i++) {
    g->entries[i].ok = out->entries[i].ok;
    g->entries[i].sender_fault = out->entries[i].sender_fault;
    snprintf(g->entries[i].code, sizeof g->entries[i].code, "%s",
             out->entries[i].code ? out->entries[i].code : "");
  }
}

static void keep_attrs(got_t *g, const mt_sqs_queue_attrs_t *a) {
  snprintf(g->arn, sizeof g->arn, "%s", a->arn ? a->arn : "");
  g->visibility = a->visibility_timeout;
  g->fifo = a->fifo;
  g->content_dedup = a->content_dedup;
  snprintf(g->dlq_arn, sizeof g->dlq_arn, "%s", a->dead_letter_arn);
  g->max_receive = a->max_receive_count;
}

static void on_attrs(const mt_aws_result_t *res,
                     const mt_sqs_queue_attrs_t *out, void *arg) {
  got_t *g = arg;
  keep(g, res);
  ASSERT_EQ_INT(out != NULL, res->rc == 0);
  if (out != NULL)
    keep_attrs(g, out);
}

/* ---- one call, run to its end ------------------------------------------- */

static void send_msg(aws_fixture_t *f, mt_aws_t *aws, const mt_sqs_send_t *rq,
                     got_t *g) {
  mt_err_t err;
  memset(g, 0, sizeof *g);
  if (mt_sqs_send(aws, rq, on_send, g, &err) != 0)
    MT__FAIL("mt_sqs_send: %s", err.msg);
  aws_fixture_wait(f, &g->calls);
}

static void receive(aws_fixture_t *f, mt_aws_t *aws, const mt_sqs_receive_t *rq,
                    got_t *g) {
  mt_err_t err;
  memset(g, 0, sizeof *g);
  if (mt_sqs_receive(aws, rq, on_receive, g, &err) != 0)
    MT__FAIL("mt_sqs_receive: %s", err.msg);
  aws_fixture_wait(f, &g->calls);
}

static void delete_batch(aws_fixture_t *f, mt_aws_t *aws, const char *queue,
                         const char *const *handles, size_t n, got_t *g) {
  mt_err_t err;
  memset(g, 0, sizeof *g);
  if (mt_sqs_delete_batch(aws, queue, handles, n, on_batch, g, &err) != 0)
    MT__FAIL("mt_sqs_delete_batch: %s", err.msg);
  aws_fixture_wait(f, &g->calls);
}

static void visibility_batch(aws_fixture_t *f, mt_aws_t *aws, const char *queue,
                             const mt_sqs_visibility_t *e, size_t n, got_t *g) {
  mt_err_t err;
  memset(g, 0, sizeof *g);
  if (mt_sqs_visibility_batch(aws, queue, e, n, on_batch, g, &err) != 0)
    MT__FAIL("mt_sqs_visibility_batch: %s", err.msg);
  aws_fixture_wait(f, &g->calls);
}

static void attributes(aws_fixture_t *f, mt_aws_t *aws, const char *queue,
                       got_t *g) {
  mt_err_t err;
  memset(g, 0, sizeof *g);
  if (mt_sqs_queue_attributes(aws, queue, on_attrs, g, &err) != 0)
    MT__FAIL("mt_sqs_queue_attributes: %s", err.msg);
  aws_fixture_wait(f, &g->calls);
}

#define ASSERT_OK(g)                           \
  do {                                         \
    if ((g)->rc != 0)                          \
      MT__FAIL("%s failed: %s", #g, (g)->err); \
  } while (0)

/* The queue's counts, read by boto3. */
static void counts(aws_fixture_t *f, const char *queue, long *visible,
                   long *not_visible, long *delayed) {
  mt_jdoc_t *doc = moto_ctl(&f->moto, "counts", queue, NULL);
  const mt_jval_t *c = mt_jdoc_root(doc);
  *visible = ctl_int(c, "visible");
  *not_visible = ctl_int(c, "not_visible");
  *delayed = ctl_int(c, "delayed");
  mt_jdoc_free(doc);
}

/* ---- SQS against moto --------------------------------------------------- */

TEST(aws_sqs_send_delay_receive_delete_batch) {
  aws_fixture_t f;
  got_t a, b, r, d;
  long vis, hidden, delayed;
  aws_fixture_start(&f);
  /* queue_url NULL: the client's configured queue, mt-std. */
  mt_sqs_send_t now = {.body = "{\"task\":1}"};
  mt_sqs_send_t later = {.body = "{\"task\":2}", .delay_seconds = 5};
  send_msg(&f, f.aws, &now, &a);
  ASSERT_OK(&a);
  send_msg(&f, f.aws, &later, &b);
  ASSERT_OK(&b);
  ASSERT_TRUE(strcmp(a.message_id, b.message_id) != 0);
  ASSERT_EQ_INT(a.has_sequence, 0);
  counts(&f, f.std_url, &vis, &hidden, &delayed);
  ASSERT_EQ_INT(vis, 1);
  ASSERT_EQ_INT(delayed, 1);
  /* A short poll finds the first only; the delayed one is not there yet. */
  mt_sqs_receive_t shortpoll = {.max_messages = 10, .visibility_timeout = 60};
  receive(&f, f.aws, &shortpoll, &r);
  ASSERT_OK(&r);
  ASSERT_EQ_INT(r.n, 1);
  ASSERT_EQ_STR(r.msgs[0].id, a.message_id);
  ASSERT_EQ_STR(r.msgs[0].body, "{\"task\":1}");
  ASSERT_EQ_INT(r.msgs[0].receive_count, 1);
  ASSERT_TRUE(r.msgs[0].sent > 0);
  char first[1024];
  snprintf(first, sizeof first, "%s", r.msgs[0].handle);
  /* A long poll waits for it. */
  mt_sqs_receive_t longpoll = {
      .max_messages = 10, .wait_seconds = 20, .visibility_timeout = 60};
  receive(&f, f.aws, &longpoll, &r);
  ASSERT_OK(&r);
  ASSERT_EQ_INT(r.n, 1);
  ASSERT_EQ_STR(r.msgs[0].id, b.message_id);
  ASSERT_EQ_STR(r.msgs[0].body, "{\"task\":2}");
  /* One batch: both handles and one that names nothing. */
  const char *handles[] = {first, r.msgs[0].handle, "not-a-receipt-handle"};
  delete_batch(&f, f.aws, NULL, handles, 3, &d);
  ASSERT_OK(&d);
  ASSERT_EQ_INT(d.n, 3);
  ASSERT_EQ_INT(d.failed, 1);
  ASSERT_EQ_INT(d.entries[0].ok, 1);
  ASSERT_EQ_INT(d.entries[1].ok, 1);
  ASSERT_EQ_INT(d.entries[2].ok, 0);
  ASSERT_EQ_INT(d.entries[2].sender_fault, 1);
  ASSERT_EQ_STR(d.entries[2].code, "ReceiptHandleIsInvalid");
  counts(&f, f.std_url, &vis, &hidden, &delayed);
  ASSERT_EQ_INT(vis + hidden + delayed, 0);
  /* Each operation counted under its label. */
  mt_http_stat_t st[16];
  size_t n = mt_http_stats(mt_aws_http(f.aws), st, 16);
  int labels = 0;
  for (size_t i = 0; i < n && i < 16; i++)
    if (strcmp(st[i].op, "sqs.SendMessage") == 0 ||
        strcmp(st[i].op, "sqs.ReceiveMessage") == 0 ||
        strcmp(st[i].op, "sqs.DeleteMessageBatch") == 0) {
      labels++;
      ASSERT_EQ_INT(st[i].errors, 0);
    }
  ASSERT_EQ_INT(labels, 3);
  aws_fixture_stop(&f);
}

typedef struct wake_s {
  aws_fixture_t *f;
  got_t *recv;
  got_t sent;
  int receive_pending_at_send;
} wake_t;

static void on_wake_timer(uv_timer_t *t) {
  wake_t *w = t->data;
  mt_err_t err;
  mt_sqs_send_t rq = {.body = "sent during the wait"};
  w->receive_pending_at_send = w->recv->calls == 0;
  if (mt_sqs_send(w->f->aws, &rq, on_send, &w->sent, &err) != 0)
    MT__FAIL("mt_sqs_send: %s", err.msg);
  uv_close((uv_handle_t *)t, NULL);
}

TEST(aws_sqs_long_poll_returns_a_message_sent_during_the_wait) {
  aws_fixture_t f;
  got_t recv;
  mt_err_t err;
  uv_timer_t timer;
  aws_fixture_start(&f);
  memset(&recv, 0, sizeof recv);
  wake_t w = {.f = &f, .recv = &recv};
  mt_sqs_receive_t rq = {.max_messages = 10, .wait_seconds = 20};
  uint64_t t0 = uv_hrtime();
  if (mt_sqs_receive(f.aws, &rq, on_receive, &recv, &err) != 0)
    MT__FAIL("mt_sqs_receive: %s", err.msg);
  uv_timer_init(&f.loop, &timer);
  timer.data = &w;
  uv_timer_start(&timer, on_wake_timer, 1000, 0);
  aws_fixture_wait(&f, &recv.calls);
  uint64_t waited_ms = (uv_hrtime() - t0) / 1000000;
  aws_fixture_wait(&f, &w.sent.calls);
  ASSERT_OK(&w.sent);
  ASSERT_OK(&recv);
  ASSERT_EQ_INT(w.receive_pending_at_send, 1);
  ASSERT_EQ_INT(recv.n, 1);
  ASSERT_EQ_STR(recv.msgs[0].body, "sent during the wait");
  ASSERT_EQ_STR(recv.msgs[0].id, w.sent.message_id);
  /* It came back because of the message, not because the 20 s ran out:
   * a bound from above, and a loose one. */
  if (waited_ms >= 19000)
    MT__FAIL("the long poll took %llu ms", (unsigned long long)waited_ms);
  aws_fixture_stop(&f);
}

TEST(aws_sqs_change_visibility_batch) {
  aws_fixture_t f;
  got_t s, r, v;
  long vis, hidden, delayed;
  aws_fixture_start(&f);
  mt_sqs_send_t rq = {.queue_url = f.std_url, .body = "lease me"};
  send_msg(&f, f.aws, &rq, &s);
  ASSERT_OK(&s);
  mt_sqs_receive_t hide = {.max_messages = 1, .visibility_timeout = 600};
  receive(&f, f.aws, &hide, &r);
  ASSERT_OK(&r);
  ASSERT_EQ_INT(r.n, 1);
  counts(&f, f.std_url, &vis, &hidden, &delayed);
  ASSERT_EQ_INT(vis, 0);
  ASSERT_EQ_INT(hidden, 1);
  /* Hand it back at once; the second entry names nothing. */
  mt_sqs_visibility_t back[] = {{r.msgs[0].handle, 0},
                                {"not-a-receipt-handle", 30}};
  visibility_batch(&f, f.aws, NULL, back, 2, &v);
  ASSERT_OK(&v);
  ASSERT_EQ_INT(v.failed, 1);
  ASSERT_EQ_INT(v.entries[0].ok, 1);
  ASSERT_EQ_INT(v.entries[1].ok, 0);
  ASSERT_EQ_STR(v.entries[1].code, "ReceiptHandleIsInvalid");
  counts(&f, f.std_url, &vis, &hidden, &delayed);
  ASSERT_EQ_INT(vis, 1);
  ASSERT_EQ_INT(hidden, 0);
  /* Received again: the count says so. Then a lease extended. */
  receive(&f, f.aws, &hide, &r);
  ASSERT_OK(&r);
  ASSERT_EQ_INT(r.n, 1);
  ASSERT_EQ_STR(r.msgs[0].body, "lease me");
  ASSERT_EQ_INT(r.msgs[0].receive_count, 2);
  mt_sqs_visibility_t extend[] = {{r.msgs[0].handle, 1200}};
  visibility_batch(&f, f.aws, f.std_url, extend, 1, &v);
  ASSERT_OK(&v);
  ASSERT_EQ_INT(v.failed, 0);
  counts(&f, f.std_url, &vis, &hidden, &delayed);
  ASSERT_EQ_INT(hidden, 1);
  aws_fixture_stop(&f);
}

TEST(aws_sqs_fifo_group_and_deduplication) {
  aws_fixture_t f;
  got_t s1, s2, r, a;
  long vis, hidden, delayed;
  mt_err_t err;
  aws_fixture_start(&f);
  attributes(&f, f.aws, f.fifo_url, &a);
  ASSERT_OK(&a);
  ASSERT_EQ_STR(a.arn, f.fifo_arn);
  ASSERT_EQ_INT(a.fifo, 1);
  ASSERT_EQ_INT(a.content_dedup, 1);
  ASSERT_EQ_INT(mt_sqs_url_is_fifo(f.fifo_url), 1);
  ASSERT_EQ_INT(mt_sqs_url_is_fifo(f.std_url), 0);
  /* A FIFO message without its group, or with a delay, never leaves. */
  mt_sqs_send_t nogroup = {.queue_url = f.fifo_url, .body = "x"};
  ASSERT_EQ_INT(mt_sqs_send(f.aws, &nogroup, on_send, &s1, &err), MT_EINVAL);
  ASSERT_CONTAINS(err.msg, "MessageGroupId");
  mt_sqs_send_t delayed_fifo = {.queue_url = f.fifo_url,
                                .body = "x",
                                .group_id = "g",
                                .delay_seconds = 1};
  ASSERT_EQ_INT(mt_sqs_send(f.aws, &delayed_fifo, on_send, &s1, &err),
                MT_EINVAL);
  /* The same deduplication id twice: one message. */
  mt_sqs_send_t one = {.queue_url = f.fifo_url,
                       .body = "{\"task\":7}",
                       .group_id = "tasks",
                       .dedup_id = "task-7-attempt-1"};
  send_msg(&f, f.aws, &one, &s1);
  ASSERT_OK(&s1);
  ASSERT_EQ_INT(s1.has_sequence, 1);
  mt_sqs_send_t again = one;
  again.body = "{\"task\":7,\"again\":true}";
  send_msg(&f, f.aws, &again, &s2);
  ASSERT_OK(&s2);
  counts(&f, f.fifo_url, &vis, &hidden, &delayed);
  ASSERT_EQ_INT(vis, 1);
  mt_jdoc_t *peek = moto_ctl(&f.moto, "peek", f.fifo_url, NULL);
  const mt_jval_t *msgs = mt_jval_get(mt_jdoc_root(peek), "messages");
  ASSERT_TRUE(msgs != NULL && msgs->type == MT_JV_ARRAY);
  ASSERT_EQ_INT(msgs->len, 1);
  ASSERT_EQ_STR(ctl_str(&msgs->u.items[0], "body"), "{\"task\":7}");
  ASSERT_EQ_STR(ctl_str(&msgs->u.items[0], "group_id"), "tasks");
  ASSERT_EQ_STR(ctl_str(&msgs->u.items[0], "dedup_id"), "task-7-attempt-1");
  mt_jdoc_free(peek);
  mt_sqs_receive_t rq = {.queue_url = f.fifo_url, .max_messages = 10};
  receive(&f, f.aws, &rq, &r);
  ASSERT_OK(&r);
  ASSERT_EQ_INT(r.n, 1);
  ASSERT_EQ_STR(r.msgs[0].group, "tasks");
  aws_fixture_stop(&f);
}

TEST(aws_sqs_queue_attributes) {
  aws_fixture_t f;
  got_t a;
  mt_sqs_queue_attrs_t attrs;
  mt_aws_result_t res;
  aws_fixture_start(&f);
  attributes(&f, f.aws, NULL, &a);
  ASSERT_OK(&a);
  ASSERT_EQ_STR(a.arn, f.std_arn);
  ASSERT_EQ_INT(a.visibility, 30);
  ASSERT_EQ_INT(a.fifo, 0);
  ASSERT_EQ_STR(a.dlq_arn, f.dlq_arn);
  ASSERT_EQ_INT(a.max_receive, 5);
  /* The blocking form, for `moontask check`, on a client without a loop.
   */
  mt_aws_t *cli = NULL;
  mt_err_t err;
  mt_aws_conf_t conf = {.endpoint = f.endpoint, .queue_url = f.std_url};
  if (mt_aws_new(NULL, &conf, f.creds, NULL, &cli, &err) != 0)
    MT__FAIL("mt_aws_new: %s", err.msg);
  ASSERT_TRUE(mt_aws_http(cli) == NULL);
  ASSERT_EQ_STR(mt_aws_conf(cli)->region, AWS_FIXTURE_REGION); /* $AWS_REGION */
  ASSERT_EQ_INT(mt_sqs_queue_attributes_sync(cli, NULL, &attrs, &res), 0);
  ASSERT_EQ_STR(attrs.arn, f.std_arn);
  ASSERT_EQ_INT(attrs.visibility_timeout, 30);
  ASSERT_TRUE(attrs.redrive_policy != NULL);
  mt_aws_result_free(&res);
  /* A queue that is not there, both ways. */
  char missing[512];
  snprintf(missing, sizeof missing, "%s/123456789012/no-such-queue",
           f.endpoint);
  ASSERT_EQ_INT(mt_sqs_queue_attributes_sync(cli, missing, &attrs, &res),
                MT_ENOTFOUND);
  ASSERT_EQ_INT(res.kind, MT_AWS_ENOTFOUND);
  ASSERT_EQ_STR(res.code, "QueueDoesNotExist");
  ASSERT_EQ_INT(res.status, 400);
  ASSERT_CONTAINS(res.err.msg, "sqs.GetQueueAttributes");
  ASSERT_CONTAINS(res.err.msg, "QueueDoesNotExist");
  mt_aws_result_free(&res);
  attributes(&f, f.aws, missing, &a);
  ASSERT_EQ_INT(a.kind, MT_AWS_ENOTFOUND);
  ASSERT_EQ_INT(a.rc, MT_ENOTFOUND);
  mt_aws_free(cli);
  aws_fixture_stop(&f);
}

TEST(aws_sqs_refuses_bad_requests_before_sending) {
  aws_fixture_t f;
  got_t g;
  mt_err_t err;
  aws_fixture_start(&f);
  mt_sqs_send_t empty = {.body = ""};
  ASSERT_EQ_INT(mt_sqs_send(f.aws, &empty, on_send, &g, &err), MT_EINVAL);
  mt_sqs_send_t late = {.body = "x", .delay_seconds = 901};
  ASSERT_EQ_INT(mt_sqs_send(f.aws, &late, on_send, &g, &err), MT_EINVAL);
  ASSERT_CONTAINS(err.msg, "DelaySeconds 901");
  mt_sqs_receive_t many = {.max_messages = 11};
  ASSERT_EQ_INT(mt_sqs_receive(f.aws, &many, on_receive, &g, &err), MT_EINVAL);
  mt_sqs_receive_t wait = {.wait_seconds = 21};
  ASSERT_EQ_INT(mt_sqs_receive(f.aws, &wait, on_receive, &g, &err), MT_EINVAL);
  const char *handles[11];
  for (int i = 0; i < 11; i++)
    handles[i] = "h";
  ASSERT_EQ_INT(
      mt_sqs_delete_batch(f.aws, NULL, handles, 11, on_batch, &g, &err),
      MT_EINVAL);
  ASSERT_EQ_INT(
      mt_sqs_delete_batch(f.aws, NULL, handles, 0, on_batch, &g, &err),
      MT_EINVAL);
  mt_sqs_visibility_t tooLong[] = {{"h", 43201}};
  ASSERT_EQ_INT(
      mt_sqs_visibility_batch(f.aws, NULL, tooLong, 1, on_batch, &g, &err),
      MT_EINVAL);
  ASSERT_EQ_INT(g.calls, 0);
  /* Nothing went out. */
  mt_http_stat_t st[16];
  size_t n = mt_http_stats(mt_aws_http(f.aws), st, 16);
  for (size_t i = 0; i < n && i < 16; i++)
    ASSERT_EQ_INT(st[i].attempts, 0);
  aws_fixture_stop(&f);
}

/* ---- signatures checked by moto (botocore's signer) ---------------------- */

static void on_written(const mt_aws_result_t *res, const mt_ebs_written_t *out,
                       void *arg) {
  got_t *g = arg;
  keep(g, res);
  if (out != NULL && out->arn != NULL)
    snprintf(g->arn, sizeof g->arn, "%s", out->arn);
}

static void schedule(aws_fixture_t *f, mt_aws_t *aws, int update,
                     const mt_ebs_schedule_t *s, got_t *g) {
  mt_err_t err;
  memset(g, 0, sizeof *g);
  int rc = update ? mt_ebs_schedule_update(aws, s, on_written, g, &err)
                  : mt_ebs_schedule_create(aws, s, on_written, g, &err);
  if (rc != 0)
    MT__FAIL("schedule: %s", err.msg);
  aws_fixture_wait(f, &g->calls);
}

TEST(aws_sqs_signatures_with_session_token_checked_by_moto) {
  aws_fixture_t f;
  got_t s, r, d, v, a, w;
  mt_aws_t *aws = NULL, *bad = NULL;
  mt_aws_creds_provider_t *creds = NULL, *badcreds = NULL;
  aws_fixture_start(&f);
  mt_jdoc_t *tmp = moto_ctl(&f.moto, "assume-role", NULL);
  const mt_jval_t *c = mt_jdoc_root(tmp);
  char key[128], secret[128], token[2048];
  snprintf(key, sizeof key, "%s", ctl_str(c, "AccessKeyId"));
  snprintf(secret, sizeof secret, "%s", ctl_str(c, "SecretAccessKey"));
  snprintf(token, sizeof token, "%s", ctl_str(c, "SessionToken"));
  mt_jdoc_free(tmp);
  ASSERT_TRUE(strncmp(key, "ASIA", 4) == 0);
  aws_fixture_env(key, secret, token);
  aws_fixture_client(&f, &aws, &creds);
  /* From here on moto checks every request's signature with botocore
   * and the token against the one it issued (moto_ctl.py signs with the
   * same credentials, from the environment). */
  mt_jdoc_free(moto_ctl(&f.moto, "auth", "on", NULL));
  mt_sqs_send_t m1 = {.body = "signed one"}, m2 = {.body = "signed two"};
  send_msg(&f, aws, &m1, &s);
  ASSERT_OK(&s);
  send_msg(&f, aws, &m2, &s);
  ASSERT_OK(&s);
  mt_sqs_receive_t rq = {
      .max_messages = 10, .wait_seconds = 1, .visibility_timeout = 300};
  receive(&f, aws, &rq, &r);
  ASSERT_OK(&r);
  ASSERT_EQ_INT(r.n, 2);
  int one = strcmp(r.msgs[0].body, "signed one") == 0 ? 0 : 1;
  const char *del[] = {r.msgs[one].handle};
  delete_batch(&f, aws, NULL, del, 1, &d);
  ASSERT_OK(&d);
  ASSERT_EQ_INT(d.failed, 0);
  mt_sqs_visibility_t back[] = {{r.msgs[1 - one].handle, 0}};
  visibility_batch(&f, aws, NULL, back, 1, &v);
  ASSERT_OK(&v);
  ASSERT_EQ_INT(v.failed, 0);
  attributes(&f, aws, NULL, &a);
  ASSERT_OK(&a);
  /* Scheduler's POST and PUT (moto cannot check GET and DELETE: it hashes
   * the headers it parsed into a body those requests never had). */
  mt_ebs_schedule_t sch = {.name = "mt-signed",
                           .expression = "rate(5 minutes)",
                           .target_arn = f.std_arn,
                           .input = "{}"};
  schedule(&f, aws, 0, &sch, &w);
  ASSERT_OK(&w);
  sch.expression = "rate(10 minutes)";
  schedule(&f, aws, 1, &sch, &w);
  ASSERT_OK(&w);
  /* What boto3 sees: the message handed back, the other one gone. */
  mt_jdoc_t *peek = moto_ctl(&f.moto, "peek", f.std_url, NULL);
  const mt_jval_t *msgs = mt_jval_get(mt_jdoc_root(peek), "messages");
  ASSERT_TRUE(msgs != NULL && msgs->type == MT_JV_ARRAY);
  ASSERT_EQ_INT(msgs->len, 1);
  ASSERT_EQ_STR(ctl_str(&msgs->u.items[0], "body"), "signed two");
  mt_jdoc_free(peek);
  /* A wrong secret: refused, and neither secret nor token in any text. */
  aws_fixture_env(key, "wrong-secret-0123456789abcdefghijklmnop", token);
  aws_fixture_client(&f, &bad, &badcreds);
  send_msg(&f, bad, &m1, &s);
  ASSERT_EQ_INT(s.kind, MT_AWS_EAUTH);
  ASSERT_EQ_INT(s.rc, MT_ECONFIG);
  ASSERT_EQ_INT(s.status, 403);
  ASSERT_EQ_STR(s.code, "SignatureDoesNotMatch");
  ASSERT_LACKS(s.err, token);
  ASSERT_LACKS(s.err, secret);
  ASSERT_LACKS(s.err, "wrong-secret-0123456789abcdefghijklmnop");
  ASSERT_LACKS(s.message, token);
  aws_fixture_close(bad, badcreds);
  /* A token that is not the one issued. */
  aws_fixture_env(key, secret, "not-the-token-moto-issued-0123456789");
  aws_fixture_client(&f, &bad, &badcreds);
  send_msg(&f, bad, &m1, &s);
  ASSERT_EQ_INT(s.kind, MT_AWS_EAUTH);
  ASSERT_EQ_STR(s.code, "InvalidClientTokenId");
  ASSERT_LACKS(s.err, "not-the-token-moto-issued-0123456789");
  ASSERT_LACKS(s.err, secret);
  aws_fixture_close(bad, badcreds);
  aws_fixture_env(key, secret, token);
  mt_jdoc_free(moto_ctl(&f.moto, "auth", "off", NULL));
  aws_fixture_close(aws, creds);
  aws_fixture_stop(&f);
}

/* ---- the client against tests/aws/fake_aws.py -------------------------- */

#define FAKE_TOKEN "FAKESESSIONTOKEN-must-never-be-printed-0123456789"
#define FAKE_SECRET "fake-secret-must-never-be-printed-0123456789"

typedef struct fake_s {
  fake_server_t server;
  aws_fixture_t f; /* the loop, and the endpoint */
  mt_aws_t *aws;
  mt_aws_creds_provider_t *creds;
} fake_t;

static void fake_start(fake_t *x, const mt_http_opts_t *opts) {
  mt_err_t err;
  memset(x, 0, sizeof *x);
  alarm(AWS_FIXTURE_WATCHDOG_SECONDS);
  aws_fixture_env("ASIAFAKEKEYID", FAKE_SECRET, FAKE_TOKEN);
  fake_server_start(&x->server, "fake_aws.py", NULL);
  snprintf(x->f.endpoint, sizeof x->f.endpoint, "http://127.0.0.1:%d",
           x->server.port);
  ASSERT_EQ_INT(uv_loop_init(&x->f.loop), 0);
  if (mt_aws_creds_open(NULL, &x->creds, &err) != 0)
    MT__FAIL("mt_aws_creds_open: %s", err.msg);
  mt_aws_conf_t conf = {.endpoint = x->f.endpoint};
  if (mt_aws_new(&x->f.loop, &conf, x->creds, opts, &x->aws, &err) != 0)
    MT__FAIL("mt_aws_new: %s", err.msg);
}

static void fake_stop(fake_t *x) {
  aws_fixture_close(x->aws, x->creds);
  uv_run(&x->f.loop, UV_RUN_DEFAULT);
  ASSERT_EQ_INT(uv_loop_close(&x->f.loop), 0);
  fake_server_stop(&x->server);
}

typedef struct raw_s {
  got_t g;
  mt_jdoc_t *doc; /* taken from the result */
} raw_t;

static void on_raw(mt_aws_result_t *res, void *arg) {
  raw_t *r = arg;
  keep(&r->g, res);
  /* The callback may keep the document. */
  r->doc = res->doc;
  res->doc = NULL;
}

static void call(fake_t *x, mt_aws_service_t service, const char *method,
                 const char *path, int max_attempts, raw_t *r) {
  mt_err_t err;
  memset(r, 0, sizeof *r);
  mt_aws_req_t req = {.service = service,
                      .op =
                          service == MT_AWS_SQS ? "sqs.Test" : "scheduler.Test",
                      .method = method,
                      .path = path,
                      .target = service == MT_AWS_SQS ? "AmazonSQS.Test" : NULL,
                      .body = strcmp(method, "GET") != 0 ? "{}" : NULL,
                      .body_len = strcmp(method, "GET") != 0 ? 2 : 0,
                      .max_attempts = max_attempts};
  if (mt_aws_call(x->aws, &req, on_raw, r, &err) != 0)
    MT__FAIL("mt_aws_call: %s", err.msg);
  aws_fixture_wait(&x->f, &r->g.calls);
  ASSERT_LACKS(r->g.err, FAKE_TOKEN);
  ASSERT_LACKS(r->g.err, FAKE_SECRET);
  ASSERT_LACKS(r->g.message, FAKE_TOKEN);
}

static double nearly_one(void *arg) {
  (void)arg;
  return 0.999;
}

TEST(aws_client_signs_each_attempt_afresh) {
  /* A backoff just over a second, so that the retry's X-Amz-Date (to the
   * second) cannot be the first attempt's. */
  mt_http_opts_t opts = {
      .backoff_base_ms = 1200, .backoff_cap_ms = 1200, .random = nearly_one};
  fake_t x;
  raw_t r;
  char host[64];
  fake_start(&x, &opts);
  call(&x, MT_AWS_SQS, "POST", "/flaky?key=sqs&fail=1", 0, &r);
  ASSERT_EQ_INT(r.g.rc, 0);
  ASSERT_EQ_INT(r.g.attempts, 2);
  const mt_jval_t *att = mt_jval_get(mt_jdoc_root(r.doc), "attempts");
  ASSERT_TRUE(att != NULL && att->type == MT_JV_ARRAY && att->len == 2);
  const mt_jval_t *a0 = &att->u.items[0], *a1 = &att->u.items[1];
  ASSERT_TRUE(strcmp(ctl_str(a0, "x-amz-date"), ctl_str(a1, "x-amz-date")) !=
              0);
  ASSERT_TRUE(
      strcmp(ctl_str(a0, "authorization"), ctl_str(a1, "authorization")) != 0);
  for (int i = 0; i < 2; i++) {
    const mt_jval_t *a = &att->u.items[i];
    ASSERT_EQ_STR(ctl_str(a, "x-amz-security-token"), FAKE_TOKEN);
    ASSERT_EQ_STR(ctl_str(a, "x-amz-target"), "AmazonSQS.Test");
    ASSERT_EQ_STR(ctl_str(a, "content-type"), "application/x-amz-json-1.0");
    snprintf(host, sizeof host, "127.0.0.1:%d", x.server.port);
    ASSERT_EQ_STR(ctl_str(a, "host"), host);
    const char *auth = ctl_str(a, "authorization");
    ASSERT_CONTAINS(auth, "AWS4-HMAC-SHA256 Credential=ASIAFAKEKEYID/");
    ASSERT_CONTAINS(auth, "/eu-west-1/sqs/aws4_request");
    ASSERT_CONTAINS(auth, "SignedHeaders=content-type;host;x-amz-date;"
                          "x-amz-security-token;x-amz-target,");
  }
  mt_jdoc_free(r.doc);
  /* Scheduler signs for its own service name, with its content type. */
  call(&x, MT_AWS_SCHEDULER, "PUT", "/flaky?key=ebs&fail=0", 0, &r);
  ASSERT_EQ_INT(r.g.rc, 0);
  att = mt_jval_get(mt_jdoc_root(r.doc), "attempts");
  ASSERT_CONTAINS(ctl_str(&att->u.items[0], "authorization"),
                  "/eu-west-1/scheduler/aws4_request");
  ASSERT_EQ_STR(ctl_str(&att->u.items[0], "content-type"), "application/json");
  mt_jdoc_free(r.doc);
  fake_stop(&x);
}

TEST(aws_client_error_shapes_and_kinds) {
  fake_t x;
  raw_t r;
  fake_start(&x, &aws_fixture_http);
  /* A query-protocol XML error, entities decoded. */
  call(&x, MT_AWS_SQS, "POST", "/status?code=400&body=xml", 1, &r);
  ASSERT_EQ_INT(r.g.kind, MT_AWS_ENOTFOUND);
  ASSERT_EQ_INT(r.g.rc, MT_ENOTFOUND);
  ASSERT_EQ_STR(r.g.code, "AWS.SimpleQueueService.NonExistentQueue");
  ASSERT_EQ_STR(r.g.message, "The specified queue does not exist & never did.");
  ASSERT_CONTAINS(r.g.err, "fake-request-1");
  /* A JSON __type with namespace and suffix. */
  call(&x, MT_AWS_SCHEDULER, "POST", "/status?code=409&body=json-type", 1, &r);
  ASSERT_EQ_INT(r.g.kind, MT_AWS_ECONFLICT);
  ASSERT_EQ_STR(r.g.code, "ConflictException");
  ASSERT_EQ_STR(r.g.message, "Schedule mt-1 already exists.");
  /* A JSON "code" and "Message". */
  call(&x, MT_AWS_SCHEDULER, "GET", "/status?code=404&body=json-code", 1, &r);
  ASSERT_EQ_INT(r.g.kind, MT_AWS_ENOTFOUND);
  ASSERT_EQ_STR(r.g.code, "ResourceNotFoundException");
  /* No body: the status decides. */
  call(&x, MT_AWS_SCHEDULER, "DELETE", "/status?code=409&body=none", 1, &r);
  ASSERT_EQ_INT(r.g.kind, MT_AWS_ECONFLICT);
  ASSERT_EQ_STR(r.g.code, "");
  call(&x, MT_AWS_SCHEDULER, "GET", "/status?code=404&body=none", 1, &r);
  ASSERT_EQ_INT(r.g.kind, MT_AWS_ENOTFOUND);
  call(&x, MT_AWS_SCHEDULER, "GET", "/status?code=403&body=none", 1, &r);
  ASSERT_EQ_INT(r.g.kind, MT_AWS_EAUTH);
  call(&x, MT_AWS_SCHEDULER, "GET", "/status?code=418&body=none", 1, &r);
  ASSERT_EQ_INT(r.g.kind, MT_AWS_EOTHER);
  /* A proxy's page, retried as a 5xx until the attempts run out. */
  call(&x, MT_AWS_SQS, "POST", "/status?code=502&body=html", 2, &r);
  ASSERT_EQ_INT(r.g.kind, MT_AWS_ESERVER);
  ASSERT_EQ_INT(r.g.attempts, 2);
  ASSERT_CONTAINS(r.g.message, "Internal Server Error");
  ASSERT_LACKS(r.g.message, "\n");
  /* A 2xx that is not JSON; one with no body is an empty object. */
  call(&x, MT_AWS_SQS, "POST", "/text", 1, &r);
  ASSERT_EQ_INT(r.g.kind, MT_AWS_EPROTOCOL);
  ASSERT_EQ_INT(r.g.rc, MT_EPAYLOAD);
  call(&x, MT_AWS_SCHEDULER, "DELETE", "/empty", 1, &r);
  ASSERT_EQ_INT(r.g.kind, MT_AWS_OK);
  ASSERT_TRUE(r.doc != NULL);
  ASSERT_EQ_INT(mt_jdoc_root(r.doc)->type, MT_JV_OBJECT);
  mt_jdoc_free(r.doc);
  /* An error that quotes the canonical request, token and all: the token
   * is cut out (call() checks every text for it). */
  call(&x, MT_AWS_SQS, "POST", "/quote-secrets", 1, &r);
  ASSERT_EQ_INT(r.g.kind, MT_AWS_EAUTH);
  ASSERT_EQ_STR(r.g.code, "SignatureDoesNotMatch");
  ASSERT_CONTAINS(r.g.message, "x-amz-security-token:[redacted]");
  /* A plain-text body is cut to an excerpt, after the token is out of it:
   * not even the token's first bytes before the cut remain. */
  call(&x, MT_AWS_SQS, "POST", "/status?code=400&body=token", 1, &r);
  ASSERT_EQ_INT(r.g.kind, MT_AWS_EOTHER);
  ASSERT_CONTAINS(r.g.message, " token [re");
  ASSERT_LACKS(r.g.message, "token FAK");
  /* Nothing listens: no response, after the attempts. */
  char url[64];
  mt_aws_t *gone = NULL;
  mt_err_t err;
  snprintf(url, sizeof url, "http://127.0.0.1:%d", fake_server_closed_port());
  mt_aws_conf_t conf = {.endpoint = url};
  if (mt_aws_new(&x.f.loop, &conf, x.creds, &aws_fixture_http, &gone, &err) !=
      0)
    MT__FAIL("mt_aws_new: %s", err.msg);
  mt_aws_t *keep_aws = x.aws;
  x.aws = gone;
  call(&x, MT_AWS_SQS, "POST", "/", 2, &r);
  ASSERT_EQ_INT(r.g.kind, MT_AWS_ENORESPONSE);
  ASSERT_EQ_INT(r.g.rc, MT_EIO);
  ASSERT_EQ_INT(r.g.status, 0);
  ASSERT_CONTAINS(r.g.err, "sqs.Test");
  /* Pending calls are called back when the client goes. */
  mt_aws_req_t req = {.service = MT_AWS_SQS, .op = "sqs.Test", .path = "/"};
  memset(&r, 0, sizeof r);
  ASSERT_EQ_INT(mt_aws_call(gone, &req, on_raw, &r, &err), 0);
  mt_aws_free(gone);
  ASSERT_EQ_INT(r.g.calls, 1);
  ASSERT_EQ_INT(r.g.kind, MT_AWS_ENORESPONSE);
  x.aws = keep_aws;
  fake_stop(&x);
}

TEST(aws_client_endpoints_and_configuration) {
  mt_aws_creds_provider_t *creds = NULL;
  mt_aws_t *aws = NULL;
  mt_err_t err;
  uv_loop_t loop;
  alarm(AWS_FIXTURE_WATCHDOG_SECONDS);
  aws_fixture_env("AKIDCONF", "conf-secret-0123456789abcdef", NULL);
  if (mt_aws_creds_open(NULL, &creds, &err) != 0)
    MT__FAIL("mt_aws_creds_open: %s", err.msg);
  /* The real endpoints, per service and partition. */
  mt_aws_conf_t conf = {.region = "eu-central-1"};
  ASSERT_EQ_INT(mt_aws_new(NULL, &conf, creds, NULL, &aws, &err), 0);
  ASSERT_EQ_STR(mt_aws_endpoint(aws, MT_AWS_SQS),
                "https://sqs.eu-central-1.amazonaws.com");
  ASSERT_EQ_STR(mt_aws_endpoint(aws, MT_AWS_SCHEDULER),
                "https://scheduler.eu-central-1.amazonaws.com");
  ASSERT_TRUE(mt_aws_conf(aws)->endpoint == NULL);
  /* Without a loop, only the blocking calls. */
  mt_aws_req_t req = {.service = MT_AWS_SQS, .path = "/"};
  raw_t r;
  ASSERT_EQ_INT(mt_aws_call(aws, &req, on_raw, &r, &err), MT_ESTATE);
  mt_aws_free(aws);
  conf.region = "cn-north-1";
  ASSERT_EQ_INT(mt_aws_new(NULL, &conf, creds, NULL, &aws, &err), 0);
  ASSERT_EQ_STR(mt_aws_endpoint(aws, MT_AWS_SQS),
                "https://sqs.cn-north-1.amazonaws.com.cn");
  mt_aws_free(aws);
  /* The SDKs' endpoint variables, the service's own first. */
  setenv("AWS_ENDPOINT_URL", "http://localhost:4566/", 1);
  setenv("AWS_ENDPOINT_URL_SQS", "https://vpce-1.sqs.example.com", 1);
  conf.region = NULL; /* $AWS_REGION */
  ASSERT_EQ_INT(mt_aws_new(NULL, &conf, creds, NULL, &aws, &err), 0);
  ASSERT_EQ_STR(mt_aws_conf(aws)->region, AWS_FIXTURE_REGION);
  ASSERT_EQ_STR(mt_aws_endpoint(aws, MT_AWS_SQS),
                "https://vpce-1.sqs.example.com");
  ASSERT_EQ_STR(mt_aws_endpoint(aws, MT_AWS_SCHEDULER),
                "http://localhost:4566");
  mt_aws_free(aws);
  /* A configured endpoint wins over both, a base path kept. */
  conf.endpoint = "http://127.0.0.1:4566/base/";
  ASSERT_EQ_INT(mt_aws_new(NULL, &conf, creds, NULL, &aws, &err), 0);
  ASSERT_EQ_STR(mt_aws_endpoint(aws, MT_AWS_SQS), "http://127.0.0.1:4566/base");
  ASSERT_EQ_STR(mt_aws_endpoint(aws, MT_AWS_SCHEDULER),
                "http://127.0.0.1:4566/base");
  mt_aws_free(aws);
  unsetenv("AWS_ENDPOINT_URL");
  unsetenv("AWS_ENDPOINT_URL_SQS");
  /* What is refused, by name. */
  conf.endpoint = "ftp://example.com";
  ASSERT_EQ_INT(mt_aws_new(NULL, &conf, creds, NULL, &aws, &err), MT_ECONFIG);
  ASSERT_CONTAINS(err.msg, "ftp://example.com");
  conf.endpoint = "http://user:pw@example.com";
  ASSERT_EQ_INT(mt_aws_new(NULL, &conf, creds, NULL, &aws, &err), MT_ECONFIG);
  ASSERT_LACKS(err.msg, "pw");
  conf.endpoint = NULL;
  unsetenv("AWS_REGION");
  ASSERT_EQ_INT(mt_aws_new(NULL, &conf, creds, NULL, &aws, &err), MT_ECONFIG);
  ASSERT_CONTAINS(err.msg, "AWS_REGION");
  conf.region = "eu-west-1/../x";
  ASSERT_EQ_INT(mt_aws_new(NULL, &conf, creds, NULL, &aws, &err), MT_ECONFIG);
  ASSERT_TRUE(aws == NULL);
  /* With a loop, and freed at once. */
  ASSERT_EQ_INT(uv_loop_init(&loop), 0);
  conf.region = "eu-west-1";
  ASSERT_EQ_INT(mt_aws_new(&loop, &conf, creds, NULL, &aws, &err), 0);
  ASSERT_TRUE(mt_aws_http(aws) != NULL);
  mt_aws_free(aws);
  mt_aws_free(NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ_INT(uv_loop_close(&loop), 0);
  mt_aws_creds_close(creds);
  mt_aws_result_free(NULL);
}
