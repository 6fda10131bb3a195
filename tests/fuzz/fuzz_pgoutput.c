/* fuzz_pgoutput.c - the replication stream parser as the stream processor
 * drives it: CopyData framing, then pgoutput messages against one relation
 * cache, then the columns it reads from an inserted row.
 *
 * Input: a sequence of CopyData payloads, each as a 2-byte big-endian length
 * and that many bytes (a short last one takes what is left), so a Relation
 * message and the Insert that needs it can be in one input. */
#include <string.h>

#include "fuzz.h"
#include "pgoutput.h"
#include "record.h"

/* The columns the stream processor reads, as procColumn() does. */
static void readColumns(const spRelation *rel, const spTuple *tup) {
    static const char *const names[] = {"decision_id", "doc", "recorded_at", "schema_version"};
    FUZZ_CHECK(rel != NULL && tup->ncols == rel->ncols, "a tuple of %d columns for a relation of %d", tup->ncols,
               rel ? rel->ncols : -1);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const spValue *v = spTupleGet(rel, tup, names[i]);
        if (v == NULL || v->kind != SP_VAL_TEXT) continue;
        char *text = strndup((const char *)v->data, v->len);
        FUZZ_SETUP(text != NULL, "strndup");
        int64_t ms;
        char err[256];
        if (strcmp(names[i], "recorded_at") == 0) (void)spPgTimestampParse(text, &ms, err, sizeof(err));
        free(text);
    }
}

static void onMessage(spRelCache *cache, spMsg *m, const uint8_t *buf, size_t len) {
    char err[512];
    if (!spPgoutputParse(cache, buf, len, m, err, sizeof(err))) return;
    FUZZ_CHECK(spMsgTypeName(m->type) != NULL, "type name");
    switch (m->type) {
    case SP_MSG_INSERT:
        readColumns(m->u.change.rel, &m->u.change.newtup);
        break;
    case SP_MSG_UPDATE:
        if (m->u.change.old_kind) readColumns(m->u.change.rel, &m->u.change.oldtup);
        readColumns(m->u.change.rel, &m->u.change.newtup);
        break;
    case SP_MSG_DELETE:
        readColumns(m->u.change.rel, &m->u.change.oldtup);
        break;
    case SP_MSG_RELATION:
        FUZZ_CHECK(spRelCacheGet(cache, m->u.relation->relid) == m->u.relation, "relation not cached");
        break;
    default:
        break;
    }
}

static void feed(const uint8_t *data, size_t size) {
    spRelCache *cache = spRelCacheNew();
    spMsg m = {0};
    FUZZ_SETUP(cache != NULL, "spRelCacheNew");
    while (size >= 2) {
        size_t n = (size_t)data[0] << 8 | data[1];
        data += 2, size -= 2;
        if (n > size) n = size;
        /* A copy of exactly n bytes, so ASan sees any read past the payload. */
        uint8_t *payload = malloc(n ? n : 1);
        FUZZ_SETUP(payload != NULL, "malloc");
        memcpy(payload, data, n);
        spCopyData cd;
        char err[256], lsn[24];
        if (spCopyDataParse(payload, n, &cd, err, sizeof(err))) {
            spLsnFormat(cd.wal_end, lsn);
            uint64_t back;
            FUZZ_CHECK(spLsnParse(lsn, &back) && back == cd.wal_end, "LSN %s does not parse back", lsn);
            if (cd.kind == SP_COPY_XLOGDATA) onMessage(cache, &m, cd.data, cd.len);
        }
        free(payload);
        data += n, size -= n;
    }
    spMsgFree(&m);
    spRelCacheFree(cache);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FUZZ_ENTRY;
    feed(data, size);
    return 0;
}
