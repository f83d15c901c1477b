#include "aws/scheduler.h"

#include <ctype.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/buf.h"
#include "json/doc.h"
#include "scheduler/cron.h"

#define NAME_CHARS \
  "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_."
#define TOKEN_CHARS \
  "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"

typedef enum op_kind_e {
  OP_CREATE,
  OP_UPDATE,
  OP_UPSERT,
  OP_GET,
  OP_DELETE,
  OP_GROUP
} op_kind_t;

static const char *const op_labels[] = {
    "scheduler.CreateSchedule", "scheduler.UpdateSchedule",
    "scheduler.UpdateSchedule", "scheduler.GetSchedule",
    "scheduler.DeleteSchedule", "scheduler.GetScheduleGroup"};

/* A call on its way: the caller's callback and, for an upsert, what it
 * needs to send the next request of its sequence. */
typedef struct ebs_op_s {
  op_kind_t kind;
  union {
    mt_ebs_write_cb write;
    mt_ebs_get_cb get;
    mt_ebs_delete_cb del;
    mt_ebs_group_cb group;
  } cb;
  void *arg;
  mt_aws_t *aws;
  /* Upsert: 0 update, 1 create (the update found none), 2 update again
   * (the create found one after all). */
  int step;
  char *path;
  mt_buf_t body;
} ebs_op_t;

/* ---- names and expressions ---------------------------------------------- */

int mt_ebs_name_valid(const char *name) {
  size_t n = name != NULL ? strlen(name) : 0;
  return n >= 1 && n <= MT_EBS_NAME_MAX && strspn(name, NAME_CHARS) == n;
}

void mt_ebs_task_name(int64_t task_id, char out[MT_EBS_NAME_MAX + 1]) {
  snprintf(out, MT_EBS_NAME_MAX + 1, "mt-%lld", (long long)task_id);
}

int mt_ebs_recurring_name(const char *name, char out[MT_EBS_NAME_MAX + 1]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  size_t n = strlen(name);
  if (n >= 1 && n <= MT_EBS_NAME_MAX - 4 && strspn(name, NAME_CHARS) == n) {
    snprintf(out, MT_EBS_NAME_MAX + 1, "mtr-%s", name);
    return 0;
  }
  if (EVP_Digest(name, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 10)
    return MT_ESYS;
  /* 4 + 39 + 1 + 20 = 64. */
  size_t k = 0, prefix = n < 39 ? n : 39;
  memcpy(out, "mth-", 4);
  k = 4;
  for (size_t i = 0; i < prefix; i++)
    out[k++] = strchr(NAME_CHARS, name[i]) != NULL && name[i] ? name[i] : '_';
  out[k++] = '-';
  for (size_t i = 0; i < 10; i++) {
    out[k++] = hex[md[i] >> 4];
    out[k++] = hex[md[i] & 15];
  }
  out[k] = '\0';
  return 0;
}

int mt_ebs_at_expression(double epoch, char out[32]) {
  struct tm tm;
  /* 253402300800 is 10000-01-01T00:00:00Z. */
  if (!(epoch >= 0 && epoch < 253402300800.0))
    return MT_EINVAL;
  time_t t = (time_t)floor(epoch);
  if (gmtime_r(&t, &tm) == NULL)
    return MT_EINVAL;
  if (strftime(out, 32, "at(%Y-%m-%dT%H:%M:%S)", &tm) == 0)
    return MT_EINVAL;
  return 0;
}

/* n digits at s as a number, or -1. */
static int digits(const char *s, int n) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

static int check_at(const char *e, mt_err_t *err) {
  /* at(yyyy-mm-ddThh:mm:ss) */
  const char *d = e + 3;
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (strlen(e) != 3 + 19 + 1 || d[4] != '-' || d[7] != '-' || d[10] != 'T' ||
      d[13] != ':' || d[16] != ':' || d[19] != ')')
    return mt_err_set(err, MT_EINVAL,
                      "\"%s\": an at() expression is at(yyyy-mm-ddThh:mm:ss)",
                      e);
  int y = digits(d, 4), mo = digits(d + 5, 2), day = digits(d + 8, 2);
  int h = digits(d + 11, 2), mi = digits(d + 14, 2), s = digits(d + 17, 2);
  int leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
  if (y < 0 || mo < 1 || mo > 12 || day < 1 ||
      day > mdays[mo - 1] + (mo == 2 && leap) || h < 0 || h > 23 || mi < 0 ||
      mi > 59 || s < 0 || s > 59)
    return mt_err_set(err, MT_EINVAL, "\"%s\": no such date and time", e);
  return 0;
}

static int check_rate(const char *e, mt_err_t *err) {
  /* rate(<n> <unit>), the unit singular for 1 and plural otherwise, as
   * EventBridge insists. */
  const char *p = e + 5;
  size_t nd = strspn(p, "0123456789");
  if (nd == 0 || nd > 9 || p[0] == '0' || p[nd] != ' ')
    return mt_err_set(err, MT_EINVAL,
                      "\"%s\": a rate() expression is rate(<n> <unit>), n a "
                      "positive whole number",
                      e);
  int n = digits(p, (int)nd);
  const char *unit = p + nd + 1;
  static const char *const units[] = {"minute", "hour", "day"};
  for (size_t i = 0; i < 3; i++) {
    size_t ul = strlen(units[i]);
    if (strncmp(unit, units[i], ul) != 0)
      continue;
    const char *rest = unit + ul;
    if (n == 1 && strcmp(rest, ")") == 0)
      return 0;
    if (n > 1 && strcmp(rest, "s)") == 0)
      return 0;
    return mt_err_set(err, MT_EINVAL,
                      "\"%s\": write rate(1 %s) or rate(<n> %ss)", e, units[i],
                      units[i]);
  }
  return mt_err_set(err, MT_EINVAL,
                    "\"%s\": the unit of a rate() is minute(s), hour(s) or "
                    "day(s)",
                    e);
}

static int check_cron(const char *e, mt_err_t *err) {
  /* cron(minutes hours day-of-month month day-of-week year) */
  size_t len = strlen(e), fields = 0;
  if (e[len - 1] != ')')
    return mt_err_set(err, MT_EINVAL, "\"%s\": no closing parenthesis", e);
  for (size_t i = 5; i < len - 1;) {
    while (i < len - 1 && e[i] == ' ')
      i++;
    if (i >= len - 1)
      break;
    fields++;
    while (i < len - 1 && e[i] != ' ')
      i++;
  }
  if (fields != 6)
    return mt_err_set(err, MT_EINVAL,
                      "\"%s\": EventBridge's cron() has six fields (minutes "
                      "hours day-of-month month day-of-week year), not %zu",
                      e, fields);
  return 0;
}

int mt_ebs_expression_check(const char *expr, mt_err_t *err) {
  if (expr == NULL || *expr == '\0')
    return mt_err_set(err, MT_EINVAL, "no schedule expression");
  if (strlen(expr) > 256)
    return mt_err_set(err, MT_EINVAL,
                      "a schedule expression has at most 256 characters");
  for (const char *p = expr; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      return mt_err_set(err, MT_EINVAL,
                        "a control character in a schedule expression");
  if (strncmp(expr, "at(", 3) == 0)
    return check_at(expr, err);
  if (strncmp(expr, "rate(", 5) == 0)
    return check_rate(expr, err);
  if (strncmp(expr, "cron(", 5) == 0)
    return check_cron(expr, err);
  return mt_err_set(err, MT_EINVAL,
                    "\"%s\": a schedule expression is at(...), rate(...) or "
                    "cron(...)",
                    expr);
}

/* ---- recurring expressions ---------------------------------------------- */

/* The Vixie macros, as scheduler/cron.c expands them. */
static const struct {
  const char *name, *fields;
} vixie_macros[] = {{"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"},
                    {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
                    {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
                    {"@hourly", "0 * * * *"}};

static const char *const day_names[] = {"SUN", "MON", "TUE", "WED",
                                        "THU", "FRI", "SAT"};

/* A piece of the expression's text, read in place. */
typedef struct span_s {
  const char *s;
  size_t n;
} span_t;

/* Splits s[0..n) at runs of blanks, as the cron parser does. Returns the
 * field count; only the first max are stored. */
static int split_spans(const char *s, size_t n, span_t *f, int max) {
  int count = 0;
  for (size_t i = 0; i < n;) {
    if (s[i] == ' ' || s[i] == '\t') {
      i++;
      continue;
    }
    size_t start = i;
    while (i < n && s[i] != ' ' && s[i] != '\t')
      i++;
    if (count < max)
      f[count] = (span_t){s + start, i - start};
    count++;
  }
  return count;
}

/* A Vixie day-of-week value: 0-7 (leading zeros and all), or a name
 * (*named set). -1 if neither, which the parser will have refused. */
static int dow_value(const char *s, size_t n, int *named) {
  int v = 0;
  *named = 0;
  if (n > 0 && s[0] >= '0' && s[0] <= '9') {
    for (size_t i = 0; i < n; i++) {
      if (s[i] < '0' || s[i] > '9')
        return -1;
      if (v <= 7)
        v = v * 10 + (s[i] - '0');
    }
    return v <= 7 ? v : -1;
  }
  for (int i = 0; n == 3 && i < 7; i++)
    if (strncasecmp(s, day_names[i], 3) == 0) {
      *named = 1;
      return i;
    }
  return -1;
}

/* EventBridge's day d (1-7, 1 Sunday) as a name or a number. */
static int put_day(mt_buf_t *b, int d, int named) {
  return named ? mt_buf_puts(b, day_names[d - 1]) : mt_buf_printf(b, "%d", d);
}

/* Writes one element of a Vixie day-of-week list (`*`, `d` or `a-b`, each
 * perhaps with `/step`) as EventBridge reads the same days. Names stay names
 * where both ends were names. Returns 0, MT_EINVAL for what the parser
 * should have refused, or MT_ENOMEM. */
static int dow_element(mt_buf_t *b, const char *s, size_t n) {
  const char *slash = memchr(s, '/', n);
  size_t left = slash != NULL ? (size_t)(slash - s) : n;
  int lo = 0, hi = 7, step = 1, named = 0, named_hi = 0, rc = 0;
  if (!(left == 1 && s[0] == '*')) {
    const char *dash = memchr(s, '-', left);
    size_t alen = dash != NULL ? (size_t)(dash - s) : left;
    lo = dow_value(s, alen, &named);
    if (dash != NULL) {
      hi = dow_value(dash + 1, left - alen - 1, &named_hi);
      named = named && named_hi;
      /* As the parser reads it: MON-SUN runs forwards to 7. */
      if (hi == 0 && lo > 0)
        hi = 7;
    } else if (slash == NULL) {
      hi = lo;
    }
  }
  if (slash != NULL) {
    size_t k = (size_t)(slash - s) + 1;
    long x = 0;
    if (k == n)
      return MT_EINVAL;
    for (; k < n; k++) {
      if (s[k] < '0' || s[k] > '9')
        return MT_EINVAL;
      if (x < 1000)
        x = x * 10 + (s[k] - '0');
    }
    step = (int)x;
  }
  if (lo < 0 || hi < lo || step < 1)
    return MT_EINVAL;
  if (slash != NULL) {
    /* EventBridge has no step in day-of-week: the days are listed, each
     * once (0 and 7 are both Sunday). */
    unsigned seen = 0;
    for (int v = lo; v <= hi && rc == 0; v += step) {
      int d = v % 7 + 1;
      if (seen & (1u << d))
        continue;
      if (seen != 0)
        rc = mt_buf_putc(b, ',');
      seen |= 1u << d;
      if (rc == 0)
        rc = put_day(b, d, named);
    }
  } else if (lo == hi || (lo == 0 && hi == 7)) {
    /* One day, or the whole week (0-7, SUN-SUN read forwards). */
    rc = put_day(b, lo % 7 + 1, named);
    if (rc == 0 && lo != hi) {
      rc = mt_buf_putc(b, '-');
      if (rc == 0)
        rc = put_day(b, 7, named);
    }
  } else if (hi <= 6) {
    rc = put_day(b, lo + 1, named);
    if (rc == 0)
      rc = mt_buf_putc(b, '-');
    if (rc == 0)
      rc = put_day(b, hi + 1, named);
  } else {
    /* Ending on Vixie's 7, Sunday, the range would wrap from Saturday (7)
     * to Sunday (1) in EventBridge's numbering: it becomes a list. */
    rc = put_day(b, lo + 1, named);
    if (rc == 0 && lo < 6) {
      rc = mt_buf_putc(b, '-');
      if (rc == 0)
        rc = put_day(b, 7, named);
    }
    if (rc == 0)
      rc = mt_buf_putc(b, ',');
    if (rc == 0)
      rc = put_day(b, 1, named);
  }
  return rc;
}

/* Writes a Vixie day-of-week list element by element. */
static int dow_list(mt_buf_t *b, span_t f) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < f.n;) {
    const char *comma = memchr(f.s + i, ',', f.n - i);
    size_t end = comma != NULL ? (size_t)(comma - f.s) : f.n;
    if (i > 0)
      rc = mt_buf_putc(b, ',');
    if (rc == 0)
      rc = dow_element(b, f.s + i, end - i);
    i = end + 1;
  }
  return rc;
}

/* Writes a field as it is, its month names upper-cased. */
static int put_upper(mt_buf_t *b, span_t f) {
  int rc = 0;
  for (size_t i = 0; i < f.n && rc == 0; i++)
    rc = mt_buf_putc(b, (char)toupper((unsigned char)f.s[i]));
  return rc;
}

/* Writes cron(...) for five Vixie fields, or refuses them. what quotes the
 * expression in messages. */
static int vixie_to_eventbridge(mt_buf_t *b, const span_t f[5],
                                const span_t *what, mt_err_t *err) {
  int dom_star = f[2].n == 1 && f[2].s[0] == '*';
  int dow_star = f[4].n == 1 && f[4].s[0] == '*';
  int rc;
  /* Vixie cron fires on a day that either restricted day field matches;
   * EventBridge takes one of them and needs the other to be `?`. A field
   * is `*` only as the literal `*`, as the parser decides. */
  if (!dom_star && !dow_star)
    return mt_err_set(err, MT_EINVAL,
                      "\"%.*s\": day-of-month \"%.*s\" and day-of-week "
                      "\"%.*s\" are both restricted: the schedule fires when "
                      "either matches, which EventBridge Scheduler cannot "
                      "express (one of them must be \"?\")",
                      (int)what->n, what->s, (int)f[2].n, f[2].s, (int)f[4].n,
                      f[4].s);
  rc = mt_buf_printf(b, "cron(%.*s %.*s ", (int)f[0].n, f[0].s, (int)f[1].n,
                     f[1].s);
  if (rc == 0)
    rc = dom_star && !dow_star ? mt_buf_putc(b, '?')
                               : mt_buf_append(b, f[2].s, f[2].n);
  if (rc == 0)
    rc = mt_buf_putc(b, ' ');
  if (rc == 0)
    rc = put_upper(b, f[3]);
  if (rc == 0)
    rc = mt_buf_putc(b, ' ');
  if (rc == 0)
    rc = dow_star ? mt_buf_putc(b, '?') : dow_list(b, f[4]);
  if (rc == 0)
    rc = mt_buf_puts(b, " *)");
  if (rc == MT_EINVAL)
    return mt_err_set(err, MT_EINVAL,
                      "\"%.*s\": day-of-week \"%.*s\" has no EventBridge "
                      "form",
                      (int)what->n, what->s, (int)f[4].n, f[4].s);
  if (rc != 0)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  return 0;
}

/* 1 if msg already quotes the n bytes at s. */
static int quotes(const char *msg, const char *s, size_t n) {
  for (const char *q = strchr(msg, '"'); q != NULL; q = strchr(q + 1, '"'))
    if (strncmp(q + 1, s, n) == 0 && q[n + 1] == '"')
      return 1;
  return 0;
}

/* Writes the EventBridge form of the trimmed expression e into b. */
static int recurring_form(mt_buf_t *b, span_t e, mt_err_t *err) {
  span_t f[6];
  if (strncmp(e.s, "cron(", 5) == 0 || strncmp(e.s, "rate(", 5) == 0)
    return mt_buf_append(b, e.s, e.n) != 0
               ? mt_err_set(err, MT_ENOMEM, "out of memory")
               : 0;
  if (e.s[0] == '@') {
    for (size_t i = 0; i < sizeof vixie_macros / sizeof *vixie_macros; i++) {
      const char *x = vixie_macros[i].fields;
      if (strlen(vixie_macros[i].name) == e.n &&
          strncasecmp(e.s, vixie_macros[i].name, e.n) == 0) {
        split_spans(x, strlen(x), f, 5);
        return vixie_to_eventbridge(b, f, &e, err);
      }
    }
    /* The parser takes no other macro. */
    return mt_err_set(err, MT_EINVAL, "\"%.*s\": not a supported macro",
                      (int)e.n, e.s);
  }
  int n = split_spans(e.s, e.n, f, 6);
  if (n == 6)
    return mt_err_set(err, MT_EINVAL,
                      "\"%.*s\": EventBridge Scheduler fires at minute "
                      "precision: a seconds field cannot be expressed",
                      (int)e.n, e.s);
  if (n != 5)
    return mt_err_set(err, MT_EINVAL,
                      "\"%.*s\": not five fields, an @macro, cron(...) or "
                      "rate(...)",
                      (int)e.n, e.s);
  return vixie_to_eventbridge(b, f, &e, err);
}

int mt_ebs_recurring_expression(const char *expr, char out[MT_EBS_EXPR_MAX],
                                mt_err_t *err) {
  mt_buf_t b = MT_BUF_INIT;
  mt_cron_t *c = NULL;
  mt_err_t why;
  int rc;
  out[0] = '\0';
  if (expr == NULL)
    return mt_err_set(err, MT_EINVAL, "no schedule expression");
  /* Blanks around the expression (and a line end) mean nothing to the
   * parser, and EventBridge would not take them. */
  span_t e = {expr, 0};
  while (*e.s == ' ' || *e.s == '\t')
    e.s++;
  e.n = strlen(e.s);
  while (e.n > 0 && (e.s[e.n - 1] == ' ' || e.s[e.n - 1] == '\t' ||
                     e.s[e.n - 1] == '\n' || e.s[e.n - 1] == '\r'))
    e.n--;
  /* Only what moontask itself would run is converted, and what it would
   * not keeps the parser's message, which names the field at fault. */
  rc = mt_cron_parse(expr, &c, &why);
  mt_cron_free(c);
  if (rc == MT_ENOMEM)
    return mt_err_set(err, rc, "out of memory");
  if (rc != 0)
    return quotes(why.msg, e.s, e.n) || quotes(why.msg, expr, strlen(expr))
               ? mt_err_set(err, rc, "%s", why.msg)
               : mt_err_set(err, rc, "\"%.*s\": %s", (int)e.n, e.s, why.msg);
  if ((rc = recurring_form(&b, e, err)) != 0)
    goto done;
  if (mt_ebs_expression_check(b.data, &why) != 0) {
    rc = quotes(why.msg, e.s, e.n) ? mt_err_set(err, MT_EINVAL, "%s", why.msg)
                                   : mt_err_set(err, MT_EINVAL, "\"%.*s\": %s",
                                                (int)e.n, e.s, why.msg);
    goto done;
  }
  /* The check allows at most 256 characters. */
  memcpy(out, b.data, b.len + 1);
done:
  mt_buf_free(&b);
  return rc;
}

/* ---- requests ----------------------------------------------------------- */

static const char *group_of(mt_aws_t *aws, const char *group) {
  if (group != NULL)
    return group;
  group = mt_aws_conf(aws)->schedule_group;
  return group != NULL ? group : "default";
}

static int check_name(const char *op, const char *what, const char *name,
                      mt_err_t *err) {
  if (!mt_ebs_name_valid(name))
    return mt__aws_refuse(err, op,
                          "%s name \"%.80s\" is not 1-%d characters of "
                          "[0-9A-Za-z_.-]",
                          what, name != NULL ? name : "(null)",
                          MT_EBS_NAME_MAX);
  return 0;
}

static int check_token(const char *op, const char *token, mt_err_t *err) {
  size_t n = token != NULL ? strlen(token) : 0;
  if (token != NULL && (n < 1 || n > 64 || strspn(token, TOKEN_CHARS) != n))
    return mt__aws_refuse(err, op,
                          "a client token is 1-64 characters of "
                          "[0-9A-Za-z_-]");
  return 0;
}

/* Checks s and writes CreateSchedule's and UpdateSchedule's body. */
static int schedule_body(mt_aws_t *aws, const char *op,
                         const mt_ebs_schedule_t *s, mt_buf_t *b,
                         mt_err_t *err) {
  const char *group = group_of(aws, s->group);
  const char *role =
      s->role_arn != NULL ? s->role_arn : mt_aws_conf(aws)->role_arn;
  mt_err_t why;
  int rc;
  if ((rc = check_name(op, "schedule", s->name, err)) != 0 ||
      (rc = check_name(op, "group", group, err)) != 0 ||
      (rc = check_token(op, s->client_token, err)) != 0)
    return rc;
  if (mt_ebs_expression_check(s->expression, &why) != 0)
    return mt__aws_refuse(err, op, "%s", why.msg);
  if (s->timezone != NULL && (*s->timezone == '\0' || strlen(s->timezone) > 50))
    return mt__aws_refuse(err, op, "a time zone name has 1-50 characters");
  if (s->flexible_minutes < 0 || s->flexible_minutes > 1440)
    return mt__aws_refuse(err, op,
                          "a flexible window is 1-1440 minutes (0: off)");
  if (s->target_arn == NULL || strncmp(s->target_arn, "arn:", 4) != 0)
    return mt__aws_refuse(err, op, "the target must be an ARN (the queue's)");
  if (role == NULL || strncmp(role, "arn:", 4) != 0)
    return mt__aws_refuse(err, op,
                          "no role ARN for EventBridge to assume (set "
                          "aws.role_arn)");
  if (s->input != NULL && *s->input == '\0')
    return mt__aws_refuse(err, op, "a target's Input may not be empty");
  if (s->message_group_id != NULL && *s->message_group_id == '\0')
    return mt__aws_refuse(err, op, "an empty MessageGroupId");
  rc = mt_buf_putc(b, '{');
  if (rc == 0)
    rc = mt__aws_jkey_str(b, 1, "GroupName", group);
  if (rc == 0)
    rc = mt__aws_jkey_str(b, 0, "ScheduleExpression", s->expression);
  if (rc == 0 && s->timezone != NULL)
    rc = mt__aws_jkey_str(b, 0, "ScheduleExpressionTimezone", s->timezone);
  if (rc == 0)
    rc = s->flexible_minutes > 0
             ? mt_buf_printf(b,
                             ",\"FlexibleTimeWindow\":{\"Mode\":\"FLEXIBLE\","
                             "\"MaximumWindowInMinutes\":%d}",
                             s->flexible_minutes)
             : mt_buf_puts(b, ",\"FlexibleTimeWindow\":{\"Mode\":\"OFF\"}");
  if (rc == 0)
    rc = mt_buf_puts(b, ",\"Target\":{");
  if (rc == 0)
    rc = mt__aws_jkey_str(b, 1, "Arn", s->target_arn);
  if (rc == 0)
    rc = mt__aws_jkey_str(b, 0, "RoleArn", role);
  if (rc == 0 && s->input != NULL)
    rc = mt__aws_jkey_str(b, 0, "Input", s->input);
  if (rc == 0 && s->message_group_id != NULL) {
    rc = mt_buf_puts(b, ",\"SqsParameters\":{");
    if (rc == 0)
      rc = mt__aws_jkey_str(b, 1, "MessageGroupId", s->message_group_id);
    if (rc == 0)
      rc = mt_buf_putc(b, '}');
  }
  if (rc == 0)
    rc = mt_buf_putc(b, '}');
  /* A one-off fires once; left behind it would still count (and bill)
   * as a schedule until the executor's own delete. */
  if (rc == 0)
    rc = mt__aws_jkey_str(b, 0, "ActionAfterCompletion",
                          strncmp(s->expression, "at(", 3) == 0 ? "DELETE"
                                                                : "NONE");
  if (rc == 0)
    rc = mt__aws_jkey_str(b, 0, "State", s->disabled ? "DISABLED" : "ENABLED");
  if (rc == 0 && s->client_token != NULL)
    rc = mt__aws_jkey_str(b, 0, "ClientToken", s->client_token);
  if (rc == 0)
    rc = mt_buf_putc(b, '}');
  if (rc != 0)
    return mt_err_set(err, MT_ENOMEM, "%s: out of memory", op);
  return 0;
}

static void op_free(ebs_op_t *op) {
  if (op == NULL)
    return;
  free(op->path);
  mt_buf_free(&op->body);
  free(op);
}

static void on_done(mt_aws_result_t *res, void *arg);

/* Sends the op's current request: the method follows from its kind and
 * step. */
static int op_send(ebs_op_t *op, mt_err_t *err) {
  const char *method = "GET", *label = op_labels[op->kind];
  switch (op->kind) {
  case OP_CREATE: method = "POST"; break;
  case OP_UPDATE: method = "PUT"; break;
  case OP_UPSERT:
    method = op->step == 1 ? "POST" : "PUT";
    label = op_labels[op->step == 1 ? OP_CREATE : OP_UPDATE];
    break;
  case OP_DELETE: method = "DELETE"; break;
  case OP_GET:
  case OP_GROUP: break;
  }
  mt_aws_req_t req = {
      .service = MT_AWS_SCHEDULER,
      .op = label,
      .method = method,
      .path = op->path,
      .body = op->body.data,
      .body_len = op->body.len,
  };
  return mt_aws_call(op->aws, &req, on_done, op, err);
}

static void parse_info(const mt_jval_t *j, mt_ebs_info_t *out) {
  const mt_jval_t *target = mt_jval_get(j, "Target");
  memset(out, 0, sizeof *out);
  out->arn = mt__aws_jstr(j, "Arn");
  out->name = mt__aws_jstr(j, "Name");
  out->group = mt__aws_jstr(j, "GroupName");
  out->expression = mt__aws_jstr(j, "ScheduleExpression");
  out->timezone = mt__aws_jstr(j, "ScheduleExpressionTimezone");
  out->state = mt__aws_jstr(j, "State");
  out->action_after_completion = mt__aws_jstr(j, "ActionAfterCompletion");
  out->flexible_mode =
      mt__aws_jstr(mt_jval_get(j, "FlexibleTimeWindow"), "Mode");
  out->target_arn = mt__aws_jstr(target, "Arn");
  out->role_arn = mt__aws_jstr(target, "RoleArn");
  out->input = mt__aws_jstr(target, "Input");
  out->message_group_id =
      mt__aws_jstr(mt_jval_get(target, "SqsParameters"), "MessageGroupId");
}

static void parse_group(const mt_jval_t *j, mt_ebs_group_t *out) {
  out->arn = mt__aws_jstr(j, "Arn");
  out->name = mt__aws_jstr(j, "Name");
  out->state = mt__aws_jstr(j, "State");
}

static void on_done(mt_aws_result_t *res, void *arg) {
  ebs_op_t *op = arg;
  if (op->kind == OP_UPSERT &&
      ((op->step == 0 && res->kind == MT_AWS_ENOTFOUND) ||
       (op->step == 1 && res->kind == MT_AWS_ECONFLICT))) {
    mt_err_t err;
    op->step++;
    if (op_send(op, &err) == 0)
      return; /* the next request carries op on */
    /* The next step could not even be sent (the client is closing, say):
     * that is the outcome. */
    res->rc = mt_err_set(&res->err, MT_EIO, "%s", err.msg);
    res->kind = MT_AWS_ENORESPONSE;
  }
  const mt_aws_result_t *r = res;
  switch (op->kind) {
  case OP_CREATE:
  case OP_UPDATE:
  case OP_UPSERT: {
    mt_ebs_written_t out = {NULL, op->kind == OP_UPSERT && op->step == 1};
    if (r->rc == 0)
      out.arn = mt__aws_jstr(r->json, "ScheduleArn");
    op->cb.write(r, r->rc == 0 ? &out : NULL, op->arg);
    break;
  }
  case OP_GET: {
    mt_ebs_info_t out;
    if (r->rc == 0)
      parse_info(r->json, &out);
    op->cb.get(r, r->rc == 0 ? &out : NULL, op->arg);
    break;
  }
  case OP_DELETE: op->cb.del(r, op->arg); break;
  case OP_GROUP: {
    mt_ebs_group_t out = {NULL, NULL, NULL};
    if (r->rc == 0)
      parse_group(r->json, &out);
    op->cb.group(r, r->rc == 0 ? &out : NULL, op->arg);
    break;
  }
  }
  op_free(op);
}

/* Makes an op for kind with its path; the caller adds the body. */
static ebs_op_t *op_new(mt_aws_t *aws, op_kind_t kind, void *arg,
                        const char *fmt, const char *a, const char *b,
                        const char *c) {
  ebs_op_t *op = calloc(1, sizeof *op);
  mt_buf_t path = MT_BUF_INIT;
  if (op == NULL)
    return NULL;
  op->kind = kind;
  op->aws = aws;
  op->arg = arg;
  if (mt_buf_printf(&path, fmt, a, b, c != NULL ? c : "") != 0) {
    free(op);
    return NULL;
  }
  op->path = path.data;
  return op;
}

/* Sends op (consuming it) or reports why not. */
static int op_start(ebs_op_t *op, mt_err_t *err) {
  int rc = op_send(op, err);
  if (rc != 0)
    op_free(op);
  return rc;
}

static int write_op(mt_aws_t *aws, op_kind_t kind, const mt_ebs_schedule_t *s,
                    mt_ebs_write_cb cb, void *arg, mt_err_t *err) {
  const char *label = op_labels[kind == OP_CREATE ? OP_CREATE : OP_UPDATE];
  mt_buf_t body = MT_BUF_INIT;
  int rc;
  if (cb == NULL)
    return mt__aws_refuse(err, label, "no callback");
  if ((rc = schedule_body(aws, label, s, &body, err)) != 0) {
    mt_buf_free(&body);
    return rc;
  }
  ebs_op_t *op = op_new(aws, kind, arg, "/schedules/%s%s%s", s->name, "", NULL);
  if (op == NULL) {
    mt_buf_free(&body);
    return mt_err_set(err, MT_ENOMEM, "%s: out of memory", label);
  }
  op->cb.write = cb;
  op->body = body;
  return op_start(op, err);
}

int mt_ebs_schedule_create(mt_aws_t *aws, const mt_ebs_schedule_t *s,
                           mt_ebs_write_cb cb, void *arg, mt_err_t *err) {
  return write_op(aws, OP_CREATE, s, cb, arg, err);
}

int mt_ebs_schedule_update(mt_aws_t *aws, const mt_ebs_schedule_t *s,
                           mt_ebs_write_cb cb, void *arg, mt_err_t *err) {
  return write_op(aws, OP_UPDATE, s, cb, arg, err);
}

int mt_ebs_schedule_upsert(mt_aws_t *aws, const mt_ebs_schedule_t *s,
                           mt_ebs_write_cb cb, void *arg, mt_err_t *err) {
  return write_op(aws, OP_UPSERT, s, cb, arg, err);
}

int mt_ebs_schedule_get(mt_aws_t *aws, const char *group, const char *name,
                        mt_ebs_get_cb cb, void *arg, mt_err_t *err) {
  const char *label = op_labels[OP_GET];
  int rc;
  group = group_of(aws, group);
  if (cb == NULL)
    return mt__aws_refuse(err, label, "no callback");
  if ((rc = check_name(label, "schedule", name, err)) != 0 ||
      (rc = check_name(label, "group", group, err)) != 0)
    return rc;
  ebs_op_t *op = op_new(aws, OP_GET, arg, "/schedules/%s?groupName=%s%s", name,
                        group, NULL);
  if (op == NULL)
    return mt_err_set(err, MT_ENOMEM, "%s: out of memory", label);
  op->cb.get = cb;
  return op_start(op, err);
}

int mt_ebs_schedule_delete(mt_aws_t *aws, const char *group, const char *name,
                           const char *client_token, mt_ebs_delete_cb cb,
                           void *arg, mt_err_t *err) {
  const char *label = op_labels[OP_DELETE];
  char token[96] = "";
  int rc;
  group = group_of(aws, group);
  if (cb == NULL)
    return mt__aws_refuse(err, label, "no callback");
  if ((rc = check_name(label, "schedule", name, err)) != 0 ||
      (rc = check_name(label, "group", group, err)) != 0 ||
      (rc = check_token(label, client_token, err)) != 0)
    return rc;
  /* Names and tokens are all unreserved characters: nothing to encode. */
  if (client_token != NULL)
    snprintf(token, sizeof token, "&clientToken=%s", client_token);
  ebs_op_t *op = op_new(aws, OP_DELETE, arg, "/schedules/%s?groupName=%s%s",
                        name, group, token);
  if (op == NULL)
    return mt_err_set(err, MT_ENOMEM, "%s: out of memory", label);
  op->cb.del = cb;
  return op_start(op, err);
}

int mt_ebs_group_get(mt_aws_t *aws, const char *group, mt_ebs_group_cb cb,
                     void *arg, mt_err_t *err) {
  const char *label = op_labels[OP_GROUP];
  int rc;
  group = group_of(aws, group);
  if (cb == NULL)
    return mt__aws_refuse(err, label, "no callback");
  if ((rc = check_name(label, "group", group, err)) != 0)
    return rc;
  ebs_op_t *op =
      op_new(aws, OP_GROUP, arg, "/schedule-groups/%s%s%s", group, "", NULL);
  if (op == NULL)
    return mt_err_set(err, MT_ENOMEM, "%s: out of memory", label);
  op->cb.group = cb;
  return op_start(op, err);
}

/* ---- blocking ----------------------------------------------------------- */

static int get_sync(mt_aws_t *aws, op_kind_t kind, const char *path,
                    mt_aws_result_t *res) {
  mt_aws_req_t req = {
      .service = MT_AWS_SCHEDULER,
      .op = op_labels[kind],
      .method = "GET",
      .path = path,
  };
  return mt_aws_call_sync(aws, &req, res);
}

int mt_ebs_schedule_get_sync(mt_aws_t *aws, const char *group, const char *name,
                             mt_ebs_info_t *out, mt_aws_result_t *res) {
  const char *label = op_labels[OP_GET];
  char path[256];
  memset(res, 0, sizeof *res);
  memset(out, 0, sizeof *out);
  group = group_of(aws, group);
  if (check_name(label, "schedule", name, &res->err) != 0 ||
      check_name(label, "group", group, &res->err) != 0) {
    res->kind = MT_AWS_ENORESPONSE;
    return res->rc = MT_EINVAL;
  }
  snprintf(path, sizeof path, "/schedules/%s?groupName=%s", name, group);
  if (get_sync(aws, OP_GET, path, res) == 0)
    parse_info(res->json, out);
  return res->rc;
}

int mt_ebs_group_get_sync(mt_aws_t *aws, const char *group, mt_ebs_group_t *out,
                          mt_aws_result_t *res) {
  const char *label = op_labels[OP_GROUP];
  char path[128];
  memset(res, 0, sizeof *res);
  memset(out, 0, sizeof *out);
  group = group_of(aws, group);
  if (check_name(label, "group", group, &res->err) != 0) {
    res->kind = MT_AWS_ENORESPONSE;
    return res->rc = MT_EINVAL;
  }
  snprintf(path, sizeof path, "/schedule-groups/%s", group);
  if (get_sync(aws, OP_GROUP, path, res) == 0)
    parse_group(res->json, out);
  return res->rc;
}
