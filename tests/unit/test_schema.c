/* Unit tests for the JSON Schema validator (runtime/schema/). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "json/limits.h"
#include "schema/schema.h"
#include "test.h"

static mt_schema_t *compile_ok(const char *json) {
  mt_schema_t *s = NULL;
  mt_err_t err;
  int rc = mt_schema_compile(json, strlen(json), &s, &err);
  if (rc != 0)
    MT__FAIL("schema refused: %s", err.msg);
  return s;
}

/* Compiles a schema that must be refused; returns the message. */
static const char *refused(const char *json, mt_err_t *err) {
  mt_schema_t *s = NULL;
  ASSERT_EQ_INT(mt_schema_compile(json, strlen(json), &s, err), MT_ECONFIG);
  ASSERT_TRUE(s == NULL);
  return err->msg;
}

static int starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int valid(const mt_schema_t *s, const char *json) {
  mt_err_t err;
  return mt_schema_check(s, json, strlen(json), &err) == 0;
}

/* Validates json, which must be invalid, and returns err->msg. */
static const char *violations(const mt_schema_t *s, const char *json,
                              mt_err_t *err) {
  ASSERT_EQ_INT(mt_schema_check(s, json, strlen(json), err), MT_EPAYLOAD);
  return err->msg;
}

static const char order_schema[] =
    "{\"type\":\"object\",\"required\":[\"name\",\"lines\"],"
    "\"properties\":{"
    "\"name\":{\"type\":\"string\",\"minLength\":1},"
    "\"email\":{\"type\":\"string\",\"format\":\"email\"},"
    "\"lines\":{\"type\":\"array\",\"minItems\":1,\"items\":{"
    "\"type\":\"object\",\"required\":[\"sku\",\"qty\"],"
    "\"additionalProperties\":false,\"properties\":{"
    "\"sku\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{3}-[0-9]{4}$\"},"
    "\"qty\":{\"type\":\"integer\",\"minimum\":1}}}}}}";

TEST(schema_error_pointers) {
  mt_schema_t *s = compile_ok(order_schema);
  mt_err_t err;
  ASSERT_TRUE(valid(s, "{\"name\":\"a\",\"lines\":[{\"sku\":\"ABC-1234\","
                       "\"qty\":1}]}"));
  ASSERT_EQ_STR(violations(s,
                           "{\"name\":\"a\",\"lines\":[{\"sku\":\"ABC-1234\","
                           "\"qty\":1},{\"sku\":\"abc\",\"qty\":2}]}",
                           &err),
                "/lines/1/sku: does not match pattern ^[A-Z]{3}-[0-9]{4}$");
  ASSERT_EQ_STR(
      violations(s, "{\"lines\":[{\"sku\":\"ABC-1234\",\"qty\":1}]}", &err),
      "(root): missing required property \"name\"");
  ASSERT_EQ_STR(violations(s,
                           "{\"name\":\"a\",\"email\":\"nope\",\"lines\":[{"
                           "\"sku\":\"ABC-1234\",\"qty\":1}]}",
                           &err),
                "/email: is not a valid \"email\"");
  /* Pointer escaping: "/" and "~" in keys. */
  mt_schema_t *esc = compile_ok("{\"additionalProperties\":false}");
  ASSERT_EQ_STR(violations(esc, "{\"a/b~c\":1}", &err),
                "/a~1b~0c: additional property is not allowed");
  mt_schema_free(esc);
  mt_schema_free(s);
}

TEST(schema_every_violation) {
  mt_schema_t *s = compile_ok(order_schema);
  mt_err_t err;
  mt_schema_error_t *errors = NULL;
  size_t n = 0;
  const char *doc = "{\"name\":\"\",\"email\":\"x\",\"lines\":[{\"sku\":"
                    "\"ABC-1234\",\"qty\":0,\"extra\":true}]}";
  ASSERT_EQ_INT(mt_schema_validate(s, doc, strlen(doc), &errors, &n, &err),
                MT_EPAYLOAD);
  ASSERT_EQ_INT(n, 4);
  ASSERT_EQ_STR(errors[0].pointer, "/name");
  ASSERT_EQ_STR(errors[0].keyword, "minLength");
  ASSERT_EQ_STR(errors[1].pointer, "/email");
  ASSERT_EQ_STR(errors[1].keyword, "format");
  ASSERT_EQ_STR(errors[2].pointer, "/lines/0/qty");
  ASSERT_EQ_STR(errors[2].keyword, "minimum");
  ASSERT_EQ_STR(errors[2].message, "must be >= 1");
  ASSERT_EQ_STR(errors[3].pointer, "/lines/0/extra");
  ASSERT_EQ_STR(errors[3].keyword, "additionalProperties");
  ASSERT_EQ_STR(err.msg, "/name: is shorter than 1 characters\n"
                         "/email: is not a valid \"email\"\n"
                         "/lines/0/qty: must be >= 1\n"
                         "/lines/0/extra: additional property is not allowed");
  mt_schema_errors_free(errors, n);

  /* Two bad fields, two errors; the valid case leaves the list empty. */
  mt_schema_t *two = compile_ok("{\"properties\":{\"a\":{\"type\":\"string\"},"
                                "\"b\":{\"maximum\":3}}}");
  ASSERT_EQ_INT(
      mt_schema_validate(two, "{\"a\":1,\"b\":4}", 13, &errors, &n, &err),
      MT_EPAYLOAD);
  ASSERT_EQ_INT(n, 2);
  ASSERT_EQ_STR(errors[0].message, "is not of type \"string\"");
  ASSERT_EQ_STR(errors[1].message, "must be <= 3");
  mt_schema_errors_free(errors, n);
  ASSERT_EQ_INT(mt_schema_validate(two, "{\"a\":\"x\"}", 9, &errors, &n, &err),
                0);
  ASSERT_TRUE(errors == NULL && n == 0);
  mt_schema_errors_free(NULL, 0);
  mt_schema_free(two);
  mt_schema_free(s);
}

TEST(schema_long_error_list_truncated) {
  mt_schema_t *s = compile_ok("{\"items\":{\"type\":\"string\"}}");
  mt_err_t err;
  char doc[8192] = "[";
  for (int i = 0; i < 1000; i++)
    strcat(doc, i ? ",1" : "1");
  strcat(doc, "]");
  violations(s, doc, &err);
  ASSERT_TRUE(strlen(err.msg) < MT_ERR_MAX);
  ASSERT_TRUE(starts_with(err.msg, "/0: is not of type \"string\"\n"));
  ASSERT_TRUE(strstr(err.msg, " more") != NULL);
  ASSERT_TRUE(strstr(err.msg, "\n... and ") != NULL);
  mt_schema_free(s);
}

TEST(schema_malformed_refused) {
  mt_err_t err;
  ASSERT_EQ_STR(
      refused("{\"properties\":{\"a\":{\"type\":\"integr\"}}}", &err),
      "invalid schema at /properties/a/type: unknown type \"integr\"");
  ASSERT_EQ_STR(refused("{\"required\":\"name\"}", &err),
                "invalid schema at /required: must be an array of strings");
  ASSERT_TRUE(strstr(refused("{\"required\":[\"a\",1]}", &err), "/required:") !=
              NULL);
  const char *msg =
      refused("{\"properties\":{\"x\":{\"pattern\":\"(\"}}}", &err);
  ASSERT_TRUE(starts_with(msg, "invalid schema at /properties/x/pattern: "
                               "invalid regular expression \"(\": "));
  msg = refused("{\"patternProperties\":{\"[a-\":{}}}", &err);
  ASSERT_TRUE(strstr(msg, "/patternProperties/[a-: invalid regular") != NULL);
  ASSERT_EQ_STR(refused("{\"items\":{\"$ref\":\"#/$defs/missing\"}}", &err),
                "invalid schema at /items/$ref: cannot resolve $ref "
                "\"#/$defs/missing\"");
  ASSERT_EQ_STR(refused("{\"minLength\":-1}", &err),
                "invalid schema at /minLength: must be a non-negative integer");
  ASSERT_EQ_STR(refused("{\"properties\":[]}", &err),
                "invalid schema at /properties: must be an object of schemas");
  ASSERT_EQ_STR(refused("{\"allOf\":[1]}", &err),
                "invalid schema at /allOf/0: must be a schema (an object or a "
                "boolean)");
  ASSERT_EQ_STR(
      refused("{\"multipleOf\":0}", &err),
      "invalid schema at /multipleOf: must be a number greater than 0");
  ASSERT_EQ_STR(refused("42", &err),
                "invalid schema at (root): a schema must be an object or a "
                "boolean");
  ASSERT_TRUE(
      starts_with(refused("{\"type\":", &err), "invalid schema: invalid JSON"));
  /* Unknown keywords are annotations, not errors. */
  mt_schema_free(compile_ok("{\"title\":\"t\",\"x-anything\":[1,2],"
                            "\"$comment\":\"c\",\"default\":3}"));
}

TEST(schema_array_vs_object) {
  mt_schema_t *arr = compile_ok("{\"type\":\"array\"}");
  mt_schema_t *obj = compile_ok("{\"type\":\"object\"}");
  mt_err_t err;
  ASSERT_TRUE(valid(arr, "[]"));
  ASSERT_EQ_STR(violations(arr, "{}", &err),
                "(root): is not of type \"array\"");
  ASSERT_TRUE(valid(obj, "{}"));
  ASSERT_EQ_STR(violations(obj, "[]", &err),
                "(root): is not of type \"object\"");
  mt_schema_t *c = compile_ok("{\"const\":[]}");
  ASSERT_TRUE(valid(c, "[]"));
  ASSERT_TRUE(!valid(c, "{}"));
  mt_schema_free(c);
  mt_schema_free(arr);
  mt_schema_free(obj);
}

TEST(schema_big_integers_exact) {
  mt_err_t err;
  mt_schema_t *s = compile_ok("{\"maximum\":9007199254740992}");
  ASSERT_TRUE(valid(s, "9007199254740992"));
  ASSERT_EQ_STR(violations(s, "9007199254740993", &err),
                "(root): must be <= 9007199254740992");
  mt_schema_free(s);
  s = compile_ok("{\"const\":9223372036854775807}");
  ASSERT_TRUE(valid(s, "9223372036854775807"));
  ASSERT_TRUE(!valid(s, "9223372036854775806"));
  mt_schema_free(s);
  s = compile_ok(
      "{\"type\":\"integer\",\"exclusiveMinimum\":9223372036854775806}");
  ASSERT_TRUE(valid(s, "9223372036854775807"));
  ASSERT_TRUE(!valid(s, "9223372036854775806"));
  ASSERT_TRUE(valid(s, "1e300")); /* an integer, and greater */
  mt_schema_free(s);
  s = compile_ok("{\"type\":\"integer\",\"multipleOf\":3}");
  ASSERT_TRUE(valid(s, "9223372036854775806"));
  ASSERT_TRUE(!valid(s, "9223372036854775807"));
  ASSERT_TRUE(valid(s, "3.0"));
  ASSERT_EQ_STR(violations(s, "1.5", &err),
                "(root): is not of type \"integer\"\n"
                "(root): is not a multiple of 3");
  mt_schema_free(s);
}

TEST(schema_one_of_with_null) {
  mt_err_t err;
  mt_schema_t *s =
      compile_ok("{\"properties\":{\"email\":{\"oneOf\":[{\"type\":\"null\"},"
                 "{\"type\":\"string\",\"format\":\"email\"}]}}}");
  ASSERT_TRUE(valid(s, "{\"email\":null}"));
  ASSERT_TRUE(valid(s, "{\"email\":\"a@example.com\"}"));
  /* Only the string branch could apply, so its own error is reported. */
  ASSERT_EQ_STR(violations(s, "{\"email\":\"nope\"}", &err),
                "/email: is not a valid \"email\"");
  ASSERT_EQ_STR(violations(s, "{\"email\":3}", &err),
                "/email: does not match any of the oneOf schemas");
  mt_schema_free(s);
  s = compile_ok("{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":0}]}");
  ASSERT_EQ_STR(violations(s, "1", &err),
                "(root): matches more than one of the oneOf schemas (0 and 1)");
  mt_schema_free(s);
}

TEST(schema_refs_and_recursion) {
  mt_err_t err;
  mt_schema_t *s = compile_ok(
      "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{"
      "\"value\":{\"type\":\"integer\"},"
      "\"children\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"}}"
      "}}},\"$ref\":\"#/$defs/node\"}");
  ASSERT_TRUE(valid(s, "{\"value\":1,\"children\":[{\"value\":2,"
                       "\"children\":[]}]}"));
  ASSERT_EQ_STR(violations(s,
                           "{\"children\":[{\"children\":[{\"value\":"
                           "\"x\"}]}]}",
                           &err),
                "/children/0/children/0/value: is not of type \"integer\"");
  mt_schema_free(s);
  /* A cycle that never consumes the instance ends at the depth limit. */
  s = compile_ok("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},"
                 "\"b\":{\"$ref\":\"#/$defs/a\"}},\"$ref\":\"#/$defs/a\"}");
  ASSERT_TRUE(strstr(violations(s, "1", &err), "deeper than") != NULL);
  mt_schema_free(s);
  s = compile_ok("{\"$anchor\":\"top\",\"properties\":{\"a\":{\"$ref\":"
                 "\"#top\"}},\"required\":[\"b\"]}");
  ASSERT_TRUE(valid(s, "{\"b\":1,\"a\":{\"b\":2}}"));
  ASSERT_EQ_STR(violations(s, "{\"b\":1,\"a\":{}}", &err),
                "/a: missing required property \"b\"");
  mt_schema_free(s);
}

TEST(schema_keyword_messages) {
  mt_err_t err;
  mt_schema_t *s =
      compile_ok("{\"properties\":{"
                 "\"e\":{\"enum\":[\"a\",\"b\"]},"
                 "\"u\":{\"uniqueItems\":true},"
                 "\"d\":{\"dependentRequired\":{\"x\":[\"y\"]}},"
                 "\"n\":{\"not\":{\"type\":\"string\"}},"
                 "\"s\":{\"maxLength\":2},"
                 "\"c\":{\"contains\":{\"const\":1}},"
                 "\"p\":{\"propertyNames\":{\"pattern\":\"^[a-z]+$\"}}}}");
  ASSERT_EQ_STR(violations(s,
                           "{\"e\":\"z\",\"u\":[1,1.0],\"d\":{\"x\":1},"
                           "\"n\":\"s\",\"s\":\"\u00e9\u00e9\u00e9\","
                           "\"c\":[2],\"p\":{\"A\":1}}",
                           &err),
                "/e: is not one of the allowed values [\"a\",\"b\"]\n"
                "/u: has equal items at 0 and 1\n"
                "/d: missing property \"y\", required when \"x\" is present\n"
                "/n: must not match the \"not\" schema\n"
                "/s: is longer than 2 characters\n"
                "/c: does not contain an item matching the contains schema\n"
                "/p: property name \"A\" is not allowed");
  /* maxLength counts code points, not bytes. */
  ASSERT_TRUE(valid(s, "{\"s\":\"\u00e9\u00e9\"}"));
  ASSERT_EQ_STR(violations(s, "not json", &err),
                "invalid JSON at byte 0: expected a value");
  mt_schema_free(s);
}

/* Not an assertion: prints what one validation of a typical payload costs. */
TEST(schema_timing) {
  mt_schema_t *s = compile_ok(
      "{\"type\":\"object\",\"additionalProperties\":false,"
      "\"required\":[\"id\",\"email\",\"customer\",\"lines\",\"created_at\"],"
      "\"properties\":{"
      "\"id\":{\"type\":\"string\",\"format\":\"uuid\"},"
      "\"email\":{\"type\":\"string\",\"format\":\"email\"},"
      "\"created_at\":{\"type\":\"string\",\"format\":\"date-time\"},"
      "\"priority\":{\"enum\":[\"low\",\"normal\",\"high\"]},"
      "\"note\":{\"type\":[\"string\",\"null\"],\"maxLength\":200},"
      "\"customer\":{\"type\":\"object\",\"required\":[\"name\"],"
      "\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":1},"
      "\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":150},"
      "\"vip\":{\"type\":\"boolean\"}}},"
      "\"lines\":{\"type\":\"array\",\"minItems\":1,\"items\":{"
      "\"type\":\"object\",\"required\":[\"sku\",\"qty\",\"price\"],"
      "\"properties\":{"
      "\"sku\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{3}-[0-9]{4}$\"},"
      "\"qty\":{\"type\":\"integer\",\"minimum\":1},"
      "\"price\":{\"type\":\"number\",\"exclusiveMinimum\":0,"
      "\"multipleOf\":0.01}}}}}}");
  const char *doc =
      "{\"id\":\"2eb8aa08-aa98-11ea-b4aa-73b441d16380\","
      "\"email\":\"joe@example.com\",\"created_at\":\"2024-05-01T10:00:00Z\","
      "\"priority\":\"high\",\"note\":null,"
      "\"customer\":{\"name\":\"Joe\",\"age\":42,\"vip\":true},"
      "\"lines\":[{\"sku\":\"ABC-1234\",\"qty\":2,\"price\":9.99},"
      "{\"sku\":\"XYZ-0001\",\"qty\":1,\"price\":100.5},"
      "{\"sku\":\"QRS-7777\",\"qty\":3,\"price\":0.25}]}";
  size_t len = strlen(doc);
  mt_err_t err;
  const int rounds = 20000;
  struct timespec t0, t1;
  ASSERT_TRUE(mt_schema_check(s, doc, len, &err) == 0);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < rounds; i++)
    if (mt_schema_check(s, doc, len, &err) != 0)
      MT__FAIL("%s", err.msg);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
               (double)(t1.tv_nsec - t0.tv_nsec)) /
              1e3 / rounds;
  printf("schema_timing: %.2f us per validation (%zu-byte payload)\n", us, len);
  mt_schema_free(s);
}

/* {"child":{"child":...{}}}: depth objects nested in one another. */
static char *nested_objects(int depth) {
  static const char open[] = "{\"child\":";
  size_t n = (size_t)depth * (sizeof open - 1) + 2 + (size_t)depth;
  char *s = malloc(n + 1), *p = s;
  ASSERT_TRUE(s != NULL);
  for (int i = 1; i < depth; i++, p += sizeof open - 1)
    memcpy(p, open, sizeof open - 1);
  *p++ = '{';
  for (int i = 0; i < depth; i++)
    *p++ = '}';
  *p = '\0';
  return s;
}

static const char recursive_schema[] =
    "{\"$ref\":\"#/$defs/node\",\"$defs\":{\"node\":{\"type\":\"object\","
    "\"properties\":{\"child\":{\"$ref\":\"#/$defs/node\"}}}}}";

TEST(schema_recursive_follows_payload_to_the_json_limit) {
  mt_schema_t *s = compile_ok(recursive_schema);
  mt_err_t err;
  /* Whatever the parsers accept validates; one level more is the parser's
   * error, naming the limit. */
  char *doc = nested_objects(MT_JSON_MAX_DEPTH);
  ASSERT_TRUE(valid(s, doc));
  free(doc);
  doc = nested_objects(MT_JSON_MAX_DEPTH + 1);
  ASSERT_TRUE(strstr(violations(s, doc, &err),
                     "nested deeper than the limit of 1000 levels") != NULL);
  free(doc);
  mt_schema_free(s);
  /* A tree of objects and arrays, with an anyOf on every level. */
  s = compile_ok(
      "{\"$ref\":\"#/$defs/t\",\"$defs\":{\"t\":{\"anyOf\":[{\"type\":"
      "\"integer\"},{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/t\"}}"
      "]}}}");
  mt_buf_t tree = MT_BUF_INIT;
  for (int leaf = 0; leaf < 2; leaf++) {
    mt_buf_reset(&tree);
    for (int i = 0; i < MT_JSON_MAX_DEPTH; i++)
      mt_buf_putc(&tree, '[');
    mt_buf_puts(&tree, leaf ? "1.5" : "7"); /* 1.5: neither branch */
    for (int i = 0; i < MT_JSON_MAX_DEPTH; i++)
      mt_buf_putc(&tree, ']');
    if (leaf == 0)
      ASSERT_TRUE(valid(s, tree.data));
    else
      ASSERT_TRUE(starts_with(violations(s, tree.data, &err), "/0/0/0/0/0/"));
  }
  mt_buf_free(&tree);
  mt_schema_free(s);
}

TEST(schema_depth_budget_decides_the_verdict) {
  mt_err_t err;
  /* A $ref cycle that consumes no instance depth still stops, with one
   * error naming the limit, also under "not", where a probe's failure
   * would otherwise read as success. */
  mt_schema_t *s =
      compile_ok("{\"not\":{\"$ref\":\"#/$defs/a\"},\"$defs\":{\"a\":{\"$ref\":"
                 "\"#/$defs/b\"},\"b\":{\"$ref\":\"#/$defs/a\"}}}");
  ASSERT_EQ_STR(violations(s, "{}", &err),
                "(root): schema nesting deeper than 512 levels at one place "
                "in the payload (a $ref cycle?)");
  mt_schema_free(s);
  s = compile_ok("{\"anyOf\":[{\"$ref\":\"#\"}]}");
  ASSERT_EQ_STR(violations(s, "[]", &err),
                "(root): schema nesting deeper than 512 levels at one place "
                "in the payload (a $ref cycle?)");
  mt_schema_free(s);
  /* The cycle is found at any instance depth, and the budget is per place:
   * 400 schema levels on each of 3 levels of payload are fine. */
  mt_buf_t chain = MT_BUF_INIT;
  mt_buf_puts(&chain, "{\"$ref\":\"#/$defs/d0\",\"$defs\":{");
  for (int i = 0; i < 400; i++)
    mt_buf_printf(&chain, "\"d%d\":{\"$ref\":\"#/$defs/d%d\"},", i, i + 1);
  mt_buf_puts(&chain, "\"d400\":{\"properties\":{\"child\":{\"$ref\":"
                      "\"#/$defs/d0\"}}}}}");
  s = compile_ok(chain.data);
  mt_buf_free(&chain);
  ASSERT_TRUE(valid(s, "{\"child\":{\"child\":{}}}"));
  mt_schema_free(s);
  /* The budget for all levels at once (the C stack's guard) is 4 per
   * payload level: a schema that spends 5 on each of 1000 is stopped. */
  s = compile_ok("{\"$ref\":\"#/$defs/n\",\"$defs\":{\"n\":{\"allOf\":[{"
                 "\"allOf\":[{\"allOf\":[{\"properties\":{\"child\":{"
                 "\"$ref\":\"#/$defs/n\"}}}]}]}]}}}");
  char *doc = nested_objects(MT_JSON_MAX_DEPTH);
  /* The message keeps the ends of a pointer too long to show whole. */
  ASSERT_TRUE(starts_with(violations(s, doc, &err), "/child/child/"));
  ASSERT_TRUE(strstr(err.msg, "/child/.../child/") != NULL);
  ASSERT_TRUE(strstr(err.msg,
                     "/child: deeper than 4512 schema levels in all; the "
                     "payload nests too deep for this schema") != NULL);
  free(doc);
  doc = nested_objects(MT_JSON_MAX_DEPTH / 2);
  ASSERT_TRUE(valid(s, doc));
  free(doc);
  mt_schema_free(s);
}
