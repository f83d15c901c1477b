/* Opening a backend by the configured kind (backends/backends.h). */
#include <string.h>

#include "backends/backends.h"
#include "test.h"

TEST(backend_kind_unknown_is_named) {
  mt_err_t err;
  ASSERT_EQ_INT(0, mt_backend_check("postgres", &err));
  ASSERT_EQ_INT(MT_ECONFIG, mt_backend_check("redis", &err));
#ifdef MT_WITH_AWS
  ASSERT_EQ_INT(0, mt_backend_check("aws", &err));
  ASSERT_EQ_STR(
      err.msg, "backend \"redis\" is not available (supported: postgres, aws)");
#else
  ASSERT_EQ_STR(err.msg,
                "backend \"redis\" is not available (supported: postgres)");
#endif
  mt_backend_conf_t conf = {.kind = "redis"};
  mt_backend_t *b = NULL;
  ASSERT_EQ_INT(MT_ECONFIG, mt_backend_open(&conf, &b, &err));
  ASSERT_TRUE(b == NULL);
}
