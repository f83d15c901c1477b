#include "backends/backends.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "postgres/pg_backend.h"
#ifdef MT_WITH_AWS
#include "aws/aws_backend.h"
#endif

/* One entry per backend; a backend built optionally adds its line under
 * its build switch. */
static const struct {
  const char *kind;
  int (*open)(const mt_backend_conf_t *conf, mt_backend_t **out, mt_err_t *err);
} backends[] = {
    {"postgres", mt_pg_backend_open},
#ifdef MT_WITH_AWS
    {"aws", mt_aws_backend_open},
#endif
};

#define NBACKENDS (sizeof backends / sizeof backends[0])

int mt_backend_check(const char *kind, mt_err_t *err) {
  char kinds[128] = "";
  for (size_t i = 0; i < NBACKENDS; i++) {
    if (strcmp(kind, backends[i].kind) == 0)
      return 0;
    size_t at = strlen(kinds);
    snprintf(kinds + at, sizeof kinds - at, "%s%s", i ? ", " : "",
             backends[i].kind);
  }
  return mt_err_set(err, MT_ECONFIG,
                    "backend \"%s\" is not available (supported: %s)", kind,
                    kinds);
}

int mt_backend_open(const mt_backend_conf_t *conf, mt_backend_t **out,
                    mt_err_t *err) {
  int rc = mt_backend_check(conf->kind, err);
  for (size_t i = 0; rc == 0 && i < NBACKENDS; i++)
    if (strcmp(conf->kind, backends[i].kind) == 0)
      return backends[i].open(conf, out, err);
  return rc;
}
