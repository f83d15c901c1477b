/*
 * Writing JSON text from C: the one string escaper every JSON writer uses
 * (the Lua encoder, the document model's messages, the CLI's --json output).
 */
#ifndef MT_JSON_WRITE_H
#define MT_JSON_WRITE_H

#include <stddef.h>

#include "common/buf.h"

/* Appends the n bytes at s to out as a quoted JSON string. '"' and '\\' are
 * escaped, and so is every C0 control character (\b \f \n \r \t by name, the
 * rest as \u00XX); other bytes pass through unchanged, so the caller decides
 * whether s must be valid UTF-8. Returns 0 or MT_ENOMEM. */
int mt_json_write_string(mt_buf_t *out, const char *s, size_t n);

#endif
