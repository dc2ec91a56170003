/*
 * rulesdir.c - the file side of rules loading.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rulesdir.h"

#define RULESDIR_MAX_FILES 1024
#define RULESDIR_MAX_BYTES (4 * 1024 * 1024)

/* Read a whole file (bounded); NULL with err set. */
static char *rulesdir_read(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long size;

    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        goto done;
    }
    if (size > RULESDIR_MAX_BYTES) {
        snprintf(err, errlen, "%s: larger than %d bytes", path, RULESDIR_MAX_BYTES);
        goto done;
    }
    buf = malloc((size_t)size + 1);
    if (buf == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto done;
    }
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        free(buf);
        buf = NULL;
        goto done;
    }
    buf[size] = '\0';
    *len = (size_t)size;
done:
    fclose(f);
    return buf;
}

struct rules *rulesdir_load_files(char *const *files, size_t n, char *err, size_t errlen)
{
    struct rules_ws **ws = calloc(n ? n : 1, sizeof(*ws));
    size_t got = 0;

    if (ws == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (; got < n; got++) {
        size_t len = 0;
        char *text = rulesdir_read(files[got], &len, err, errlen);
        if (text == NULL)
            goto fail;
        ws[got] = rules_ws_parse(files[got], text, len, err, errlen);
        free(text);
        if (ws[got] == NULL)
            goto fail;
    }
    {
        struct rules *r = rules_new(ws, n, err, errlen);
        free(ws);
        return r;
    }
fail:
    for (size_t i = 0; i < got; i++)
        rules_ws_free(ws[i]);
    free(ws);
    return NULL;
}

static int rulesdir_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct rules *rulesdir_load(const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **files = NULL;
    size_t n = 0;
    struct rules *r = NULL;

    if (d == NULL) {
        snprintf(err, errlen, "rules_dir %s: %s", dir, strerror(errno));
        return NULL;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        char path[4096];
        struct stat st;
        char **nf;

        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0 || de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == RULESDIR_MAX_FILES) {
            snprintf(err, errlen, "rules_dir %s: more than %d rule files", dir, RULESDIR_MAX_FILES);
            goto done;
        }
        nf = realloc(files, (n + 1) * sizeof(*files));
        if (nf == NULL || (nf[n] = strdup(path)) == NULL) {
            files = nf != NULL ? nf : files;
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        files = nf;
        n++;
    }
    /* Sorted, so errors and duplicate-workspace messages are stable. */
    qsort(files, n, sizeof(*files), rulesdir_cmp);
    r = rulesdir_load_files(files, n, err, errlen);
done:
    closedir(d);
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
    return r;
}
