#include "config/config.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lua/env.h"

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
  cfg->migrate_on_run = 1;
}

/* Reads t[key] (table at index -1) as a string; absent keys leave *slot. */
static int read_string(lua_State *L, const char *file, const char *key,
                       char **slot, mt_err_t *err) {
  int rc = 0;
  int type = lua_getfield(L, -1, key);
  if (type == LUA_TSTRING)
    replace(slot, lua_tostring(L, -1));
  else if (type != LUA_TNIL)
    rc = mt_err_set(err, MT_ECONFIG, "%s: %s must be a string, not %s", file,
                    key, lua_typename(L, type));
  lua_pop(L, 1);
  return rc;
}

static int read_number(lua_State *L, const char *file, const char *key,
                       double *slot, double min, mt_err_t *err) {
  int rc = 0;
  int type = lua_getfield(L, -1, key);
  if (type == LUA_TNUMBER && lua_tonumber(L, -1) >= min)
    *slot = lua_tonumber(L, -1);
  else if (type != LUA_TNIL)
    rc = mt_err_set(err, MT_ECONFIG, "%s: %s must be a number >= %g", file,
                    key, min);
  lua_pop(L, 1);
  return rc;
}

/* Runs config.lua with only what a configuration needs: os.getenv and the
 * pure libraries. Stack: pushes the returned table on success. */
static int run_config_file(lua_State *L, const char *file, mt_err_t *err) {
  luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
  luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
  luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
  lua_pop(L, 4);
  /* Offer os.getenv only. Stack: -> os -> (empty). */
  luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
  lua_newtable(L);
  lua_getfield(L, -2, "getenv");
  lua_setfield(L, -2, "getenv");
  lua_setglobal(L, "os");
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_setglobal(L, "dofile");
  lua_pushnil(L);
  lua_setglobal(L, "loadfile");

  if (luaL_loadfilex(L, file, "t") != LUA_OK)
    return mt_err_set(err, MT_ECONFIG, "%s", lua_tostring(L, -1));
  if (mt_lua_pcall(L, 0, 1, err) != 0)
    return MT_ECONFIG;
  if (!lua_istable(L, -1))
    return mt_err_set(err, MT_ECONFIG, "%s: must return a table, not %s", file,
                      luaL_typename(L, -1));
  return 0;
}

static int load_file(mt_config_t *cfg, const char *file, mt_err_t *err) {
  int rc;
  lua_State *L = luaL_newstate();
  if (L == NULL)
    return MT_ENOMEM;
  if ((rc = run_config_file(L, file, err)) != 0)
    goto done;

  double workers = cfg->workers, migrate = cfg->migrate_on_run;
  int type = lua_getfield(L, -1, "migrate");
  if (type == LUA_TBOOLEAN)
    migrate = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if ((rc = read_string(L, file, "database_url", &cfg->database_url, err)) ||
      (rc = read_string(L, file, "backend", &cfg->backend, err)) ||
      (rc = read_string(L, file, "tasks_dir", &cfg->tasks_dir, err)) ||
      (rc = read_string(L, file, "schemas_dir", &cfg->schemas_dir, err)) ||
      (rc = read_number(L, file, "workers", &workers, 1, err)) ||
      (workers > 1024 &&
       (rc = mt_err_set(err, MT_ECONFIG, "%s: workers must be at most 1024",
                        file))) ||
      (rc = read_number(L, file, "poll_interval", &cfg->poll_interval, 0.001,
                        err)) ||
      (rc = read_number(L, file, "lease_timeout", &cfg->lease_timeout, 1,
                        err)) ||
      (rc = read_number(L, file, "task_timeout", &cfg->task_timeout, 0.001,
                        err)) ||
      (rc = read_number(L, file, "shutdown_grace", &cfg->shutdown_grace, 0,
                        err)))
    goto done;
  cfg->workers = (int)workers;
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

  if (strcmp(cfg->backend, "postgres") != 0)
    return mt_err_set(err, MT_ECONFIG,
                      "backend \"%s\" is not available (supported: postgres)",
                      cfg->backend);
  return 0;
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
