#include "json/c_locale.h"

#include <pthread.h>

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_init(void) {
  c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

locale_t mt_json_c_locale(void) {
  pthread_once(&c_locale_once, c_locale_init);
  return c_locale;
}
