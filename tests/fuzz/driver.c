/* driver.c - replays fuzz inputs without the fuzzing engine, for `make test`.
 *
 * Built with a harness (tests/fuzz/fuzz_<target>.c) as <BUILD>/tests/fuzz_<target>,
 * it calls LLVMFuzzerTestOneInput() once on every file of the directories
 * given, by default tests/fuzz/corpus/<target> and tests/fuzz/regress/<target>
 * (run from the repository root, as tests/run.sh does). A failing input
 * aborts (or a sanitizer stops the process), after the line naming it; the
 * summary lines are cmocka's, which tests/run.sh counts.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static int cmpName(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static unsigned char *readFile(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) return NULL;
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    for (size_t got; buf != NULL && (got = fread(buf + n, 1, cap - n, fp)) > 0;) {
        n += got;
        if (n == cap) {
            unsigned char *more = realloc(buf, cap *= 2);
            if (more == NULL) free(buf);
            buf = more;
        }
    }
    bool bad = buf == NULL || ferror(fp);
    fclose(fp);
    if (bad) return free(buf), NULL;
    *len = n;
    return buf;
}

/* Replays every regular file of dir in name order; a missing directory is
 * empty. Returns the number replayed, -1 if a file cannot be read. */
static int replayDir(const char *dir) {
    DIR *d = opendir(dir);
    if (d == NULL) return errno == ENOENT ? 0 : (fprintf(stderr, "%s: %s\n", dir, strerror(errno)), -1);
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        if (n == cap && (names = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof(*names))) == NULL) abort();
        if ((names[n++] = strdup(e->d_name)) == NULL) abort();
    }
    closedir(d);
    if (n) qsort(names, n, sizeof(*names), cmpName);
    int done = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        size_t len = 0;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unsigned char *buf = readFile(path, &len);
        if (buf == NULL) {
            fprintf(stderr, "%s: cannot read: %s\n", path, strerror(errno));
            done = -1;
            break;
        }
        printf("[ RUN      ] %s\n", path);
        fflush(stdout);
        LLVMFuzzerTestOneInput(buf, len);
        printf("[       OK ] %s\n", path);
        free(buf);
        done++;
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return done;
}

int main(int argc, char **argv) {
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    const char *target = strncmp(base, "fuzz_", 5) == 0 ? base + 5 : base;
    char corpus[512], regress[512];
    snprintf(corpus, sizeof(corpus), "tests/fuzz/corpus/%s", target);
    snprintf(regress, sizeof(regress), "tests/fuzz/regress/%s", target);
    char *defaults[] = {corpus, regress};
    char **dirs = argc > 1 ? argv + 1 : defaults;
    int ndirs = argc > 1 ? argc - 1 : 2;

    printf("[==========] Replaying the %s fuzz inputs.\n", target);
    int total = 0;
    for (int i = 0; i < ndirs; i++) {
        int n = replayDir(dirs[i]);
        if (n < 0) {
            printf("[  FAILED  ] 1 test(s), listed below:\n[  FAILED  ] %s\n", dirs[i]);
            return 1;
        }
        total += n;
    }
    if (total == 0) {
        /* An empty corpus would make the test pass on nothing. */
        printf("[  FAILED  ] 1 test(s), listed below:\n[  FAILED  ] no input in %s\n", corpus);
        return 1;
    }
    printf("[==========] %d input(s) replayed.\n[  PASSED  ] %d test(s).\n", total, total);
    return 0;
}
