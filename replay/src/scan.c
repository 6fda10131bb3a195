/* scan.c - listing the archive files of a time range. */
#include "scan.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ds/timefmt.h"

#define HOUR_MS 3600000LL

typedef struct scWalk {
    const char *root;
    int64_t from_ms, to_ms;
    rpScanProblemFn *problem;
    void *opaque;
    rpScanList *out;
} scWalk;

static bool scProblem(scWalk *w, const char *path, const char *why) {
    return w->problem != NULL && w->problem(w->opaque, path, why);
}

/* "a/b" into out; false if it does not fit. */
static bool scJoin(char *out, size_t len, const char *a, const char *b) {
    int n = snprintf(out, len, "%s/%s", a, b);
    return n > 0 && (size_t)n < len;
}

/* "dt=YYYY-MM-DD" plus "hour=HH" (hour < 0: the day's first hour) to hours
 * since the epoch. */
static bool scHourOf(const char *dt, int hour, int64_t *out) {
    char ts[32];
    size_t n = strlen(dt);
    if (n != 13 || strncmp(dt, "dt=", 3) != 0 || hour > 23) return false;
    snprintf(ts, sizeof(ts), "%sT%02d:00:00Z", dt + 3, hour < 0 ? 0 : hour);
    int64_t ms;
    char err[64];
    if (!dsTimeParse(ts, strlen(ts), &ms, err, sizeof(err))) return false;
    *out = ms / HOUR_MS - (ms % HOUR_MS < 0);
    return true;
}

static bool scParseHourDir(const char *name, int *hour) {
    char extra;
    return strlen(name) == 7 && sscanf(name, "hour=%2d%c", hour, &extra) == 1 && *hour >= 0 && *hour <= 23;
}

bool rpScanParseRel(const char *rel, rpScanFile *out) {
    char dt[16], name[96];
    int hour, used = 0;
    if (sscanf(rel, "decisions/%15[^/]/hour=%2d/%95s%n", dt, &hour, name, &used) != 3 || rel[used] != '\0') return false;
    int32_t partition;
    int64_t offset;
    char tail[8];
    if (sscanf(name, "decisions+%" SCNd32 "+%" SCNd64 "%7s", &partition, &offset, tail) != 3 ||
        strcmp(tail, ".avro") != 0 || partition < 0 || offset < 0)
        return false;
    if (!scHourOf(dt, hour, &out->hour)) return false;
    out->partition = partition;
    out->offset = offset;
    return true;
}

int rpScanCompare(const rpScanFile *a, const rpScanFile *b) {
    if (a->hour != b->hour) return a->hour < b->hour ? -1 : 1;
    if (a->partition != b->partition) return a->partition < b->partition ? -1 : 1;
    if (a->offset != b->offset) return a->offset < b->offset ? -1 : 1;
    return 0;
}

static int scCompareQsort(const void *a, const void *b) {
    return rpScanCompare(a, b);
}

static bool scAdd(scWalk *w, const char *rel, const struct stat *st) {
    rpScanFile f = {0};
    size_t rootlen = strlen(w->root);
    if (!rpScanParseRel(rel, &f)) {
        char path[4096];
        const char *shown = scJoin(path, sizeof(path), w->root, rel) ? path : rel;
        return scProblem(w, shown, "name outside the archive layout (decisions+<partition>+<offset>.avro)");
    }
    if ((f.hour + 1) * HOUR_MS <= w->from_ms || f.hour * HOUR_MS >= w->to_ms) return true;
    if (w->out->n == w->out->cap) {
        size_t cap = w->out->cap ? 2 * w->out->cap : 64;
        rpScanFile *files = realloc(w->out->files, cap * sizeof(*files));
        if (files == NULL) return false;
        w->out->files = files;
        w->out->cap = cap;
    }
    if ((f.path = malloc(rootlen + strlen(rel) + 2)) == NULL) return false;
    sprintf(f.path, "%s/%s", w->root, rel);
    f.rel = f.path + rootlen + 1;
    f.bytes = (uint64_t)st->st_size;
    w->out->files[w->out->n++] = f;
    return true;
}

/* Lists one directory below the root (rel), calling visit per entry other
 * than "." and "..". */
static bool scList(scWalk *w, const char *rel, bool (*visit)(scWalk *, const char *, const char *, const struct stat *)) {
    char dir[2048];
    if (!scJoin(dir, sizeof(dir), w->root, rel)) return scProblem(w, rel, "path too long");
    DIR *d = opendir(dir);
    if (d == NULL) {
        char why[300];
        snprintf(why, sizeof(why), "cannot read the directory: %s", strerror(errno));
        return scProblem(w, dir, why);
    }
    bool ok = true;
    struct dirent *e;
    while (ok && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char path[4096];
        struct stat st;
        if (!scJoin(path, sizeof(path), dir, e->d_name)) {
            ok = scProblem(w, e->d_name, "path too long");
            continue;
        }
        if (stat(path, &st) != 0) {
            ok = scProblem(w, path, strerror(errno));
            continue;
        }
        ok = visit(w, rel, e->d_name, &st);
    }
    closedir(d);
    return ok;
}

static bool scVisitFile(scWalk *w, const char *rel, const char *name, const struct stat *st) {
    size_t n = strlen(name);
    if (name[0] == '.' && n > 4 && strcmp(name + n - 4, ".tmp") == 0) return true;
    char child[2048];
    if (!scJoin(child, sizeof(child), rel, name)) return scProblem(w, name, "path too long");
    if (!S_ISREG(st->st_mode)) return scProblem(w, child, "not a regular file");
    return scAdd(w, child, st);
}

static bool scVisitHour(scWalk *w, const char *rel, const char *name, const struct stat *st) {
    int hour;
    int64_t h;
    char child[2048];
    if (!scJoin(child, sizeof(child), rel, name)) return scProblem(w, name, "path too long");
    if (!S_ISDIR(st->st_mode) || !scParseHourDir(name, &hour) || !scHourOf(strrchr(rel, '/') + 1, hour, &h))
        return scProblem(w, child, "not an hour=HH directory of the archive layout");
    if ((h + 1) * HOUR_MS <= w->from_ms || h * HOUR_MS >= w->to_ms) return true;
    return scList(w, child, scVisitFile);
}

static bool scVisitDay(scWalk *w, const char *rel, const char *name, const struct stat *st) {
    int64_t h;
    char child[2048];
    if (!scJoin(child, sizeof(child), rel, name)) return scProblem(w, name, "path too long");
    if (!S_ISDIR(st->st_mode) || !scHourOf(name, -1, &h))
        return scProblem(w, child, "not a dt=YYYY-MM-DD directory of the archive layout");
    if ((h + 24) * HOUR_MS <= w->from_ms || h * HOUR_MS >= w->to_ms) return true;
    return scList(w, child, scVisitHour);
}

bool rpScanArchive(const char *root, int64_t from_ms, int64_t to_ms, rpScanProblemFn *problem, void *opaque,
                   rpScanList *out, char *errbuf, size_t errlen) {
    memset(out, 0, sizeof(*out));
    char dir[2048];
    snprintf(dir, sizeof(dir), "%s/decisions", root);
    struct stat st;
    if (stat(dir, &st) != 0) {
        snprintf(errbuf, errlen, "archive %s: %s", dir, strerror(errno));
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(errbuf, errlen, "archive %s: not a directory", dir);
        return false;
    }
    scWalk w = {root, from_ms, to_ms, problem, opaque, out};
    if (!scList(&w, "decisions", scVisitDay)) {
        snprintf(errbuf, errlen, "scan of %s stopped", dir);
        return false;
    }
    if (out->n > 1) qsort(out->files, out->n, sizeof(*out->files), scCompareQsort);
    return true;
}

void rpScanListFree(rpScanList *l) {
    for (size_t i = 0; i < l->n; i++) free(l->files[i].path);
    free(l->files);
    memset(l, 0, sizeof(*l));
}
