/* watermark.c - commit-ordered transaction window (see watermark.h): a ring
 * buffer indexed by sequence number, popped from the head as transactions
 * become fully acknowledged. */
#include "watermark.h"

#include <stdlib.h>

typedef struct wmTxn {
    uint64_t end_lsn;
    int64_t commit_time;
    uint32_t messages; /* handed to Kafka in all */
    uint32_t pending;
    bool committed;
} wmTxn;

struct spWatermark {
    wmTxn *ring;
    size_t cap;        /* power of two */
    uint64_t head_seq; /* sequence number of the oldest tracked transaction */
    uint64_t next_seq; /* sequence number the next Begin gets */
    uint64_t confirmable;
    size_t pending_messages;
    spWatermarkObserver *observer;
    void *observer_arg;
};

spWatermark *spWatermarkNew(void) {
    spWatermark *w = calloc(1, sizeof(*w));
    if (w == NULL) return NULL;
    w->cap = 64;
    w->ring = calloc(w->cap, sizeof(*w->ring));
    if (w->ring == NULL) {
        free(w);
        return NULL;
    }
    return w;
}

void spWatermarkFree(spWatermark *w) {
    if (w == NULL) return;
    free(w->ring);
    free(w);
}

static wmTxn *wmAt(const spWatermark *w, uint64_t seq) {
    if (seq < w->head_seq || seq >= w->next_seq) return NULL;
    return &w->ring[seq & (w->cap - 1)];
}

/* Doubles the ring, keeping each entry at seq & (cap - 1). */
static bool wmGrow(spWatermark *w) {
    size_t cap = w->cap * 2;
    wmTxn *ring = calloc(cap, sizeof(*ring));
    if (ring == NULL) return false;
    for (uint64_t s = w->head_seq; s < w->next_seq; s++) ring[s & (cap - 1)] = w->ring[s & (w->cap - 1)];
    free(w->ring);
    w->ring = ring;
    w->cap = cap;
    return true;
}

/* Pops every leading transaction that is committed and fully acknowledged. */
static void wmAdvance(spWatermark *w) {
    while (w->head_seq < w->next_seq) {
        wmTxn *t = wmAt(w, w->head_seq);
        if (!t->committed || t->pending > 0) break;
        if (t->end_lsn > w->confirmable) w->confirmable = t->end_lsn;
        if (w->observer) w->observer(t->commit_time, t->messages, w->observer_arg);
        w->head_seq++;
    }
}

bool spWatermarkBegin(spWatermark *w, uint64_t *seq) {
    if (w->next_seq - w->head_seq == w->cap && !wmGrow(w)) return false;
    *seq = w->next_seq++;
    *wmAt(w, *seq) = (wmTxn){0};
    return true;
}

bool spWatermarkAddPending(spWatermark *w, uint64_t seq) {
    wmTxn *t = wmAt(w, seq);
    if (t == NULL || t->committed) return false;
    t->pending++;
    t->messages++;
    w->pending_messages++;
    return true;
}

void spWatermarkSetObserver(spWatermark *w, spWatermarkObserver *fn, void *arg) {
    w->observer = fn;
    w->observer_arg = arg;
}

bool spWatermarkCommit(spWatermark *w, uint64_t seq, uint64_t end_lsn, int64_t commit_time) {
    wmTxn *t = wmAt(w, seq);
    if (t == NULL || t->committed) return false;
    t->committed = true;
    t->end_lsn = end_lsn;
    t->commit_time = commit_time;
    wmAdvance(w);
    return true;
}

bool spWatermarkAck(spWatermark *w, uint64_t seq) {
    wmTxn *t = wmAt(w, seq);
    if (t == NULL || t->pending == 0) return false;
    t->pending--;
    w->pending_messages--;
    if (seq == w->head_seq) wmAdvance(w);
    return true;
}

uint64_t spWatermarkConfirmable(const spWatermark *w) {
    return w->confirmable;
}

size_t spWatermarkTransactions(const spWatermark *w) {
    return (size_t)(w->next_seq - w->head_seq);
}

size_t spWatermarkPendingMessages(const spWatermark *w) {
    return w->pending_messages;
}
