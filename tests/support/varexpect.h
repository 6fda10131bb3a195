/* varexpect.h - the shipped variables (variable-store/variables.json)
 * computed by a test itself from the documents it posted, and compared with
 * what a variable store answers: the tests of the store's exactness
 * (test_varstore, test_groups) share one reckoning, independent of the
 * store's code. */
#ifndef DT_VAREXPECT_H
#define DT_VAREXPECT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "harness.h"

#define DT_DAY_MS 86400000LL
#define DT_HOUR_MS 3600000LL

/* What a test posted: decision k has customer "cust-<k % customers>" and
 * merchant "m-<(k*7/3) % merchants>" (each at most 64, and together at most
 * 98 so one batchGet asks for all). */
typedef struct dtVarSet {
    json_t *posted; /* every document posted, in order (the test's array) */
    int customers, merchants;
    int64_t age_ms; /* 0: the four ages of dtVarDecision in turn; else every decision's */
} dtVarSet;

/* Decision k of vs, as of now (ms): customers, merchants, outcomes and
 * amounts vary; ages are far from every window edge (45 d, 20 d, 5 h,
 * 10 min, or vs->age_ms; minus k ms so no two share a decided_at), so the
 * seconds between posting and reading never move one across. Four ages
 * make an archive file per record or so (a file holds one hour); one age
 * makes files as an archiver sees them in production. A new reference. */
json_t *dtVarDecision(const dtVarSet *vs, int k, int64_t now);

/* Posts n more decisions (dtVarDecision from the size of vs->posted on)
 * through api's batch endpoint, 100 per request, appending each to
 * vs->posted. False (printed) if a request is not answered 200. */
bool dtVarPost(const dtApi *api, dtVarSet *vs, int n);

/* The variables of customer or merchant id as of as_of (ms), computed from
 * vs->posted: a new reference. */
json_t *dtVarExpectCustomer(const dtVarSet *vs, const char *id, int64_t as_of);
json_t *dtVarExpectMerchant(const dtVarSet *vs, const char *id, int64_t as_of);

/* Every customer and merchant of vs (plus one never seen of each) through
 * one batchGet to at: its "results" array (a new reference), or NULL. */
json_t *dtVarSnapshot(const dtApi *at, const dtVarSet *vs);

/* Whether every variable at answers equals the computed one; the first
 * difference on stderr when verbose. */
bool dtVarMatches(const dtApi *at, const dtVarSet *vs, bool verbose);

/* A string member of doc (NULL if absent). */
const char *dtStr(const json_t *doc, const char *key);
/* The wall clock in ms. */
int64_t dtNowMs(void);
/* ms as "YYYY-MM-DDTHH:MM:SS.mmmZ". */
void dtRfc3339(int64_t ms, char out[32]);
/* That form back to ms. */
int64_t dtParseMs(const char *s);

#endif
