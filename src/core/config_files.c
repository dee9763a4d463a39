/* config_files.c: the files and directories that keys name. check-config promises that
 * the start will not stop on the configuration, so it reads what the start will read:
 * every file key's file (through its row's check_file when it has one: a signing key
 * parsed, certificates loaded), every directory key's directory, and the directory of
 * the log file. The start checks the directories itself (config_check_dirs): a
 * mistyped one would otherwise only show as answers that are missing later. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chatd/config.h"
#include "chatd/settings.h"

struct file_check {
    const char *conf;                /* the config file's name, for the message */
    int files;                       /* 1: files too, 0: directories only */
    char *err;
    size_t errlen;
};

static int refuse(struct file_check *fc, const struct setting *s, const char *what, int rc)
{
    if (fc->conf)
        snprintf(fc->err, fc->errlen, "%s: %s: %s", fc->conf, s->key, what);
    else
        snprintf(fc->err, fc->errlen, "%s: %s", s->key, what);
    return rc;
}

static int check_dir(struct file_check *fc, const struct setting *s, const char *path)
{
    struct stat st;
    char what[CFG_PATH_MAX + 64];
    int rc = 0;

    if (stat(path, &st) < 0)
        rc = -errno;
    else if (!S_ISDIR(st.st_mode))
        rc = -ENOTDIR;
    if (rc == 0)
        return 0;
    snprintf(what, sizeof(what), "%s: %s", path, strerror(-rc));
    return refuse(fc, s, what, rc);
}

static int check_file(struct file_check *fc, const struct setting *s, const char *path)
{
    char what[CFG_PATH_MAX + 512];
    FILE *f = fopen(path, "r");
    int rc;

    if (!f) {
        rc = -errno;
        snprintf(what, sizeof(what), "%s: %s", path, strerror(-rc));
        return refuse(fc, s, what, rc);
    }
    fclose(f);
    if (s->check_file && (rc = s->check_file(path, what, sizeof(what))) < 0)
        return refuse(fc, s, what, rc);
    return 0;
}

static int check_key(const struct setting *s, void *values, void *arg)
{
    struct file_check *fc = arg;
    const char *path;

    if (s->kind != SETTING_DIR && (s->kind != SETTING_FILE || !fc->files))
        return 0;
    path = (const char *)values + s->offset;
    if (!path[0])
        return 0;
    return s->kind == SETTING_DIR ? check_dir(fc, s, path) : check_file(fc, s, path);
}

/* The log file is made by the start, so its directory must take a new file. */
static int check_log_dir(const char *conf, const struct chatd_config *cfg, char *err,
                         size_t errlen)
{
    char dir[sizeof(cfg->log.file)];
    char *slash;

    if (!cfg->log.file[0])
        return 0;
    snprintf(dir, sizeof(dir), "%s", cfg->log.file);
    if (!(slash = strrchr(dir, '/')))
        return 0;
    slash[slash == dir ? 1 : 0] = '\0';
    if (access(dir, W_OK | X_OK) < 0) {
        int rc = -errno;
        snprintf(err, errlen, "%s: file: %s: %s", conf, dir, strerror(-rc));
        return rc;
    }
    return 0;
}

int config_check_files(const struct chatd_config *cfg, const char *conf, char *err,
                       size_t errlen)
{
    struct file_check fc = { conf, 1, err, errlen };
    int rc = config_each_key(cfg, check_key, &fc);

    return rc < 0 ? rc : check_log_dir(conf, cfg, err, errlen);
}

int config_check_dirs(const struct chatd_config *cfg, char *err, size_t errlen)
{
    struct file_check fc = { NULL, 0, err, errlen };
    return config_each_key(cfg, check_key, &fc);
}
