/* agg.c - computing variables from events and running values (see agg.h). */
#include "agg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct aggAcc {
    uint64_t count;
    int64_t lsum;
    double dsum;
    bool real; /* the sum is a double: a double field, or a long sum that overflowed */
    bool have;
    vsValue v;               /* min, max, last */
    uint8_t at[VS_EVENT_SUFFIX]; /* last: the event holding v */
    vsValue *distinct;
    size_t ndistinct, capdistinct;
} aggAcc;

struct vsAgg {
    const vsEntity *e;
    int64_t as_of;
    aggAcc *acc;
    const uint8_t *running;
    size_t runninglen;
};

vsAgg *vsAggNew(const vsEntity *e) {
    vsAgg *a = calloc(1, sizeof(*a));
    if (a == NULL || (a->acc = calloc(e->nvars ? e->nvars : 1, sizeof(aggAcc))) == NULL) {
        free(a);
        return NULL;
    }
    a->e = e;
    return a;
}

void vsAggFree(vsAgg *a) {
    if (a == NULL) return;
    for (size_t i = 0; i < a->e->nvars; i++) free(a->acc[i].distinct);
    free(a->acc);
    free(a);
}

void vsAggReset(vsAgg *a, int64_t as_of) {
    a->as_of = as_of;
    a->running = NULL;
    a->runninglen = 0;
    for (size_t i = 0; i < a->e->nvars; i++) {
        aggAcc *c = &a->acc[i];
        vsValue *d = c->distinct;
        size_t cap = c->capdistinct;
        memset(c, 0, sizeof(*c));
        c->distinct = d, c->capdistinct = cap;
        const vsVariable *var = &a->e->vars[i];
        c->real = var->field >= 0 && a->e->fields[var->field].type == VS_VAL_DOUBLE;
    }
}

int64_t vsAggHorizon(const vsEntity *e, int64_t as_of) {
    if (e->retention_ms == INT64_MAX) return INT64_MIN;
    return as_of - e->retention_ms + 1; /* decided_at > as_of - w */
}

/* Whether the decision's fields satisfy var's where clause. */
static bool vsAggMatches(const vsVariable *var, const vsValue *fields) {
    for (size_t c = 0; c < var->nwhere; c++) {
        const vsCondition *cond = &var->where[c];
        bool any = false;
        for (size_t i = 0; i < cond->nany && !any; i++) any = vsValueEqual(&fields[cond->field], &cond->any[i]);
        if (!any) return false;
    }
    return true;
}

static void aggSum(aggAcc *c, const vsValue *v) {
    if (v->type == VS_VAL_DOUBLE) {
        c->dsum += v->u.d;
    } else if (v->type == VS_VAL_LONG) {
        int64_t sum; /* on overflow holds the wrapped value, which lsum must not take */
        if (!c->real && __builtin_add_overflow(c->lsum, v->u.l, &sum)) {
            c->real = true; /* past 9.2e18: keep going inexactly rather than wrap */
            c->dsum = (double)c->lsum;
        } else if (!c->real) {
            c->lsum = sum;
        }
        if (c->real) c->dsum += (double)v->u.l;
    }
}

static bool aggDistinct(aggAcc *c, const vsValue *v) {
    if (v->type == VS_VAL_NULL) return true;
    if (c->ndistinct == c->capdistinct) {
        size_t cap = c->capdistinct ? c->capdistinct * 2 : 16;
        vsValue *grown = realloc(c->distinct, cap * sizeof(vsValue));
        if (grown == NULL) return false;
        c->distinct = grown, c->capdistinct = cap;
    }
    c->distinct[c->ndistinct++] = *v;
    return true;
}

bool vsAggAddEvent(vsAgg *a, const uint8_t *key, size_t keylen, const vsValue *fields) {
    int64_t t = vsEventKeyTime(key, keylen);
    for (size_t i = 0; i < a->e->nvars; i++) {
        const vsVariable *var = &a->e->vars[i];
        aggAcc *c = &a->acc[i];
        if (var->running >= 0) continue;
        if (var->window_ms != 0 && t <= a->as_of - var->window_ms) continue;
        if (!vsAggMatches(var, fields)) continue;
        const vsValue *v = var->field >= 0 ? &fields[var->field] : NULL;
        switch (var->agg) {
        case VS_AGG_COUNT:
            c->count++;
            break;
        case VS_AGG_SUM:
            aggSum(c, v);
            break;
        case VS_AGG_MIN:
        case VS_AGG_MAX:
            if (v->type == VS_VAL_NULL) break;
            if (!c->have || (var->agg == VS_AGG_MIN ? vsValueCompare(v, &c->v) < 0 : vsValueCompare(v, &c->v) > 0))
                c->v = *v, c->have = true;
            break;
        case VS_AGG_LAST: /* events come in key order: the latest wins */
            c->v = *v, c->have = true;
            break;
        case VS_AGG_DISTINCT:
            if (!aggDistinct(c, v)) return false;
            break;
        }
    }
    return true;
}

bool vsAggSetRunning(vsAgg *a, const uint8_t *state, size_t len) {
    a->running = state, a->runninglen = len;
    return true;
}

/* One running value in a stored state: [u8 present][24-byte event suffix][value]. */
typedef struct aggRunning {
    bool present;
    const uint8_t *at;
    vsValue v;
} aggRunning;

static bool aggRunningRead(const uint8_t *state, size_t len, size_t n, aggRunning *out) {
    const uint8_t *p = state, *end = state + len;
    memset(out, 0, n * sizeof(*out));
    if (state == NULL) return true;
    for (size_t i = 0; i < n; i++) {
        if (p >= end) return false;
        out[i].present = *p++ != 0;
        if (!out[i].present) continue;
        if (end - p < VS_EVENT_SUFFIX) return false;
        out[i].at = p;
        p += VS_EVENT_SUFFIX;
        if (!vsEventGetValue(&p, end, &out[i].v)) return false;
    }
    return p == end;
}

static json_t *aggValueJson(const vsValue *v) {
    switch (v->type) {
    case VS_VAL_LONG:
        return json_integer(v->u.l);
    case VS_VAL_DOUBLE:
        return isfinite(v->u.d) ? json_real(v->u.d) : json_null();
    case VS_VAL_STRING:
        return json_stringn(v->u.str.s, v->u.str.len);
    case VS_VAL_BOOL:
        return json_boolean(v->u.b);
    default:
        return json_null();
    }
}

static int aggCompareQsort(const void *x, const void *y) {
    return vsValueCompare(x, y);
}

static json_t *aggVariableJson(const vsVariable *var, aggAcc *c, const aggRunning *run) {
    size_t unique = 0;
    switch (var->agg) {
    case VS_AGG_COUNT:
        return json_integer((json_int_t)c->count);
    case VS_AGG_SUM:
        return c->real ? json_real(c->dsum) : json_integer(c->lsum);
    case VS_AGG_DISTINCT:
        if (c->ndistinct > 1) /* none: distinct is still NULL, which qsort must not get */
            qsort(c->distinct, c->ndistinct, sizeof(vsValue), aggCompareQsort);
        for (size_t i = 0; i < c->ndistinct; i++) unique += i == 0 || !vsValueEqual(&c->distinct[i - 1], &c->distinct[i]);
        return json_integer((json_int_t)unique);
    default:
        if (var->running >= 0) return run[var->running].present ? aggValueJson(&run[var->running].v) : json_null();
        return c->have ? aggValueJson(&c->v) : json_null();
    }
}

json_t *vsAggResult(vsAgg *a) {
    aggRunning stackrun[16], *run = stackrun;
    size_t nr = a->e->nrunning;
    if (nr > 16 && (run = calloc(nr, sizeof(*run))) == NULL) return NULL;
    json_t *out = NULL;
    if (!aggRunningRead(a->running, a->runninglen, nr, run)) memset(run, 0, nr * sizeof(*run)); /* read as empty */
    out = json_object();
    for (size_t i = 0; out && i < a->e->nvars; i++) {
        json_t *v = aggVariableJson(&a->e->vars[i], &a->acc[i], run);
        if (v == NULL || json_object_set_new(out, a->e->vars[i].name, v) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    if (run != stackrun) free(run);
    return out;
}

/* Whether the event at (key suffix at, value v) replaces the running value r. */
static bool aggRunningWins(const vsVariable *var, const aggRunning *r, const uint8_t *at, const vsValue *v) {
    if (var->agg == VS_AGG_LAST) return !r->present || memcmp(at, r->at, VS_EVENT_SUFFIX) > 0;
    if (v->type == VS_VAL_NULL) return false;
    if (!r->present) return true;
    int c = vsValueCompare(v, &r->v);
    return var->agg == VS_AGG_MIN ? c < 0 : c > 0;
}

bool vsAggMergeRunning(const vsEntity *e, const uint8_t *old, size_t oldlen, const uint8_t *key, size_t keylen,
                       const vsValue *fields, vsBuf *out, bool *changed) {
    aggRunning stackrun[16], *run = stackrun;
    size_t nr = e->nrunning;
    bool ok = false;
    const uint8_t *at = key + keylen - VS_EVENT_SUFFIX;
    *changed = false;
    out->len = 0;
    if (nr > 16 && (run = calloc(nr, sizeof(*run))) == NULL) return false;
    if (!aggRunningRead(old, oldlen, nr, run)) goto done;
    for (size_t i = 0; i < e->nvars; i++) {
        const vsVariable *var = &e->vars[i];
        if (var->running < 0 || !vsAggMatches(var, fields)) continue;
        const vsValue *v = &fields[var->field];
        if (!aggRunningWins(var, &run[var->running], at, v)) continue;
        run[var->running] = (aggRunning){true, at, *v};
        *changed = true;
    }
    for (size_t r = 0; r < nr; r++) {
        uint8_t flag = run[r].present;
        if (!vsBufAppend(out, &flag, 1)) goto done;
        if (flag && (!vsBufAppend(out, run[r].at, VS_EVENT_SUFFIX) || !vsEventPutValue(out, &run[r].v))) goto done;
    }
    ok = true;
done:
    if (run != stackrun) free(run);
    return ok;
}
