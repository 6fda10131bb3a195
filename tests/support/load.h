/* load.h - a steady load of posted decisions for the integration tests that
 * restart things under traffic (test_handover, test_rollout).
 *
 * Threads post to /v1/decisions at a fixed pace, half of them over one
 * keep-alive connection each, half on a new connection per post, and record
 * every decision_id with its HTTP status. The document posted is a template
 * the test may switch at any time (a v1 document, then a v2 one); each post
 * records which template (its "kind") it was made from.
 *
 * curl_global_init() must have run before dtLoadStart() (it is not
 * thread-safe). */
#ifndef DT_LOAD_H
#define DT_LOAD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "harness.h"

typedef struct dtLoad dtLoad;

/* One posted decision. */
typedef struct dtLoadPost {
    char id[37];
    int kind;    /* the template's kind when it was posted */
    long status; /* HTTP status, 0 when no answer came */
} dtLoadPost;

/* Starts threads posting doc (borrowed; copied), recorded as kind, each post
 * interval_ms after the previous one of its thread. api is borrowed and must
 * outlive the load: the socket it names may change hands under it. NULL on
 * failure. */
dtLoad *dtLoadStart(const dtApi *api, int threads, int interval_ms, const json_t *doc, int kind);
/* From now on each post takes customer_id "load-<k>", k = 0..n-1 in turn
 * (n > 0): the record key, so the posts spread over the topic's
 * partitions. */
void dtLoadSetCustomers(dtLoad *l, int n);
/* From now on threads post doc (borrowed; copied) and record kind. */
void dtLoadSetDoc(dtLoad *l, const json_t *doc, int kind);
/* Waits until every thread made n more posts (so both kinds of client went
 * through whatever is happening now); false after 60 s. */
bool dtLoadAdvance(dtLoad *l, long n);
/* Stops the threads and waits for them. */
void dtLoadStop(dtLoad *l);
/* Every post made so far, in no particular order, after dtLoadStop(). The
 * array is owned by the load; *n gets its length. */
const dtLoadPost *dtLoadPosts(dtLoad *l, size_t *n);
/* How many posts did not get 201; the first failure is described in why. */
long dtLoadFailed(dtLoad *l, char *why, size_t whylen);
void dtLoadFree(dtLoad *l);

/* A SQL list of the ids ("'a','b'"), malloc'd; for IN (...) clauses. */
char *dtLoadIdList(const dtLoadPost *posts, size_t n);

#endif
