/* Runs one named test case (as ctest invokes it), or all of them. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

static mt_test_t *tests;

void mt__test_register(mt_test_t *t) {
  t->next = tests;
  tests = t;
}

int mt_test_source_root(char *root) {
  char probe[PATH_MAX + 32];
  struct stat st;
  const char *env = getenv("MT_SOURCE_DIR");
  if (env != NULL && *env != '\0') {
    snprintf(root, PATH_MAX, "%s", env);
    return 1;
  }
  if (getcwd(root, PATH_MAX) == NULL)
    return 0;
  for (;;) {
    snprintf(probe, sizeof probe, "%s/CMakeLists.txt", root);
    int has_cmake = stat(probe, &st) == 0 && S_ISREG(st.st_mode);
    snprintf(probe, sizeof probe, "%s/runtime", root);
    if (has_cmake && stat(probe, &st) == 0 && S_ISDIR(st.st_mode))
      return 1;
    char *slash = strrchr(root, '/');
    if (slash == NULL || slash == root)
      return 0;
    *slash = '\0';
  }
}

int main(int argc, char **argv) {
  int ran = 0;
  for (mt_test_t *t = tests; t != NULL; t = t->next) {
    if (argc > 1 && strcmp(argv[1], t->name) != 0)
      continue;
    t->fn();
    ran++;
    if (argc == 1)
      printf("ok %s\n", t->name);
  }
  if (ran == 0) {
    fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "(any)");
    return 1;
  }
  return 0;
}
