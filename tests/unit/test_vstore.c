/* test_vstore.c - the variable store's logic (variable-store/src: vars.c,
 * event.c, agg.c, store.c) without its HTTP or Kafka sides: every
 * aggregation with and without a where filter, the window edges, values
 * that do not depend on the order or number of times decisions arrive, the
 * expiry of old events on arrival and by the sweep, unknown ids, offsets
 * committed with the state they produced, the storage layout across
 * restarts and variables-file changes, the variables file's error messages,
 * the ordering of values and the prepared (stored) form of a decision.
 *
 * Decisions are built as CONTRACT §1 documents and decoded by the fixture
 * schema set (current version 2, which adds the nullable double risk_score).
 * Each test keeps its state in a real LMDB environment in its own directory
 * under one mkdtemp() root. Every clock is a fixed constant passed as as_of
 * or now: nothing here reads the wall clock or waits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "ds/codec.h"
#include "ds/timefmt.h"
#include "event.h"
#include "fixture_schemas.h"
#include "store.h"
#include "vars.h"

static const int64_t NOW = 1795521600000LL; /* 2026-11-24T12:00:00Z */
#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

typedef struct fixture {
    dsCodec *codec; /* the fixture schema set, current version 2 */
    avro_value_t value;
    char root[64];
    int ndirs;
} fixture;

/* One decision of a test; the rest of its document is constant. */
typedef struct dec {
    int n; /* its decision_id; ids order as their numbers do */
    const char *customer, *merchant, *outcome;
    int64_t amount, at;
    double risk;         /* < 0: risk_score null */
    const char *channel; /* attributes.channel; NULL: no attributes */
} dec;

/* ---- variables files ---- */

/* Every aggregation, with and without filters, windowed and all-time. Longest
 * window of what is read from events: 30d (the all-time ones are running). */
static const char *VARS_AGG =
    "{\"entities\": ["
    " {\"name\": \"customer\", \"key\": \"customer_id\", \"variables\": ["
    "  {\"name\": \"n_30d\", \"aggregation\": \"count\", \"window\": \"30d\"},"
    "  {\"name\": \"approved_30d\", \"aggregation\": \"count\", \"where\": {\"outcome\": \"APPROVED\"},"
    "   \"window\": \"30d\"},"
    "  {\"name\": \"not_rejected_30d\", \"aggregation\": \"count\","
    "   \"where\": {\"outcome\": [\"APPROVED\", \"REFERRED\"]}, \"window\": \"30d\"},"
    "  {\"name\": \"web_30d\", \"aggregation\": \"count\", \"where\": {\"attributes.channel\": \"web\"},"
    "   \"window\": \"30d\"},"
    "  {\"name\": \"small_30d\", \"aggregation\": \"count\", \"where\": {\"amount.value\": [100, 250.0]},"
    "   \"window\": \"30d\"},"
    "  {\"name\": \"web_approved_30d\", \"aggregation\": \"count\","
    "   \"where\": {\"outcome\": \"APPROVED\", \"attributes.channel\": \"web\"}, \"window\": \"30d\"},"
    "  {\"name\": \"amount_30d\", \"aggregation\": \"sum\", \"field\": \"amount.value\", \"window\": \"30d\"},"
    "  {\"name\": \"approved_amount_30d\", \"aggregation\": \"sum\", \"field\": \"amount.value\","
    "   \"where\": {\"outcome\": \"APPROVED\"}, \"window\": \"30d\"},"
    "  {\"name\": \"min_amount_30d\", \"aggregation\": \"min\", \"field\": \"amount.value\", \"window\": \"30d\"},"
    "  {\"name\": \"max_amount_30d\", \"aggregation\": \"max\", \"field\": \"amount.value\", \"window\": \"30d\"},"
    "  {\"name\": \"max_approved_amount_30d\", \"aggregation\": \"max\", \"field\": \"amount.value\","
    "   \"where\": {\"outcome\": \"APPROVED\"}, \"window\": \"30d\"},"
    "  {\"name\": \"min_merchant_30d\", \"aggregation\": \"min\", \"field\": \"merchant_id\", \"window\": \"30d\"},"
    "  {\"name\": \"max_merchant_30d\", \"aggregation\": \"max\", \"field\": \"merchant_id\", \"window\": \"30d\"},"
    "  {\"name\": \"risk_sum_30d\", \"aggregation\": \"sum\", \"field\": \"risk_score\", \"window\": \"30d\"},"
    "  {\"name\": \"risk_min_30d\", \"aggregation\": \"min\", \"field\": \"risk_score\", \"window\": \"30d\"},"
    "  {\"name\": \"risk_max_30d\", \"aggregation\": \"max\", \"field\": \"risk_score\", \"window\": \"30d\"},"
    "  {\"name\": \"last_outcome\", \"aggregation\": \"last\", \"field\": \"outcome\"},"
    "  {\"name\": \"last_outcome_30d\", \"aggregation\": \"last\", \"field\": \"outcome\", \"window\": \"30d\"},"
    "  {\"name\": \"last_rejected_merchant\", \"aggregation\": \"last\", \"field\": \"merchant_id\","
    "   \"where\": {\"outcome\": \"REJECTED\"}},"
    "  {\"name\": \"max_amount_all\", \"aggregation\": \"max\", \"field\": \"amount.value\", \"window\": \"all\"},"
    "  {\"name\": \"min_risk_all\", \"aggregation\": \"min\", \"field\": \"risk_score\"},"
    "  {\"name\": \"max_merchant_all\", \"aggregation\": \"max\", \"field\": \"merchant_id\"},"
    "  {\"name\": \"merchants_30d\", \"aggregation\": \"distinct\", \"field\": \"merchant_id\", \"window\": \"30d\"},"
    "  {\"name\": \"approved_merchants_30d\", \"aggregation\": \"distinct\", \"field\": \"merchant_id\","
    "   \"where\": {\"outcome\": \"APPROVED\"}, \"window\": \"30d\"},"
    "  {\"name\": \"amounts_30d\", \"aggregation\": \"distinct\", \"field\": \"amount.value\", \"window\": \"30d\"},"
    "  {\"name\": \"risks_30d\", \"aggregation\": \"distinct\", \"field\": \"risk_score\", \"window\": \"30d\"}]},"
    " {\"name\": \"merchant\", \"key\": \"merchant_id\", \"variables\": ["
    "  {\"name\": \"n_24h\", \"aggregation\": \"count\", \"window\": \"24h\"},"
    "  {\"name\": \"customers_24h\", \"aggregation\": \"distinct\", \"field\": \"customer_id\", \"window\": \"24h\"},"
    "  {\"name\": \"last_customer\", \"aggregation\": \"last\", \"field\": \"customer_id\"}]}]}";

/* Windows over the same events: customer has an all-time count (so keeps
 * every event and scans from the start), merchant only windows (so scans
 * from the horizon of its longest one). */
static const char *VARS_WIN =
    "{\"entities\": ["
    " {\"name\": \"customer\", \"key\": \"customer_id\", \"variables\": ["
    "  {\"name\": \"w1h\", \"aggregation\": \"count\", \"window\": \"1h\"},"
    "  {\"name\": \"w24h\", \"aggregation\": \"count\", \"window\": \"24h\"},"
    "  {\"name\": \"w30d\", \"aggregation\": \"count\", \"window\": \"30d\"},"
    "  {\"name\": \"wall\", \"aggregation\": \"count\", \"window\": \"all\"},"
    "  {\"name\": \"s1h\", \"aggregation\": \"sum\", \"field\": \"amount.value\", \"window\": \"60m\"},"
    "  {\"name\": \"last_24h\", \"aggregation\": \"last\", \"field\": \"outcome\", \"window\": \"86400s\"}]},"
    " {\"name\": \"merchant\", \"key\": \"merchant_id\", \"variables\": ["
    "  {\"name\": \"w1h\", \"aggregation\": \"count\", \"window\": \"1h\"},"
    "  {\"name\": \"w24h\", \"aggregation\": \"count\", \"window\": \"24h\"},"
    "  {\"name\": \"w30d\", \"aggregation\": \"count\", \"window\": \"30d\"}]}]}";

/* Short retention for expiry: customer keeps 24h of events and a running
 * last; merchant only 24h of events. */
static const char *VARS_EXP =
    "{\"entities\": ["
    " {\"name\": \"customer\", \"key\": \"customer_id\", \"variables\": ["
    "  {\"name\": \"n_24h\", \"aggregation\": \"count\", \"window\": \"24h\"},"
    "  {\"name\": \"amount_24h\", \"aggregation\": \"sum\", \"field\": \"amount.value\", \"window\": \"24h\"},"
    "  {\"name\": \"last_outcome\", \"aggregation\": \"last\", \"field\": \"outcome\"}]},"
    " {\"name\": \"merchant\", \"key\": \"merchant_id\", \"variables\": ["
    "  {\"name\": \"n_24h\", \"aggregation\": \"count\", \"window\": \"24h\"}]}]}";

/* The layout test's files: L2 adds a variable over a field L1 already
 * stores (outcome), with a shorter window; L3 one over a new field. */
#define VARS_L_HEAD                                                                                               \
    "{\"entities\": [{\"name\": \"customer\", \"key\": \"customer_id\", \"variables\": ["                          \
    "  {\"name\": \"approved_30d\", \"aggregation\": \"count\", \"where\": {\"outcome\": \"APPROVED\"}, \"window\": " \
    "\"30d\"},"                                                                                                   \
    "  {\"name\": \"last_outcome\", \"aggregation\": \"last\", \"field\": \"outcome\"}"
static const char *VARS_L1 = VARS_L_HEAD "]}]}";
static const char *VARS_L2 =
    VARS_L_HEAD ", {\"name\": \"rejected_1h\", \"aggregation\": \"count\", \"where\": {\"outcome\": \"REJECTED\"},"
                " \"window\": \"1h\"}]}]}";
static const char *VARS_L3 =
    VARS_L_HEAD ", {\"name\": \"merchants_30d\", \"aggregation\": \"distinct\", \"field\": \"merchant_id\","
                " \"window\": \"30d\"}]}]}";

/* ---- helpers ---- */

static int setup(void **state) {
    fixture *f = calloc(1, sizeof(*f));
    char err[512];
    snprintf(f->root, sizeof(f->root), "/tmp/ds-vstore-XXXXXX");
    if (f == NULL || mkdtemp(f->root) == NULL) return -1;
    if ((f->codec = dsCodecNewFrom(dtFixtureSchemas, dtFixtureSchemasCount, err, sizeof(err))) == NULL) {
        fprintf(stderr, "dsCodecNewFrom: %s\n", err);
        return -1;
    }
    if (!dsCodecNewValue(f->codec, &f->value)) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->root);
    int rc = system(cmd);
    avro_value_decref(&f->value);
    dsCodecFree(f->codec);
    free(f);
    return rc == 0 ? 0 : -1;
}

static vsVars *parseVars(fixture *f, const char *text) {
    char err[1024] = "";
    vsVars *v = vsVarsParse(text, strlen(text), f->codec, err, sizeof(err));
    if (v == NULL) fail_msg("variables file rejected: %s", err);
    return v;
}

static const vsEntity *entity(const vsVars *v, const char *name) {
    const vsEntity *e = vsVarsEntity(v, name, strlen(name));
    assert_non_null(e);
    return e;
}

/* A directory no other test uses (vsStoreOpen creates it). */
static void freshDir(fixture *f, char *out, size_t cap) {
    snprintf(out, cap, "%s/store%d", f->root, f->ndirs++);
}

static vsStore *openStore(const char *dir, const vsVars *v, bool read_only, vsLayoutState *layout) {
    vsStoreConfig cfg = {.dir = dir, .map_size = 64 << 20, .read_only = read_only};
    char err[512] = "";
    vsLayoutState unused;
    vsStore *s = vsStoreOpen(&cfg, v, layout ? layout : &unused, err, sizeof(err));
    if (s == NULL) fail_msg("open %s: %s", dir, err);
    return s;
}

/* A new, empty store as the daemon makes it: open, then record the layout. */
static vsStore *newStore(fixture *f, const vsVars *v, char *dir, size_t cap) {
    char err[512] = "";
    vsLayoutState layout;
    freshDir(f, dir, cap);
    vsStore *s = openStore(dir, v, false, &layout);
    assert_int_equal(layout, VS_LAYOUT_EMPTY);
    if (!vsStoreReset(s, err, sizeof(err))) fail_msg("reset: %s", err);
    return s;
}

static void uuidOf(int n, char out[37]) {
    snprintf(out, 37, "%08x-0000-4000-8000-%012x", (unsigned)n, (unsigned)n);
}

/* d as a CONTRACT §1 document, decoded and prepared for v. */
static void prepare(fixture *f, const vsVars *v, const dec *d, vsBuf *out) {
    char id[37], at[DS_TIME_BUFLEN], why[512];
    uuidOf(d->n, id);
    assert_true(dsTimeFormat(d->at, at));
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:I, s:s}, s:s, s:{s:s, s:s}, s:s, s:s, s:o}", "decision_id",
                            id, "purchase_id", "p-1", "customer_id", d->customer, "merchant_id", d->merchant, "country",
                            "SE", "amount", "value", (json_int_t)d->amount, "currency", "SEK", "outcome", d->outcome,
                            "policy", "name", "bnpl-checkout", "version", "2026.11.3", "decided_at", at, "producer",
                            "unit-test", "risk_score", d->risk < 0 ? json_null() : json_real(d->risk));
    assert_non_null(doc);
    if (d->channel) json_object_set_new(doc, "attributes", json_pack("{s:s}", "channel", d->channel));
    dsCodecError err;
    if (!dsCodecFromJson(f->codec, doc, &f->value, &err))
        fail_msg("decision %d rejected: %s %s: %s", d->n, err.code, err.field, err.message);
    if (!vsEventPrepare(v, &f->value, out, why, sizeof(why))) fail_msg("decision %d not prepared: %s", d->n, why);
    json_decref(doc);
}

/* Applies d inside the store's open transaction. */
static vsApplyResult applyIn(fixture *f, vsStore *s, const vsVars *v, const dec *d, int64_t now) {
    vsBuf b = {0};
    vsApplyResult res;
    char err[512];
    prepare(f, v, d, &b);
    if (!vsStoreApply(s, b.data, b.len, now, &res, err, sizeof(err))) fail_msg("apply %d: %s", d->n, err);
    vsBufFree(&b);
    return res;
}

static void begin(vsStore *s) {
    char err[512];
    if (!vsStoreBegin(s, err, sizeof(err))) fail_msg("begin: %s", err);
}

static void commit(vsStore *s) {
    char err[512];
    if (!vsStoreCommit(s, err, sizeof(err))) fail_msg("commit: %s", err);
}

/* Applies d in a transaction of its own. */
static vsApplyResult applyTx(fixture *f, vsStore *s, const vsVars *v, const dec *d, int64_t now) {
    begin(s);
    vsApplyResult res = applyIn(f, s, v, d, now);
    commit(s);
    return res;
}

/* The variables of one id at as_of, from a fresh snapshot. */
static json_t *lookup(vsStore *s, const vsVars *v, const char *ent, const char *id, int64_t as_of) {
    char err[512];
    vsStoreReader *r = vsStoreReaderNew(s);
    assert_non_null(r);
    if (!vsStoreReaderBegin(r, err, sizeof(err))) fail_msg("reader: %s", err);
    const vsEntity *e = entity(v, ent);
    json_t *out = vsStoreLookup(r, e, id, strlen(id), as_of, err, sizeof(err));
    if (out == NULL) fail_msg("lookup %s %s: %s", ent, id, err);
    assert_int_equal(json_object_size(out), e->nvars);
    vsStoreReaderEnd(r);
    vsStoreReaderFree(r);
    return out;
}

static vsStoreStats stats(vsStore *s) {
    char err[512];
    vsStoreStats st;
    vsStoreReader *r = vsStoreReaderNew(s);
    assert_non_null(r);
    if (!vsStoreReaderBegin(r, err, sizeof(err))) fail_msg("reader: %s", err);
    assert_true(vsStoreReaderStats(r, &st));
    vsStoreReaderEnd(r);
    vsStoreReaderFree(r);
    return st;
}

static const char *dump(const json_t *j) {
    static char buf[4096];
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    snprintf(buf, sizeof(buf), "%s", s ? s : "?");
    free(s);
    return buf;
}

/* Integers must stay JSON integers: a count or a sum of amounts that came
 * back as a real would lose exactness past 2^53. */
static void expectInt(const json_t *o, const char *name, int64_t want, int line) {
    json_t *x = json_object_get(o, name);
    if (!json_is_integer(x)) fail_msg("line %d: %s is not an integer in %s", line, name, dump(o));
    if (json_integer_value(x) != want)
        fail_msg("line %d: %s = %lld, want %lld", line, name, (long long)json_integer_value(x), (long long)want);
}

/* Exact: the tests pick values whose sums are exact, or compute the wanted
 * sum in the order the store must add in. */
static void expectReal(const json_t *o, const char *name, double want, int line) {
    json_t *x = json_object_get(o, name);
    if (!json_is_real(x)) fail_msg("line %d: %s is not a real in %s", line, name, dump(o));
    if (json_real_value(x) != want) fail_msg("line %d: %s = %.17g, want %.17g", line, name, json_real_value(x), want);
}

static void expectStr(const json_t *o, const char *name, const char *want, int line) {
    json_t *x = json_object_get(o, name);
    if (!json_is_string(x) || strcmp(json_string_value(x), want) != 0)
        fail_msg("line %d: %s is not \"%s\" in %s", line, name, want, dump(o));
}

static void expectNull(const json_t *o, const char *name, int line) {
    json_t *x = json_object_get(o, name);
    if (!json_is_null(x)) fail_msg("line %d: %s is not null in %s", line, name, dump(o));
}

static void expectSame(const json_t *a, const json_t *b, const char *what, int line) {
    if (!json_equal((json_t *)a, (json_t *)b)) {
        char *sa = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("line %d: %s differ:\n %s\n %s", line, what, sa, dump(b));
    }
}

#define EXPECT_INT(o, n, w) expectInt(o, n, w, __LINE__)
#define EXPECT_REAL(o, n, w) expectReal(o, n, w, __LINE__)
#define EXPECT_STR(o, n, w) expectStr(o, n, w, __LINE__)
#define EXPECT_NULL(o, n) expectNull(o, n, __LINE__)
#define EXPECT_SAME(a, b, what) expectSame(a, b, what, __LINE__)

/* The aggregation tests' history of customer c1, all applied at NOW.
 * Decision 6 is 40 days old: past the 30d retention, so it is not stored
 * and only the all-time (running) variables see it. */
static const dec C1[] = {
    {1, "c1", "m-b", "APPROVED", 100, NOW - 5 * DAY_MS, 0.25, "web"},
    {2, "c1", "m-a", "REJECTED", 5000, NOW - 4 * DAY_MS, -1, "app"},
    {3, "c1", "m-c", "REFERRED", 250, NOW - 3 * DAY_MS, 0.5, "web"},
    {4, "c1", "m-b", "APPROVED", 999999999999999LL, NOW - 2 * DAY_MS, 0.125, NULL},
    {5, "c1", "m-d", "REJECTED", 100, NOW - 1 * DAY_MS, 0.75, "web"},
    {6, "c1", "m-z", "APPROVED", 1000000000000000LL, NOW - 40 * DAY_MS, 0.0625, "web"},
};

static vsStore *loadC1(fixture *f, vsVars **v) {
    char dir[128];
    *v = parseVars(f, VARS_AGG);
    vsStore *s = newStore(f, *v, dir, sizeof(dir));
    begin(s);
    for (size_t i = 0; i < sizeof(C1) / sizeof(C1[0]); i++)
        assert_int_equal(applyIn(f, s, *v, &C1[i], NOW), VS_APPLY_COUNTED);
    commit(s);
    return s;
}

/* ---- 1. aggregations ---- */

static void test_count_with_and_without_where(void **state) {
    fixture *f = *state;
    vsVars *v;
    vsStore *s = loadC1(f, &v);
    json_t *o = lookup(s, v, "customer", "c1", NOW);
    EXPECT_INT(o, "n_30d", 5);
    EXPECT_INT(o, "approved_30d", 2);     /* 1, 4 */
    EXPECT_INT(o, "not_rejected_30d", 3); /* a list: 1, 3, 4 */
    EXPECT_INT(o, "web_30d", 3);          /* a map key, absent in 4: 1, 3, 5 */
    EXPECT_INT(o, "small_30d", 3);        /* a long field against 100 and 250.0: 1, 3, 5 */
    EXPECT_INT(o, "web_approved_30d", 1); /* both conditions: 1 */
    json_decref(o);
    vsStoreClose(s);
    vsVarsFree(v);
}

static void test_sum_of_long_field_stays_integer(void **state) {
    fixture *f = *state;
    vsVars *v;
    vsStore *s = loadC1(f, &v);
    json_t *o = lookup(s, v, "customer", "c1", NOW);
    EXPECT_INT(o, "amount_30d", 1000000000005449LL);
    EXPECT_INT(o, "approved_amount_30d", 1000000000000099LL);
    EXPECT_REAL(o, "risk_sum_30d", 1.625); /* a double field sums as a double; the null is skipped */
    json_decref(o);
    /* Past 2^53 a double cannot hold the sum; the store must not go through one. */
    begin(s);
    for (int i = 0; i < 10; i++) {
        dec d = {100 + i, "c-big", "m-a", "APPROVED", 999999999999999LL, NOW - (i + 1) * HOUR_MS, -1, NULL};
        assert_int_equal(applyIn(f, s, v, &d, NOW), VS_APPLY_COUNTED);
    }
    dec one = {110, "c-big", "m-a", "REJECTED", 1, NOW - 20 * HOUR_MS, -1, NULL};
    assert_int_equal(applyIn(f, s, v, &one, NOW), VS_APPLY_COUNTED);
    commit(s);
    o = lookup(s, v, "customer", "c-big", NOW);
    EXPECT_INT(o, "amount_30d", 9999999999999991LL);
    EXPECT_INT(o, "approved_amount_30d", 9999999999999990LL);
    EXPECT_REAL(o, "risk_sum_30d", 0.0);
    json_decref(o);
    vsStoreClose(s);
    vsVarsFree(v);
}

/* A long sum that leaves int64 turns inexact (a real), keeping its sign and
 * size rather than wrapping around. Straight through the aggregator: the
 * contract's amounts (at most 10^15) need 9223 decisions to get there. */
static void test_long_sum_past_int64_turns_real(void **state) {
    fixture *f = *state;
    vsVars *v = parseVars(f, "{\"entities\": [{\"name\": \"customer\", \"key\": \"customer_id\", \"variables\": ["
                             " {\"name\": \"total\", \"aggregation\": \"sum\", \"field\": \"amount.value\"}]}]}");
    const vsEntity *e = entity(v, "customer");
    assert_int_equal(e->nfields, 1);
    vsAgg *a = vsAggNew(e);
    assert_non_null(a);
    vsAggReset(a, NOW);
    const int64_t parts[] = {INT64_MAX - 5, 10, 1000};
    for (int i = 0; i < 3; i++) {
        uint8_t key[VS_KEY_MAX];
        size_t n = vsEventPrefix(key, "c1", 2);
        vsEventTimeBytes(NOW - (3 - i) * HOUR_MS, key + n);
        memset(key + n + 8, i, 16);
        vsValue field = {.type = VS_VAL_LONG, .u.l = parts[i]};
        assert_true(vsAggAddEvent(a, key, n + VS_EVENT_SUFFIX, &field));
    }
    json_t *o = vsAggResult(a);
    assert_non_null(o);
    json_t *x = json_object_get(o, "total");
    if (!json_is_real(x)) fail_msg("total is not a real: %s", dump(o));
    double want = (double)INT64_MAX - 5 + 10 + 1000;
    if (json_real_value(x) < want * (1 - 1e-12) || json_real_value(x) > want * (1 + 1e-12))
        fail_msg("total = %.17g, want about %.17g", json_real_value(x), want);
    json_decref(o);
    vsAggFree(a);
    vsVarsFree(v);
}

static void test_min_max_of_numbers_and_strings(void **state) {
    fixture *f = *state;
    vsVars *v;
    vsStore *s = loadC1(f, &v);
    json_t *o = lookup(s, v, "customer", "c1", NOW);
    EXPECT_INT(o, "min_amount_30d", 100);
    EXPECT_INT(o, "max_amount_30d", 999999999999999LL);
    EXPECT_INT(o, "max_approved_amount_30d", 999999999999999LL);
    EXPECT_STR(o, "min_merchant_30d", "m-a");
    EXPECT_STR(o, "max_merchant_30d", "m-d");
    EXPECT_REAL(o, "risk_min_30d", 0.125); /* the null risk of 2 is no minimum */
    EXPECT_REAL(o, "risk_max_30d", 0.75);
    /* The all-time ones also saw decision 6, which the windows no longer hold. */
    EXPECT_INT(o, "max_amount_all", 1000000000000000LL);
    EXPECT_REAL(o, "min_risk_all", 0.0625);
    EXPECT_STR(o, "max_merchant_all", "m-z");
    json_decref(o);
    /* 27 days on only 4 and 5 are in the window (3 is exactly 30 days old). */
    o = lookup(s, v, "customer", "c1", NOW + 27 * DAY_MS);
    EXPECT_INT(o, "min_amount_30d", 100);
    EXPECT_INT(o, "max_amount_30d", 999999999999999LL);
    EXPECT_STR(o, "min_merchant_30d", "m-b");
    EXPECT_STR(o, "max_merchant_30d", "m-d");
    EXPECT_REAL(o, "risk_min_30d", 0.125);
    EXPECT_INT(o, "n_30d", 2);
    json_decref(o);
    vsStoreClose(s);
    vsVarsFree(v);
}

static void test_last_is_latest_by_decided_at_then_id(void **state) {
    fixture *f = *state;
    vsVars *v;
    vsStore *s = loadC1(f, &v);
    json_t *o = lookup(s, v, "customer", "c1", NOW);
    EXPECT_STR(o, "last_outcome", "REJECTED"); /* 5, the latest; 6 arrived after it but is older */
    EXPECT_STR(o, "last_outcome_30d", "REJECTED");
    EXPECT_STR(o, "last_rejected_merchant", "m-d");
    json_decref(o);
    o = lookup(s, v, "merchant", "m-b", NOW);
    EXPECT_STR(o, "last_customer", "c1");
    json_decref(o);
    /* Two decisions at the same millisecond: the larger decision_id is the
     * later one, whichever arrived first. */
    dec tie[] = {{21, "c-tie", "m-a", "REFERRED", 10, NOW - HOUR_MS, -1, NULL},
                 {20, "c-tie", "m-b", "REJECTED", 10, NOW - HOUR_MS, -1, NULL},
                 {19, "c-tie", "m-c", "APPROVED", 10, NOW - 2 * HOUR_MS, -1, NULL}};
    for (int i = 0; i < 3; i++) assert_int_equal(applyTx(f, s, v, &tie[i], NOW), VS_APPLY_COUNTED);
    o = lookup(s, v, "customer", "c-tie", NOW);
    EXPECT_STR(o, "last_outcome", "REFERRED");
    EXPECT_STR(o, "last_outcome_30d", "REFERRED");
    EXPECT_STR(o, "last_rejected_merchant", "m-b");
    json_decref(o);
    /* A windowed last forgets what left its window; the running one does not. */
    o = lookup(s, v, "customer", "c1", NOW + 29 * DAY_MS + HOUR_MS);
    EXPECT_NULL(o, "last_outcome_30d");
    EXPECT_STR(o, "last_outcome", "REJECTED");
    EXPECT_INT(o, "n_30d", 0);
    json_decref(o);
    vsStoreClose(s);
    vsVarsFree(v);
}

static void test_distinct_count(void **state) {
    fixture *f = *state;
    vsVars *v;
    vsStore *s = loadC1(f, &v);
    json_t *o = lookup(s, v, "customer", "c1", NOW);
    EXPECT_INT(o, "merchants_30d", 4);          /* m-a, m-b (twice), m-c, m-d */
    EXPECT_INT(o, "approved_merchants_30d", 1); /* m-b, twice */
    EXPECT_INT(o, "amounts_30d", 4);            /* 100 twice */
    EXPECT_INT(o, "risks_30d", 4);              /* the null is not a value */
    json_decref(o);
    o = lookup(s, v, "merchant", "m-d", NOW - HOUR_MS); /* 5 is 23h old then */
    EXPECT_INT(o, "customers_24h", 1);
    EXPECT_INT(o, "n_24h", 1);
    json_decref(o);
    o = lookup(s, v, "merchant", "m-b", NOW); /* 1 and 4 are older than 24h */
    EXPECT_INT(o, "customers_24h", 0);
    EXPECT_INT(o, "n_24h", 0);
    json_decref(o);
    vsStoreClose(s);
    vsVarsFree(v);
}

/* ---- 2. windows ---- */

static void test_window_edges(void **state) {
    fixture *f = *state;
    char dir[128];
    vsVars *v = parseVars(f, VARS_WIN);
    assert_int_equal(entity(v, "customer")->retention_ms, INT64_MAX);
    assert_int_equal(entity(v, "merchant")->retention_ms, 30 * DAY_MS);
    vsStore *s = newStore(f, v, dir, sizeof(dir));
    const dec ev[] = {
        {1, "c-w", "m-w", "APPROVED", 1, NOW - HOUR_MS, -1, NULL},                     /* exactly 1h old: out of 1h */
        {2, "c-w", "m-w", "APPROVED", 2, NOW - HOUR_MS + 1, -1, NULL},                 /* 1 ms younger: in */
        {3, "c-w", "m-w", "REFERRED", 4, NOW + 5 * MIN_MS, -1, NULL},                  /* after as_of: counts */
        {4, "c-w", "m-w", "APPROVED", 8, NOW - DAY_MS, -1, NULL},                      /* out of 24h */
        {5, "c-w", "m-w", "REJECTED", 16, NOW - DAY_MS + 1, -1, NULL},                 /* in 24h */
        {6, "c-w", "m-w", "APPROVED", 32, NOW - 30 * DAY_MS, -1, NULL},                /* out of 30d */
        {7, "c-w", "m-w", "APPROVED", 64, NOW - 30 * DAY_MS + 1, -1, NULL},            /* in 30d */
        {8, "c-w", "m-w", "APPROVED", 128, NOW - 30 * DAY_MS - HOUR_MS + 1, -1, NULL}, /* kept (slack), out */
        {9, "c-w", "m-w", "APPROVED", 256, NOW - 400 * DAY_MS, -1, NULL},              /* all time only */
    };
    begin(s);
    for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++)
        assert_int_equal(applyIn(f, s, v, &ev[i], NOW), VS_APPLY_COUNTED);
    commit(s);
    vsStoreStats st = stats(s);
    assert_int_equal(st.events[0], 9);
    assert_int_equal(st.events[1], 8); /* 9 is past the merchant's retention */

    json_t *c = lookup(s, v, "customer", "c-w", NOW), *m = lookup(s, v, "merchant", "m-w", NOW);
    EXPECT_INT(c, "w1h", 2);
    EXPECT_INT(c, "s1h", 2 + 4);
    EXPECT_INT(c, "w24h", 4);
    EXPECT_INT(c, "w30d", 6);
    EXPECT_INT(c, "wall", 9);
    EXPECT_STR(c, "last_24h", "REFERRED"); /* 3, dated after as_of, is the latest */
    EXPECT_INT(m, "w1h", 2);
    EXPECT_INT(m, "w24h", 4);
    EXPECT_INT(m, "w30d", 6);
    json_decref(c), json_decref(m);

    /* One hour earlier: 1 is in the hour now, and 3 still counts. */
    c = lookup(s, v, "customer", "c-w", NOW - HOUR_MS), m = lookup(s, v, "merchant", "m-w", NOW - HOUR_MS);
    EXPECT_INT(c, "w1h", 3);
    EXPECT_INT(c, "s1h", 1 + 2 + 4);
    EXPECT_INT(c, "w24h", 5); /* 4 is in (23h old), 5 too */
    EXPECT_INT(c, "w30d", 8); /* 6 and 8 are in */
    EXPECT_INT(m, "w1h", 3);
    EXPECT_INT(m, "w24h", 5);
    EXPECT_INT(m, "w30d", 8);
    json_decref(c), json_decref(m);

    /* 23 hours on: the hour is empty, the day holds 2 and 3, the month 1-5. */
    c = lookup(s, v, "customer", "c-w", NOW + 23 * HOUR_MS), m = lookup(s, v, "merchant", "m-w", NOW + 23 * HOUR_MS);
    EXPECT_INT(c, "w1h", 0);
    EXPECT_INT(c, "s1h", 0);
    EXPECT_INT(c, "w24h", 2);
    EXPECT_STR(c, "last_24h", "REFERRED");
    EXPECT_INT(c, "w30d", 5);
    EXPECT_INT(c, "wall", 9);
    EXPECT_INT(m, "w24h", 2);
    EXPECT_INT(m, "w30d", 5);
    json_decref(c), json_decref(m);

    /* Two days on nothing is in the day, and last_24h has nothing to say. */
    c = lookup(s, v, "customer", "c-w", NOW + 2 * DAY_MS);
    EXPECT_INT(c, "w24h", 0);
    EXPECT_NULL(c, "last_24h");
    json_decref(c);
    vsStoreClose(s);
    vsVarsFree(v);
}

static void test_window_parse(void **state) {
    (void)state;
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {{"all", 0}, {"30d", 30 * DAY_MS}, {"24h", DAY_MS}, {"15m", 15 * MIN_MS}, {"10s", 10000}, {"1s", 1000}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t ms = -1;
        if (!vsVarsParseWindow(good[i].text, &ms) || ms != good[i].ms)
            fail_msg("window \"%s\": %lld, want %lld", good[i].text, (long long)ms, (long long)good[i].ms);
    }
    static const char *const bad[] = {"30x", "0d", "-1d", "d", "", "1.5h", " 1h", "1hh", "1 h", "ALL", "30D",
                                      "99999999999999999999d", "4611686018427387904s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = -1;
        if (vsVarsParseWindow(bad[i], &ms)) fail_msg("window \"%s\" accepted as %lld", bad[i], (long long)ms);
    }
}

/* ---- 3. order of arrival ---- */

enum { NGEN = 60 };
static const double RISKS[] = {-1, 0.1, 0.2, 0.3, 0.7, 0.9, 1e-9};
static const char *const OUTCOMES[] = {"APPROVED", "REJECTED", "REFERRED"};

/* Decision i of a history over 5 customers and 4 merchants, 35 days long:
 * i and i + 5 are the same customer at the same millisecond, the last block
 * is past the 30d retention, the first dated 10 minutes after NOW. */
static dec genDec(int i, char *cust, char *merch) {
    sprintf(cust, "c-%d", i % 5);
    sprintf(merch, "m-%d", (i * 7) % 4);
    return (dec){i + 1, cust, merch, OUTCOMES[(i * 5) % 3], 1000 + (i * 7919) % 50000,
                 NOW + 10 * MIN_MS - (i / 10) * 7 * DAY_MS, RISKS[(i * 3) % 7], i % 2 ? "web" : NULL};
}

static bool genStored(const dec *d) {
    return d->at > NOW - 30 * DAY_MS - VS_STORE_SLACK_MS;
}

/* Applies the history in order[] in transactions of batch decisions; with
 * twice, every fourth one again right after itself. */
static void applyGen(fixture *f, vsStore *s, const vsVars *v, const int *order, int batch, bool twice) {
    char cust[16], merch[16];
    begin(s);
    for (int k = 0; k < NGEN; k++) {
        if (k > 0 && k % batch == 0) commit(s), begin(s);
        dec d = genDec(order[k], cust, merch);
        applyIn(f, s, v, &d, NOW);
        if (twice && order[k] % 4 == 0)
            assert_int_equal(applyIn(f, s, v, &d, NOW), genStored(&d) ? VS_APPLY_DUPLICATE : VS_APPLY_EXPIRED);
    }
    commit(s);
}

static int cmpGen(const void *x, const void *y) {
    char c1[16], m1[16], c2[16], m2[16];
    dec a = genDec(*(const int *)x, c1, m1), b = genDec(*(const int *)y, c2, m2);
    if (a.at != b.at) return a.at < b.at ? -1 : 1;
    return a.n - b.n;
}

static void test_out_of_order_arrival_gives_same_values(void **state) {
    fixture *f = *state;
    char dir1[128], dir2[128];
    vsVars *v = parseVars(f, VARS_AGG);
    vsStore *s1 = newStore(f, v, dir1, sizeof(dir1)), *s2 = newStore(f, v, dir2, sizeof(dir2));
    int forward[NGEN], shuffled[NGEN], byKey[NGEN];
    for (int i = 0; i < NGEN; i++) forward[i] = i, shuffled[i] = (i * 37) % NGEN, byKey[i] = i;
    applyGen(f, s1, v, forward, 7, false);
    applyGen(f, s2, v, shuffled, 11, true);

    static const int64_t asOf[] = {NOW, NOW - 2 * DAY_MS, NOW + DAY_MS, NOW - 20 * DAY_MS};
    char id[16];
    for (size_t t = 0; t < sizeof(asOf) / sizeof(asOf[0]); t++) {
        for (int c = 0; c < 5; c++) {
            sprintf(id, "c-%d", c);
            json_t *a = lookup(s1, v, "customer", id, asOf[t]), *b = lookup(s2, v, "customer", id, asOf[t]);
            EXPECT_SAME(a, b, id);
            json_decref(a), json_decref(b);
        }
        for (int m = 0; m < 4; m++) {
            sprintf(id, "m-%d", m);
            json_t *a = lookup(s1, v, "merchant", id, asOf[t]), *b = lookup(s2, v, "merchant", id, asOf[t]);
            EXPECT_SAME(a, b, id);
            json_decref(a), json_decref(b);
        }
    }

    /* And the values are the right ones: counts, the double sum added in key
     * order (decided_at, then decision_id), the latest outcome ever. The
     * shuffled arrival order would give another double sum for at least one
     * customer, so the data can tell the two apart. */
    qsort(byKey, NGEN, sizeof(int), cmpGen);
    bool orderMatters = false;
    for (int c = 0; c < 5; c++) {
        char cust[16], merch[16];
        int64_t count = 0;
        double sum = 0, arrivalSum = 0;
        const char *last = NULL;
        for (int k = 0; k < NGEN; k++) {
            dec d = genDec(byKey[k], cust, merch);
            if (byKey[k] % 5 != c) continue;
            last = d.outcome;
            if (!genStored(&d) || d.at <= NOW - 30 * DAY_MS) continue;
            count++;
            if (d.risk >= 0) sum += d.risk;
        }
        for (int k = 0; k < NGEN; k++) {
            dec d = genDec(shuffled[k], cust, merch);
            if (shuffled[k] % 5 == c && genStored(&d) && d.at > NOW - 30 * DAY_MS && d.risk >= 0) arrivalSum += d.risk;
        }
        orderMatters |= arrivalSum != sum;
        sprintf(id, "c-%d", c);
        json_t *o = lookup(s2, v, "customer", id, NOW);
        EXPECT_INT(o, "n_30d", count);
        EXPECT_REAL(o, "risk_sum_30d", sum);
        EXPECT_STR(o, "last_outcome", last);
        json_decref(o);
    }
    assert_true(orderMatters);
    vsStoreClose(s1);
    vsStoreClose(s2);
    vsVarsFree(v);
}

/* ---- 4. duplicates ---- */

static void test_duplicates_change_nothing(void **state) {
    fixture *f = *state;
    char dir[128];
    vsVars *v = parseVars(f, VARS_AGG);
    vsStore *s = newStore(f, v, dir, sizeof(dir));
    const dec d1 = {1, "c-dup", "m-a", "APPROVED", 500, NOW - 2 * HOUR_MS, 0.5, "web"};
    const dec d2 = {2, "c-dup", "m-b", "REJECTED", 900, NOW - HOUR_MS, 0.25, NULL};
    begin(s);
    assert_int_equal(applyIn(f, s, v, &d1, NOW), VS_APPLY_COUNTED);
    assert_int_equal(applyIn(f, s, v, &d1, NOW), VS_APPLY_DUPLICATE); /* in the same transaction */
    commit(s);
    json_t *once = lookup(s, v, "customer", "c-dup", NOW), *monce = lookup(s, v, "merchant", "m-a", NOW);
    EXPECT_INT(once, "n_30d", 1);
    EXPECT_INT(once, "amount_30d", 500);
    EXPECT_INT(once, "merchants_30d", 1);
    EXPECT_STR(once, "last_outcome", "APPROVED");
    EXPECT_INT(monce, "n_24h", 1);
    /* In a later transaction, and at a later wall clock. */
    assert_int_equal(applyTx(f, s, v, &d1, NOW + HOUR_MS), VS_APPLY_DUPLICATE);
    json_t *again = lookup(s, v, "customer", "c-dup", NOW), *magain = lookup(s, v, "merchant", "m-a", NOW);
    EXPECT_SAME(once, again, "customer after a redelivery");
    EXPECT_SAME(monce, magain, "merchant after a redelivery");
    json_decref(once), json_decref(again), json_decref(monce), json_decref(magain);

    /* A later decision moves the running values; the older one arriving
     * again must not move them back, nor the later one again move them on. */
    assert_int_equal(applyTx(f, s, v, &d2, NOW), VS_APPLY_COUNTED);
    json_t *both = lookup(s, v, "customer", "c-dup", NOW);
    EXPECT_INT(both, "n_30d", 2);
    EXPECT_INT(both, "amount_30d", 1400);
    EXPECT_STR(both, "last_outcome", "REJECTED");
    EXPECT_STR(both, "last_rejected_merchant", "m-b");
    EXPECT_INT(both, "max_amount_all", 900);
    EXPECT_REAL(both, "min_risk_all", 0.25);
    EXPECT_STR(both, "max_merchant_all", "m-b");
    begin(s);
    assert_int_equal(applyIn(f, s, v, &d1, NOW), VS_APPLY_DUPLICATE);
    assert_int_equal(applyIn(f, s, v, &d2, NOW), VS_APPLY_DUPLICATE);
    assert_int_equal(applyIn(f, s, v, &d1, NOW), VS_APPLY_DUPLICATE);
    commit(s);
    json_t *after = lookup(s, v, "customer", "c-dup", NOW);
    EXPECT_SAME(both, after, "customer after redeliveries");
    json_decref(both), json_decref(after);
    vsStoreStats st = stats(s);
    assert_int_equal(st.events[0], 2);
    assert_int_equal(st.events[1], 2);
    vsStoreClose(s);
    vsVarsFree(v);
}

/* ---- 5. expiry ---- */

static void test_expired_on_arrival_and_swept(void **state) {
    fixture *f = *state;
    char dir[128], err[512];
    vsVars *v = parseVars(f, VARS_EXP);
    assert_int_equal(entity(v, "customer")->retention_ms, DAY_MS);
    vsStore *s = newStore(f, v, dir, sizeof(dir));
    const int64_t edge = NOW - DAY_MS - VS_STORE_SLACK_MS; /* the oldest decided_at not kept is this */
    const dec a1 = {1, "c-a", "m-x", "REFERRED", 1, NOW - HOUR_MS, -1, NULL};
    const dec a2 = {2, "c-a", "m-x", "REJECTED", 2, edge, -1, NULL};
    const dec a3 = {3, "c-a", "m-x", "APPROVED", 4, edge + 1, -1, NULL};
    const dec b1 = {4, "c-b", "m-y", "APPROVED", 8, NOW - 10 * DAY_MS, -1, NULL};
    const dec c1 = {5, "c-c", "m-x", "APPROVED", 16, NOW - 23 * HOUR_MS, -1, NULL};
    const dec c2 = {6, "c-c", "m-x", "APPROVED", 32, NOW - 23 * HOUR_MS + 1, -1, NULL};
    assert_int_equal(applyTx(f, s, v, &a1, NOW), VS_APPLY_COUNTED);
    /* Older than retention + slack, and older than c-a's last outcome:
     * nothing takes it. */
    assert_int_equal(applyTx(f, s, v, &a2, NOW), VS_APPLY_EXPIRED);
    assert_int_equal(applyTx(f, s, v, &a3, NOW), VS_APPLY_COUNTED);
    /* Too old to store, but the latest c-b has: its running last takes it,
     * and a changed value is reported as counted. */
    assert_int_equal(applyTx(f, s, v, &b1, NOW), VS_APPLY_COUNTED);
    assert_int_equal(applyTx(f, s, v, &b1, NOW), VS_APPLY_EXPIRED); /* again: nothing changes */
    assert_int_equal(applyTx(f, s, v, &c1, NOW), VS_APPLY_COUNTED);
    assert_int_equal(applyTx(f, s, v, &c2, NOW), VS_APPLY_COUNTED);
    vsStoreStats st = stats(s);
    assert_int_equal(st.events[0], 4); /* a1, a3, c1, c2 */
    assert_int_equal(st.events[1], 4);

    json_t *o = lookup(s, v, "customer", "c-a", NOW);
    EXPECT_INT(o, "n_24h", 1); /* a3 is kept but out of the window */
    EXPECT_INT(o, "amount_24h", 1);
    EXPECT_STR(o, "last_outcome", "REFERRED");
    json_decref(o);
    o = lookup(s, v, "customer", "c-b", NOW);
    EXPECT_INT(o, "n_24h", 0);
    EXPECT_STR(o, "last_outcome", "APPROVED");
    json_decref(o);

    /* Two hours on, the sweep deletes what is retention + slack old at its
     * now: a3 and c1 (exactly at the cutoff), in both entities. */
    const int64_t later = NOW + 2 * HOUR_MS;
    static const char *const ids[][2] = {{"customer", "c-a"}, {"customer", "c-b"}, {"customer", "c-c"},
                                         {"merchant", "m-x"}, {"merchant", "m-y"}};
    json_t *before[5];
    for (int i = 0; i < 5; i++) before[i] = lookup(s, v, ids[i][0], ids[i][1], later);
    EXPECT_INT(before[2], "n_24h", 0); /* c1 and c2 left the window at NOW + 1h */
    EXPECT_INT(before[3], "n_24h", 1);
    bool wrapped = false;
    long n = vsStoreSweep(s, later, 1000, &wrapped, err, sizeof(err));
    if (n < 0) fail_msg("sweep: %s", err);
    assert_int_equal(n, 4);
    assert_true(wrapped);
    st = stats(s);
    assert_int_equal(st.events[0], 2); /* a1, c2 */
    assert_int_equal(st.events[1], 2);
    for (int i = 0; i < 5; i++) {
        json_t *after = lookup(s, v, ids[i][0], ids[i][1], later);
        EXPECT_SAME(before[i], after, ids[i][1]);
        json_decref(after), json_decref(before[i]);
    }
    /* The sweep deletes what it finds once: a second pass has nothing. */
    n = vsStoreSweep(s, later, 1000, &wrapped, err, sizeof(err));
    assert_int_equal(n, 0);
    assert_true(wrapped);
    vsStoreClose(s);
    vsVarsFree(v);
}

/* A sweep with a small budget resumes where it stopped, through page
 * boundaries and from one entity to the next, and deletes exactly the
 * expired events. */
static void test_sweep_in_small_steps(void **state) {
    fixture *f = *state;
    char dir[128], err[512], cust[16], merch[16];
    vsVars *v = parseVars(f, VARS_EXP);
    vsStore *s = newStore(f, v, dir, sizeof(dir));
    enum { PER = 80, NCUST = 3 };
    begin(s);
    for (int c = 0; c < NCUST; c++)
        for (int k = 0; k < PER; k++) {
            sprintf(cust, "c-%d", c), sprintf(merch, "m-%d", k % 4);
            dec d = {1 + c * PER + k, cust, merch, "APPROVED", k, NOW - DAY_MS + k * MIN_MS, -1, NULL};
            assert_int_equal(applyIn(f, s, v, &d, NOW), VS_APPLY_COUNTED);
        }
    commit(s);
    /* The cutoff (now - 24h - 1h) falls on k = 39: 40 of every 80 go. */
    const int64_t later = NOW + HOUR_MS + 39 * MIN_MS;
    long total = 0;
    int calls = 0;
    bool wrapped = false;
    while (!wrapped) {
        if (++calls > 2 * NCUST * PER) fail_msg("the sweep never finished a pass");
        long n = vsStoreSweep(s, later, 7, &wrapped, err, sizeof(err));
        if (n < 0) fail_msg("sweep: %s", err);
        assert_true(n <= 7);
        total += n;
    }
    assert_true(calls >= 2 * NCUST * PER / 7);
    assert_int_equal(total, 2 * NCUST * PER / 2);
    vsStoreStats st = stats(s);
    assert_int_equal(st.events[0], NCUST * PER / 2);
    assert_int_equal(st.events[1], NCUST * PER / 2);
    long n = vsStoreSweep(s, later, 100000, &wrapped, err, sizeof(err));
    assert_int_equal(n, 0);
    assert_true(wrapped);
    /* What the sweep promises to leave alone: every window seen from its now
     * minus the slack. There the cutoff is k = 39, exactly 24h old. */
    json_t *o = lookup(s, v, "customer", "c-1", later - VS_STORE_SLACK_MS);
    EXPECT_INT(o, "n_24h", PER / 2);
    json_decref(o);
    vsStoreClose(s);
    vsVarsFree(v);
}

/* ---- 6. unknown ids ---- */

/* Zeros for counts, sums and distinct counts (a double field's sum a 0.0),
 * null for min, max and last, whatever the window. */
static void expectEmpty(const vsEntity *e, const json_t *o, const char *id) {
    assert_int_equal(json_object_size(o), e->nvars);
    for (size_t i = 0; i < e->nvars; i++) {
        const vsVariable *var = &e->vars[i];
        json_t *x = json_object_get(o, var->name);
        bool ok;
        switch (var->agg) {
        case VS_AGG_COUNT:
        case VS_AGG_DISTINCT:
            ok = json_is_integer(x) && json_integer_value(x) == 0;
            break;
        case VS_AGG_SUM:
            ok = e->fields[var->field].type == VS_VAL_DOUBLE ? json_is_real(x) && json_real_value(x) == 0
                                                             : json_is_integer(x) && json_integer_value(x) == 0;
            break;
        default:
            ok = json_is_null(x);
        }
        if (!ok) fail_msg("%s %s: %s is not empty in %s", e->name, id, var->name, dump(o));
    }
}

static void test_unknown_id_reads_zeros_and_nulls(void **state) {
    fixture *f = *state;
    char dir[128];
    vsVars *v = parseVars(f, VARS_AGG);
    /* An empty store, then one holding ids that share bytes with the asked ones. */
    vsStore *s = newStore(f, v, dir, sizeof(dir));
    static const char *const ask[] = {"nobody", "c", "c1", "c10", "m-b", ""};
    for (size_t i = 0; i < sizeof(ask) / sizeof(ask[0]); i++) {
        json_t *o = lookup(s, v, "customer", ask[i], NOW);
        expectEmpty(entity(v, "customer"), o, ask[i]);
        json_decref(o);
        o = lookup(s, v, "merchant", ask[i], NOW);
        expectEmpty(entity(v, "merchant"), o, ask[i]);
        json_decref(o);
    }
    vsStoreClose(s);
    vsVarsFree(v);
    s = loadC1(f, &v);
    static const char *const others[] = {"nobody", "c", "c10", "c1 ", "C1", ""};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        json_t *o = lookup(s, v, "customer", others[i], NOW);
        expectEmpty(entity(v, "customer"), o, others[i]);
        json_decref(o);
    }
    json_t *o = lookup(s, v, "merchant", "m-", NOW);
    expectEmpty(entity(v, "merchant"), o, "m-");
    json_decref(o);
    o = lookup(s, v, "customer", "c1", NOW); /* and the known one is not empty */
    EXPECT_INT(o, "n_30d", 5);
    json_decref(o);
    vsStoreClose(s);
    vsVarsFree(v);
}

/* ---- 7. offsets ---- */

static void test_offsets_commit_with_the_state(void **state) {
    fixture *f = *state;
    char dir[128], err[512];
    vsVars *v = parseVars(f, VARS_EXP);
    vsStore *s = newStore(f, v, dir, sizeof(dir));
    int64_t next = -1;
    assert_false(vsStoreGetOffset(s, "decisions", 0, &next));
    const dec d1 = {1, "c-o", "m-o", "APPROVED", 10, NOW - HOUR_MS, -1, NULL};
    const dec d2 = {2, "c-o", "m-o", "REJECTED", 20, NOW - MIN_MS, -1, NULL};

    begin(s);
    assert_int_equal(applyIn(f, s, v, &d1, NOW), VS_APPLY_COUNTED);
    assert_true(vsStoreSetOffset(s, "decisions", 0, 42, err, sizeof(err)));
    assert_true(vsStoreSetOffset(s, "decisions", 3, 0, err, sizeof(err)));
    assert_false(vsStoreGetOffset(s, "decisions", 0, &next)); /* not committed yet */
    json_t *o = lookup(s, v, "customer", "c-o", NOW);
    EXPECT_INT(o, "n_24h", 0);
    json_decref(o);
    commit(s);
    assert_true(vsStoreGetOffset(s, "decisions", 0, &next));
    assert_int_equal(next, 42);
    assert_true(vsStoreGetOffset(s, "decisions", 3, &next));
    assert_int_equal(next, 0);
    assert_false(vsStoreGetOffset(s, "decisions", 1, &next));
    assert_false(vsStoreGetOffset(s, "other", 0, &next));

    /* Aborted: neither the decision nor the offset. */
    begin(s);
    assert_int_equal(applyIn(f, s, v, &d2, NOW), VS_APPLY_COUNTED);
    assert_true(vsStoreSetOffset(s, "decisions", 0, 43, err, sizeof(err)));
    vsStoreAbort(s);
    assert_true(vsStoreGetOffset(s, "decisions", 0, &next));
    assert_int_equal(next, 42);
    o = lookup(s, v, "customer", "c-o", NOW);
    EXPECT_INT(o, "n_24h", 1);
    EXPECT_STR(o, "last_outcome", "APPROVED");
    json_decref(o);

    /* Redone, it counts (it was never stored), and both survive a restart. */
    begin(s);
    assert_int_equal(applyIn(f, s, v, &d2, NOW), VS_APPLY_COUNTED);
    assert_true(vsStoreSetOffset(s, "decisions", 0, 43, err, sizeof(err)));
    assert_true(vsStoreSetOffset(s, "decisions", 0, 1LL << 40, err, sizeof(err))); /* the last write wins */
    commit(s);
    vsStoreClose(s);
    vsLayoutState layout;
    s = openStore(dir, v, false, &layout);
    assert_int_equal(layout, VS_LAYOUT_SAME);
    assert_true(vsStoreGetOffset(s, "decisions", 0, &next));
    assert_int_equal(next, 1LL << 40);
    o = lookup(s, v, "customer", "c-o", NOW);
    EXPECT_INT(o, "n_24h", 2);
    EXPECT_STR(o, "last_outcome", "REJECTED");
    json_decref(o);
    vsStoreClose(s);
    vsVarsFree(v);
}

/* ---- 8. layout ---- */

static void test_layout_across_restarts_and_file_changes(void **state) {
    fixture *f = *state;
    char dir[128], err[512];
    vsVars *v1 = parseVars(f, VARS_L1), *v2 = parseVars(f, VARS_L2), *v3 = parseVars(f, VARS_L3);
    assert_string_equal(v1->layout, v2->layout);
    assert_string_not_equal(v1->layout, v3->layout);
    vsStore *s = newStore(f, v1, dir, sizeof(dir));
    const dec d1 = {1, "c-l", "m-a", "APPROVED", 10, NOW - 2 * HOUR_MS, -1, NULL};
    const dec d2 = {2, "c-l", "m-b", "REJECTED", 20, NOW - 30 * MIN_MS, -1, NULL};
    begin(s);
    assert_int_equal(applyIn(f, s, v1, &d1, NOW), VS_APPLY_COUNTED);
    assert_int_equal(applyIn(f, s, v1, &d2, NOW), VS_APPLY_COUNTED);
    assert_true(vsStoreSetOffset(s, "decisions", 0, 2, err, sizeof(err)));
    commit(s);
    vsStoreClose(s);

    vsLayoutState layout;
    s = openStore(dir, v1, false, &layout); /* a restart */
    assert_int_equal(layout, VS_LAYOUT_SAME);
    json_t *o = lookup(s, v1, "customer", "c-l", NOW);
    EXPECT_INT(o, "approved_30d", 1);
    EXPECT_STR(o, "last_outcome", "REJECTED");
    json_decref(o);
    vsStoreClose(s);

    /* A new variable over a stored field reads the events stored before it existed. */
    s = openStore(dir, v2, false, &layout);
    assert_int_equal(layout, VS_LAYOUT_SAME);
    o = lookup(s, v2, "customer", "c-l", NOW);
    EXPECT_INT(o, "rejected_1h", 1);
    EXPECT_INT(o, "approved_30d", 1);
    json_decref(o);
    vsStoreClose(s);

    /* A read replica of the same layout answers too. */
    s = openStore(dir, v1, true, &layout);
    assert_int_equal(layout, VS_LAYOUT_SAME);
    o = lookup(s, v1, "customer", "c-l", NOW);
    EXPECT_INT(o, "approved_30d", 1);
    json_decref(o);
    vsStoreClose(s);

    /* A variable over a field the events lack: a replica refuses it... */
    vsStoreConfig ro = {.dir = dir, .map_size = 64 << 20, .read_only = true};
    err[0] = '\0';
    assert_null(vsStoreOpen(&ro, v3, &layout, err, sizeof(err)));
    if (strstr(err, "another variables file") == NULL) fail_msg("replica's message: \"%s\"", err);

    /* ...a writer sees it must rebuild, and the reset empties everything. */
    s = openStore(dir, v3, false, &layout);
    assert_int_equal(layout, VS_LAYOUT_CHANGED);
    if (!vsStoreReset(s, err, sizeof(err))) fail_msg("reset: %s", err);
    o = lookup(s, v3, "customer", "c-l", NOW);
    expectEmpty(entity(v3, "customer"), o, "c-l");
    json_decref(o);
    int64_t next;
    assert_false(vsStoreGetOffset(s, "decisions", 0, &next));
    assert_int_equal(stats(s).events[0], 0);
    assert_int_equal(stats(s).entities[0], 0);
    assert_int_equal(applyTx(f, s, v3, &d1, NOW), VS_APPLY_COUNTED);
    o = lookup(s, v3, "customer", "c-l", NOW);
    EXPECT_INT(o, "merchants_30d", 1);
    EXPECT_STR(o, "last_outcome", "APPROVED");
    json_decref(o);
    vsStoreClose(s);

    s = openStore(dir, v3, false, &layout);
    assert_int_equal(layout, VS_LAYOUT_SAME);
    vsStoreClose(s);
    /* Now the old file is the other one. */
    s = openStore(dir, v1, false, &layout);
    assert_int_equal(layout, VS_LAYOUT_CHANGED);
    vsStoreClose(s);
    err[0] = '\0';
    assert_null(vsStoreOpen(&ro, v1, &layout, err, sizeof(err)));
    assert_true(err[0] != '\0');

    /* A replica of a directory no writer has filled refuses with a message. */
    char empty[128];
    freshDir(f, empty, sizeof(empty));
    s = openStore(empty, v1, false, &layout);
    assert_int_equal(layout, VS_LAYOUT_EMPTY);
    vsStoreClose(s);
    ro.dir = empty;
    err[0] = '\0';
    assert_null(vsStoreOpen(&ro, v1, &layout, err, sizeof(err)));
    if (strstr(err, "not built any state") == NULL) fail_msg("empty replica's message: \"%s\"", err);
    vsVarsFree(v1);
    vsVarsFree(v2);
    vsVarsFree(v3);
}

/* ---- 9. the variables file ---- */

#define ONE_ENTITY(vars) \
    "{\"entities\": [{\"name\": \"customer\", \"key\": \"customer_id\", \"variables\": [" vars "]}]}"
#define COUNT_OK "{\"name\": \"n\", \"aggregation\": \"count\", \"window\": \"30d\"}"

static void test_variables_file_errors(void **state) {
    fixture *f = *state;
    static const struct {
        const char *what, *text, *want[3];
    } cases[] = {
        {"not JSON", "{\"entities\": [", {"not JSON"}},
        {"duplicate JSON key", ONE_ENTITY("{\"name\": \"n\", \"name\": \"m\", \"aggregation\": \"count\"}"),
         {"not JSON", "duplicate", "name"}},
        /* The one allowed shape of the file is the message: it does not repeat the stray key. */
        {"unknown top-level key",
         "{\"entities\": [{\"name\": \"customer\", \"key\": \"customer_id\", \"variables\": [" COUNT_OK "]}],"
         " \"version\": 2}",
         {"\"entities\""}},
        {"no entities", "{\"entities\": []}", {"at least one entity"}},
        {"unknown variable key",
         ONE_ENTITY("{\"name\": \"n\", \"aggregation\": \"count\", \"windw\": \"30d\"}"),
         {"windw", "variable 1"}},
        {"unknown entity key",
         "{\"entities\": [{\"name\": \"customer\", \"key\": \"customer_id\", \"kye\": \"x\", \"variables\": ["
         COUNT_OK "]}]}",
         {"kye"}},
        {"unknown field path",
         ONE_ENTITY(COUNT_OK ", {\"name\": \"s\", \"aggregation\": \"sum\", \"field\": \"amount.valu\"}"),
         {"s:", "amount.valu", "variable 2"}},
        {"unknown where field",
         ONE_ENTITY("{\"name\": \"n\", \"aggregation\": \"count\", \"where\": {\"outcom\": \"APPROVED\"}}"),
         {"n:", "outcom", "not in the decision schema"}},
        {"path through an array",
         ONE_ENTITY("{\"name\": \"s\", \"aggregation\": \"max\", \"field\": \"checks.score\"}"),
         {"s:", "checks.score"}},
        {"a record is no scalar", ONE_ENTITY("{\"name\": \"s\", \"aggregation\": \"last\", \"field\": \"amount\"}"),
         {"s:", "amount", "not a string, number or boolean"}},
        {"sum over a string", ONE_ENTITY("{\"name\": \"s\", \"aggregation\": \"sum\", \"field\": \"merchant_id\"}"),
         {"s:", "sum needs a number field", "merchant_id"}},
        {"count with a field", ONE_ENTITY("{\"name\": \"n\", \"aggregation\": \"count\", \"field\": \"amount.value\"}"),
         {"n:", "count takes no field"}},
        {"max without a field", ONE_ENTITY("{\"name\": \"m\", \"aggregation\": \"max\"}"),
         {"m:", "needs a \"field\""}},
        {"unknown aggregation", ONE_ENTITY("{\"name\": \"a\", \"aggregation\": \"avg\", \"field\": \"amount.value\"}"),
         {"a:", "unknown aggregation \"avg\""}},
        {"window 30x", ONE_ENTITY("{\"name\": \"n\", \"aggregation\": \"count\", \"window\": \"30x\"}"),
         {"n:", "window \"30x\""}},
        {"window 0d", ONE_ENTITY("{\"name\": \"n\", \"aggregation\": \"count\", \"window\": \"0d\"}"),
         {"n:", "window \"0d\""}},
        {"unknown enum symbol",
         ONE_ENTITY("{\"name\": \"n\", \"aggregation\": \"count\","
                    " \"where\": {\"outcome\": [\"APPROVED\", \"APPROVD\"]}}"),
         {"n:", "\"APPROVD\" is not a symbol of outcome"}},
        {"filter value of the wrong type",
         ONE_ENTITY("{\"name\": \"n\", \"aggregation\": \"count\", \"where\": {\"amount.value\": \"100\"}}"),
         {"n:", "wrong type", "amount.value"}},
        {"empty filter list", ONE_ENTITY("{\"name\": \"n\", \"aggregation\": \"count\", \"where\": {\"outcome\": []}}"),
         {"n:", "empty list"}},
        {"bad variable name", ONE_ENTITY("{\"name\": \"Approved Count\", \"aggregation\": \"count\"}"),
         {"\"Approved Count\"", "variable name"}},
        {"duplicate variable",
         ONE_ENTITY(COUNT_OK ", {\"name\": \"n\", \"aggregation\": \"count\", \"window\": \"1h\"}"),
         {"n: declared twice", "entity customer"}},
        {"duplicate entity",
         "{\"entities\": [{\"name\": \"customer\", \"key\": \"customer_id\", \"variables\": [" COUNT_OK "]},"
         " {\"name\": \"customer\", \"key\": \"merchant_id\", \"variables\": [" COUNT_OK "]}]}",
         {"entity customer: declared twice"}},
        {"key not a string",
         "{\"entities\": [{\"name\": \"amounts\", \"key\": \"amount.value\", \"variables\": [" COUNT_OK "]}]}",
         {"entity amounts", "amount.value is not a string field"}},
        {"unknown key field",
         "{\"entities\": [{\"name\": \"buyer\", \"key\": \"buyer_id\", \"variables\": [" COUNT_OK "]}]}",
         {"entity buyer", "buyer_id"}},
        {"no variables", "{\"entities\": [{\"name\": \"customer\", \"key\": \"customer_id\", \"variables\": []}]}",
         {"entity customer", "non-empty"}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[1024] = "";
        vsVars *v = vsVarsParse(cases[i].text, strlen(cases[i].text), f->codec, err, sizeof(err));
        if (v != NULL) fail_msg("%s: accepted", cases[i].what);
        for (int k = 0; k < 3 && cases[i].want[k]; k++)
            if (strstr(err, cases[i].want[k]) == NULL)
                fail_msg("%s: \"%s\" does not say \"%s\"", cases[i].what, err, cases[i].want[k]);
    }
    /* The checks are no stricter than the file: each case's valid neighbour loads. */
    vsVars *v = parseVars(
        f, ONE_ENTITY(COUNT_OK ", {\"name\": \"s\", \"aggregation\": \"sum\", \"field\": \"amount.value\"},"
                               " {\"name\": \"ch\", \"aggregation\": \"last\", \"field\": \"attributes.channel\"},"
                               " {\"name\": \"model\", \"aggregation\": \"last\", \"field\": \"model.name\"},"
                               " {\"name\": \"r\", \"aggregation\": \"max\", \"field\": \"risk_score\","
                               "  \"where\": {\"risk_score\": [null, 0.5, 1]}, \"doc\": \"a doc\"}"));
    const vsEntity *e = entity(v, "customer");
    assert_int_equal(e->nvars, 5);
    assert_int_equal(e->retention_ms, INT64_MAX); /* the sum reads all time */
    assert_int_equal(e->nrunning, 3);
    vsVarsFree(v);
    char err[256];
    assert_null(vsVarsLoad("/nonexistent/variables.json", f->codec, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/variables.json"));
}

static void test_shipped_variables_file_loads(void **state) {
    fixture *f = *state;
    char err[1024] = "";
    vsVars *v = vsVarsLoad("variable-store/variables.json", f->codec, err, sizeof(err));
    if (v == NULL) fail_msg("variable-store/variables.json: %s", err);
    /* What CONTRACT §6 says the shipped file declares at least. */
    static const char *const customer[] = {"approved_count_30d", "rejected_count_30d", "approved_amount_30d",
                                           "last_outcome", "distinct_merchants_30d"};
    static const char *const merchant[] = {"decision_count_24h", "rejected_count_24h"};
    const vsEntity *c = entity(v, "customer"), *m = entity(v, "merchant");
    assert_string_equal(c->key.text, "customer_id");
    assert_string_equal(m->key.text, "merchant_id");
    for (size_t i = 0; i < sizeof(customer) / sizeof(customer[0]); i++) {
        bool found = false;
        for (size_t k = 0; k < c->nvars; k++) found |= strcmp(c->vars[k].name, customer[i]) == 0;
        if (!found) fail_msg("customer has no %s", customer[i]);
    }
    for (size_t i = 0; i < sizeof(merchant) / sizeof(merchant[0]); i++) {
        bool found = false;
        for (size_t k = 0; k < m->nvars; k++) found |= strcmp(m->vars[k].name, merchant[i]) == 0;
        if (!found) fail_msg("merchant has no %s", merchant[i]);
    }
    assert_int_equal(c->retention_ms, 30 * DAY_MS);
    assert_int_equal(m->retention_ms, DAY_MS);
    assert_int_equal(c->nrunning, 1); /* last_outcome */
    vsVarsFree(v);
}

/* ---- 10. values ---- */

static void test_value_compare_and_equal(void **state) {
    (void)state;
    const vsValue one = {.type = VS_VAL_LONG, .u.l = 1}, oneD = {.type = VS_VAL_DOUBLE, .u.d = 1.0};
    assert_true(vsValueEqual(&one, &oneD));
    assert_true(vsValueEqual(&oneD, &one));
    assert_int_equal(vsValueCompare(&one, &oneD), 0);
    const vsValue s1 = {.type = VS_VAL_STRING, .u.str = {"1", 1}}, t = {.type = VS_VAL_BOOL, .u.b = true};
    assert_false(vsValueEqual(&one, &s1)); /* no conversion between strings and numbers */
    assert_false(vsValueEqual(&one, &t));
    /* Strings borrowed from elsewhere need no NUL. */
    const char raw[] = {'a', 'b', 'X'};
    const vsValue ab = {.type = VS_VAL_STRING, .u.str = {raw, 2}}, ab2 = {.type = VS_VAL_STRING, .u.str = {"ab", 2}};
    assert_true(vsValueEqual(&ab, &ab2));

    /* null < bool < numbers by value < strings by bytes, shorter first. */
    const vsValue ordered[] = {
        {.type = VS_VAL_NULL},
        {.type = VS_VAL_BOOL, .u.b = false},
        {.type = VS_VAL_BOOL, .u.b = true},
        {.type = VS_VAL_LONG, .u.l = INT64_MIN},
        {.type = VS_VAL_DOUBLE, .u.d = -1.5},
        {.type = VS_VAL_LONG, .u.l = -1},
        {.type = VS_VAL_DOUBLE, .u.d = 0.5},
        {.type = VS_VAL_LONG, .u.l = 1},
        {.type = VS_VAL_DOUBLE, .u.d = 1.5},
        {.type = VS_VAL_LONG, .u.l = INT64_MAX - 1},
        {.type = VS_VAL_LONG, .u.l = INT64_MAX}, /* two longs compare exactly, not through a double */
        {.type = VS_VAL_DOUBLE, .u.d = 1e300},
        {.type = VS_VAL_STRING, .u.str = {"", 0}},
        {.type = VS_VAL_STRING, .u.str = {"A", 1}},
        {.type = VS_VAL_STRING, .u.str = {"a", 1}},
        {.type = VS_VAL_STRING, .u.str = {"ab", 2}},
        {.type = VS_VAL_STRING, .u.str = {"b", 1}},
        {.type = VS_VAL_STRING, .u.str = {"\xc3\xa9", 2}}, /* bytes, unsigned */
    };
    const size_t n = sizeof(ordered) / sizeof(ordered[0]);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            int c = vsValueCompare(&ordered[i], &ordered[j]);
            int want = (i > j) - (i < j);
            if ((c > 0) - (c < 0) != want) fail_msg("compare(%zu, %zu) = %d, want sign %d", i, j, c, want);
            if (vsValueEqual(&ordered[i], &ordered[j]) != (i == j)) fail_msg("equal(%zu, %zu) is wrong", i, j);
        }
}

/* ---- the stored form ---- */

static void test_prepared_event_layout(void **state) {
    fixture *f = *state;
    vsVars *v = parseVars(f, VARS_AGG);
    const dec d = {7, "cust-42", "m-7", "REFERRED", 12999, NOW - 1, -1, "web"};
    vsBuf b = {0};
    prepare(f, v, &d, &b);
    const uint8_t *p = b.data, *end = b.data + b.len;
    for (size_t i = 0; i < v->nentities; i++) {
        const vsEntity *e = &v->entities[i];
        vsEventRef ev;
        assert_true(vsEventNext(&p, end, &ev));
        assert_true(ev.present);
        const char *id = i == 0 ? "cust-42" : "m-7";
        assert_int_equal(ev.keylen, 1 + strlen(id) + VS_EVENT_SUFFIX);
        assert_int_equal(ev.key[0], strlen(id));
        assert_memory_equal(ev.key + 1, id, strlen(id));
        assert_int_equal(vsEventKeyTime(ev.key, ev.keylen), d.at);
        vsValue fields[64];
        assert_true(e->nfields <= 64);
        assert_true(vsEventFields(ev.val, ev.vallen, fields, e->nfields));
        assert_false(e->nfields > 0 && vsEventFields(ev.val, ev.vallen, fields, e->nfields - 1));
        for (size_t k = 0; k < e->nfields; k++) {
            const char *path = e->fields[k].text;
            if (strcmp(path, "amount.value") == 0) {
                assert_int_equal(fields[k].type, VS_VAL_LONG);
                assert_int_equal(fields[k].u.l, 12999);
            } else if (strcmp(path, "outcome") == 0) {
                assert_int_equal(fields[k].type, VS_VAL_STRING);
                assert_int_equal(fields[k].u.str.len, 8);
                assert_memory_equal(fields[k].u.str.s, "REFERRED", 8);
            } else if (strcmp(path, "risk_score") == 0) {
                assert_int_equal(fields[k].type, VS_VAL_NULL);
            }
        }
    }
    assert_ptr_equal(p, end);
    /* Keys order by time across the epoch: the sign bit is flipped. */
    uint8_t before[8], zero[8], after[8];
    vsEventTimeBytes(-1, before), vsEventTimeBytes(0, zero), vsEventTimeBytes(NOW, after);
    assert_true(memcmp(before, zero, 8) < 0 && memcmp(zero, after, 8) < 0);
    /* A truncated prepared decision is refused, not read past its end. */
    p = b.data;
    vsEventRef ev;
    assert_false(vsEventNext(&p, b.data + 5, &ev));
    vsBufFree(&b);
    vsVarsFree(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_with_and_without_where),
        cmocka_unit_test(test_sum_of_long_field_stays_integer),
        cmocka_unit_test(test_long_sum_past_int64_turns_real),
        cmocka_unit_test(test_min_max_of_numbers_and_strings),
        cmocka_unit_test(test_last_is_latest_by_decided_at_then_id),
        cmocka_unit_test(test_distinct_count),
        cmocka_unit_test(test_window_edges),
        cmocka_unit_test(test_window_parse),
        cmocka_unit_test(test_out_of_order_arrival_gives_same_values),
        cmocka_unit_test(test_duplicates_change_nothing),
        cmocka_unit_test(test_expired_on_arrival_and_swept),
        cmocka_unit_test(test_sweep_in_small_steps),
        cmocka_unit_test(test_unknown_id_reads_zeros_and_nulls),
        cmocka_unit_test(test_offsets_commit_with_the_state),
        cmocka_unit_test(test_layout_across_restarts_and_file_changes),
        cmocka_unit_test(test_variables_file_errors),
        cmocka_unit_test(test_shipped_variables_file_loads),
        cmocka_unit_test(test_value_compare_and_equal),
        cmocka_unit_test(test_prepared_event_layout),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
