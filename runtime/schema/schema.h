/*
 * JSON Schema (draft 2020-12) validation for task payloads, in plain C.
 *
 * mt_schema_compile() parses a schema once into a tree of C nodes: regexes
 * are compiled (PCRE2, JIT where available), $refs are resolved to node
 * pointers (local JSON pointers, $anchor, and $id-identified resources
 * inside the same document), and malformed schemas are refused with the
 * schema path of the problem. Validation then walks that tree over a parsed
 * instance and never looks at schema text again; a compiled schema is
 * immutable and may be shared by threads.
 *
 * Validation reports every violation, each with the JSON Pointer of the
 * offending instance value and the keyword that rejected it. Not supported:
 * remote documents, $dynamicRef, unevaluated*; unknown keywords are
 * ignored as annotations. `format` is asserted for date-time, date, time,
 * email, uuid, ipv4, ipv6, uri, hostname and duration.
 *
 * The schema owns all its nodes and the parsed schema document;
 * mt_schema_free() releases them. Error arrays belong to the caller and are
 * released with mt_schema_errors_free().
 *
 * The implementation is split by concern in this folder (compile.c,
 * validate.c, regex.c, format.c, uri.c) around a private header,
 * internal.h, that code outside runtime/schema/ never includes.
 */
#ifndef MT_SCHEMA_H
#define MT_SCHEMA_H

#include <stddef.h>

#include "common/error.h"

typedef struct mt_schema_s mt_schema_t;

/* One violation. pointer is a JSON Pointer into the instance ("" for the
 * root); keyword is a static string ("pattern", "required", ...). */
typedef struct mt_schema_error_s {
  char *pointer;
  const char *keyword;
  char *message;
} mt_schema_error_t;

/* Compiles a schema given as JSON text. A malformed schema (bad JSON, an
 * unknown type name, `required` not an array of strings, a bad regex, a
 * dangling $ref, a keyword value of the wrong type) is refused with
 * MT_ECONFIG and a message naming the schema path and the reason. */
int mt_schema_compile(const char *json, size_t len, mt_schema_t **out,
                      mt_err_t *err);
void mt_schema_free(mt_schema_t *s);

/* Validates instance JSON text. Returns 0 if valid; MT_EPAYLOAD if the text
 * is not JSON or is invalid, with err->msg listing every violation, one per
 * line, as "<pointer or (root)>: <message>" (long lists end with
 * "... and N more"). If errors is not NULL it receives the violations as an
 * array (NULL when there are none) the caller frees with
 * mt_schema_errors_free(); nerrors may then not be NULL. MT_ENOMEM if
 * memory runs out. */
int mt_schema_validate(const mt_schema_t *s, const char *json, size_t len,
                       mt_schema_error_t **errors, size_t *nerrors,
                       mt_err_t *err);

/* mt_schema_validate() without the structured list. */
int mt_schema_check(const mt_schema_t *s, const char *json, size_t len,
                    mt_err_t *err);

void mt_schema_errors_free(mt_schema_error_t *errors, size_t n);

#endif
