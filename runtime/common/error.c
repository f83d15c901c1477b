#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>

const char *mt_strerror(int code) {
  switch (code) {
  case 0: return "ok";
#define XX(name, text) \
  case MT_##name: return text;
    MT_ERRNO_MAP(XX)
#undef XX
  default: return "unknown error";
  }
}

int mt_err_set(mt_err_t *err, int code, const char *fmt, ...) {
  if (err != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}

int mt_exit_code(int code) {
  switch (code) {
  case 0: return 0;
  case MT_EINVAL:
  case MT_ENOTASK:
  case MT_EPAYLOAD:
  case MT_ECONFIG:
  case MT_ENOTFOUND:
  case MT_ESTATE: return 2;
  default: return 1;
  }
}
