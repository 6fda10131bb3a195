/* store.c - the LMDB environment, applying decisions, offsets, the sweep
 * of expired events and lookups (see store.h). */
#include "store.h"

#include <errno.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agg.h"
#include "ds/log.h"
#include "event.h"


struct vsStore {
    MDB_env *env;
    const vsVars *vars;
    bool read_only;
    MDB_dbi meta;
    MDB_dbi *events, *running; /* per entity */
    MDB_txn *txn;              /* the writer's open transaction */
    bool full;                 /* the last write failed for want of room in the map */
    atomic_uint_fast64_t readers_cleared;
    vsBuf scratch;             /* the writer's running-state buffer */
    /* where the sweep resumes */
    size_t sweep_entity;
    uint8_t sweep_key[VS_KEY_MAX];
    size_t sweep_keylen;
};

struct vsStoreReader {
    vsStore *s;
    MDB_txn *txn;
    bool active;
    vsAgg **aggs; /* per entity */
};

static bool storeFail(char *errbuf, size_t errlen, const char *what, int rc) {
    snprintf(errbuf, errlen, "%s: %s%s", what, mdb_strerror(rc),
             rc == MDB_MAP_FULL ? " (the state outgrew --map-size: restart with a larger one)" : "");
    return false;
}

/* A failed write: remembers whether the map was full (vsStoreFull). */
static bool storeWriteFail(vsStore *s, char *errbuf, size_t errlen, const char *what, int rc) {
    s->full = rc == MDB_MAP_FULL;
    return storeFail(errbuf, errlen, what, rc);
}

static bool storeOpenDbs(vsStore *s, MDB_txn *txn, char *errbuf, size_t errlen) {
    unsigned flags = s->read_only ? 0 : MDB_CREATE;
    int rc = mdb_dbi_open(txn, "meta", flags, &s->meta);
    if (rc == MDB_NOTFOUND) {
        snprintf(errbuf, errlen, "no variable store state here yet (start the writer first)");
        return false;
    }
    if (rc) return storeFail(errbuf, errlen, "open meta", rc);
    for (size_t i = 0; i < s->vars->nentities; i++) {
        char name[80];
        snprintf(name, sizeof(name), "e/%s", s->vars->entities[i].name);
        if ((rc = mdb_dbi_open(txn, name, flags, &s->events[i])) != 0) return storeFail(errbuf, errlen, name, rc);
        snprintf(name, sizeof(name), "s/%s", s->vars->entities[i].name);
        if ((rc = mdb_dbi_open(txn, name, flags, &s->running[i])) != 0) return storeFail(errbuf, errlen, name, rc);
    }
    return true;
}

static bool storeLayout(vsStore *s, MDB_txn *txn, vsLayoutState *layout, char *errbuf, size_t errlen) {
    MDB_val k = {6, "layout"}, v;
    int rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) *layout = VS_LAYOUT_EMPTY;
    else if (rc) return storeFail(errbuf, errlen, "read layout", rc);
    else
        *layout = v.mv_size == strlen(s->vars->layout) && memcmp(v.mv_data, s->vars->layout, v.mv_size) == 0
                      ? VS_LAYOUT_SAME
                      : VS_LAYOUT_CHANGED;
    if (s->read_only && *layout != VS_LAYOUT_SAME) {
        snprintf(errbuf, errlen, "%s", *layout == VS_LAYOUT_EMPTY
                                           ? "the writer has not built any state yet"
                                           : "the state was built for another variables file than this one");
        return false;
    }
    return true;
}

vsStore *vsStoreOpen(const vsStoreConfig *cfg, const vsVars *vars, vsLayoutState *layout, char *errbuf,
                     size_t errlen) {
    vsStore *s = calloc(1, sizeof(*s));
    MDB_txn *txn = NULL;
    int rc;
    if (s == NULL) return snprintf(errbuf, errlen, "out of memory"), NULL;
    s->vars = vars;
    s->read_only = cfg->read_only;
    s->events = calloc(vars->nentities, sizeof(MDB_dbi));
    s->running = calloc(vars->nentities, sizeof(MDB_dbi));
    if (s->events == NULL || s->running == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        goto failed;
    }
    if (!cfg->read_only && mkdir(cfg->dir, 0750) != 0 && errno != EEXIST) {
        snprintf(errbuf, errlen, "%s: %s", cfg->dir, strerror(errno));
        goto failed;
    }
    if ((rc = mdb_env_create(&s->env)) != 0 || (rc = mdb_env_set_maxdbs(s->env, 1 + 2 * vars->nentities)) != 0 ||
        (rc = mdb_env_set_mapsize(s->env, cfg->map_size)) != 0 ||
        (rc = mdb_env_open(s->env, cfg->dir, MDB_NOTLS | (cfg->read_only ? MDB_RDONLY : 0), 0640)) != 0) {
        storeFail(errbuf, errlen, cfg->dir, rc);
        goto failed;
    }
    /* Before the first transaction: a slot left by a dead process would pin
     * the snapshot it held for as long as this process runs. */
    if (vsStoreReaderCheck(s, errbuf, errlen) < 0) goto failed;
    if ((rc = mdb_txn_begin(s->env, NULL, cfg->read_only ? MDB_RDONLY : 0, &txn)) != 0) {
        storeFail(errbuf, errlen, "begin", rc);
        goto failed;
    }
    if (!storeOpenDbs(s, txn, errbuf, errlen) || !storeLayout(s, txn, layout, errbuf, errlen)) goto failed;
    if ((rc = mdb_txn_commit(txn)) != 0) {
        txn = NULL;
        storeFail(errbuf, errlen, "commit", rc);
        goto failed;
    }
    return s;
failed:
    if (txn) mdb_txn_abort(txn);
    vsStoreClose(s);
    return NULL;
}

void vsStoreClose(vsStore *s) {
    if (s == NULL) return;
    if (s->txn) mdb_txn_abort(s->txn);
    if (s->env) mdb_env_close(s->env);
    vsBufFree(&s->scratch);
    free(s->events);
    free(s->running);
    free(s);
}

bool vsStoreReset(vsStore *s, char *errbuf, size_t errlen) {
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc) return storeFail(errbuf, errlen, "begin", rc);
    /* Emptied, not deleted, so that replicas' database handles stay valid. */
    for (size_t i = 0; i < s->vars->nentities && rc == 0; i++)
        if ((rc = mdb_drop(txn, s->events[i], 0)) == 0) rc = mdb_drop(txn, s->running[i], 0);
    if (rc == 0) rc = mdb_drop(txn, s->meta, 0);
    MDB_val k = {6, "layout"}, v = {strlen(s->vars->layout), s->vars->layout};
    if (rc == 0) rc = mdb_put(txn, s->meta, &k, &v, 0);
    if (rc) {
        mdb_txn_abort(txn);
        return storeFail(errbuf, errlen, "reset", rc);
    }
    if ((rc = mdb_txn_commit(txn)) != 0) return storeFail(errbuf, errlen, "commit reset", rc);
    s->sweep_entity = 0, s->sweep_keylen = 0;
    return true;
}

bool vsStoreBegin(vsStore *s, char *errbuf, size_t errlen) {
    int rc = mdb_txn_begin(s->env, NULL, 0, &s->txn);
    if (rc) s->txn = NULL;
    return rc == 0 || storeFail(errbuf, errlen, "begin", rc);
}

bool vsStoreCommit(vsStore *s, char *errbuf, size_t errlen) {
    int rc = mdb_txn_commit(s->txn);
    s->txn = NULL;
    if (rc == 0) s->full = false;
    return rc == 0 || storeWriteFail(s, errbuf, errlen, "commit", rc);
}

bool vsStoreFull(const vsStore *s) {
    return s->full;
}

long vsStoreReaderCheck(vsStore *s, char *errbuf, size_t errlen) {
    int dead = 0, rc = mdb_reader_check(s->env, &dead);
    if (rc) return storeFail(errbuf, errlen, "reader check", rc), -1;
    if (dead > 0) {
        atomic_fetch_add(&s->readers_cleared, (uint64_t)dead);
        dsLogWarn("cleared %d stale LMDB reader%s (processes that died holding a snapshot, which kept freed pages "
                  "from being reused)", dead, dead == 1 ? "" : "s");
    }
    return dead;
}

uint64_t vsStoreReadersCleared(vsStore *s) {
    return atomic_load(&s->readers_cleared);
}

void vsStoreAbort(vsStore *s) {
    if (s->txn) mdb_txn_abort(s->txn);
    s->txn = NULL;
}

/* The running values of one entity: merged in place of the stored ones. */
static int storeRunning(vsStore *s, size_t i, const vsEventRef *ev, const vsValue *fields, bool *changed) {
    const vsEntity *e = &s->vars->entities[i];
    MDB_val k = {ev->keylen - VS_EVENT_SUFFIX, (void *)ev->key}, old;
    int rc = mdb_get(s->txn, s->running[i], &k, &old);
    if (rc && rc != MDB_NOTFOUND) return rc;
    if (!vsAggMergeRunning(e, rc ? NULL : old.mv_data, rc ? 0 : old.mv_size, ev->key, ev->keylen, fields,
                           &s->scratch, changed))
        return ENOMEM;
    if (!*changed) return 0;
    MDB_val nv = {s->scratch.len, s->scratch.data};
    return mdb_put(s->txn, s->running[i], &k, &nv, 0);
}

bool vsStoreApply(vsStore *s, const uint8_t *prepared, size_t len, int64_t now, vsApplyResult *res, char *errbuf,
                  size_t errlen) {
    const uint8_t *p = prepared, *end = prepared + len;
    bool counted = false, dup = false;
    for (size_t i = 0; i < s->vars->nentities; i++) {
        const vsEntity *e = &s->vars->entities[i];
        vsEventRef ev;
        vsValue fields[VS_MAX_FIELDS];
        if (!vsEventNext(&p, end, &ev) || e->nfields > VS_MAX_FIELDS ||
            (ev.present && !vsEventFields(ev.val, ev.vallen, fields, e->nfields)))
            return snprintf(errbuf, errlen, "malformed prepared decision"), false;
        if (!ev.present) continue;
        int rc = 0;
        int64_t t = vsEventKeyTime(ev.key, ev.keylen);
        if (e->retention_ms == INT64_MAX || (e->retention_ms > 0 && t > now - e->retention_ms - VS_STORE_SLACK_MS)) {
            MDB_val k = {ev.keylen, (void *)ev.key}, v = {ev.vallen, (void *)ev.val};
            rc = mdb_put(s->txn, s->events[i], &k, &v, MDB_NOOVERWRITE);
            if (rc == MDB_KEYEXIST) dup = true, rc = 0;
            else if (rc == 0) counted = true;
        }
        bool changed = false;
        if (rc == 0 && e->nrunning > 0) rc = storeRunning(s, i, &ev, fields, &changed);
        if (rc) return storeWriteFail(s, errbuf, errlen, e->name, rc);
        counted |= changed;
    }
    *res = counted ? VS_APPLY_COUNTED : dup ? VS_APPLY_DUPLICATE : VS_APPLY_EXPIRED;
    return true;
}

static size_t storeOffsetKey(char *out, size_t cap, const char *topic, int32_t partition) {
    int n = snprintf(out, cap, "offset/%s/%d", topic, (int)partition);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

bool vsStoreSetOffset(vsStore *s, const char *topic, int32_t partition, int64_t next, char *errbuf, size_t errlen) {
    char name[300];
    uint8_t b[8];
    MDB_val k = {storeOffsetKey(name, sizeof(name), topic, partition), name}, v = {8, b};
    vsEventTimeBytes(next, b);
    int rc = k.mv_size ? mdb_put(s->txn, s->meta, &k, &v, 0) : EINVAL;
    return rc == 0 || storeWriteFail(s, errbuf, errlen, "save offset", rc);
}

bool vsStoreGetOffset(vsStore *s, const char *topic, int32_t partition, int64_t *next) {
    char name[300];
    MDB_txn *txn;
    MDB_val k = {storeOffsetKey(name, sizeof(name), topic, partition), name}, v;
    if (k.mv_size == 0 || mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0) return false;
    bool found = mdb_get(txn, s->meta, &k, &v) == 0 && v.mv_size == 8;
    if (found) {
        uint8_t key[VS_EVENT_SUFFIX] = {0};
        memcpy(key, v.mv_data, 8);
        *next = vsEventKeyTime(key, VS_EVENT_SUFFIX);
    }
    mdb_txn_abort(txn);
    return found;
}

/* Visits up to *budget events of entity i from the sweep position. */
static int storeSweepEntity(vsStore *s, MDB_txn *txn, size_t i, int64_t cutoff, size_t *budget, long *deleted,
                            bool *wrapped) {
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->events[i], &c);
    if (rc) return rc;
    MDB_val k = {s->sweep_keylen, s->sweep_key}, v;
    rc = mdb_cursor_get(c, &k, &v, s->sweep_keylen ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0 && *budget > 0) {
        (*budget)--;
        if (vsEventKeyTime(k.mv_data, k.mv_size) <= cutoff) {
            if ((rc = mdb_cursor_del(c, 0)) != 0) break;
            (*deleted)++;
        }
        /* after a delete, MDB_NEXT gives the record that took its place */
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (rc == 0) { /* out of budget: resume here */
        memcpy(s->sweep_key, k.mv_data, k.mv_size);
        s->sweep_keylen = k.mv_size;
    } else if (rc == MDB_NOTFOUND) { /* end of this entity's events */
        s->sweep_entity = (i + 1) % s->vars->nentities;
        *wrapped |= s->sweep_entity == 0;
        s->sweep_keylen = 0;
        rc = 0;
    }
    mdb_cursor_close(c);
    return rc;
}

long vsStoreSweep(vsStore *s, int64_t now, size_t max_visits, bool *wrapped, char *errbuf, size_t errlen) {
    MDB_txn *txn;
    long deleted = 0;
    *wrapped = false;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc) return storeFail(errbuf, errlen, "sweep begin", rc), -1;
    size_t budget = max_visits, start = s->sweep_entity, saved_keylen = s->sweep_keylen;
    uint8_t saved_key[VS_KEY_MAX];
    memcpy(saved_key, s->sweep_key, saved_keylen);
    do {
        const vsEntity *e = &s->vars->entities[s->sweep_entity];
        size_t i = s->sweep_entity;
        if (e->retention_ms == INT64_MAX || e->retention_ms == 0) {
            s->sweep_entity = (i + 1) % s->vars->nentities;
            *wrapped |= s->sweep_entity == 0;
            continue;
        }
        rc = storeSweepEntity(s, txn, i, now - e->retention_ms - VS_STORE_SLACK_MS, &budget, &deleted, wrapped);
    } while (rc == 0 && budget > 0 && s->sweep_entity != start);
    if (rc == 0) rc = mdb_txn_commit(txn);
    else mdb_txn_abort(txn);
    if (rc) { /* nothing was deleted: the next call starts from the same place */
        s->sweep_entity = start, s->sweep_keylen = saved_keylen;
        memcpy(s->sweep_key, saved_key, saved_keylen);
        *wrapped = false;
        return storeWriteFail(s, errbuf, errlen, "sweep", rc), -1;
    }
    s->full = false;
    return deleted;
}

bool vsStoreTouch(vsStore *s, int64_t now, char *errbuf, size_t errlen) {
    MDB_txn *txn;
    uint8_t b[8];
    MDB_val k = {8, "swept_at"}, v = {8, b};
    vsEventTimeBytes(now, b);
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc) return storeFail(errbuf, errlen, "touch begin", rc);
    if ((rc = mdb_put(txn, s->meta, &k, &v, 0)) != 0) mdb_txn_abort(txn);
    else rc = mdb_txn_commit(txn);
    if (rc) return storeWriteFail(s, errbuf, errlen, "touch", rc);
    s->full = false;
    return true;
}

vsStoreReader *vsStoreReaderNew(vsStore *s) {
    vsStoreReader *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->aggs = calloc(s->vars->nentities, sizeof(vsAgg *))) == NULL) {
        free(r);
        return NULL;
    }
    r->s = s;
    for (size_t i = 0; i < s->vars->nentities; i++)
        if ((r->aggs[i] = vsAggNew(&s->vars->entities[i])) == NULL) {
            vsStoreReaderFree(r);
            return NULL;
        }
    return r;
}

void vsStoreReaderFree(vsStoreReader *r) {
    if (r == NULL) return;
    if (r->txn) mdb_txn_abort(r->txn);
    for (size_t i = 0; i < r->s->vars->nentities; i++) vsAggFree(r->aggs[i]);
    free(r->aggs);
    free(r);
}

bool vsStoreReaderBegin(vsStoreReader *r, char *errbuf, size_t errlen) {
    /* A reset transaction is renewed: no reader-table slot is taken again. */
    int rc = r->txn ? mdb_txn_renew(r->txn) : mdb_txn_begin(r->s->env, NULL, MDB_RDONLY, &r->txn);
    if (rc && r->txn == NULL) return storeFail(errbuf, errlen, "begin read", rc);
    if (rc) return storeFail(errbuf, errlen, "renew read", rc);
    r->active = true;
    return true;
}

void vsStoreReaderEnd(vsStoreReader *r) {
    if (r->active) mdb_txn_reset(r->txn);
    r->active = false;
}

static bool storeScan(vsStoreReader *r, size_t i, const uint8_t *prefix, size_t plen, int64_t horizon, vsAgg *agg,
                      char *errbuf, size_t errlen) {
    const vsEntity *e = &r->s->vars->entities[i];
    MDB_cursor *c;
    uint8_t start[VS_KEY_MAX];
    memcpy(start, prefix, plen);
    size_t slen = plen;
    if (horizon != INT64_MIN) vsEventTimeBytes(horizon, start + plen), slen += 8;
    int rc = mdb_cursor_open(r->txn, r->s->events[i], &c);
    if (rc) return storeFail(errbuf, errlen, "cursor", rc);
    MDB_val k = {slen, start}, v;
    vsValue fields[VS_MAX_FIELDS];
    bool ok = true;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != plen + VS_EVENT_SUFFIX || memcmp(k.mv_data, prefix, plen) != 0) break;
        if (!vsEventFields(v.mv_data, v.mv_size, fields, e->nfields)) continue; /* unreadable: skipped */
        if (!vsAggAddEvent(agg, k.mv_data, k.mv_size, fields)) {
            ok = false;
            snprintf(errbuf, errlen, "out of memory");
            break;
        }
    }
    if (ok && rc != 0 && rc != MDB_NOTFOUND) ok = storeFail(errbuf, errlen, "scan", rc);
    mdb_cursor_close(c);
    return ok;
}

json_t *vsStoreLookup(vsStoreReader *r, const vsEntity *e, const char *id, size_t idlen, int64_t as_of, char *errbuf,
                      size_t errlen) {
    size_t i = (size_t)(e - r->s->vars->entities);
    vsAgg *agg = r->aggs[i];
    vsAggReset(agg, as_of);
    if (idlen == 0 || idlen > VS_ID_MAX) return vsAggResult(agg); /* never stored: zeros */
    uint8_t prefix[1 + VS_ID_MAX];
    size_t plen = vsEventPrefix(prefix, id, idlen);
    if (e->retention_ms > 0 && !storeScan(r, i, prefix, plen, vsAggHorizon(e, as_of), agg, errbuf, errlen))
        return NULL;
    if (e->nrunning > 0) {
        MDB_val k = {plen, prefix}, v;
        int rc = mdb_get(r->txn, r->s->running[i], &k, &v);
        if (rc == 0) vsAggSetRunning(agg, v.mv_data, v.mv_size);
        else if (rc != MDB_NOTFOUND) return storeFail(errbuf, errlen, "running", rc), NULL;
    }
    json_t *out = vsAggResult(agg);
    if (out == NULL) snprintf(errbuf, errlen, "out of memory");
    return out;
}

/* Pages on the freelist: written once, now free for reuse (what the
 * "Freelist Status" of mdb_stat -f adds up). */
static uint64_t storeFreePages(MDB_txn *txn) {
    MDB_cursor *c;
    MDB_val k, v;
    uint64_t pages = 0;
    if (mdb_cursor_open(txn, 0, &c) != 0) return 0;
    while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0)
        if (v.mv_size >= sizeof(size_t)) pages += *(size_t *)v.mv_data;
    mdb_cursor_close(c);
    return pages;
}

bool vsStoreSpace(vsStore *s, uint64_t *room, uint64_t *map) {
    MDB_txn *txn;
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0 ||
        mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
        return false;
    uint64_t pages = info.me_mapsize / st.ms_psize, written = (uint64_t)info.me_last_pgno + 1;
    *room = ((pages > written ? pages - written : 0) + storeFreePages(txn)) * st.ms_psize;
    *map = info.me_mapsize;
    mdb_txn_abort(txn);
    return true;
}

bool vsStoreReaderStats(vsStoreReader *r, vsStoreStats *out) {
    memset(out, 0, sizeof(*out));
    MDB_stat st;
    MDB_envinfo info;
    for (size_t i = 0; i < r->s->vars->nentities && i < 16; i++) {
        if (mdb_stat(r->txn, r->s->events[i], &st) == 0) out->events[i] = st.ms_entries;
        if (mdb_stat(r->txn, r->s->running[i], &st) == 0) out->entities[i] = st.ms_entries;
    }
    if (mdb_env_info(r->s->env, &info) != 0 || mdb_env_stat(r->s->env, &st) != 0) return false;
    uint64_t written = (uint64_t)info.me_last_pgno + 1, free_pages = storeFreePages(r->txn);
    out->used_bytes = (written > free_pages ? written - free_pages : 0) * st.ms_psize;
    out->map_bytes = info.me_mapsize;
    return true;
}
