#include "lua/pattern.h"

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>

/* Lua's own limits (LUA_MAXCAPTURES and the matcher's C-call limit), so that
 * a pattern that fails there fails here with the same message. The depth
 * limit also bounds the C stack this matcher uses. */
#define MAX_CAPTURES 32
#define MAX_DEPTH 200

/* Capture lengths that are not lengths. */
#define CAP_OPEN (-1)     /* '(' seen, its ')' not yet */
#define CAP_POSITION (-2) /* '()': the capture is a position */

#define ESC '%'

/* A pattern without any of these is a plain string, for find. */
#define SPECIALS "^$*+?.([%-"

typedef struct pat_capture_s {
  const char *start;
  ptrdiff_t len; /* or CAP_OPEN, CAP_POSITION */
} pat_capture_t;

/* What the check callback of one set of functions is. A full userdata,
 * because a function pointer has no portable place in a light one. */
typedef struct pat_hook_s {
  mt_lua_pattern_check_cb check;
} pat_hook_t;

/* One match in progress. It lives on the C stack of the Lua C function that
 * runs the match, so that a check raising an error frees it by unwinding. */
typedef struct pat_state_s {
  lua_State *L;
  const char *src, *src_end; /* the whole subject, even with an init */
  const char *pat_end;
  mt_lua_pattern_check_cb check;
  ptrdiff_t budget; /* steps left before the next check */
  int depth;        /* nested match_here calls still allowed */
  int level;        /* captures opened so far */
  pat_capture_t cap[MAX_CAPTURES];
} pat_state_t;

/* gmatch's iterator state, offsets into its subject. */
typedef struct gmatch_pos_s {
  size_t next; /* where to look for the next match */
  size_t last; /* end of the previous match, or NO_MATCH */
} gmatch_pos_t;

#define NO_MATCH SIZE_MAX

/* ---- matching ---------------------------------------------------------- */

/* Accounts for steps of matching and lets the check stop the match. */
static inline void pat_charge(pat_state_t *ms, size_t steps) {
  if (ms->check == NULL)
    return;
  ms->budget -= (ptrdiff_t)steps;
  if (ms->budget > 0)
    return;
  ms->budget = MT_LUA_PATTERN_CHECK_STEPS;
  ms->check(ms->L);
}

/* Stack: -> (). Reads the check from the running function's first upvalue,
 * which every function installed here has. */
static void pat_init(pat_state_t *ms, lua_State *L, const char *s, size_t ls,
                     const char *p, size_t lp) {
  const pat_hook_t *hook = lua_touserdata(L, lua_upvalueindex(1));
  ms->L = L;
  ms->src = s;
  ms->src_end = s + ls;
  ms->pat_end = p + lp;
  ms->check = hook->check;
  ms->budget = MT_LUA_PATTERN_CHECK_STEPS;
  ms->depth = MAX_DEPTH;
  ms->level = 0;
}

/* Forgets the captures of a failed attempt before the next start position. */
static void pat_restart(pat_state_t *ms) {
  ms->depth = MAX_DEPTH;
  ms->level = 0;
}

/* Returns the end of the single-character class at p: a byte, '.', a
 * %-escape or a [set]. A malformed class raises when the matcher first
 * reaches it, as in Lua, so "x[" finds nothing in "abc" without an error. */
static inline const char *class_end(pat_state_t *ms, const char *p) {
  if (*p == ESC) {
    if (p + 1 >= ms->pat_end)
      luaL_error(ms->L, "malformed pattern (ends with '%%')");
    return p + 2;
  }
  if (*p++ != '[')
    return p;
  if (p < ms->pat_end && *p == '^')
    p++;
  /* The first byte of a set is a member even when it is ']': "[]]". */
  do {
    if (p >= ms->pat_end)
      luaL_error(ms->L, "malformed pattern (missing ']')");
    if (*p++ == ESC && p < ms->pat_end)
      p++;
  } while (p >= ms->pat_end || *p != ']');
  return p + 1;
}

/* Whether byte c is in the class %cl; an escaped non-letter is itself. The
 * <ctype.h> tests make the classes follow the C locale, as Lua's do. */
static inline int class_matches(int c, int cl) {
  int hit;
  /* clang-format off */
  switch (tolower(cl)) {
  case 'a': hit = isalpha(c); break;
  case 'c': hit = iscntrl(c); break;
  case 'd': hit = isdigit(c); break;
  case 'g': hit = isgraph(c); break;
  case 'l': hit = islower(c); break;
  case 'p': hit = ispunct(c); break;
  case 's': hit = isspace(c); break;
  case 'u': hit = isupper(c); break;
  case 'w': hit = isalnum(c); break;
  case 'x': hit = isxdigit(c); break;
  case 'z': hit = c == '\0'; break; /* deprecated, but still in 5.4 */
  default: return cl == c;
  }
  /* clang-format on */
  if (isupper(cl)) /* %A, %D, ...: the complement */
    return !hit;
  return hit != 0;
}

/* Whether byte c is in the set from the '[' at p to the ']' at last. */
static int set_matches(int c, const char *p, const char *last) {
  int in = 1;
  if (*++p == '^') {
    in = 0;
    p++;
  }
  for (; p < last; p++) {
    if (*p == ESC) {
      p++;
      if (class_matches(c, (unsigned char)*p))
        return in;
    } else if (p + 2 < last && p[1] == '-') {
      /* A '-' first or last in the set is a member, not a range. */
      if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
        return in;
      p += 2;
    } else if ((unsigned char)*p == c) {
      return in;
    }
  }
  return !in;
}

/* Whether the subject byte at s is in the class from p to ep. */
static inline int single_matches(const pat_state_t *ms, const char *s,
                                 const char *p, const char *ep) {
  if (s >= ms->src_end)
    return 0;
  int c = (unsigned char)*s;
  /* clang-format off */
  switch (*p) {
  case '.': return 1;
  case ESC: return class_matches(c, (unsigned char)p[1]);
  case '[': return set_matches(c, p, ep - 1);
  default: return (unsigned char)*p == c;
  }
  /* clang-format on */
}

static const char *match_here(pat_state_t *ms, const char *s, const char *p);

/* x* and x+ (s already past the first x): takes as many x as there are,
 * then gives them back one at a time until the rest of the pattern fits. */
static const char *match_greedy(pat_state_t *ms, const char *s, const char *p,
                                const char *ep) {
  size_t n = 0;
  while (single_matches(ms, s + n, p, ep))
    n++;
  pat_charge(ms, n);
  for (;;) {
    const char *e = match_here(ms, s + n, ep + 1);
    if (e != NULL)
      return e;
    if (n-- == 0)
      return NULL;
  }
}

/* x-: tries the rest of the pattern first, then one more x, and so on. */
static const char *match_lazy(pat_state_t *ms, const char *s, const char *p,
                              const char *ep) {
  for (;;) {
    const char *e = match_here(ms, s, ep + 1);
    if (e != NULL)
      return e;
    if (!single_matches(ms, s, p, ep))
      return NULL;
    s++;
  }
}

/* '(' or '()': records where the capture starts and matches the rest; a
 * failure takes the capture back. */
static const char *open_capture(pat_state_t *ms, const char *s, const char *p,
                                ptrdiff_t what) {
  if (ms->level >= MAX_CAPTURES)
    luaL_error(ms->L, "too many captures");
  ms->cap[ms->level].start = s;
  ms->cap[ms->level].len = what;
  ms->level++;
  const char *e = match_here(ms, s, p);
  if (e == NULL)
    ms->level--;
  return e;
}

/* ')': closes the innermost capture still open. */
static const char *close_capture(pat_state_t *ms, const char *s,
                                 const char *p) {
  int l = ms->level - 1;
  while (l >= 0 && ms->cap[l].len != CAP_OPEN)
    l--;
  if (l < 0)
    luaL_error(ms->L, "invalid pattern capture");
  ms->cap[l].len = s - ms->cap[l].start;
  const char *e = match_here(ms, s, p);
  if (e == NULL)
    ms->cap[l].len = CAP_OPEN;
  return e;
}

/* %bxy at s, p just past "%b": an x, then bytes up to the y that balances
 * it. The scan counts as steps: nested in a backtracking pattern it could
 * otherwise run long between two checks. */
static const char *match_balance(pat_state_t *ms, const char *s,
                                 const char *p) {
  if (ms->pat_end - p < 2)
    luaL_error(ms->L, "malformed pattern (missing arguments to '%%b')");
  if (s >= ms->src_end || *s != p[0])
    return NULL;
  size_t open = 1;
  const char *q = s;
  while (++q < ms->src_end) {
    /* y is tested first, so "%bxx" ends at the next x. */
    if (*q == p[1]) {
      if (--open == 0)
        break;
    } else if (*q == p[0]) {
      open++;
    }
  }
  pat_charge(ms, (size_t)(q - s));
  return q < ms->src_end ? q + 1 : NULL;
}

/* %1 to %9 at s: the same bytes as that capture, which must be closed. */
static const char *match_backref(pat_state_t *ms, const char *s, int digit) {
  int l = digit - '1';
  if (l < 0 || l >= ms->level || ms->cap[l].len == CAP_OPEN)
    luaL_error(ms->L, "invalid capture index %%%d", l + 1);
  ptrdiff_t len = ms->cap[l].len;
  /* A position capture has no text; Lua never matches it either. */
  if (len < 0 || ms->src_end - s < len ||
      memcmp(ms->cap[l].start, s, (size_t)len) != 0)
    return NULL;
  pat_charge(ms, (size_t)len);
  return s + len;
}

/* Matches the pattern items from p on against the subject from s. Returns
 * the end of the match or NULL. Captures, repetitions and '?' recurse
 * through match_here to match the rest; plain items loop. */
static const char *match_items(pat_state_t *ms, const char *s, const char *p) {
  while (p < ms->pat_end) {
    switch (*p) {
    case '(':
      if (p + 1 < ms->pat_end && p[1] == ')')
        return open_capture(ms, s, p + 2, CAP_POSITION);
      return open_capture(ms, s, p + 1, CAP_OPEN);
    case ')': return close_capture(ms, s, p + 1);
    case '$':
      if (p + 1 == ms->pat_end) /* elsewhere '$' is a plain byte */
        return s == ms->src_end ? s : NULL;
      break;
    case ESC:
      if (p + 1 >= ms->pat_end)
        break; /* class_end raises */
      if (p[1] == 'b') {
        if ((s = match_balance(ms, s, p + 2)) == NULL)
          return NULL;
        p += 4;
        continue;
      }
      if (p[1] == 'f') {
        /* A frontier: the byte before s (or "\0" at the start) is not in
         * the set and the byte at s (or "\0" at the end) is. */
        const char *set = p + 2;
        if (set >= ms->pat_end || *set != '[')
          luaL_error(ms->L, "missing '[' after '%%f' in pattern");
        const char *ep = class_end(ms, set);
        int before = s > ms->src ? (unsigned char)s[-1] : 0;
        int at = s < ms->src_end ? (unsigned char)*s : 0;
        if (set_matches(before, set, ep - 1) || !set_matches(at, set, ep - 1))
          return NULL;
        p = ep;
        continue;
      }
      if (isdigit((unsigned char)p[1])) {
        if ((s = match_backref(ms, s, p[1])) == NULL)
          return NULL;
        p += 2;
        continue;
      }
      break;
    }

    /* A single-character class, maybe with a quantifier. */
    const char *ep = class_end(ms, p);
    int hit = single_matches(ms, s, p, ep);
    int q = ep < ms->pat_end ? *ep : '\0';
    if (!hit) {
      if (q == '*' || q == '?' || q == '-') { /* zero of them will do */
        p = ep + 1;
        continue;
      }
      return NULL;
    }
    switch (q) {
    case '?': {
      const char *e = match_here(ms, s + 1, ep + 1);
      if (e != NULL)
        return e;
      p = ep + 1;
      continue;
    }
    case '+': return match_greedy(ms, s + 1, p, ep);
    case '*': return match_greedy(ms, s, p, ep);
    case '-': return match_lazy(ms, s, p, ep);
    default:
      s++;
      p = ep;
      continue;
    }
  }
  return s;
}

/* Every recursion of the matcher goes through here, so that the depth is
 * bounded (the C stack with it) and every attempt counts as a step. The
 * limit and the points that recurse are Lua's, so the same patterns are
 * "too complex" here and there. */
static const char *match_here(pat_state_t *ms, const char *s, const char *p) {
  if (ms->depth-- == 0)
    luaL_error(ms->L, "pattern too complex");
  pat_charge(ms, 1);
  const char *e = match_items(ms, s, p);
  ms->depth++;
  return e;
}

/* ---- results ----------------------------------------------------------- */

/* Stack: -> capture. Pushes capture i; when the pattern has none, i = 0
 * stands for the whole match s..e. */
static void push_capture(pat_state_t *ms, int i, const char *s, const char *e) {
  if (i >= ms->level) {
    if (i != 0)
      luaL_error(ms->L, "invalid capture index %%%d", i + 1);
    lua_pushlstring(ms->L, s, (size_t)(e - s));
    return;
  }
  ptrdiff_t len = ms->cap[i].len;
  if (len == CAP_OPEN)
    luaL_error(ms->L, "unfinished capture");
  if (len == CAP_POSITION)
    lua_pushinteger(ms->L, ms->cap[i].start - ms->src + 1);
  else
    lua_pushlstring(ms->L, ms->cap[i].start, (size_t)len);
}

/* Stack: -> captures. Pushes all captures, or the whole match s..e if
 * there are none and s is not NULL (find passes NULL: it returns the
 * positions instead). Returns how many it pushed. */
static int push_captures(pat_state_t *ms, const char *s, const char *e) {
  int n = ms->level == 0 && s != NULL ? 1 : ms->level;
  luaL_checkstack(ms->L, n, "too many captures");
  for (int i = 0; i < n; i++)
    push_capture(ms, i, s, e);
  return n;
}

/* Lua 5.4's reading of a start position: negative counts from the end, and
 * 0 or anything before the start means the start. Returns a 0-based offset,
 * which may lie past the end. */
static size_t start_offset(lua_Integer pos, size_t len) {
  if (pos > 0)
    return (size_t)pos - 1;
  if (pos == 0 || pos < -(lua_Integer)len)
    return 0;
  return len - (size_t)-pos;
}

static int has_specials(const char *p, size_t lp) {
  for (size_t i = 0; i < lp; i++)
    if (p[i] != '\0' && strchr(SPECIALS, p[i]) != NULL)
      return 1;
  return 0;
}

/* ---- find, match, gmatch ----------------------------------------------- */

/* Stack: s p [init [plain]] -> results. The body of find and match. */
static int find_or_match(lua_State *L, int find) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
  if (init > ls) {
    luaL_pushfail(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
    /* memmem is linear in the subject, so a plain search needs no checks,
     * unlike a naive one that compares the needle at every position. */
    const char *hit = memmem(s + init, ls - init, p, lp);
    if (hit != NULL) {
      lua_pushinteger(L, hit - s + 1);
      lua_pushinteger(L, (lua_Integer)(hit - s) + (lua_Integer)lp);
      return 2;
    }
    luaL_pushfail(L);
    return 1;
  }
  int anchored = lp > 0 && *p == '^';
  if (anchored) {
    p++;
    lp--;
  }
  pat_state_t ms;
  pat_init(&ms, L, s, ls, p, lp);
  const char *start = s + init;
  do {
    pat_restart(&ms);
    const char *e = match_here(&ms, start, p);
    if (e != NULL) {
      if (!find)
        return push_captures(&ms, start, e);
      lua_pushinteger(L, start - s + 1);
      lua_pushinteger(L, e - s);
      return push_captures(&ms, NULL, NULL) + 2;
    }
  } while (!anchored && start++ < ms.src_end);
  luaL_pushfail(L);
  return 1;
}

static int pattern_find(lua_State *L) { return find_or_match(L, 1); }

static int pattern_match(lua_State *L) { return find_or_match(L, 0); }

/* The iterator gmatch returns. Upvalues: hook, subject, pattern, position.
 * The match state is rebuilt on every call, in the calling thread, so the
 * iterator works from any coroutine and its userdata holds only offsets. */
static int gmatch_next(lua_State *L) {
  size_t ls, lp;
  const char *s = lua_tolstring(L, lua_upvalueindex(2), &ls);
  const char *p = lua_tolstring(L, lua_upvalueindex(3), &lp);
  gmatch_pos_t *pos = lua_touserdata(L, lua_upvalueindex(4));
  pat_state_t ms;
  pat_init(&ms, L, s, ls, p, lp);
  /* No anchor: gmatch matches a leading '^' as a plain byte, as Lua does.
   * A match may not be empty right where the previous one ended (5.4). */
  for (size_t at = pos->next; at <= ls; at++) {
    pat_restart(&ms);
    const char *e = match_here(&ms, s + at, p);
    if (e != NULL && (size_t)(e - s) != pos->last) {
      pos->next = pos->last = (size_t)(e - s);
      return push_captures(&ms, s + at, e);
    }
  }
  pos->next = ls + 1; /* later calls need not scan again to find nothing */
  return 0;
}

/* Stack: s p [init] -> iterator. */
static int pattern_gmatch(lua_State *L) {
  size_t ls;
  luaL_checklstring(L, 1, &ls);
  luaL_checkstring(L, 2);
  size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
  lua_settop(L, 2); /* the iterator keeps both strings alive */
  gmatch_pos_t *pos = lua_newuserdatauv(L, sizeof *pos, 0);
  pos->next = init > ls ? ls + 1 : init;
  pos->last = NO_MATCH;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_pushcclosure(L, gmatch_next, 4);
  return 1;
}

/* ---- gsub -------------------------------------------------------------- */

/* Adds capture i (i = 0 with no captures: the whole match s..e) to b. */
static void add_capture(pat_state_t *ms, luaL_Buffer *b, int i, const char *s,
                        const char *e) {
  if (i < ms->level && ms->cap[i].len >= 0) {
    luaL_addlstring(b, ms->cap[i].start, (size_t)ms->cap[i].len);
    return;
  }
  push_capture(ms, i, s, e); /* a position, the whole match, or it raises */
  luaL_addvalue(b);
}

/* Adds the replacement string (argument 3) for the match s..e to b, with
 * %0 to %9 replaced by the match and its captures and %% by '%'. */
static void add_string(pat_state_t *ms, luaL_Buffer *b, const char *s,
                       const char *e) {
  size_t l;
  const char *r = lua_tolstring(ms->L, 3, &l);
  const char *end = r + l, *esc;
  while ((esc = memchr(r, ESC, (size_t)(end - r))) != NULL) {
    luaL_addlstring(b, r, (size_t)(esc - r));
    int c = esc + 1 < end ? (unsigned char)esc[1] : '\0';
    if (c == ESC)
      luaL_addchar(b, ESC);
    else if (c == '0')
      luaL_addlstring(b, s, (size_t)(e - s));
    else if (isdigit(c))
      add_capture(ms, b, c - '1', s, e);
    else
      luaL_error(ms->L, "invalid use of '%%' in replacement string");
    r = esc + 2;
  }
  luaL_addlstring(b, r, (size_t)(end - r));
}

/* Adds the replacement for the match s..e to b: a string, or what the
 * table or function (argument 3) gives for it. Returns 0 when that was
 * false or nil and the match stays as it was. */
static int add_replacement(pat_state_t *ms, luaL_Buffer *b, const char *s,
                           const char *e, int type) {
  lua_State *L = ms->L;
  if (type == LUA_TFUNCTION) {
    lua_pushvalue(L, 3);
    int n = push_captures(ms, s, e);
    lua_call(L, n, 1);
  } else if (type == LUA_TTABLE) {
    push_capture(ms, 0, s, e);
    lua_gettable(L, 3);
  } else {
    add_string(ms, b, s, e);
    return 1;
  }
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    luaL_addlstring(b, s, (size_t)(e - s));
    return 0;
  }
  if (!lua_isstring(L, -1))
    luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  luaL_addvalue(b);
  return 1;
}

/* Stack: s p repl [n] -> result count. */
static int pattern_gsub(lua_State *L) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  int type = lua_type(L, 3);
  lua_Integer max_n = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
  luaL_argexpected(L,
                   type == LUA_TNUMBER || type == LUA_TSTRING ||
                       type == LUA_TFUNCTION || type == LUA_TTABLE,
                   3, "string/function/table");
  int anchored = lp > 0 && *p == '^';
  if (anchored) {
    p++;
    lp--;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  pat_state_t ms;
  pat_init(&ms, L, s, ls, p, lp);
  const char *at = s, *last = NULL;
  lua_Integer n = 0;
  int changed = 0;
  while (n < max_n) {
    pat_restart(&ms);
    const char *e = match_here(&ms, at, p);
    /* As in gmatch, no empty match right where the previous one ended. */
    if (e != NULL && e != last) {
      n++;
      changed |= add_replacement(&ms, &b, at, e, type);
      at = last = e;
    } else if (at < ms.src_end) {
      luaL_addchar(&b, *at++);
    } else {
      break;
    }
    if (anchored)
      break;
  }
  if (changed) {
    luaL_addlstring(&b, at, (size_t)(ms.src_end - at));
    luaL_pushresult(&b);
  } else {
    lua_pushvalue(L, 1); /* nothing replaced: no new string needed */
  }
  lua_pushinteger(L, n);
  return 2;
}

/* ---- opening ----------------------------------------------------------- */

static const luaL_Reg pattern_funcs[] = {{"find", pattern_find},
                                         {"match", pattern_match},
                                         {"gmatch", pattern_gmatch},
                                         {"gsub", pattern_gsub},
                                         {NULL, NULL}};

void mt_lua_pattern_open(lua_State *L, int idx, mt_lua_pattern_check_cb check) {
  idx = lua_absindex(L, idx);
  lua_pushvalue(L, idx);
  /* One hook shared by the four functions, as their first upvalue: the
   * check belongs to this state's library, not to the process. */
  pat_hook_t *hook = lua_newuserdatauv(L, sizeof *hook, 0);
  hook->check = check;
  luaL_setfuncs(L, pattern_funcs, 1);
  lua_pop(L, 1);
}
