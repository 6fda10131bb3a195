/* filereader.c - one archive file, block by block, after its framing check. */
#include "filereader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "container.h"

/* A schema text larger than this is no decision schema. */
#define FR_MAX_SCHEMA (1u << 20)

struct rpFileReader {
    dsCodec *codec;
    FILE *fp; /* the file; ours */
    rpContainerInfo info;
    size_t max_block;
    bool deflate;
    avro_schema_t schema; /* the writer's, from the header; ours */
    avro_value_t writer;  /* a value of the file's version, reused per record */
    bool has_writer;
    int version;
    char *raw, *inflated; /* the current block's bytes as stored, and inflated; ours */
    size_t raw_cap, inflated_cap;
    avro_reader_t mem; /* over the current block's records; ours */
    rpContainerBlock block;
    uint64_t next_block; /* offset of the next block to read */
    uint64_t left;       /* records of the current block not yet read */
    uint64_t position;
    char path[1024];
};

static bool frGrow(char **buf, size_t *cap, size_t want) {
    if (want <= *cap) return true;
    char *grown = realloc(*buf, want);
    if (grown == NULL) return false;
    *buf = grown, *cap = want;
    return true;
}

/* The writer schema from the header's avro.schema value. */
/* Which version the header's schema is, matched in Avro's Parsing
 * Canonical Form without handing the file's text to avro-c (whose parser
 * leaks on some invalid schemas); the reader then uses that version's own
 * schema. */
static bool frSchema(rpFileReader *r, char *errbuf, size_t errlen) {
    char *text = NULL, why[256];
    size_t len = (size_t)r->info.schema_len;
    bool ok = false;
    if (r->info.schema_len > FR_MAX_SCHEMA)
        snprintf(errbuf, errlen, "%s: the header's schema is larger than %u bytes", r->path, FR_MAX_SCHEMA);
    else if ((text = malloc(len + 1)) == NULL)
        snprintf(errbuf, errlen, "%s: out of memory", r->path);
    else if (fseeko(r->fp, (off_t)r->info.schema_offset, SEEK_SET) != 0 || fread(text, 1, len, r->fp) != len)
        snprintf(errbuf, errlen, "%s: cannot read the header's schema: %s", r->path, strerror(errno));
    else if ((r->version = dsCodecVersionOfSchemaText(r->codec, text, len, why, sizeof(why))) < 0)
        snprintf(errbuf, errlen, "%s: the header's schema is invalid: %s", r->path, why);
    else if (r->version == 0)
        snprintf(errbuf, errlen, "%s: written with a schema that is none of the known decision schema versions",
                 r->path);
    else
        ok = (r->schema = avro_schema_incref(dsCodecSchema(r->codec, r->version))) != NULL;
    free(text);
    return ok;
}

rpFileReader *rpFileReaderOpen(dsCodec *codec, const char *path, char *errbuf, size_t errlen) {
    rpFileReader *r = calloc(1, sizeof(*r));
    if (r == NULL) return snprintf(errbuf, errlen, "%s: out of memory", path), NULL;
    r->codec = codec;
    r->max_block = RP_MAX_BLOCK_DEFAULT;
    snprintf(r->path, sizeof(r->path), "%s", path);
    if ((r->fp = fopen(path, "rb")) == NULL) {
        snprintf(errbuf, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto failed;
    }
    if (!rpContainerCheck(r->fp, &r->info)) {
        snprintf(errbuf, errlen, "%s: %s", path, r->info.error);
        goto failed;
    }
    r->deflate = strcmp(r->info.codec, "deflate") == 0;
    if (!r->deflate && strcmp(r->info.codec, "null") != 0) {
        snprintf(errbuf, errlen, "%s: codec %s is not supported (the archiver writes deflate; null is read too)",
                 path, r->info.codec);
        goto failed;
    }
    if (!frSchema(r, errbuf, errlen)) goto failed;
    if (!dsCodecNewVersionValue(codec, r->version, &r->writer)) {
        snprintf(errbuf, errlen, "%s: cannot make a value of version %d: %s", path, r->version, avro_strerror());
        goto failed;
    }
    r->has_writer = true;
    if ((r->mem = avro_reader_memory("", 0)) == NULL) {
        snprintf(errbuf, errlen, "%s: out of memory", path);
        goto failed;
    }
    r->next_block = r->info.header_bytes;
    return r;

failed:
    rpFileReaderClose(r);
    return NULL;
}

void rpFileReaderSetMaxBlock(rpFileReader *r, size_t max_block) {
    r->max_block = max_block;
}

void rpFileReaderClose(rpFileReader *r) {
    if (r == NULL) return;
    if (r->has_writer) avro_value_decref(&r->writer);
    if (r->schema) avro_schema_decref(r->schema);
    if (r->mem) avro_reader_free(r->mem);
    if (r->fp) fclose(r->fp);
    free(r->raw);
    free(r->inflated);
    free(r);
}

/* Inflates the raw deflate (RFC 1951) data of the current block into
 * r->inflated, refusing it past max_block bytes; *len receives the size. */
static bool frInflate(rpFileReader *r, size_t *len, char *why, size_t whylen) {
    z_stream z = {0};
    if (inflateInit2(&z, -15) != Z_OK) return snprintf(why, whylen, "cannot start zlib"), false;
    z.next_in = (Bytef *)r->raw;
    z.avail_in = (uInt)r->block.bytes;
    size_t out = 0;
    int rc = Z_OK;
    bool ok = false;
    while (rc == Z_OK) {
        if (out == r->inflated_cap) {
            size_t want = r->inflated_cap ? 2 * r->inflated_cap : 4 * (size_t)r->block.bytes + 65536;
            if (want > r->max_block) want = r->max_block;
            if (want <= out) {
                snprintf(why, whylen, "inflates to more than the %zu-byte cap on a block (max-block-size)",
                         r->max_block);
                goto done;
            }
            if (!frGrow(&r->inflated, &r->inflated_cap, want)) {
                snprintf(why, whylen, "out of memory");
                goto done;
            }
        }
        z.next_out = (Bytef *)r->inflated + out;
        z.avail_out = (uInt)(r->inflated_cap - out);
        rc = inflate(&z, Z_NO_FLUSH);
        out = r->inflated_cap - z.avail_out;
    }
    if (rc != Z_STREAM_END)
        snprintf(why, whylen, "deflate data damaged (%s)", rc == Z_BUF_ERROR ? "ends early" : z.msg ? z.msg : "zlib");
    else if (z.avail_in != 0)
        snprintf(why, whylen, "%u stray bytes after the deflate data", z.avail_in);
    else
        ok = true, *len = out;
done:
    inflateEnd(&z);
    return ok;
}

/* The block's bytes must hold exactly the records it declares, every
 * length and count inside them within those bytes (the codec's walk, the
 * one the wire decoder uses: avro-c would trust them). Leaves the memory
 * reader at the first record. */
static bool frCheckCount(rpFileReader *r, const char *data, size_t len, char *why, size_t whylen) {
    char detail[400];
    if (r->block.count > INT64_MAX ||
        !dsCodecCheckBinary(r->schema, data, len, (int64_t)r->block.count, detail, sizeof(detail))) {
        snprintf(why, whylen, "declares %llu records: %s", (unsigned long long)r->block.count, detail);
        return false;
    }
    avro_reader_memory_set_source(r->mem, data, (int64_t)len);
    return true;
}

/* Reads, inflates and checks the next block; 0 when there is none. */
static int frLoadBlock(rpFileReader *r, char *errbuf, size_t errlen) {
    char why[512];
    if (r->next_block >= r->info.intact_bytes) return 0;
    if (!rpContainerBlockAt(r->fp, &r->info, r->next_block, r->info.intact_bytes, &r->block, why, sizeof(why))) {
        snprintf(errbuf, errlen, "%s: %s", r->path, why);
        return -1;
    }
    size_t len = (size_t)r->block.bytes;
    const char *data;
    if (r->block.bytes > r->max_block) {
        snprintf(why, sizeof(why), "%llu bytes, more than the %zu-byte cap on a block (max-block-size)",
                 (unsigned long long)r->block.bytes, r->max_block);
        goto refused;
    }
    errno = 0;
    if (!frGrow(&r->raw, &r->raw_cap, len) || fread(r->raw, 1, len, r->fp) != len) {
        snprintf(why, sizeof(why), "cannot read it: %s", errno ? strerror(errno) : "out of memory");
        goto refused;
    }
    data = r->raw;
    if (r->deflate) {
        if (!frInflate(r, &len, why, sizeof(why))) goto refused;
        data = r->inflated;
    }
    if (!frCheckCount(r, data, len, why, sizeof(why))) goto refused;
    r->left = r->block.count;
    r->next_block = r->block.next;
    return 1;

refused:
    snprintf(errbuf, errlen, "%s: block at byte %llu: %s", r->path, (unsigned long long)r->block.offset, why);
    return -1;
}

int rpFileReaderNext(rpFileReader *r, avro_value_t *out, char *errbuf, size_t errlen) {
    char why[512];
    if (r->left == 0) {
        int rc = frLoadBlock(r, errbuf, errlen);
        if (rc <= 0) return rc;
    }
    /* A file of the current version reads straight into out: a resolution
     * would only copy it (and cost a third of the read). */
    avro_value_t *into = r->version == dsCodecCurrentVersion(r->codec) ? out : &r->writer;
    avro_value_reset(into);
    if (avro_value_read(r->mem, into) != 0) {
        snprintf(errbuf, errlen, "%s: record %llu (block at byte %llu) does not decode: %s", r->path,
                 (unsigned long long)r->position, (unsigned long long)r->block.offset, avro_strerror());
        return -1;
    }
    /* dsCodecResolve() resets out, so a record is never half the previous one. */
    if (into != out && !dsCodecResolve(r->codec, &r->writer, out, why, sizeof(why))) {
        snprintf(errbuf, errlen, "%s: record %llu (block at byte %llu) does not resolve to the current schema: %s",
                 r->path, (unsigned long long)r->position, (unsigned long long)r->block.offset, why);
        return -1;
    }
    r->left--;
    r->position++;
    return 1;
}

uint64_t rpFileReaderPosition(const rpFileReader *r) { return r->position; }
uint64_t rpFileReaderBlockOffset(const rpFileReader *r) { return r->block.offset; }

uint64_t rpFileReaderBytes(const rpFileReader *r) {
    off_t pos = ftello(r->fp);
    return pos < 0 ? 0 : (uint64_t)pos;
}

const char *rpFileReaderDamage(const rpFileReader *r) {
    return r->info.damaged ? r->info.error : NULL;
}
