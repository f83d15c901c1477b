/*
 * Writing JSON text from C: the one string escaper and the one number
 * writer that every JSON writer uses (the Lua encoder, the document model's
 * messages, the CLI's --json output).
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

/* Appends the finite double x to out in the fewest significant digits (15
 * to 17) that read back as the same double, with '.' as the decimal point
 * whatever the process's locale. With mark_float, an integral value gets
 * ".0" so that it decodes as a float again (Lua tells 1 from 1.0). Returns
 * 0, MT_EINVAL for NaN or an infinity (JSON has neither), or MT_ENOMEM. */
int mt_json_write_double(mt_buf_t *out, double x, int mark_float);

#endif
