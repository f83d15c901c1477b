#include "config/config.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "backends/backends.h"
#include "common/log.h"
#include "common/url.h"
#include "lua/env.h"
#include "scheduler/scheduler.h"
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
  cfg->workers = MT_WORKERS_DEFAULT;
  cfg->poll_interval = 1;
  cfg->lease_timeout = 30;
  cfg->task_timeout = 60;
  cfg->shutdown_grace = 30;
  cfg->memory_limit = (size_t)MT_LUA_DEFAULT_MEMORY_LIMIT;
  cfg->migrate_on_run = 1;
  cfg->retention.completed = 7 * 86400.0;
  cfg->retention.failed = 30 * 86400.0;
  cfg->retention.cancelled = 7 * 86400.0;
  cfg->retention.interval = 60;
  cfg->log_level = MT_LOG_INFO;
}

/* Every key config.lua may set. Anything else is refused by name: a typo
 * such as task_timout would otherwise do nothing, silently. */
static const char *const known_keys[] = {
    "database_url",  "backend",      "tasks_dir",      "schemas_dir",
    "lib_dir",       "env",          "workers",        "poll_interval",
    "lease_timeout", "task_timeout", "shutdown_grace", "memory_limit",
    "migrate",       "aws",          "retention",      "http",
    "queues",        "log_format",   "log_level",      NULL};

/* The keys of the aws table, refused the same way when unknown. */
static const char *const aws_keys[] = {
    "region",   "queue_url",     "schedule_group", "role_arn",
    "endpoint", "direct_within", "poison",         NULL};

/* The keys of the retention table, refused the same way when unknown. */
static const char *const retention_keys[] = {"completed", "failed", "cancelled",
                                             "interval", NULL};

/* The keys of the http table, likewise. */
static const char *const http_keys[] = {"listen", "admin_token", NULL};

/* The keys of one queue of the queues table, likewise. */
static const char *const queue_keys[] = {"concurrency", "rate", NULL};

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

/* Stack: t -> t. Refuses a key of table t that is not one of keys,
 * suggesting the nearest one. table names t in messages: NULL for the
 * returned table, "aws" for the aws table (whose keys read "aws.region"). */
static int check_keys(lua_State *L, const char *file, const char *const *keys,
                      const char *table, mt_err_t *err) {
  const char *prefix = table != NULL ? table : "", *dot = table ? "." : "";
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      return mt_err_set(err, MT_ECONFIG,
                        "%s: the %s%stable must have only named settings", file,
                        prefix, *dot ? " " : "");
    }
    const char *key = lua_tostring(L, -1);
    const char *nearest = NULL;
    size_t best = 3; /* two edits at most make a suggestion */
    int known = 0;
    for (const char *const *k = keys; *k && !known; k++) {
      size_t d = distance(key, *k);
      known = d == 0;
      if (d < best) {
        best = d;
        nearest = *k;
      }
    }
    /* A key that is part of exactly one setting is most likely a short
     * form of it ("queue" for queue_url), however many edits apart;
     * "timeout", part of two, suggests neither. */
    if (!known && nearest == NULL && strlen(key) >= 3) {
      int parts = 0;
      for (const char *const *k = keys; *k; k++)
        if (strstr(*k, key) != NULL) {
          parts++;
          nearest = *k;
        }
      if (parts != 1)
        nearest = NULL;
    }
    if (!known) {
      int rc = mt_err_set(err, MT_ECONFIG,
                          "%s: unknown setting \"%s%s%.100s\"%s%s%s%s%s", file,
                          prefix, dot, key, nearest ? " (did you mean " : "",
                          nearest ? prefix : "", nearest ? dot : "",
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

/* ---- what handlers may read -------------------------------------------- */

/* A name a shell can export: letters, digits and '_', not starting with
 * a digit. Anything else cannot be set, so listing it is a mistake. */
static int env_name_valid(const char *s, size_t len) {
  if (len == 0 || len > 255 || (*s >= '0' && *s <= '9'))
    return 0;
  return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789_") == len;
}

/* Stack: t -> t. Reads t.env, the list of environment variables handlers
 * may read with ctx.env, into cfg->env. Exact names only: a pattern such
 * as "STRIPE_*" would allow what nobody listed. Only the names are kept;
 * the values are read when a handler asks, and never by this file. */
static int load_env(lua_State *L, const char *file, mt_config_t *cfg,
                    mt_err_t *err) {
  int rc = 0;
  int type = mt_lua_rawfield(L, -1, "env");
  size_t n = type == LUA_TTABLE ? (size_t)lua_rawlen(L, -1) : 0;
  if (type == LUA_TNIL)
    goto done;
  if (type != LUA_TTABLE) {
    rc = mt_err_set(err, MT_ECONFIG,
                    "%s: env must be a list of environment variable names, "
                    "like env = { \"STRIPE_KEY\" }, not %s",
                    file, lua_typename(L, type));
    goto done;
  }
  /* Nothing but 1..n: a key such as STRIPE_KEY = true is a set, not the
   * list this is, and reading it as empty would silently allow nothing. */
  size_t keys = 0;
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    lua_pop(L, 1);
    keys++;
  }
  if (keys != n) {
    rc = mt_err_set(err, MT_ECONFIG,
                    "%s: env must be a list of names, like env = { "
                    "\"STRIPE_KEY\", \"SMTP_PASSWORD\" }, not a table with "
                    "other keys",
                    file);
    goto done;
  }
  if (n > MT_CONFIG_ENV_MAX) {
    rc = mt_err_set(err, MT_ECONFIG, "%s: env may list at most %d names", file,
                    MT_CONFIG_ENV_MAX);
    goto done;
  }
  if ((cfg->env = calloc(n + 1, sizeof *cfg->env)) == NULL) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; rc == 0 && i < n; i++) {
    size_t len = 0;
    int t = lua_rawgeti(L, -1, (lua_Integer)i + 1);
    const char *name = t == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    if (name == NULL)
      rc = mt_err_set(err, MT_ECONFIG,
                      "%s: env[%zu] must be a variable name (a string), not "
                      "%s",
                      file, i + 1, lua_typename(L, t));
    else if (!env_name_valid(name, len))
      rc = mt_err_set(err, MT_ECONFIG,
                      "%s: env[%zu] \"%.100s\" is not an environment variable "
                      "name (letters, digits and _, not starting with a "
                      "digit)",
                      file, i + 1, name);
    else if ((cfg->env[i] = strdup(name)) == NULL)
      rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    lua_pop(L, 1);
  }
done:
  lua_pop(L, 1);
  return rc;
}

/* ---- the aws table ------------------------------------------------------ */

static const char *env_nonempty(const char *name) {
  const char *v = getenv(name);
  return v != NULL && *v != '\0' ? v : NULL;
}

/* Whether s (len bytes) is printable ASCII without blanks. No AWS name,
 * URL or ARN holds anything else, and a stray newline or NUL in a URL
 * would otherwise surface much later as a puzzling HTTP error. */
static int printable(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
      return 0;
  return 1;
}

/* Reads aws[key] (the aws table at index -1) into *slot, refusing what no
 * AWS value can be: an empty string, blanks, control or non-ASCII bytes.
 * An absent key leaves *slot. */
static int read_aws_string(lua_State *L, const char *file, const char *key,
                           char **slot, mt_err_t *err) {
  int rc = 0;
  size_t len = 0;
  int type = mt_lua_rawfield(L, -1, key);
  if (type == LUA_TSTRING) {
    const char *v = lua_tolstring(L, -1, &len);
    if (len == 0)
      rc = mt_err_set(err, MT_ECONFIG, "%s: aws.%s must not be empty", file,
                      key);
    else if (!printable(v, len))
      rc = mt_err_set(err, MT_ECONFIG,
                      "%s: aws.%s \"%.100s\" must not contain blanks, control "
                      "or non-ASCII characters",
                      file, key, v);
    else if ((*slot = strdup(v)) == NULL)
      rc = mt_err_set(err, MT_ENOMEM, "out of memory");
  } else if (type != LUA_TNIL) {
    rc = mt_err_set(err, MT_ECONFIG, "%s: aws.%s must be a string, not %s",
                    file, key, lua_typename(L, type));
  }
  lua_pop(L, 1);
  return rc;
}

/* What is wrong with url (common/url.h, which the AWS client reads its
 * endpoint with too), or NULL; checked here to name the setting at load
 * time, in any build. need_path: the path must name something, as a queue
 * URL's /<account>/<name> does. */
static const char *url_problem(const char *url, int need_path) {
  mt_url_t u;
  const char *problem = mt_url_split(url, &u);
  if (problem == NULL && need_path && u.path[strspn(u.path, "/")] == '\0')
    problem = "names no queue (it ends in /<account id>/<queue name>)";
  return problem;
}

/* Whether region can be a region name, which becomes part of a host name:
 * "eu-west-1", "us-gov-west-1", "cn-north-1". */
static int region_valid(const char *region) {
  size_t n = strlen(region);
  return n <= 32 && region[0] >= 'a' && region[0] <= 'z' &&
         region[n - 1] != '-' &&
         strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* What EventBridge takes as a schedule group's name: 1-64 of
 * [0-9A-Za-z_.-] (mt_ebs_name_valid says the same, but aws/ is optional
 * in the build and this check is not). */
static int group_valid(const char *name) {
  size_t n = strlen(name);
  return n >= 1 && n <= 64 &&
         strspn(name, "abcdefghijklmnopqrstuvwxyz"
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

/* aws.direct_within (seconds, 0-900: a task due sooner goes straight to
 * SQS, whose DelaySeconds stops at 900) and aws.poison ("delete", or
 * "keep" for the queue's dead-letter queue), with their defaults. */
static int read_aws_delivery(lua_State *L, const char *file,
                             mt_config_aws_t *aws, mt_err_t *err) {
  aws->direct_within = 900;
  lua_getfield(L, -1, "direct_within");
  int rc = 0, isnum;
  double v = lua_tonumberx(L, -1, &isnum);
  if (!lua_isnil(L, -1) && (!isnum || !(v >= 0 && v <= 900)))
    rc = mt_err_set(err, MT_ECONFIG,
                    "%s: aws.direct_within must be a number of seconds from "
                    "0 to 900 (SQS delays a message at most 900 s)",
                    file);
  else if (isnum)
    aws->direct_within = v;
  lua_pop(L, 1);
  if (rc != 0)
    return rc;
  lua_getfield(L, -1, "poison");
  const char *p = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  if (!lua_isnil(L, -1) &&
      (p == NULL || (strcmp(p, "delete") != 0 && strcmp(p, "keep") != 0)))
    rc = mt_err_set(err, MT_ECONFIG,
                    "%s: aws.poison must be \"delete\" or \"keep\" (leave "
                    "poison messages to the queue's dead-letter queue)",
                    file);
  else
    aws->keep_poison = p != NULL && strcmp(p, "keep") == 0;
  lua_pop(L, 1);
  return rc;
}

/* Fills in the defaults of the aws table and checks the form of each
 * value; the messages quote the value, cut short. */
static int check_aws(const char *file, mt_config_aws_t *aws, mt_err_t *err) {
  const char *problem;
  if (aws->region != NULL) {
    aws->region_source = "aws.region";
  } else {
    /* The SDKs' order. An empty variable counts as unset, as they do. */
    const char *names[] = {"AWS_REGION", "AWS_DEFAULT_REGION"};
    for (size_t i = 0; i < 2 && aws->region == NULL; i++) {
      const char *v = env_nonempty(names[i]);
      if (v == NULL)
        continue;
      if ((aws->region = strdup(v)) == NULL)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
      aws->region_source = names[i];
    }
  }
  if (aws->region != NULL && !region_valid(aws->region)) {
    if (strcmp(aws->region_source, "aws.region") == 0)
      return mt_err_set(err, MT_ECONFIG,
                        "%s: aws.region \"%.64s\" is not a region name (such "
                        "as eu-west-1)",
                        file, aws->region);
    return mt_err_set(err, MT_ECONFIG,
                      "%s: aws.region is not set, and %s \"%.64s\" is not a "
                      "region name (such as eu-west-1)",
                      file, aws->region_source, aws->region);
  }
  if (aws->schedule_group == NULL &&
      (aws->schedule_group = strdup("default")) == NULL)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  if (!group_valid(aws->schedule_group))
    return mt_err_set(err, MT_ECONFIG,
                      "%s: aws.schedule_group \"%.100s\" must be 1 to 64 "
                      "letters, digits, '-', '_' or '.'",
                      file, aws->schedule_group);
  if (aws->queue_url != NULL && (problem = url_problem(aws->queue_url, 1)))
    return mt_err_set(err, MT_ECONFIG, "%s: aws.queue_url \"%.200s\" %s", file,
                      mt_url_shown(aws->queue_url), problem);
  if (aws->endpoint != NULL && (problem = url_problem(aws->endpoint, 0)))
    return mt_err_set(err, MT_ECONFIG, "%s: aws.endpoint \"%.200s\" %s", file,
                      mt_url_shown(aws->endpoint), problem);
  if (aws->role_arn != NULL && strncmp(aws->role_arn, "arn:", 4) != 0)
    return mt_err_set(err, MT_ECONFIG,
                      "%s: aws.role_arn \"%.200s\" is not an ARN (it starts "
                      "with arn:, as arn:aws:iam::<account id>:role/<name>)",
                      file, aws->role_arn);
  return 0;
}

/* Stack: t -> t. Reads and checks t.aws, when there is one, into
 * cfg->aws. */
static int load_aws(lua_State *L, const char *file, mt_config_t *cfg,
                    mt_err_t *err) {
  int rc = 0;
  int type = mt_lua_rawfield(L, -1, "aws");
  mt_config_aws_t *aws;
  if (type == LUA_TNIL)
    goto done;
  if (type != LUA_TTABLE) {
    rc = mt_err_set(err, MT_ECONFIG, "%s: aws must be a table, not %s", file,
                    lua_typename(L, type));
    goto done;
  }
  if ((aws = cfg->aws = calloc(1, sizeof *cfg->aws)) == NULL) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto done;
  }
  if ((rc = check_keys(L, file, aws_keys, "aws", err)) != 0 ||
      (rc = read_aws_string(L, file, "region", &aws->region, err)) != 0 ||
      (rc = read_aws_string(L, file, "queue_url", &aws->queue_url, err)) != 0 ||
      (rc = read_aws_string(L, file, "schedule_group", &aws->schedule_group,
                            err)) != 0 ||
      (rc = read_aws_string(L, file, "role_arn", &aws->role_arn, err)) != 0 ||
      (rc = read_aws_string(L, file, "endpoint", &aws->endpoint, err)) != 0)
    goto done;
  rc = check_aws(file, aws, err);
  if (rc == 0)
    rc = read_aws_delivery(L, file, aws, err);
done:
  lua_pop(L, 1);
  return rc;
}

/* Stack: t -> t. Reads the optional duration t[key] of the retention
 * table into *slot: seconds as a number, or text as `schedule --in` takes
 * it ("7d", "12h", "1h30m"), within [min, max] seconds, which range says
 * in words; false, where forever is allowed, keeps the tasks for ever.
 * Absent keys leave *slot. */
static int read_retention_period(lua_State *L, const char *file,
                                 const char *key, double *slot, double min,
                                 double max, const char *range, int forever,
                                 mt_err_t *err) {
  int rc = 0, type = mt_lua_rawfield(L, -1, key);
  double v = 0;
  mt_err_t why;
  if (type == LUA_TNIL)
    goto done;
  if (type == LUA_TBOOLEAN && forever && !lua_toboolean(L, -1)) {
    *slot = MT_RETENTION_FOREVER;
    goto done;
  }
  if (type == LUA_TNUMBER)
    v = lua_tonumber(L, -1);
  /* The parser's own message says what is wrong with the text; ours says
   * which setting it was and what it may be. */
  if ((type != LUA_TNUMBER && type != LUA_TSTRING) ||
      (type == LUA_TSTRING &&
       mt_scheduler_parse_duration(lua_tostring(L, -1), &v, &why) != 0) ||
      !(v >= min && v <= max)) {
    rc = mt_err_set(err, MT_ECONFIG,
                    "%s: retention.%s must be a duration %s, as a number "
                    "of seconds or as text such as \"7d\" or \"12h\"%s",
                    file, key, range,
                    forever ? ", or false to keep the tasks for ever" : "");
    goto done;
  }
  *slot = v;
done:
  lua_pop(L, 1);
  return rc;
}

/* Stack: t -> t. Reads and checks t.retention, when there is one, into
 * cfg->retention. A period of 0 prunes a task at the first prune after it
 * finished; periods stop at the longest delay `schedule --in` takes, a
 * century. An interval under a second would make pruning a busy loop, and
 * one over a day would let a day's history pile up between prunes. */
#define PERIOD_RANGE "of at most 100 years"
static int load_retention(lua_State *L, const char *file, mt_config_t *cfg,
                          mt_err_t *err) {
  int rc = 0;
  mt_config_retention_t *r = &cfg->retention;
  int type = mt_lua_rawfield(L, -1, "retention");
  if (type == LUA_TNIL)
    goto done;
  if (type != LUA_TTABLE) {
    rc = mt_err_set(err, MT_ECONFIG, "%s: retention must be a table, not %s",
                    file, lua_typename(L, type));
    goto done;
  }
  if ((rc = check_keys(L, file, retention_keys, "retention", err)) != 0 ||
      (rc = read_retention_period(L, file, "completed", &r->completed, 0,
                                  MT_SCHEDULER_MAX_DELAY, PERIOD_RANGE, 1,
                                  err)) != 0 ||
      (rc = read_retention_period(L, file, "failed", &r->failed, 0,
                                  MT_SCHEDULER_MAX_DELAY, PERIOD_RANGE, 1,
                                  err)) != 0 ||
      (rc = read_retention_period(L, file, "cancelled", &r->cancelled, 0,
                                  MT_SCHEDULER_MAX_DELAY, PERIOD_RANGE, 1,
                                  err)) != 0)
    goto done;
  rc = read_retention_period(L, file, "interval", &r->interval, 1, 86400,
                             "from 1 to 86400 seconds", 0, err);
done:
  lua_pop(L, 1);
  return rc;
}

/* Stack: t -> t. Reads t.http, when there is one, into cfg->http. The
 * address's form is checked when the endpoint starts (web/web.h). */
static int load_http(lua_State *L, const char *file, mt_config_t *cfg,
                     mt_err_t *err) {
  static const char *const keys[] = {"listen", "admin_token"};
  char **slots[] = {&cfg->http.listen, &cfg->http.admin_token};
  int rc = 0, type = mt_lua_rawfield(L, -1, "http");
  if (type == LUA_TNIL)
    goto done;
  if (type != LUA_TTABLE) {
    rc = mt_err_set(err, MT_ECONFIG, "%s: http must be a table, not %s", file,
                    lua_typename(L, type));
    goto done;
  }
  if ((rc = check_keys(L, file, http_keys, "http", err)) != 0)
    goto done;
  for (int i = 0; rc == 0 && i < 2; i++) {
    int t = mt_lua_rawfield(L, -1, keys[i]);
    if (t == LUA_TSTRING)
      replace(slots[i], lua_tostring(L, -1));
    else if (t != LUA_TNIL)
      rc = mt_err_set(err, MT_ECONFIG, "%s: http.%s must be a string, not %s",
                      file, keys[i], lua_typename(L, t));
    lua_pop(L, 1);
  }
  if (rc == 0 && cfg->http.listen == NULL)
    rc = mt_err_set(err, MT_ECONFIG,
                    "%s: http.listen is missing (such as \"127.0.0.1:9464\")",
                    file);
  const char *token = cfg->http.admin_token;
  if (rc == 0 && token != NULL && strlen(token) < MT_ADMIN_TOKEN_MIN)
    rc = mt_err_set(err, MT_ECONFIG,
                    "%s: http.admin_token must be at least %d characters", file,
                    MT_ADMIN_TOKEN_MIN);
  for (const char *c = token; rc == 0 && c != NULL && *c; c++)
    if ((unsigned char)*c <= ' ' || *c == ';' || *c == '\x7f')
      rc = mt_err_set(err, MT_ECONFIG,
                      "%s: http.admin_token may not hold spaces, control "
                      "characters or ';' (it travels in a cookie)",
                      file);
done:
  lua_pop(L, 1);
  return rc;
}

/* ---- queues ------------------------------------------------------------ */

/* The most queues config.lua may declare: every claim visits each named
 * queue in turn, so a long list slows every claim of every runtime. */
#define QUEUES_MAX 100
/* Past 10000 tasks at once a concurrency is no limit any set of runtimes
 * reaches; past a million starts per period a rate is a typo. */
#define QUEUE_CONCURRENCY_MAX 10000
#define QUEUE_RATE_MAX 1000000

static void queues_free(mt_queue_def_t *q, size_t n) {
  for (size_t i = 0; q != NULL && i < n; i++)
    free(q[i].name);
  free(q);
}

static int queue_cmp(const void *a, const void *b) {
  return strcmp(((const mt_queue_def_t *)a)->name,
                ((const mt_queue_def_t *)b)->name);
}

/* Parses a rate, "<N>/<unit>" (unit s, m, h or d: "25/s") or
 * "<N>/<duration>" as `schedule --in` takes it ("100/10s", "5/1m"), into
 * N starts per *period seconds. Returns 0, or -1 when text is not one. */
static int parse_rate(const char *text, int *limit, double *period) {
  size_t digits = strspn(text, "0123456789");
  mt_err_t ignored;
  /* Seven digits hold QUEUE_RATE_MAX; more cannot be in range, and
   * stopping there keeps atol's result defined. */
  if (digits == 0 || digits > 7 || text[digits] != '/')
    return -1;
  long n = atol(text);
  if (n < 1 || n > QUEUE_RATE_MAX)
    return -1;
  *limit = (int)n;
  /* A bare unit is one of it: "25/s" is "25/1s". */
  char one[4];
  const char *per = text + digits + 1;
  if (strlen(per) == 1 && snprintf(one, sizeof one, "1%s", per) > 0)
    per = one;
  /* The parser refuses signs and what is not finite; a period of 0 would
   * allow every start at once, which is no rate. */
  if (mt_scheduler_parse_duration(per, period, &ignored) != 0 || !(*period > 0))
    return -1;
  return 0;
}

/* Stack: q -> q. Reads the limits of queue q->name (the table on top). A
 * queue without either is a label: its tasks run as the default queue's
 * do, and can be counted and given limits later. */
static int read_queue(lua_State *L, const char *file, mt_queue_def_t *q,
                      mt_err_t *err) {
  char table[80]; /* "queues." and a name of at most 63 bytes */
  int rc;
  snprintf(table, sizeof table, "queues.%s", q->name);
  if ((rc = check_keys(L, file, queue_keys, table, err)) != 0)
    return rc;
  int type = mt_lua_rawfield(L, -1, "concurrency");
  double v = lua_tonumber(L, -1);
  /* The range is checked first: only then is the cast defined. */
  if (type == LUA_TNUMBER && v >= 1 && v <= QUEUE_CONCURRENCY_MAX &&
      v == (double)(int)v)
    q->concurrency = (int)v;
  else if (type != LUA_TNIL)
    rc = mt_err_set(err, MT_ECONFIG,
                    "%s: %s.concurrency must be a whole number from 1 to %d "
                    "(tasks running at once), not %.40s",
                    file, table, QUEUE_CONCURRENCY_MAX,
                    type == LUA_TNUMBER || type == LUA_TSTRING
                        ? lua_tostring(L, -1)
                        : lua_typename(L, type));
  lua_pop(L, 1);
  if (rc != 0)
    return rc;
  size_t len = 0;
  type = mt_lua_rawfield(L, -1, "rate");
  const char *rate = type == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
  if (type != LUA_TNIL &&
      (rate == NULL || strlen(rate) != len ||
       parse_rate(rate, &q->rate_limit, &q->rate_period) != 0))
    rc = mt_err_set(
        err, MT_ECONFIG,
        "%s: %s.rate must be text such as \"25/s\", \"5/m\" or "
        "\"100/10s\" (a whole number of starts from 1 to %d, "
        "then s, m, h, d or a duration), not %s%.40s%s",
        file, table, QUEUE_RATE_MAX, type == LUA_TSTRING ? "\"" : "",
        type == LUA_TSTRING || type == LUA_TNUMBER ? lua_tostring(L, -1)
                                                   : lua_typename(L, type),
        type == LUA_TSTRING ? "\"" : "");
  lua_pop(L, 1);
  return rc;
}

/* Stack: t -> t. Reads t.queues, a table of queue names to their limits,
 * into cfg->queues, by name: the order the store writes them in, which is
 * the order claims lock them in (postgres/store.h). */
static int load_queues(lua_State *L, const char *file, mt_config_t *cfg,
                       mt_err_t *err) {
  int rc = 0, type = mt_lua_rawfield(L, -1, "queues");
  size_t n = 0;
  if (type == LUA_TNIL)
    goto done;
  if (type != LUA_TTABLE) {
    rc = mt_err_set(err, MT_ECONFIG,
                    "%s: queues must be a table of queue names to their "
                    "limits, like queues = { payments = { concurrency = 2 } "
                    "}, not %s",
                    file, lua_typename(L, type));
    goto done;
  }
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    lua_pop(L, 1);
    n++;
  }
  if (n == 0)
    goto done;
  if (n > QUEUES_MAX) {
    rc = mt_err_set(err, MT_ECONFIG, "%s: queues may declare at most %d queues",
                    file, QUEUES_MAX);
    goto done;
  }
  if ((cfg->queues = calloc(n, sizeof *cfg->queues)) == NULL) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto done;
  }
  cfg->nqueues = n;
  size_t i = 0;
  lua_pushnil(L);
  /* Stack: queues, name, limits while an entry is read. */
  while (rc == 0 && lua_next(L, -2) != 0) {
    size_t len = 0;
    const char *name =
        lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
    if (name == NULL)
      rc = mt_err_set(err, MT_ECONFIG,
                      "%s: queues must name each queue, like queues = { "
                      "payments = { concurrency = 2 } }, not list it",
                      file);
    else if (strcmp(name, MT_DEFAULT_QUEUE) == 0)
      rc = mt_err_set(err, MT_ECONFIG,
                      "%s: queues.default: the default queue has no limits "
                      "(it holds the tasks that name no queue: declare a "
                      "queue of their own to limit them)",
                      file);
    else if (strlen(name) != len || !mt_queue_name_valid(name))
      rc = mt_err_set(err, MT_ECONFIG,
                      "%s: queues: \"%.100s\" is not a queue name (letters, "
                      "digits and _, not starting with a digit, at most 63 "
                      "characters)",
                      file, name);
    else if (lua_type(L, -1) != LUA_TTABLE)
      rc = mt_err_set(err, MT_ECONFIG,
                      "%s: queues.%s must be a table of limits, like { "
                      "concurrency = 2, rate = \"25/s\" } ({} for none), not "
                      "%s",
                      file, name, luaL_typename(L, -1));
    else if ((cfg->queues[i].name = strdup(name)) == NULL)
      rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    else
      rc = read_queue(L, file, &cfg->queues[i++], err);
    lua_pop(L, rc == 0 ? 1 : 2);
  }
  if (rc == 0)
    qsort(cfg->queues, n, sizeof *cfg->queues, queue_cmp);
done:
  lua_pop(L, 1);
  return rc;
}

/* Stack: t -> t. log_format and log_level. */
static int load_log(lua_State *L, const char *file, mt_config_t *cfg,
                    mt_err_t *err) {
  char *format = NULL, *level = NULL;
  int rc = read_string(L, file, "log_format", &format, err);
  if (rc == 0)
    rc = read_string(L, file, "log_level", &level, err);
  if (rc == 0 && format != NULL) {
    if (strcmp(format, "json") == 0 || strcmp(format, "logfmt") == 0)
      cfg->log_json = strcmp(format, "json") == 0;
    else
      rc = mt_err_set(err, MT_ECONFIG,
                      "%s: log_format must be \"logfmt\" or \"json\", not "
                      "\"%.40s\"",
                      file, format);
  }
  if (rc == 0 && level != NULL) {
    cfg->log_level = mt_log_level_parse(level);
    if (cfg->log_level < 0)
      rc = mt_err_set(err, MT_ECONFIG,
                      "%s: log_level must be \"debug\", \"info\", \"warn\" "
                      "or \"error\", not \"%.40s\"",
                      file, level);
  }
  free(format);
  free(level);
  return rc;
}

/* Runs config.lua with only what a configuration needs: os.getenv and the
 * pure libraries, under the load time limit. They are the task sandbox's
 * (lua/env.h) without the handlers' toolkit, because the limit holds only
 * there: Lua's own pcall and xpcall catch the guard's error and loop on,
 * string.rep, table.move and the pattern functions can loop in C where the
 * hook never looks, a __gc finalizer runs after the limit, and load()
 * takes bytecode (scripts/fuzz's config fuzzer found the first).
 * Stack: pushes the returned table on success. */
static int run_config_file(lua_State *L, const char *file, mt_err_t *err) {
  static const char *const toolkit[] = {"moontask", "json", "require"};
  mt_lua_env_open(L);
  mt_lua_env_push(L);
  int env = lua_gettop(L);
  for (size_t i = 0; i < sizeof toolkit / sizeof *toolkit; i++) {
    lua_pushnil(L);
    lua_setfield(L, env, toolkit[i]);
  }
  /* Offer os.getenv only. Stack: env -> env, os -> env. */
  lua_newtable(L);
  lua_getglobal(L, LUA_OSLIBNAME);
  mt_lua_rawfield(L, -1, "getenv");
  lua_setfield(L, -3, "getenv");
  lua_pop(L, 1);
  lua_setfield(L, env, "os");

  if (mt_lua_load_file(L, file, env, err) != 0)
    return MT_ECONFIG;
  lua_remove(L, env);
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
      (rc = check_keys(L, file, known_keys, NULL, err)) != 0)
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
      (rc = read_string(L, file, "lib_dir", &cfg->lib_dir, err)) ||
      (rc = load_env(L, file, cfg, err)) ||
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
                               err)) ||
      (rc = load_aws(L, file, cfg, err)) ||
      (rc = load_retention(L, file, cfg, err)) ||
      (rc = load_http(L, file, cfg, err)) ||
      (rc = load_queues(L, file, cfg, err)) ||
      (rc = load_log(L, file, cfg, err)))
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

  if ((rc = mt_backend_check(cfg->backend, err)) != 0)
    return rc;
  /* The table's keys themselves are `moontask check`'s to name, one
   * problem each, against AWS. */
  if (strcmp(cfg->backend, "aws") == 0 && cfg->aws == NULL)
    return mt_err_set(err, MT_ECONFIG,
                      "%s: backend \"aws\" needs an aws table (queue_url, "
                      "role_arn, region, ...)",
                      cfg->config_file ? cfg->config_file : "config.lua");
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
  free(cfg->lib_dir);
  for (char **n = cfg->env; n != NULL && *n != NULL; n++)
    free(*n);
  free(cfg->env);
  if (cfg->aws != NULL) {
    free(cfg->aws->region);
    free(cfg->aws->queue_url);
    free(cfg->aws->schedule_group);
    free(cfg->aws->role_arn);
    free(cfg->aws->endpoint);
    free(cfg->aws);
  }
  free(cfg->http.listen);
  free(cfg->http.admin_token);
  queues_free(cfg->queues, cfg->nqueues);
  memset(cfg, 0, sizeof *cfg);
}
