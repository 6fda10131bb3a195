/* batch.h - the exactly-once mode's bookkeeping, free of Kafka and of the
 * loop so it can be tested alone: which PostgreSQL transactions are
 * already in Kafka (the skip rule), when the open Kafka transaction closes,
 * which LSN its checkpoint record carries, and whether a slot may be
 * streamed against the last committed checkpoint.
 *
 * A Kafka transaction carries whole PostgreSQL transactions and, produced
 * last, a checkpoint record whose LSN is the end LSN of the last of them;
 * the slot is confirmed only to a checkpoint Kafka has committed. A
 * PostgreSQL transaction whose commit record lies before the checkpoint
 * ends at or below it, so it was committed to Kafka with that checkpoint
 * and is skipped whole, whatever position the slot streams from.
 *
 * Times are milliseconds of any monotonic clock the caller shares (the
 * processor uses uv_now). The struct is the caller's; no allocation.
 */
#ifndef SP_BATCH_H
#define SP_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct spBatchConfig {
    long max_messages; /* close once a batch holds this many messages (>= 1) */
    long interval_ms;  /* close once a batch has been open this long */
    long idle_ms;      /* least time between two checkpoint-only transactions */
} spBatchConfig;

typedef struct spBatch {
    spBatchConfig cfg;
    uint64_t checkpoint;    /* the last LSN Kafka committed (0: none) */
    bool open;              /* a Kafka transaction is open */
    uint64_t opened_at;     /* when it was opened */
    uint64_t end_lsn;       /* end LSN of its last whole PostgreSQL transaction; 0: none yet */
    size_t messages;        /* decisions and dead letters produced in it */
    size_t pg_txns;         /* whole PostgreSQL transactions in it */
    bool in_pg;             /* between a Begin and its Commit */
    bool skipping;          /* that PostgreSQL transaction is at or below the checkpoint */
    uint64_t last_commit_at; /* when the last Kafka transaction committed */
} spBatch;

/* checkpoint: the last committed one read at start (0: none). */
void spBatchInit(spBatch *b, const spBatchConfig *cfg, uint64_t checkpoint, uint64_t now);

/* A PostgreSQL transaction begins whose commit record is at final_lsn.
 * true: it is already in Kafka (final_lsn below the checkpoint) and is
 * skipped until its Commit; false: its messages go into the open batch
 * (the caller opens one first when none is: spBatchOpen). */
bool spBatchPgBegin(spBatch *b, uint64_t final_lsn);
/* A Kafka transaction was begun. */
void spBatchOpen(spBatch *b, uint64_t now);
/* One message went into the open batch. */
void spBatchAdd(spBatch *b);
/* The PostgreSQL transaction committed, ending at end_lsn. true: the batch
 * is open and full or old enough, and must be closed now (at this
 * boundary). */
bool spBatchPgCommit(spBatch *b, uint64_t end_lsn, uint64_t now);
/* For a timer: the open batch has reached its interval and the stream is
 * at a boundary, so it closes now. */
bool spBatchDue(const spBatch *b, uint64_t now);
/* With no batch open and the server at server_end: the LSN a
 * checkpoint-only transaction should carry now, or 0 when none is needed
 * (nothing new, or one committed less than idle_ms ago). */
uint64_t spBatchIdleTarget(const spBatch *b, uint64_t server_end, uint64_t now);
/* The LSN the closing batch's checkpoint record carries: its last
 * PostgreSQL transaction's end, or the current checkpoint when it holds
 * none whole. */
uint64_t spBatchCloseLsn(const spBatch *b);
/* Kafka committed a transaction carrying checkpoint lsn: the checkpoint
 * moves there (never back) and no batch is open. */
void spBatchCommitted(spBatch *b, uint64_t lsn, uint64_t now);
/* The open Kafka transaction was aborted (or the session dropped): what it
 * held is streamed again from the slot. */
void spBatchAborted(spBatch *b);

/* Whether a slot confirmed at slot_lsn may be streamed against the
 * checkpoint (have: one was found). A slot ahead of it would silently skip
 * what Kafka never committed: false with errbuf naming both LSNs. */
bool spBatchStartCheck(const char *slot, uint64_t slot_lsn, bool have, uint64_t checkpoint, const char *topic,
                       char *errbuf, size_t errlen);

/* The checkpoint record's value: JSON with "lsn" (X/X), "transactions",
 * "messages", "transactional_id". malloc'd, the caller frees; NULL when
 * out of memory. */
char *spCheckpointJson(uint64_t lsn, size_t pg_txns, size_t messages, const char *transactional_id);
/* Reads "lsn" of a checkpoint record's value. false with errbuf filled
 * when it is not such a record. */
bool spCheckpointParse(const void *value, size_t len, uint64_t *lsn, char *errbuf, size_t errlen);

#endif
