/* agg.h - an entity's variables at one moment, from its stored events and
 * running values.
 *
 * Windows are by decided_at and applied here, when a variable is read: an
 * event counts for a variable with window w at as_of if
 *     decided_at > as_of - w
 * (a decision exactly w old has left the window; one dated after as_of, from
 * a producer whose clock runs ahead, counts). Events are handed in key
 * order (decided_at, then decision_id), so "last" and floating-point sums
 * come out the same whatever order the decisions arrived in.
 *
 * Running values (all-time min, max and last, vars.h) are merged when a
 * decision is applied; each merge is idempotent (the larger of two values,
 * the later of two events), so a decision seen twice changes nothing.
 */
#ifndef VS_AGG_H
#define VS_AGG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "vars.h"

typedef struct vsAgg vsAgg;

/* Accumulators for one entity's variables; reusable for many lookups.
 * e is borrowed and must outlive the vsAgg. NULL on allocation failure. */
vsAgg *vsAggNew(const vsEntity *e);
void vsAggFree(vsAgg *a);

/* Starts a lookup at as_of (ms since the epoch). */
void vsAggReset(vsAgg *a, int64_t as_of);
/* The earliest decided_at any variable can count at as_of (events before it
 * need not be read); INT64_MIN when a variable reads all time. */
int64_t vsAggHorizon(const vsEntity *e, int64_t as_of);
/* One stored event, in key order: key is the event key (event.h), fields its
 * decoded values (strings borrowed until vsAggResult()). false on
 * allocation failure. */
bool vsAggAddEvent(vsAgg *a, const uint8_t *key, size_t keylen, const vsValue *fields);
/* The entity's running state as stored (NULL, 0 when it has none); borrowed
 * until vsAggResult(). false if malformed. */
bool vsAggSetRunning(vsAgg *a, const uint8_t *state, size_t len);
/* {"variable": value, ...} in the file's order: counts, sums and distinct
 * counts are numbers (0 without events), min, max and last are the value or
 * null. A new reference; NULL on allocation failure. */
json_t *vsAggResult(vsAgg *a);

/* Merges one event (key, decoded fields) into an entity's running state
 * (old, oldlen; NULL, 0 if none yet) and writes the new state into out
 * (reset first). *changed: whether the state is different. false on
 * allocation failure or a malformed old state. */
bool vsAggMergeRunning(const vsEntity *e, const uint8_t *old, size_t oldlen, const uint8_t *key, size_t keylen,
                       const vsValue *fields, vsBuf *out, bool *changed);

#endif
