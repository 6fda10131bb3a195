/* pgoutput.h - parser of PostgreSQL logical replication: the CopyData
 * framing of a walsender stream ('w' XLogData, 'k' keepalive, and building
 * the 'r' standby status update) and the pgoutput protocol, version 1, as
 * PostgreSQL 15 sends it, with the relation cache that turns tuples into
 * named columns.
 *
 * Wire integers are big-endian. Timestamps are microseconds since
 * 2000-01-01 00:00 UTC (PostgreSQL's epoch), as sent.
 *
 * Zero copy: every pointer in spCopyData and spMsg that names bytes of a
 * message (tuple values, strings, message content) points INTO the input
 * buffer and stays valid only as long as that buffer. Relation metadata is
 * copied into the cache. Every read is bounds-checked: truncated or malformed
 * input makes a parse call return false with a message in errbuf; it never
 * reads past len.
 *
 * Not thread-safe: one cache and its messages belong to one thread.
 */
#ifndef SP_PGOUTPUT_H
#define SP_PGOUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/attrs.h"

/* ---- LSNs ---------------------------------------------------------------- */

/* Formats lsn as PostgreSQL does ("16/B374D848": two upper-case hex halves,
 * no leading zeros). Returns out. */
char *spLsnFormat(uint64_t lsn, char out[24]);
/* Parses "X/X" (each half 1..8 hex digits, either case, nothing else).
 * Returns false, leaving *lsn alone, on anything else. */
bool spLsnParse(const char *s, uint64_t *lsn);

/* ---- CopyData framing ---------------------------------------------------- */

typedef enum spCopyKind {
    SP_COPY_XLOGDATA = 'w',
    SP_COPY_KEEPALIVE = 'k',
} spCopyKind;

typedef struct spCopyData {
    spCopyKind kind;
    uint64_t wal_start;   /* 'w' only: LSN of data (0 for non-WAL messages such as Relation) */
    uint64_t wal_end;     /* current end of WAL on the server */
    int64_t send_time;    /* server clock */
    bool reply_requested; /* 'k' only: answer at once or be disconnected */
    const uint8_t *data;  /* 'w' only: the pgoutput message, into the input buffer */
    size_t len;           /* 'w' only: its length (may be 0; the pgoutput parser rejects that) */
} spCopyData;

/* Parses one CopyData payload from a replication connection. */
DS_MUST_CHECK bool spCopyDataParse(const uint8_t *buf, size_t len, spCopyData *out, char *errbuf, size_t errlen);

/* The size of a standby status update. */
#define SP_STANDBY_STATUS_LEN 34

/* Writes an 'r' standby status update into out. The LSNs are positions
 * the consumer has written, flushed (the promise: the server may recycle WAL
 * before it) and applied; PostgreSQL expects "last received + 1" style
 * positions, which is the caller's choice. Returns the bytes written
 * (SP_STANDBY_STATUS_LEN), or 0 if cap is too small. */
size_t spStandbyStatusBuild(uint8_t *out, size_t cap, uint64_t write_lsn, uint64_t flush_lsn, uint64_t apply_lsn,
                            int64_t now_us_since_2000, bool reply);

/* ---- relation cache ------------------------------------------------------ */

typedef struct spColumn {
    char *name;        /* owned by the cache */
    uint32_t type_oid;
    int32_t typmod;
    uint8_t flags;     /* 1: part of the replica identity key */
} spColumn;

typedef struct spRelation {
    uint32_t relid;
    char *nspname;     /* owned by the cache; "pg_catalog" when sent empty */
    char *relname;     /* owned by the cache */
    char replident;    /* 'd' default, 'n' nothing, 'f' full, 'i' index */
    int ncols;
    spColumn *cols;    /* owned by the cache */
} spRelation;

/* Relation metadata by relid, filled by Relation messages. A small linear
 * table: a publication holds few relations. */
typedef struct spRelCache spRelCache;

/* Returns NULL when out of memory. */
spRelCache *spRelCacheNew(void);
/* Frees the cache and every spRelation it handed out. NULL is fine. */
void spRelCacheFree(spRelCache *c);
/* The entry for relid, or NULL. The pointer (and every name in it) stays
 * valid until a Relation message for the same relid replaces the entry, or
 * the cache is freed. */
const spRelation *spRelCacheGet(const spRelCache *c, uint32_t relid);
size_t spRelCacheCount(const spRelCache *c);
/* Index of column name in rel, or -1. */
int spRelationColumn(const spRelation *rel, const char *name);

/* ---- pgoutput messages --------------------------------------------------- */

typedef enum spMsgType {
    SP_MSG_BEGIN = 'B',
    SP_MSG_COMMIT = 'C',
    SP_MSG_ORIGIN = 'O',
    SP_MSG_RELATION = 'R',
    SP_MSG_TYPE = 'Y',
    SP_MSG_INSERT = 'I',
    SP_MSG_UPDATE = 'U',
    SP_MSG_DELETE = 'D',
    SP_MSG_TRUNCATE = 'T',
    SP_MSG_MESSAGE = 'M',
} spMsgType;

typedef enum spValueKind {
    SP_VAL_NULL = 'n',
    SP_VAL_UNCHANGED = 'u', /* unchanged TOASTed value: not sent */
    SP_VAL_TEXT = 't',
    SP_VAL_BINARY = 'b',
} spValueKind;

/* One column value. data points into the input buffer and is NOT
 * NUL-terminated; NULL for null and unchanged values. */
typedef struct spValue {
    spValueKind kind;
    const uint8_t *data;
    uint32_t len;
} spValue;

/* A tuple: ncols values in the relation's column order; values is scratch
 * storage owned by the spMsg and reused by the next parse into it. */
typedef struct spTuple {
    int ncols;
    spValue *values;
} spTuple;

typedef struct spMsg {
    spMsgType type;
    union {
        struct { uint64_t final_lsn; int64_t commit_time; uint32_t xid; } begin;
        struct { uint8_t flags; uint64_t commit_lsn, end_lsn; int64_t commit_time; } commit;
        struct { uint64_t commit_lsn; const char *name; } origin; /* name into the input */
        struct { uint32_t oid; const char *nspname, *name; } type;  /* names into the input */
        /* Relation: the cache entry just stored (see spRelCacheGet for its lifetime). */
        const spRelation *relation;
        /* Insert: newtup. Update: oldtup if old_kind is 'K' (key columns only,
         * others null) or 'O' (the whole old row), 0 and empty otherwise, then
         * newtup. Delete: old_kind 'K' or 'O' and oldtup. */
        struct {
            const spRelation *rel;
            char old_kind;
            spTuple oldtup, newtup;
        } change;
        /* relids: scratch owned by the spMsg. options: 1 CASCADE, 2 RESTART IDENTITY. */
        struct { uint8_t options; int nrelids; const uint32_t *relids; } truncate;
        /* flags 1: transactional. prefix NUL-terminated and content: into the input. */
        struct { uint8_t flags; uint64_t lsn; const char *prefix; const uint8_t *content; uint32_t len; } message;
    } u;
    /* Scratch storage, private: grows as needed and is freed by spMsgFree. */
    spValue *scratch_vals;
    size_t scratch_vals_cap;
    uint32_t *scratch_relids;
    size_t scratch_relids_cap;
} spMsg;

/* A spMsg must start zeroed (spMsg m = {0};) and be released with
 * spMsgFree when done; one spMsg can take any number of parses. */
void spMsgFree(spMsg *m);

/* Parses one pgoutput message (the payload of an XLogData). A Relation
 * message updates the cache (replacing any entry for its relid); Insert,
 * Update and Delete need their relation in the cache and a tuple with
 * exactly its column count. On false, *out is unspecified, the cache is
 * unchanged and errbuf says which message and what is wrong. */
DS_MUST_CHECK bool spPgoutputParse(spRelCache *cache, const uint8_t *buf, size_t len, spMsg *out, char *errbuf, size_t errlen);

/* The value of column name in tup of rel, or NULL if rel has no such column. */
const spValue *spTupleGet(const spRelation *rel, const spTuple *tup, const char *name);

/* A message type's name for logs ("Insert"), "unknown" otherwise. */
const char *spMsgTypeName(int type);

#endif
