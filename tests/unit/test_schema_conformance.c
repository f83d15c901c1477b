/*
 * Runs the JSON-Schema-Test-Suite (draft 2020-12) against the validator.
 *
 * The suite lives outside the repository, in
 * ../shared/conformance/json-schema-test-suite relative to the repository
 * root (found from $MT_SOURCE_DIR, else the checkout the tests were built
 * from, else by walking up from the working directory to the folder holding
 * CMakeLists.txt and runtime/). When it is
 * absent the test is skipped (exit 77), naming the path it looked for; a
 * suite file missing from a suite that is there fails. Cases listed in
 * tests/unit/schema_exclusions.txt ("file|group|test # reason", where test
 * may be "*" for a whole group) are not counted; every other case must pass.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "json/doc.h"
#include "schema/schema.h"
#include "test.h"

#define SUITE_DIR \
  "../shared/conformance/json-schema-test-suite/tests/draft2020-12"

static const char *const suite_files[] = {
    "type.json",
    "enum.json",
    "const.json",
    "properties.json",
    "required.json",
    "additionalProperties.json",
    "patternProperties.json",
    "propertyNames.json",
    "dependentRequired.json",
    "dependentSchemas.json",
    "minProperties.json",
    "maxProperties.json",
    "items.json",
    "prefixItems.json",
    "minItems.json",
    "maxItems.json",
    "uniqueItems.json",
    "contains.json",
    "minContains.json",
    "maxContains.json",
    "minimum.json",
    "maximum.json",
    "exclusiveMinimum.json",
    "exclusiveMaximum.json",
    "multipleOf.json",
    "minLength.json",
    "maxLength.json",
    "pattern.json",
    "allOf.json",
    "anyOf.json",
    "oneOf.json",
    "not.json",
    "if-then-else.json",
    "ref.json",
    "defs.json",
    "anchor.json",
    "boolean_schema.json",
    "infinite-loop-detection.json",
    "optional/format/date-time.json",
    "optional/format/date.json",
    "optional/format/time.json",
    "optional/format/email.json",
    "optional/format/uuid.json",
    "optional/format/ipv4.json",
    "optional/format/ipv6.json",
    "optional/format/uri.json",
    "optional/format/hostname.json",
    "optional/format/duration.json",
};

typedef struct runner_s {
  char **excluded; /* "file|group|test" keys */
  size_t nexcluded;
  size_t passed, failed, skipped;
} runner_t;

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  mt_buf_t b = MT_BUF_INIT;
  char chunk[8192];
  size_t n;
  if (f == NULL)
    return NULL;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    mt_buf_append(&b, chunk, n);
  fclose(f);
  *len = b.len;
  return b.data ? b.data : strdup("");
}

static void load_exclusions(runner_t *r, const char *root) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof(path), "%s/tests/unit/schema_exclusions.txt", root);
  size_t len;
  char *text = read_all(path, &len);
  if (text == NULL)
    return;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    if (line[0] == '#' || strchr(line, '|') == NULL)
      continue;
    char *reason = strstr(line, " # ");
    if (reason != NULL)
      *reason = '\0';
    r->excluded = realloc(r->excluded, (r->nexcluded + 1) * sizeof(char *));
    ASSERT_TRUE(r->excluded != NULL);
    r->excluded[r->nexcluded++] = strdup(line);
  }
  free(text);
}

static int is_excluded(const runner_t *r, const char *file, const char *group,
                       const char *test) {
  char key[2048], whole[2048];
  snprintf(key, sizeof(key), "%s|%s|%s", file, group, test);
  snprintf(whole, sizeof(whole), "%s|%s|*", file, group);
  for (size_t i = 0; i < r->nexcluded; i++)
    if (strcmp(r->excluded[i], key) == 0 || strcmp(r->excluded[i], whole) == 0)
      return 1;
  return 0;
}

static char *to_text(const mt_jval_t *v) {
  mt_buf_t b = MT_BUF_INIT;
  ASSERT_TRUE(mt_jval_write(&b, v, SIZE_MAX) == 0);
  return b.data;
}

static void run_group(runner_t *r, const char *file, const mt_jval_t *group) {
  const mt_jval_t *desc = mt_jval_get(group, "description");
  const mt_jval_t *tests = mt_jval_get(group, "tests");
  ASSERT_TRUE(desc != NULL && tests != NULL);
  char *schema_text = to_text(mt_jval_get(group, "schema"));
  mt_schema_t *schema = NULL;
  mt_err_t cerr;
  int crc = mt_schema_compile(schema_text, strlen(schema_text), &schema, &cerr);
  for (size_t i = 0; i < tests->len; i++) {
    const mt_jval_t *t = &tests->u.items[i];
    const char *tdesc = mt_jval_get(t, "description")->u.str;
    int expect = mt_jval_get(t, "valid")->u.b;
    if (is_excluded(r, file, desc->u.str, tdesc)) {
      r->skipped++;
      continue;
    }
    char *data = to_text(mt_jval_get(t, "data"));
    mt_err_t verr;
    int got = 0;
    if (crc == 0)
      got = mt_schema_check(schema, data, strlen(data), &verr) == 0;
    if (crc == 0 && got == expect) {
      r->passed++;
    } else {
      r->failed++;
      printf("FAIL %s | %s | %s (expected %s): %s\n", file, desc->u.str, tdesc,
             expect ? "valid" : "invalid",
             crc != 0 ? cerr.msg
             : got    ? "accepted"
                      : verr.msg);
    }
    free(data);
  }
  mt_schema_free(schema);
  free(schema_text);
}

static void run_file(runner_t *r, const char *dir, const char *file) {
  mt_buf_t path = MT_BUF_INIT;
  size_t len;
  mt_buf_printf(&path, "%s/%s", dir, file);
  char *text = read_all(path.data, &len);
  /* The suite is there but lacks a file we count on: a broken copy, whose
   * cases would silently go unrun. */
  if (text == NULL)
    MT__FAIL("%s not found in the suite", path.data);
  mt_buf_free(&path);
  mt_jdoc_t *doc = NULL;
  mt_err_t err;
  ASSERT_EQ_INT(mt_jdoc_parse(text, len, &doc, &err), 0);
  const mt_jval_t *groups = mt_jdoc_root(doc);
  ASSERT_TRUE(groups->type == MT_JV_ARRAY);
  for (size_t i = 0; i < groups->len; i++)
    run_group(r, file, &groups->u.items[i]);
  mt_jdoc_free(doc);
  free(text);
}

TEST(schema_conformance) {
  char root[PATH_MAX], dir[PATH_MAX + 128];
  runner_t r = {0};
  if (!mt_test_source_root(root))
    SKIP("repository root not found: set MT_SOURCE_DIR");
  snprintf(dir, sizeof(dir), "%s/%s", root, SUITE_DIR);
  if (!is_dir(dir))
    SKIP("JSON Schema test suite not found: %s (the conformance data "
         "belongs in ../shared/conformance beside the repository)",
         dir);
  load_exclusions(&r, root);
  for (size_t i = 0; i < sizeof(suite_files) / sizeof(suite_files[0]); i++)
    run_file(&r, dir, suite_files[i]);
  printf("%zu passed, %zu failed, %zu excluded\n", r.passed, r.failed,
         r.skipped);
  for (size_t i = 0; i < r.nexcluded; i++)
    free(r.excluded[i]);
  free(r.excluded);
  ASSERT_EQ_INT(r.failed, 0);
  ASSERT_TRUE(r.passed > 0);
}
