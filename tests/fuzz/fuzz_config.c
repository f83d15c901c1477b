/*
 * config.lua: the input is the file, loaded by mt_config_load() as every
 * command loads it (the file is run as Lua under the load guard, then its
 * table is read and checked). Lua's own parser, the environment config.lua
 * runs in, and config.c's reading of the table are all in reach.
 *
 * config.lua must finish loading within MT_LUA_LOAD_TIMEOUT (5 s) and 64
 * MiB, whatever it does: an input that runs past that makes libFuzzer
 * report a timeout, which is a finding like a crash. So that the fuzzer
 * does not spend 5 s on every looping input, time runs FAST times faster
 * here (below); the guard then stops a loop within 5/FAST seconds, well
 * inside scripts/fuzz's -timeout.
 *
 * The properties, from config/config.h: the answer is 0, MT_ECONFIG or
 * MT_ENOMEM; a loaded configuration's values are within their ranges.
 */
#include "fuzz.h"

#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "config/config.h"

#define FAST 250.0

/* These two replace common/clock.c, at link time: moontask_core is a
 * static library, and its clock object is not pulled in while every
 * symbol it defines is defined here (should it be, the link fails loudly
 * on duplicate definitions), as tests/unit/test_discovery.c replaces the
 * executor. */
double mt_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9) * FAST;
}

double mt_epoch_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The input goes into a file that is deleted at once and read back through
 * /proc/self/fd, so that no run leaves it behind, however it ends. */
static char path[64];
static int fd = -1;

static void init(void) {
  char tmpl[64];
  const char *dir = getenv("TMPDIR");
  snprintf(tmpl, sizeof tmpl, "%s/mt-fuzz-config.XXXXXX",
           dir != NULL && strlen(dir) < 40 ? dir : "/tmp");
  if ((fd = mkstemp(tmpl)) < 0) {
    perror("fuzz_config: mkstemp");
    exit(1);
  }
  unlink(tmpl);
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  /* What config.c reads besides the file; none of the machine's. */
  unsetenv("DATABASE_URL");
  unsetenv("MOONTASK_DATABASE_URL");
  unsetenv("AWS_REGION");
  unsetenv("AWS_DEFAULT_REGION");
  setenv("MT_FUZZ_VALUE", "postgres://fuzz@localhost/fuzz", 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mt_err_t err;
  if (fd < 0)
    init();
  if (ftruncate(fd, 0) != 0 ||
      (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size)) {
    perror("fuzz_config: writing the file");
    abort();
  }
  mt_config_t cfg;
  mt_config_overrides_t ov = {0};
  ov.config_file = path;
  memset(&cfg, 0, sizeof cfg);
  int rc = mt_config_load(&cfg, &ov, &err);
  FUZZ_CHECK(rc == 0 || rc == MT_ECONFIG || rc == MT_ENOMEM, "rc %d: %s", rc,
             err.msg);
  if (rc == 0) {
    FUZZ_CHECK(cfg.workers >= 1 && cfg.workers <= MT_WORKERS_MAX, "workers %d",
               cfg.workers);
    FUZZ_CHECK(cfg.backend != NULL && cfg.tasks_dir != NULL &&
                   cfg.schemas_dir != NULL,
               "a default went missing");
    FUZZ_CHECK(cfg.aws != NULL || strcmp(cfg.backend, "aws") != 0,
               "backend aws without an aws table");
  }
  mt_config_free(&cfg);
  return 0;
}
