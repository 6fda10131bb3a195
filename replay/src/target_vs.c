/* target_vs.c - the variable-store target of decision-replay (target.h):
 * batches of decision documents POSTed to {url}/v1/decisions:ingest
 * (CONTRACT §6) on one HTTP client (ds/httpclient.h), so the connection is
 * kept alive.
 *
 * The store applies a batch in one transaction and counts a decision at
 * most once, so a batch whose answer was lost (timeout, reset) is simply
 * sent again: its decisions then come back as duplicates. A batch the store
 * refuses as invalid (400) fails as a whole, but the target goes on: like a
 * Kafka delivery failure it is only counted, and the replay, which never
 * checkpoints past a failed decision, decides what follows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ds/httpclient.h"
#include "ds/timefmt.h"
#include "ds/log.h"
#include "target.h"

#define TV_RETRY_MS 60000L     /* how long a batch is retried while the store cannot take it */
#define TV_BACKOFF_MIN_MS 100L
#define TV_BACKOFF_MAX_MS 2000L
#define TV_CONNECT_MS 5000L
#define TV_REQUEST_MS 30000L   /* one request, connecting included */
#define TV_EXCERPT 300         /* of a response body quoted in a message */
#define TV_REASON_MAX 1024     /* a reason quoted from the store or libcurl */

static const char tvIngestPath[] = "/v1/decisions:ingest";

typedef struct tvTarget {
    rpTarget base;
    dsCodec *codec;
    dsHttpClient *http;
    char *url;                  /* the base, without a trailing '/' */
    char *ingest;               /* url + tvIngestPath */
    json_t *req;                /* {"decisions":[...]}: the batch being built */
    json_t *docs;               /* its array, borrowed from req */
    size_t batch;
} tvTarget;

/* The last response's body, parsed; NULL if it is not JSON. */
static json_t *tvBodyJson(const tvTarget *t) {
    size_t len;
    const char *body = dsHttpClientBody(t->http, &len);
    return json_loadb(body, len, 0, NULL);
}

/* At most TV_EXCERPT bytes of the last response's body, for a message. */
static const char *tvExcerpt(const tvTarget *t, int *len) {
    size_t n;
    const char *body = dsHttpClientBody(t->http, &n);
    *len = n < TV_EXCERPT ? (int)n : TV_EXCERPT;
    return body;
}

/* What the last response says: the message of the store's JSON error body,
 * else an excerpt of the body. */
static void tvReason(const tvTarget *t, char *out, size_t len) {
    json_t *j = tvBodyJson(t);
    const char *message = json_string_value(json_object_get(j, "message"));
    int n;
    const char *excerpt = tvExcerpt(t, &n);
    if (message) snprintf(out, len, "%s", message);
    else snprintf(out, len, "%.*s", n, excerpt);
    json_decref(j);
}

/* Why the last request did not get through: the transport failure
 * (transport, from the client), or what the store answered. */
static void tvWhy(const tvTarget *t, bool answered, const char *transport, char *out, size_t len) {
    char reason[TV_REASON_MAX];
    if (!answered) {
        snprintf(out, len, "%s", transport);
        return;
    }
    tvReason(t, reason, sizeof(reason));
    snprintf(out, len, "%ld: %s", dsHttpClientStatus(t->http), reason);
}

/* Posts the batch until the store answers anything but 503, retrying a 503
 * or a transient failure with backoff (at least the Retry-After asked for)
 * for up to TV_RETRY_MS. false: given up, or a failure not worth retrying. */
static bool tvPost(tvTarget *t, const char *text, char *errbuf, size_t errlen) {
    int64_t deadline = dsTimeMonoMs() + TV_RETRY_MS;
    long backoff = TV_BACKOFF_MIN_MS;
    char last[TV_REASON_MAX + 16], transport[TV_REASON_MAX];
    for (int attempt = 1;; attempt++) {
        bool answered = dsHttpClientPost(t->http, t->ingest, NULL, text, strlen(text), transport, sizeof transport);
        if (answered && dsHttpClientStatus(t->http) != 503) return true;
        tvWhy(t, answered, transport, last, sizeof(last));
        if (!answered && !dsHttpClientTransient(t->http))
            return snprintf(errbuf, errlen, "variable store %s: %s", t->url, last), false;
        int64_t left = deadline - dsTimeMonoMs();
        if (left <= 0) {
            snprintf(errbuf, errlen, "variable store %s: still failing after retrying for %ld s: %s", t->url,
                     TV_RETRY_MS / 1000, last);
            return false;
        }
        long retry_after = dsHttpClientRetryAfterMs(t->http), wait = retry_after > backoff ? retry_after : backoff;
        if (wait > left) wait = (long)left;
        dsLog(attempt == 1 ? DS_LOG_WARN : DS_LOG_DEBUG, "variable store %s: %s; retrying for up to %ld s", t->url,
              last, TV_RETRY_MS / 1000);
        nanosleep(&(struct timespec){wait / 1000, (wait % 1000) * 1000000L}, NULL);
        backoff = backoff * 2 < TV_BACKOFF_MAX_MS ? backoff * 2 : TV_BACKOFF_MAX_MS;
    }
}

/* A 200: the counts must account for the whole batch. */
static bool tvCount(tvTarget *t, size_t n, char *errbuf, size_t errlen) {
    json_t *j = tvBodyJson(t);
    json_int_t received = -1, counted = -1, duplicates = -1, expired = -1;
    bool ok = j && json_unpack(j, "{s:I, s:I, s:I, s:I}", "received", &received, "counted", &counted,
                               "duplicates", &duplicates, "expired", &expired) == 0 &&
              received == (json_int_t)n && counted >= 0 && duplicates >= 0 && expired >= 0 &&
              counted + duplicates + expired == received;
    json_decref(j);
    if (!ok) {
        int elen;
        const char *excerpt = tvExcerpt(t, &elen);
        snprintf(errbuf, errlen, "variable store %s: the answer to a batch of %zu decisions does not count them: %.*s",
                 t->url, n, elen, excerpt);
        return false;
    }
    t->base.settled.written += (uint64_t)counted;
    t->base.settled.present += (uint64_t)(duplicates + expired);
    return true;
}

/* A 400: nothing of the batch was applied. Logged once for the batch, with
 * the decision_id of the document the store names. */
static void tvRefused(tvTarget *t, size_t n) {
    char reason[TV_REASON_MAX];
    json_t *j = tvBodyJson(t);
    const char *field = json_string_value(json_object_get(j, "field")), *id = NULL;
    size_t i;
    if (field && sscanf(field, "decisions[%zu]", &i) == 1)
        id = json_string_value(json_object_get(json_array_get(t->docs, i), "decision_id"));
    tvReason(t, reason, sizeof(reason));
    dsLogError("variable store %s: refused a batch of %zu decisions, all counted as failed: %s (field %s,"
               " decision_id %s)", t->url, n, reason, field ? field : "-", id ? id : "-");
    json_decref(j);
    t->base.settled.failed += n;
}

/* The store's final answer to a batch of n decisions. */
static bool tvSettle(tvTarget *t, size_t n, char *errbuf, size_t errlen) {
    char reason[TV_REASON_MAX];
    long status = dsHttpClientStatus(t->http);
    switch (status) {
    case 200:
        return tvCount(t, n, errbuf, errlen);
    case 400:
        tvRefused(t, n);
        return true;
    case 401:
    case 403:
        tvReason(t, reason, sizeof(reason));
        snprintf(errbuf, errlen, "variable store %s refuses the token (%ld: %s): give decision-replay a token with the "
                 "ingest role (--token-file or REPLAY_TOKEN)", t->url, status, reason);
        return false;
    case 413:
        tvReason(t, reason, sizeof(reason));
        snprintf(errbuf, errlen, "variable store %s: a batch of %zu decisions is over the store's limit on body size"
                 " or ingest-max-items (413: %s); lower --batch", t->url, n, reason);
        return false;
    default:
        tvReason(t, reason, sizeof(reason));
        snprintf(errbuf, errlen, "variable store %s: POST %s answered %ld: %s", t->url, tvIngestPath, status,
                 reason);
        return false;
    }
}

/* Sends the batch and settles it; whatever way it ends, the batch is
 * counted and emptied. */
static bool tvSend(tvTarget *t, char *errbuf, size_t errlen) {
    size_t n = json_array_size(t->docs);
    if (n == 0) return true;
    char *text = json_dumps(t->req, JSON_COMPACT);
    if (text == NULL) return snprintf(errbuf, errlen, "out of memory"), false;
    bool ok = tvPost(t, text, errbuf, errlen) && tvSettle(t, n, errbuf, errlen);
    free(text);
    if (!ok) t->base.settled.failed += n;
    json_array_clear(t->docs);
    return ok;
}

static bool tvWrite(rpTarget *base, avro_value_t *v, char *errbuf, size_t errlen) {
    tvTarget *t = (tvTarget *)base;
    json_t *doc = dsCodecToJson(t->codec, v, 0);
    if (doc == NULL || json_array_append_new(t->docs, doc) != 0)
        return snprintf(errbuf, errlen, "cannot render a decision as JSON (out of memory or a broken value)"), false;
    return json_array_size(t->docs) < t->batch || tvSend(t, errbuf, errlen);
}

static bool tvFlush(rpTarget *base, char *errbuf, size_t errlen) {
    return tvSend((tvTarget *)base, errbuf, errlen);
}

static void tvDestroy(rpTarget *base) {
    tvTarget *t = (tvTarget *)base;
    dsHttpClientFree(t->http);
    json_decref(t->req);
    free(t->ingest);
    free(t->url);
    free(t);
}

static const rpTargetOps tvOps = {"variable-store", tvWrite, tvFlush, tvDestroy};

/* base + path in a new string; NULL if out of memory. */
static char *tvJoin(const char *base, const char *path) {
    size_t blen = strlen(base), plen = strlen(path);
    char *s = malloc(blen + plen + 1);
    if (s == NULL) return NULL;
    memcpy(s, base, blen);
    memcpy(s + blen, path, plen + 1);
    return s;
}

/* GET /healthz, so a wrong URL or a store that is down is told at once
 * rather than after the first batch has been read. */
static bool tvCheckHealth(tvTarget *t, char *errbuf, size_t errlen) {
    char *health = tvJoin(t->url, "/healthz"), why[TV_REASON_MAX + 16], transport[TV_REASON_MAX];
    if (health == NULL) return snprintf(errbuf, errlen, "out of memory"), false;
    bool answered = dsHttpClientGet(t->http, health, transport, sizeof transport);
    bool ok = answered && dsHttpClientStatus(t->http) == 200;
    if (!ok) tvWhy(t, answered, transport, why, sizeof(why));
    if (!answered)
        snprintf(errbuf, errlen, "variable store %s is not reachable: %s", t->url, why);
    else if (!ok)
        snprintf(errbuf, errlen, "variable store %s: GET %s answered %s (is this the variable store?)", t->url, health,
                 why);
    free(health);
    return ok;
}

rpTarget *rpVsTargetNew(dsCodec *codec, const char *url, const char *token, size_t batch, char *errbuf,
                        size_t errlen) {
    if (!dsHttpClientCheckBaseUrl(url, "--url", errbuf, errlen)) return NULL;
    tvTarget *t = calloc(1, sizeof(*t));
    if (t == NULL) return snprintf(errbuf, errlen, "out of memory"), NULL;
    t->base.ops = &tvOps;
    t->codec = codec;
    t->batch = batch ? batch : 1;
    t->req = json_pack("{s:[]}", "decisions");
    t->docs = json_object_get(t->req, "decisions");
    if ((t->url = strdup(url)) != NULL) {
        size_t len = strlen(t->url);
        while (len > 0 && t->url[len - 1] == '/') t->url[--len] = '\0';
        t->ingest = tvJoin(t->url, tvIngestPath);
    }
    if (t->docs == NULL || t->ingest == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        goto failed;
    }
    static const dsHttpClientConfig hc = {TV_CONNECT_MS, TV_REQUEST_MS, 0, "decision-replay", NULL};
    if ((t->http = dsHttpClientNew(&hc, errbuf, errlen)) == NULL) goto failed;
    if (!dsHttpClientSetBearer(t->http, token)) {
        snprintf(errbuf, errlen, "cannot set the bearer token on the HTTP client");
        goto failed;
    }
    if (!tvCheckHealth(t, errbuf, errlen)) goto failed;
    return &t->base;

failed:
    tvDestroy(&t->base);
    return NULL;
}
