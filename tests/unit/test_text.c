/* Terminal-safe text (common/text.c). */
#include "common/text.h"
#include "test.h"

/* s escaped into b, which is reset first. */
static const char *esc(mt_buf_t *b, const char *s, int keep_newlines) {
  mt_buf_reset(b);
  ASSERT_EQ_INT(0, mt_text_escape(b, s, keep_newlines));
  return b->data;
}

TEST(text_escapes_controls) {
  mt_buf_t b = MT_BUF_INIT;
  ASSERT_EQ_STR(esc(&b, "plain text", 0), "plain text");
  ASSERT_EQ_STR(esc(&b, "", 0), "");
  ASSERT_EQ_STR(esc(&b, NULL, 0), "");
  ASSERT_EQ_STR(esc(&b, "\x1b[2J\x1b]0;owned\x07", 0),
                "\\x1b[2J\\x1b]0;owned\\x07");
  ASSERT_EQ_STR(esc(&b, "a\rb\x7f.\x01", 0), "a\\x0db\\x7f.\\x01");
  /* Newlines and tabs: kept only when asked. */
  ASSERT_EQ_STR(esc(&b, "line 1\n\tline 2", 0), "line 1\\x0a\\x09line 2");
  ASSERT_EQ_STR(esc(&b, "line 1\n\tline 2\r\n", 1), "line 1\n\tline 2\\x0d\n");
  /* Appends: the buffer's earlier text stays. */
  mt_buf_reset(&b);
  mt_buf_puts(&b, "> ");
  ASSERT_EQ_INT(0, mt_text_escape(&b, "\x1b", 0));
  ASSERT_EQ_STR(b.data, "> \\x1b");
  mt_buf_free(&b);
}

TEST(text_escapes_c1_but_not_utf8) {
  mt_buf_t b = MT_BUF_INIT;
  /* UTF-8 text passes, including "ś" (C5 9B), whose second byte is 0x9b. */
  ASSERT_EQ_STR(esc(&b, "za\xc5\x9b\xc4\x87 \xe2\x82\xac \xf0\x9f\x8c\x99", 0),
                "za\xc5\x9b\xc4\x87 \xe2\x82\xac \xf0\x9f\x8c\x99");
  ASSERT_EQ_STR(esc(&b, "\xc2\xa0nbsp", 0), "\xc2\xa0nbsp");
  /* A raw CSI byte, and U+009B encoded: both are CSI to a terminal. */
  ASSERT_EQ_STR(esc(&b, "x\x9b[31m", 0), "x\\x9b[31m");
  ASSERT_EQ_STR(esc(&b, "x\xc2\x9b[31m", 0), "x\\xc2\\x9b[31m");
  ASSERT_EQ_STR(esc(&b, "\xc2\x80\xc2\x9f", 0), "\\xc2\\x80\\xc2\\x9f");
  /* Bytes that are not UTF-8 at all: lone, truncated, overlong. */
  ASSERT_EQ_STR(esc(&b, "\xff\xe2\x82", 0), "\\xff\\xe2\\x82");
  ASSERT_EQ_STR(esc(&b, "\xc0\xaf", 0), "\\xc0\\xaf");
  /* Backslashes are text. */
  ASSERT_EQ_STR(esc(&b, "C:\\x1b", 0), "C:\\x1b");
  mt_buf_free(&b);
}
