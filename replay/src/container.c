/* container.c - the Avro container framing walk of container.h, following
 * the Avro specification's "Object Container Files" section. */
#include "container.h"

#include <string.h>

#define RP_SYNC_LEN 16

typedef struct ctWalk {
    FILE *fp;
    uint64_t pos, size;
    rpContainerInfo *info;
} ctWalk;

static bool ctFail(ctWalk *w, const char *what) {
    snprintf(w->info->error, sizeof(w->info->error), "%s at byte %llu", what, (unsigned long long)w->pos);
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
 * (cut to vlen) only when buf is given. */
static bool ctBytes(ctWalk *w, char *buf, size_t vlen) {
    int64_t len;
    if (!ctLong(w, &len) || len < 0 || (uint64_t)len > w->size - w->pos) return false;
    if (buf == NULL || (uint64_t)len >= vlen) return ctSkip(w, (uint64_t)len);
    if (!ctRead(w, buf, (size_t)len)) return false;
    buf[len] = '\0';
    return true;
}

static bool ctHeader(ctWalk *w, unsigned char sync[RP_SYNC_LEN]) {
    unsigned char magic[4];
    if (!ctRead(w, magic, 4) || memcmp(magic, "Obj\x01", 4) != 0)
        return ctFail(w, "not an Avro container file (no \"Obj\\x01\" magic)");
    bool has_schema = false;
    strcpy(w->info->codec, "null");
    for (;;) {
        int64_t count, ignored;
        if (!ctLong(w, &count)) return ctFail(w, "header metadata truncated");
        if (count == 0) break;
        if (count < 0 && (count = -count, !ctLong(w, &ignored))) return ctFail(w, "header metadata truncated");
        for (int64_t i = 0; i < count; i++) {
            char key[32];
            if (!ctBytes(w, key, sizeof(key))) return ctFail(w, "header metadata key damaged");
            bool is_codec = strcmp(key, "avro.codec") == 0;
            has_schema |= strcmp(key, "avro.schema") == 0;
            if (!ctBytes(w, is_codec ? w->info->codec : NULL, sizeof(w->info->codec)))
                return ctFail(w, "header metadata value damaged");
        }
    }
    if (!has_schema) return ctFail(w, "header has no avro.schema");
    if (!ctRead(w, sync, RP_SYNC_LEN)) return ctFail(w, "header sync marker truncated");
    return true;
}

/* One block's framing; false (with info->error) when it is not intact. */
static bool ctBlock(ctWalk *w, const unsigned char sync[RP_SYNC_LEN]) {
    int64_t count, bytes;
    unsigned char marker[RP_SYNC_LEN];
    uint64_t start = w->pos;
    if (!ctLong(w, &count) || !ctLong(w, &bytes)) return w->pos = start, ctFail(w, "block header truncated");
    if (count <= 0 || bytes <= 0) return w->pos = start, ctFail(w, "block with a negative or zero count or size");
    if ((uint64_t)bytes > w->size - w->pos || (uint64_t)bytes + RP_SYNC_LEN > w->size - w->pos)
        return w->pos = start, ctFail(w, "block runs past the end of the file (truncated or corrupt size)");
    if (!ctSkip(w, (uint64_t)bytes) || !ctRead(w, marker, RP_SYNC_LEN) || memcmp(marker, sync, RP_SYNC_LEN) != 0)
        return w->pos = start, ctFail(w, "block not followed by the file's sync marker (corrupt block)");
    w->info->blocks++;
    w->info->records += (uint64_t)count;
    if ((uint64_t)bytes > w->info->max_block) w->info->max_block = (uint64_t)bytes;
    return true;
}

bool rpContainerCheck(FILE *fp, rpContainerInfo *info) {
    memset(info, 0, sizeof(*info));
    ctWalk w = {fp, 0, 0, info};
    if (fseeko(fp, 0, SEEK_END) != 0 || ftello(fp) < 0) return ctFail(&w, "cannot seek");
    w.size = info->file_bytes = (uint64_t)ftello(fp);
    rewind(fp);
    unsigned char sync[RP_SYNC_LEN];
    if (!ctHeader(&w, sync)) return false;
    for (info->intact_bytes = w.pos; w.pos < w.size; info->intact_bytes = w.pos)
        if (!ctBlock(&w, sync)) {
            info->damaged = true;
            break;
        }
    return true;
}
