#include "scheduler/catch_up.h"

#include <stddef.h>
#include <string.h>

static const char *const catch_up_names[] = {
    [MT_CATCH_UP_ONCE] = "once",
    [MT_CATCH_UP_SKIP] = "skip",
    [MT_CATCH_UP_ALL] = "all",
};

int mt_catch_up_parse(const char *s, mt_catch_up_t *out, mt_err_t *err) {
  for (size_t i = 0; i < sizeof catch_up_names / sizeof *catch_up_names; i++)
    if (strcmp(s, catch_up_names[i]) == 0) {
      *out = (mt_catch_up_t)i;
      return 0;
    }
  return mt_err_set(err, MT_EINVAL, "\"%s\" is not once, skip or all", s);
}

const char *mt_catch_up_name(mt_catch_up_t policy) {
  /* The enum's range is checked as unsigned so that a stray negative value
   * cannot index before the table. */
  if ((unsigned)policy >= sizeof catch_up_names / sizeof *catch_up_names)
    return catch_up_names[MT_CATCH_UP_ONCE];
  return catch_up_names[policy];
}
