/* archive_gen.c - test archives from known documents. */
#include "archive_gen.h"

#include <stdio.h>
#include <string.h>

#include "archive.h"
#include "ds/codec.h"
#include "ds/timefmt.h"

size_t dtGenBlockSize = 1 << 20;

void dtGenId(int i, char out[37]) {
    snprintf(out, 37, "00000000-0000-4000-8000-%012d", i);
}

static json_t *genDoc(const json_t *fixture, int i, int64_t decided_ms) {
    static const char *const outcomes[] = {"APPROVED", "REJECTED", "REFERRED"};
    char id[37], cust[32], merch[32], purchase[32], decided[DS_TIME_BUFLEN];
    json_t *doc = json_deep_copy(fixture);
    if (doc == NULL || !dsTimeFormat(decided_ms, decided)) return json_decref(doc), NULL;
    dtGenId(i, id);
    snprintf(cust, sizeof(cust), "cust-%d", i % 7);
    snprintf(merch, sizeof(merch), "m-%d", i % 5);
    snprintf(purchase, sizeof(purchase), "p-%d", i);
    json_object_set_new(doc, "decision_id", json_string(id));
    json_object_set_new(doc, "purchase_id", json_string(purchase));
    json_object_set_new(doc, "customer_id", json_string(cust));
    json_object_set_new(doc, "merchant_id", json_string(merch));
    json_object_set_new(doc, "outcome", json_string(outcomes[i % 3]));
    json_object_set_new(doc, "decided_at", json_string(decided));
    json_object_set_new(json_object_get(doc, "amount"), "value", json_integer(1000 + i));
    return doc;
}

typedef struct genPart {
    rpArchiveFile *file;
    int64_t hour, next_offset;
} genPart;

static bool genAppend(genPart *p, int partition, dsCodec *c, avro_value_t *v, int64_t decided_ms,
                      const char *root) {
    char err[512];
    int64_t hour = decided_ms / 3600000;
    if (p->file && p->hour != hour) {
        if (!rpArchiveCommit(p->file, err, sizeof(err))) return fprintf(stderr, "%s\n", err), false;
        p->file = NULL;
    }
    if (p->file == NULL) {
        p->file = rpArchiveOpen(root, decided_ms, partition, p->next_offset,
                                dsCodecSchema(c, dsCodecCurrentVersion(c)), dtGenBlockSize, err, sizeof(err));
        if (p->file == NULL) return fprintf(stderr, "%s\n", err), false;
        p->hour = hour;
    }
    p->next_offset++;
    return rpArchiveAppend(p->file, v, err, sizeof(err)) || (fprintf(stderr, "%s\n", err), false);
}

bool dtArchiveGenerate(const char *root, int n, int64_t first_ms, int64_t step_ms, json_t **docs) {
    char err[256];
    genPart parts[DT_GEN_PARTITIONS] = {{0}};
    dsCodec *c = dsCodecNew(err, sizeof(err));
    avro_value_t v;
    bool ok = c != NULL && dsCodecNewValue(c, &v);
    if (!ok) return fprintf(stderr, "codec: %s\n", err), dsCodecFree(c), false;
    json_t *fixture = json_load_file("tests/fixtures/decision.json", 0, NULL);
    ok = fixture != NULL;
    if (docs) *docs = json_array();
    for (int i = 0; ok && i < n; i++) {
        int64_t decided = first_ms + i * step_ms;
        json_t *doc = genDoc(fixture, i, decided);
        dsCodecError cerr;
        ok = doc && dsCodecFromJson(c, doc, &v, &cerr) && dsCodecSetServerFields(c, &v, decided + 5, 1) &&
             genAppend(&parts[(i % 7) % DT_GEN_PARTITIONS], (i % 7) % DT_GEN_PARTITIONS, c, &v, decided, root);
        if (doc && docs) json_array_append_new(*docs, doc);
        else json_decref(doc);
    }
    for (int p = 0; p < DT_GEN_PARTITIONS; p++) {
        if (parts[p].file == NULL) continue;
        if (!ok) rpArchiveAbort(parts[p].file);
        else if (!rpArchiveCommit(parts[p].file, err, sizeof(err))) ok = false;
    }
    json_decref(fixture);
    avro_value_decref(&v);
    dsCodecFree(c);
    return ok;
}
