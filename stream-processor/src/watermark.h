/* watermark.h - which LSN the stream processor may confirm to its
 * replication slot.
 *
 * The slot's confirmed flush LSN is the checkpoint: the server may discard
 * WAL before it, so it must never pass a decision Kafka has not
 * acknowledged. Transactions are tracked in commit order; each counts its
 * messages handed to Kafka and not yet acknowledged. The confirmable LSN is
 * the end LSN of the newest transaction that, with every transaction before
 * it, is committed and fully acknowledged. Acknowledgements may arrive in any
 * order (partitions are independent); transactions with no message at all
 * (writes to other tables) become confirmable as soon as those before them
 * are, so foreign traffic never holds WAL back.
 *
 * Memory: one small entry per transaction not yet confirmable; the caller
 * bounds it by bounding its in-flight window.
 */
#ifndef SP_WATERMARK_H
#define SP_WATERMARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/attrs.h"

typedef struct spWatermark spWatermark;

/* NULL on allocation failure. Freed with spWatermarkFree(). */
spWatermark *spWatermarkNew(void);
void spWatermarkFree(spWatermark *w);

/* A transaction began (pgoutput Begin). *seq receives its handle, to tag its
 * messages with. false on allocation failure. Transactions must be begun in
 * the order the server streams them. */
DS_MUST_CHECK bool spWatermarkBegin(spWatermark *w, uint64_t *seq);
/* One more message of transaction seq is in flight. false if seq is not a
 * tracked, uncommitted transaction: the message is not tracked, and the
 * caller must not go on as if it were (its position could be confirmed
 * before Kafka has it). */
DS_MUST_CHECK bool spWatermarkAddPending(spWatermark *w, uint64_t seq);
/* Transaction seq committed (pgoutput Commit) with end_lsn, the LSN just
 * after its commit record, at commit_time (any clock the observer shares;
 * the processor uses microseconds since 2000-01-01 as PostgreSQL sends it).
 * end LSNs must not decrease. false if seq is not a tracked, uncommitted
 * transaction (a Commit without its Begin). */
DS_MUST_CHECK bool spWatermarkCommit(spWatermark *w, uint64_t seq, uint64_t end_lsn, int64_t commit_time);

/* Called once per transaction when it becomes confirmable (committed and
 * every message acknowledged), with its commit_time: the place to measure
 * commit-to-acknowledgement latency. Optional. */
typedef void spWatermarkObserver(int64_t commit_time, size_t messages, void *arg);
void spWatermarkSetObserver(spWatermark *w, spWatermarkObserver *fn, void *arg);
/* Kafka acknowledged one message of transaction seq. false if seq has no
 * message in flight: the caller's count is out of step with Kafka's, and
 * the window can no longer be trusted. */
DS_MUST_CHECK bool spWatermarkAck(spWatermark *w, uint64_t seq);

/* The LSN that may be confirmed now; never decreases; 0 before the first
 * confirmable transaction. */
uint64_t spWatermarkConfirmable(const spWatermark *w);
/* Transactions tracked (begun and not yet confirmable). 0 means nothing is
 * in flight: the caller may confirm the server's own position. */
size_t spWatermarkTransactions(const spWatermark *w);
/* Messages handed to Kafka and not yet acknowledged. */
size_t spWatermarkPendingMessages(const spWatermark *w);

#endif
