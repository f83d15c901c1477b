#include "lua/tasks.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "json/read.h"
#include "lua/env.h"
#include "lua/json.h"
#include "lua/sources.h"
#include "lua/stdlib.h"
#include "scheduler/catch_up.h"
#include "scheduler/cron.h"
#include "service/service.h"

#define TASKS_KEY "moontask.tasks"

typedef struct path_list_s {
  char **items;
  size_t count;
} path_list_t;

static void path_list_free(path_list_t *l) {
  for (size_t i = 0; i < l->count; i++)
    free(l->items[i]);
  free(l->items);
}

/* Collects a file's relative path (mt_sources_walk's visit); sorted
 * afterwards, so that load order (and so error reports) do not depend on
 * the filesystem. */
static int add_path(void *arg, const char *path, const char *rel,
                    mt_err_t *err) {
  path_list_t *out = arg;
  (void)path;
  char **items = realloc(out->items, (out->count + 1) * sizeof *items);
  if (items == NULL)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  out->items = items;
  if ((items[out->count] = strdup(rel)) == NULL)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  out->count++;
  return 0;
}

/* Every .lua file below root but those under skip (may be NULL). */
static int collect_dir(const char *root, const struct stat *skip,
                       path_list_t *out, mt_err_t *err) {
  const mt_sources_walk_t w = {
      .what = "tasks folder", .skip = skip, .visit = add_path, .arg = out};
  return mt_sources_walk(root, &w, err);
}

static int collect(const char *root, path_list_t *out, mt_err_t *err) {
  return collect_dir(root, NULL, out, err);
}

/* The task files of a snapshot: those read under the root dir, which the
 * snapshot read leaving the lib folder out, as collect_dir does. Relative
 * paths. */
static int collect_snapshot(const mt_sources_t *s, const char *dir,
                            path_list_t *out) {
  size_t dn = strlen(dir);
  for (size_t i = 0; i < mt_sources_count(s); i++) {
    if (strcmp(mt_sources_root(s, i), dir) != 0)
      continue;
    char **items = realloc(out->items, (out->count + 1) * sizeof *items);
    if (items == NULL)
      return MT_ENOMEM;
    out->items = items;
    if ((items[out->count] = strdup(mt_sources_path(s, i) + dn + 1)) == NULL)
      return MT_ENOMEM;
    out->count++;
  }
  return 0;
}

/* The task files under dir: every .lua file but those of the state's lib
 * folder (lua/stdlib.h), set by configure_toolkit. */
static int collect_tasks(lua_State *L, const char *dir, path_list_t *out,
                         mt_err_t *err) {
  const char *lib = mt_lua_stdlib_lib_dir(L);
  const mt_sources_t *snapshot = mt_lua_sources(L);
  if (snapshot != NULL)
    return collect_snapshot(snapshot, dir, out) == 0
               ? 0
               : mt_err_set(err, MT_ENOMEM, "out of memory");
  struct stat st;
  int has_lib = lib != NULL && stat(lib, &st) == 0 && S_ISDIR(st.st_mode);
  return collect_dir(dir, has_lib ? &st : NULL, out, err);
}

/* What the handlers' toolkit of state L may reach: the lib folder that
 * require() loads from and the variables ctx.env reads. */
static void configure_toolkit(lua_State *L, const char *dir,
                              const mt_task_defaults_t *defaults) {
  mt_lua_stdlib_configure(L, dir, defaults->lib_dir, defaults->env);
}

static int compare_paths(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* In name order, so that load order and reports do not depend on the
 * directory. (qsort on an empty list would be handed a NULL array, which
 * the C library may not be given.) */
static void sort_paths(path_list_t *paths) {
  if (paths->count > 0)
    qsort(paths->items, paths->count, sizeof *paths->items, compare_paths);
}

/* "attendance/merge_pools.lua" -> "attendance.merge_pools" */
static void name_from_path(const char *rel, char *name, size_t size) {
  snprintf(name, size, "%s", rel);
  name[strlen(name) - 4] = '\0';
  for (char *p = name; *p; p++)
    if (*p == '/')
      *p = '.';
}

/* Where named schemas live: the configured folder, else "schemas". */
static const char *schemas_dir(const mt_task_defaults_t *defaults) {
  return defaults->schemas_dir != NULL ? defaults->schemas_dir : "schemas";
}

/* Stack: schema -> (empty). Compiles the schema table on top of the stack
 * (Lua keys spelled as in JSON Schema, e.g. ["$ref"]). */
static int compile_schema_table(lua_State *L, const char *where,
                                mt_schema_t **out, mt_err_t *err) {
  mt_buf_t json = MT_BUF_INIT;
  mt_err_t detail;
  int rc = 0;
  if (!lua_istable(L, -1) && !lua_isboolean(L, -1))
    rc = mt_err_set(err, MT_ECONFIG, "%s: a schema must be a table, not %s",
                    where, luaL_typename(L, -1));
  else if (mt_json_encode(L, -1, &json, &detail) != 0)
    rc = mt_err_set(err, MT_ECONFIG, "%s: %s", where, detail.msg);
  else if (mt_schema_compile(json.data, json.len, out, &detail) != 0)
    rc = mt_err_set(err, MT_ECONFIG, "%s: %s", where, detail.msg);
  lua_pop(L, 1);
  mt_buf_free(&json);
  return rc;
}

/* The file a named schema lives in: "a.b" is <dir>/a/b.lua. */
static void schema_file(const char *dir, const char *name, char *out,
                        size_t size) {
  int n = snprintf(out, size, "%s/", dir);
  for (const char *p = name; *p && n < (int)size - 5; p++)
    out[n++] = *p == '.' ? '/' : *p;
  snprintf(out + n, size - (size_t)n, ".lua");
}

/* Loads <dir>/<a>/<b>.lua for the schema named "a.b" and compiles it. */
static int load_named_schema(lua_State *L, const char *dir, const char *name,
                             mt_schema_t **out, mt_err_t *err) {
  char file[8192];
  schema_file(dir, name, file, sizeof file);
  if (!mt_dotted_name_valid(name))
    return mt_err_set(err, MT_ECONFIG,
                      "\"%s\" is not a schema name (dotted, e.g. "
                      "attendance.merge_pools)",
                      name);
  mt_lua_env_push(L);
  int rc = mt_lua_load_file(L, file, -1, err);
  if (rc == 0)
    rc = mt_lua_pcall_load(L, file, 0, 1, err);
  if (rc != 0) {
    lua_pop(L, 1);
    return MT_ECONFIG;
  }
  lua_remove(L, -2); /* the env */
  return compile_schema_table(L, file, out, err);
}

/* Stack: def -> def. Resolves def.schema: a name from the schemas folder or
 * a table inlined in the task file. */
static int read_schema(lua_State *L, const char *file,
                       const mt_task_defaults_t *defaults, mt_task_def_t *def,
                       mt_err_t *err) {
  mt_err_t detail;
  int rc = 0;
  def->schema = NULL;
  def->schema_name = NULL;
  switch (mt_lua_rawfield(L, -1, "schema")) {
  case LUA_TNIL: lua_pop(L, 1); return 0;
  case LUA_TSTRING:
    def->schema_name = (char *)lua_tostring(L, -1); /* kept alive by def */
    rc = load_named_schema(L, schemas_dir(defaults), def->schema_name,
                           &def->schema, &detail);
    if (rc != 0)
      mt_err_set(err, rc, "%s: schema %s: %s", file, def->schema_name,
                 detail.msg);
    lua_pop(L, 1);
    return rc;
  default:
    def->schema_name = "(inline)";
    rc = compile_schema_table(L, file, &def->schema, err);
    return rc;
  }
}

/* Reads an optional string field of the table at the top of the stack.
 * Stack: t -> t. */
static int sched_string(lua_State *L, const char *key, const char *dflt,
                        char **out) {
  int type = mt_lua_rawfield(L, -1, key);
  const char *v = type == LUA_TNIL ? dflt : lua_tostring(L, -1);
  *out = (type == LUA_TNIL || type == LUA_TSTRING) ? strdup(v) : NULL;
  lua_pop(L, 1);
  return (type == LUA_TNIL || type == LUA_TSTRING) ? 0 : -1;
}

/* Checks one entry of a task file's `schedule` the way the runtime will
 * use it, so that a schedule that could never fire stops the load here,
 * with its file, and not later as a row marked with an error.
 * Stack: entry -> entry. */
static int read_one_schedule(lua_State *L, const char *file, int index,
                             const mt_task_def_t *def, mt_task_sched_t *out,
                             mt_err_t *err) {
  mt_err_t why = {{0}};
  mt_cron_t *cron = NULL;
  mt_tz_t *tz = NULL;
  mt_buf_t payload = MT_BUF_INIT;
  char *catch_up = NULL; /* the name, until parsed into out->catch_up */
  int rc = 0;
  if (!lua_istable(L, -1)) {
    rc = mt_err_set(err, MT_ECONFIG,
                    "%s: schedule[%d] must be a table like { cron = \"0 9 * "
                    "* MON\", tz = \"Europe/Oslo\", payload = {...} }",
                    file, index);
    goto fail;
  }
  if (mt_lua_rawfield(L, -1, "cron") != LUA_TSTRING) {
    lua_pop(L, 1);
    rc = mt_err_set(err, MT_ECONFIG,
                    "%s: schedule[%d].cron must be a cron or rate expression",
                    file, index);
    goto fail;
  }
  out->expression = strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
  if (sched_string(L, "tz", "UTC", &out->tz) != 0 ||
      sched_string(L, "catch_up", "once", &catch_up) != 0) {
    rc = mt_err_set(err, MT_ECONFIG,
                    "%s: schedule[%d]: tz and catch_up must be strings", file,
                    index);
    goto fail;
  }
  if (out->expression == NULL || out->tz == NULL || catch_up == NULL) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto fail;
  }
  if (mt_catch_up_parse(catch_up, &out->catch_up, &why) != 0) {
    rc = mt_err_set(err, MT_ECONFIG, "%s: schedule[%d].catch_up: %s", file,
                    index, why.msg);
    goto fail;
  }
  if (mt_cron_parse(out->expression, &cron, &why) != 0 ||
      mt_tz_load(out->tz, &tz, &why) != 0) {
    rc = mt_err_set(err, MT_ECONFIG, "%s: schedule[%d]: %s", file, index,
                    why.msg);
    goto fail;
  }
  if (mt_lua_rawfield(L, -1, "payload") == LUA_TNIL)
    rc = mt_buf_puts(&payload, "{}") ? MT_ENOMEM : 0;
  else if (!lua_istable(L, -1))
    rc = mt_err_set(&why, MT_EPAYLOAD, "the payload must be a table");
  else
    rc = mt_json_encode(L, -1, &payload, &why);
  lua_pop(L, 1);
  if (rc == 0 && (rc = mt_json_check_object(payload.data, &why)) == 0)
    rc = mt_service_validate(def, payload.data, &why);
  if (rc != 0) {
    rc = mt_err_set(err, MT_ECONFIG, "%s: schedule[%d].payload: %s", file,
                    index, why.msg);
    goto fail;
  }
  out->payload = payload.data;
  free(catch_up);
  mt_cron_free(cron);
  mt_tz_free(tz);
  return 0;
fail:
  free(catch_up);
  mt_buf_free(&payload);
  mt_cron_free(cron);
  mt_tz_free(tz);
  return rc;
}

/* Stack: def -> def. Reads def.schedule: one table with `cron`, or a list
 * of them. */
static int read_schedules(lua_State *L, const char *file, mt_task_def_t *def,
                          mt_err_t *err) {
  int rc = 0;
  def->schedules = NULL;
  def->nschedules = 0;
  if (mt_lua_rawfield(L, -1, "schedule") == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return mt_err_set(err, MT_ECONFIG,
                      "%s: schedule must be a table (or a list of tables) "
                      "with cron, tz and payload",
                      file);
  }
  int single = mt_lua_rawfield(L, -1, "cron") != LUA_TNIL;
  lua_pop(L, 1);
  size_t n = single ? 1 : (size_t)lua_rawlen(L, -1);
  def->schedules = calloc(n ? n : 1, sizeof *def->schedules);
  if (def->schedules == NULL) {
    lua_pop(L, 1);
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  }
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (single)
      lua_pushvalue(L, -1);
    else
      lua_rawgeti(L, -1, (lua_Integer)i + 1);
    rc = read_one_schedule(L, file, (int)i + 1, def, &def->schedules[i], err);
    lua_pop(L, 1);
    def->nschedules = i + 1; /* the failed entry's strings are freed too */
  }
  lua_pop(L, 1);
  if (rc != 0) {
    mt_task_scheds_free(def->schedules, def->nschedules);
    def->schedules = NULL;
    def->nschedules = 0;
  }
  return rc;
}

/* Stack: def -> def. Reads def.queue: an identifier naming a queue that
 * config.lua declares (checked where the configuration is known), or
 * "default", which is the same as giving none. The string stays alive
 * with the definition's table, as schema_name does. */
static int read_queue(lua_State *L, const char *file, mt_task_def_t *def,
                      mt_err_t *err) {
  int rc = 0;
  def->queue = NULL;
  int type = mt_lua_rawfield(L, -1, "queue");
  size_t len = 0;
  const char *queue = type == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
  /* A zero byte would cut the name short: "pay\0ments" is no name. */
  if (queue != NULL && strlen(queue) == len && mt_queue_name_valid(queue)) {
    if (strcmp(queue, MT_DEFAULT_QUEUE) != 0)
      def->queue = (char *)queue;
  } else if (queue != NULL) {
    rc = mt_err_set(err, MT_ECONFIG,
                    "%s: queue \"%.100s\" is not a queue name (an "
                    "identifier: letters, digits and _, e.g. payments)",
                    file, queue);
  } else if (type != LUA_TNIL) {
    rc = mt_err_set(err, MT_ECONFIG,
                    "%s: queue must be a string naming a queue, not %s", file,
                    lua_typename(L, type));
  }
  lua_pop(L, 1);
  return rc;
}

/* Stack: def -> def. Checks the table a script returned and fills def. */
static int check_definition(lua_State *L, const char *file, const char *rel,
                            const mt_task_defaults_t *defaults,
                            mt_task_def_t *def, char *name, size_t name_size,
                            mt_err_t *err) {
  int rc;
  if (!lua_istable(L, -1))
    return mt_err_set(err, MT_ECONFIG,
                      "%s: a task file must return a table, not %s", file,
                      luaL_typename(L, -1));
  if (mt_lua_rawfield(L, -1, "handler") != LUA_TFUNCTION) {
    rc = mt_err_set(err, MT_ECONFIG,
                    "%s: handler must be a function(tx, payload, ctx), not %s",
                    file, luaL_typename(L, -1));
    lua_pop(L, 1);
    return rc;
  }
  lua_pop(L, 1);

  name_from_path(rel, name, name_size);
  int type = mt_lua_rawfield(L, -1, "name");
  if (type == LUA_TSTRING)
    snprintf(name, name_size, "%s", lua_tostring(L, -1));
  else if (type != LUA_TNIL) {
    lua_pop(L, 1);
    return mt_err_set(err, MT_ECONFIG, "%s: name must be a string", file);
  }
  lua_pop(L, 1);
  if (!mt_dotted_name_valid(name))
    return mt_err_set(err, MT_ECONFIG,
                      "%s: \"%s\" is not a valid task name (dotted "
                      "identifiers, e.g. email.send)",
                      file, name);

  double max_attempts = MT_DEFAULT_MAX_ATTEMPTS;
  double memory_limit = (double)defaults->memory_limit;
  double priority = 0;
  def->timeout = defaults->timeout;
  def->retry_delay = 1;
  if ((rc = mt_lua_read_number(L, file, "max_attempts", &max_attempts, 1,
                               MT_ATTEMPTS_MAX, 1, err)) ||
      (rc = mt_lua_read_number(L, file, "timeout", &def->timeout,
                               MT_TIMEOUT_MIN, MT_TIMEOUT_MAX, 0, err)) ||
      (rc = mt_lua_read_number(L, file, "retry_delay", &def->retry_delay, 0,
                               MT_RETRY_DELAY_MAX, 0, err)) ||
      (rc = mt_lua_read_number(L, file, "memory_limit", &memory_limit,
                               MT_MEMORY_LIMIT_MIN, MT_MEMORY_LIMIT_MAX, 1,
                               err)) ||
      (rc = mt_lua_read_number(L, file, "priority", &priority, MT_PRIORITY_MIN,
                               MT_PRIORITY_MAX, 1, err)) ||
      (rc = read_queue(L, file, def, err)))
    return rc;
  def->max_attempts = (int)max_attempts;
  def->memory_limit = (size_t)memory_limit;
  def->priority = (int)priority;
  def->name = name;
  def->file = (char *)file;
  if ((rc = read_schema(L, file, defaults, def, err)) != 0)
    return rc;
  return read_schedules(L, file, def, err);
}

/* A task's version (registry.h): a hash of every file it may run, its own,
 * its named schema's, and the lib folder's, since which modules it
 * requires is known only when they are required. A change to a shared
 * module is then a new version of every task; never is one missed. Only
 * a snapshot has versions: it is what the runtime runs, and a hot reload
 * compares. */
static int task_version(lua_State *L, const char *file,
                        const mt_task_defaults_t *defaults, mt_task_def_t *def,
                        mt_err_t *err) {
  const mt_sources_t *snapshot = mt_lua_sources(L);
  char schema[4096];
  const char *parts[2] = {file, schema};
  size_t n = 1;
  def->version[0] = '\0';
  if (snapshot == NULL)
    return 0;
  if (def->schema_name != NULL && strcmp(def->schema_name, "(inline)") != 0) {
    schema_file(schemas_dir(defaults), def->schema_name, schema, sizeof schema);
    n = 2;
  }
  _Static_assert(MT_TASK_VERSION_HEX == MT_SOURCES_HASH_HEX,
                 "a version is a snapshot hash");
  if (mt_sources_hash_parts(snapshot, parts, n, mt_lua_stdlib_lib_dir(L),
                            def->version) != 0)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  return 0;
}

/* Stack: tasks -> tasks. Loads one task file into the tasks table at index
 * `tasks` (and reg, when not NULL). */
static int load_task_file(lua_State *L, int tasks, const char *dir,
                          const char *rel, const mt_task_defaults_t *defaults,
                          mt_registry_t *reg, mt_err_t *err) {
  char file[8192], name[512];
  int top = lua_gettop(L);
  if (snprintf(file, sizeof file, "%s/%s", dir, rel) >= (int)sizeof file)
    return mt_err_set(err, MT_ECONFIG, "%s/%s: path too long", dir, rel);
  mt_lua_env_push(L);
  if (mt_lua_load_file(L, file, -1, err) != 0 ||
      mt_lua_pcall_load(L, file, 0, 1, err) != 0) {
    lua_settop(L, top);
    return MT_ECONFIG; /* a broken script is bad input, not a crash */
  }
  mt_task_def_t def = {0};
  int rc =
      check_definition(L, file, rel, defaults, &def, name, sizeof name, err);
  if (rc == 0 && mt_lua_rawfield(L, tasks, name) != LUA_TNIL)
    rc = mt_err_set(err, MT_ECONFIG, "%s: task %s is already defined", file,
                    name);
  else if (rc == 0)
    lua_pop(L, 1);
  if (rc == 0 && reg != NULL)
    rc = task_version(L, file, defaults, &def, err);
  if (rc == 0 && reg != NULL) {
    rc = mt_registry_add(reg, &def); /* takes the schema and schedules */
    def.schema = NULL;
    def.schedules = NULL;
  }
  mt_schema_free(def.schema);
  mt_task_scheds_free(def.schedules, def.nschedules);
  if (rc == 0) {
    lua_setfield(L, tasks, name); /* tasks[name] = def */
    lua_pop(L, 1);                /* the script's env */
  }
  lua_settop(L, top);
  return rc;
}

int mt_lua_tasks_load(lua_State *L, const char *dir,
                      const mt_task_defaults_t *defaults, mt_registry_t *reg,
                      mt_err_t *err) {
  if (defaults->sources != NULL && mt_lua_sources(L) == NULL)
    mt_lua_sources_attach(L, defaults->sources);
  path_list_t paths = {0};
  configure_toolkit(L, dir, defaults);
  int rc = collect_tasks(L, dir, &paths, err);
  if (rc != 0)
    goto done;
  sort_paths(&paths);
  lua_newtable(L);
  for (size_t i = 0; rc == 0 && i < paths.count; i++)
    rc = load_task_file(L, lua_gettop(L), dir, paths.items[i], defaults, reg,
                        err);
  if (rc == 0)
    lua_setfield(L, LUA_REGISTRYINDEX, TASKS_KEY);
  else
    lua_pop(L, 1);
done:
  path_list_free(&paths);
  return rc;
}

int mt_lua_tasks_check(const char *tasks_dir,
                       const mt_task_defaults_t *defaults,
                       void (*report)(void *arg, const char *problem),
                       void *arg) {
  int problems = 0;
  mt_err_t err;
  path_list_t tasks = {0}, schemas = {0};
  mt_lua_guard_t guard;
  lua_State *L = mt_lua_state_new(&guard);
  if (L == NULL) {
    report(arg, "out of memory");
    return 1;
  }
  guard.load_limit = defaults->memory_limit;
  mt_lua_env_open(L);

  configure_toolkit(L, tasks_dir, defaults);
  if (collect_tasks(L, tasks_dir, &tasks, &err) != 0) {
    report(arg, err.msg);
    problems++;
  }
  sort_paths(&tasks);
  lua_newtable(L);
  for (size_t i = 0; i < tasks.count; i++) {
    if (load_task_file(L, lua_gettop(L), tasks_dir, tasks.items[i], defaults,
                       NULL, &err) != 0) {
      report(arg, err.msg);
      problems++;
    }
  }
  lua_pop(L, 1);

  /* Every schema file, used by a task or not: a broken one is found before
   * the task that will use it. */
  const char *dir = schemas_dir(defaults);
  if (access(dir, F_OK) == 0 && collect(dir, &schemas, &err) == 0) {
    sort_paths(&schemas);
    for (size_t i = 0; i < schemas.count; i++) {
      char name[512];
      mt_schema_t *schema = NULL;
      name_from_path(schemas.items[i], name, sizeof name);
      if (load_named_schema(L, dir, name, &schema, &err) != 0) {
        report(arg, err.msg);
        problems++;
      }
      mt_schema_free(schema);
    }
  }
  path_list_free(&tasks);
  path_list_free(&schemas);
  lua_close(L);
  return problems;
}

int mt_lua_tasks_push_handler(lua_State *L, const char *name) {
  lua_getfield(L, LUA_REGISTRYINDEX, TASKS_KEY);
  if (!lua_istable(L, -1) || mt_lua_rawfield(L, -1, name) != LUA_TTABLE) {
    lua_pop(L, 2);
    return 0;
  }
  mt_lua_rawfield(L, -1, "handler");
  lua_replace(L, -3);
  lua_pop(L, 1);
  return 1;
}

int mt_lua_registry_load(const char *dir, const mt_task_defaults_t *defaults,
                         mt_registry_t *reg, mt_err_t *err) {
  mt_lua_guard_t guard;
  lua_State *L = mt_lua_state_new(&guard);
  if (L == NULL)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  guard.load_limit = defaults->memory_limit;
  mt_lua_env_open(L);
  int rc = mt_lua_tasks_load(L, dir, defaults, reg, err);
  lua_close(L);
  return rc;
}
