/* text.h: what text and numbers from a client must look like: well-formed UTF-8, the
 * rule of user-chosen strings (api.md, "Text fields"), plain decimal integers. No state;
 * safe from any thread. */
#ifndef CHATD_TEXT_H
#define CHATD_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int  utf8_valid(const char *s, size_t n);

/* User-chosen text (names, bodies, client ids; the rule per field is in api.md, "Text
 * fields"): well-formed UTF-8 without C0 controls, DEL, C1 controls (U+0080..U+009F)
 * or the bidirectional embeddings, overrides and isolates (U+202A..U+202E,
 * U+2066..U+2069), which make text display as something it is not (a name shown
 * reversed, a line that seems to end elsewhere). Without TEXT_ALLOW_LINES the line
 * separators U+2028 and U+2029 are refused as control characters too; with it, tab,
 * line feed and those two pass, for message bodies. */
enum text_fault { TEXT_OK = 0, TEXT_NOT_UTF8, TEXT_CONTROL, TEXT_BIDI };
#define TEXT_ALLOW_LINES 1u
enum text_fault text_check(const char *s, size_t n, unsigned flags);
/* The answer for each fault, naming the field: an array indexed by enum text_fault.
 * `controls` ends the control-character message ("" or " other than tab and newline"). */
#define TEXT_FAULT_MESSAGES(field, controls) {                                        \
    [TEXT_OK] = NULL,                                                                  \
    [TEXT_NOT_UTF8] = field " is not valid UTF-8",                                     \
    [TEXT_CONTROL] = field " must not hold control characters" controls,               \
    [TEXT_BIDI] = field " must not hold bidirectional embeddings, overrides or "       \
                  "isolates (U+202A..U+202E, U+2066..U+2069)" }

/* The largest integer a JSON number (a double) holds exactly: ids and seqs go up to it,
 * in bodies (json_get_i64) as in paths and query strings (decimal_parse). */
#define JSON_INT_MAX 9007199254740992LL
/* s[0..n) as a plain decimal integer: digits only (no sign, space, point or exponent),
 * at least one, no leading zero (but "0" itself), value at most JSON_INT_MAX. 0, or
 * -EINVAL. */
int decimal_parse(const char *s, size_t n, int64_t *out);

#endif
