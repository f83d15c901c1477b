#include "scheduler/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "scheduler/scheduler.h"

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_YEAR, F_COUNT };
enum { D_UNIX5, D_UNIX6, D_EVENTBRIDGE };

#define YEAR_MIN 1970
#define YEAR_MAX 2199
#define TOKEN_MAX 64
/* A schedule that matches nothing in 400 years (one Gregorian cycle, so the
 * calendar repeats) never will. */
#define SEARCH_YEARS 400

/* A set of field values, bit (value - base); 256 bits hold the 230 years. */
typedef struct set_s {
  uint64_t w[4];
} set_t;

struct mt_cron_s {
  int dialect;
  int64_t rate; /* seconds between fires for rate(), else 0 */
  set_t f[F_COUNT];
  /* The field was the literal `*` (or `?`): the Vixie day rule and the
   * fall-back rule look at how a field was written, not at its values. */
  int star[F_COUNT];
  /* EventBridge day specials. */
  int dom_last;     /* L: last day of the month */
  uint32_t dom_w;   /* bit n: nW, the weekday nearest day n */
  int nth_dow, nth; /* d#n: n-th weekday d (nth 0 = none) */
  uint8_t dow_last; /* bit d: dL, last weekday d of the month */
};

typedef struct field_def_s {
  const char *name;
  int lo, hi;
} field_def_t;

static const field_def_t unix_fields[F_COUNT] = {
    {"second", 0, 59},           {"minute", 0, 59}, {"hour", 0, 23},
    {"day-of-month", 1, 31},     {"month", 1, 12},  {"day-of-week", 0, 7},
    {"year", YEAR_MIN, YEAR_MAX}};
static const field_def_t eb_fields[F_COUNT] = {
    {"second", 0, 59},           {"minute", 0, 59}, {"hour", 0, 23},
    {"day-of-month", 1, 31},     {"month", 1, 12},  {"day-of-week", 1, 7},
    {"year", YEAR_MIN, YEAR_MAX}};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR",
                                          "MAY", "JUN", "JUL", "AUG",
                                          "SEP", "OCT", "NOV", "DEC"};
static const char *const dow_names[] = {"SUN", "MON", "TUE", "WED",
                                        "THU", "FRI", "SAT"};

static void set_add(set_t *s, int bit) {
  s->w[bit >> 6] |= (uint64_t)1 << (bit & 63);
}

static int set_has(const set_t *s, int bit) {
  return bit >= 0 && bit < 256 && (s->w[bit >> 6] >> (bit & 63)) & 1;
}

/* The first member >= from and <= max, or -1. */
static int set_next(const set_t *s, int from, int max) {
  for (int b = from < 0 ? 0 : from; b <= max; b++)
    if (set_has(s, b))
      return b;
  return -1;
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ---- parsing ------------------------------------------------------------ */

typedef struct parser_s {
  mt_cron_t *c;
  const field_def_t *defs;
  mt_err_t *err;
} parser_t;

static int fail(parser_t *p, int fi, const char *tok, const char *what) {
  return mt_err_set(p->err, MT_EINVAL, "%s: \"%s\" %s", p->defs[fi].name, tok,
                    what);
}

/* The bit a day-of-week value sets: Unix counts 0-7 from Sunday (7 is
 * Sunday again), EventBridge 1-7 from Sunday. */
static int field_bit(const parser_t *p, int fi, int v) {
  if (fi == F_YEAR)
    return v - YEAR_MIN;
  if (fi == F_DOW)
    return p->c->dialect == D_EVENTBRIDGE ? v - 1 : v % 7;
  return v;
}

/* Reads one value (a number or, in month and day-of-week, a three-letter
 * name) from s[0..n). */
static int parse_value(parser_t *p, int fi, const char *s, size_t n, int *v) {
  char tok[TOKEN_MAX];
  snprintf(tok, sizeof tok, "%.*s", (int)n, s);
  if (n == 0)
    return fail(p, fi, tok, "is empty");
  if (isdigit((unsigned char)s[0])) {
    long x = 0;
    for (size_t i = 0; i < n; i++) {
      if (!isdigit((unsigned char)s[i]))
        return fail(p, fi, tok, "is not a number");
      if (x < 100000)
        x = x * 10 + (s[i] - '0');
    }
    if (x < p->defs[fi].lo || x > p->defs[fi].hi) {
      char what[64];
      snprintf(what, sizeof what, "is out of range %d-%d", p->defs[fi].lo,
               p->defs[fi].hi);
      return fail(p, fi, tok, what);
    }
    *v = (int)x;
    return 0;
  }
  if (fi == F_MON || fi == F_DOW) {
    const char *const *names = fi == F_MON ? month_names : dow_names;
    int count = fi == F_MON ? 12 : 7;
    for (int i = 0; n == 3 && i < count; i++)
      if (strncasecmp(s, names[i], 3) == 0) {
        /* Months count from 1; SUN is 0 in Unix and 1 in EventBridge. */
        *v = fi == F_MON || p->c->dialect == D_EVENTBRIDGE ? i + 1 : i;
        return 0;
      }
    return fail(p, fi, tok,
                fi == F_MON ? "is not a month name (JAN-DEC)"
                            : "is not a day name (SUN-SAT)");
  }
  return fail(p, fi, tok, "is not a number");
}

/* One list element without EventBridge specials: `*`, `a`, `a-b`, each
 * optionally followed by `/step`. */
static int parse_range(parser_t *p, int fi, const char *tok) {
  const field_def_t *def = &p->defs[fi];
  const char *slash = strchr(tok, '/');
  size_t left = slash ? (size_t)(slash - tok) : strlen(tok);
  int lo = def->lo, hi = def->hi, step = 1, rc;
  if (left == 0)
    return fail(p, fi, tok,
                slash ? "has a step without a range or * before it"
                      : "is empty");
  if (tok[0] == '-')
    return fail(p, fi, tok, "is a range without a start");
  if (!(left == 1 && tok[0] == '*')) {
    const char *dash = memchr(tok, '-', left);
    size_t alen = dash ? (size_t)(dash - tok) : left;
    if ((rc = parse_value(p, fi, tok, alen, &lo)) != 0)
      return rc;
    if (dash != NULL) {
      if ((rc = parse_value(p, fi, dash + 1, left - alen - 1, &hi)) != 0)
        return rc;
      /* SUN is 0, so MON-SUN must read its end as 7 to run forwards. */
      if (fi == F_DOW && p->c->dialect != D_EVENTBRIDGE && hi == 0 && lo > 0)
        hi = 7;
      if (hi < lo)
        return fail(p, fi, tok, "is a reversed range");
    } else if (slash == NULL) {
      hi = lo;
    }
  }
  if (slash != NULL) {
    const char *s = slash + 1;
    long x = 0;
    if (*s == '\0')
      return fail(p, fi, tok, "has an empty step");
    for (; *s; s++) {
      if (!isdigit((unsigned char)*s))
        return fail(p, fi, tok, "has a step that is not a number");
      if (x < 100000)
        x = x * 10 + (*s - '0');
    }
    if (x < 1)
      return fail(p, fi, tok, "has a step of 0; it must be at least 1");
    step = (int)(x > 1000 ? 1000 : x);
  }
  for (int v = lo; v <= hi; v += step)
    set_add(&p->c->f[fi], field_bit(p, fi, v));
  return 0;
}

/* parse_value on a NUL-terminated prefix of length n of tok. */
static int parse_number_in(parser_t *p, int fi, const char *whole,
                           const char *tok, size_t n, int lo, int hi, int *v) {
  if (n == 0)
    return fail(p, fi, whole, "is missing a number");
  for (size_t i = 0; i < n; i++)
    if (!isdigit((unsigned char)tok[i]))
      return fail(p, fi, whole, "has something other than a number");
  long x = 0;
  for (size_t i = 0; i < n && x < 100000; i++)
    x = x * 10 + (tok[i] - '0');
  if (x < lo || x > hi) {
    char what[64];
    snprintf(what, sizeof what, "has %ld, out of range %d-%d", x, lo, hi);
    return fail(p, fi, whole, what);
  }
  *v = (int)x;
  return 0;
}

/* EventBridge's day specials: L and nW in day-of-month, d#n and dL in
 * day-of-week. Returns 1 when tok was one (or an error), 0 if not. */
static int parse_special(parser_t *p, int fi, const char *tok, int nitems,
                         int *rc) {
  mt_cron_t *c = p->c;
  size_t n = strlen(tok);
  int v, k;
  *rc = 0;
  if (fi == F_DOM) {
    if (strcmp(tok, "L") == 0) {
      c->dom_last = 1;
      return 1;
    }
    if (n > 1 && (tok[n - 1] == 'W' || tok[n - 1] == 'w')) {
      if ((*rc = parse_number_in(p, fi, tok, tok, n - 1, 1, 31, &v)) == 0)
        c->dom_w |= (uint32_t)1 << v;
      return 1;
    }
    if (strchr(tok, '#'))
      *rc = fail(p, fi, tok, "uses #, which is only allowed in day-of-week");
    else if (strpbrk(tok, "LlWw"))
      *rc = fail(p, fi, tok, "is not L, nW or a day number");
    return *rc != 0;
  }
  if (fi == F_DOW) {
    const char *hash = strchr(tok, '#');
    if (hash != NULL) {
      if (nitems > 1 || c->nth != 0)
        *rc = fail(p, fi, tok,
                   "combines # with other values; only one # expression "
                   "is allowed");
      else if ((*rc = parse_value(p, fi, tok, (size_t)(hash - tok), &v)) == 0 &&
               (*rc = parse_number_in(p, fi, tok, hash + 1, strlen(hash + 1), 1,
                                      5, &k)) == 0) {
        c->nth_dow = field_bit(p, fi, v);
        c->nth = k;
      }
      return 1;
    }
    if (n > 1 && (tok[n - 1] == 'L' || tok[n - 1] == 'l')) {
      if ((*rc = parse_value(p, fi, tok, n - 1, &v)) == 0)
        c->dow_last |= (uint8_t)(1u << field_bit(p, fi, v));
      return 1;
    }
    /* nW, not any W: WED is a day name. */
    if (n > 1 && isdigit((unsigned char)tok[n - 2]) &&
        (tok[n - 1] == 'W' || tok[n - 1] == 'w'))
      *rc = fail(p, fi, tok, "uses W, which is only allowed in day-of-month");
    else if (strcmp(tok, "L") == 0)
      *rc = fail(p, fi, tok, "alone is not supported; use dL (e.g. 6L)");
    return *rc != 0;
  }
  return 0;
}

static int parse_field(parser_t *p, int fi, const char *text) {
  mt_cron_t *c = p->c;
  int eb = c->dialect == D_EVENTBRIDGE, rc;
  if (strcmp(text, "?") == 0) {
    if (!eb || (fi != F_DOM && fi != F_DOW))
      return fail(p, fi, text,
                  eb ? "is only allowed in day-of-month or day-of-week"
                     : "is only allowed in EventBridge cron(...) expressions");
    c->star[fi] = 1;
    return parse_range(p, fi, "*");
  }
  c->star[fi] = strcmp(text, "*") == 0;
  int nitems = 1;
  for (const char *s = text; *s; s++)
    nitems += *s == ',';
  const char *s = text;
  for (;;) {
    const char *comma = strchr(s, ',');
    size_t n = comma ? (size_t)(comma - s) : strlen(s);
    char tok[TOKEN_MAX];
    if (n == 0)
      return fail(p, fi, text, "has an empty list element");
    if (n >= sizeof tok)
      return fail(p, fi, text, "is too long");
    memcpy(tok, s, n);
    tok[n] = '\0';
    if (!eb && strpbrk(tok, "?#") != NULL)
      return fail(p, fi, tok,
                  strchr(tok, '#') ? "uses #, which is only allowed in "
                                     "EventBridge cron(...) expressions"
                                   : "uses ?, which is only allowed in "
                                     "EventBridge cron(...) expressions");
    if (!eb && (strcmp(tok, "L") == 0 ||
                (n > 1 && isdigit((unsigned char)tok[n - 2]) &&
                 strchr("LlWw", tok[n - 1]) != NULL)))
      return fail(p, fi, tok,
                  tok[n - 1] == 'W' || tok[n - 1] == 'w'
                      ? "uses W, which is only allowed in EventBridge "
                        "cron(...) expressions"
                      : "uses L, which is only allowed in EventBridge "
                        "cron(...) expressions");
    if (eb && parse_special(p, fi, tok, nitems, &rc)) {
      if (rc != 0)
        return rc;
    } else if (eb && strchr(tok, '#') != NULL) {
      return fail(p, fi, tok, "uses #, which is only allowed in day-of-week");
    } else if ((rc = parse_range(p, fi, tok)) != 0) {
      return rc;
    }
    if (comma == NULL)
      break;
    s = comma + 1;
  }
  return 0;
}

/* Splits s in place at runs of blanks. Returns the field count. */
static int split_fields(char *s, char **fields, int max) {
  int n = 0;
  char *save = NULL;
  /* strtok_r, not strtok: parsing must be safe on any thread. */
  for (char *t = strtok_r(s, " \t", &save); t != NULL;
       t = strtok_r(NULL, " \t", &save)) {
    if (n < max)
      fields[n] = t;
    n++;
  }
  return n;
}

static int parse_rate(mt_cron_t *c, const char *body, const char *expr,
                      mt_err_t *err) {
  static const struct {
    const char *name;
    int64_t seconds;
  } units[] = {{"minute", 60},  {"minutes", 60}, {"hour", 3600},
               {"hours", 3600}, {"day", 86400},  {"days", 86400}};
  const char *s = body;
  int64_t n = 0;
  int huge = 0;
  while (*s == ' ')
    s++;
  const char *num = s;
  while (isdigit((unsigned char)*s)) {
    /* Past any limit already; only "too big" matters from here. */
    if (n > INT64_MAX / 100)
      huge = 1;
    else
      n = n * 10 + (*s - '0');
    s++;
  }
  int nlen = (int)(s - num);
  if (s == num || (*s != ' ' && *s != '\0'))
    return mt_err_set(err, MT_EINVAL,
                      "rate: \"%s\" needs a positive whole number and a unit, "
                      "e.g. rate(5 minutes)",
                      expr);
  if (n < 1 && !huge)
    return mt_err_set(err, MT_EINVAL,
                      "rate: \"%.*s\" must be a positive whole number", nlen,
                      num);
  while (*s == ' ')
    s++;
  size_t ulen = strlen(s);
  while (ulen > 0 && s[ulen - 1] == ' ')
    ulen--;
  if (ulen == 0)
    return mt_err_set(err, MT_EINVAL,
                      "rate: \"%s\" is missing a unit (minute(s), hour(s) or "
                      "day(s))",
                      expr);
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
    if (strlen(units[i].name) == ulen && strncmp(s, units[i].name, ulen) == 0) {
      /* The interval is bounded like a one-off delay: a fire more than
       * 100 years out is a typo, and the bound keeps every sum of an
       * instant and the interval far from overflowing. */
      int64_t max = (int64_t)MT_SCHEDULER_MAX_DELAY / units[i].seconds;
      if (huge || n > max)
        return mt_err_set(err, MT_EINVAL,
                          "rate: \"%.*s\" is out of range 1-%lld for %s "
                          "(at most %.0f years between fires)",
                          nlen, num, (long long)max, units[i].name,
                          MT_SCHEDULER_MAX_DELAY / (365.2425 * 86400));
      c->rate = n * units[i].seconds;
      return 0;
    }
  return mt_err_set(err, MT_EINVAL,
                    "rate: \"%.*s\" is not a unit (minute(s), hour(s) or "
                    "day(s))",
                    (int)ulen, s);
}

static const struct {
  const char *name, *expansion;
} macros[] = {{"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"},
              {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
              {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
              {"@hourly", "0 * * * *"}};

/* EventBridge's cron(minutes hours day-of-month month day-of-week year):
 * body is the text between the parentheses, split in place. */
static int parse_eb_cron(mt_cron_t *c, char *body, const char *expr,
                         mt_err_t *err) {
  static const int order[6] = {F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_YEAR};
  parser_t p = {c, eb_fields, err};
  char *fields[8];
  int rc, n = split_fields(body, fields, 8);
  if (n != 6)
    return mt_err_set(err, MT_EINVAL,
                      "cron(...): expected 6 fields (minute hour "
                      "day-of-month month day-of-week year), got %d in \"%s\"",
                      n, expr);
  for (int i = 0; i < 6; i++)
    if ((rc = parse_field(&p, order[i], fields[i])) != 0)
      return rc;
  /* EventBridge seconds are always :00. */
  set_add(&c->f[F_SEC], 0);
  int qdom = strcmp(fields[2], "?") == 0, qdow = strcmp(fields[4], "?") == 0;
  if (qdom == qdow)
    return mt_err_set(
        err, MT_EINVAL,
        "day-of-month \"%s\" and day-of-week \"%s\": exactly one of them "
        "must be \"?\"",
        fields[2], fields[4]);
  /* A year field that selects nothing could never fire: refused here,
   * with the field named, rather than answered "no fire" on every call. */
  if (!c->star[F_YEAR] && set_next(&c->f[F_YEAR], 0, 255) < 0)
    return mt_err_set(err, MT_EINVAL, "year: no year selected");
  return 0;
}

/* The two EventBridge forms, `cron(...)` and `rate(...)`: buf is the
 * trimmed expression, which must end in the closing parenthesis. */
static int parse_eventbridge(mt_cron_t *c, char *buf, const char *expr,
                             mt_err_t *err) {
  size_t len = strlen(buf);
  c->dialect = D_EVENTBRIDGE;
  if (len < 6 || buf[len - 1] != ')')
    return mt_err_set(err, MT_EINVAL, "\"%s\" is missing its closing \")\"",
                      buf);
  buf[len - 1] = '\0';
  return strncmp(buf, "rate(", 5) == 0 ? parse_rate(c, buf + 5, expr, err)
                                       : parse_eb_cron(c, buf + 5, expr, err);
}

/* Classic Unix cron, five fields, or six with a leading second. buf is
 * split in place; expr is what messages quote. */
static int parse_unix(mt_cron_t *c, char *buf, const char *expr,
                      mt_err_t *err) {
  parser_t p = {c, unix_fields, err};
  char *fields[8];
  int rc, n = split_fields(buf, fields, 8);
  if (n != 5 && n != 6)
    return mt_err_set(err, MT_EINVAL,
                      "expected 5 fields (minute hour day-of-month month "
                      "day-of-week), 6 with a leading second, an @macro, "
                      "cron(...) or rate(...); got %d in \"%s\"",
                      n, expr);
  c->dialect = n == 5 ? D_UNIX5 : D_UNIX6;
  int first = n == 5 ? F_MIN : F_SEC;
  if (n == 5)
    set_add(&c->f[F_SEC], 0);
  for (int i = 0; i < n; i++)
    if ((rc = parse_field(&p, first + i, fields[i])) != 0)
      return rc;
  /* Unix cron has no year field: every year the engine can reach. */
  c->star[F_YEAR] = 1;
  for (int y = YEAR_MIN; y <= YEAR_MAX; y++)
    set_add(&c->f[F_YEAR], y - YEAR_MIN);
  return 0;
}

/* A Vixie @macro, parsed as the five fields it stands for. */
static int parse_macro(mt_cron_t *c, const char *buf, const char *expr,
                       mt_err_t *err) {
  for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
    if (strcasecmp(buf, macros[i].name) == 0) {
      /* split_fields() writes into its text, and the table is const. */
      char fields[16];
      snprintf(fields, sizeof fields, "%s", macros[i].expansion);
      return parse_unix(c, fields, expr, err);
    }
  return mt_err_set(err, MT_EINVAL,
                    "\"%s\" is not a supported macro (@yearly @annually "
                    "@monthly @weekly @daily @midnight @hourly)",
                    buf);
}

/* A copy of expr without its outer blanks (and a trailing line end, as
 * text read from a file may have), for the dialect parsers to split in
 * place. NULL when out of memory. */
static char *trimmed_copy(const char *expr) {
  while (*expr == ' ' || *expr == '\t')
    expr++;
  size_t len = strlen(expr);
  while (len > 0 && (expr[len - 1] == ' ' || expr[len - 1] == '\t' ||
                     expr[len - 1] == '\n' || expr[len - 1] == '\r'))
    len--;
  char *buf = malloc(len + 1);
  if (buf != NULL) {
    memcpy(buf, expr, len);
    buf[len] = '\0';
  }
  return buf;
}

/* The dialect is told by the expression's form alone, so each dialect's
 * parser sees only its own syntax and names its own errors. */
int mt_cron_parse(const char *expr, mt_cron_t **out, mt_err_t *err) {
  *out = NULL;
  if (expr == NULL)
    return mt_err_set(err, MT_EINVAL, "no cron expression");
  mt_cron_t *c = calloc(1, sizeof *c);
  char *buf = trimmed_copy(expr);
  int rc;
  if (c == NULL || buf == NULL)
    rc = MT_ENOMEM;
  else if (strncmp(buf, "cron(", 5) == 0 || strncmp(buf, "rate(", 5) == 0)
    rc = parse_eventbridge(c, buf, expr, err);
  else if (buf[0] == '@')
    rc = parse_macro(c, buf, expr, err);
  else
    rc = parse_unix(c, buf, expr, err);
  free(buf);
  if (rc != 0) {
    free(c);
    return rc;
  }
  *out = c;
  return 0;
}

void mt_cron_free(mt_cron_t *c) { free(c); }

int64_t mt_cron_rate(const mt_cron_t *c) { return c->rate; }

/* ---- matching ----------------------------------------------------------- */

/* The date of the weekday nearest day n of the month, never leaving it. */
static int nearest_weekday(int64_t y, int m, int n, int dim) {
  int wd = mt__weekday(mt__days_from_civil(y, m, n));
  if (wd == 6)
    return n > 1 ? n - 1 : n + 2;
  if (wd == 0)
    return n < dim ? n + 1 : n - 2;
  return n;
}

static int day_ok(const mt_cron_t *c, int64_t y, int m, int d, int wd) {
  int dim = mt__days_in_month(y, m);
  int dom_ok = set_has(&c->f[F_DOM], d) || (c->dom_last && d == dim);
  for (int n = 1; !dom_ok && n <= 31; n++)
    if ((c->dom_w >> n & 1) && n <= dim && nearest_weekday(y, m, n, dim) == d)
      dom_ok = 1;
  int dow_ok = set_has(&c->f[F_DOW], wd) ||
               (c->nth && wd == c->nth_dow && (d - 1) / 7 + 1 == c->nth) ||
               ((c->dow_last >> wd & 1) && d + 7 > dim);
  /* Vixie: with both day fields restricted a day matches either; if one is
   * `*` (or EventBridge's `?`) it matches every day and only the other one
   * decides. */
  if (c->star[F_DOM] || c->star[F_DOW])
    return dom_ok && dow_ok;
  return dom_ok || dow_ok;
}

/* The first matching wall-clock time >= L (local seconds since the epoch, as
 * if the zone were UTC), or 0 when there is none before year `limit`. */
static int next_match(const mt_cron_t *c, int64_t L, int64_t limit,
                      int64_t *W) {
  for (;;) {
    int64_t days = floor_div(L, 86400), sod = L - days * 86400, y;
    int m, d, h = (int)(sod / 3600), mi = (int)(sod / 60 % 60),
              s = (int)(sod % 60);
    mt__civil_from_days(days, &y, &m, &d);
    if (y > limit)
      return 0;
    if (!set_has(&c->f[F_YEAR], (int)(y - YEAR_MIN))) {
      int ny =
          y < YEAR_MIN ? 0 : set_next(&c->f[F_YEAR], (int)(y - YEAR_MIN), 255);
      if (ny < 0)
        return 0;
      L = mt__days_from_civil(ny + YEAR_MIN, 1, 1) * 86400;
      continue;
    }
    if (!set_has(&c->f[F_MON], m)) {
      L = mt__days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) *
          86400;
      continue;
    }
    if (!day_ok(c, y, m, d, mt__weekday(days))) {
      L = (days + 1) * 86400;
      continue;
    }
    int nh = set_next(&c->f[F_HOUR], h, 23);
    if (nh != h) {
      L = nh < 0 ? (days + 1) * 86400 : days * 86400 + nh * 3600;
      continue;
    }
    int nmi = set_next(&c->f[F_MIN], mi, 59);
    if (nmi != mi) {
      L = days * 86400 + h * 3600 + (nmi < 0 ? 3600 : nmi * 60);
      continue;
    }
    int ns = set_next(&c->f[F_SEC], s, 59);
    if (ns < 0) {
      L = days * 86400 + h * 3600 + (mi + 1) * 60;
      continue;
    }
    *W = days * 86400 + h * 3600 + mi * 60 + ns;
    return 1;
  }
}

/* The instants at which wall time W fires in tz, earliest first: one
 * normally; inside a spring-forward gap the wall time read with the offset
 * in force before the gap (so it fires shifted past it); inside a fall-back
 * overlap the first pass only, or both passes when the hour field is `*`.
 * Offsets a day either side bracket any single transition near W. */
static int fire_instants(const mt_cron_t *c, const mt_tz_t *tz, int64_t W,
                         int64_t out[2]) {
  int32_t before = mt_tz_offset(tz, W - 86400);
  int32_t after = mt_tz_offset(tz, W + 86400);
  int n = 0;
  if (mt_tz_offset(tz, W - before) == before)
    out[n++] = W - before;
  if (after != before && mt_tz_offset(tz, W - after) == after)
    out[n++] = W - after;
  if (n == 0)
    out[n++] = W - before;
  if (n == 2) {
    if (out[1] < out[0]) {
      int64_t t = out[0];
      out[0] = out[1];
      out[1] = t;
    }
    if (!c->star[F_HOUR])
      n = 1;
  }
  return n;
}

static int32_t min32(int32_t a, int32_t b) { return a < b ? a : b; }
static int32_t max32(int32_t a, int32_t b) { return a > b ? a : b; }

int mt_cron_next(const mt_cron_t *c, const mt_tz_t *tz, int64_t after,
                 int64_t *next, mt_err_t *err) {
  if (after < MT_CRON_TIME_MIN || after > MT_CRON_TIME_MAX)
    return mt_err_set(err, MT_EINVAL,
                      "the start instant %lld is outside years 0001-9999, "
                      "the span RFC 3339 can write",
                      (long long)after);
  if (c->rate > 0) {
    /* The answer must be writable too, also as wall time in tz, which may
     * run ahead of UTC. Both sums stay small: the rate is at most
     * MT_SCHEDULER_MAX_DELAY. */
    int64_t t = after + c->rate;
    if (t > MT_CRON_TIME_MAX || t + mt_tz_offset(tz, t) > MT_CRON_TIME_MAX)
      return mt_err_set(err, MT_ENOTFOUND,
                        "the schedule's next fire would be after "
                        "9999-12-31T23:59:59, the last time RFC 3339 can "
                        "write");
    *next = t;
    return 0;
  }
  /* Wall times are searched in order; because offsets change, instants are
   * not quite in the same order, so the search starts early enough to see a
   * wall time shifted past a gap, and goes on past the first hit while a
   * later wall time could still map to an earlier instant. */
  int32_t omin =
      min32(mt_tz_offset(tz, after - 86400), mt_tz_offset(tz, after + 86400));
  int64_t L = after + omin + 1, W, best = 0, start_days = floor_div(L, 86400);
  int64_t y0;
  int m0, d0, have = 0;
  mt__civil_from_days(start_days, &y0, &m0, &d0);
  while (next_match(c, L, y0 + SEARCH_YEARS, &W)) {
    int64_t inst[2];
    int n = fire_instants(c, tz, W, inst);
    for (int i = 0; i < n; i++)
      if (inst[i] > after && (!have || inst[i] < best)) {
        best = inst[i];
        have = 1;
      }
    if (have) {
      int32_t ohi = max32(mt_tz_offset(tz, best),
                          max32(mt_tz_offset(tz, best - 2 * 86400),
                                mt_tz_offset(tz, best + 2 * 86400)));
      if (W + 1 - ohi >= best)
        break;
    }
    L = W + 1;
  }
  if (!have)
    return mt_err_set(err, MT_ENOTFOUND,
                      "the schedule has no fire time after the start");
  *next = best;
  return 0;
}
