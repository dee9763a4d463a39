/* text.c: checks of text and numbers a client sends (see text.h): well-formed UTF-8,
 * the text rule of user-chosen strings, plain decimal integers. */
#include <errno.h>

#include "chatd/text.h"

/* --- UTF-8 and text ---------------------------------------------------------------- */

/* Table 3-7 of the Unicode standard: the second byte's range depends on the first,
 * which rules out overlongs, surrogates and code points past U+10FFFF. */
int utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int len;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c == 0xE0) { len = 3; lo = 0xA0; }
        else if (c >= 0xE1 && c <= 0xEC) len = 3;
        else if (c == 0xED) { len = 3; hi = 0x9F; }
        else if (c >= 0xEE && c <= 0xEF) len = 3;
        else if (c == 0xF0) { len = 4; lo = 0x90; }
        else if (c >= 0xF1 && c <= 0xF3) len = 4;
        else if (c == 0xF4) { len = 4; hi = 0x8F; }
        else return 0;
        if (n - i < (size_t)len)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (int k = 2; k < len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return 0;
        i += (size_t)len;
    }
    return 1;
}

/* A C0 control or DEL, unless flags let tab and line feed through. */
static int is_c0(unsigned char c, unsigned flags)
{
    if ((flags & TEXT_ALLOW_LINES) && (c == '\t' || c == '\n'))
        return 0;
    return c < 0x20 || c == 0x7f;
}

/* U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR (E2 80 A8, E2 80 A9) break a
 * line as a line feed does (Unicode's UAX #14): where a newline is refused, so are they. */
static int is_line_separator(const unsigned char *s, unsigned flags)
{
    return !(flags & TEXT_ALLOW_LINES) && s[0] == 0xE2 && s[1] == 0x80 &&
           (s[2] == 0xA8 || s[2] == 0xA9);
}

/* On well-formed UTF-8, so a lead byte's continuation bytes are there: U+0080..U+009F
 * is C2 80..C2 9F; U+202A..U+202E is E2 80 AA..AE; U+2066..U+2069 is E2 81 A6..A9. */
enum text_fault text_check(const char *str, size_t n, unsigned flags)
{
    const unsigned char *s = (const unsigned char *)str;

    if (!utf8_valid(str, n))
        return TEXT_NOT_UTF8;
    for (size_t i = 0; i < n; i++) {
        if (is_c0(s[i], flags) || (s[i] == 0xC2 && s[i + 1] <= 0x9F) ||
            is_line_separator(s + i, flags))
            return TEXT_CONTROL;
        if (s[i] == 0xE2 && ((s[i + 1] == 0x80 && s[i + 2] >= 0xAA && s[i + 2] <= 0xAE) ||
                             (s[i + 1] == 0x81 && s[i + 2] >= 0xA6 && s[i + 2] <= 0xA9)))
            return TEXT_BIDI;
    }
    return TEXT_OK;
}

/* --- decimal integers ------------------------------------------------------------- */

int decimal_parse(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;
    /* No leading zero: one value has one spelling, so "01" is never a second key for
     * the room or user that "1" names. */
    if (n == 0 || (s[0] == '0' && n > 1))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (JSON_INT_MAX - (s[i] - '0')) / 10)
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}
