/* varexpect.c - see varexpect.h. */
#include "varexpect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t dtNowMs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void dtRfc3339(int64_t ms, char out[32]) {
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

int64_t dtParseMs(const char *s) {
    struct tm tm = {0};
    int ms = 0;
    sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms);
    tm.tm_year -= 1900, tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

const char *dtStr(const json_t *doc, const char *key) {
    return json_string_value(json_object_get(doc, key));
}

json_t *dtVarDecision(const dtVarSet *vs, int k, int64_t now) {
    static const char *const outcomes[] = {"APPROVED", "REJECTED", "APPROVED", "REFERRED", "APPROVED"};
    static const int64_t ages[] = {45 * DT_DAY_MS, 20 * DT_DAY_MS, 5 * DT_HOUR_MS, 10 * 60000};
    json_t *doc = dtFixture("decision.json");
    char id[37], cust[24], merch[24], at[32], purchase[24];
    dtUuid(id);
    snprintf(cust, sizeof(cust), "cust-%d", k % vs->customers);
    snprintf(merch, sizeof(merch), "m-%d", (k * 7 / 3) % vs->merchants);
    dtRfc3339(now - (vs->age_ms ? vs->age_ms : ages[k % 4]) - k, at);
    snprintf(purchase, sizeof(purchase), "p-%d", k / 2); /* two decisions per purchase */
    json_object_set_new(doc, "decision_id", json_string(id));
    json_object_set_new(doc, "purchase_id", json_string(purchase));
    json_object_set_new(doc, "customer_id", json_string(cust));
    json_object_set_new(doc, "merchant_id", json_string(merch));
    json_object_set_new(doc, "outcome", json_string(outcomes[k % 5]));
    json_object_set_new(json_object_get(doc, "amount"), "value", json_integer(1000 + 37 * k));
    json_object_set_new(doc, "decided_at", json_string(at));
    return doc;
}

/* Posts one batch of decisions (borrowed); true on 200. */
static bool dtVarPostBatch(const dtApi *api, json_t *batch) {
    json_t *req = json_pack("{s:O}", "decisions", batch);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    dtResponse r;
    bool ok = dtHttp(api, "POST", "/v1/decisions:batch", DT_WRITER_TOKEN, "application/json", body, strlen(body), &r);
    if (ok && r.status != 200) fprintf(stderr, "POST /v1/decisions:batch: %ld %s\n", r.status, r.body);
    ok = ok && r.status == 200;
    dtResponseFree(&r);
    free(body);
    return ok;
}

bool dtVarPost(const dtApi *api, dtVarSet *vs, int n) {
    int64_t now = dtNowMs();
    int base = (int)json_array_size(vs->posted);
    bool ok = true;
    for (int start = 0; ok && start < n; start += 100) {
        json_t *batch = json_array();
        for (int k = start; k < n && k < start + 100; k++)
            json_array_append_new(batch, dtVarDecision(vs, base + k, now));
        ok = dtVarPostBatch(api, batch);
        if (ok) json_array_extend(vs->posted, batch);
        json_decref(batch);
    }
    return ok;
}

static bool inWindow(const json_t *doc, int64_t as_of, int64_t window) {
    return dtParseMs(dtStr(doc, "decided_at")) > as_of - window;
}

/* Adds s to the set (at most 64) unless it is there. */
static void addDistinct(const char **set, size_t *n, const char *s) {
    size_t i = 0;
    while (i < *n && strcmp(set[i], s) != 0) i++;
    if (i == *n && *n < 64) set[(*n)++] = s;
}

json_t *dtVarExpectCustomer(const dtVarSet *vs, const char *id, int64_t as_of) {
    json_int_t approved = 0, rejected = 0, amount = 0, c24 = 0, c1 = 0, maxamt = -1;
    const char *last = NULL, *merchants[64];
    int64_t last_at = INT64_MIN;
    size_t nm = 0, i;
    json_t *doc;
    json_array_foreach(vs->posted, i, doc) {
        if (strcmp(dtStr(doc, "customer_id"), id) != 0) continue;
        int64_t at = dtParseMs(dtStr(doc, "decided_at"));
        json_int_t value = json_integer_value(json_object_get(json_object_get(doc, "amount"), "value"));
        bool ok = strcmp(dtStr(doc, "outcome"), "APPROVED") == 0;
        if (at > last_at) last_at = at, last = dtStr(doc, "outcome");
        c24 += inWindow(doc, as_of, 24 * DT_HOUR_MS);
        c1 += inWindow(doc, as_of, DT_HOUR_MS);
        if (!inWindow(doc, as_of, 30 * DT_DAY_MS)) continue;
        approved += ok, rejected += strcmp(dtStr(doc, "outcome"), "REJECTED") == 0;
        if (ok) amount += value, maxamt = value > maxamt ? value : maxamt;
        addDistinct(merchants, &nm, dtStr(doc, "merchant_id"));
    }
    return json_pack("{s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:o}", "approved_count_30d", approved, "rejected_count_30d",
                     rejected, "approved_amount_30d", amount, "last_outcome", last ? json_string(last) : json_null(),
                     "distinct_merchants_30d", (json_int_t)nm, "decision_count_24h", c24, "decision_count_1h", c1,
                     "max_approved_amount_30d", maxamt >= 0 ? json_integer(maxamt) : json_null());
}

json_t *dtVarExpectMerchant(const dtVarSet *vs, const char *id, int64_t as_of) {
    json_int_t count = 0, rejected = 0;
    const char *customers[64];
    size_t nc = 0, i;
    json_t *doc;
    json_array_foreach(vs->posted, i, doc) {
        if (strcmp(dtStr(doc, "merchant_id"), id) != 0 || !inWindow(doc, as_of, 24 * DT_HOUR_MS)) continue;
        count++, rejected += strcmp(dtStr(doc, "outcome"), "REJECTED") == 0;
        addDistinct(customers, &nc, dtStr(doc, "customer_id"));
    }
    return json_pack("{s:I, s:I, s:I}", "decision_count_24h", count, "rejected_count_24h", rejected,
                     "distinct_customers_24h", (json_int_t)nc);
}

json_t *dtVarSnapshot(const dtApi *at, const dtVarSet *vs) {
    json_t *keys = json_array();
    char id[24];
    for (int c = 0; c <= vs->customers; c++) {
        snprintf(id, sizeof(id), "cust-%d", c);
        json_array_append_new(keys, json_pack("{s:s, s:s}", "entity", "customer", "id", id));
    }
    for (int m = 0; m <= vs->merchants; m++) {
        snprintf(id, sizeof(id), "m-%d", m);
        json_array_append_new(keys, json_pack("{s:s, s:s}", "entity", "merchant", "id", id));
    }
    json_t *req = json_pack("{s:o}", "keys", keys);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    dtResponse r;
    json_t *out = NULL;
    if (dtHttp(at, "POST", "/v1/variables:batchGet", DT_LOOKUP_TOKEN, "application/json", body, strlen(body), &r) &&
        r.status == 200)
        out = json_incref(json_object_get(r.json, "results"));
    dtResponseFree(&r);
    free(body);
    return out;
}

bool dtVarMatches(const dtApi *at, const dtVarSet *vs, bool verbose) {
    json_t *snap = dtVarSnapshot(at, vs), *res;
    size_t i;
    bool ok = snap != NULL;
    if (!ok && verbose) fprintf(stderr, "%s: no batchGet answer\n", at->url);
    json_array_foreach(snap, i, res) {
        if (!ok) break;
        const char *entity = dtStr(res, "entity"), *id = dtStr(res, "id");
        int64_t as_of = dtParseMs(dtStr(res, "as_of"));
        json_t *want = strcmp(entity, "customer") == 0 ? dtVarExpectCustomer(vs, id, as_of)
                                                       : dtVarExpectMerchant(vs, id, as_of);
        ok = json_equal(want, json_object_get(res, "variables"));
        if (!ok && verbose) {
            char *w = json_dumps(want, JSON_SORT_KEYS), *g = json_dumps(json_object_get(res, "variables"), JSON_SORT_KEYS);
            fprintf(stderr, "%s %s %s:\n  expected %s\n  got      %s\n", at->url, entity, id, w, g);
            free(w), free(g);
        }
        json_decref(want);
    }
    json_decref(snap);
    return ok;
}
