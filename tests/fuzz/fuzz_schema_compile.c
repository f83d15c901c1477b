/*
 * Schemas from outside: whatever a schema file returns reaches
 * mt_schema_compile() as JSON text, regexes (ECMA-262 rewritten for PCRE2),
 * $refs, anchors and $ids included. A schema that compiles is then used on
 * a few fixed payloads and on its own text, so that the validator walks
 * trees the fuzzer shaped ($ref cycles, deep nesting, odd keyword values).
 *
 * The properties, from schema/schema.h: a refused schema is MT_ECONFIG
 * with a message and no schema; validating gives 0 or MT_EPAYLOAD.
 */
#include "fuzz.h"

#include "schema/schema.h"

static const char *const instances[] = {
    "{}",
    "[]",
    "null",
    "0",
    "-1.5e300",
    "\"\"",
    "\"2026-03-29T02:30:00+02:00\"",
    "{\"a\":[1,\"b\",{\"c\":null}],\"d\":true,\"\\u00e9\":{}}",
    "[[[[[[[[[[1]]]]]]]]]]",
    "{\"id\":7,\"tags\":[\"x\",\"x\"],\"email\":\"a@b.c\"}",
};
#define NINSTANCES (sizeof instances / sizeof *instances)

static void validate(const mt_schema_t *s, const char *text, size_t len) {
  static mt_err_t err;
  mt_schema_error_t *errors = NULL;
  size_t n = 0;
  int rc = mt_schema_validate(s, text, len, &errors, &n, &err);
  FUZZ_CHECK(rc == 0 || rc == MT_EPAYLOAD, "validate: rc %d: %s", rc, err.msg);
  FUZZ_CHECK(rc != 0 || n == 0, "valid with %zu violations", n);
  mt_schema_errors_free(errors, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mt_err_t err;
  char *text = malloc(size > 0 ? size : 1);
  if (text == NULL)
    abort();
  memcpy(text, data, size);
  mt_schema_t *s = NULL;
  err.msg[0] = '\0';
  int rc = mt_schema_compile(text, size, &s, &err);
  if (rc != 0) {
    FUZZ_CHECK(rc == MT_ECONFIG && s == NULL && err.msg[0] != '\0',
               "refused with rc %d, schema %p: %s", rc, (void *)s, err.msg);
  } else {
    for (size_t i = 0; i < NINSTANCES; i++)
      validate(s, instances[i], strlen(instances[i]));
    validate(s, text, size);
  }
  mt_schema_free(s);
  free(text);
  return 0;
}
