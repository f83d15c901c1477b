/*
 * Writing config.lua and loading it, for the cases of config/config.c's
 * keys (test_config_aws.c, test_toolkit_env.c). The file goes under a
 * temporary folder of the case's (mt_test_tmpdir, removed at exit), never
 * in the source tree. Header-only.
 */
#ifndef MT_TEST_CONFIG_TEST_H
#define MT_TEST_CONFIG_TEST_H

#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "test.h"

/* Writes text as config.lua and returns its path (the same every call). */
static inline const char *config_write(const char *text) {
  static char dir[64], path[96];
  if (dir[0] == '\0')
    mt_test_tmpdir(dir, "config");
  snprintf(path, sizeof path, "%s/config.lua", dir);
  mt_test_write_file(dir, "config.lua", text);
  return path;
}

/* Loads text as config.lua; returns mt_config_load's code, err its
 * message. cfg is the caller's to free. */
static inline int config_load(const char *text, mt_config_t *cfg,
                              mt_err_t *err) {
  mt_config_overrides_t ov = {.config_file = config_write(text)};
  err->msg[0] = '\0';
  return mt_config_load(cfg, &ov, err);
}

/* The text must be refused with MT_ECONFIG and a message that starts with
 * the file's path and contains want. Returns the message (until the next
 * call). */
static inline const char *config_refused(const char *text, const char *want) {
  static mt_err_t err;
  mt_config_t cfg;
  int rc = config_load(text, &cfg, &err);
  mt_config_free(&cfg);
  if (rc != MT_ECONFIG)
    MT__FAIL("%s: loaded (rc %d), expected a refusal with \"%s\"", text, rc,
             want);
  char file[128];
  snprintf(file, sizeof file, "%s: ", config_write(text));
  if (strncmp(err.msg, file, strlen(file)) != 0 || !strstr(err.msg, want))
    MT__FAIL("%s: message \"%s\" does not start with \"%s\" or lacks \"%s\"",
             text, err.msg, file, want);
  return err.msg;
}

#endif
