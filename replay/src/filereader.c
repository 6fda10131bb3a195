/* filereader.c - one archive file through avro-c, after its framing check. */
#include "filereader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "container.h"

struct rpFileReader {
    dsCodec *codec;
    FILE *fp;   /* the file; ours */
    FILE *view; /* its intact prefix, what avro-c reads; ours: avro-c is told not to close it */
    avro_file_reader_t avro;
    avro_value_t writer; /* a value of the file's version, reused per record */
    bool has_writer;
    rpContainerInfo info;
    uint64_t position;
    int version;
    char path[1024];
};

/* A read-only FILE* over the first `left` bytes of another: avro-c reads
 * ahead (at open it reads the first block, after a block's last record the
 * next one), so it must never see past the intact blocks. */
typedef struct frLimit {
    FILE *fp;
    uint64_t left;
} frLimit;

static ssize_t frLimitRead(void *cookie, char *buf, size_t n) {
    frLimit *l = cookie;
    if (n > l->left) n = (size_t)l->left;
    size_t got = fread(buf, 1, n, l->fp);
    l->left -= got;
    return got == 0 && ferror(l->fp) ? -1 : (ssize_t)got;
}

static int frLimitClose(void *cookie) {
    free(cookie);
    return 0;
}

static FILE *frLimitOpen(FILE *fp, uint64_t len) {
    frLimit *l = malloc(sizeof(*l));
    if (l == NULL) return NULL;
    *l = (frLimit){fp, len};
    FILE *view = fopencookie(l, "rb", (cookie_io_functions_t){.read = frLimitRead, .close = frLimitClose});
    if (view == NULL) free(l);
    return view;
}

rpFileReader *rpFileReaderOpen(dsCodec *codec, const char *path, char *errbuf, size_t errlen) {
    rpFileReader *r = calloc(1, sizeof(*r));
    if (r == NULL) return snprintf(errbuf, errlen, "%s: out of memory", path), NULL;
    r->codec = codec;
    snprintf(r->path, sizeof(r->path), "%s", path);
    if ((r->fp = fopen(path, "rb")) == NULL) {
        snprintf(errbuf, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto failed;
    }
    if (!rpContainerCheck(r->fp, &r->info)) {
        snprintf(errbuf, errlen, "%s: %s", path, r->info.error);
        goto failed;
    }
    rewind(r->fp);
    if ((r->view = frLimitOpen(r->fp, r->info.intact_bytes)) == NULL) {
        snprintf(errbuf, errlen, "%s: out of memory", path);
        goto failed;
    }
    if (avro_file_reader_fp(r->view, path, 0, &r->avro) != 0) {
        snprintf(errbuf, errlen, "%s: avro-c cannot read the header: %s", path, avro_strerror());
        r->avro = NULL;
        goto failed;
    }
    avro_schema_t ws = avro_file_reader_get_writer_schema(r->avro); /* a new reference */
    r->version = dsCodecVersionOfSchema(codec, ws);
    if (r->version < 0) {
        const char *name = avro_schema_type_name(ws);
        snprintf(errbuf, errlen, "%s: written with a schema that is none of the known decision schema versions"
                 " (its type is named %s)", path, name ? name : "?");
    }
    avro_schema_decref(ws);
    if (r->version < 0) goto failed;
    if (!dsCodecNewVersionValue(codec, r->version, &r->writer)) {
        snprintf(errbuf, errlen, "%s: cannot make a value of version %d: %s", path, r->version, avro_strerror());
        goto failed;
    }
    r->has_writer = true;
    return r;

failed:
    rpFileReaderClose(r);
    return NULL;
}

void rpFileReaderClose(rpFileReader *r) {
    if (r == NULL) return;
    if (r->has_writer) avro_value_decref(&r->writer);
    if (r->avro) avro_file_reader_close(r->avro);
    if (r->view) fclose(r->view);
    if (r->fp) fclose(r->fp);
    free(r);
}

int rpFileReaderNext(rpFileReader *r, avro_value_t *out, char *errbuf, size_t errlen) {
    /* Stop at the intact prefix: avro-c must not meet the damaged block. */
    if (r->position >= r->info.records) return 0;
    char why[512];
    /* A file of the current version reads straight into out: a resolution
     * would only copy it (and cost a third of the read). */
    avro_value_t *into = r->version == dsCodecCurrentVersion(r->codec) ? out : &r->writer;
    avro_value_reset(into);
    if (avro_file_reader_read_value(r->avro, into) != 0) {
        snprintf(errbuf, errlen, "%s: record %llu does not decode: %s", r->path, (unsigned long long)r->position,
                 avro_strerror());
        return -1;
    }
    /* dsCodecResolve() resets out, so a record is never half the previous one. */
    if (into != out && !dsCodecResolve(r->codec, &r->writer, out, why, sizeof(why))) {
        snprintf(errbuf, errlen, "%s: record %llu does not resolve to the current schema: %s", r->path,
                 (unsigned long long)r->position, why);
        return -1;
    }
    r->position++;
    return 1;
}

uint64_t rpFileReaderPosition(const rpFileReader *r) { return r->position; }

uint64_t rpFileReaderBytes(const rpFileReader *r) {
    off_t pos = ftello(r->fp);
    return pos < 0 ? 0 : (uint64_t)pos;
}

const char *rpFileReaderDamage(const rpFileReader *r) {
    return r->info.damaged ? r->info.error : NULL;
}
