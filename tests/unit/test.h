/*
 * A minimal unit-test harness: TEST(name) defines a case, ASSERT_* macros
 * fail it with file and line, SKIP(...) ends it as skipped. CMake scans the
 * sources for TEST(...) and registers one ctest entry per case, so a failure
 * names its case.
 *
 * A case that needs what the machine may not have (a database, the
 * conformance data beside the repository) calls SKIP naming what is
 * missing: it exits MT_SKIP_CODE, which ctest's SKIP_RETURN_CODE turns into
 * "Skipped", so that it never passes without having run.
 */
#ifndef MT_TEST_H
#define MT_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*mt_test_fn)(void);

typedef struct mt_test_s {
  const char *name;
  mt_test_fn fn;
  struct mt_test_s *next;
} mt_test_t;

void mt__test_register(mt_test_t *t);

/* The repository root (for tests that read ../shared/conformance): from
 * $MT_SOURCE_DIR, else the source folder the tests were built from, else the
 * nearest folder above the working directory with CMakeLists.txt and
 * runtime/. root must hold PATH_MAX bytes; returns 0 if not found. */
int mt_test_source_root(char *root);

/* A fresh folder /tmp/mt-unit-<what>.XXXXXX, its name in out; removed when
 * the case's process exits, whether the case passed or failed. */
void mt_test_tmpdir(char out[64], const char *what);

/* Writes text to <dir>/<rel>, making the folders on the way. */
void mt_test_write_file(const char *dir, const char *rel, const char *text);

/* The exit code of a skipped case; tests/unit/CMakeLists.txt gives it to
 * ctest as SKIP_RETURN_CODE. */
#define MT_SKIP_CODE 77

#define TEST(name)                                                  \
  static void test_##name(void);                                    \
  static mt_test_t test_reg_##name = {#name, test_##name, NULL};    \
  __attribute__((constructor)) static void test_ctor_##name(void) { \
    mt__test_register(&test_reg_##name);                            \
  }                                                                 \
  static void test_##name(void)

#define MT__FAIL(...)                               \
  do {                                              \
    fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__);                   \
    fputc('\n', stderr);                            \
    exit(1);                                        \
  } while (0)

/* Ends the running case as skipped. The message names what was missing (an
 * environment variable, the path looked for) and how to provide it;
 * scripts/test prints it. */
#define SKIP(...)                 \
  do {                            \
    fflush(stdout);               \
    fprintf(stderr, "SKIPPED: "); \
    fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr);          \
    exit(MT_SKIP_CODE);           \
  } while (0)

#define ASSERT_TRUE(c)                      \
  do {                                      \
    if (!(c))                               \
      MT__FAIL("assertion failed: %s", #c); \
  } while (0)

#define ASSERT_EQ_INT(a, b)                               \
  do {                                                    \
    long long a_ = (long long)(a), b_ = (long long)(b);   \
    if (a_ != b_)                                         \
      MT__FAIL("%s == %s: %lld != %lld", #a, #b, a_, b_); \
  } while (0)

#define ASSERT_EQ_STR(a, b)                                              \
  do {                                                                   \
    const char *a_ = (a), *b_ = (b);                                     \
    if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                 \
      MT__FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", \
               b_ ? b_ : "(null)");                                      \
  } while (0)

#endif
