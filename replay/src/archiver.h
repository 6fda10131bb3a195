/* archiver.h - decision-archiver's file keeping, apart from Kafka: the
 * messages of each partition, in offset order, become the archive files of
 * CONTRACT §4 (archive.h), and the offset after a file is handed to the
 * consumer to commit only once the file is durable.
 *
 * One open file per partition and hour of decided_at and schema version; a
 * file is committed (fsynced, renamed) when the hour or the writer's
 * version changes, or at max-records, max-bytes or max-age; only then is
 * the offset after its last record committed (arCommitter), so a crash
 * re-reads from the start of the unfinished file and writes it again under
 * the same name.
 *
 * Offsets need not be consecutive. A read_committed consumer never sees the
 * records of aborted Kafka transactions nor the transaction markers, whose
 * offsets are gaps. Names depend only on the offsets of the records
 * archived (a file is named by its first record's offset, and the split
 * points depend on the records alone, max-age excepted), so a re-read from
 * any committed offset, a gap or not, writes the same files. The offset
 * committed after a file is its last record's plus one, which may be a
 * gap: the consumer steps over it. When the consumer reports a partition
 * read to its end (arArchiverEnd), the end is committed once no file is
 * open, so trailing markers do not show as a lag that never goes away.
 *
 * A record the layout has no place for (not in the wire format, does not
 * decode, breaks a rule of its schema, a decided_at outside 1970-9999,
 * larger than a block) is quarantined (rpArchiveQuarantine), logged and
 * counted, and the partition goes on past it. Only storage failures stop
 * the archiver (AR_FAIL).
 *
 * Every record is archived under its writer's schema version; a schema id
 * not known yet is learned from the registry (ds/learn.h); until it is, the
 * message is AR_HOLD: the consumer holds the partition there and hands it
 * again later. A file another archiver is still writing (archive.h's lock)
 * is AR_HOLD too.
 *
 * Not thread-safe: one thread (the consumer's) calls everything.
 */
#ifndef AR_ARCHIVER_H
#define AR_ARCHIVER_H

#include "ds/attrs.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/codec.h"
#include "ds/learn.h"
#include "ds/metrics.h"

#define AR_MAX_PARTITIONS 1024

typedef struct arFiles {
    const char *root;    /* archive root (holds decisions/); copied */
    long max_records;    /* per file */
    size_t max_bytes;    /* Kafka value bytes per file (approximately the file's size) */
    long max_age_ms;     /* a file is committed this long after its first record */
    size_t block_size;   /* Avro block size; a larger record is quarantined */
    dsCodec *codec;      /* borrowed, outlives the archiver */
    dsLearner *learner;  /* borrowed; NULL: unknown schema ids wait for a restart */
} arFiles;

/* What the archiver asks of its consumer. */
typedef struct arCommitter {
    void *ctx;
    /* Everything of partition before next is archived (or quarantined):
     * commit next. A failure is the consumer's to log: the files are
     * durable, and whoever reads the partition next writes them again
     * under the same names. */
    void (*commit)(void *ctx, int32_t partition, int64_t next);
    /* Whether the group has given this archiver's partitions away (the
     * revocation has not reached it yet): nothing more is renamed or
     * started, the new owners write it. NULL: never. */
    bool (*lost)(void *ctx);
} arCommitter;

typedef struct arArchiver arArchiver;

/* files and committer are copied. NULL with errbuf filled if out of memory. */
arArchiver *arArchiverNew(const arFiles *files, const arCommitter *committer, char *errbuf, size_t errlen);
/* Drops every unfinished file (their offsets were not committed) and frees. */
void arArchiverFree(arArchiver *a);

typedef enum {
    AR_DONE, /* archived or quarantined */
    AR_HOLD, /* cannot be handled now (why says why): hold the partition at it, hand it again later */
    AR_FAIL, /* a storage failure (logged): stop; a restart re-reads from the committed offsets */
} arOutcome;

/* One message of partition at offset (the Kafka value, borrowed for the
 * call). now_ms: the wall clock, for max-age. */
arOutcome arArchiverMessage(arArchiver *a, int32_t partition, int64_t offset, const void *value, size_t len,
                            int64_t now_ms, char *why, size_t whylen);
/* Commits the files open max-age or longer. false on a storage failure. */
DS_MUST_CHECK bool arArchiverTick(arArchiver *a, int64_t now_ms);
/* The consumer read partition up to next (its end, for now; not while the
 * partition is held): with no file open, every offset before next is
 * archived, quarantined, a gap, or was committed before this archiver got
 * the partition, so next is committed unless it was already. With a file
 * open, its commit commits next if no record came after. */
void arArchiverEnd(arArchiver *a, int32_t partition, int64_t next);
/* The partition was revoked: its unfinished file is dropped (its next owner
 * writes it again from the committed offset). */
void arArchiverRevoke(arArchiver *a, int32_t partition);
/* Commits every open file (a clean stop). false on a storage failure. */
DS_MUST_CHECK bool arArchiverFinishAll(arArchiver *a);
/* Drops every unfinished file (a failed stop). */
void arArchiverAbortAll(arArchiver *a);

typedef struct arStats {
    uint64_t files, records, bytes; /* committed: files, records in them, their size on disk */
    uint64_t quarantined;
    uint64_t open_files;
    int64_t oldest_open_ms; /* age of the oldest open file; 0 with none */
} arStats;

arStats arArchiverStats(const arArchiver *a, int64_t now_ms);
/* The offset after the last commit of partition; -1 before the first. */
int64_t arArchiverCommitted(const arArchiver *a, int32_t partition);

#endif
