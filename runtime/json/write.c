#include "json/write.h"

#include "common/error.h"

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
