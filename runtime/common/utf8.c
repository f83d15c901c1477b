#include "common/utf8.h"

#include <string.h>

#include "common/buf.h"
#include "common/error.h"

size_t mt_utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0], min, cp;
  size_t len;
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    len = 2, min = 0x80, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF)
    len = 3, min = 0x800, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4)
    len = 4, min = 0x10000, cp = c & 0x07;
  else
    return 0;
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

size_t mt_utf8_put(char *o, unsigned cp) {
  static const unsigned char lead[] = {0, 0, 0xC0, 0xE0, 0xF0};
  size_t len = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  if (len == 1) {
    o[0] = (char)cp;
    return 1;
  }
  for (size_t k = len; k > 1; k--, cp >>= 6)
    o[k - 1] = (char)(0x80 | (cp & 0x3F));
  o[0] = (char)(lead[len] | cp);
  return len;
}

int mt_utf8_sanitize(mt_buf_t *out, const char *s) {
  size_t n = strlen(s), i = 0;
  while (i < n) {
    size_t len = mt_utf8_seq((const unsigned char *)s + i, n - i);
    int rc = len > 0 ? mt_buf_append(out, s + i, len)
                     : mt_buf_append(out, "\xef\xbf\xbd", 3); /* U+FFFD */
    if (rc != 0)
      return MT_ENOMEM;
    i += len > 0 ? len : 1;
  }
  return mt_buf_reserve(out, 0) != 0 ? MT_ENOMEM : 0;
}
