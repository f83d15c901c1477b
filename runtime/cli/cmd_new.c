/* `moontask new NAME`: scaffolds a task, its payload schema and a busted spec
 * that uses the test kit, so that a new task starts from something that
 * loads, validates and passes its own test. The scaffold is checked the way
 * `moontask check` would check it; one that does not load is removed again
 * rather than left half-working in the tree. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/buf.h"

#define PATH_MAX_LEN 4096

/* Templates: {{name}} is the dotted task name, {{path}} its path under the
 * tasks and schemas folders without ".lua", {{spec}} the spec's path. Plain
 * substitution rather than printf, since the Lua text is full of '%'. */
static const char task_template[] =
    "-- {{name}} { name }\n"
    "--\n"
    "-- Say here what this task does and who schedules it. From SQL, inside\n"
    "-- the application's own transaction:\n"
    "--   SELECT moontask.schedule('{{name}}', '{\"name\": \"Ada\"}');\n"
    "-- or from another task's handler:\n"
    "--   tx:schedule(\"{{name}}\", { name = \"Ada\" })\n"
    "return {\n"
    "  -- The payload is checked against schemas/{{path}}.lua before it is\n"
    "  -- scheduled and again before the handler runs.\n"
    "  schema = \"{{name}}\",\n"
    "  -- Attempts before the task is `failed`; an error retries it after an\n"
    "  -- exponential backoff.\n"
    "  max_attempts = 5,\n"
    "  -- Seconds per attempt; a handler still running then is stopped.\n"
    "  timeout = 30,\n"
    "  handler = function(tx, payload, ctx)\n"
    "    -- Writes through tx commit together with the task's completion, or\n"
    "    -- roll back together if the handler raises: keep the work here.\n"
    "    local now = tx:query(\"SELECT now()::text AS at\")[1].at\n"
    "    ctx.log(\"info\", \"hello %s at %s\", payload.name, now)\n"
    "  end,\n"
    "}\n";

static const char schema_template[] =
    "-- Payload of {{name}}: a JSON Schema (2020-12) written as a Lua table.\n"
    "-- Every violation is reported with its JSON Pointer (e.g. /name).\n"
    "return {\n"
    "  type = \"object\",\n"
    "  properties = {\n"
    "    name = { type = \"string\", minLength = 1 }, -- an example property\n"
    "  },\n"
    "  required = { \"name\" },\n"
    "  additionalProperties = false,\n"
    "}\n";

static const char spec_template[] =
    "-- Spec for task {{name}}. From the repository root:\n"
    "--   lua5.4 /usr/bin/busted {{spec}}\n"
    "-- with DATABASE_URL set to a migrated database. kit.run executes the\n"
    "-- handler in a transaction that is rolled back afterwards: setup rows,\n"
    "-- the handler's writes and its follow-up tasks all vanish, so specs need\n"
    "-- no cleanup. See testkit/moontask/testkit.lua.\n"
    "package.path = \"./testkit/?.lua;\" .. package.path\n"
    "local kit = require(\"moontask.testkit\")\n"
    "\n"
    "describe(\"task: {{name}}\", function()\n"
    "  it(\"runs with a valid payload\", function()\n"
    "    local result = kit.run(\"{{name}}\", { name = \"Ada\" })\n"
    "\n"
    "    assert.is_true(result.valid)\n"
    "    assert.is_nil(result.error)\n"
    "    assert.is_true(result.ok)\n"
    "  end)\n"
    "\n"
    "  it(\"refuses a payload its schema does not allow\", function()\n"
    "    local result = kit.run(\"{{name}}\", { name = 42 })\n"
    "\n"
    "    assert.is_false(result.valid)\n"
    "    assert.matches(\"/name\", result.error, 1, true)\n"
    "  end)\n"
    "end)\n";

/* A name the scaffold can place: at least two dotted identifiers, so that
 * the task gets a folder of its own (`billing.invoice` -> billing/invoice). */
static int valid_new_name(const char *name) {
  int segments = 0, len = 0;
  for (const char *p = name;; p++) {
    if (*p == '.' || *p == '\0') {
      if (len == 0)
        return 0;
      segments++;
      len = 0;
      if (*p == '\0')
        break;
    } else if (isalpha((unsigned char)*p) || *p == '_' ||
               (len > 0 && isdigit((unsigned char)*p))) {
      len++;
    } else {
      return 0;
    }
  }
  return segments >= 2 && strlen(name) < 256;
}

static int substitute(mt_buf_t *out, const char *tmpl, const char *name,
                      const char *path, const char *spec) {
  const char *p = tmpl;
  int rc = 0;
  while (rc == 0 && *p) {
    const char *open = strstr(p, "{{");
    if (open == NULL)
      return mt_buf_puts(out, p);
    const char *close = strstr(open, "}}");
    rc = mt_buf_append(out, p, (size_t)(open - p));
    size_t n = (size_t)(close - open - 2);
    const char *value = strncmp(open + 2, "name", n) == 0   ? name
                        : strncmp(open + 2, "path", n) == 0 ? path
                                                            : spec;
    if (rc == 0)
      rc = mt_buf_puts(out, value);
    p = close + 2;
  }
  return rc;
}

/* mkdir -p for the folder that will hold file. */
static int make_parents(const char *file, mt_err_t *err) {
  char dir[PATH_MAX_LEN];
  snprintf(dir, sizeof dir, "%s", file);
  for (char *p = dir + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
      return mt_err_set(err, MT_EIO, "cannot create %s: %s", dir,
                        strerror(errno));
    *p = '/';
  }
  return 0;
}

static int write_file(const char *file, const char *text, mt_err_t *err) {
  int rc = make_parents(file, err);
  if (rc != 0)
    return rc;
  FILE *f = fopen(file, "w");
  if (f == NULL)
    return mt_err_set(err, MT_EIO, "cannot write %s: %s", file,
                      strerror(errno));
  size_t n = strlen(text);
  int bad = fwrite(text, 1, n, f) != n;
  bad |= fclose(f) != 0;
  return bad ? mt_err_set(err, MT_EIO, "cannot write %s: %s", file,
                          strerror(errno))
             : 0;
}

int mt_cmd_new(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  mt_registry_t reg = {0};
  mt_buf_t text = MT_BUF_INIT;
  const char *name = NULL, *specs = "tests/spec";
  char rel[256], flat[256], files[3][PATH_MAX_LEN];
  int force = 0, written = 0, rc = 0;

  for (int i = 1; rc == 0 && i < cli->argc; i++) {
    int r = mt_cli_option(cli->argc, cli->argv, &i, "--specs", &specs);
    if (r < 0)
      rc = mt_err_set(&err, MT_EINVAL, "--specs needs a folder");
    else if (r > 0)
      continue;
    else if (strcmp(cli->argv[i], "--force") == 0)
      force = 1;
    else if (name == NULL && strncmp(cli->argv[i], "--", 2) != 0)
      name = cli->argv[i];
    else
      rc = mt_err_set(&err, MT_EINVAL, "new: unexpected argument \"%s\"",
                      cli->argv[i]);
  }
  if (rc == 0 && name == NULL)
    rc = mt_err_set(&err, MT_EINVAL,
                    "usage: moontask new NAME [--force] [--specs DIR]");
  if (rc == 0 && !valid_new_name(name))
    rc = mt_err_set(&err, MT_EINVAL,
                    "\"%s\" is not a task name for `new`: two or more dotted "
                    "identifiers, e.g. billing.send_invoice",
                    name);
  if (rc != 0)
    goto done;

  snprintf(rel, sizeof rel, "%s", name);
  snprintf(flat, sizeof flat, "%s", name);
  for (char *p = rel, *q = flat; *p; p++, q++)
    if (*p == '.')
      *p = '/', *q = '_';
  snprintf(files[0], sizeof files[0], "%s/%s.lua", cli->cfg.tasks_dir, rel);
  snprintf(files[1], sizeof files[1], "%s/%s.lua",
           cli->cfg.schemas_dir ? cli->cfg.schemas_dir : "schemas", rel);
  snprintf(files[2], sizeof files[2], "%s/%s_spec.lua", specs, flat);

  /* All or nothing: look at every file before writing any. */
  for (int i = 0; i < 3 && !force; i++)
    if (access(files[i], F_OK) == 0) {
      rc = mt_err_set(&err, MT_EINVAL,
                      "%s already exists; nothing written (--force "
                      "overwrites)",
                      files[i]);
      goto done;
    }

  const char *templates[3] = {task_template, schema_template, spec_template};
  for (written = 0; written < 3; written++) {
    mt_buf_reset(&text);
    rc = substitute(&text, templates[written], name, rel, files[2]);
    if (rc != 0 || (rc = write_file(files[written], text.data, &err)) != 0)
      goto done;
  }

  /* Load the tree as the runtime will; the new task must be in it with its
   * schema, or the scaffold (or something it collides with) is wrong. */
  rc = mt_cli_registry(cli, &reg, &err);
  if (rc == 0) {
    const mt_task_def_t *def = mt_registry_find(&reg, name);
    if (def == NULL || def->schema == NULL)
      rc =
          mt_err_set(&err, MT_ELUA, "task %s or its schema did not load", name);
  }
  if (rc != 0) {
    mt_err_t detail = err;
    rc =
        mt_err_set(&err, MT_ELUA, "the new task does not load: %s", detail.msg);
    goto done;
  }
  for (int i = 0; i < 3; i++)
    printf("created %s\n", files[i]);
done:
  if (rc != 0)
    /* Take back what this run wrote: a broken scaffold helps nobody. */
    for (int i = 0; i < written && i < 3; i++)
      remove(files[i]);
  mt_registry_free(&reg);
  mt_buf_free(&text);
  return rc ? mt_cli_fail(rc, &err) : 0;
}
