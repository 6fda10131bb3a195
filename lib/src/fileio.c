/* fileio.c - reads a whole file into a growing buffer (fileio.h). */
#include "ds/fileio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *dsFileRead(const char *path, size_t max, size_t *len, char *errbuf, size_t errlen) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    const char *why = "out of memory";
    if (!f) {
        if (errbuf && errlen) snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (cap - n < 4096) {
            char *grown = realloc(buf, cap = cap ? 2 * cap : 8192);
            if (!grown) goto failed;
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
        if (n > max) {
            why = "larger than allowed";
            goto failed;
        }
    }
    if (ferror(f)) {
        why = strerror(errno);
        goto failed;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
failed:
    if (errbuf && errlen) {
        if (n > max)
            snprintf(errbuf, errlen, "%s: more than %zu bytes: not the file meant (a device, a wrong path?)", path, max);
        else
            snprintf(errbuf, errlen, "%s: %s", path, why);
    }
    fclose(f);
    free(buf);
    return NULL;
}
