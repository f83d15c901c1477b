#include "json/write.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "json/c_locale.h"

int mt_json_write_string(mt_buf_t *out, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t run = 0; /* start of the bytes not yet copied */
  if (mt_buf_putc(out, '"') != 0)
    return MT_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    char esc[6] = {'\\', 0};
    size_t elen = 2;
    switch (c) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\b': esc[1] = 'b'; break;
    case '\f': esc[1] = 'f'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    default:
      esc[1] = 'u', esc[2] = '0', esc[3] = '0';
      esc[4] = hex[c >> 4], esc[5] = hex[c & 15], elen = 6;
    }
    if (mt_buf_append(out, s + run, i - run) != 0 ||
        mt_buf_append(out, esc, elen) != 0)
      return MT_ENOMEM;
    run = i + 1;
  }
  if (mt_buf_append(out, s + run, n - run) != 0 || mt_buf_putc(out, '"') != 0)
    return MT_ENOMEM;
  return 0;
}

int mt_json_write_double(mt_buf_t *out, double x, int mark_float) {
  if (isnan(x) || isinf(x))
    return MT_EINVAL;
  locale_t c_locale = mt_json_c_locale();
  if (c_locale == (locale_t)0)
    return MT_ENOMEM;
  /* printf has no _l variant: make the C locale current for this thread
   * alone while it runs. */
  locale_t old = uselocale(c_locale);
  char num[40];
  for (int digits = 15; digits <= 17; digits++) {
    snprintf(num, sizeof num, "%.*g", digits, x);
    if (strtod(num, NULL) == x)
      break;
  }
  uselocale(old);
  if (mark_float && num[strspn(num, "-0123456789")] == '\0')
    strcat(num, ".0");
  return mt_buf_puts(out, num) != 0 ? MT_ENOMEM : 0;
}
