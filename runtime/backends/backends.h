/*
 * The backends this build has, and the one way to open one: by the kind
 * named in the configuration (`backend = "postgres"`). Everything above
 * this folder holds an mt_backend_t and never asks which one it is.
 */
#ifndef MT_BACKENDS_H
#define MT_BACKENDS_H

#include "backend.h"
#include "common/error.h"

/* MT_ECONFIG with the message `backend "<kind>" is not available
 * (supported: postgres, ...)` when kind names no backend of this build,
 * else 0. */
int mt_backend_check(const char *kind, mt_err_t *err);

/* Opens the backend conf->kind names (mt_backend_check's error when it
 * names none). The caller frees it with (*out)->ops->free, after every
 * session it handed out. */
int mt_backend_open(const mt_backend_conf_t *conf, mt_backend_t **out,
                    mt_err_t *err);

#endif
