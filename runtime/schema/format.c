/*
 * The `format` assertions of the schema validator: hand-written recognisers
 * for the grammars of RFC 3339 (date-time, date, time, duration), RFC 5321
 * (email), RFC 4122 (uuid), RFC 2673/4291 (ipv4, ipv6), RFC 3986 (uri) and
 * RFC 1123 (hostname, with the RFC 5891/5892 checks an "xn--" A-label
 * needs). Strings arrive as UTF-8 with an explicit length and may contain
 * NUL bytes, so nothing here relies on termination. Only ASCII is ever
 * accepted: Unicode digits and raw (U-label) IDN names are rejected.
 *
 * Hand-written rather than regexes, because the rules that matter are
 * arithmetic or not regular at all: days per month in leap years, the
 * leap second at 23:59:60 UTC, one "::" in IPv6, Punycode. Each check_*
 * takes the string and its length and allocates nothing that outlives the
 * call. The table at the end maps format names to MT__FMT_* ids
 * (internal.h) for compile.c and to checks for validate.c; a format not
 * in it is an annotation, never asserted.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/utf8.h"
#include "schema/internal.h"

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static int is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Reads exactly n ASCII digits at s[*i]. */
static int digits(const char *s, size_t len, size_t *i, size_t n, int *out) {
  int v = 0;
  if (len - *i < n)
    return 0;
  for (size_t k = 0; k < n; k++) {
    char c = s[*i + k];
    if (!is_digit(c))
      return 0;
    v = v * 10 + (c - '0');
  }
  *i += n;
  *out = v;
  return 1;
}

static int expect(const char *s, size_t len, size_t *i, char c) {
  if (*i >= len || s[*i] != c)
    return 0;
  (*i)++;
  return 1;
}

/* ---- RFC 3339 dates and times ---- */

static int days_in_month(int y, int m) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : days[m - 1];
}

static int full_date(const char *s, size_t len, size_t *i) {
  int y, m, d;
  return digits(s, len, i, 4, &y) && expect(s, len, i, '-') &&
         digits(s, len, i, 2, &m) && expect(s, len, i, '-') &&
         digits(s, len, i, 2, &d) && m >= 1 && m <= 12 && d >= 1 &&
         d <= days_in_month(y, m);
}

static int full_time(const char *s, size_t len, size_t *i) {
  int h, m, sec, oh = 0, om = 0, sign = 0;
  if (!(digits(s, len, i, 2, &h) && expect(s, len, i, ':') &&
        digits(s, len, i, 2, &m) && expect(s, len, i, ':') &&
        digits(s, len, i, 2, &sec)))
    return 0;
  if (*i < len && s[*i] == '.') {
    (*i)++;
    size_t start = *i;
    while (*i < len && is_digit(s[*i]))
      (*i)++;
    if (*i == start)
      return 0;
  }
  if (*i < len && (s[*i] == 'Z' || s[*i] == 'z')) {
    (*i)++;
  } else if (*i < len && (s[*i] == '+' || s[*i] == '-')) {
    sign = s[(*i)++] == '+' ? 1 : -1;
    if (!(digits(s, len, i, 2, &oh) && expect(s, len, i, ':') &&
          digits(s, len, i, 2, &om)))
      return 0;
  } else {
    return 0;
  }
  if (h > 23 || m > 59 || sec > 60 || oh > 23 || om > 59)
    return 0;
  if (sec == 60) {
    /* A leap second exists only at 23:59:60 UTC. */
    int utc = ((h * 60 + m - sign * (oh * 60 + om)) % 1440 + 1440) % 1440;
    if (utc != 23 * 60 + 59)
      return 0;
  }
  return 1;
}

static int check_date(const char *s, size_t n) {
  size_t i = 0;
  return full_date(s, n, &i) && i == n;
}

static int check_time(const char *s, size_t n) {
  size_t i = 0;
  return full_time(s, n, &i) && i == n;
}

static int check_date_time(const char *s, size_t n) {
  size_t i = 0;
  if (!full_date(s, n, &i) || i >= n || (s[i] != 'T' && s[i] != 't'))
    return 0;
  i++;
  return full_time(s, n, &i) && i == n;
}

/* RFC 3339 appendix A: P(nYnMnD)(TnHnMnS) with contiguous, ordered
 * components in each part, or PnW alone. */
static int check_duration(const char *s, size_t n) {
  static const char date_units[] = "YMD", time_units[] = "HMS";
  size_t i = 1;
  int in_time = 0, count = 0, time_count = 0, last = -1;
  if (n < 2 || s[0] != 'P')
    return 0;
  while (i < n) {
    if (s[i] == 'T') {
      if (in_time)
        return 0;
      in_time = 1;
      last = -1;
      i++;
      continue;
    }
    size_t start = i;
    while (i < n && is_digit(s[i]))
      i++;
    if (i == start || i == n)
      return 0;
    char unit = s[i++];
    if (unit == 'W') {
      /* Weeks stand alone. */
      return count == 0 && !in_time && i == n;
    }
    const char *units = in_time ? time_units : date_units;
    const char *hit = strchr(units, unit);
    if (unit == '\0' || hit == NULL)
      return 0;
    int pos = (int)(hit - units);
    if (last >= 0 && pos != last + 1)
      return 0; /* out of order, or a component skipped in between */
    last = pos;
    count++;
    time_count += in_time;
  }
  return count > 0 && (!in_time || time_count > 0);
}

/* ---- addresses ---- */

/* One IPv4 dotted quad: decimal octets, no leading zeros (some parsers
 * read "010" as octal, so the spelling is refused as ambiguous). */
static int check_ipv4(const char *s, size_t n) {
  size_t i = 0;
  for (int part = 0; part < 4; part++) {
    if (part > 0 && !expect(s, n, &i, '.'))
      return 0;
    size_t start = i;
    int v = 0;
    while (i < n && is_digit(s[i]) && i - start < 3)
      v = v * 10 + (s[i++] - '0');
    if (i == start || v > 255 || (s[start] == '0' && i - start > 1))
      return 0;
  }
  return i == n;
}

/* Counts the 16-bit groups of one side of "::"; an IPv4 tail counts as 2
 * and is only allowed at the very end. */
static int ipv6_groups(const char *s, size_t n, int ipv4_ok) {
  int groups = 0;
  size_t i = 0;
  if (n == 0)
    return 0;
  for (;;) {
    size_t start = i;
    while (i < n && s[i] != ':')
      i++;
    size_t k = start;
    while (k < i && is_hex(s[k]))
      k++;
    if (k == i && i - start >= 1 && i - start <= 4) {
      groups++;
    } else if (ipv4_ok && i == n && check_ipv4(s + start, i - start)) {
      groups += 2;
    } else {
      return -1;
    }
    if (i == n)
      return groups;
    i++; /* the ':' */
  }
}

/* Eight groups, or fewer around one "::" that stands for at least one
 * zero group; the last two groups may be written as an IPv4 address. */
static int check_ipv6(const char *s, size_t n) {
  const char *dbl = NULL;
  for (size_t i = 0; i + 1 < n; i++)
    if (s[i] == ':' && s[i + 1] == ':') {
      dbl = s + i;
      break;
    }
  if (dbl == NULL) {
    return ipv6_groups(s, n, 1) == 8;
  }
  size_t left = (size_t)(dbl - s), right_at = left + 2;
  for (size_t i = right_at; i + 1 < n; i++)
    if (s[i] == ':' && s[i + 1] == ':')
      return 0; /* only one "::" */
  int l = ipv6_groups(s, left, 0);
  int r = ipv6_groups(s + right_at, n - right_at, 1);
  return l >= 0 && r >= 0 && l + r <= 7;
}

static int check_uuid(const char *s, size_t n) {
  if (n != 36)
    return 0;
  for (size_t i = 0; i < n; i++) {
    int dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !is_hex(s[i]))
      return 0;
  }
  return 1;
}

/* ---- IDNA A-labels (RFC 3492 Punycode, RFC 5892 contextual rules) ---- */

#define IDNA_MAX 64

/* Decodes the Punycode after "xn--" into cps (RFC 3492 6.2, with the
 * overflow checks of 6.4); returns the count or -1. Labels are at most 63
 * bytes, so IDNA_MAX code points always suffice for a valid one. */
static int punycode_decode(const char *s, size_t n, uint32_t *cps) {
  enum { BASE = 36, TMIN = 1, TMAX = 26, SKEW = 38, DAMP = 700 };
  size_t out = 0, b = 0, in;
  uint32_t code = 128, i = 0, bias = 72;
  for (size_t k = 0; k < n; k++)
    if (s[k] == '-')
      b = k;
  for (size_t k = 0; k < b; k++) {
    if ((unsigned char)s[k] >= 0x80 || out == IDNA_MAX)
      return -1;
    cps[out++] = (unsigned char)s[k];
  }
  for (in = b > 0 ? b + 1 : 0; in < n;) {
    uint32_t oldi = i, w = 1;
    for (uint32_t k = BASE;; k += BASE) {
      if (in >= n)
        return -1;
      char c = s[in++];
      uint32_t digit = is_digit(c)              ? (uint32_t)(c - '0' + 26)
                       : (c >= 'a' && c <= 'z') ? (uint32_t)(c - 'a')
                       : (c >= 'A' && c <= 'Z') ? (uint32_t)(c - 'A')
                                                : BASE;
      if (digit >= BASE || digit > (UINT32_MAX - i) / w)
        return -1;
      i += digit * w;
      uint32_t t = k <= bias ? TMIN : k >= bias + TMAX ? TMAX : k - bias;
      if (digit < t)
        break;
      if (w > UINT32_MAX / (BASE - t))
        return -1;
      w *= BASE - t;
    }
    /* Bias adaptation, RFC 3492 6.1. */
    uint32_t delta = oldi == 0 ? (i - oldi) / DAMP : (i - oldi) / 2, k = 0;
    delta += delta / (uint32_t)(out + 1);
    while (delta > ((BASE - TMIN) * TMAX) / 2) {
      delta /= BASE - TMIN;
      k += BASE;
    }
    bias = k + (BASE - TMIN + 1) * delta / (delta + SKEW);
    if (i / (out + 1) > 0x10FFFF - code || out == IDNA_MAX)
      return -1;
    code += i / (uint32_t)(out + 1);
    i %= (uint32_t)(out + 1);
    memmove(cps + i + 1, cps + i, (out - i) * sizeof(uint32_t));
    cps[i++] = code;
    out++;
  }
  return (int)out;
}

/* True if code point cp has the Unicode property prop (as "\\p{M}"). PCRE2
 * carries the Unicode tables, so we ask it rather than copy them. The
 * pattern is compiled per call, which is cheap enough for the few code
 * points of "xn--" labels, the only ones that get here. */
static int has_prop(uint32_t cp, const char *prop) {
  char utf8[4];
  size_t len = mt_utf8_put(utf8, cp);
  int code;
  PCRE2_SIZE off;
  pcre2_code *re = pcre2_compile((PCRE2_SPTR)prop, PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_ANCHORED, &code, &off, NULL);
  pcre2_match_data *md = re ? pcre2_match_data_create(1, NULL) : NULL;
  int hit =
      md != NULL && pcre2_match(re, (PCRE2_SPTR)utf8, len, 0, 0, md, NULL) >= 0;
  pcre2_match_data_free(md);
  pcre2_code_free(re);
  return hit;
}

static int is_virama(uint32_t cp) {
  static const uint32_t viramas[] = {
      0x94D,  0x9CD,  0xA4D,  0xACD,  0xB4D,  0xBCD,  0xC4D,  0xCCD,  0xD3B,
      0xD3C,  0xD4D,  0xDCA,  0xE3A,  0xEBA,  0xF84,  0x1039, 0x103A, 0x1714,
      0x1734, 0x17D2, 0x1A60, 0x1B44, 0x1BAA, 0x1BAB, 0x1BF2, 0x1BF3, 0x2D7F,
      0xA806, 0xA8C4, 0xA953, 0xA9C0, 0xAAF6, 0xABED};
  for (size_t k = 0; k < sizeof(viramas) / sizeof(viramas[0]); k++)
    if (viramas[k] == cp)
      return 1;
  return 0;
}

/* The RFC 5892 rules the decoded label must meet: no leading combining
 * mark, no "--" at positions 3-4, none of the DISALLOWED exceptions, and
 * the CONTEXTJ/CONTEXTO conditions of appendix A. ZWNJ is accepted without
 * its joining-type rule, which needs tables PCRE2 does not expose. */
static int idna_label_ok(const uint32_t *cp, int n) {
  int arabic = 0, extended = 0, kana_han = 0, katakana_dot = 0;
  if (n == 0 || has_prop(cp[0], "\\p{M}") ||
      (n >= 4 && cp[2] == '-' && cp[3] == '-'))
    return 0;
  for (int k = 0; k < n; k++) {
    uint32_t c = cp[k];
    uint32_t prev = k > 0 ? cp[k - 1] : 0, next = k + 1 < n ? cp[k + 1] : 0;
    if (c == 0x640 || c == 0x7FA || c == 0x302E || c == 0x302F ||
        (c >= 0x3031 && c <= 0x3035) || c == 0x303B)
      return 0;
    if (c == 0xB7 && (prev != 'l' || next != 'l'))
      return 0;
    if (c == 0x375 && (next == 0 || !has_prop(next, "\\p{Greek}")))
      return 0;
    if ((c == 0x5F3 || c == 0x5F4) &&
        (prev == 0 || !has_prop(prev, "\\p{Hebrew}")))
      return 0;
    if (c == 0x200D && !is_virama(prev))
      return 0;
    arabic |= c >= 0x660 && c <= 0x669;
    extended |= c >= 0x6F0 && c <= 0x6F9;
    if (c == 0x30FB)
      katakana_dot = 1;
    else if (c >= 0x80)
      kana_han |= has_prop(c, "[\\p{Hiragana}\\p{Katakana}\\p{Han}]");
  }
  return !(arabic && extended) && !(katakana_dot && !kana_han);
}

static int check_a_label(const char *s, size_t n) {
  uint32_t cps[IDNA_MAX];
  int count = punycode_decode(s + 4, n - 4, cps);
  return count > 0 && idna_label_ok(cps, count);
}

/* RFC 1123 host names: dot-separated LDH labels of 1-63 characters, 253
 * in all. A label starting "xn--" claims to be an IDN A-label, so it must
 * also decode to a valid one. */
static int check_hostname(const char *s, size_t n) {
  if (n == 0 || n > 253)
    return 0;
  size_t label = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i == n || s[i] == '.') {
      if (label == 0 || label > 63 || s[i - 1] == '-')
        return 0;
      const char *l = s + i - label;
      if (label >= 4 && (l[0] == 'x' || l[0] == 'X') &&
          (l[1] == 'n' || l[1] == 'N') && l[2] == '-' && l[3] == '-' &&
          !check_a_label(l, label))
        return 0;
      label = 0;
      continue;
    }
    char c = s[i];
    if (!(is_alpha(c) || is_digit(c) || (c == '-' && label > 0)))
      return 0;
    label++;
  }
  return 1;
}

/* ---- email (RFC 5321 mailbox) ---- */

static int is_atext(char c) {
  return is_alpha(c) || is_digit(c) ||
         (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* A local part that is a dot-atom or a quoted string, '@', and a domain
 * that is a host name or an address literal ("[1.2.3.4]", "[IPv6:...]"). */
static int check_email(const char *s, size_t n) {
  size_t i = 0;
  if (n > 0 && s[0] == '"') {
    for (i = 1; i < n && s[i] != '"'; i++) {
      unsigned char c = (unsigned char)s[i];
      if (c == '\\')
        i++;
      else if (c < 0x20 || c > 0x7E)
        return 0;
    }
    if (i >= n)
      return 0;
    i++;
  } else {
    size_t start = 0;
    for (; i < n && s[i] != '@'; i++) {
      if (s[i] == '.') {
        if (i == start || s[i - 1] == '.')
          return 0;
      } else if (!is_atext(s[i])) {
        return 0;
      }
    }
    if (i == 0 || s[i - 1] == '.')
      return 0;
  }
  if (i >= n || s[i] != '@')
    return 0;
  const char *d = s + i + 1;
  size_t dn = n - i - 1;
  if (dn >= 2 && d[0] == '[' && d[dn - 1] == ']') {
    if (dn > 7 && memcmp(d + 1, "IPv6:", 5) == 0)
      return check_ipv6(d + 6, dn - 7);
    return check_ipv4(d + 1, dn - 2);
  }
  return check_hostname(d, dn);
}

/* ---- uri (RFC 3986 URI: a scheme is required) ---- */

static int is_unreserved(char c) {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' ||
         c == '~';
}
static int is_sub_delim(char c) {
  return c != '\0' && strchr("!$&'()*+,;=", c) != NULL;
}

/* Checks s[0..n) is made of unreserved, sub-delims, pct-encoded and the
 * characters in extra. */
static int uri_chars(const char *s, size_t n, const char *extra) {
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
        return 0;
      i += 2;
    } else if (!is_unreserved(c) && !is_sub_delim(c) &&
               (c == '\0' || strchr(extra, c) == NULL)) {
      return 0;
    }
  }
  return 1;
}

static int uri_host(const char *s, size_t n) {
  if (n > 0 && s[0] == '[') {
    if (s[n - 1] != ']')
      return 0;
    if (n > 2 && (s[1] == 'v' || s[1] == 'V')) /* IPvFuture */
      return uri_chars(s + 2, n - 3, ":");
    return check_ipv6(s + 1, n - 2);
  }
  return uri_chars(s, n, "");
}

static int uri_authority(const char *s, size_t n) {
  const char *at = memchr(s, '@', n);
  if (at != NULL) {
    if (!uri_chars(s, (size_t)(at - s), ":"))
      return 0;
    n -= (size_t)(at - s) + 1;
    s = at + 1;
  }
  /* The port follows the last ':' outside an IP literal. */
  size_t host_end = n;
  const char *close = n > 0 && s[0] == '[' ? memchr(s, ']', n) : NULL;
  size_t from = close ? (size_t)(close - s) + 1 : 0;
  for (size_t i = from; i < n; i++)
    if (s[i] == ':') {
      host_end = i;
      break;
    }
  for (size_t i = host_end + 1; i < n; i++)
    if (!is_digit(s[i]))
      return 0;
  if (close != NULL && host_end != (size_t)(close - s) + 1)
    return 0;
  return uri_host(s, host_end);
}

static int check_uri(const char *s, size_t n) {
  size_t i = 0;
  if (n == 0 || !is_alpha(s[0]))
    return 0;
  while (i < n && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' ||
                   s[i] == '-' || s[i] == '.'))
    i++;
  if (i >= n || s[i] != ':')
    return 0;
  i++;
  size_t end = i;
  while (end < n && s[end] != '?' && s[end] != '#')
    end++;
  size_t path = i;
  if (end - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
    size_t auth = i + 2, k = auth;
    while (k < end && s[k] != '/')
      k++;
    if (!uri_authority(s + auth, k - auth))
      return 0;
    path = k;
  }
  if (!uri_chars(s + path, end - path, ":@/"))
    return 0;
  if (end < n && s[end] == '?') {
    size_t q = ++end;
    while (end < n && s[end] != '#')
      end++;
    if (!uri_chars(s + q, end - q, ":@/?"))
      return 0;
  }
  if (end < n && s[end] == '#')
    return uri_chars(s + end + 1, n - end - 1, ":@/?");
  return 1;
}

/* ---- dispatch ----
 * Few enough entries for linear search; the name lookup happens once per
 * schema, at compile time. */

static const struct {
  const char *name;
  int id;
  int (*check)(const char *s, size_t n);
} formats[] = {
    {"date-time", MT__FMT_DATE_TIME, check_date_time},
    {"date", MT__FMT_DATE, check_date},
    {"time", MT__FMT_TIME, check_time},
    {"email", MT__FMT_EMAIL, check_email},
    {"uuid", MT__FMT_UUID, check_uuid},
    {"ipv4", MT__FMT_IPV4, check_ipv4},
    {"ipv6", MT__FMT_IPV6, check_ipv6},
    {"uri", MT__FMT_URI, check_uri},
    {"hostname", MT__FMT_HOSTNAME, check_hostname},
    {"duration", MT__FMT_DURATION, check_duration},
};

int mt__schema_format_id(const char *name) {
  for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
    if (strcmp(formats[i].name, name) == 0)
      return formats[i].id;
  return MT__FMT_NONE;
}

int mt__schema_format_check(int id, const char *s, size_t n) {
  for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
    if (formats[i].id == id)
      return formats[i].check(s, n);
  return 1;
}

const char *mt__schema_format_name(int id) {
  for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
    if (formats[i].id == id)
      return formats[i].name;
  return "";
}
