/*
 * A growable byte buffer, always NUL-terminated so that its contents can be
 * handed to libpq or printf as a C string. The buffer owns its memory;
 * mt_buf_free() releases it and accepts a zeroed buffer.
 */
#ifndef MT_BUF_H
#define MT_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct mt_buf_s {
  char *data;
  size_t len;
  size_t cap;
} mt_buf_t;

/* (clang-format would split the braces onto a line of their own.) */
// clang-format off
#define MT_BUF_INIT {NULL, 0, 0}
// clang-format on

int mt_buf_reserve(mt_buf_t *b, size_t extra);
int mt_buf_append(mt_buf_t *b, const char *s, size_t n);
int mt_buf_puts(mt_buf_t *b, const char *s);
int mt_buf_putc(mt_buf_t *b, char c);
int mt_buf_printf(mt_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mt_buf_reset(mt_buf_t *b);
void mt_buf_free(mt_buf_t *b);

#endif
