/*
 * The backends this build has, and the one way to open one: by the kind
 * named in the configuration (`backend = "postgres"`). Everything above
 * this folder holds an mt_backend_t and never asks which one it is.
 */
#ifndef MT_BACKENDS_H
#define MT_BACKENDS_H

#include "backend.h"
#include "common/error.h"

/* Whether kind names a backend of this build. */
int mt_backend_known(const char *kind);

/* The kinds this build has, for messages: "postgres". */
const char *mt_backend_kinds(void);

/* Opens the backend conf->kind names; MT_ECONFIG naming the kinds there
 * are when it names none. */
int mt_backend_open(const mt_backend_conf_t *conf, mt_backend_t **out,
                    mt_err_t *err);

#endif
