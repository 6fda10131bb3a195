/* pgoutput.c - owns the decoding of replication CopyData framing and of
 * pgoutput protocol version 1 messages, and the relation cache. Every read
 * goes through the bounds-checked reader below, so malformed input can only
 * produce an error message. */
#include "pgoutput.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- LSNs ---------------------------------------------------------------- */

char *spLsnFormat(uint64_t lsn, char out[24]) {
    snprintf(out, 24, "%X/%X", (unsigned)(lsn >> 32), (unsigned)(lsn & 0xffffffffu));
    return out;
}

/* Parses 1..8 hex digits up to stop; strtoul would accept signs and spaces. */
static bool lsnHalf(const char *s, char stop, uint32_t *v, const char **end) {
    uint32_t x = 0;
    int n = 0;
    for (; *s != stop; s++, n++) {
        int d;
        if (*s >= '0' && *s <= '9') d = *s - '0';
        else if (*s >= 'a' && *s <= 'f') d = *s - 'a' + 10;
        else if (*s >= 'A' && *s <= 'F') d = *s - 'A' + 10;
        else return false;
        if (n == 8) return false;
        x = x << 4 | (uint32_t)d;
    }
    if (n == 0) return false;
    *v = x;
    *end = s;
    return true;
}

bool spLsnParse(const char *s, uint64_t *lsn) {
    uint32_t hi, lo;
    const char *e;
    if (s == NULL || !lsnHalf(s, '/', &hi, &e) || !lsnHalf(e + 1, '\0', &lo, &e)) return false;
    *lsn = (uint64_t)hi << 32 | lo;
    return true;
}

/* ---- bounds-checked reader ----------------------------------------------- */

typedef struct rd {
    const uint8_t *p;
    size_t len, pos;
    const char *msg; /* message name, the prefix of every error */
    char *err;
    size_t errlen;
} rd;

static bool rdFail(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool rdFail(rd *r, const char *fmt, ...) {
    if (r->err == NULL || r->errlen == 0) return false;
    int n = snprintf(r->err, r->errlen, "%s: ", r->msg);
    if (n < 0 || (size_t)n >= r->errlen) return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

static size_t rdLeft(const rd *r) {
    return r->len - r->pos;
}

static bool rdNeed(rd *r, size_t n, const char *what) {
    if (rdLeft(r) >= n) return true;
    return rdFail(r, "truncated at offset %zu reading %s (%zu bytes, %zu left)", r->pos, what, n, rdLeft(r));
}

static uint64_t be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

static bool rdInt(rd *r, int n, uint64_t *v, const char *what) {
    if (!rdNeed(r, (size_t)n, what)) return false;
    *v = be(r->p + r->pos, n);
    r->pos += (size_t)n;
    return true;
}

static bool rdU8(rd *r, uint8_t *v, const char *what) {
    uint64_t x;
    if (!rdInt(r, 1, &x, what)) return false;
    *v = (uint8_t)x;
    return true;
}

static bool rdU16(rd *r, uint16_t *v, const char *what) {
    uint64_t x;
    if (!rdInt(r, 2, &x, what)) return false;
    *v = (uint16_t)x;
    return true;
}

static bool rdU32(rd *r, uint32_t *v, const char *what) {
    uint64_t x;
    if (!rdInt(r, 4, &x, what)) return false;
    *v = (uint32_t)x;
    return true;
}

static bool rdU64(rd *r, uint64_t *v, const char *what) {
    return rdInt(r, 8, v, what);
}

static bool rdI64(rd *r, int64_t *v, const char *what) {
    uint64_t x;
    if (!rdInt(r, 8, &x, what)) return false;
    *v = (int64_t)x;
    return true;
}

/* A NUL-terminated string, returned in place: the terminator is checked to
 * lie inside the message. */
static bool rdStr(rd *r, const char **s, const char *what) {
    const uint8_t *nul = memchr(r->p + r->pos, 0, rdLeft(r));
    if (nul == NULL) return rdFail(r, "unterminated %s at offset %zu", what, r->pos);
    *s = (const char *)(r->p + r->pos);
    r->pos = (size_t)(nul - r->p) + 1;
    return true;
}

static bool rdEnd(rd *r) {
    if (rdLeft(r) == 0) return true;
    return rdFail(r, "%zu trailing bytes at offset %zu", rdLeft(r), r->pos);
}

/* ---- CopyData framing ---------------------------------------------------- */

bool spCopyDataParse(const uint8_t *buf, size_t len, spCopyData *out, char *errbuf, size_t errlen) {
    rd r = {buf, len, 0, "CopyData", errbuf, errlen};
    uint8_t kind;
    if (buf == NULL || len == 0) return rdFail(&r, "empty payload");
    if (!rdU8(&r, &kind, "kind")) return false;
    memset(out, 0, sizeof(*out));
    out->kind = (spCopyKind)kind;
    if (kind == 'w') {
        r.msg = "XLogData";
        if (!rdU64(&r, &out->wal_start, "dataStart") || !rdU64(&r, &out->wal_end, "walEnd") ||
            !rdI64(&r, &out->send_time, "sendTime"))
            return false;
        out->data = buf + r.pos;
        out->len = rdLeft(&r);
        return true;
    }
    if (kind == 'k') {
        uint8_t reply;
        r.msg = "keepalive";
        if (!rdU64(&r, &out->wal_end, "walEnd") || !rdI64(&r, &out->send_time, "sendTime") ||
            !rdU8(&r, &reply, "replyRequested"))
            return false;
        if (reply > 1) return rdFail(&r, "replyRequested is %u, not 0 or 1", reply);
        out->reply_requested = reply == 1;
        return rdEnd(&r);
    }
    return rdFail(&r, "unknown kind 0x%02x", kind);
}

static void put64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

size_t spStandbyStatusBuild(uint8_t *out, size_t cap, uint64_t write_lsn, uint64_t flush_lsn, uint64_t apply_lsn,
                            int64_t now_us_since_2000, bool reply) {
    if (out == NULL || cap < SP_STANDBY_STATUS_LEN) return 0;
    out[0] = 'r';
    put64(out + 1, write_lsn);
    put64(out + 9, flush_lsn);
    put64(out + 17, apply_lsn);
    put64(out + 25, (uint64_t)now_us_since_2000);
    out[33] = reply ? 1 : 0;
    return SP_STANDBY_STATUS_LEN;
}

/* ---- relation cache ------------------------------------------------------ */

struct spRelCache {
    spRelation **rels; /* pointers, so entries keep their address as the table grows */
    size_t n, cap;
};

spRelCache *spRelCacheNew(void) {
    return calloc(1, sizeof(spRelCache));
}

static void relFree(spRelation *rel) {
    if (rel == NULL) return;
    for (int i = 0; i < rel->ncols; i++) free(rel->cols[i].name);
    free(rel->cols);
    free(rel->nspname);
    free(rel->relname);
    free(rel);
}

void spRelCacheFree(spRelCache *c) {
    if (c == NULL) return;
    for (size_t i = 0; i < c->n; i++) relFree(c->rels[i]);
    free(c->rels);
    free(c);
}

static spRelation **relSlot(const spRelCache *c, uint32_t relid) {
    for (size_t i = 0; i < c->n; i++)
        if (c->rels[i]->relid == relid) return &c->rels[i];
    return NULL;
}

const spRelation *spRelCacheGet(const spRelCache *c, uint32_t relid) {
    spRelation **s = c ? relSlot(c, relid) : NULL;
    return s ? *s : NULL;
}

size_t spRelCacheCount(const spRelCache *c) {
    return c ? c->n : 0;
}

/* Takes ownership of rel: replaces the entry for its relid or appends. */
static bool relStore(spRelCache *c, spRelation *rel) {
    spRelation **s = relSlot(c, rel->relid);
    if (s != NULL) {
        relFree(*s);
        *s = rel;
        return true;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        spRelation **r = realloc(c->rels, cap * sizeof(*r));
        if (r == NULL) return false;
        c->rels = r;
        c->cap = cap;
    }
    c->rels[c->n++] = rel;
    return true;
}

int spRelationColumn(const spRelation *rel, const char *name) {
    if (rel == NULL || name == NULL) return -1;
    for (int i = 0; i < rel->ncols; i++)
        if (strcmp(rel->cols[i].name, name) == 0) return i;
    return -1;
}

const spValue *spTupleGet(const spRelation *rel, const spTuple *tup, const char *name) {
    int i = spRelationColumn(rel, name);
    if (i < 0 || tup == NULL || i >= tup->ncols) return NULL;
    return &tup->values[i];
}

/* ---- pgoutput messages --------------------------------------------------- */

const char *spMsgTypeName(int type) {
    switch (type) {
    case SP_MSG_BEGIN: return "Begin";
    case SP_MSG_COMMIT: return "Commit";
    case SP_MSG_ORIGIN: return "Origin";
    case SP_MSG_RELATION: return "Relation";
    case SP_MSG_TYPE: return "Type";
    case SP_MSG_INSERT: return "Insert";
    case SP_MSG_UPDATE: return "Update";
    case SP_MSG_DELETE: return "Delete";
    case SP_MSG_TRUNCATE: return "Truncate";
    case SP_MSG_MESSAGE: return "Message";
    default: return "unknown";
    }
}

void spMsgFree(spMsg *m) {
    if (m == NULL) return;
    free(m->scratch_vals);
    free(m->scratch_relids);
    m->scratch_vals = NULL;
    m->scratch_relids = NULL;
    m->scratch_vals_cap = m->scratch_relids_cap = 0;
}

/* Grows a scratch array to at least n elements of size sz. */
static bool growScratch(void **p, size_t *cap, size_t n, size_t sz) {
    if (n <= *cap) return true;
    void *q = realloc(*p, n * sz);
    if (q == NULL) return false;
    *p = q;
    *cap = n;
    return true;
}

/* pgoutput sends the pg_catalog namespace as an empty string. */
static const char *nspName(const char *s) {
    return *s ? s : "pg_catalog";
}

static bool parseBegin(rd *r, spMsg *m) {
    return rdU64(r, &m->u.begin.final_lsn, "final LSN") && rdI64(r, &m->u.begin.commit_time, "commit timestamp") &&
           rdU32(r, &m->u.begin.xid, "xid");
}

static bool parseCommit(rd *r, spMsg *m) {
    return rdU8(r, &m->u.commit.flags, "flags") && rdU64(r, &m->u.commit.commit_lsn, "commit LSN") &&
           rdU64(r, &m->u.commit.end_lsn, "end LSN") && rdI64(r, &m->u.commit.commit_time, "commit timestamp");
}

static bool parseOrigin(rd *r, spMsg *m) {
    return rdU64(r, &m->u.origin.commit_lsn, "commit LSN") && rdStr(r, &m->u.origin.name, "origin name");
}

static bool parseType(rd *r, spMsg *m) {
    if (!rdU32(r, &m->u.type.oid, "type oid") || !rdStr(r, &m->u.type.nspname, "namespace") ||
        !rdStr(r, &m->u.type.name, "type name"))
        return false;
    m->u.type.nspname = nspName(m->u.type.nspname);
    return true;
}

static bool parseMessage(rd *r, spMsg *m) {
    uint32_t len;
    if (!rdU8(r, &m->u.message.flags, "flags") || !rdU64(r, &m->u.message.lsn, "LSN") ||
        !rdStr(r, &m->u.message.prefix, "prefix") || !rdU32(r, &len, "content length"))
        return false;
    if (len > rdLeft(r)) return rdFail(r, "content length %" PRIu32 " exceeds message (%zu bytes left)", len, rdLeft(r));
    m->u.message.content = r->p + r->pos;
    m->u.message.len = len;
    r->pos += len;
    return true;
}

static bool parseTruncate(rd *r, spMsg *m) {
    uint32_t n;
    if (!rdU32(r, &n, "relation count") || !rdU8(r, &m->u.truncate.options, "options")) return false;
    /* Checked before allocating, so a bogus count cannot ask for gigabytes. */
    if (n > rdLeft(r) / 4) return rdFail(r, "relation count %" PRIu32 " exceeds message (%zu bytes left)", n, rdLeft(r));
    if (!growScratch((void **)&m->scratch_relids, &m->scratch_relids_cap, n ? n : 1, sizeof(uint32_t)))
        return rdFail(r, "out of memory");
    for (uint32_t i = 0; i < n; i++) rdU32(r, &m->scratch_relids[i], "relid");
    m->u.truncate.nrelids = (int)n;
    m->u.truncate.relids = m->scratch_relids;
    return true;
}

/* Reads the columns of a Relation message into rel (already allocated). */
static bool parseColumns(rd *r, spRelation *rel) {
    uint16_t n;
    if (!rdU16(r, &n, "column count")) return false;
    /* Each column takes at least 10 bytes: check before allocating. */
    if ((size_t)n * 10 > rdLeft(r)) return rdFail(r, "column count %u exceeds message (%zu bytes left)", n, rdLeft(r));
    rel->cols = calloc(n ? n : 1, sizeof(spColumn));
    if (rel->cols == NULL) return rdFail(r, "out of memory");
    for (int i = 0; i < n; i++) {
        spColumn *col = &rel->cols[i];
        const char *name;
        uint32_t typmod;
        if (!rdU8(r, &col->flags, "column flags") || !rdStr(r, &name, "column name") ||
            !rdU32(r, &col->type_oid, "column type oid") || !rdU32(r, &typmod, "column typmod"))
            return false;
        col->typmod = (int32_t)typmod;
        if ((col->name = strdup(name)) == NULL) return rdFail(r, "out of memory");
        rel->ncols = i + 1;
    }
    return true;
}

static bool parseRelation(rd *r, spRelCache *cache, spMsg *m) {
    const char *nsp, *name;
    uint8_t ident;
    spRelation *rel = calloc(1, sizeof(*rel));
    if (rel == NULL) return rdFail(r, "out of memory");
    bool ok = rdU32(r, &rel->relid, "relid") && rdStr(r, &nsp, "namespace") && rdStr(r, &name, "relation name") &&
              rdU8(r, &ident, "replica identity") && parseColumns(r, rel) && rdEnd(r);
    if (ok) {
        rel->replident = (char)ident;
        rel->nspname = strdup(nspName(nsp));
        rel->relname = strdup(name);
        if (rel->nspname == NULL || rel->relname == NULL) ok = rdFail(r, "out of memory");
    }
    /* Stored only once complete, so a bad message leaves the old entry. */
    if (ok && !relStore(cache, rel)) ok = rdFail(r, "out of memory");
    if (!ok) {
        relFree(rel);
        return false;
    }
    m->u.relation = rel;
    return true;
}

/* TupleData into vals (room for rel->ncols). which names the tuple in errors. */
static bool parseTuple(rd *r, const spRelation *rel, spValue *vals, spTuple *t, const char *which) {
    uint16_t n;
    if (!rdU16(r, &n, "tuple column count")) return false;
    if (n != rel->ncols)
        return rdFail(r, "%s tuple has %u columns, relation %s.%s (relid %" PRIu32 ") has %d", which, n, rel->nspname,
                      rel->relname, rel->relid, rel->ncols);
    for (int i = 0; i < n; i++) {
        uint8_t kind = 0;
        uint32_t len = 0;
        spValue *v = &vals[i];
        if (!rdNeed(r, 1, "tuple column kind"))
            return rdFail(r, "truncated %s tuple at column %d (%s) kind", which, i, rel->cols[i].name);
        rdU8(r, &kind, "tuple column kind");
        v->kind = (spValueKind)kind;
        v->data = NULL;
        v->len = 0;
        if (kind == 'n' || kind == 'u') continue;
        if (kind != 't' && kind != 'b')
            return rdFail(r, "%s tuple column %d (%s) has unknown kind 0x%02x", which, i, rel->cols[i].name, kind);
        if (!rdNeed(r, 4, "tuple column length"))
            return rdFail(r, "truncated %s tuple at column %d (%s) length", which, i, rel->cols[i].name);
        rdU32(r, &len, "tuple column length");
        if (len > rdLeft(r))
            return rdFail(r, "tuple column %d (%s) length %" PRIu32 " exceeds message (%zu bytes left)", i,
                          rel->cols[i].name, len, rdLeft(r));
        v->data = r->p + r->pos;
        v->len = len;
        r->pos += len;
    }
    t->ncols = n;
    t->values = vals;
    return true;
}

/* Insert, Update and Delete: relid, then tuples tagged 'K', 'O' or 'N'. */
static bool parseChange(rd *r, const spRelCache *cache, spMsg *m) {
    uint32_t relid;
    uint8_t tag;
    if (!rdU32(r, &relid, "relid")) return false;
    const spRelation *rel = spRelCacheGet(cache, relid);
    if (rel == NULL) return rdFail(r, "unknown relid %" PRIu32 " (no Relation message before it)", relid);
    /* Old and new tuples side by side in one scratch array. */
    size_t need = (size_t)rel->ncols * 2;
    if (!growScratch((void **)&m->scratch_vals, &m->scratch_vals_cap, need ? need : 1, sizeof(spValue)))
        return rdFail(r, "out of memory");
    memset(&m->u.change, 0, sizeof(m->u.change));
    m->u.change.rel = rel;
    if (!rdU8(r, &tag, "tuple tag")) return false;
    if (m->type != SP_MSG_INSERT && (tag == 'K' || tag == 'O')) {
        m->u.change.old_kind = (char)tag;
        if (!parseTuple(r, rel, m->scratch_vals, &m->u.change.oldtup, "old")) return false;
        if (m->type == SP_MSG_DELETE) return true;
        if (!rdU8(r, &tag, "new tuple tag")) return false;
    } else if (m->type == SP_MSG_DELETE) {
        return rdFail(r, "tuple tag 0x%02x, expected 'K' or 'O'", tag);
    }
    if (tag != 'N') return rdFail(r, "tuple tag 0x%02x, expected 'N'", tag);
    return parseTuple(r, rel, m->scratch_vals + rel->ncols, &m->u.change.newtup, "new");
}

bool spPgoutputParse(spRelCache *cache, const uint8_t *buf, size_t len, spMsg *out, char *errbuf, size_t errlen) {
    rd r = {buf, len, 0, "pgoutput", errbuf, errlen};
    uint8_t type = 0;
    if (buf == NULL || len == 0) return rdFail(&r, "empty message");
    if (cache == NULL || out == NULL) return rdFail(&r, "no cache or output");
    rdU8(&r, &type, "type");
    out->type = (spMsgType)type;
    r.msg = spMsgTypeName(type);
    bool ok;
    switch (type) {
    case SP_MSG_BEGIN: ok = parseBegin(&r, out); break;
    case SP_MSG_COMMIT: ok = parseCommit(&r, out); break;
    case SP_MSG_ORIGIN: ok = parseOrigin(&r, out); break;
    case SP_MSG_TYPE: ok = parseType(&r, out); break;
    case SP_MSG_MESSAGE: ok = parseMessage(&r, out); break;
    case SP_MSG_TRUNCATE: ok = parseTruncate(&r, out); break;
    /* Relation checks its own end: it must not touch the cache otherwise. */
    case SP_MSG_RELATION: return parseRelation(&r, cache, out);
    case SP_MSG_INSERT:
    case SP_MSG_UPDATE:
    case SP_MSG_DELETE: ok = parseChange(&r, cache, out); break;
    default:
        r.msg = "pgoutput";
        return rdFail(&r, "unknown message type 0x%02x", type);
    }
    return ok && rdEnd(&r);
}
