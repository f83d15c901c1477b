/*
 * What every libFuzzer harness in this folder shares: the entry point's
 * prototype, a NUL-terminated copy of the input for parsers that take C
 * strings, and FUZZ_CHECK for the properties a harness asserts beyond "no
 * crash". A failed check aborts, which libFuzzer reports as a crash and
 * saves the input for, like any memory error ASan finds.
 *
 * Harnesses must not leak between runs (LeakSanitizer runs at the end) and
 * must not keep state that changes what a later input does, so that a
 * saved crash reproduces on its own.
 */
#ifndef MT_FUZZ_H
#define MT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A malloc'd copy of data with a NUL after it; the caller frees it. */
static inline char *mt_fuzz_cstr(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (s == NULL)
    abort();
  if (size > 0)
    memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

#define FUZZ_CHECK(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
      abort();                                                                 \
    }                                                                          \
  } while (0)

#endif
