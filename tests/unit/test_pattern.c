/* Unit tests for runtime/lua/pattern.c. The bounded find, match, gmatch and
 * gsub must agree with Lua's own string library on every result and error,
 * which a differential test checks over a hand-written and a generated
 * corpus; and a check callback must be able to stop a match that would
 * otherwise run for hours. */
#include <stdint.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lua/pattern.h"
#include "test.h"

/* ---- check callbacks --------------------------------------------------- */

static long checks;     /* calls of any check below */
static long max_checks; /* count_check raises on this call; 0: never */
static double deadline; /* deadline_check raises after this */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Both raise a bare message: luaL_error would prefix the line of the Lua
 * code that called the string function, which depends on the caller. */
static void count_check(lua_State *L) {
  if (++checks == max_checks) {
    lua_pushliteral(L, "too many steps");
    lua_error(L);
  }
}

static void deadline_check(lua_State *L) {
  checks++;
  if (now() > deadline) {
    lua_pushliteral(L, "deadline passed");
    lua_error(L);
  }
}

/* ---- states ------------------------------------------------------------ */

/* A state with the standard libraries; with bounded, its string library
 * (also the strings' __index) went through mt_lua_pattern_open. */
static lua_State *new_state(int bounded, mt_lua_pattern_check_cb check) {
  lua_State *L = luaL_newstate();
  ASSERT_TRUE(L != NULL);
  luaL_openlibs(L);
  if (bounded) {
    lua_getglobal(L, "string");
    int top = lua_gettop(L);
    mt_lua_pattern_open(L, -1, check);
    ASSERT_EQ_INT(lua_gettop(L), top);
    lua_pop(L, 1);
  }
  return L;
}

/* Runs a chunk whose `assert`s carry the test; a Lua error fails the case. */
static void run_lua(lua_State *L, const char *chunk) {
  if (luaL_loadbufferx(L, chunk, strlen(chunk), "=test", "t") != LUA_OK ||
      lua_pcall(L, 0, 0, 0) != LUA_OK)
    MT__FAIL("Lua: %s", lua_tostring(L, -1));
  lua_settop(L, 0);
}

/* ---- differential test ------------------------------------------------- */

/* Loaded into both states. run_case(i) puts case i through every function
 * and argument form under pcall and describes all results, with types, in
 * one string; C compares the two states' strings. */
static const char driver[] =
    "local find, match, gmatch, gsub = string.find, string.match,\n"
    "  string.gmatch, string.gsub\n"
    "local concat, pack = table.concat, table.pack\n"
    "local function show(v)\n"
    "  local t = math.type(v) or type(v)\n"
    "  if t == 'string' then return string.format('%q', v) end\n"
    "  if t == 'table' or t == 'function' then return t end\n"
    "  return t .. ':' .. tostring(v)\n"
    "end\n"
    "local function list(t)\n"
    "  local out = {}\n"
    "  for i = 1, t.n do out[i] = show(t[i]) end\n"
    "  return t.n .. '[' .. concat(out, ',') .. ']'\n"
    "end\n"
    "local function try(f, ...) return list(pack(pcall(f, ...))) end\n"
    "local function iterate(s, p, init)\n"
    "  local it, out = gmatch(s, p, init), {}\n"
    "  for _ = 1, 100 do\n"
    "    local r = pack(it())\n"
    "    out[#out + 1] = list(r)\n"
    "    if r[1] == nil then break end\n"
    "  end\n"
    "  return concat(out, ' ')\n"
    "end\n"
    /* Table replacement: a string, a number, false and nil (both keep the
     * match), and a table (an error). */
    "local lookup = setmetatable({}, {__index = function(_, k)\n"
    "  if k == 'a' then return '<A>' end\n"
    "  if k == '1' or k == 1 then return 42 end\n"
    "  if k == 'b' then return false end\n"
    "  if k == '(' then return {} end\n"
    "  if k == '' then return '<>' end\n"
    "end})\n"
    "local function replace(...)\n"
    "  local a = ...\n"
    "  if a == 'b' then return false end\n"
    "  if a == 'a' then return nil end\n"
    "  if a == '(' then return true end\n"
    "  if a == 2 then return 2.5 end\n"
    "  return '{' .. list(pack(...)) .. '}'\n"
    "end\n"
    "cases = {}\n"
    "function add_case(s, p, init, repl, n)\n"
    "  cases[#cases + 1] = {s, p, init, repl, n}\n"
    "end\n"
    "function describe(i)\n"
    "  local c = cases[i]\n"
    "  if type(c) == 'function' then return 'misc case' end\n"
    "  return list(pack(c[1], c[2], c[3], c[4], c[5]))\n"
    "end\n"
    "function run_case(i)\n"
    "  local c = cases[i]\n"
    "  if type(c) == 'function' then return try(c) end\n"
    "  local s, p, init, repl, n = c[1], c[2], c[3], c[4] or '<%0>', c[5]\n"
    "  return concat({\n"
    "    try(find, s, p, init), try(find, s, p, init, true),\n"
    "    try(match, s, p, init), try(iterate, s, p, init),\n"
    "    try(gsub, s, p, repl, n), try(gsub, s, p, repl, 1),\n"
    "    try(gsub, s, p, '[%1]'), try(gsub, s, p, lookup, n),\n"
    "    try(gsub, s, p, replace, n),\n"
    "  }, '\\n')\n"
    "end\n"
    /* Argument handling, through closures so that it can use methods,
     * coroutines and iterators. */
    "local co = coroutine\n"
    "local misc = {\n"
    "  function() return find(nil, 'x') end,\n"
    "  function() return find('x') end,\n"
    "  function() return find('abc', 'b', 1.5) end,\n"
    "  function() return find('abc', 'b', '2') end,\n"
    "  function() return find('abc', 'b', {}) end,\n"
    "  function() return find(12345, 34) end,\n"
    "  function() return find(12.5, '.', 1, true) end,\n"
    "  function() return find('a+b', '+', 1, 1) end,\n"
    "  function() return find('a+b', '+', nil, true) end,\n"
    "  function() return match(12345, '%d%d', -2) end,\n"
    "  function() return match('x') end,\n"
    "  function() return gsub('abc', 'b') end,\n"
    "  function() return gsub('abc', 'b', true) end,\n"
    "  function() return gsub('abc', 'b', 'x', 'y') end,\n"
    "  function() return gsub('abc', 'b', 'x', 1.5) end,\n"
    "  function() return gsub('abc', 'b', 'x', '1') end,\n"
    "  function() return gsub('abc', 'b', 7) end,\n"
    "  function() return gsub('abc', 'b', 7.5) end,\n"
    "  function() return gsub('abc', '', '-', -1) end,\n"
    "  function() return gsub(1212, 1, 3) end,\n"
    "  function() return gsub('abc', '%w', '%0%0', math.maxinteger) end,\n"
    "  function() return gsub('abc', '%w', '%0', math.mininteger) end,\n"
    "  function() return gmatch('abc') end,\n"
    "  function() return gmatch('abc', 'b', {}) end,\n"
    "  function() return gmatch(nil, 'b') end,\n"
    "  function() return ('abc'):find('b', math.maxinteger) end,\n"
    "  function() return ('abc'):find('b', math.mininteger) end,\n"
    "  function() return ('abc'):match('b', math.mininteger) end,\n"
    "  function() return iterate('abc', '.', math.maxinteger) end,\n"
    "  function() return iterate('abc', '.', math.mininteger) end,\n"
    "  function() return ('hello'):gsub('l', {l = 'L'}) end,\n"
    "  function() return ('hello'):gsub('l+', {ll = 1.5}) end,\n"
    "  function() return gsub('abc', 'b', function() error('boom') end) end,\n"
    "  function() return gsub('abc', 'b', function() error({}) end) end,\n"
    "  function() return gsub('abc', '%w', function() return {} end) end,\n"
    "  function() return gsub('a.b', '%.', '%%%0%%') end,\n"
    "  function()\n"
    "    local it = gmatch('ab', '.')\n"
    "    return it(), it(), it(), it()\n"
    "  end,\n"
    "  function()\n"
    "    local it = gmatch('a b c', '%a')\n"
    "    local other = co.wrap(function() return it() end)\n"
    "    return it(), other(), it(), it()\n"
    "  end,\n"
    "  function()\n"
    "    return co.wrap(function()\n"
    "      return gsub('abc', 'b', function() co.yield(1) end)\n"
    "    end)()\n"
    "  end,\n"
    "  function()\n"
    "    local t = {}\n"
    "    for k, v in ('k1=v1, k2=v2'):gmatch('(%w+)=(%w+)') do\n"
    "      t[#t + 1] = k .. v\n"
    "    end\n"
    "    return concat(t, ';')\n"
    "  end,\n"
    "  function()\n"
    "    return gsub('abc', '%w', function(c)\n"
    "      return (gsub(c, '.', '%0%0'))\n"
    "    end)\n"
    "  end,\n"
    "}\n"
    "for _, f in ipairs(misc) do cases[#cases + 1] = f end\n";

/* Hand-written cases: {subject, pattern, init, replacement, max n}; a nil
 * init, replacement or max n takes the default. */
static const char corpus[] =
    "local rep = string.rep\n"
    "local t = {\n"
    /* plain bytes, anchors, empty patterns and subjects, init */
    "  {'hello world', 'o'}, {'hello world', 'o', 6}, {'hello world', 'l+'},\n"
    "  {'hello world', '^h'}, {'hello world', '^w'}, {'hello world', 'd$'},\n"
    "  {'hello world', 'o$'}, {'hello', ''}, {'', ''}, {'', 'a'},\n"
    "  {'', '^$'}, {'', '$'}, {'', '^'}, {'abc', '^'}, {'abc', '$'},\n"
    "  {'abc', '^$'}, {'abc', 'c$', 3}, {'abc', '^b', 2}, {'a$b', 'a$b'},\n"
    "  {'a$', '$$'}, {'a^b', 'a^b'}, {'^a^a', '^a'}, {'^a^a', '^^a'},\n"
    "  {'hello', 'l', -2}, {'hello', 'l', -100}, {'hello', 'l', 0},\n"
    "  {'hello', '', 6}, {'hello', '', 7}, {'hello', '', 100},\n"
    "  {'hello', 'o', 5}, {'hello', '^l', 3}, {'hello', '$', 3},\n"
    "  {'hello', 'h', -5}, {'hello', 'h', -6}, {'hello', '', -1},\n"
    "  {'', '', 1}, {'', '', 2}, {'', '', -1}, {'abc', '', 4},\n"
    /* repetition */
    "  {'abc', '.-'}, {'abc', '.*'}, {'abc', 'a*'}, {'abc', 'x*'},\n"
    "  {'abc', 'b?'}, {'aaa', 'a-b'}, {'aaab', 'a-b'}, {'aaab', 'a-'},\n"
    "  {'aaab', 'a+'}, {'aaab', 'a+b'}, {'aaab', 'a*ab'}, {'aaab', 'a-ab'},\n"
    "  {'aaab', 'a?a?a?a?b'}, {'ab', 'a?b?c?'}, {'xyz', 'x?y?z?$'},\n"
    "  {'a+b', 'a+b'}, {'a+b', 'a%+b'}, {'a-b', 'a-b'}, {'a-b', 'a%-b'},\n"
    "  {'a*b', '[*]'}, {'?' .. '?', '%?+'}, {'a.b', '%.'}, {'a.b', '.'},\n"
    "  {'one  two   three', ' +'}, {'one  two', ' -'}, {'one two', ' *'},\n"
    "  {'abc', '*'}, {'abc', '+'}, {'abc', '-'}, {'abc', '?'},\n"
    "  {'**', '**'}, {'a', 'a**'},\n"
    /* classes */
    "  {'Hello, World! 123 \\t\\n\\1x', '%a+'}, {'Hello, World! 123', '%A+'},\n"
    "  {'ab\\1\\31\\127cd', '%c+'}, {'ab\\1cd', '%C+'}, {'x42y7', '%d+'},\n"
    "  {'x42y7', '%D+'}, {'a b\\tc', '%g+'}, {'a b\\tc', '%G+'},\n"
    "  {'aBcD', '%l+'}, {'aBcD', '%L+'}, {'a,b;c!', '%p+'},\n"
    "  {'a,b;c!', '%P+'}, {'a \\t\\n\\v\\f\\rb', '%s+'},\n"
    "  {'a \\t\\nb', '%S+'}, {'aBcD', '%u+'}, {'aBcD', '%U+'},\n"
    "  {'a_1 b2', '%w+'}, {'a_1 b2', '%W+'}, {'0xDEADbeefg', '%x+'},\n"
    "  {'0xDEADbeefg', '%X+'}, {'zzz', '%z'}, {'a\\0b', '%z'},\n"
    "  {'%%', '%%+'}, {'a]b', '%]'}, {'a[b', '%['},\n"
    /* sets */
    "  {'education', '[aeiou]+'}, {'education', '[^aeiou]+'},\n"
    "  {'hex: 1f9A', '[a-f]+'}, {'hex: 1f9A', '[%dA-F]+'},\n"
    "  {'a-b c', '[%a-]+'}, {'a-b c', '[-a]+'}, {'a-b c', '[a-]+'},\n"
    "  {'a]b', '[]]'}, {'a]b', '[^]]+'}, {'a]b', '[]a]+'},\n"
    "  {'a%b', '[%%]'}, {'a]b', '[%]]'}, {'x^y', '[\\\\^]'},\n"
    "  {'x^y', '[x^]+'}, {'x^y', '[^^]+'}, {'a b\\tc', '[^%s]+'},\n"
    "  {'a-z', '[a-a]'}, {'b', '[c-a]'}, {'a-c', '[%a-c]+'},\n"
    "  {'x.y', '[.]'}, {'x.y', '[%.]'}, {'(a)', '[()]'},\n"
    "  {'abc', '[a-c-e]+'}, {'-', '[a-c-e]'}, {'[', '[[]'},\n"
    "  {'abc', '[]'}, {'abc', '[^]'}, {'abc', '[^'}, {'abc', '[a'},\n"
    "  {'abc', '[a%'}, {'abc', '[a%]'}, {'abc', 'x['}, {'', '['},\n"
    /* captures */
    "  {'hello', '(h)(e)(l)'}, {'hello', '(h(e)(l))'},\n"
    "  {'hello', '()ll()'}, {'hello', '(l)(l)'}, {'hello', '((l)l)'},\n"
    "  {'key = value', '(%w+)%s*=%s*(%w+)'}, {'hello', '()'},\n"
    "  {'hello', '(())'}, {'  abc  ', '^%s*(.-)%s*$'},\n"
    "  {'hello world from Lua', '(%w+) (%w+)'}, {'abc', '(a*(.)%w(%s*))'},\n"
    "  {'abc', '(a)(b)(c)', nil, '%3%2%1'}, {'abc', '(a)', nil, '%2'},\n"
    "  {'abc', 'a', nil, '%1%1'}, {'abc', '()b', nil, '%1'},\n"
    "  {'abc', '(', nil, 'x'}, {'abc', 'x(', nil, 'x'}, {'abc', 'a)'},\n"
    "  {'abc', '(a))'}, {'abc', '(()'}, {'abc', ')'}, {'abc', '()a('},\n"
    "  {'aaa', '(a)*'}, {'aaa', '(a*)'}, {'aaa', '(a-)'},\n"
    "  {rep('a', 32), rep('(a)', 32)}, {rep('a', 33), rep('(a)', 33)},\n"
    "  {'', rep('()', 32)}, {'', rep('()', 33)},\n"
    /* back-references */
    "  {'hello', '(l)%1'}, {'abcabc', '(abc)%1'}, {'abcab', '(abc)%1'},\n"
    "  {'x = \"a\\'b\" y', '([\"\\'])(.-)%1'}, {'aa', '()%1'},\n"
    "  {'abab', '(a)(b)%1%2'}, {'abba', '(a)(b)%2%1'}, {'a', '%1'},\n"
    "  {'a', '(a%1)'}, {'a', '%0'}, {'aa', '(a)%2'}, {'aa', '(a)%9'},\n"
    "  {'aXa', '(.)X%1'}, {'', '()%1'}, {'aaaa', '(a*)%1'},\n"
    "  {'abcabc', '(a(b)c)%2'},\n"
    /* %b */
    "  {'(foo(bar))baz', '%b()'}, {'if (a and (b or c)) then', '%b()'},\n"
    "  {'[[x]]', '%b[]'}, {'((', '%b()'}, {'aXbXc', '%bXX'},\n"
    "  {'abc', '%b'}, {'abc', '%ba'}, {'', '%b()'}, {')(', '%b()'},\n"
    "  {'(a)(b)', '%b()+'}, {'(a)(b)', '(%b())'}, {'<<>>', '%b<>%b<>'},\n"
    "  {'a\\0b\\0', '%b\\0\\0'}, {'f(x) g(y)', '%w%b()'},\n"
    /* %f */
    "  {'THE (quick) fox', '%f[%a]%a+'}, {'hello', '%f[%a]'},\n"
    "  {'hello', '%f[%A]'}, {'hello', '%f[%z]'}, {'hello', '%f[\\0]'},\n"
    "  {'', '%f[%a]'}, {'', '%f[\\0]'}, {'', '%f[^\\0]'},\n"
    "  {'a', '%f[^%a]'}, {'a', '%f[^\\0]'}, {'abc', '%f'},\n"
    "  {'abc', '%fa'}, {'abc', '%f[a'}, {'abc', '%f[a]', 2},\n"
    "  {'THE (quick) fox', '%f[%a]%a+%f[%A]'}, {'x1 22 x3', '%f[%d]%d+'},\n"
    "  {'aa', '%f[a]a'}, {'ab', '%f[b]b'},\n"
    /* malformed patterns and limits */
    "  {'abc', '%'}, {'abc', 'a%'}, {'', '%'}, {'abc', '[%'},\n"
    "  {rep('a', 300), rep('a?', 300)}, {rep('a', 150), rep('a?', 150)},\n"
    "  {rep('a', 300), rep('a*', 199)}, {rep('a', 50), rep('(a', 30)},\n"
    "  {'abc', rep('(', 33) .. rep(')', 33)},\n"
    "  {rep('a', 5), rep('%f[a]', 250)}, {rep('a', 200), rep('a', 200)},\n"
    "  {rep('a', 250), rep('a?', 198)}, {rep('a', 250), rep('a?', 199)},\n"
    "  {rep('a', 250), rep('a?', 200)}, {'ab', rep('a-', 199) .. 'b'},\n"
    "  {'ab', rep('a-', 200) .. 'b'}, {'ab', rep('a*', 300) .. 'b'},\n"
    /* replacement strings and max n */
    "  {'abc', '%w', nil, '%%'}, {'abc', '%w', nil, '%'},\n"
    "  {'abc', '%w', nil, 'x%'}, {'abc', '%w', nil, '%z'},\n"
    "  {'abc', '%w', nil, '%0%0'}, {'abc', 'b', nil, '%1'},\n"
    "  {'abc', 'b', nil, '%2'}, {'abc', 'b', nil, '\\0%0\\0'},\n"
    "  {'abc', 'b', nil, '%\\0'}, {'abc', '%w', nil, '-', 0},\n"
    "  {'abc', '%w', nil, '-', 2}, {'abc', '%w', nil, '-', -1},\n"
    "  {'abc', '', nil, '-'}, {'abc', '', nil, '-', 2},\n"
    "  {'abc', '^', nil, '-'}, {'abc', '$', nil, '-'},\n"
    "  {'abc', '^%w', nil, '-'}, {'abc', '^x', nil, '-'},\n"
    "  {'a b c', '%s', nil, '%%s'}, {'abc', '()', nil, '%1'},\n"
    "  {'abc', '.()', nil, '%1'}, {'abc', '(b)', nil, '%1%2'},\n"
    /* empty matches right after a match */
    "  {'abc', '%w*'}, {'abc', 'x*'}, {'a,b,,c', '[^,]*'},\n"
    "  {'hello world', '%a*'}, {'abc', '()'}, {'a;;b;', '[^;]*'},\n"
    "  {'abc', 'b*'}, {'aaa', 'a-'}, {'ab', '%f[%w]%w*'},\n"
    "  {'hello', 'l*', 3}, {'a  b', ' -'},\n"
    /* 8-bit bytes, \\0 in subjects and patterns */
    "  {'caf\\233 \\255\\128', '[\\128-\\255]+'}, {'\\255', '%a'},\n"
    "  {'\\233t\\233', '\\233'}, {'a\\0b\\0c', '\\0'},\n"
    "  {'a\\0b\\0c', '[\\0]'},\n"
    "  {'a\\0b\\0c', '[^\\0]+'}, {'a\\0b', 'a\\0b'}, {'a\\0b', '%c'},\n"
    "  {'a\\0.b', '\\0.'}, {'a\\0.b', '\\0%.'}, {'a\\0b', 'a.b'},\n"
    "  {'a\\0b', '(.)%z?'}, {'\\0\\0', '\\0*'}, {'x\\0', '\\0$'},\n"
    "  {'\\200\\201\\202', '[\\200-\\201]+'}, {'\\255\\0', '[\\0-\\255]+'},\n"
    "  {'\\0', '[%z]'}, {'\\0', '%Z'}, {'\\200', '%A'}, {'\\200', '%W'},\n"
    /* longer subjects, so that checks run in the middle of matches */
    "  {rep('a', 1500), 'a-b'}, {rep('ab', 1500), '(ab)-c'},\n"
    "  {rep('a', 200), '.-.-b'}, {rep('x', 3000) .. 'y', '%f[y]y'},\n"
    "  {rep('(', 500) .. rep(')', 499), '%b()'},\n"
    "  {rep('abc', 700), '(abc)%1%1%1%1%1%1%1%1z'},\n"
    "  {rep('word ', 600), '%a+', nil, '(%0)'},\n"
    "  {rep('x', 2500), 'x', nil, '', 2000},\n"
    "}\n"
    "for _, c in ipairs(t) do add_case(c[1], c[2], c[3], c[4], c[5]) end\n";

/* Building blocks of the generated cases. */
static const char *const gen_items[] = {
    "a",      "b",     ".",     "%a",    "%d",  "%s",    "%w",   "%A",
    "[ab]",   "[^a]",  "[a-c]", "[%d_]", "%(",  "%.",    "$",    "^",
    "(",      ")",     "()",    "%1",    "%2",  "%b()",  "%bab", "%f[%w]",
    "%f[%W]", "%f[a]", "%",     "[",     "\\0", "\\233", "-",    "]",
    "[]]",    "%%",    "[^%s]", "x"};
static const char *const gen_quantifiers[] = {"", "", "", "*", "+", "-", "?"};
static const char gen_subject_bytes[] = "aab b1()_.x";
static const char *const gen_inits[] = {"nil", "1", "2",  "-1", "-3",
                                        "0",   "5", "20", "-20"};
static const char *const gen_repls[] = {
    "nil", "'%1'", "'%2'", "'[%1|%0]'", "'%%'", "'x%'", "'%x'", "''", "'-'"};

static uint64_t gen_seed = 0x5eed1234abcdULL;

static unsigned gen_next(unsigned n) {
  gen_seed ^= gen_seed << 13;
  gen_seed ^= gen_seed >> 7;
  gen_seed ^= gen_seed << 17;
  return (unsigned)(gen_seed % n);
}

#define COUNT(a) (sizeof(a) / sizeof(a)[0])

/* Writes one random case as a Lua add_case(...) call into out. Patterns
 * stay short and subjects small, so that even a pattern that backtracks
 * badly finishes at once. */
static void gen_case(char *out, size_t size) {
  char pat[128] = "", subj[32] = "";
  if (gen_next(5) == 0)
    strcat(pat, "^");
  for (unsigned i = 0, n = 1 + gen_next(5); i < n; i++) {
    strcat(pat, gen_items[gen_next(COUNT(gen_items))]);
    strcat(pat, gen_quantifiers[gen_next(COUNT(gen_quantifiers))]);
  }
  if (gen_next(6) == 0)
    strcat(pat, "$");
  for (unsigned i = 0, n = gen_next(11); i < n; i++) {
    char c = gen_subject_bytes[gen_next(sizeof gen_subject_bytes - 1)];
    strncat(subj, &c, 1);
  }
  snprintf(out, size, "add_case('%s', '%s', %s, %s, %s)", subj, pat,
           gen_inits[gen_next(COUNT(gen_inits))],
           gen_repls[gen_next(COUNT(gen_repls))],
           gen_next(4) == 0 ? "2" : "nil");
}

#define GENERATED_CASES 2000

/* Stack: -> (). Calls the global function name(i) in L and returns its
 * string result, which stays on the stack until the caller pops it. */
static const char *call_case(lua_State *L, const char *name, int i,
                             size_t *len) {
  lua_getglobal(L, name);
  lua_pushinteger(L, i);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK)
    MT__FAIL("%s(%d): %s", name, i, lua_tostring(L, -1));
  return lua_tolstring(L, -1, len);
}

TEST(pattern_matches_lua_string_library) {
  lua_State *ref = new_state(0, NULL);
  lua_State *mt = new_state(1, count_check);
  lua_State *both[] = {ref, mt};
  checks = 0;
  max_checks = 0;
  for (int k = 0; k < 2; k++) {
    run_lua(both[k], driver);
    run_lua(both[k], corpus);
  }
  char chunk[256];
  for (int i = 0; i < GENERATED_CASES; i++) {
    gen_case(chunk, sizeof chunk);
    run_lua(ref, chunk);
    run_lua(mt, chunk);
  }

  lua_getglobal(ref, "cases");
  int n = (int)lua_rawlen(ref, -1);
  lua_pop(ref, 1);
  ASSERT_TRUE(n > GENERATED_CASES + 300);
  for (int i = 1; i <= n; i++) {
    size_t ln, lm;
    const char *want = call_case(ref, "run_case", i, &ln);
    const char *got = call_case(mt, "run_case", i, &lm);
    if (ln != lm || memcmp(want, got, ln) != 0) {
      const char *what = call_case(ref, "describe", i, &ln);
      MT__FAIL("case %d %s:\nLua:\n%s\nbounded:\n%s", i, what, want, got);
    }
    lua_settop(ref, 0);
    lua_settop(mt, 0);
  }
  /* The longer cases ran through checks; they must not change results. */
  ASSERT_TRUE(checks > 0);
  if (getenv("MT_PATTERN_VERBOSE") != NULL)
    printf("%d cases agree with Lua's string library (%ld checks)\n", n,
           checks);
  lua_close(ref);
  lua_close(mt);
}

/* ---- stopping runaway matches ------------------------------------------ */

/* Each of these would run for hours in Lua's own library. */
static const char *const runaway[] = {
    "return pcall(string.find, s, '.-.-.-.-b')",
    "return pcall(string.match, s, '(.-)(.-)(.-)(.-)b')",
    "return pcall(string.gsub, s, '.-.-.-.-b', '')",
    "return pcall(function() for _ in s:gmatch('.-.-.-.-b') do end end)",
    "return pcall(string.find, s, 'a*a*a*a*a*b')",
    "return pcall(string.find, s, '(a*)%1%1%1b')",
};

/* Stack: -> (). Runs a runaway chunk with s = ("a"):rep(200000) and
 * returns its error message; the pcall must have failed. */
static const char *run_runaway(lua_State *L, const char *code) {
  static char msg[128];
  lua_settop(L, 0);
  if (luaL_loadbufferx(L, code, strlen(code), "=runaway", "t") != LUA_OK)
    MT__FAIL("Lua: %s", lua_tostring(L, -1));
  if (lua_pcall(L, 0, 2, 0) != LUA_OK)
    MT__FAIL("%s: unprotected error %s", code, lua_tostring(L, -1));
  if (lua_toboolean(L, 1))
    MT__FAIL("%s: finished instead of being stopped", code);
  snprintf(msg, sizeof msg, "%s", lua_tostring(L, 2));
  lua_settop(L, 0);
  return msg;
}

TEST(pattern_deadline_stops_runaway_match) {
  lua_State *L = new_state(1, deadline_check);
  run_lua(L, "s = string.rep('a', 200000)");
  for (size_t i = 0; i < COUNT(runaway); i++) {
    checks = 0;
    double start = now();
    deadline = start + 0.2;
    ASSERT_EQ_STR(run_runaway(L, runaway[i]), "deadline passed");
    double took = now() - start;
    /* Stopped by the deadline, not by anything else, and soon after it:
     * checks come every few microseconds (the margin is for sanitizers
     * and busy machines). */
    if (took < 0.2 || took > 0.5)
      MT__FAIL("%s: stopped after %.3f s", runaway[i], took);
    ASSERT_TRUE(checks > 100);
    if (getenv("MT_PATTERN_VERBOSE") != NULL)
      printf("%-70s stopped after %.4f s, %ld checks\n", runaway[i], took,
             checks);
  }
  /* Unwinding left the state sound: the functions still work. */
  run_lua(L, "local a, b = s:find('a+b?$', 199990)\n"
             "assert(a == 199990 and b == 200000)\n"
             "assert(select(2, ('x y z'):gsub('%a', '%0%0')) == 3)\n");
  lua_close(L);
}

TEST(pattern_check_count_stops_runaway_match) {
  lua_State *L = new_state(1, count_check);
  run_lua(L, "s = string.rep('a', 200000)");
  for (size_t i = 0; i < COUNT(runaway); i++) {
    checks = 0;
    max_checks = 50;
    ASSERT_EQ_STR(run_runaway(L, runaway[i]), "too many steps");
    ASSERT_EQ_INT(checks, 50);
  }
  /* A check that returns lets the match go on to its end. */
  checks = 0;
  max_checks = 0;
  run_lua(L, "local s = ('a'):rep(5000)\n"
             "assert(s:find('.-b') == nil)\n"
             "assert(s:find('a-$') == 1)\n");
  ASSERT_TRUE(checks > 100);
  lua_close(L);
}

/* ---- gsub with functions, gmatch --------------------------------------- */

/* Callbacks into Lua from gsub, and gmatch's iterator, through the bounded
 * versions: with a check (which must be seen to run) and without one. */
TEST(pattern_gsub_function_and_gmatch) {
  static const char *const script[] = {
      "local t = {}\n"
      "for k, v in ('a=1, b=22, c=333'):gmatch('(%w+)=(%w+)') do\n"
      "  t[#t + 1] = k .. ':' .. v\n"
      "end\n"
      "assert(table.concat(t, ' ') == 'a:1 b:22 c:333')\n"
      "t = {}\n"
      "for w, at in string.gmatch('one two  three', '(%a+)()', 4) do\n"
      "  t[#t + 1] = w .. '@' .. at\n"
      "end\n"
      "assert(table.concat(t, ',') == 'two@8,three@15')\n"
      /* one call of the iterator long enough to be checked */
      "local n = 0\n"
      "for w in (('.'):rep(3000) .. 'x y'):gmatch('%a') do n = n + 1 end\n"
      "assert(n == 2)\n",

      "local s, n = string.gsub('hello world', '%w+', function(w)\n"
      "  return w:upper()\n"
      "end)\n"
      "assert(s == 'HELLO WORLD' and n == 2)\n"
      "s, n = ('a1b22'):gsub('(%a)(%d+)', function(a, d)\n"
      "  if a == 'b' then return nil end\n"
      "  return d .. a\n"
      "end)\n"
      "assert(s == '1ab22' and n == 2)\n"
      "local text = ('word '):rep(2000)\n"
      "s, n = text:gsub('%a+', function(w) return #w end)\n"
      "assert(n == 2000 and s == ('4 '):rep(2000))\n"
      /* a function that itself matches, and raises through gsub */
      "s = ('ab'):gsub('%a', function(c) return (c:gsub('.', '%0%0')) end)\n"
      "assert(s == 'aabb')\n"
      "local ok, err = pcall(string.gsub, 'x', 'x', function()\n"
      "  error('inner', 0)\n"
      "end)\n"
      "assert(not ok and err == 'inner')\n",
  };
  for (int with_check = 0; with_check < 2; with_check++) {
    lua_State *L = new_state(1, with_check ? count_check : NULL);
    for (size_t i = 0; i < COUNT(script); i++) {
      checks = 0;
      max_checks = 0;
      run_lua(L, script[i]);
      if (with_check)
        ASSERT_TRUE(checks > 0);
      else
        ASSERT_EQ_INT(checks, 0);
    }
    lua_close(L);
  }
}
