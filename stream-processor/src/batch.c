/* batch.c - exactly-once bookkeeping (see batch.h). */
#include "batch.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgoutput.h"

void spBatchInit(spBatch *b, const spBatchConfig *cfg, uint64_t checkpoint, uint64_t now) {
    memset(b, 0, sizeof(*b));
    b->cfg = *cfg;
    if (b->cfg.max_messages < 1) b->cfg.max_messages = 1;
    b->checkpoint = checkpoint;
    b->last_commit_at = now;
}

bool spBatchPgBegin(spBatch *b, uint64_t final_lsn) {
    b->in_pg = true;
    /* end = final_lsn + the commit record's length, so final_lsn below the
     * checkpoint means an end at or below it: a checkpoint is always some
     * transaction's end (or a server position no commit record straddles). */
    b->skipping = final_lsn < b->checkpoint;
    return b->skipping;
}

void spBatchOpen(spBatch *b, uint64_t now) {
    b->open = true;
    b->opened_at = now;
    b->end_lsn = 0;
    b->messages = b->pg_txns = 0;
}

void spBatchAdd(spBatch *b) {
    b->messages++;
}

static bool batchOld(const spBatch *b, uint64_t now) {
    return now - b->opened_at >= (uint64_t)b->cfg.interval_ms;
}

bool spBatchPgCommit(spBatch *b, uint64_t end_lsn, uint64_t now) {
    bool skipped = b->skipping;
    b->in_pg = b->skipping = false;
    if (skipped || !b->open) return false;
    if (end_lsn > b->end_lsn) b->end_lsn = end_lsn;
    b->pg_txns++;
    return b->messages >= (size_t)b->cfg.max_messages || batchOld(b, now);
}

bool spBatchDue(const spBatch *b, uint64_t now) {
    return b->open && !b->in_pg && batchOld(b, now);
}

uint64_t spBatchIdleTarget(const spBatch *b, uint64_t server_end, uint64_t now) {
    if (b->open || b->in_pg || server_end <= b->checkpoint) return 0;
    if (now - b->last_commit_at < (uint64_t)b->cfg.idle_ms) return 0;
    return server_end;
}

uint64_t spBatchCloseLsn(const spBatch *b) {
    return b->end_lsn > b->checkpoint ? b->end_lsn : b->checkpoint;
}

void spBatchCommitted(spBatch *b, uint64_t lsn, uint64_t now) {
    if (lsn > b->checkpoint) b->checkpoint = lsn;
    b->open = false;
    b->end_lsn = 0;
    b->messages = b->pg_txns = 0;
    b->last_commit_at = now;
}

void spBatchAborted(spBatch *b) {
    b->open = b->in_pg = b->skipping = false;
    b->end_lsn = 0;
    b->messages = b->pg_txns = 0;
}

bool spBatchStartCheck(const char *slot, uint64_t slot_lsn, bool have, uint64_t checkpoint, const char *topic,
                       char *errbuf, size_t errlen) {
    if (!have || slot_lsn <= checkpoint) return true;
    char s[24], c[24];
    snprintf(errbuf, errlen,
             "slot %s is confirmed at %s, ahead of the last checkpoint Kafka committed (%s, topic %s): the "
             "decisions between them may never have reached Kafka, and nothing moves a slot past its checkpoint "
             "in exactly-once mode but an operator (pg_replication_slot_advance) or an at-least-once run. Check "
             "the topic against the table; to stream from the slot's position anyway, delete the checkpoint "
             "(a null value for key %s on %s)",
             slot, spLsnFormat(slot_lsn, s), spLsnFormat(checkpoint, c), topic, slot, topic);
    return false;
}

char *spCheckpointJson(uint64_t lsn, size_t pg_txns, size_t messages, const char *transactional_id) {
    char l[24];
    json_t *o = json_pack("{s:s,s:I,s:I,s:s}", "lsn", spLsnFormat(lsn, l), "transactions", (json_int_t)pg_txns,
                          "messages", (json_int_t)messages, "transactional_id",
                          transactional_id ? transactional_id : "");
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

bool spCheckpointParse(const void *value, size_t len, uint64_t *lsn, char *errbuf, size_t errlen) {
    json_error_t jerr;
    json_t *o = json_loadb(value, len, 0, &jerr);
    const char *text = json_string_value(json_object_get(o, "lsn"));
    bool ok = text && spLsnParse(text, lsn);
    if (!o) snprintf(errbuf, errlen, "checkpoint record is not JSON: %s", jerr.text);
    else if (!ok) snprintf(errbuf, errlen, "checkpoint record has no \"lsn\" of the form X/X");
    json_decref(o);
    return ok;
}
