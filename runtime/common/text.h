/*
 * Text from the database made safe for an operator's terminal. A handler's
 * error message, a task name inserted by hand or a payload may carry
 * terminal control sequences (ESC [ ..., a C1 CSI); printed raw they can
 * move the cursor, rewrite earlier lines or set the window title. The CLI
 * passes every such value through mt_text_escape() before printing it in
 * text mode (JSON output is escaped by the JSON writer instead). Plain C,
 * no state; the caller owns the output buffer.
 */
#ifndef MT_TEXT_H
#define MT_TEXT_H

#include "common/buf.h"

/* Appends s to out with every control character written as \xNN (lower-case
 * hex, one escape per byte): C0 controls 0x00-0x1f, except \n and \t when
 * keep_newlines is set; DEL 0x7f; C1 controls, both as raw bytes 0x80-0x9f
 * and as their UTF-8 encodings U+0080-U+009F ("\xc2\x9b"), since terminals
 * honour either as CSI; and any byte that is not part of well-formed UTF-8.
 * Well-formed UTF-8 text (a 0x9b inside "ś" included) and backslashes are
 * copied as they are. s may be NULL (appends nothing). Afterwards
 * out->data is a C string, also for an empty s. Returns 0 or MT_ENOMEM. */
int mt_text_escape(mt_buf_t *out, const char *s, int keep_newlines);

#endif
