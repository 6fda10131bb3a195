/* routes.c - request routing and the checks every handler shares
 * (authentication, content type), plus the small operational endpoints. */
#include <string.h>

#include "api.h"
#include "ds/log.h"

#define ROUTE_OTHER "other"

bool apiRequireRole(apiServer *s, h2o_req_t *req, const char *route, int role) {
    return dsAuthRequire(s->auth, s->http, req, route, role);
}

bool apiRequireJson(apiServer *s, h2o_req_t *req, const char *route) {
    if (dsHttpBodyIsJson(req)) return true;
    dsHttpRespondError(s->http, req, route, 415, "unsupported_media_type", "the body must be application/json", NULL, 0);
    return false;
}

static void routeMetrics(apiServer *s, h2o_req_t *req) {
    dsMetricSet(s->m_db_up, apiWriterReady(s->writer) ? 1 : 0);
    dsHttpRespondMetrics(s->http, req, s->metrics);
}

static void routeReady(apiServer *s, h2o_req_t *req) {
    if (apiWriterReady(s->writer) && apiReaderReady(s->reader))
        dsHttpRespondJson(s->http, req, "GET /readyz", 200, json_pack("{s:s}", "status", "ready"), NULL, 0);
    else
        dsHttpRespondError(s->http, req, "GET /readyz", 503, "unavailable", "PostgreSQL is not reachable", NULL,
                           s->retry_after_s);
}

void apiHandle(void *app, h2o_req_t *req) {
    apiServer *s = app;
    h2o_iovec_t path = req->path_normalized;
    bool get = dsHttpMethodIs(req, "GET") || dsHttpMethodIs(req, "HEAD");
    bool post = dsHttpMethodIs(req, "POST");
    static const char prefix[] = "/v1/decisions/";

    if (dsHttpPathIs(&path, "/v1/decisions")) {
        if (post) apiPostDecision(s, req);
        else if (get) apiListDecisions(s, req);
        else dsHttpRespondMethodNotAllowed(s->http, req, "GET, POST");
    } else if (dsHttpPathIs(&path, "/v1/decisions:batch")) {
        if (post) apiPostBatch(s, req);
        else dsHttpRespondMethodNotAllowed(s->http, req, "POST");
    } else if (path.len > sizeof(prefix) - 1 && memcmp(path.base, prefix, sizeof(prefix) - 1) == 0) {
        if (get) apiGetDecision(s, req, path.base + sizeof(prefix) - 1, path.len - (sizeof(prefix) - 1));
        else dsHttpRespondMethodNotAllowed(s->http, req, "GET");
    } else if (dsHttpPathIs(&path, "/healthz")) {
        if (get) dsHttpRespondJson(s->http, req, "GET /healthz", 200, json_pack("{s:s}", "status", "ok"), NULL, 0);
        else dsHttpRespondMethodNotAllowed(s->http, req, "GET");
    } else if (dsHttpPathIs(&path, "/readyz")) {
        if (get) routeReady(s, req);
        else dsHttpRespondMethodNotAllowed(s->http, req, "GET");
    } else if (dsHttpPathIs(&path, "/metrics")) {
        if (get) routeMetrics(s, req);
        else dsHttpRespondMethodNotAllowed(s->http, req, "GET");
    } else if (!apiRegistryRoute(s, req)) {
        dsHttpRespondError(s->http, req, ROUTE_OTHER, 404, "not_found", "no such endpoint", NULL, 0);
    }
}
