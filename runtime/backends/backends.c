#include "backends/backends.h"

#include <stddef.h>
#include <string.h>

#include "postgres/pg_backend.h"

/* One entry per backend; a backend built optionally adds its line under
 * its build switch. */
static const struct {
  const char *kind;
  int (*open)(const mt_backend_conf_t *conf, mt_backend_t **out, mt_err_t *err);
} backends[] = {
    {"postgres", mt_pg_backend_open},
};

#define NBACKENDS (sizeof backends / sizeof backends[0])

int mt_backend_known(const char *kind) {
  for (size_t i = 0; i < NBACKENDS; i++)
    if (strcmp(kind, backends[i].kind) == 0)
      return 1;
  return 0;
}

const char *mt_backend_kinds(void) { return "postgres"; }

int mt_backend_open(const mt_backend_conf_t *conf, mt_backend_t **out,
                    mt_err_t *err) {
  for (size_t i = 0; i < NBACKENDS; i++)
    if (strcmp(conf->kind, backends[i].kind) == 0)
      return backends[i].open(conf, out, err);
  return mt_err_set(err, MT_ECONFIG,
                    "backend \"%s\" is not available (supported: %s)",
                    conf->kind, mt_backend_kinds());
}
