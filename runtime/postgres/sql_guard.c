#include "postgres/sql_guard.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>

/* A word of SQL: where it starts and how long it is. */
typedef struct word_s {
  const char *p;
  size_t len;
} word_t;

static int is_ident_start(unsigned char c) {
  return isalpha(c) || c == '_' || c >= 0x80;
}

static int is_ident_char(unsigned char c) {
  return is_ident_start(c) || isdigit(c) || c == '$';
}

static int word_is(word_t w, const char *keyword) {
  return w.len == strlen(keyword) && strncasecmp(w.p, keyword, w.len) == 0;
}

/* Skips a quoted literal or identifier that opens at *p with quote q. In
 * E'...' strings a backslash escapes the next character; everywhere a
 * doubled quote stands for one. An unterminated one runs to the end: the
 * server will refuse it anyway. */
static const char *skip_quoted(const char *p, char q, int backslashes) {
  for (p++; *p; p++) {
    if (backslashes && *p == '\\' && p[1] != '\0')
      p++;
    else if (*p == q && p[1] == q)
      p++;
    else if (*p == q)
      return p + 1;
  }
  return p;
}

/* At '$': a dollar-quoted string ($$...$$ or $tag$...$tag$) is skipped
 * whole; anything else ($1, a $ inside a word) is one character. */
static const char *skip_dollar(const char *p) {
  const char *tag_end = p + 1;
  if (is_ident_start((unsigned char)*tag_end))
    while (is_ident_char((unsigned char)*tag_end) && *tag_end != '$')
      tag_end++;
  if (*tag_end != '$')
    return p + 1;
  size_t tag_len = (size_t)(tag_end - p) + 1;
  const char *close;
  for (close = tag_end + 1; *close; close++)
    if (*close == '$' && strncmp(close, p, tag_len) == 0)
      return close + tag_len;
  return close;
}

/* Skips whitespace and comments: "--" to the end of the line, and block
 * comments, which nest in PostgreSQL. */
static const char *skip_space(const char *p) {
  for (;;) {
    while (isspace((unsigned char)*p))
      p++;
    if (p[0] == '-' && p[1] == '-') {
      while (*p && *p != '\n' && *p != '\r') /* either ends it */
        p++;
    } else if (p[0] == '/' && p[1] == '*') {
      int depth = 1;
      for (p += 2; *p && depth > 0; p++) {
        if (p[0] == '/' && p[1] == '*')
          depth++, p++;
        else if (p[0] == '*' && p[1] == '/')
          depth--, p++;
      }
    } else {
      return p;
    }
  }
}

/* Reads the next token of a statement: a word (returned in *w), or any
 * other token, skipped. Stops at ';' and at the end. With backslashes set,
 * a backslash escapes the next character in plain '...' strings too, as
 * it does when standard_conforming_strings is off. */
static const char *next_token(const char *p, word_t *w, int backslashes) {
  w->p = NULL;
  w->len = 0;
  p = skip_space(p);
  if (*p == '\0' || *p == ';')
    return p;
  if ((*p == 'E' || *p == 'e') && p[1] == '\'')
    return skip_quoted(p + 1, '\'', 1);
  if (*p == '\'')
    return skip_quoted(p, '\'', backslashes);
  if (*p == '"')
    return skip_quoted(p, '"', 0);
  if (*p == '$')
    return skip_dollar(p);
  if (is_ident_start((unsigned char)*p)) {
    const char *start = p;
    while (is_ident_char((unsigned char)*p))
      p++;
    w->p = start;
    w->len = (size_t)(p - start);
    return p;
  }
  return p + 1;
}

/* Whether a statement that opens with words a, b, c (empty when the
 * statement has fewer) ends, chains, prepares or begins a transaction. */
static int controls_transaction(word_t a, word_t b, word_t c) {
  if (word_is(a, "COMMIT") || word_is(a, "END") || word_is(a, "ABORT") ||
      word_is(a, "BEGIN") || word_is(a, "START"))
    return 1;
  if (word_is(a, "PREPARE"))
    return word_is(b, "TRANSACTION");
  if (word_is(a, "ROLLBACK")) {
    /* ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] name stays inside. */
    word_t to = (word_is(b, "WORK") || word_is(b, "TRANSACTION")) ? c : b;
    return !word_is(to, "TO");
  }
  return 0;
}

/* Whether a statement that opens with word a prepares or drops prepared
 * statements: the runtime's own (postgres/stmt_cache.h) live in the same
 * session, across tasks. (PREPARE TRANSACTION is caught above.) */
static int manages_statements(word_t a) {
  return word_is(a, "PREPARE") || word_is(a, "DEALLOCATE");
}

/* Scans every statement of sql, reading plain strings one way or the
 * other (see next_token). */
static int scan(const char *sql, int backslashes, mt_err_t *err) {
  const char *p = sql;
  while (*p) {
    const char *start = skip_space(p);
    word_t words[3] = {{0}};
    int n = 0;
    p = start;
    while (*p && *p != ';') {
      word_t w;
      p = next_token(p, &w, backslashes);
      if (w.p != NULL && n < 3)
        words[n++] = w;
      else if (n == 0 && w.p == NULL && *p != ';' && *p != '\0')
        n = 3; /* opens with something else: not transaction control */
    }
    size_t len = (size_t)(p - start);
    while (len > 0 && isspace((unsigned char)start[len - 1]))
      len--;
    int shown = (int)(len > 60 ? 60 : len);
    if (n > 0 && controls_transaction(words[0], words[1], words[2]))
      return mt_err_set(err, MT_EINVAL,
                        "\"%.*s\" is not allowed: the runtime owns the task's "
                        "transaction and ends it itself when the handler "
                        "returns (raise an error to roll back)",
                        shown, start);
    if (n > 0 && manages_statements(words[0]))
      return mt_err_set(err, MT_EINVAL,
                        "\"%.*s\" is not allowed: the runtime prepares every "
                        "statement itself and keeps them for later tasks "
                        "(pass parameters to tx:exec or tx:query)",
                        shown, start);
    if (*p == ';')
      p++;
  }
  return 0;
}

int mt_sql_guard_check(const char *sql, mt_err_t *err) {
  /* Where a string ends depends on standard_conforming_strings, which the
   * same text may set: 'a\'; COMMIT; ...' hides a COMMIT from one reading
   * and not from the other. Both readings must find no way out. */
  int rc = scan(sql, 0, err);
  return rc != 0 ? rc : scan(sql, 1, err);
}
