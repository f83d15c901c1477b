/*
 * Error codes shared by every moontask module.
 *
 * Functions return 0 on success or a negative MT_E* code. The codes and their
 * messages come from one X-macro table, the way libuv keeps UV_ERRNO_MAP, so a
 * new code is added in exactly one place. Detailed messages (from libpq, Lua,
 * the parser that found the problem) are written into an mt_err_t buffer that
 * the caller owns.
 */
#ifndef MT_ERROR_H
#define MT_ERROR_H

#include <stddef.h>

#define MT_ERRNO_MAP(XX)               \
  XX(EINVAL, "invalid argument")       \
  XX(ENOMEM, "out of memory")          \
  XX(EIO, "input/output error")        \
  XX(EDB, "database error")            \
  XX(ELUA, "Lua error")                \
  XX(ENOTASK, "unknown task")          \
  XX(EPAYLOAD, "invalid payload")      \
  XX(ECONFIG, "invalid configuration") \
  XX(ETIMEDOUT, "timed out")           \
  XX(ENOTFOUND, "not found")           \
  XX(ESTATE, "wrong state")            \
  XX(ESYS, "system error")

enum {
#define XX(code, _) MT_##code,
  MT__ERRNO_BASE = -1000,
  MT_ERRNO_MAP(XX)
#undef XX
};

#define MT_ERR_MAX 4096

/* A caller-owned buffer for the human-readable detail of an error. */
typedef struct mt_err_s {
  char msg[MT_ERR_MAX];
} mt_err_t;

const char *mt_strerror(int code);

/* Formats a message into err (err may be NULL) and returns code, so that
 * callers can write `return mt_err_set(err, MT_EINVAL, "bad %s", what);`. */
int mt_err_set(mt_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Process exit code for an error: 2 for bad input, 1 for runtime failure. */
int mt_exit_code(int code);

#endif
