#include "common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

int mt_buf_reserve(mt_buf_t *b, size_t extra) {
  size_t need = b->len + extra + 1;
  if (need <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap *= 2;
  char *data = realloc(b->data, cap);
  if (data == NULL)
    return MT_ENOMEM;
  b->data = data;
  b->cap = cap;
  return 0;
}

int mt_buf_append(mt_buf_t *b, const char *s, size_t n) {
  if (mt_buf_reserve(b, n) != 0)
    return MT_ENOMEM;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int mt_buf_puts(mt_buf_t *b, const char *s) {
  return mt_buf_append(b, s, strlen(s));
}

int mt_buf_putc(mt_buf_t *b, char c) { return mt_buf_append(b, &c, 1); }

int mt_buf_printf(mt_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || mt_buf_reserve(b, (size_t)n) != 0)
    return MT_ENOMEM;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

void mt_buf_reset(mt_buf_t *b) {
  b->len = 0;
  if (b->data != NULL)
    b->data[0] = '\0';
}

void mt_buf_free(mt_buf_t *b) {
  if (b == NULL)
    return;
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
