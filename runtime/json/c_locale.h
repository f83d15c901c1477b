/*
 * The "C" locale, for reading and writing JSON numbers. strtod and printf
 * use the decimal point of LC_NUMERIC, which the embedding process may have
 * set (under de_DE strtod wants "1,5" and stops at the '.' of "1.5", and
 * printf writes "1,5"). Swapping '.' for localeconv()'s point, as Lua's own
 * lua_str2number does, races with a setlocale() on another thread and fails
 * for multi-byte points (ps_AF's is U+066B); a "C" locale object made once
 * and passed to strtod_l, or made current for one thread with uselocale(),
 * is exact and thread-safe. Private to runtime/json/.
 */
#ifndef MT_JSON_C_LOCALE_H
#define MT_JSON_C_LOCALE_H

#include <locale.h>

/* The process's one "C" locale object, created on first use; (locale_t)0
 * only when there was no memory to create it. */
locale_t mt_json_c_locale(void);

#endif
