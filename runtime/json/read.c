#include "json/read.h"

#include <string.h>

/* What the reader wants next. */
enum {
  WANT_VALUE,          /* the document, after ':' or after ',' in an array */
  WANT_VALUE_OR_CLOSE, /* after '[' */
  WANT_KEY,            /* after ',' in an object */
  WANT_KEY_OR_CLOSE,   /* after '{' */
  WANT_COLON,          /* after a key */
  WANT_COMMA_OR_CLOSE, /* after a value inside a container */
  WANT_END             /* after the document's value */
};

void mt_jread_init(mt_jread_t *r, const char *text, size_t len, mt_err_t *err) {
  r->depth = 0;
  r->in_object = 0;
  r->index = 0;
  r->count = 0;
  r->state = WANT_VALUE;
  mt_jlex_init(&r->lex, text, len, err);
}

/* Records that a value ended (a scalar, or a container that just closed)
 * and says where it goes. */
static void value_done(mt_jread_t *r) {
  if (r->depth == 0) {
    r->index = 0;
    r->state = WANT_END;
    return;
  }
  r->index = ++r->counts[r->depth - 1];
  r->state = WANT_COMMA_OR_CLOSE;
}

static int open_container(mt_jread_t *r, int object, mt_jevent_t *ev) {
  if (r->depth >= MT_JSON_MAX_DEPTH)
    return mt_err_set(r->lex.err, MT_EPAYLOAD,
                      "invalid JSON at byte %zu: nested deeper than the limit "
                      "of %d levels",
                      r->tok.pos, MT_JSON_MAX_DEPTH);
  r->objects[r->depth] = (unsigned char)object;
  r->counts[r->depth] = 0;
  r->depth++;
  r->in_object = object;
  r->state = object ? WANT_KEY_OR_CLOSE : WANT_VALUE_OR_CLOSE;
  *ev = object ? MT_JE_OBJECT : MT_JE_ARRAY;
  return 0;
}

static int close_container(mt_jread_t *r, mt_jevent_t *ev) {
  r->depth--;
  r->count = r->counts[r->depth];
  r->in_object = r->depth > 0 && r->objects[r->depth - 1];
  value_done(r);
  *ev = MT_JE_END;
  return 0;
}

/* Reads a value in a position where one is expected. */
static int value(mt_jread_t *r, mt_jevent_t *ev) {
  switch (r->tok.type) {
  case MT_JT_LBRACKET: return open_container(r, 0, ev);
  case MT_JT_LBRACE: return open_container(r, 1, ev);
  case MT_JT_STRING:
  case MT_JT_NUMBER:
  case MT_JT_TRUE:
  case MT_JT_FALSE:
  case MT_JT_NULL:
    value_done(r);
    *ev = MT_JE_SCALAR;
    return 0;
  default: return mt_jlex_fail(&r->lex, r->tok.pos, "a value");
  }
}

static int starts_value(mt_jtok_type_t t) {
  return t == MT_JT_LBRACKET || t == MT_JT_LBRACE || t == MT_JT_STRING ||
         t == MT_JT_NUMBER || t == MT_JT_TRUE || t == MT_JT_FALSE ||
         t == MT_JT_NULL;
}

/* Checks that the next token is one the grammar allows here, by its kind,
 * before the lexer scans it: `[1 "abc` is a missing ',' at byte 3, not an
 * unterminated string at byte 7. */
static int expect(mt_jread_t *r) {
  size_t pos;
  mt_jtok_type_t t = mt_jlex_peek(&r->lex, &pos);
  const char *what = NULL;
  switch (r->state) {
  case WANT_VALUE:
  case WANT_VALUE_OR_CLOSE:
    if (!starts_value(t) &&
        !(r->state == WANT_VALUE_OR_CLOSE && t == MT_JT_RBRACKET))
      what = "a value";
    break;
  case WANT_KEY:
  case WANT_KEY_OR_CLOSE:
    if (t != MT_JT_STRING &&
        !(r->state == WANT_KEY_OR_CLOSE && t == MT_JT_RBRACE))
      what = "a string key";
    break;
  case WANT_COLON:
    if (t != MT_JT_COLON)
      what = "':' after the key";
    break;
  case WANT_COMMA_OR_CLOSE:
    if (t != MT_JT_COMMA && t != (r->in_object ? MT_JT_RBRACE : MT_JT_RBRACKET))
      what = r->in_object ? "',' or '}'" : "',' or ']'";
    break;
  default: /* WANT_END */
    if (t != MT_JT_END)
      what = "end of input after the value";
  }
  return what != NULL ? mt_jlex_fail(&r->lex, pos, what) : 0;
}

int mt_jread_next(mt_jread_t *r, mt_jevent_t *ev) {
  mt_jtok_t *tok = &r->tok;
  int rc;
  for (;;) {
    if ((rc = expect(r)) != 0 || (rc = mt_jlex_next(&r->lex, tok)) != 0)
      return rc;
    /* expect() has checked the kind of token: only a misspelt literal
     * (value() refuses it) is left to find here. */
    switch (r->state) {
    case WANT_VALUE_OR_CLOSE:
      if (tok->type == MT_JT_RBRACKET)
        return close_container(r, ev);
      /* fall through */
    case WANT_VALUE: return value(r, ev);
    case WANT_KEY_OR_CLOSE:
      if (tok->type == MT_JT_RBRACE)
        return close_container(r, ev);
      /* fall through */
    case WANT_KEY:
      r->state = WANT_COLON;
      *ev = MT_JE_KEY;
      return 0;
    case WANT_COLON: r->state = WANT_VALUE; continue;
    case WANT_COMMA_OR_CLOSE:
      if (tok->type != MT_JT_COMMA)
        return close_container(r, ev);
      r->state = r->in_object ? WANT_KEY : WANT_VALUE;
      continue;
    default: /* WANT_END */ *ev = MT_JE_DONE; return 0;
    }
  }
}

int mt_json_check_object(const char *text, mt_err_t *err) {
  mt_jread_t r;
  mt_jevent_t ev = MT_JE_DONE, first = MT_JE_DONE;
  int rc;
  mt_jread_init(&r, text, strlen(text), err);
  while ((rc = mt_jread_next(&r, &ev)) == 0 && ev != MT_JE_DONE)
    if (first == MT_JE_DONE)
      first = ev;
  if (rc == 0 && first != MT_JE_OBJECT)
    rc = mt_err_set(err, MT_EPAYLOAD, "the payload must be a JSON object");
  return rc;
}
