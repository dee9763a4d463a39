/* settings.h: how a part of chatd declares the chatd.conf keys it reads (in the spirit
 * of nginx's ngx_command_t). Each key is one row: section, key, kind, range, default,
 * one line of help, and where its value lives in the owner's struct. Core's config.c
 * parses and validates every section from these rows; `chatd --help-config` prints
 * them. Core declares its own keys in src/core/config_keys.c; a module puts its table
 * in its descriptor (module.h), and core fills the module's struct before init. */
#ifndef CHATD_SETTINGS_H
#define CHATD_SETTINGS_H

#include <stddef.h>

enum setting_kind {
    SETTING_INT,      /* int, inclusive range min..max */
    SETTING_DOUBLE,   /* double, finite, inclusive range min..max */
    SETTING_BOOL,     /* int: yes = 1, no = 0 */
    SETTING_ENUM,     /* int: one of names[] */
    SETTING_STRING,   /* char[size]: at most size - 1 bytes */
    SETTING_PATH,     /* char[size]: a file or directory name */
    SETTING_FILE,     /* char[size]: a file chatd reads; check-config opens it if set
                       * and reads it as the start will (check_file) */
    SETTING_DIR,      /* char[size]: a directory chatd reads; when set it must exist,
                       * at check-config and at the start */
    SETTING_LISTEN,   /* "host:port" or "[v6]:port": char[size] host, int port */
};

struct setting_name {
    const char *name;
    int value;
};

struct setting {
    const char *section, *key;
    enum setting_kind kind;
    size_t offset, size;      /* where the value lives in the owner's struct */
    size_t port_offset;       /* SETTING_LISTEN: where the port (an int) lives */
    double min, max;          /* SETTING_INT, SETTING_DOUBLE */
    const struct setting_name *names;  /* SETTING_ENUM: ends with { NULL, 0 } */
    /* Strings, paths: a further rule; returns the reason a value breaks it, or NULL.
     * Checked before the length. */
    const char *(*check)(const char *value);
    /* SETTING_FILE: reads the file as the start will (a key parsed, certificates
     * loaded), so that check-config fails where the start would. 0, or a negative
     * errno with "path: reason" in err. NULL: opening it is the check. */
    int (*check_file)(const char *path, char *err, size_t errlen);
    const char *def;          /* the default, written as in chatd.conf */
    const char *help;         /* one line */
};

/* The keys one owner reads, and the size of the struct they fill. */
struct setting_table {
    const struct setting *rows;
    size_t count;
    size_t size;
};

#define SETTING_FIELD_(type, field) \
    .offset = offsetof(type, field), .size = sizeof(((type *)0)->field)

#define SETTING_INT_ROW(sec, k, type, field, lo, hi, d, h) \
    { .section = sec, .key = k, .kind = SETTING_INT, SETTING_FIELD_(type, field), \
      .min = lo, .max = hi, .def = d, .help = h }
#define SETTING_DOUBLE_ROW(sec, k, type, field, lo, hi, d, h) \
    { .section = sec, .key = k, .kind = SETTING_DOUBLE, SETTING_FIELD_(type, field), \
      .min = lo, .max = hi, .def = d, .help = h }
#define SETTING_BOOL_ROW(sec, k, type, field, d, h) \
    { .section = sec, .key = k, .kind = SETTING_BOOL, SETTING_FIELD_(type, field), \
      .def = d, .help = h }
#define SETTING_ENUM_ROW(sec, k, type, field, nm, d, h) \
    { .section = sec, .key = k, .kind = SETTING_ENUM, SETTING_FIELD_(type, field), \
      .names = nm, .def = d, .help = h }
/* kind: SETTING_STRING, SETTING_PATH or SETTING_FILE; chk may be NULL. */
#define SETTING_TEXT_ROW(sec, k, kd, type, field, chk, d, h) \
    { .section = sec, .key = k, .kind = kd, SETTING_FIELD_(type, field), \
      .check = chk, .def = d, .help = h }

/* A SETTING_FILE row whose content is checked by chkfile (see check_file). */
#define SETTING_FILE_ROW(sec, k, type, field, chkfile, d, h) \
    { .section = sec, .key = k, .kind = SETTING_FILE, SETTING_FIELD_(type, field), \
      .check_file = chkfile, .def = d, .help = h }

#define SETTING_TABLE(rows_, type) \
    { .rows = rows_, .count = sizeof(rows_) / sizeof((rows_)[0]), .size = sizeof(type) }

/* Sets the value of s in the struct at base from text v. Returns NULL, or the reason
 * v is refused ("expected an integer"; written to buf when it names a range), leaving
 * the old value. */
const char *setting_apply(const struct setting *s, void *base, const char *v, char *buf,
                          size_t buflen);
/* The kind and range in words, as --help-config prints it ("integer, 1 to 100"). */
void setting_describe(const struct setting *s, char *buf, size_t buflen);
/* A check for keys that something outside reads and an empty value would break. */
const char *setting_check_nonempty(const char *v);

#endif
