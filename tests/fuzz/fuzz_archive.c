/* fuzz_archive.c - an archive file as replay reads it: the container framing
 * check, then every intact record through the file reader (avro-c behind
 * the check), resolved to the current version and rendered as JSON.
 *
 * The input is the file. The framing check reads it from memory; the reader
 * opens it by path, an in-memory file (memfd) named through /proc/self/fd. */
#include <jansson.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "container.h"
#include "ds/codec.h"
#include "filereader.h"
#include "fuzz.h"

static dsCodec *codec;
static avro_value_t value;

/* Everything released at exit, so the leak check sees only real leaks. */
static void teardown(void) {
    avro_value_decref(&value);
    dsCodecFree(codec);
}

static void setup(void) {
    char err[256];
    FUZZ_SETUP((codec = dsCodecNew(err, sizeof(err))) != NULL, "dsCodecNew: %s", err);
    FUZZ_SETUP(dsCodecNewValue(codec, &value), "dsCodecNewValue");
    atexit(teardown);
}

static void readAll(const char *path, const rpContainerInfo *info) {
    char err[1024];
    rpFileReader *r = rpFileReaderOpen(codec, path, err, sizeof(err));
    if (r == NULL) return;
    int got;
    while ((got = rpFileReaderNext(r, &value, err, sizeof(err))) == 1) {
        json_t *doc = dsCodecToJson(codec, &value, 0);
        json_decref(doc);
    }
    /* The reader stops at the intact records the framing check counted. */
    FUZZ_CHECK(got == -1 || rpFileReaderPosition(r) == info->records, "read %llu records of %llu intact",
               (unsigned long long)rpFileReaderPosition(r), (unsigned long long)info->records);
    rpFileReaderClose(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FUZZ_ENTRY;
    if (codec == NULL) setup();
    rpContainerInfo info;
    FILE *fp = fmemopen((void *)data, size, "rb");
    if (fp == NULL) return 0; /* glibc refuses size 0 */
    bool header = rpContainerCheck(fp, &info);
    fclose(fp);
    if (!header) return 0;
    FUZZ_CHECK(info.intact_bytes <= size && info.file_bytes == size, "intact %llu of %llu bytes (input %zu)",
               (unsigned long long)info.intact_bytes, (unsigned long long)info.file_bytes, size);

    int fd = memfd_create("fuzz-archive", 0);
    FUZZ_SETUP(fd >= 0, "memfd_create");
    FUZZ_SETUP(write(fd, data, size) == (ssize_t)size, "write");
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    readAll(path, &info);
    close(fd);
    return 0;
}
