/* archiver.c - rotation, quarantine and commit ordering of the archive's
 * files, one partition at a time (archiver.h). */
#include "archiver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "ds/log.h"
#include "ds/timefmt.h"

typedef struct arPart {
    rpArchiveFile *file;
    int version; /* of the open file's schema */
    int64_t hour, last_offset, opened_ms;
    int64_t committed; /* the offset after the last commit; -1 before the first */
    int64_t end;       /* the partition's end as the consumer last reported it; -1 none */
    size_t bytes;
} arPart;

/* A value of each writer version met, reused for every record of it. */
typedef struct arValue {
    int version;
    avro_value_t value;
} arValue;

struct arArchiver {
    arFiles cfg;
    char *root;
    arCommitter committer;
    arPart parts[AR_MAX_PARTITIONS];
    arValue *values;
    size_t nvalues;
    arStats stats; /* open_files and oldest_open_ms computed on demand */
};

arArchiver *arArchiverNew(const arFiles *files, const arCommitter *committer, char *errbuf, size_t errlen) {
    arArchiver *a = calloc(1, sizeof(*a));
    if (a == NULL || (a->root = strdup(files->root)) == NULL) {
        free(a);
        return snprintf(errbuf, errlen, "out of memory"), NULL;
    }
    a->cfg = *files;
    a->cfg.root = a->root;
    a->committer = *committer;
    for (int i = 0; i < AR_MAX_PARTITIONS; i++) a->parts[i].committed = a->parts[i].end = -1;
    return a;
}

void arArchiverFree(arArchiver *a) {
    if (a == NULL) return;
    arArchiverAbortAll(a);
    for (size_t i = 0; i < a->nvalues; i++) avro_value_decref(&a->values[i].value);
    free(a->values);
    free(a->root);
    free(a);
}

static bool arLost(arArchiver *a) {
    return a->committer.lost && a->committer.lost(a->committer.ctx);
}

static void arCommit(arArchiver *a, int32_t partition, int64_t next) {
    a->parts[partition].committed = next;
    a->committer.commit(a->committer.ctx, partition, next);
}

/* Finishes a partition's file, then (only then) commits its offset. */
static bool arFinish(arArchiver *a, int32_t partition) {
    arPart *p = &a->parts[partition];
    if (p->file == NULL) return true;
    if (arLost(a)) {
        dsLogInfo("partition %d: assignment lost, unfinished file dropped for its new owner", partition);
        rpArchiveAbort(p->file);
        p->file = NULL;
        return true;
    }
    char err[512];
    size_t n = rpArchiveRecords(p->file);
    uint64_t bytes = 0;
    bool ok = rpArchiveCommitSized(p->file, &bytes, err, sizeof(err));
    p->file = NULL;
    if (!ok) {
        dsLogError("partition %d: %s", partition, err);
        return false;
    }
    dsLogDebug("partition %d: archived %zu records up to offset %lld", partition, n, (long long)p->last_offset);
    a->stats.files++;
    a->stats.records += n;
    a->stats.bytes += bytes;
    /* An end reported after the last record: what lies between is gaps. */
    arCommit(a, partition, p->end > p->last_offset ? p->end : p->last_offset + 1);
    return true;
}

void arArchiverAbortAll(arArchiver *a) {
    for (int i = 0; i < AR_MAX_PARTITIONS; i++) arArchiverRevoke(a, i);
}

void arArchiverRevoke(arArchiver *a, int32_t partition) {
    if (partition < 0 || partition >= AR_MAX_PARTITIONS) return;
    rpArchiveAbort(a->parts[partition].file);
    a->parts[partition].file = NULL;
    a->parts[partition].committed = a->parts[partition].end = -1; /* its next owner may move them */
}

bool arArchiverFinishAll(arArchiver *a) {
    for (int i = 0; i < AR_MAX_PARTITIONS; i++)
        if (!arFinish(a, i)) return false;
    return true;
}

bool arArchiverTick(arArchiver *a, int64_t now_ms) {
    for (int i = 0; i < AR_MAX_PARTITIONS; i++)
        if (a->parts[i].file && now_ms - a->parts[i].opened_ms >= a->cfg.max_age_ms && !arFinish(a, i)) return false;
    return true;
}

void arArchiverEnd(arArchiver *a, int32_t partition, int64_t next) {
    if (partition < 0 || partition >= AR_MAX_PARTITIONS) return;
    arPart *p = &a->parts[partition];
    p->end = next;
    if (p->file == NULL && next > p->committed && !arLost(a)) arCommit(a, partition, next);
}

/* The value records of a version are decoded into, made on first use. */
static avro_value_t *arValueOf(arArchiver *a, int version) {
    for (size_t i = 0; i < a->nvalues; i++)
        if (a->values[i].version == version) return &a->values[i].value;
    arValue *grown = realloc(a->values, (a->nvalues + 1) * sizeof(*a->values));
    if (grown == NULL) return NULL;
    a->values = grown;
    if (!dsCodecNewVersionValue(a->cfg.codec, version, &a->values[a->nvalues].value)) return NULL;
    a->values[a->nvalues].version = version;
    return &a->values[a->nvalues++].value;
}

/* What becomes of one message before any file is touched. */
typedef enum { AR_ARCHIVE, AR_QUARANTINE, AR_WAIT, AR_BROKEN } arVerdict;

/* Decodes the value into one of its writer's version (*out) and checks it
 * has a place in the layout: its decided_at into *decided. */
static arVerdict arDecode(arArchiver *a, int32_t partition, int64_t offset, const void *value, size_t len,
                          avro_value_t **out, int *version, int64_t *decided, char *why, size_t whylen) {
    char path[1200];
    size_t size = 0;
    switch (dsLearnWire(a->cfg.learner, a->cfg.codec, value, len, version, why, whylen)) {
    case DS_LEARN_OK: break;
    case DS_LEARN_TRANSIENT: return AR_WAIT;
    default: return AR_QUARANTINE;
    }
    if ((*out = arValueOf(a, *version)) == NULL) {
        dsLogError("version %d: cannot make an Avro value: %s", *version, avro_strerror());
        return AR_BROKEN;
    }
    if (!dsCodecDecodeWire(a->cfg.codec, value, len, *out, NULL, why, whylen)) return AR_QUARANTINE;
    /* A record produced around the stream processor that breaks a rule
     * would be archived and then refused by every replay of its file. */
    dsCodecError e;
    if (!dsCodecValidate(a->cfg.codec, *out, &e)) return snprintf(why, whylen, "%s", e.message), AR_QUARANTINE;
    if (!dsCodecFieldLong(*out, "decided_at", decided))
        return snprintf(why, whylen, "no decided_at field"), AR_QUARANTINE;
    if (!rpArchivePath(path, sizeof(path), a->cfg.root, *decided, partition, offset)) {
        char at[DS_TIME_BUFLEN] = "";
        dsTimeFormat(*decided, at);
        snprintf(why, whylen, "decided_at %lld ms (%s) has no dt=/hour= directory in the archive layout "
                 "(years 1970-9999)", (long long)*decided, *at ? at : "outside years 0001-9999");
        return AR_QUARANTINE;
    }
    /* avro-c refuses a record larger than a block, which would fail the file */
    if (avro_value_sizeof(*out, &size) == 0 && size > a->cfg.block_size) {
        snprintf(why, whylen, "its %zu bytes do not fit in a %zu-byte Avro block (block-size)", size,
                 a->cfg.block_size);
        return AR_QUARANTINE;
    }
    return AR_ARCHIVE;
}

/* Keeps the record under <root>/quarantine and moves the partition past
 * it: with a file open, its commit commits this offset too; without one,
 * every record before it is durable already, so the offset after it is
 * committed now. false only when the quarantine cannot be written. */
static bool arQuarantine(arArchiver *a, int32_t partition, int64_t offset, const void *value, size_t len,
                         const char *why) {
    char err[1536], path[1200];
    if (!rpArchiveQuarantine(a->cfg.root, partition, offset, value, len, why, path, sizeof(path), err,
                             sizeof(err))) {
        dsLogError("partition %d offset %lld: cannot quarantine the record (%s): %s", partition, (long long)offset,
                   why, err);
        return false;
    }
    dsLogError("partition %d offset %lld: not archived, quarantined as %s: %s", partition, (long long)offset, path,
               why);
    a->stats.quarantined++;
    arPart *p = &a->parts[partition];
    if (p->file) p->last_offset = offset;
    else arCommit(a, partition, offset + 1);
    return true;
}

/* Opens the partition's file at offset for a record of version, decided at
 * ms. AR_HOLD when another archiver is writing that very file (the group
 * gave the partition here while its old owner still wrote): the partition
 * waits until that one has renamed or dropped it, then writes it again. */
static arOutcome arOpen(arArchiver *a, int32_t partition, int64_t offset, int version, int64_t decided,
                        int64_t now_ms, char *why, size_t whylen) {
    arPart *p = &a->parts[partition];
    p->file = rpArchiveOpen(a->cfg.root, decided, partition, offset, dsCodecSchema(a->cfg.codec, version),
                            a->cfg.block_size, why, whylen);
    if (p->file == NULL && errno == EWOULDBLOCK) return AR_HOLD;
    if (p->file == NULL) {
        dsLogError("%s", why);
        return AR_FAIL;
    }
    p->version = version;
    p->hour = decided / 3600000;
    p->bytes = 0;
    p->opened_ms = now_ms;
    return AR_DONE;
}

arOutcome arArchiverMessage(arArchiver *a, int32_t partition, int64_t offset, const void *value, size_t len,
                            int64_t now_ms, char *why, size_t whylen) {
    char err[512];
    if (partition < 0 || partition >= AR_MAX_PARTITIONS) {
        dsLogError("partition %d is beyond this archiver's limit of %d", partition, AR_MAX_PARTITIONS);
        return AR_FAIL;
    }
    avro_value_t *v = NULL;
    int version = 0;
    int64_t decided = 0;
    arVerdict r = value ? arDecode(a, partition, offset, value, len, &v, &version, &decided, why, whylen)
                        : (snprintf(why, whylen, "empty message"), AR_QUARANTINE);
    if (r == AR_WAIT) return AR_HOLD;
    if (r == AR_BROKEN) return AR_FAIL;
    if (r == AR_QUARANTINE) return arQuarantine(a, partition, offset, value ? value : "", len, why) ? AR_DONE : AR_FAIL;
    arPart *p = &a->parts[partition];
    /* a file holds one hour and one schema version */
    if (p->file && (p->hour != decided / 3600000 || p->version != version) && !arFinish(a, partition)) return AR_FAIL;
    if (p->file == NULL && arLost(a)) return AR_DONE; /* the new owner writes it */
    if (p->file == NULL) {
        arOutcome o = arOpen(a, partition, offset, version, decided, now_ms, why, whylen);
        if (o != AR_DONE) return o;
    }
    if (!rpArchiveAppend(p->file, v, err, sizeof(err))) {
        dsLogError("%s", err);
        return AR_FAIL;
    }
    p->bytes += len;
    p->last_offset = offset;
    if (rpArchiveRecords(p->file) >= (size_t)a->cfg.max_records || p->bytes >= a->cfg.max_bytes)
        return arFinish(a, partition) ? AR_DONE : AR_FAIL;
    return AR_DONE;
}

arStats arArchiverStats(const arArchiver *a, int64_t now_ms) {
    arStats s = a->stats;
    for (int i = 0; i < AR_MAX_PARTITIONS; i++) {
        const arPart *p = &a->parts[i];
        if (p->file == NULL) continue;
        s.open_files++;
        if (now_ms - p->opened_ms > s.oldest_open_ms) s.oldest_open_ms = now_ms - p->opened_ms;
    }
    return s;
}

int64_t arArchiverCommitted(const arArchiver *a, int32_t partition) {
    return partition >= 0 && partition < AR_MAX_PARTITIONS ? a->parts[partition].committed : -1;
}
