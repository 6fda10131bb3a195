/* store.h - the variable store's state in LMDB.
 *
 * One LMDB environment (a directory) holds, per entity of the variables
 * file, the database "e/<entity>" of events (event.h keys and values) and
 * "s/<entity>" of running values (agg.h), and "meta": the layout the state
 * was built for and the next Kafka offset of every partition consumed.
 *
 * Exactness: an event's key is (entity, decided_at, decision_id), and a
 * decision is stored with MDB_NOOVERWRITE, so a decision delivered again (a
 * Kafka redelivery, a replay, both at once) finds its key and changes
 * nothing. Events older than every window are dropped on arrival and by the
 * sweep, since no read could count them again.
 * Durability: the offsets are written in the same transaction as the state
 * they produced, so after a crash the state and the position agree.
 *
 * One writer thread uses the vsStore write calls; any number of readers
 * (threads with their own vsStoreReader, or other processes opening the
 * directory read-only: read replicas) see committed snapshots, never a
 * half-applied batch.
 */
#ifndef VS_STORE_H
#define VS_STORE_H

#include "ds/attrs.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vars.h"

/* How long events are kept past the longest window, so that a wall clock
 * stepping back never finds an event already swept. */
#define VS_STORE_SLACK_MS (3600 * 1000LL)

typedef struct vsStore vsStore;

typedef struct vsStoreConfig {
    const char *dir;   /* created if missing (not for read-only) */
    size_t map_size;   /* LMDB map size: the most the state may grow to */
    bool read_only;    /* a read replica: the state must exist and match the layout */
} vsStoreConfig;

typedef enum {
    VS_LAYOUT_SAME,    /* the state was built for this variables file's layout */
    VS_LAYOUT_EMPTY,   /* a new store */
    VS_LAYOUT_CHANGED, /* the state was built for another layout: it must be rebuilt */
} vsLayoutState;

/* Opens (creating for a writer) the environment and its databases. vars is
 * borrowed and must outlive the store. *layout tells how the stored layout
 * compares with vars (a read-only store whose layout differs is an error).
 * NULL with errbuf filled on failure. */
vsStore *vsStoreOpen(const vsStoreConfig *cfg, const vsVars *vars, vsLayoutState *layout, char *errbuf,
                     size_t errlen);
void vsStoreClose(vsStore *s);

/* Empties every database, offsets included, and records vars' layout: the
 * state starts again from nothing. Writer only. */
DS_MUST_CHECK bool vsStoreReset(vsStore *s, char *errbuf, size_t errlen);

/* ---- writer: one thread ---- */

typedef enum { VS_APPLY_COUNTED, VS_APPLY_DUPLICATE, VS_APPLY_EXPIRED } vsApplyResult;

/* Starts the write transaction that the next calls fill. */
DS_MUST_CHECK bool vsStoreBegin(vsStore *s, char *errbuf, size_t errlen);
/* Applies one prepared decision (event.h) at wall-clock now. false on a
 * storage error (the transaction must then be aborted) or malformed bytes. */
DS_MUST_CHECK bool vsStoreApply(vsStore *s, const uint8_t *prepared, size_t len, int64_t now, vsApplyResult *res, char *errbuf,
                  size_t errlen);
/* Records the next offset to consume of a partition, in the transaction. */
DS_MUST_CHECK bool vsStoreSetOffset(vsStore *s, const char *topic, int32_t partition, int64_t next, char *errbuf, size_t errlen);
/* Commits (durably: LMDB syncs on commit). */
DS_MUST_CHECK bool vsStoreCommit(vsStore *s, char *errbuf, size_t errlen);
void vsStoreAbort(vsStore *s);
/* Whether the last failed write (apply, offset, commit, sweep) failed
 * because the map is full (MDB_MAP_FULL): the transaction must be aborted,
 * and nothing more fits until a sweep frees pages or the store reopens
 * with a larger map. Reset by a successful commit or sweep. */
bool vsStoreFull(const vsStore *s);

/* The next offset recorded for a partition (own read transaction); false
 * if none is recorded. */
bool vsStoreGetOffset(vsStore *s, const char *topic, int32_t partition, int64_t *next);

/* Visits up to max_visits events, deleting the expired ones, resuming where
 * the last call stopped; *wrapped is set when this call finished a pass
 * over every entity. Returns the number deleted, -1 on error. In its own
 * write transaction: not between vsStoreBegin and Commit. */
long vsStoreSweep(vsStore *s, int64_t now, size_t max_visits, bool *wrapped, char *errbuf, size_t errlen);

/* Clears the reader-table slots of processes that died holding a read
 * transaction (mdb_reader_check): each pins the snapshot it saw, so that no
 * page freed since can be reused and the file only grows. vsStoreOpen
 * calls it once; the writer calls it periodically, since replicas (other
 * processes) read the same environment. Returns how many were cleared, -1
 * with errbuf filled on error. Any thread. */
long vsStoreReaderCheck(vsStore *s, char *errbuf, size_t errlen);
/* Slots cleared by every check since the store was opened. */
uint64_t vsStoreReadersCleared(vsStore *s);

/* Room left for writes: the map not yet written plus the pages on the
 * freelist (freed by earlier transactions), and the map size, in bytes,
 * from its own read transaction. false on error. */
bool vsStoreSpace(vsStore *s, uint64_t *room, uint64_t *map);

/* Commits a transaction that only records now in "meta": LMDB reuses a
 * freed page only once a transaction later than the one that freed it has
 * committed, so after a sweep on a full map this makes its pages usable.
 * false with errbuf filled (vsStoreFull() if even this did not fit). */
bool vsStoreTouch(vsStore *s, int64_t now, char *errbuf, size_t errlen);

/* ---- readers ---- */

typedef struct vsStoreReader vsStoreReader;

/* A reader for one thread at a time. NULL on allocation failure. */
vsStoreReader *vsStoreReaderNew(vsStore *s);
void vsStoreReaderFree(vsStoreReader *r);
/* Takes a snapshot; every lookup until vsStoreReaderEnd() sees it. */
bool vsStoreReaderBegin(vsStoreReader *r, char *errbuf, size_t errlen);
void vsStoreReaderEnd(vsStoreReader *r);
/* The variables of one entity id at as_of: {"name": value, ...} (zeros and
 * nulls for an id never seen). A new reference; NULL with errbuf filled on
 * error. e must be an entity of the store's vars. */
json_t *vsStoreLookup(vsStoreReader *r, const vsEntity *e, const char *id, size_t idlen, int64_t as_of, char *errbuf,
                      size_t errlen);

typedef struct vsStoreStats {
    uint64_t events[16];   /* stored events per entity (the first 16) */
    uint64_t entities[16]; /* entities with running values per entity */
    uint64_t used_bytes;   /* pages in use: written and not on the freelist */
    uint64_t map_bytes;
} vsStoreStats;

/* Sizes for /metrics, from a snapshot. */
bool vsStoreReaderStats(vsStoreReader *r, vsStoreStats *out);

#endif
