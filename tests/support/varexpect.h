/* varexpect.h - decisions whose variables a test can compute itself: a
 * generator whose customers, merchants, outcomes, amounts and ages vary,
 * posting through the decision API, and the values of the shipped
 * variables file (variable-store/variables.json) computed from the posted
 * documents, to compare with what a variable store answers. */
#ifndef DT_VAREXPECT_H
#define DT_VAREXPECT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "harness.h"

/* Decision k's customer is cust-<k % DT_VAR_CUSTOMERS>, its merchant
 * m-<(k * 7 / 3) % DT_VAR_MERCHANTS>. */
enum { DT_VAR_CUSTOMERS = 8, DT_VAR_MERCHANTS = 5 };
#define DT_DAY_MS 86400000LL
#define DT_HOUR_MS 3600000LL

/* The wall clock in milliseconds since the epoch. */
int64_t dtNowMs(void);
/* ms as RFC 3339 UTC with milliseconds ("2026-01-02T03:04:05.678Z"). */
void dtRfc3339(int64_t ms, char out[32]);
/* The inverse of dtRfc3339 (that exact form only). */
int64_t dtParseMs(const char *s);

/* Decision k of a history, relative to now: a fresh decision_id, purchase
 * p-<k/2>, an outcome and amount that vary with k; decided 45 d, 20 d, 5 h
 * or 10 min (minus k ms) before now, far from every window edge, so the few
 * seconds between posting and reading never move one across. A new
 * reference. */
json_t *dtVarDecision(int k, int64_t now);
/* Posts n more decisions (dtVarDecision from the size of posted on) through
 * api's batch endpoint, 100 per request, and appends each to posted. False
 * (printed) if a request is not answered 200. */
bool dtVarPost(const dtApi *api, json_t *posted, int n);

/* Whether doc (borrowed) was decided within window ms before as_of. */
bool dtVarInWindow(const json_t *doc, int64_t as_of, int64_t window);
/* The variables of a customer or a merchant as of as_of, computed from
 * posted (borrowed): new references. */
json_t *dtVarExpectCustomer(const json_t *posted, const char *id, int64_t as_of);
json_t *dtVarExpectMerchant(const json_t *posted, const char *id, int64_t as_of);

/* Every customer and merchant of the generator (plus one never seen of
 * each) through one batchGet of the store at: the results array (a new
 * reference), or NULL. */
json_t *dtVarSnapshot(const dtApi *at);
/* Whether every variable the store at answers equals the one computed from
 * posted; the first difference printed when verbose. */
bool dtVarMatches(const dtApi *at, const json_t *posted, bool verbose);

#endif
