/* checkpoint.c - the replay checkpoint as a small JSON file. */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CP_FORMAT 1

static const struct {
    const char *name;
    size_t offset;
} cpCounts[] = {
    {"read", offsetof(rpCheckpoint, read)},       {"skipped", offsetof(rpCheckpoint, skipped)},
    {"written", offsetof(rpCheckpoint, written)}, {"present", offsetof(rpCheckpoint, present)},
    {"failed", offsetof(rpCheckpoint, failed)},   {"bad_files", offsetof(rpCheckpoint, bad_files)},
};
#define CP_NCOUNTS (sizeof(cpCounts) / sizeof(cpCounts[0]))

static uint64_t *cpCount(rpCheckpoint *cp, size_t i) {
    return (uint64_t *)((char *)cp + cpCounts[i].offset);
}

static bool cpCopy(char *dst, size_t len, json_t *s) {
    const char *v = json_string_value(s);
    return v != NULL && (size_t)snprintf(dst, len, "%s", v) < len;
}

static bool cpFromJson(json_t *j, rpCheckpoint *cp) {
    json_t *rec = json_object_get(j, "record"), *done = json_object_get(j, "done");
    if (json_integer_value(json_object_get(j, "format")) != CP_FORMAT || !json_is_integer(rec) ||
        json_integer_value(rec) < 0 || !json_is_boolean(done) ||
        !cpCopy(cp->selection, sizeof(cp->selection), json_object_get(j, "selection")) ||
        !cpCopy(cp->file, sizeof(cp->file), json_object_get(j, "file")))
        return false;
    cp->record = (uint64_t)json_integer_value(rec);
    cp->done = json_is_true(done);
    json_t *counts = json_object_get(j, "counts");
    for (size_t i = 0; i < CP_NCOUNTS; i++) {
        json_t *c = json_object_get(counts, cpCounts[i].name);
        if (!json_is_integer(c) || json_integer_value(c) < 0) return false;
        *cpCount(cp, i) = (uint64_t)json_integer_value(c);
    }
    return true;
}

bool rpCheckpointLoad(const char *path, rpCheckpoint *cp, bool *exists, char *errbuf, size_t errlen) {
    memset(cp, 0, sizeof(*cp));
    *exists = false;
    if (access(path, F_OK) != 0 && errno == ENOENT) return true;
    json_error_t jerr;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        snprintf(errbuf, errlen, "checkpoint %s: %s", path, jerr.text);
        return false;
    }
    bool ok = cpFromJson(j, cp);
    json_decref(j);
    if (!ok) snprintf(errbuf, errlen, "checkpoint %s: not a decision-replay checkpoint (format %d)", path, CP_FORMAT);
    *exists = ok;
    return ok;
}

static json_t *cpToJson(const rpCheckpoint *cp) {
    json_t *counts = json_object();
    for (size_t i = 0; i < CP_NCOUNTS; i++)
        json_object_set_new(counts, cpCounts[i].name, json_integer((json_int_t)*cpCount((rpCheckpoint *)cp, i)));
    return json_pack("{s:i, s:s, s:s, s:I, s:b, s:o}", "format", CP_FORMAT, "selection", cp->selection, "file",
                     cp->file, "record", (json_int_t)cp->record, "done", cp->done, "counts", counts);
}

static bool cpSync(const char *path, int flags) {
    int fd = open(path, flags);
    bool ok = fd >= 0 && fsync(fd) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

bool rpCheckpointSave(const char *path, const rpCheckpoint *cp, char *errbuf, size_t errlen) {
    char tmp[4096], dir[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    snprintf(dir, sizeof(dir), "%s", path);
    json_t *j = cpToJson(cp);
    bool ok = j != NULL && json_dump_file(j, tmp, JSON_COMPACT) == 0 && cpSync(tmp, O_RDONLY) &&
              rename(tmp, path) == 0 && cpSync(dirname(dir), O_RDONLY | O_DIRECTORY);
    if (!ok) {
        snprintf(errbuf, errlen, "checkpoint %s: cannot save: %s", path, errno ? strerror(errno) : "out of memory");
        unlink(tmp);
    }
    json_decref(j);
    return ok;
}
