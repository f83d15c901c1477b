/*
 * Regular expressions for `pattern` and `patternProperties`. JSON Schema
 * specifies ECMA-262 syntax; we run them on PCRE2, whose Perl dialect is
 * close enough once a few differences are bridged here: the compile flags
 * below, and long Unicode property names rewritten to the short ones.
 *
 * Compilation happens once, when the schema is compiled; the pcre2_code
 * then belongs to the node (compile.c frees it). Matching needs a
 * pcre2_match_data, which the caller owns so that one validation run can
 * reuse a single one for every match.
 */
#include <stdio.h>
#include <string.h>

#include "schema/internal.h"

/* ECMA-262 spells Unicode properties by their long names (\p{Letter},
 * \p{Script=Greek}); this PCRE2 knows only the short ones, so the pattern
 * is rewritten into out before compiling. Script names (Greek, Latin...)
 * are the same in both and pass through with their "Script=" cut off. */
static void ecma_to_pcre(const char *src, size_t n, mt_buf_t *out) {
  static const char *const names[][2] = {
      {"Letter", "L"},
      {"Cased_Letter", "L&"},
      {"Uppercase_Letter", "Lu"},
      {"Lowercase_Letter", "Ll"},
      {"Titlecase_Letter", "Lt"},
      {"Modifier_Letter", "Lm"},
      {"Other_Letter", "Lo"},
      {"Mark", "M"},
      {"Nonspacing_Mark", "Mn"},
      {"Spacing_Mark", "Mc"},
      {"Enclosing_Mark", "Me"},
      {"Number", "N"},
      {"Decimal_Number", "Nd"},
      {"Letter_Number", "Nl"},
      {"Other_Number", "No"},
      {"Punctuation", "P"},
      {"Symbol", "S"},
      {"Separator", "Z"},
      {"Space_Separator", "Zs"},
      {"Other", "C"},
      {"Control", "Cc"},
  };
  for (size_t i = 0; i < n; i++) {
    const char *close;
    if (src[i] != '\\' || i + 2 >= n ||
        (src[i + 1] != 'p' && src[i + 1] != 'P') || src[i + 2] != '{' ||
        (close = memchr(src + i + 3, '}', n - i - 3)) == NULL) {
      /* Copy an escape's two characters together, so that "\\p{" (an
       * escaped backslash, then "p{") is not taken for a property. */
      if (src[i] == '\\' && i + 1 < n)
        mt_buf_putc(out, src[i++]);
      mt_buf_putc(out, src[i]);
      continue;
    }
    const char *name = src + i + 3;
    size_t len = (size_t)(close - name);
    const char *eq = memchr(name, '=', len);
    if (eq != NULL) { /* gc=X, General_Category=X, sc=X, Script=X */
      len -= (size_t)(eq + 1 - name);
      name = eq + 1;
    }
    const char *mapped = NULL;
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
      if (strlen(names[k][0]) == len && memcmp(names[k][0], name, len) == 0)
        mapped = names[k][1];
    mt_buf_printf(out, "\\%c{", src[i + 1]);
    if (mapped != NULL)
      mt_buf_puts(out, mapped);
    else
      mt_buf_append(out, name, len);
    mt_buf_putc(out, '}');
    i = (size_t)(close - src);
  }
}

/* Returns 0, MT_ENOMEM, or MT_ECONFIG with msg set to "<reason> at offset
 * <n>" (the offset is into the rewritten pattern, which differs from src
 * only after a long property name). */
int mt__schema_regex_compile(const char *src, size_t n, pcre2_code **out,
                             char *msg, size_t msgsize) {
  int code;
  PCRE2_SIZE off;
  mt_buf_t pat = MT_BUF_INIT;
  *out = NULL;
  ecma_to_pcre(src, n, &pat);
  if (pat.data == NULL && n > 0)
    return MT_ENOMEM;
  /* PCRE2_UTF: patterns and strings are UTF-8 and "." is one code point,
   * as ECMA-262's u flag has it. No PCRE2_UCP: ECMA-262's \d, \w and \b are
   * ASCII-only even in Unicode mode. PCRE2_ALT_BSUX: \uXXXX is an escape
   * (Perl reads it as an error). */
  pcre2_code *re =
      pcre2_compile((PCRE2_SPTR)(pat.data ? pat.data : ""), pat.len,
                    PCRE2_UTF | PCRE2_ALT_BSUX, &code, &off, NULL);
  mt_buf_free(&pat);
  if (re == NULL) {
    PCRE2_UCHAR reason[256];
    pcre2_get_error_message(code, reason, sizeof(reason));
    snprintf(msg, msgsize, "%s at offset %zu", (const char *)reason,
             (size_t)off);
    return MT_ECONFIG;
  }
  /* JIT is an optimisation only: where it is unavailable (no JIT support
   * built in, or memory that may not be executable) pcre2_match() falls
   * back to the interpreter, so the result is ignored. */
  pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
  *out = re;
  return 0;
}

int mt__schema_regex_match(const pcre2_code *re, pcre2_match_data *md,
                           const char *s, size_t n) {
  /* PCRE2_NO_UTF_CHECK: every string reaching here (values and member
   * names) came out of the JSON parser, which has validated its UTF-8, and
   * rechecking would cost a pass over the string per pattern. Patterns are
   * not anchored: as ECMA-262's test() does, a match anywhere counts. Any
   * error, such as PCRE2's match limit on a pathological pattern, counts
   * as no match. */
  return pcre2_match(re, (PCRE2_SPTR)s, n, 0, PCRE2_NO_UTF_CHECK, md, NULL) >=
         0;
}
