/* pending.h - a request that waits on the database.
 *
 * h2o frees a request (and its pool) when the client goes away, possibly
 * while PostgreSQL is still working on it. The database callbacks therefore
 * never hold an h2o_req_t directly: they hold an apiPending, heap memory that
 * outlives the request. A cell in the request pool, registered with
 * h2o_mem_alloc_shared(), clears apiPending.req when h2o disposes the pool,
 * so the callback finds the request cancelled rather than freed.
 *
 * Ownership: the handler creates the apiPending; whoever receives the last
 * database answer frees it with apiPendingFree(), after answering if
 * apiPendingReq() is still non-NULL.
 */
#ifndef API_PENDING_H
#define API_PENDING_H

#include <h2o.h>

#include "ds/metrics.h"

typedef struct apiPending {
    h2o_req_t *req;           /* NULL once the client has gone */
    struct apiPending **cell; /* the link in the request pool, NULL once disposed */
    dsMetric *abandoned;      /* counts clients gone before their answer; may be NULL */
    void *data;               /* handler state, size given to apiPendingNew() */
} apiPending;

/* Allocates the pending state with data_size zeroed bytes of handler state.
 * abandoned (borrowed, may be NULL) is incremented if the client goes away
 * first. Returns NULL on allocation failure. */
apiPending *apiPendingNew(h2o_req_t *req, size_t data_size, dsMetric *abandoned);
/* The request, or NULL if the client went away. */
static inline h2o_req_t *apiPendingReq(const apiPending *p) {
    return p->req;
}
/* Unlinks from the request pool (if still alive) and frees. */
void apiPendingFree(apiPending *p);

#endif
