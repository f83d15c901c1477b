/*
 * The JSON grammar, as a pull reader over the lexer (json/lex.h): the
 * caller asks for one event at a time and builds what it wants from them,
 * a C tree (json/doc.c), Lua values (lua/json.c) or nothing at all
 * (mt_json_check_object). Because the brackets, commas, nesting limit and
 * error messages live here once, every decoder accepts the same documents
 * and refuses the others with the same message.
 *
 * The reader does not recurse and allocates nothing: its state, including
 * one slot per open container up to MT_JSON_MAX_DEPTH, is in the struct the
 * caller provides (about 9 KB, so keep one on the stack, not in a loop).
 * Tokens point into the caller's text.
 */
#ifndef MT_JSON_READ_H
#define MT_JSON_READ_H

#include <stddef.h>

#include "common/error.h"
#include "json/lex.h"
#include "json/limits.h"

typedef enum mt_jevent_e {
  MT_JE_SCALAR, /* tok is a string, number, true, false or null */
  MT_JE_KEY,    /* tok is the string naming the next member of an object */
  MT_JE_ARRAY,  /* '[' opened an array */
  MT_JE_OBJECT, /* '{' opened an object */
  MT_JE_END,    /* ']' or '}' (tok says which) closed the innermost one */
  MT_JE_DONE    /* the document is complete and nothing follows it */
} mt_jevent_t;

/* The fields above `state` are for the caller to read after each event. */
typedef struct mt_jread_s {
  mt_jtok_t tok;
  int depth;     /* containers open after this event */
  int in_object; /* the innermost open container is an object */
  /* SCALAR, END: where the value that just completed goes. In an array it
   * is item number `index` (from 1); in an object it belongs to the last
   * KEY; at depth 0 it is the whole document. */
  size_t index;
  size_t count; /* END: items or members of the container just closed */
  /* private */
  int state;
  mt_jlex_t lex;
  unsigned char objects[MT_JSON_MAX_DEPTH]; /* per level: 1 for an object */
  size_t counts[MT_JSON_MAX_DEPTH];         /* per level: children so far */
} mt_jread_t;

void mt_jread_init(mt_jread_t *r, const char *text, size_t len, mt_err_t *err);

/* Reads the next event. Returns 0, or MT_EPAYLOAD with a message naming the
 * byte offset and what was expected there (or MT_ENOMEM); after an error
 * or MT_JE_DONE, stop calling. Nesting deeper than MT_JSON_MAX_DEPTH is an
 * error at the bracket that goes one level too far. */
int mt_jread_next(mt_jread_t *r, mt_jevent_t *ev);

/* Checks that the NUL-terminated text is one JSON object, by the grammar
 * every decoder uses, so malformed JSON is reported with the byte that is
 * wrong. Syntax comes first; a well-formed non-object is "the payload must
 * be a JSON object". Builds nothing, so it suits hot paths too. */
int mt_json_check_object(const char *text, mt_err_t *err);

#endif
