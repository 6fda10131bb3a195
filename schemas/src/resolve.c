/* resolve.c - schema resolution between the codec's versions (codec.h):
 * which version a schema is, and the walk that turns a value of the
 * writer's version into a value of the reader's.
 *
 * avro-c 1.11's resolvers leave the reader's fields that the writer lacks
 * unset instead of giving them their defaults, so the codec resolves by
 * itself, following the Avro specification. It walks the two versions' rule
 * trees (which mirror their Avro schemas and carry the defaults) and the two
 * values in lock step; a default is converted by dsWalkValue(), the same
 * code that checked it when the schema was loaded. The specification's
 * string <-> bytes promotion has nothing to apply to: the codec refuses bytes
 * and fixed at load.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec_internal.h"

dsCodecVersion *dsCodecFindSchema(const dsCodec *c, avro_schema_t s) {
    if (!s) return NULL;
    for (size_t i = 0; i < c->nversions; i++)
        if (c->versions[i].schema == s) return &c->versions[i];
    /* Two versions can be structurally equal (one only added a doc or a
     * rule); the current one is then the natural reading. */
    if (avro_schema_equal(c->current->schema, s)) return c->current;
    for (size_t i = 0; i < c->nversions; i++)
        if (avro_schema_equal(c->versions[i].schema, s)) return &c->versions[i];
    return NULL;
}

int dsCodecVersionOfSchema(const dsCodec *c, avro_schema_t s) {
    const dsCodecVersion *v = dsCodecFindSchema(c, s);
    return v ? v->version : -1;
}

/* ---- errors ---- */

typedef struct rsWalk {
    dsWalk w;         /* the JSON path, shared with dsWalkValue() for defaults */
    dsCodecError err; /* where dsWalkValue() reports */
    int from, to;     /* versions, for the message */
    char *errbuf;
    size_t errlen;
} rsWalk;

static bool rfail(rsWalk *rs, const char *fmt, ...) {
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char path[DS_WALK_PATH_MAX];
    dsWalkPath(&rs->w, path);
    /* Map keys in the path come from data: never cut a character in two. */
    if (snprintf(rs->errbuf, rs->errlen, "version %d -> %d: %s %s", rs->from, rs->to, path[0] ? path : "the record",
                 msg) >= (int)rs->errlen && rs->errlen)
        dsUtf8TrimPartial(rs->errbuf);
    return false;
}

static bool avroFail(rsWalk *rs) { return rfail(rs, "cannot be stored: %s", avro_strerror()); }

/* "a long", "record com.bnpl.decisions.Money", for messages. */
static const char *describe(const dsRule *r, char *buf, size_t len) {
    static const char *const names[] = {
        [DSR_NULL] = "null",     [DSR_BOOLEAN] = "a boolean", [DSR_INT] = "an int",   [DSR_LONG] = "a long",
        [DSR_FLOAT] = "a float", [DSR_DOUBLE] = "a double",   [DSR_STRING] = "a string", [DSR_ARRAY] = "an array",
        [DSR_MAP] = "a map",     [DSR_UNION] = "a union",
    };
    if (r->kind == DSR_RECORD || r->kind == DSR_ENUM)
        snprintf(buf, len, "%s %s", r->kind == DSR_RECORD ? "record" : "enum", r->fullname);
    else
        snprintf(buf, len, "%s", names[r->kind]);
    return buf;
}

/* ---- matching ---- */

static bool promotes(dsRuleKind w, dsRuleKind r) {
    switch (w) {
    case DSR_INT: return r == DSR_LONG || r == DSR_FLOAT || r == DSR_DOUBLE;
    case DSR_LONG: return r == DSR_FLOAT || r == DSR_DOUBLE;
    case DSR_FLOAT: return r == DSR_DOUBLE;
    default: return false;
    }
}

static const char *unqualified(const char *fullname) {
    const char *dot = strrchr(fullname, '.');
    return dot ? dot + 1 : fullname;
}

/* The specification's "match": whether a writer type may resolve to a
 * reader type at all; it also picks the reader's union branch. Named types
 * match by unqualified name (Avro 1.10+), so a namespace move is no break. */
static bool matches(const dsRule *w, const dsRule *r) {
    if (w->kind != r->kind) return promotes(w->kind, r->kind);
    if (w->kind != DSR_RECORD && w->kind != DSR_ENUM) return true;
    return strcmp(unqualified(w->fullname), unqualified(r->fullname)) == 0;
}

/* ---- the walk ---- */

/* The null branch of a union has no rule of its own in the tree. */
static const dsRule nullRule = {.kind = DSR_NULL};

static bool resolveValue(rsWalk *rs, const dsRule *wr, avro_value_t *src, const dsRule *rr, avro_value_t *dst);

static bool readLong(const dsRule *wr, avro_value_t *src, int64_t *n) {
    int32_t i;
    if (wr->kind == DSR_LONG) return avro_value_get_long(src, n) == 0;
    if (avro_value_get_int(src, &i) != 0) return false;
    *n = i;
    return true;
}

static bool readDouble(const dsRule *wr, avro_value_t *src, double *d) {
    float f;
    int64_t n;
    if (wr->kind == DSR_DOUBLE) return avro_value_get_double(src, d) == 0;
    if (wr->kind == DSR_FLOAT) {
        if (avro_value_get_float(src, &f) != 0) return false;
        *d = f;
        return true;
    }
    if (!readLong(wr, src, &n)) return false;
    *d = (double)n; /* long -> double may round: the specification allows it */
    return true;
}

/* Same types, or a promotion matches() allowed. */
static bool resolveScalar(rsWalk *rs, const dsRule *wr, avro_value_t *src, const dsRule *rr, avro_value_t *dst) {
    int b;
    int32_t i;
    int64_t n;
    double d;
    const char *s;
    size_t len;
    bool ok = false;
    switch (rr->kind) {
    case DSR_NULL: ok = avro_value_set_null(dst) == 0; break;
    case DSR_BOOLEAN: ok = avro_value_get_boolean(src, &b) == 0 && avro_value_set_boolean(dst, b) == 0; break;
    case DSR_INT: ok = avro_value_get_int(src, &i) == 0 && avro_value_set_int(dst, i) == 0; break;
    case DSR_LONG: ok = readLong(wr, src, &n) && avro_value_set_long(dst, n) == 0; break;
    case DSR_FLOAT: ok = readDouble(wr, src, &d) && avro_value_set_float(dst, (float)d) == 0; break;
    case DSR_DOUBLE: ok = readDouble(wr, src, &d) && avro_value_set_double(dst, d) == 0; break;
    /* avro-c's string size counts the NUL, in and out alike. */
    case DSR_STRING: ok = avro_value_get_string(src, &s, &len) == 0 && avro_value_set_string_len(dst, s, len) == 0; break;
    default: break;
    }
    return ok || avroFail(rs);
}

static bool resolveEnum(rsWalk *rs, const dsRule *wr, avro_value_t *src, const dsRule *rr, avro_value_t *dst) {
    int e;
    if (avro_value_get_enum(src, &e) != 0 || e < 0 || (size_t)e >= wr->nsymbols)
        return rfail(rs, "holds no symbol of the writer's enum %s", wr->fullname);
    const char *sym = wr->symbols[e];
    int to = rr->default_symbol;
    for (size_t i = 0; i < rr->nsymbols; i++)
        if (strcmp(rr->symbols[i], sym) == 0) {
            to = (int)i;
            break;
        }
    if (to < 0)
        return rfail(rs, "has the writer's symbol %s, which the reader's enum %s lacks and has no default for "
                     "(enum resolution)", sym, rr->fullname);
    return avro_value_set_enum(dst, to) == 0 || avroFail(rs);
}

/* Arrays and maps: element by element, map keys kept (they are stored
 * sorted already, so the order carries over). */
static bool resolveItems(rsWalk *rs, const dsRule *wr, avro_value_t *src, const dsRule *rr, avro_value_t *dst) {
    bool map = rr->kind == DSR_MAP;
    size_t n;
    if (avro_value_get_size(src, &n) != 0) return avroFail(rs);
    for (size_t i = 0; i < n; i++) {
        const char *key = NULL;
        avro_value_t s, d;
        if (avro_value_get_by_index(src, i, &s, map ? &key : NULL) != 0 ||
            (map ? avro_value_add(dst, key, &d, NULL, NULL) : avro_value_append(dst, &d, NULL)) != 0)
            return avroFail(rs);
        size_t saved = map ? dsWalkPushKey(&rs->w, key, strlen(key)) : dsWalkPushIndex(&rs->w, i);
        bool ok = resolveValue(rs, wr->items, &s, rr->items, &d);
        dsWalkPopPath(&rs->w, saved);
        if (!ok) return false;
    }
    return true;
}

/* One reader field: the writer's field of that name, else the reader's
 * default. */
static bool resolveField(rsWalk *rs, const dsRule *wr, avro_value_t *src, const dsRuleField *rf, avro_value_t *dst) {
    for (size_t j = 0; j < wr->nfields; j++) {
        avro_value_t s;
        if (strcmp(wr->fields[j].name, rf->name) != 0) continue;
        if (avro_value_get_by_index(src, j, &s, NULL) != 0) return avroFail(rs);
        return resolveValue(rs, wr->fields[j].type, &s, rf->type, dst);
    }
    if (!rf->def)
        return rfail(rs, "is missing from the writer's record and has no default in the reader's "
                     "(record field resolution)");
    /* Defaults were checked at load, so only avro-c can fail here. */
    return dsWalkValue(&rs->w, rf->type, rf->def, dst) || rfail(rs, "cannot take its default: %s", rs->err.message);
}

/* Writer fields the reader lacks are skipped: the loop is over the reader's. */
static bool resolveRecord(rsWalk *rs, const dsRule *wr, avro_value_t *src, const dsRule *rr, avro_value_t *dst) {
    for (size_t i = 0; i < rr->nfields; i++) {
        avro_value_t d;
        if (avro_value_get_by_index(dst, i, &d, NULL) != 0) return avroFail(rs);
        size_t saved = dsWalkPushField(&rs->w, rr->fields[i].name);
        bool ok = resolveField(rs, wr, src, &rr->fields[i], &d);
        dsWalkPopPath(&rs->w, saved);
        if (!ok) return false;
    }
    return true;
}

/* A union writer resolves by the branch it holds, whatever the reader is. */
static bool fromUnion(rsWalk *rs, const dsRule *wr, avro_value_t *src, const dsRule *rr, avro_value_t *dst) {
    int d;
    avro_value_t branch;
    if (avro_value_get_discriminant(src, &d) != 0 || avro_value_get_current_branch(src, &branch) != 0 ||
        (d != wr->null_index && d != wr->branch_index))
        return rfail(rs, "holds no branch of the writer's union");
    return resolveValue(rs, d == wr->null_index ? &nullRule : wr->branch, &branch, rr, dst);
}

/* Kept out of the recursive functions, so their frames stay small. */
static bool __attribute__((noinline)) mismatch(rsWalk *rs, const dsRule *wr, const dsRule *rr) {
    char wd[160], rd[160];
    if (rr->kind == DSR_UNION)
        return rfail(rs, "is %s in the writer, which matches no branch of the reader's union (union resolution)",
                     describe(wr, wd, sizeof wd));
    return rfail(rs, "is %s in the writer and %s in the reader, which do not resolve (%s)", describe(wr, wd, sizeof wd),
                 describe(rr, rd, sizeof rd),
                 wr->kind == rr->kind ? "named types match by unqualified name" : "type matching and promotion");
}

/* A non-union writer takes the reader union's first matching branch. */
static bool toUnion(rsWalk *rs, const dsRule *wr, avro_value_t *src, const dsRule *rr, avro_value_t *dst) {
    int idx = wr->kind == DSR_NULL ? rr->null_index : matches(wr, rr->branch) ? rr->branch_index : -1;
    avro_value_t branch;
    if (idx < 0) return mismatch(rs, wr, rr);
    if (avro_value_set_branch(dst, idx, &branch) != 0) return avroFail(rs);
    return resolveValue(rs, wr, src, idx == rr->null_index ? &nullRule : rr->branch, &branch);
}

static bool resolveValue(rsWalk *rs, const dsRule *wr, avro_value_t *src, const dsRule *rr, avro_value_t *dst) {
    if (wr->kind == DSR_UNION) return fromUnion(rs, wr, src, rr, dst);
    if (rr->kind == DSR_UNION) return toUnion(rs, wr, src, rr, dst);
    if (!matches(wr, rr)) return mismatch(rs, wr, rr);
    switch (rr->kind) {
    case DSR_RECORD: return resolveRecord(rs, wr, src, rr, dst);
    case DSR_ENUM: return resolveEnum(rs, wr, src, rr, dst);
    case DSR_ARRAY:
    case DSR_MAP: return resolveItems(rs, wr, src, rr, dst);
    default: return resolveScalar(rs, wr, src, rr, dst);
    }
}

bool dsCodecResolve(dsCodec *c, avro_value_t *src, avro_value_t *dst, char *errbuf, size_t errlen) {
    const dsCodecVersion *wv = dsCodecFindSchema(c, avro_value_get_schema(src));
    const dsCodecVersion *rv = dsCodecFindSchema(c, avro_value_get_schema(dst));
    if (!wv || !rv) {
        snprintf(errbuf, errlen, "the %s value is not of a known schema version", wv ? "target" : "source");
        return false;
    }
    if (src->self == dst->self) return true; /* resetting dst would empty src */
    rsWalk rs; /* not zeroed: its path holds 4 KiB of steps, set as they are taken */
    dsWalkInit(&rs.w, &rs.err);
    rs.w.from_default = true;
    rs.from = wv->version;
    rs.to = rv->version;
    rs.errbuf = errbuf;
    rs.errlen = errlen;
    if (avro_value_reset(dst) != 0) return avroFail(&rs);
    if (wv == rv) return avro_value_copy_fast(dst, src) == 0 || avroFail(&rs);
    return resolveValue(&rs, wv->rules.root, src, rv->rules.root, dst);
}
