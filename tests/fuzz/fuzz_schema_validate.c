/*
 * Payloads from outside validated against fixed schemas: the path every
 * moontask.schedule() and `moontask schedule` payload takes
 * (mt_schema_validate over the document parser). The schemas are two of
 * the example tasks' and one that uses every keyword and format the
 * validator asserts, so that the fuzzer can reach each of them.
 *
 * The properties, from schema/schema.h: an answer is 0 or MT_EPAYLOAD,
 * valid means no violations and invalid JSON means refused; a parsed
 * document that is refused has at least one violation, each with a JSON
 * Pointer, a keyword and a message; mt_schema_check() agrees with
 * mt_schema_validate().
 */
#include "fuzz.h"

#include "json/doc.h"
#include "schema/schema.h"

static const char *const schema_texts[] = {
    /* payments.verify */
    "{\"type\":\"object\",\"properties\":{\"payment_id\":{\"type\":"
    "\"integer\",\"minimum\":1}},\"required\":[\"payment_id\"],"
    "\"additionalProperties\":false}",
    /* email.send_reminder */
    "{\"type\":\"object\",\"properties\":{"
    "\"recipient\":{\"type\":\"string\",\"format\":\"email\",\"maxLength\":254},"
    "\"subject\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200},"
    "\"body\":{\"type\":\"string\",\"minLength\":1}},"
    "\"required\":[\"recipient\",\"subject\",\"body\"],"
    "\"additionalProperties\":false}",
    /* Every keyword and format. */
    "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
    "\"$id\":\"https://example.com/order\",\"type\":\"object\","
    "\"$defs\":{"
    "\"id\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":9007199254740991},"
    "\"tag\":{\"$anchor\":\"tag\",\"type\":\"string\","
    "\"pattern\":\"^[a-z][a-z0-9_-]{0,31}$\"},"
    "\"node\":{\"type\":\"object\",\"properties\":{\"children\":{\"type\":"
    "\"array\",\"items\":{\"$ref\":\"#/$defs/node\"}}}}},"
    "\"properties\":{"
    "\"id\":{\"$ref\":\"#/$defs/id\"},"
    "\"when\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"day\":{\"format\":\"date\"},\"at\":{\"format\":\"time\"},"
    "\"uuid\":{\"format\":\"uuid\"},\"ip4\":{\"format\":\"ipv4\"},"
    "\"ip6\":{\"format\":\"ipv6\"},\"uri\":{\"format\":\"uri\"},"
    "\"host\":{\"format\":\"hostname\"},\"dur\":{\"format\":\"duration\"},"
    "\"email\":{\"format\":\"email\"},"
    "\"amount\":{\"type\":\"number\",\"exclusiveMinimum\":0,"
    "\"exclusiveMaximum\":1e9,\"multipleOf\":0.01},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"$ref\":\"#tag\"},"
    "\"uniqueItems\":true,\"maxItems\":16,\"minItems\":1,"
    "\"contains\":{\"const\":\"urgent\"},\"minContains\":0,"
    "\"maxContains\":2},"
    "\"kind\":{\"enum\":[\"a\",\"b\",1,null,{\"x\":[1,2.5]}]},"
    "\"mode\":{\"oneOf\":[{\"const\":\"fast\"},{\"type\":\"integer\","
    "\"multipleOf\":3},{\"type\":\"integer\",\"multipleOf\":5}]},"
    "\"any\":{\"anyOf\":[{\"type\":\"string\",\"minLength\":2},"
    "{\"type\":\"boolean\"}]},"
    "\"all\":{\"allOf\":[{\"minimum\":-5},{\"maximum\":5}]},"
    "\"not\":{\"not\":{\"type\":\"null\"}},"
    "\"tree\":{\"$ref\":\"#/$defs/node\"},"
    "\"tuple\":{\"type\":\"array\",\"prefixItems\":[{\"type\":\"string\"},"
    "{\"type\":\"number\"}],\"items\":false},"
    "\"cond\":{\"if\":{\"properties\":{\"k\":{\"const\":1}}},"
    "\"then\":{\"required\":[\"v\"]},\"else\":{\"maxProperties\":1}}},"
    "\"patternProperties\":{\"^x-\":{\"type\":\"string\"},"
    "\"\\\\p{Lu}\":{\"type\":\"integer\"}},"
    "\"propertyNames\":{\"maxLength\":40},"
    "\"dependentRequired\":{\"amount\":[\"id\"]},"
    "\"dependentSchemas\":{\"tree\":{\"required\":[\"id\"]}},"
    "\"required\":[\"id\"],"
    "\"additionalProperties\":{\"type\":[\"string\",\"number\",\"array\"],"
    "\"items\":{\"type\":\"object\",\"minProperties\":1}}}",
};
#define NSCHEMAS (sizeof schema_texts / sizeof *schema_texts)
static mt_schema_t *schemas[NSCHEMAS];

static void init(void) {
  mt_err_t err;
  for (size_t i = 0; i < NSCHEMAS; i++)
    if (mt_schema_compile(schema_texts[i], strlen(schema_texts[i]), &schemas[i],
                          &err) != 0) {
      fprintf(stderr, "fuzz_schema_validate: schema %zu: %s\n", i, err.msg);
      exit(1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  if (!ready) {
    init();
    ready = 1;
  }
  char *text = malloc(size > 0 ? size : 1);
  if (text == NULL)
    abort();
  memcpy(text, data, size);
  mt_jdoc_t *doc = NULL;
  int parses = mt_jdoc_parse(text, size, &doc, NULL) == 0;
  mt_jdoc_free(doc);

  for (size_t i = 0; i < NSCHEMAS; i++) {
    static mt_err_t err, err2;
    mt_schema_error_t *errors = NULL;
    size_t n = 0;
    int rc = mt_schema_validate(schemas[i], text, size, &errors, &n, &err);
    FUZZ_CHECK(rc == 0 || rc == MT_EPAYLOAD, "schema %zu: rc %d: %s", i, rc,
               err.msg);
    FUZZ_CHECK(rc != 0 || (n == 0 && errors == NULL),
               "schema %zu: valid with %zu violations", i, n);
    FUZZ_CHECK(parses || rc != 0, "schema %zu: bad JSON passed", i);
    if (parses && rc != 0)
      FUZZ_CHECK(n > 0 && errors != NULL,
                 "schema %zu: refused with no violation: %s", i, err.msg);
    for (size_t k = 0; k < n; k++)
      FUZZ_CHECK(
          errors[k].pointer != NULL && errors[k].keyword != NULL &&
              errors[k].message != NULL &&
              (errors[k].pointer[0] == '\0' || errors[k].pointer[0] == '/'),
          "schema %zu: violation %zu is malformed", i, k);
    mt_schema_errors_free(errors, n);
    int rc2 = mt_schema_check(schemas[i], text, size, &err2);
    FUZZ_CHECK(rc2 == rc, "schema %zu: validate says %d, check says %d", i, rc,
               rc2);
  }
  free(text);
  return 0;
}
