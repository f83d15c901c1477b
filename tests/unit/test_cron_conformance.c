/*
 * Runs the cron next-fire corpus against the engine.
 *
 * The corpus lives outside the repository, in ../shared/conformance/cron
 * relative to the repository root (found from $MT_SOURCE_DIR, else the
 * checkout the tests were built from, else by walking up from the working
 * directory to the folder holding CMakeLists.txt). Every
 * row of cases.tsv must give the expected instant with the expected printed
 * offset, and every row of invalid.tsv must be refused at parse time. When
 * the corpus is absent the test is skipped (exit 77), naming the path it
 * looked for.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scheduler/cron.h"
#include "test.h"

#define CORPUS_DIR "../shared/conformance/cron"

typedef struct tally_s {
  int passed, failed;
} tally_t;

/* The UTC offset written at the end of an RFC 3339 text, in minutes; "Z" and
 * "+00:00" are both 0. */
static int text_offset(const char *s) {
  size_t n = strlen(s);
  if (n > 0 && (s[n - 1] == 'Z' || s[n - 1] == 'z'))
    return 0;
  if (n < 6)
    return INT_MIN;
  const char *o = s + n - 6;
  int sign = o[0] == '-' ? -1 : 1;
  return sign * (atoi(o + 1) * 60 + atoi(o + 4));
}

/* Splits a TSV line in place into at most max columns. */
static int split_tabs(char *line, char **cols, int max) {
  int n = 0;
  line[strcspn(line, "\r\n")] = '\0';
  while (n < max) {
    cols[n++] = line;
    char *tab = strchr(line, '\t');
    if (tab == NULL)
      break;
    *tab = '\0';
    line = tab + 1;
  }
  return n;
}

static void run_case(char **col, int lineno, tally_t *t) {
  mt_err_t err = {{0}};
  mt_cron_t *c = NULL;
  mt_tz_t *tz = NULL;
  int64_t after, expected, next = 0;
  char got[40] = "";
  const char *why = NULL;
  if (mt_time_parse_rfc3339(col[3], &after) != 0 ||
      mt_time_parse_rfc3339(col[4], &expected) != 0)
    why = "bad instant in the corpus";
  else if (mt_cron_parse(col[1], &c, &err) != 0 ||
           mt_tz_load(col[2], &tz, &err) != 0 ||
           mt_cron_next(c, tz, after, &next, &err) != 0)
    why = err.msg;
  else {
    mt_tz_format(tz, next, got);
    if (next != expected || text_offset(got) != text_offset(col[4]))
      why = "wrong instant or offset";
  }
  if (why == NULL) {
    t->passed++;
  } else {
    t->failed++;
    printf("FAIL cases.tsv:%d %s [%s] %s after %s: expected %s, got %s (%s)\n",
           lineno, col[0], col[1], col[2], col[3], col[4], got, why);
  }
  mt_cron_free(c);
  mt_tz_free(tz);
}

static void run_invalid(char **col, int lineno, tally_t *t) {
  mt_err_t err = {{0}};
  mt_cron_t *c = NULL;
  int rc = mt_cron_parse(col[1], &c, &err);
  if (rc == MT_EINVAL && c == NULL && err.msg[0] != '\0') {
    t->passed++;
  } else {
    t->failed++;
    printf("FAIL invalid.tsv:%d %s [%s] was accepted (%s)\n", lineno, col[0],
           col[1], col[2]);
  }
  mt_cron_free(c);
}

static int run_file(const char *path, int ncols,
                    void (*fn)(char **, int, tally_t *), tally_t *t) {
  FILE *f = fopen(path, "r");
  char line[2048], *col[8] = {0};
  int lineno = 0;
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (++lineno == 1 || line[0] == '\n' || line[0] == '#')
      continue; /* the header */
    if (split_tabs(line, col, 8) < ncols) {
      t->failed++;
      printf("FAIL %s:%d: too few columns\n", path, lineno);
      continue;
    }
    fn(col, lineno, t);
  }
  fclose(f);
  return 0;
}

TEST(cron_conformance) {
  char root[PATH_MAX], cases[PATH_MAX + 64], invalid[PATH_MAX + 64];
  struct stat st;
  tally_t t = {0, 0};
  if (!mt_test_source_root(root))
    SKIP("repository root not found: set MT_SOURCE_DIR");
  snprintf(cases, sizeof cases, "%s/%s/cases.tsv", root, CORPUS_DIR);
  snprintf(invalid, sizeof invalid, "%s/%s/invalid.tsv", root, CORPUS_DIR);
  if (stat(cases, &st) != 0)
    SKIP("cron corpus not found: %s (the conformance data belongs in "
         "../shared/conformance beside the repository)",
         cases);
  ASSERT_EQ_INT(run_file(cases, 5, run_case, &t), 0);
  ASSERT_EQ_INT(run_file(invalid, 2, run_invalid, &t), 0);
  printf("%d passed, %d failed\n", t.passed, t.failed);
  ASSERT_TRUE(t.passed > 0);
  ASSERT_EQ_INT(t.failed, 0);
}
