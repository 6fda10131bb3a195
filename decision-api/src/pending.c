/* pending.c - request state that survives the client going away. */
#include "pending.h"

#include <stdlib.h>

static void pendingDispose(void *cell) {
    apiPending *p = *(apiPending **)cell;
    if (p != NULL) {
        dsMetricInc(p->abandoned, 1);
        p->req = NULL;
        p->cell = NULL;
    }
}

apiPending *apiPendingNew(h2o_req_t *req, size_t data_size, dsMetric *abandoned) {
    apiPending *p = calloc(1, sizeof(*p) + data_size);
    if (p == NULL) return NULL;
    p->req = req;
    p->abandoned = abandoned;
    p->data = data_size ? (void *)(p + 1) : NULL;
    p->cell = h2o_mem_alloc_shared(&req->pool, sizeof(*p->cell), pendingDispose);
    *p->cell = p;
    return p;
}

void apiPendingFree(apiPending *p) {
    if (p == NULL) return;
    if (p->cell != NULL) *p->cell = NULL;
    free(p);
}
