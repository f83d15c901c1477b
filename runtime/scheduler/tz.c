#include "scheduler/tz.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TZ_NAME_MAX 128
#define TZ_FILE_MAX (1 << 20)

/* A POSIX TZ rule date: Jn (n 1-365, Feb 29 never counted), n (0-365,
 * counting Feb 29) or Mm.w.d; `time` is seconds past local midnight, which
 * may be negative or beyond 24 h (RFC 8536 extension). */
typedef struct rule_date_s {
  char kind; /* 'J', 'D' (plain n) or 'M' */
  int n, m, w, d;
  int32_t time;
} rule_date_t;

/* The footer: what applies after the last transition of the table. */
typedef struct posix_tz_s {
  int valid;
  int has_dst;
  int32_t std_off, dst_off; /* seconds east */
  rule_date_t start, end; /* DST starts at `start` (std time), ends at `end` */
} posix_tz_t;

struct mt_tz_s {
  char name[TZ_NAME_MAX];
  int is_utc;
  size_t ntrans;
  int64_t *trans; /* transition instants, ascending */
  uint8_t *idx;   /* type index in force from trans[i] on */
  size_t ntypes;
  int32_t *utoff; /* per type */
  posix_tz_t footer;
};

int64_t mt__days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void mt__civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

int mt__weekday(int64_t days) {
  /* 1970-01-01 was a Thursday. */
  int64_t w = (days + 4) % 7;
  return (int)(w < 0 ? w + 7 : w);
}

static int is_leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int mt__days_in_month(int64_t y, int m) {
  static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Floor division, so that instants before 1970 split into days correctly. */
static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ---- POSIX TZ footer ---------------------------------------------------- */

/* Parses [+-]hh[:mm[:ss]] into seconds; hours up to 167 as RFC 8536 allows. */
static const char *parse_hms(const char *p, int32_t *out) {
  int sign = 1;
  if (*p == '+' || *p == '-')
    sign = *p++ == '-' ? -1 : 1;
  if (!isdigit((unsigned char)*p))
    return NULL;
  int32_t v[3] = {0, 0, 0};
  for (int i = 0; i < 3; i++) {
    if (i > 0) {
      if (*p != ':')
        break;
      p++;
    }
    if (!isdigit((unsigned char)*p))
      return NULL;
    int n = 0;
    while (isdigit((unsigned char)*p) && n < 1000)
      n = n * 10 + (*p++ - '0');
    v[i] = n;
  }
  if (v[0] > 167 || v[1] > 59 || v[2] > 59)
    return NULL;
  *out = sign * (v[0] * 3600 + v[1] * 60 + v[2]);
  return p;
}

static const char *parse_abbr(const char *p) {
  if (*p == '<') {
    while (*p && *p != '>')
      p++;
    return *p == '>' ? p + 1 : NULL;
  }
  const char *s = p;
  while (isalpha((unsigned char)*p))
    p++;
  return p - s >= 3 ? p : NULL;
}

static const char *parse_num(const char *p, int *out) {
  if (!isdigit((unsigned char)*p))
    return NULL;
  int n = 0;
  while (isdigit((unsigned char)*p) && n < 100000)
    n = n * 10 + (*p++ - '0');
  *out = n;
  return p;
}

static const char *parse_rule_date(const char *p, rule_date_t *r) {
  if (*p == 'M') {
    r->kind = 'M';
    if (!(p = parse_num(p + 1, &r->m)) || *p++ != '.' ||
        !(p = parse_num(p, &r->w)) || *p++ != '.' || !(p = parse_num(p, &r->d)))
      return NULL;
    if (r->m < 1 || r->m > 12 || r->w < 1 || r->w > 5 || r->d > 6)
      return NULL;
  } else if (*p == 'J') {
    r->kind = 'J';
    if (!(p = parse_num(p + 1, &r->n)) || r->n < 1 || r->n > 365)
      return NULL;
  } else {
    r->kind = 'D';
    if (!(p = parse_num(p, &r->n)) || r->n > 365)
      return NULL;
  }
  r->time = 7200;
  if (*p == '/' && !(p = parse_hms(p + 1, &r->time)))
    return NULL;
  return p;
}

static int parse_posix_tz(const char *s, posix_tz_t *tz) {
  const char *p = parse_abbr(s);
  int32_t off;
  memset(tz, 0, sizeof *tz);
  if (p == NULL || (p = parse_hms(p, &off)) == NULL)
    return -1;
  /* POSIX offsets count west of Greenwich, the opposite of UTC offsets. */
  tz->std_off = -off;
  tz->dst_off = tz->std_off;
  if (*p != '\0') {
    if ((p = parse_abbr(p)) == NULL)
      return -1;
    tz->has_dst = 1;
    tz->dst_off = tz->std_off + 3600;
    if (*p != ',' && *p != '\0') {
      if ((p = parse_hms(p, &off)) == NULL)
        return -1;
      tz->dst_off = -off;
    }
    if (*p == '\0') {
      /* No rule: POSIX leaves it to the implementation; use the US rule
       * as glibc does. */
      p = ",M3.2.0,M11.1.0";
    }
    if (*p++ != ',' || (p = parse_rule_date(p, &tz->start)) == NULL ||
        *p++ != ',' || (p = parse_rule_date(p, &tz->end)) == NULL || *p != '\0')
      return -1;
  }
  tz->valid = 1;
  return 0;
}

/* The instant at which rule date r happens in year y, given as local time in
 * the offset in force just before it. */
static int64_t rule_instant(const rule_date_t *r, int64_t y, int32_t before) {
  int64_t day;
  if (r->kind == 'J') {
    day = mt__days_from_civil(y, 1, 1) + r->n - 1 +
          (is_leap(y) && r->n >= 60 ? 1 : 0);
  } else if (r->kind == 'D') {
    day = mt__days_from_civil(y, 1, 1) + r->n;
  } else {
    int64_t first = mt__days_from_civil(y, r->m, 1);
    int dom = 1 + (r->d - mt__weekday(first) + 7) % 7 + 7 * (r->w - 1);
    while (dom > mt__days_in_month(y, r->m))
      dom -= 7;
    day = first + dom - 1;
  }
  return day * 86400 + r->time - before;
}

static int32_t footer_offset(const posix_tz_t *f, int64_t t) {
  if (!f->has_dst)
    return f->std_off;
  int64_t y;
  int m, d;
  mt__civil_from_days(floor_div(t + f->std_off, 86400), &y, &m, &d);
  int64_t start = rule_instant(&f->start, y, f->std_off);
  int64_t end = rule_instant(&f->end, y, f->dst_off);
  int dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
  return dst ? f->dst_off : f->std_off;
}

/* ---- TZif --------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static int64_t be64(const unsigned char *p) {
  return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* Parses a TZif image into tz. Returns 0, or -1 when it is malformed. */
static int parse_tzif(const unsigned char *b, size_t n, mt_tz_t *tz) {
  if (n < 44 || memcmp(b, "TZif", 4) != 0)
    return -1;
  int v2 = b[4] >= '2';
  size_t timesz = 4, off = 0;
  for (int pass = 0; pass < (v2 ? 2 : 1); pass++) {
    if (off + 44 > n || memcmp(b + off, "TZif", 4) != 0)
      return -1;
    const unsigned char *h = b + off + 20;
    size_t isutcnt = be32(h), isstdcnt = be32(h + 4), leapcnt = be32(h + 8),
           timecnt = be32(h + 12), typecnt = be32(h + 16),
           charcnt = be32(h + 20);
    size_t body = timecnt * timesz + timecnt + typecnt * 6 + charcnt +
                  leapcnt * (timesz + 4) + isstdcnt + isutcnt;
    off += 44;
    if (typecnt == 0 || typecnt > 256 || timecnt > 100000 || off + body > n)
      return -1;
    if (v2 && pass == 0) {
      /* The 32-bit block only serves v1 readers; the 64-bit one follows. */
      off += body;
      timesz = 8;
      continue;
    }
    const unsigned char *p = b + off;
    tz->ntrans = timecnt;
    tz->ntypes = typecnt;
    tz->trans = calloc(timecnt + 1, sizeof *tz->trans);
    tz->idx = calloc(timecnt + 1, 1);
    tz->utoff = calloc(typecnt, sizeof *tz->utoff);
    if (!tz->trans || !tz->idx || !tz->utoff)
      return -1;
    for (size_t i = 0; i < timecnt; i++, p += timesz)
      tz->trans[i] = timesz == 8 ? be64(p) : (int32_t)be32(p);
    for (size_t i = 0; i < timecnt; i++, p++) {
      if (*p >= typecnt)
        return -1;
      tz->idx[i] = *p;
    }
    for (size_t i = 0; i < typecnt; i++, p += 6)
      tz->utoff[i] = (int32_t)be32(p);
    off += body;
  }
  if (v2 && off < n && b[off] == '\n') {
    const unsigned char *s = b + off + 1, *e = memchr(s, '\n', n - off - 1);
    char footer[128];
    if (e != NULL && e > s && (size_t)(e - s) < sizeof footer) {
      memcpy(footer, s, (size_t)(e - s));
      footer[e - s] = '\0';
      if (parse_posix_tz(footer, &tz->footer) != 0)
        return -1;
    }
  }
  return 0;
}

/* Zone names are relative paths of letters, digits and "_+-/"; refusing
 * anything else keeps "../" and absolute paths out of the file lookup. */
static int valid_name(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n >= TZ_NAME_MAX || name[0] == '/' || strstr(name, ".."))
    return 0;
  for (const char *p = name; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr("_+-/", *p))
      return 0;
  return 1;
}

static int utc_alias(const char *name) {
  static const char *const names[] = {"UTC",       "Etc/UTC",       "Etc/UCT",
                                      "UCT",       "Zulu",          "Etc/Zulu",
                                      "Universal", "Etc/Universal", NULL};
  for (int i = 0; names[i]; i++)
    if (strcmp(name, names[i]) == 0)
      return 1;
  return 0;
}

int mt_tz_load(const char *name, mt_tz_t **out, mt_err_t *err) {
  *out = NULL;
  if (name == NULL || !valid_name(name))
    return mt_err_set(err, MT_EINVAL, "unknown time zone \"%s\"",
                      name ? name : "(null)");
  mt_tz_t *tz = calloc(1, sizeof *tz);
  unsigned char *data = NULL;
  FILE *f = NULL;
  int rc = 0;
  if (tz == NULL)
    return MT_ENOMEM;
  snprintf(tz->name, sizeof tz->name, "%s", name);
  if (utc_alias(name)) {
    /* UTC must work on hosts without tzdata, so it never reads a file. */
    tz->is_utc = 1;
    tz->ntypes = 1;
    tz->utoff = calloc(1, sizeof *tz->utoff);
    if (tz->utoff == NULL) {
      rc = MT_ENOMEM;
      goto fail;
    }
    *out = tz;
    return 0;
  }
  const char *dir = getenv("TZDIR");
  char path[TZ_NAME_MAX + 512];
  snprintf(path, sizeof path, "%s/%s",
           dir && *dir && strlen(dir) < 500 ? dir : "/usr/share/zoneinfo",
           name);
  data = malloc(TZ_FILE_MAX);
  if (data == NULL) {
    rc = MT_ENOMEM;
    goto fail;
  }
  f = fopen(path, "rb");
  size_t n = f ? fread(data, 1, TZ_FILE_MAX, f) : 0;
  if (f == NULL || n == 0) {
    rc = mt_err_set(err, MT_EINVAL, "unknown time zone \"%s\" (no %s)", name,
                    path);
    goto fail;
  }
  if (parse_tzif(data, n, tz) != 0) {
    rc = mt_err_set(err, MT_EINVAL,
                    "time zone \"%s\": %s is not a valid TZif "
                    "file",
                    name, path);
    goto fail;
  }
  fclose(f);
  free(data);
  *out = tz;
  return 0;
fail:
  if (f != NULL)
    fclose(f);
  free(data);
  mt_tz_free(tz);
  return rc;
}

void mt_tz_free(mt_tz_t *tz) {
  if (tz == NULL)
    return;
  free(tz->trans);
  free(tz->idx);
  free(tz->utoff);
  free(tz);
}

const char *mt_tz_name(const mt_tz_t *tz) { return tz->name; }

int32_t mt_tz_offset(const mt_tz_t *tz, int64_t t) {
  if (tz->ntrans == 0 || t < tz->trans[0]) {
    /* Before the first transition RFC 8536 says type 0 applies; a zone
     * without transitions is described by its footer if it has one. */
    if (tz->ntrans == 0 && tz->footer.valid)
      return footer_offset(&tz->footer, t);
    return tz->utoff[0];
  }
  if (t >= tz->trans[tz->ntrans - 1] && tz->footer.valid)
    return footer_offset(&tz->footer, t);
  size_t lo = 0, hi = tz->ntrans; /* trans[lo] <= t < trans[hi] */
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (tz->trans[mid] <= t)
      lo = mid;
    else
      hi = mid;
  }
  return tz->utoff[tz->idx[lo]];
}

void mt_tz_format(const mt_tz_t *tz, int64_t t, char buf[40]) {
  /* RFC 3339 offsets have no seconds (old LMT offsets do): print the offset
   * truncated to minutes and the wall time that goes with it, so the text
   * still names the right instant. */
  int32_t off = mt_tz_offset(tz, t) / 60 * 60;
  int64_t local = t + off, y;
  int64_t days = floor_div(local, 86400), sod = local - days * 86400;
  int m, d;
  mt__civil_from_days(days, &y, &m, &d);
  int n = snprintf(buf, 40, "%04lld-%02d-%02dT%02d:%02d:%02d", (long long)y, m,
                   d, (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
  if (tz->is_utc)
    snprintf(buf + n, 40 - (size_t)n, "Z");
  else
    snprintf(buf + n, 40 - (size_t)n, "%c%02d:%02d", off < 0 ? '-' : '+',
             abs(off) / 3600, abs(off) / 60 % 60);
}

static int digits(const char **p, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++, (*p)++) {
    if (!isdigit((unsigned char)**p))
      return -1;
    v = v * 10 + (**p - '0');
  }
  *out = v;
  return 0;
}

int mt_time_parse_rfc3339(const char *s, int64_t *out) {
  int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 1;
  const char *p = s;
  if (s == NULL || digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) ||
      *p++ != '-' || digits(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' '))
    return MT_EINVAL;
  p++;
  if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
      digits(&p, 2, &sec))
    return MT_EINVAL;
  if (*p == '.') {
    /* Fractions are truncated: fires are whole seconds. */
    if (!isdigit((unsigned char)*++p))
      return MT_EINVAL;
    while (isdigit((unsigned char)*p))
      p++;
  }
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    sign = *p++ == '-' ? -1 : 1;
    if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 ||
        om > 59)
      return MT_EINVAL;
  } else {
    return MT_EINVAL;
  }
  if (*p != '\0' || mo < 1 || mo > 12 || d < 1 ||
      d > mt__days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
    return MT_EINVAL;
  /* A leap second (:60) has no epoch value of its own; it reads as the
   * next second, as POSIX time does. */
  *out = mt__days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
         sign * (oh * 3600 + om * 60);
  return 0;
}
