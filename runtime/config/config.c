#include "config/config.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/backends.h"
#include "lua/env.h"
#include "service/registry.h"

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void replace(char **slot, const char *value) {
  free(*slot);
  *slot = dup_or_null(value);
}

static void set_defaults(mt_config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->backend = strdup("postgres");
  cfg->tasks_dir = strdup("tasks");
  cfg->schemas_dir = strdup("schemas");
  cfg->workers = 4;
  cfg->poll_interval = 1;
  cfg->lease_timeout = 30;
  cfg->task_timeout = 60;
  cfg->shutdown_grace = 30;
  cfg->memory_limit = MT_LUA_DEFAULT_MEMORY_LIMIT;
  cfg->migrate_on_run = 1;
}

/* Every key config.lua may set. Anything else is refused by name: a typo
 * such as task_timout would otherwise do nothing, silently. */
static const char *const known_keys[] = {
    "database_url",   "backend",       "tasks_dir",     "schemas_dir",
    "workers",        "poll_interval", "lease_timeout", "task_timeout",
    "shutdown_grace", "memory_limit",  "migrate",       NULL};

/* Edit distance, for "did you mean". Keys are short; a row suffices. */
static size_t distance(const char *a, const char *b) {
  size_t n = strlen(b), row[64];
  if (n >= sizeof row / sizeof *row)
    return (size_t)-1;
  for (size_t j = 0; j <= n; j++)
    row[j] = j;
  for (size_t i = 1; a[i - 1]; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= n; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best)
        best = up + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[n];
}

/* Stack: t -> t. Refuses a key of the returned table that is not a
 * setting, suggesting the nearest one. */
static int check_keys(lua_State *L, const char *file, mt_err_t *err) {
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      return mt_err_set(err, MT_ECONFIG,
                        "%s: the table must have only named settings", file);
    }
    const char *key = lua_tostring(L, -1);
    const char *nearest = NULL;
    size_t best = 3; /* two edits at most make a suggestion */
    int known = 0;
    for (const char *const *k = known_keys; *k && !known; k++) {
      size_t d = distance(key, *k);
      known = d == 0;
      if (d < best) {
        best = d;
        nearest = *k;
      }
    }
    if (!known) {
      int rc =
          mt_err_set(err, MT_ECONFIG, "%s: unknown setting \"%.100s\"%s%s%s",
                     file, key, nearest ? " (did you mean " : "",
                     nearest ? nearest : "", nearest ? "?)" : "");
      lua_pop(L, 1);
      return rc;
    }
  }
  return 0;
}

/* Reads t[key] (table at index -1) as a string; absent keys leave *slot. */
static int read_string(lua_State *L, const char *file, const char *key,
                       char **slot, mt_err_t *err) {
  int rc = 0;
  int type = mt_lua_rawfield(L, -1, key);
  if (type == LUA_TSTRING)
    replace(slot, lua_tostring(L, -1));
  else if (type != LUA_TNIL)
    rc = mt_err_set(err, MT_ECONFIG, "%s: %s must be a string, not %s", file,
                    key, lua_typename(L, type));
  lua_pop(L, 1);
  return rc;
}

/* Runs config.lua with only what a configuration needs: os.getenv and the
 * pure libraries, under the load time limit. Stack: pushes the returned
 * table on success. */
static int run_config_file(lua_State *L, const char *file, mt_err_t *err) {
  luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
  luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
  luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
  lua_pop(L, 4);
  /* Offer os.getenv only. Stack: -> os -> (empty). */
  luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
  lua_newtable(L);
  mt_lua_rawfield(L, -2, "getenv");
  lua_setfield(L, -2, "getenv");
  lua_setglobal(L, "os");
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_setglobal(L, "dofile");
  lua_pushnil(L);
  lua_setglobal(L, "loadfile");

  if (luaL_loadfilex(L, file, "t") != LUA_OK)
    return mt_err_set(err, MT_ECONFIG, "%s", lua_tostring(L, -1));
  if (mt_lua_pcall_load(L, file, 0, 1, err) != 0)
    return MT_ECONFIG;
  if (!lua_istable(L, -1))
    return mt_err_set(err, MT_ECONFIG, "%s: must return a table, not %s", file,
                      luaL_typename(L, -1));
  return 0;
}

static int load_file(mt_config_t *cfg, const char *file, mt_err_t *err) {
  int rc;
  mt_lua_guard_t guard;
  lua_State *L = mt_lua_state_new(&guard);
  if (L == NULL)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  guard.load_limit = (size_t)MT_LUA_DEFAULT_MEMORY_LIMIT;
  if ((rc = run_config_file(L, file, err)) != 0 ||
      (rc = check_keys(L, file, err)) != 0)
    goto done;

  double workers = cfg->workers, migrate = cfg->migrate_on_run;
  double memory_limit = (double)cfg->memory_limit;
  int type = mt_lua_rawfield(L, -1, "migrate");
  if (type == LUA_TBOOLEAN)
    migrate = lua_toboolean(L, -1);
  else if (type != LUA_TNIL)
    rc = mt_err_set(err, MT_ECONFIG, "%s: migrate must be true or false", file);
  lua_pop(L, 1);
  if (rc != 0 ||
      (rc = read_string(L, file, "database_url", &cfg->database_url, err)) ||
      (rc = read_string(L, file, "backend", &cfg->backend, err)) ||
      (rc = read_string(L, file, "tasks_dir", &cfg->tasks_dir, err)) ||
      (rc = read_string(L, file, "schemas_dir", &cfg->schemas_dir, err)) ||
      (rc = mt_lua_read_number(L, file, "workers", &workers, 1, MT_WORKERS_MAX,
                               1, err)) ||
      (rc = mt_lua_read_number(L, file, "poll_interval", &cfg->poll_interval,
                               0.001, 3600, 0, err)) ||
      (rc = mt_lua_read_number(L, file, "lease_timeout", &cfg->lease_timeout, 1,
                               86400, 0, err)) ||
      (rc = mt_lua_read_number(L, file, "task_timeout", &cfg->task_timeout,
                               MT_TIMEOUT_MIN, MT_TIMEOUT_MAX, 0, err)) ||
      (rc = mt_lua_read_number(L, file, "shutdown_grace", &cfg->shutdown_grace,
                               0, 86400, 0, err)) ||
      (rc = mt_lua_read_number(L, file, "memory_limit", &memory_limit,
                               MT_MEMORY_LIMIT_MIN, MT_MEMORY_LIMIT_MAX, 1,
                               err)))
    goto done;
  cfg->workers = (int)workers;
  cfg->memory_limit = (size_t)memory_limit;
  cfg->migrate_on_run = (int)migrate;
done:
  lua_close(L);
  return rc;
}

int mt_config_load(mt_config_t *cfg, const mt_config_overrides_t *ov,
                   mt_err_t *err) {
  int rc;
  set_defaults(cfg);

  const char *file = ov->config_file;
  if (file == NULL && access("config.lua", R_OK) == 0)
    file = "config.lua";
  if (file != NULL) {
    if (access(file, R_OK) != 0)
      return mt_err_set(err, MT_ECONFIG, "cannot read config file %s", file);
    cfg->config_file = strdup(file);
    if ((rc = load_file(cfg, file, err)) != 0)
      return rc;
  }

  /* The URL's precedence: flag, MOONTASK_DATABASE_URL, DATABASE_URL, file. */
  const char *env_url = getenv("MOONTASK_DATABASE_URL");
  if (env_url == NULL || *env_url == '\0')
    env_url = getenv("DATABASE_URL");
  if (ov->database_url != NULL)
    replace(&cfg->database_url, ov->database_url);
  else if (env_url != NULL && *env_url != '\0')
    replace(&cfg->database_url, env_url);
  if (cfg->database_url != NULL && *cfg->database_url == '\0')
    replace(&cfg->database_url, NULL);

  if (ov->tasks_dir != NULL)
    replace(&cfg->tasks_dir, ov->tasks_dir);
  if (ov->schemas_dir != NULL)
    replace(&cfg->schemas_dir, ov->schemas_dir);
  if (ov->workers > 0)
    cfg->workers = ov->workers;

  return mt_backend_check(cfg->backend, err);
}

void mt_config_free(mt_config_t *cfg) {
  if (cfg == NULL)
    return;
  free(cfg->config_file);
  free(cfg->database_url);
  free(cfg->backend);
  free(cfg->tasks_dir);
  free(cfg->schemas_dir);
  memset(cfg, 0, sizeof *cfg);
}
