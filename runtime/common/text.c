#include "common/text.h"

#include <string.h>

#include "common/error.h"
#include "common/utf8.h"

static int put_hex(mt_buf_t *out, const unsigned char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    char esc[4] = {'\\', 'x', hex[s[i] >> 4], hex[s[i] & 15]};
    if (mt_buf_append(out, esc, sizeof esc) != 0)
      return MT_ENOMEM;
  }
  return 0;
}

int mt_text_escape(mt_buf_t *out, const char *s, int keep_newlines) {
  if (s == NULL)
    s = "";
  const unsigned char *p = (const unsigned char *)s;
  size_t len = strlen(s), i = 0, run = 0;
  /* Safe bytes are copied in runs, so plain text costs one append. */
  while (i < len) {
    size_t n = mt_utf8_seq(p + i, len - i);
    int control;
    if (n == 0) /* a stray byte: a raw C1 control, or just not text */
      n = 1, control = 1;
    else if (n == 1)
      control = p[i] < 0x20 || p[i] == 0x7f;
    else /* U+0080-U+009F: C1 controls, encoded */
      control = n == 2 && p[i] == 0xC2 && p[i + 1] < 0xA0;
    if (control && keep_newlines && n == 1 && (p[i] == '\n' || p[i] == '\t'))
      control = 0;
    if (!control) {
      run += n;
      i += n;
      continue;
    }
    if (mt_buf_append(out, (const char *)p + i - run, run) != 0 ||
        put_hex(out, p + i, n) != 0)
      return MT_ENOMEM;
    run = 0;
    i += n;
  }
  if (mt_buf_append(out, (const char *)p + i - run, run) != 0)
    return MT_ENOMEM;
  return 0;
}
