/* Runs one named test case (as ctest invokes it), or, with no argument,
 * every case, each in a child process of its own, and prints a summary. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static mt_test_t *tests;

void mt__test_register(mt_test_t *t) {
  t->next = tests;
  tests = t;
}

/* The folders mt_test_tmpdir made, removed at exit. */
static char tmpdirs[32][64];
static int ntmpdirs;

static void remove_tmpdirs(void) {
  for (int i = 0; i < ntmpdirs; i++) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%.63s'", tmpdirs[i]);
    if (system(cmd) != 0)
      fprintf(stderr, "cannot remove %s\n", tmpdirs[i]);
  }
}

void mt_test_tmpdir(char out[64], const char *what) {
  snprintf(out, 64, "/tmp/mt-unit-%.20s.XXXXXX", what);
  if (mkdtemp(out) == NULL)
    MT__FAIL("mkdtemp %s", out);
  if (ntmpdirs == 0)
    atexit(remove_tmpdirs);
  if (ntmpdirs < 32)
    snprintf(tmpdirs[ntmpdirs++], 64, "%s", out);
}

void mt_test_write_file(const char *dir, const char *rel, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  for (char *p = strchr(path + strlen(dir) + 1, '/'); p != NULL;
       p = strchr(p + 1, '/')) {
    *p = '\0';
    mkdir(path, 0700); /* EEXIST is fine; fopen says if it was not */
    *p = '/';
  }
  FILE *f = fopen(path, "w");
  if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
    MT__FAIL("cannot write %s", path);
}

static int is_source_root(const char *dir) {
  char probe[PATH_MAX + 32];
  struct stat st;
  snprintf(probe, sizeof probe, "%s/CMakeLists.txt", dir);
  if (stat(probe, &st) != 0 || !S_ISREG(st.st_mode))
    return 0;
  snprintf(probe, sizeof probe, "%s/runtime", dir);
  return stat(probe, &st) == 0 && S_ISDIR(st.st_mode);
}

int mt_test_source_root(char *root) {
  const char *env = getenv("MT_SOURCE_DIR");
  if (env != NULL && *env != '\0') {
    snprintf(root, PATH_MAX, "%s", env);
    return 1;
  }
#ifdef MT_TEST_SOURCE_DIR
  /* ctest runs the cases inside the build folder, which may be anywhere
   * (/tmp, say): walking up from there would miss the checkout. */
  if (is_source_root(MT_TEST_SOURCE_DIR)) {
    snprintf(root, PATH_MAX, "%s", MT_TEST_SOURCE_DIR);
    return 1;
  }
#endif
  if (getcwd(root, PATH_MAX) == NULL)
    return 0;
  for (;;) {
    if (is_source_root(root))
      return 1;
    char *slash = strrchr(root, '/');
    if (slash == NULL || slash == root)
      return 0;
    *slash = '\0';
  }
}

/* Runs one case in a child, so that a failing ASSERT or a SKIP (both end
 * the process) ends only that case. Returns its exit code, or 128 + the
 * signal that killed it. */
static int run_forked(const mt_test_t *t) {
  int status;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 1;
  }
  if (pid == 0) {
    t->fn();
    fflush(NULL);
    _exit(0);
  }
  if (waitpid(pid, &status, 0) != pid)
    return 1;
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

int main(int argc, char **argv) {
  if (argc > 1) {
    for (mt_test_t *t = tests; t != NULL; t = t->next)
      if (strcmp(argv[1], t->name) == 0) {
        t->fn();
        return 0;
      }
    fprintf(stderr, "no test named %s\n", argv[1]);
    return 1;
  }
  int passed = 0, failed = 0, skipped = 0;
  for (mt_test_t *t = tests; t != NULL; t = t->next) {
    int rc = run_forked(t);
    if (rc == 0) {
      passed++;
      printf("ok      %s\n", t->name);
    } else if (rc == MT_SKIP_CODE) {
      skipped++;
      printf("skipped %s\n", t->name);
    } else {
      failed++;
      printf("FAIL    %s (exit %d)\n", t->name, rc);
    }
  }
  if (passed + failed + skipped == 0) {
    fprintf(stderr, "no tests\n");
    return 1;
  }
  printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  /* Skipped cases did not run: the whole run did not pass either. */
  return failed > 0 ? 1 : skipped > 0 ? MT_SKIP_CODE : 0;
}
