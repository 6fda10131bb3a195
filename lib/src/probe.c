/* probe.c - /metrics, /healthz and /readyz of a daemon (probe.h). */
#include "ds/probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ds/http.h"

struct dsProbe {
    dsProbeConfig cfg;
    dsHttpServer *http;
};

static void probeReady(dsProbe *p, h2o_req_t *req) {
    char why[1400];
    const char *what = p->cfg.ready ? p->cfg.ready(p->cfg.app, why, sizeof(why)) : NULL;
    if (what)
        dsHttpRespondJson(p->http, req, "GET /readyz", 503, json_pack("{s:s,s:s}", "status", what, "reason", why),
                          NULL, 0);
    else
        dsHttpRespondJson(p->http, req, "GET /readyz", 200, json_pack("{s:s}", "status", p->cfg.ready_status), NULL,
                          0);
}

static void probeHandle(void *app, h2o_req_t *req) {
    dsProbe *p = app;
    if (dsHttpPathIs(&req->path_normalized, "/metrics")) {
        if (p->cfg.publish) p->cfg.publish(p->cfg.app, p->cfg.metrics);
        dsHttpRespondMetrics(p->http, req, p->cfg.metrics);
    } else if (dsHttpPathIs(&req->path_normalized, "/healthz")) {
        dsHttpRespondJson(p->http, req, "GET /healthz", 200, json_pack("{s:s}", "status", "ok"), NULL, 0);
    } else if (dsHttpPathIs(&req->path_normalized, "/readyz")) {
        probeReady(p, req);
    } else {
        dsHttpRespondError(p->http, req, "other", 404, "not_found", "GET /metrics, /healthz or /readyz", NULL, 0);
    }
}

dsProbe *dsProbeStart(uv_loop_t *loop, const dsProbeConfig *cfg, char *errbuf, size_t errlen) {
    dsProbe *p = calloc(1, sizeof(*p));
    if (p == NULL) return snprintf(errbuf, errlen, "out of memory"), NULL;
    p->cfg = *cfg;
    dsHttpConfig hc = {cfg->host, cfg->port, 4096, 128, NULL};
    if ((p->http = dsHttpServerStart(loop, &hc, probeHandle, p, cfg->metrics, errbuf, errlen)) == NULL) {
        free(p);
        return NULL;
    }
    return p;
}

void dsProbeStop(dsProbe *p, uv_loop_t *loop, int timeout_ms) {
    if (p == NULL) return;
    dsHttpServerShutdown(p->http);
    for (int waited = 0; !dsHttpServerIdle(p->http) && waited < timeout_ms; waited += 5) {
        dsHttpServerCloseIdle(p->http);
        uv_run(loop, UV_RUN_NOWAIT);
        if (!dsHttpServerIdle(p->http)) nanosleep(&(struct timespec){0, 5000000}, NULL);
    }
}

void dsProbeFree(dsProbe *p) {
    if (p == NULL) return;
    dsHttpServerFree(p->http);
    free(p);
}
