/*
 * Runtime configuration: the defaults, config.lua, the environment and the
 * command line, merged in that order of increasing precedence.
 *
 * config.lua is a Lua chunk returning a table; it runs in a small sandbox that
 * offers os.getenv so that it can read secrets from the environment. The
 * resulting mt_config_t is plain C and owns its strings; mt_config_free()
 * releases them.
 */
#ifndef MT_CONFIG_H
#define MT_CONFIG_H

#include <stddef.h>

#include "common/error.h"

/* The most worker threads a runtime may have (config and --workers). */
#define MT_WORKERS_MAX 1024

typedef struct mt_config_s {
  char *config_file;  /* the file that was loaded, NULL when none */
  char *database_url; /* NULL: the embedded database */
  char *backend;      /* "postgres" or "aws" */
  char *tasks_dir;
  char *schemas_dir;
  int workers;
  double poll_interval;
  double lease_timeout;
  double task_timeout;
  double shutdown_grace;
  size_t memory_limit; /* bytes per Lua state; a task file may override */
  int migrate_on_run;  /* `run` migrates first unless this is 0 */
} mt_config_t;

/* Command-line values that override the file; NULL/0 means "not given". */
typedef struct mt_config_overrides_s {
  const char *config_file;
  const char *database_url;
  const char *tasks_dir;
  const char *schemas_dir;
  int workers;
} mt_config_overrides_t;

int mt_config_load(mt_config_t *cfg, const mt_config_overrides_t *ov,
                   mt_err_t *err);
void mt_config_free(mt_config_t *cfg);

#endif
