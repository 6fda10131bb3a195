/* target_vs.c - the variable-store target of decision-replay (target.h):
 * batches of decision documents POSTed to {url}/v1/decisions:ingest
 * (CONTRACT §6) on one libcurl handle, so the connection is kept alive.
 *
 * The store applies a batch in one transaction and counts a decision at
 * most once, so a batch whose answer was lost (timeout, reset) is simply
 * sent again: its decisions then come back as duplicates. A batch the store
 * refuses as invalid (400) fails as a whole, but the target goes on: like a
 * Kafka delivery failure it is only counted, and the replay, which never
 * checkpoints past a failed decision, decides what follows.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ds/log.h"
#include "target.h"

#define TV_RETRY_MS 60000L     /* how long a batch is retried while the store cannot take it */
#define TV_BACKOFF_MIN_MS 100L
#define TV_BACKOFF_MAX_MS 2000L
#define TV_CONNECT_MS 5000L
#define TV_REQUEST_MS 30000L   /* one request, connecting included */
#define TV_BODY_MAX 65536      /* kept of a response: enough for the counts, an error or an excerpt */
#define TV_EXCERPT 300         /* of a response body quoted in a message */
#define TV_REASON_MAX 1024     /* a reason quoted from the store or libcurl */

static const char tvIngestPath[] = "/v1/decisions:ingest";

typedef struct tvTarget {
    rpTarget base;
    dsCodec *codec;
    CURL *curl;
    struct curl_slist *headers; /* of the ingest POST */
    char *url;                  /* the base, without a trailing '/' */
    char *ingest;               /* url + tvIngestPath */
    json_t *req;                /* {"decisions":[...]}: the batch being built */
    json_t *docs;               /* its array, borrowed from req */
    size_t batch;
    long status;                /* of the last response; 0 if none came */
    long retry_after_ms;        /* its Retry-After (delta seconds); 0 if none */
    char curl_err[CURL_ERROR_SIZE];
    size_t body_len;
    char body[TV_BODY_MAX + 1]; /* the last response's body, cut at TV_BODY_MAX */
} tvTarget;

/* Monotonic: a step of the wall clock must not stretch or cut a retry. */
static int64_t tvNowMs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int tvExcerptLen(const tvTarget *t) {
    return t->body_len < TV_EXCERPT ? (int)t->body_len : TV_EXCERPT;
}

/* What the last response says: the message of the store's JSON error body,
 * else an excerpt of the body. */
static void tvReason(const tvTarget *t, char *out, size_t len) {
    json_t *j = json_loadb(t->body, t->body_len, 0, NULL);
    const char *message = json_string_value(json_object_get(j, "message"));
    if (message) snprintf(out, len, "%s", message);
    else snprintf(out, len, "%.*s", tvExcerptLen(t), t->body);
    json_decref(j);
}

static size_t tvOnBody(char *p, size_t size, size_t n, void *arg) {
    tvTarget *t = arg;
    size_t len = size * n, room = TV_BODY_MAX - t->body_len, keep = len < room ? len : room;
    memcpy(t->body + t->body_len, p, keep);
    t->body_len += keep;
    t->body[t->body_len] = '\0';
    return len;
}

/* Only the delta-seconds form of Retry-After; a date falls back to the
 * backoff. */
static size_t tvOnHeader(char *p, size_t size, size_t n, void *arg) {
    tvTarget *t = arg;
    static const char name[] = "retry-after:";
    size_t len = size * n, nlen = sizeof(name) - 1;
    if (len > nlen && len - nlen < 32 && strncasecmp(p, name, nlen) == 0) {
        char v[32];
        snprintf(v, sizeof(v), "%.*s", (int)(len - nlen), p + nlen);
        long s = strtol(v, NULL, 10);
        t->retry_after_ms = s > 0 && s < 86400 ? s * 1000 : 0;
    }
    return len;
}

/* One request on the kept-alive handle: a GET when body is NULL, else a
 * POST of the JSON text. */
static CURLcode tvPerform(tvTarget *t, const char *url, const char *body) {
    t->status = t->retry_after_ms = 0;
    t->body_len = 0;
    t->body[0] = t->curl_err[0] = '\0';
    curl_easy_setopt(t->curl, CURLOPT_URL, url);
    if (body == NULL) {
        curl_easy_setopt(t->curl, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, NULL);
    } else {
        curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, t->headers);
        curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, body);
    }
    CURLcode rc = curl_easy_perform(t->curl);
    if (rc == CURLE_OK) curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->status);
    return rc;
}

/* Why a request did not get through: libcurl's error, or what the store
 * answered. */
static void tvWhy(const tvTarget *t, CURLcode rc, char *out, size_t len) {
    char reason[TV_REASON_MAX];
    if (rc != CURLE_OK) {
        snprintf(out, len, "%s", t->curl_err[0] ? t->curl_err : curl_easy_strerror(rc));
        return;
    }
    tvReason(t, reason, sizeof(reason));
    snprintf(out, len, "%ld: %s", t->status, reason);
}

/* Failures that a store restarting, shutting down or overloaded causes;
 * anything else (TLS, a malformed answer) will not mend by waiting. */
static bool tvTransient(CURLcode rc) {
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_OPERATION_TIMEDOUT ||
           rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING || rc == CURLE_PARTIAL_FILE;
}

/* Posts the batch until the store answers anything but 503, retrying a 503
 * or a transient failure with backoff (at least the Retry-After asked for)
 * for up to TV_RETRY_MS. false: given up, or a failure not worth retrying. */
static bool tvPost(tvTarget *t, const char *text, char *errbuf, size_t errlen) {
    int64_t deadline = tvNowMs() + TV_RETRY_MS;
    long backoff = TV_BACKOFF_MIN_MS;
    char last[TV_REASON_MAX + 16];
    for (int attempt = 1;; attempt++) {
        CURLcode rc = tvPerform(t, t->ingest, text);
        if (rc == CURLE_OK && t->status != 503) return true;
        tvWhy(t, rc, last, sizeof(last));
        if (rc != CURLE_OK && !tvTransient(rc))
            return snprintf(errbuf, errlen, "variable store %s: %s", t->url, last), false;
        int64_t left = deadline - tvNowMs();
        if (left <= 0) {
            snprintf(errbuf, errlen, "variable store %s: still failing after retrying for %ld s: %s", t->url,
                     TV_RETRY_MS / 1000, last);
            return false;
        }
        long wait = t->retry_after_ms > backoff ? t->retry_after_ms : backoff;
        if (wait > left) wait = (long)left;
        dsLog(attempt == 1 ? DS_LOG_WARN : DS_LOG_DEBUG, "variable store %s: %s; retrying for up to %ld s", t->url,
              last, TV_RETRY_MS / 1000);
        nanosleep(&(struct timespec){wait / 1000, (wait % 1000) * 1000000L}, NULL);
        backoff = backoff * 2 < TV_BACKOFF_MAX_MS ? backoff * 2 : TV_BACKOFF_MAX_MS;
    }
}

/* A 200: the counts must account for the whole batch. */
static bool tvCount(tvTarget *t, size_t n, char *errbuf, size_t errlen) {
    json_t *j = json_loadb(t->body, t->body_len, 0, NULL);
    json_int_t received = -1, counted = -1, duplicates = -1, expired = -1;
    bool ok = j && json_unpack(j, "{s:I, s:I, s:I, s:I}", "received", &received, "counted", &counted,
                               "duplicates", &duplicates, "expired", &expired) == 0 &&
              received == (json_int_t)n && counted >= 0 && duplicates >= 0 && expired >= 0 &&
              counted + duplicates + expired == received;
    json_decref(j);
    if (!ok) {
        snprintf(errbuf, errlen, "variable store %s: the answer to a batch of %zu decisions does not count them: %.*s",
                 t->url, n, tvExcerptLen(t), t->body);
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
    json_t *j = json_loadb(t->body, t->body_len, 0, NULL);
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
    switch (t->status) {
    case 200:
        return tvCount(t, n, errbuf, errlen);
    case 400:
        tvRefused(t, n);
        return true;
    case 413:
        tvReason(t, reason, sizeof(reason));
        snprintf(errbuf, errlen, "variable store %s: a batch of %zu decisions is over the store's limit on body size"
                 " or ingest-max-items (413: %s); lower --batch", t->url, n, reason);
        return false;
    default:
        tvReason(t, reason, sizeof(reason));
        snprintf(errbuf, errlen, "variable store %s: POST %s answered %ld: %s", t->url, tvIngestPath, t->status,
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
    curl_easy_cleanup(t->curl);
    curl_slist_free_all(t->headers);
    json_decref(t->req);
    free(t->ingest);
    free(t->url);
    free(t);
}

static const rpTargetOps tvOps = {"variable-store", tvWrite, tvFlush, tvDestroy};

/* http(s)://HOST[:PORT], with an optional path prefix (a proxy in front of
 * the store); a query or fragment is refused since the endpoint paths are
 * appended to the URL, and so is whatever curl cannot parse. */
static bool tvCheckUrl(const char *url, char *errbuf, size_t errlen) {
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return snprintf(errbuf, errlen, "--url %s: must start with http:// or https://", url), false;
    CURLU *u = curl_url();
    char *query = NULL, *fragment = NULL;
    CURLUcode rc = u ? curl_url_set(u, CURLUPART_URL, url, 0) : CURLUE_OUT_OF_MEMORY;
    bool ok = rc == CURLUE_OK && curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_NO_QUERY &&
              curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_NO_FRAGMENT;
    if (rc != CURLUE_OK) snprintf(errbuf, errlen, "--url %s: %s", url, curl_url_strerror(rc));
    else if (!ok) snprintf(errbuf, errlen, "--url %s: no query or fragment (http://HOST:PORT)", url);
    curl_free(query);
    curl_free(fragment);
    curl_url_cleanup(u);
    return ok;
}

/* Once per process, before the first handle; decision-replay builds its
 * one target on the main thread. No curl_global_cleanup(): the process
 * ends soon after the target. */
static bool tvGlobalInit(char *errbuf, size_t errlen) {
    static bool done;
    if (done) return true;
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) return snprintf(errbuf, errlen, "cannot initialise libcurl: %s", curl_easy_strerror(rc)), false;
    done = true;
    return true;
}

/* The handle's settings that hold for every request. CURLOPT_NOSIGNAL is
 * left off: libcurl then ignores SIGPIPE while it works, which a TLS
 * connection the store resets would raise and the replay does not handle. */
static bool tvOpen(tvTarget *t) {
    if ((t->curl = curl_easy_init()) == NULL) return false;
    t->headers = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(t->curl, CURLOPT_CONNECTTIMEOUT_MS, TV_CONNECT_MS);
    curl_easy_setopt(t->curl, CURLOPT_TIMEOUT_MS, TV_REQUEST_MS);
    curl_easy_setopt(t->curl, CURLOPT_ERRORBUFFER, t->curl_err);
    curl_easy_setopt(t->curl, CURLOPT_USERAGENT, "decision-replay");
    curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, tvOnBody);
    curl_easy_setopt(t->curl, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->curl, CURLOPT_HEADERFUNCTION, tvOnHeader);
    curl_easy_setopt(t->curl, CURLOPT_HEADERDATA, t);
    return t->headers != NULL;
}

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
    char *health = tvJoin(t->url, "/healthz"), why[TV_REASON_MAX + 16];
    if (health == NULL) return snprintf(errbuf, errlen, "out of memory"), false;
    CURLcode rc = tvPerform(t, health, NULL);
    bool ok = rc == CURLE_OK && t->status == 200;
    if (!ok) tvWhy(t, rc, why, sizeof(why));
    if (rc != CURLE_OK)
        snprintf(errbuf, errlen, "variable store %s is not reachable: %s", t->url, why);
    else if (!ok)
        snprintf(errbuf, errlen, "variable store %s: GET %s answered %s (is this the variable store?)", t->url, health,
                 why);
    free(health);
    return ok;
}

rpTarget *rpVsTargetNew(dsCodec *codec, const char *url, size_t batch, char *errbuf, size_t errlen) {
    if (!tvCheckUrl(url, errbuf, errlen) || !tvGlobalInit(errbuf, errlen)) return NULL;
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
    if (t->docs == NULL || t->ingest == NULL || !tvOpen(t)) {
        snprintf(errbuf, errlen, "out of memory");
        goto failed;
    }
    if (!tvCheckHealth(t, errbuf, errlen)) goto failed;
    return &t->base;

failed:
    tvDestroy(&t->base);
    return NULL;
}
