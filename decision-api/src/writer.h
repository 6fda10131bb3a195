/* writer.h - group commit of decisions into PostgreSQL.
 *
 * Requests that arrive together are written in one transaction: each writer
 * connection takes everything queued (up to max_batch) when it becomes idle,
 * pipelines one INSERT per decision and a single sync, and only when the
 * sync's answer (the commit) arrives are the items completed. The INSERT
 * cannot fail on a duplicate (ON CONFLICT DO NOTHING plus a lookup of the
 * existing row's hash in the same statement), so a retried or conflicting
 * decision never aborts its neighbours; if a statement fails anyway, the
 * batch rolls back, the failing item is completed as failed and every other
 * item is sent again in the next batch. Any error result before the sync
 * fails the batch: one after the statements' is the commit's own (a
 * deferred constraint or trigger), which names no item, so a lone item is
 * completed with it and the items of a larger batch are each sent again
 * alone.
 *
 * Ownership: the caller allocates an item with apiWriteItemNew(), fills it,
 * and hands it to apiWriterSubmit(). If that returns API_SUBMIT_QUEUED, the
 * writer owns the item until it calls item->done exactly once, which hands
 * the item back: the callee frees it with apiWriteItemFree(). Otherwise the
 * caller still owns it.
 */
#ifndef API_WRITER_H
#define API_WRITER_H

#include "ds/attrs.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "ds/metrics.h"

enum { API_WRITE_NPARAMS = 9 };

typedef enum {
    API_WRITE_INSERTED,    /* committed now */
    API_WRITE_DUPLICATE,   /* the same decision (same canonical body) was committed before */
    API_WRITE_CONFLICT,    /* the decision_id exists with a different body; nothing changed */
    API_WRITE_UNAVAILABLE, /* not written: database unavailable or timed out; safe to retry */
    API_WRITE_REJECTED,    /* the database refused the row (data error); message says why */
    API_WRITE_FAILED,      /* not written: unexpected database error */
} apiWriteStatus;

typedef struct apiWriteItem apiWriteItem;
typedef void apiWriteDoneFn(apiWriteItem *item, void *arg);

struct apiWriteItem {
    /* Input: the INSERT parameters, in order: decision_id, purchase_id,
     * customer_id, merchant_id, outcome, decided_at, schema_version,
     * doc_sha256 (bytea hex), doc. The pointers must stay valid while the
     * item lives; apiWriteItemNew()'s owner points them into doc and buf. */
    const char *params[API_WRITE_NPARAMS];
    json_t *doc;       /* the canonical document; owned by the item */
    char *doc_text;    /* its compact JSON text; owned (malloc) */
    char buf[160];     /* storage for small formatted parameters */
    apiWriteDoneFn *done;
    void *arg;
    size_t tag;        /* the caller's (e.g. a batch index); the writer ignores it */
    /* Output, valid in done. */
    apiWriteStatus status;
    int64_t recorded_at_ms;
    char message[256];
    /* Writer-private. */
    bool solo; /* its batch failed at commit: sent alone from now on */
    int attempts;
    int64_t deadline_ms;
    apiWriteItem *next;
};

/* Returns a zeroed item, or NULL on allocation failure. */
apiWriteItem *apiWriteItemNew(void);
/* Frees the item with its doc and doc_text. NULL-safe. */
void apiWriteItemFree(apiWriteItem *item);

/* Asked when an item's decision_id exists with another hash, and the stored
 * row was written under another schema version than the item (an older
 * API's row, after an upgrade): whether the item is the same decision as
 * the stored one under that version, whose hash is stored_sha256 (hex).
 * true makes the item a duplicate instead of a conflict. Runs on the loop
 * thread, rarely, so it may do real work. */
typedef bool apiWriteSameFn(void *arg, const apiWriteItem *item, int stored_version, const char *stored_sha256);

typedef struct apiWriterConfig {
    const char *conninfo;
    int connections;   /* writer sessions, each with at most one batch in flight */
    int max_batch;     /* decisions per transaction */
    size_t max_queue;  /* queued decisions before submissions are refused */
    long timeout_ms;   /* how long a decision may wait in the queue */
    int max_attempts;  /* re-sends after a lost session before giving up */
    apiWriteSameFn *same_as_stored; /* may be NULL: a different hash is then always a conflict */
    void *same_arg;
} apiWriterConfig;

typedef struct apiWriter apiWriter;

/* Connects in the background. metrics may be NULL. Returns NULL on
 * allocation failure. */
apiWriter *apiWriterNew(uv_loop_t *loop, const apiWriterConfig *cfg, dsMetrics *metrics);

typedef enum {
    API_SUBMIT_QUEUED,      /* the writer owns the item now */
    API_SUBMIT_UNAVAILABLE, /* no database session is up */
    API_SUBMIT_FULL,        /* the queue is full: overloaded */
} apiSubmitResult;

DS_MUST_CHECK apiSubmitResult apiWriterSubmit(apiWriter *w, apiWriteItem *item);
/* Whether n more items would be accepted now. */
apiSubmitResult apiWriterCanAccept(const apiWriter *w, size_t n);

/* At least one session is up. */
bool apiWriterReady(const apiWriter *w);
/* Items queued or in flight. */
size_t apiWriterPending(const apiWriter *w);

/* Completes every queued and in-flight item as unavailable, closes the
 * sessions and frees the writer (handles close on the next loop turns). */
void apiWriterClose(apiWriter *w);

#endif
