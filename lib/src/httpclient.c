/* httpclient.c - owns one libcurl easy handle, its fixed settings, and the
 * last response (status, body buffer, Retry-After) of a dsHttpClient.
 *
 * CURLOPT_NOSIGNAL is left off: libcurl then ignores SIGPIPE while it works,
 * which a TLS connection reset by the peer would otherwise raise in a
 * program that does not handle it. Name resolution is threaded in this
 * libcurl (AsynchDNS), so timeouts use no signals either way.
 */
#include "ds/httpclient.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HC_DEFAULT_MAX_BODY ((size_t)1 << 20)
#define HC_RETRY_AFTER_MAX_S 86400L

struct dsHttpClient {
    CURL *curl;
    struct curl_slist *headers; /* of every request: Accept, and no "Expect: 100-continue" */
    char *user_agent, *accept;  /* owned copies; libcurl keeps pointers to the headers only */
    size_t max_body;
    /* the last response */
    long status;
    long retry_after_ms;
    CURLcode rc;
    bool too_long;  /* the body passed max_body */
    char *body;     /* owned, NUL-terminated, cap bytes */
    size_t len, cap;
    char curl_err[CURL_ERROR_SIZE];
};

static bool hcGrow(dsHttpClient *c, size_t need) {
    if (need <= c->cap) return true;
    size_t cap = c->cap ? c->cap : 4096;
    while (cap < need) cap *= 2;
    char *grown = realloc(c->body, cap);
    if (!grown) return false;
    c->body = grown;
    c->cap = cap;
    return true;
}

/* Returning less than given makes libcurl fail the request (a write
 * error), which is what an over-long or unstorable body should do. */
static size_t hcOnBody(char *p, size_t size, size_t n, void *arg) {
    dsHttpClient *c = arg;
    size_t len = size * n;
    if (c->len + len > c->max_body) {
        c->too_long = true;
        return 0;
    }
    if (!hcGrow(c, c->len + len + 1)) return 0;
    memcpy(c->body + c->len, p, len);
    c->len += len;
    c->body[c->len] = '\0';
    return len;
}

static size_t hcOnHeader(char *p, size_t size, size_t n, void *arg) {
    dsHttpClient *c = arg;
    static const char name[] = "retry-after:";
    size_t len = size * n, nlen = sizeof(name) - 1;
    if (len > nlen && len - nlen < 32 && strncasecmp(p, name, nlen) == 0) {
        char v[32];
        snprintf(v, sizeof(v), "%.*s", (int)(len - nlen), p + nlen);
        long s = strtol(v, NULL, 10);
        c->retry_after_ms = s > 0 && s <= HC_RETRY_AFTER_MAX_S ? s * 1000 : 0;
    }
    return len;
}

static bool hcFail(char *errbuf, size_t errlen, const char *why) {
    if (errbuf && errlen) snprintf(errbuf, errlen, "%s", why);
    return false;
}

/* The settings that hold for every request. */
static bool hcSetUp(dsHttpClient *c, const dsHttpClientConfig *cfg) {
    if (!(c->curl = curl_easy_init())) return false;
    if (cfg->accept) {
        size_t len = strlen("Accept: ") + strlen(cfg->accept) + 1;
        if (!(c->accept = malloc(len))) return false;
        snprintf(c->accept, len, "Accept: %s", cfg->accept);
        if (!(c->headers = curl_slist_append(NULL, c->accept))) return false;
    }
    /* Without this libcurl waits up to a second for a "100 Continue" that a
     * simple server never sends before a body over 1 KiB. */
    struct curl_slist *h = curl_slist_append(c->headers, "Expect:");
    if (!h) return false;
    c->headers = h;
    if (cfg->user_agent && !(c->user_agent = strdup(cfg->user_agent))) return false;
    c->max_body = cfg->max_body ? cfg->max_body : HC_DEFAULT_MAX_BODY;
    if (!hcGrow(c, 1)) return false;
    c->body[0] = '\0';
    if (cfg->connect_timeout_ms > 0) curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, cfg->connect_timeout_ms);
    if (cfg->timeout_ms > 0) curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, cfg->timeout_ms);
    if (c->user_agent) curl_easy_setopt(c->curl, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->curl_err);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, hcOnBody);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, hcOnHeader);
    curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, c);
    return true;
}

dsHttpClient *dsHttpClientNew(const dsHttpClientConfig *cfg, char *errbuf, size_t errlen) {
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        if (errbuf && errlen) snprintf(errbuf, errlen, "cannot initialise libcurl: %s", curl_easy_strerror(rc));
        return NULL;
    }
    dsHttpClient *c = calloc(1, sizeof *c);
    if (c && hcSetUp(c, cfg)) return c;
    dsHttpClientFree(c);
    if (!c) curl_global_cleanup(); /* dsHttpClientFree() did it otherwise */
    hcFail(errbuf, errlen, "cannot set up the HTTP client (out of memory)");
    return NULL;
}

void dsHttpClientFree(dsHttpClient *c) {
    if (!c) return;
    if (c->curl) curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->headers);
    free(c->user_agent);
    free(c->accept);
    free(c->body);
    free(c);
    curl_global_cleanup();
}

/* Runs the request set up on the handle; headers are the request's own. */
static bool hcPerform(dsHttpClient *c, const char *method, const char *url, struct curl_slist *headers,
                      char *errbuf, size_t errlen) {
    c->status = c->retry_after_ms = 0;
    c->len = 0;
    c->body[0] = c->curl_err[0] = '\0';
    c->too_long = false;
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
    c->rc = curl_easy_perform(c->curl);
    if (c->rc == CURLE_OK) {
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &c->status);
        return true;
    }
    if (errbuf && errlen) {
        if (c->too_long)
            snprintf(errbuf, errlen, "%s %s: the answer is longer than %zu bytes", method, url, c->max_body);
        else
            snprintf(errbuf, errlen, "%s %s: %s", method, url,
                     c->curl_err[0] ? c->curl_err : curl_easy_strerror(c->rc));
    }
    c->len = 0; /* half a body is no answer */
    c->body[0] = '\0';
    return false;
}

bool dsHttpClientGet(dsHttpClient *c, const char *url, char *errbuf, size_t errlen) {
    curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
    return hcPerform(c, "GET", url, c->headers, errbuf, errlen);
}

bool dsHttpClientPost(dsHttpClient *c, const char *url, const char *content_type, const char *body, size_t len,
                      char *errbuf, size_t errlen) {
    char ct[256];
    snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "application/json");
    /* The fixed headers followed by this one, without copying them: the
     * node lives on the stack for the request only. */
    struct curl_slist own = {ct, c->headers};
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
    bool ok = hcPerform(c, "POST", url, &own, errbuf, errlen);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers); /* no pointer to the stack node survives */
    return ok;
}

bool dsHttpClientSetBearer(dsHttpClient *c, const char *token) {
    /* libcurl keeps its own copy of the token */
    return curl_easy_setopt(c->curl, CURLOPT_HTTPAUTH, CURLAUTH_BEARER) == CURLE_OK &&
           curl_easy_setopt(c->curl, CURLOPT_XOAUTH2_BEARER, token) == CURLE_OK;
}

long dsHttpClientStatus(const dsHttpClient *c) {
    return c->status;
}

const char *dsHttpClientBody(const dsHttpClient *c, size_t *len) {
    if (len) *len = c->len;
    return c->body;
}

long dsHttpClientRetryAfterMs(const dsHttpClient *c) {
    return c->retry_after_ms;
}

bool dsHttpClientTransient(const dsHttpClient *c) {
    switch (c->rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return true;
    default:
        return false;
    }
}

char *dsHttpClientEscape(dsHttpClient *c, const char *s) {
    char *esc = curl_easy_escape(c->curl, s, 0), *copy = esc ? strdup(esc) : NULL;
    curl_free(esc);
    return copy;
}

bool dsHttpClientCheckBaseUrl(const char *url, const char *what, char *errbuf, size_t errlen) {
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) {
        if (errbuf && errlen) snprintf(errbuf, errlen, "%s %s: must start with http:// or https://", what, url);
        return false;
    }
    CURLU *u = curl_url();
    char *query = NULL, *fragment = NULL;
    CURLUcode rc = u ? curl_url_set(u, CURLUPART_URL, url, 0) : CURLUE_OUT_OF_MEMORY;
    bool ok = rc == CURLUE_OK && curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_NO_QUERY &&
              curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_NO_FRAGMENT;
    if (errbuf && errlen && rc != CURLUE_OK) snprintf(errbuf, errlen, "%s %s: %s", what, url, curl_url_strerror(rc));
    else if (errbuf && errlen && !ok) snprintf(errbuf, errlen, "%s %s: no query or fragment (http://HOST:PORT)", what, url);
    curl_free(query);
    curl_free(fragment);
    curl_url_cleanup(u);
    return ok;
}
