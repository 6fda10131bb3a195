/* container.c - the Avro container framing walk of container.h, following
 * the Avro specification's "Object Container Files" section. */
#include "container.h"

#include <string.h>

typedef struct ctWalk {
    FILE *fp;
    uint64_t pos, size;
    char *error;
    size_t errlen;
} ctWalk;

static bool ctFail(ctWalk *w, const char *what) {
    snprintf(w->error, w->errlen, "%s at byte %llu", what, (unsigned long long)w->pos);
    return false;
}

/* A zig-zag varint long; false at end of file or past 10 bytes. */
static bool ctLong(ctWalk *w, int64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        int c = getc(w->fp);
        if (c == EOF) return false;
        w->pos++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return true;
        }
    }
    return false;
}

static bool ctRead(ctWalk *w, void *buf, size_t n) {
    if (fread(buf, 1, n, w->fp) != n) return false;
    w->pos += n;
    return true;
}

static bool ctSkip(ctWalk *w, uint64_t n) {
    if (n > w->size - w->pos || fseeko(w->fp, (off_t)(w->pos + n), SEEK_SET) != 0) return false;
    w->pos += n;
    return true;
}

/* A length-prefixed string or bytes of the metadata map; the value is kept
 * (cut to vlen) only when buf is given. *at (may be NULL) receives where the
 * value starts and its length. */
static bool ctBytes(ctWalk *w, char *buf, size_t vlen, uint64_t at[2]) {
    int64_t len;
    if (!ctLong(w, &len) || len < 0 || (uint64_t)len > w->size - w->pos) return false;
    if (at) at[0] = w->pos, at[1] = (uint64_t)len;
    if (buf == NULL || (uint64_t)len >= vlen) return ctSkip(w, (uint64_t)len);
    if (!ctRead(w, buf, (size_t)len)) return false;
    buf[len] = '\0';
    return true;
}

static bool ctHeader(ctWalk *w, rpContainerInfo *info) {
    unsigned char magic[4];
    if (!ctRead(w, magic, 4) || memcmp(magic, "Obj\x01", 4) != 0)
        return ctFail(w, "not an Avro container file (no \"Obj\\x01\" magic)");
    bool has_schema = false;
    strcpy(info->codec, "null");
    for (;;) {
        int64_t count, ignored;
        if (!ctLong(w, &count)) return ctFail(w, "header metadata truncated");
        if (count == 0) break;
        /* A negative count is followed by the block's size in bytes; its
         * magnitude is the count (INT64_MIN has none: no file holds that many). */
        if (count < 0) {
            if (count == INT64_MIN) return ctFail(w, "header metadata count out of range");
            if (!ctLong(w, &ignored)) return ctFail(w, "header metadata truncated");
            count = -count;
        }
        for (int64_t i = 0; i < count; i++) {
            char key[32];
            uint64_t at[2];
            if (!ctBytes(w, key, sizeof(key), NULL)) return ctFail(w, "header metadata key damaged");
            bool is_codec = strcmp(key, "avro.codec") == 0, is_schema = strcmp(key, "avro.schema") == 0;
            if (!ctBytes(w, is_codec ? info->codec : NULL, sizeof(info->codec), at))
                return ctFail(w, "header metadata value damaged");
            if (is_schema) has_schema = true, info->schema_offset = at[0], info->schema_len = at[1];
        }
    }
    if (!has_schema) return ctFail(w, "header has no avro.schema");
    if (!ctRead(w, info->sync, RP_SYNC_LEN)) return ctFail(w, "header sync marker truncated");
    return true;
}

/* One block's framing, from w->pos; false (with the error) when it is not
 * intact, w->pos then back at its start. */
static bool ctBlock(ctWalk *w, const unsigned char sync[RP_SYNC_LEN], rpContainerBlock *b) {
    int64_t count, bytes;
    unsigned char marker[RP_SYNC_LEN];
    uint64_t start = w->pos;
    b->offset = start;
    if (!ctLong(w, &count) || !ctLong(w, &bytes)) return w->pos = start, ctFail(w, "block header truncated");
    if (count <= 0 || bytes <= 0) return w->pos = start, ctFail(w, "block with a negative or zero count or size");
    if ((uint64_t)bytes > w->size - w->pos || (uint64_t)bytes + RP_SYNC_LEN > w->size - w->pos)
        return w->pos = start, ctFail(w, "block runs past the end of the file (truncated or corrupt size)");
    b->count = (uint64_t)count;
    b->data = w->pos;
    b->bytes = (uint64_t)bytes;
    if (!ctSkip(w, (uint64_t)bytes) || !ctRead(w, marker, RP_SYNC_LEN) || memcmp(marker, sync, RP_SYNC_LEN) != 0)
        return w->pos = start, ctFail(w, "block not followed by the file's sync marker (corrupt block)");
    b->next = w->pos;
    return true;
}

bool rpContainerCheck(FILE *fp, rpContainerInfo *info) {
    memset(info, 0, sizeof(*info));
    ctWalk w = {fp, 0, 0, info->error, sizeof(info->error)};
    if (fseeko(fp, 0, SEEK_END) != 0 || ftello(fp) < 0) return ctFail(&w, "cannot seek");
    w.size = info->file_bytes = (uint64_t)ftello(fp);
    rewind(fp);
    if (!ctHeader(&w, info)) return false;
    info->header_bytes = w.pos;
    for (info->intact_bytes = w.pos; w.pos < w.size; info->intact_bytes = w.pos) {
        rpContainerBlock b;
        if (!ctBlock(&w, info->sync, &b)) {
            info->damaged = true;
            break;
        }
        info->blocks++;
        info->records += b.count;
        if (b.bytes > info->max_block) info->max_block = b.bytes;
    }
    return true;
}

bool rpContainerBlockAt(FILE *fp, const rpContainerInfo *info, uint64_t offset, uint64_t end, rpContainerBlock *out,
                        char *errbuf, size_t errlen) {
    ctWalk w = {fp, offset, end, errbuf, errlen};
    if (offset > end || fseeko(fp, (off_t)offset, SEEK_SET) != 0) return ctFail(&w, "cannot seek to the block");
    if (!ctBlock(&w, info->sync, out)) return false;
    if (fseeko(fp, (off_t)out->data, SEEK_SET) != 0) return w.pos = out->data, ctFail(&w, "cannot seek to the block");
    return true;
}
