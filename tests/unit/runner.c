/* Runs one named test case (as ctest invokes it), or all of them. */
#include <stdio.h>
#include <string.h>

#include "test.h"

static mt_test_t *tests;

void mt__test_register(mt_test_t *t) {
  t->next = tests;
  tests = t;
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
