/* Snapshots of the script files (lua/sources.h): what a hot reload
 * validates and hands to every worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lua/sources.h"
#include "lua/tasks.h"
#include "service/registry.h"
#include "test.h"

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    MT__FAIL("cannot write %s", path);
  fputs(text, f);
  fclose(f);
}

/* A tasks folder with a subfolder, a dot file, a non-Lua file and a
 * symlink back up; a schemas folder; a root that does not exist. */
static void make_tree(char root[64]) {
  char p[256];
  mt_test_tmpdir(root, "sources");
  snprintf(p, sizeof p, "%s/tasks", root);
  mkdir(p, 0700);
  snprintf(p, sizeof p, "%s/tasks/email", root);
  mkdir(p, 0700);
  snprintf(p, sizeof p, "%s/schemas", root);
  mkdir(p, 0700);
  snprintf(p, sizeof p, "%s/tasks/a.lua", root);
  write_file(p, "return { handler = function() end }\n");
  snprintf(p, sizeof p, "%s/tasks/email/send.lua", root);
  write_file(p, "return { handler = function() end } -- v1\n");
  snprintf(p, sizeof p, "%s/tasks/.hidden.lua", root);
  write_file(p, "error('never read')\n");
  snprintf(p, sizeof p, "%s/tasks/notes.txt", root);
  write_file(p, "not lua\n");
  snprintf(p, sizeof p, "%s/schemas/email.lua", root);
  write_file(p, "return { type = 'object' }\n");
}

TEST(sources_snapshot_reads_lua_files_in_path_order) {
  char root[64], tasks[128], schemas[128], missing[128], p[256];
  make_tree(root);
  snprintf(tasks, sizeof tasks, "%s/tasks", root);
  snprintf(schemas, sizeof schemas, "%s/schemas", root);
  snprintf(missing, sizeof missing, "%s/lib", root);
  const char *roots[] = {tasks, schemas, missing, NULL};
  mt_sources_t *s = NULL;
  mt_err_t err;
  if (mt_sources_read(&s, roots, 4, NULL, &err) != 0)
    MT__FAIL("read: %s", err.msg);
  ASSERT_EQ_INT(3, mt_sources_count(s));
  snprintf(p, sizeof p, "%s/schemas/email.lua", root);
  ASSERT_EQ_STR(p, mt_sources_path(s, 0));
  snprintf(p, sizeof p, "%s/tasks/a.lua", root);
  ASSERT_EQ_STR(p, mt_sources_path(s, 1));
  snprintf(p, sizeof p, "%s/tasks/email/send.lua", root);
  ASSERT_EQ_STR(p, mt_sources_path(s, 2));
  size_t len = 0;
  const char *text = mt_sources_get(s, p, &len);
  ASSERT_TRUE(text != NULL);
  ASSERT_EQ_INT(strlen("return { handler = function() end } -- v1\n"), len);
  ASSERT_TRUE(memcmp(text, "return", 6) == 0);
  snprintf(p, sizeof p, "%s/tasks/notes.txt", root);
  ASSERT_TRUE(mt_sources_get(s, p, &len) == NULL);
  ASSERT_EQ_INT(MT_SOURCES_HASH_HEX, strlen(mt_sources_hash(s)));

  /* The snapshot keeps what it read: a later save changes the files on
   * disk, the hash of a new snapshot, and that file's hash alone. */
  char before[MT_SOURCES_HASH_HEX + 1], a_before[MT_SOURCES_HASH_HEX + 1];
  snprintf(before, sizeof before, "%s", mt_sources_hash(s));
  snprintf(p, sizeof p, "%s/tasks/a.lua", root);
  snprintf(a_before, sizeof a_before, "%s", mt_sources_file_hash(s, p));
  snprintf(p, sizeof p, "%s/tasks/email/send.lua", root);
  write_file(p, "return { handler = function() end } -- v2\n");
  ASSERT_TRUE(memcmp(mt_sources_get(s, p, &len) + len - 3, "v1\n", 3) == 0);
  mt_sources_t *t = NULL;
  if (mt_sources_read(&t, roots, 4, NULL, &err) != 0)
    MT__FAIL("read: %s", err.msg);
  ASSERT_TRUE(strcmp(before, mt_sources_hash(t)) != 0);
  ASSERT_TRUE(strcmp(mt_sources_file_hash(s, p), mt_sources_file_hash(t, p)) !=
              0);
  snprintf(p, sizeof p, "%s/tasks/a.lua", root);
  ASSERT_EQ_STR(a_before, mt_sources_file_hash(t, p));
  ASSERT_EQ_STR("", mt_sources_file_hash(t, "/no/such/file.lua"));

  /* References: the last one frees. */
  mt_sources_t *r = mt_sources_ref(t);
  mt_sources_unref(t);
  ASSERT_EQ_INT(3, mt_sources_count(r));
  mt_sources_unref(r);
  mt_sources_unref(s);
  mt_sources_unref(NULL);
}

TEST(sources_snapshot_refuses_a_symlink_loop) {
  char root[64], tasks[128], link[256];
  make_tree(root);
  snprintf(tasks, sizeof tasks, "%s/tasks", root);
  snprintf(link, sizeof link, "%s/tasks/email/up", root);
  if (symlink(tasks, link) != 0)
    MT__FAIL("symlink");
  const char *roots[] = {tasks};
  mt_sources_t *s = NULL;
  mt_err_t err;
  ASSERT_EQ_INT(MT_ECONFIG, mt_sources_read(&s, roots, 1, NULL, &err));
  ASSERT_TRUE(strstr(err.msg, "a symlink loop") != NULL);
}

/* Tasks load from a snapshot, whatever the disk holds by then: the
 * validated version, with messages naming file:line as from disk. */
TEST(sources_tasks_load_from_the_snapshot) {
  char root[64], tasks[128], p[256];
  make_tree(root);
  snprintf(tasks, sizeof tasks, "%s/tasks", root);
  snprintf(p, sizeof p, "%s/tasks/a.lua", root);
  write_file(p, "return { max_attempts = 3, handler = function() end }\n");
  const char *roots[] = {tasks};
  mt_sources_t *s = NULL;
  mt_err_t err;
  if (mt_sources_read(&s, roots, 1, NULL, &err) != 0)
    MT__FAIL("read: %s", err.msg);
  write_file(p, "return { max_attempts = 7, handler = function() end }\n");
  snprintf(p, sizeof p, "%s/tasks/b.lua", root);
  write_file(p, "return { handler = function() end }\n");

  mt_task_defaults_t defaults = {
      .timeout = 10, .memory_limit = 64 << 20, .sources = s};
  mt_registry_t reg = {0};
  if (mt_lua_registry_load(tasks, &defaults, &reg, &err) != 0)
    MT__FAIL("load: %s", err.msg);
  ASSERT_EQ_INT(2, reg.count); /* a and email.send, not b */
  ASSERT_TRUE(mt_registry_find(&reg, "b") == NULL);
  ASSERT_EQ_INT(3, mt_registry_find(&reg, "a")->max_attempts);
  mt_registry_free(&reg);
  mt_sources_unref(s);

  /* A broken file in a snapshot: named with its line. */
  snprintf(p, sizeof p, "%s/tasks/a.lua", root);
  write_file(p, "return {\n  handler = function() end,\n  oops oops\n}\n");
  if (mt_sources_read(&s, roots, 1, NULL, &err) != 0)
    MT__FAIL("read: %s", err.msg);
  defaults.sources = s;
  reg = (mt_registry_t){0};
  ASSERT_TRUE(mt_lua_registry_load(tasks, &defaults, &reg, &err) != 0);
  snprintf(p, sizeof p, "%s/tasks/a.lua:3:", root);
  ASSERT_TRUE(strstr(err.msg, p) != NULL);
  mt_registry_free(&reg);
  mt_sources_unref(s);
}

/* The lib folder inside the tasks folder, named another way than the
 * tasks folder's path would ("./tasks/lib"): its modules are read once,
 * under the lib root, and never loaded as tasks; a change to one is a new
 * version of every task. */
TEST(sources_lib_folder_is_left_out_of_the_tasks_by_identity) {
  char root[64], tasks[128], lib[160], p[256];
  make_tree(root);
  snprintf(tasks, sizeof tasks, "%s/tasks", root);
  snprintf(lib, sizeof lib, "%s/./tasks/lib", root);
  snprintf(p, sizeof p, "%s/tasks/lib", root);
  mkdir(p, 0700);
  snprintf(p, sizeof p, "%s/tasks/lib/money.lua", root);
  write_file(p, "return { cents = 1 }\n");
  snprintf(p, sizeof p, "%s/tasks/a.lua", root);
  write_file(p, "local m = require('lib.money')\n"
                "return { handler = function() return m.cents end }\n");
  const char *roots[] = {tasks, lib};
  mt_sources_t *s = NULL, *t = NULL;
  mt_err_t err;
  if (mt_sources_read(&s, roots, 2, lib, &err) != 0)
    MT__FAIL("read: %s", err.msg);
  ASSERT_EQ_INT(3, mt_sources_count(s)); /* a, email/send, the module */
  snprintf(p, sizeof p, "%s/money.lua", lib);
  ASSERT_TRUE(mt_sources_get(s, p, &(size_t){0}) != NULL);

  mt_task_defaults_t defaults = {
      .timeout = 10, .memory_limit = 64 << 20, .lib_dir = lib, .sources = s};
  mt_registry_t reg = {0}, again = {0};
  if (mt_lua_registry_load(tasks, &defaults, &reg, &err) != 0)
    MT__FAIL("load: %s", err.msg);
  ASSERT_EQ_INT(2, reg.count); /* a and email.send: the module is no task */

  snprintf(p, sizeof p, "%s/tasks/lib/money.lua", root);
  write_file(p, "return { cents = 2 }\n");
  if (mt_sources_read(&t, roots, 2, lib, &err) != 0)
    MT__FAIL("read: %s", err.msg);
  defaults.sources = t;
  if (mt_lua_registry_load(tasks, &defaults, &again, &err) != 0)
    MT__FAIL("load: %s", err.msg);
  ASSERT_TRUE(strcmp(mt_registry_find(&reg, "a")->version,
                     mt_registry_find(&again, "a")->version) != 0);
  ASSERT_TRUE(strcmp(mt_registry_find(&reg, "email.send")->version,
                     mt_registry_find(&again, "email.send")->version) != 0);
  mt_registry_free(&reg);
  mt_registry_free(&again);
  mt_sources_unref(s);
  mt_sources_unref(t);
}
