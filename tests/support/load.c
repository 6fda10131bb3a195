/* load.c - threads posting decisions at a steady pace (see load.h). */
#include "load.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct loadThread {
    pthread_t thread;
    dtLoad *load;
    bool keepalive;       /* one connection for every post, or a new one each */
    atomic_long attempts; /* posts answered or failed so far */
    dtLoadPost *posts;
    size_t n, cap;
} loadThread;

struct dtLoad {
    const dtApi *api;
    int interval_ms, nthreads;
    loadThread *threads;
    atomic_bool stop;
    /* The template, as text: each thread parses its own copy, since jansson
     * values are not shared between threads. */
    pthread_mutex_t lock;
    char *doc_text;
    int kind;
    unsigned generation;
    atomic_int customers; /* dtLoadSetCustomers() */
    atomic_uint posted;   /* picks the next customer */
    dtLoadPost *all; /* merged by dtLoadStop() */
    size_t nall;
};

static long long loadNowMs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t loadSink(char *p, size_t size, size_t n, void *arg) {
    char *buf = arg;
    size_t have = strlen(buf), len = size * n;
    if (have + 1 < 256) snprintf(buf + have, 256 - have, "%.*s", (int)len, p);
    return len;
}

/* A keep-alive client: libcurl reuses the connection from post to post. */
static CURL *loadKeepAlive(const dtApi *api, struct curl_slist **headers, char *url, size_t urllen, char *sink) {
    snprintf(url, urllen, "%s/v1/decisions", api->url);
    CURL *c = curl_easy_init();
    *headers = curl_slist_append(NULL, "Authorization: Bearer " DT_WRITER_TOKEN);
    *headers = curl_slist_append(*headers, "Content-Type: application/json");
    *headers = curl_slist_append(*headers, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, loadSink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    return c;
}

/* One post; returns the HTTP status (0: no answer). */
static long loadPostOne(loadThread *t, CURL *c, char *sink, const char *body) {
    if (!t->keepalive) {
        dtResponse r;
        dtHttp(t->load->api, "POST", "/v1/decisions", DT_WRITER_TOKEN, "application/json", body, strlen(body), &r);
        snprintf(sink, 256, "%s", r.body ? r.body : "no answer");
        long status = r.status;
        dtResponseFree(&r);
        return status;
    }
    sink[0] = '\0';
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else snprintf(sink, 256, "%s", curl_easy_strerror(rc));
    return status;
}

static void loadRecord(loadThread *t, const char *id, int kind, long status, const char *why) {
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1024;
        t->posts = realloc(t->posts, t->cap * sizeof(*t->posts));
    }
    dtLoadPost *p = &t->posts[t->n++];
    memcpy(p->id, id, 37);
    p->kind = kind;
    p->status = status;
    if (status != 201)
        fprintf(stderr, "load: %s post %s: status %ld: %s\n", t->keepalive ? "keep-alive" : "new-connection", id,
                status, why);
    atomic_fetch_add(&t->attempts, 1);
}

/* Paces posts interval_ms apart; a late post is not made up for with a burst. */
static void loadPace(dtLoad *l, long long *next) {
    *next += l->interval_ms;
    long long now = loadNowMs();
    if (*next < now) *next = now;
    struct timespec ts = {(*next - now) / 1000, (long)((*next - now) % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The thread's copy of the template, refreshed when the test switched it. */
static json_t *loadTemplate(dtLoad *l, json_t *doc, unsigned *generation, int *kind) {
    pthread_mutex_lock(&l->lock);
    if (doc == NULL || *generation != l->generation) {
        json_decref(doc);
        doc = json_loads(l->doc_text, 0, NULL);
        *generation = l->generation;
        *kind = l->kind;
    }
    pthread_mutex_unlock(&l->lock);
    return doc;
}

static void *loadRun(void *arg) {
    loadThread *t = arg;
    dtLoad *l = t->load;
    struct curl_slist *headers = NULL;
    char sink[256] = "", url[128];
    CURL *c = t->keepalive ? loadKeepAlive(l->api, &headers, url, sizeof(url), sink) : NULL;
    json_t *doc = NULL;
    unsigned generation = 0;
    int kind = 0;
    long long next = loadNowMs();
    while (!atomic_load(&l->stop)) {
        char id[37];
        doc = loadTemplate(l, doc, &generation, &kind);
        dtUuid(id);
        json_object_set_new(doc, "decision_id", json_string(id));
        int customers = atomic_load(&l->customers);
        if (customers > 0) {
            char customer[32];
            snprintf(customer, sizeof(customer), "load-%u", atomic_fetch_add(&l->posted, 1) % (unsigned)customers);
            json_object_set_new(doc, "customer_id", json_string(customer));
        }
        char *body = json_dumps(doc, JSON_COMPACT);
        long status = loadPostOne(t, c, sink, body);
        free(body);
        loadRecord(t, id, kind, status, sink);
        loadPace(l, &next);
    }
    json_decref(doc);
    if (c) curl_easy_cleanup(c);
    curl_slist_free_all(headers);
    return NULL;
}

dtLoad *dtLoadStart(const dtApi *api, int threads, int interval_ms, const json_t *doc, int kind) {
    dtLoad *l = calloc(1, sizeof(*l));
    if (l == NULL) return NULL;
    l->api = api;
    l->kind = kind;
    l->interval_ms = interval_ms;
    l->doc_text = json_dumps(doc, JSON_COMPACT);
    l->threads = calloc((size_t)threads, sizeof(*l->threads));
    pthread_mutex_init(&l->lock, NULL);
    if (l->doc_text == NULL || l->threads == NULL) goto failed;
    for (int i = 0; i < threads; i++) {
        loadThread *t = &l->threads[i];
        t->load = l;
        t->keepalive = i % 2 == 1;
        if (pthread_create(&t->thread, NULL, loadRun, t) != 0) goto failed;
        l->nthreads = i + 1;
    }
    return l;

failed:
    dtLoadStop(l);
    dtLoadFree(l);
    return NULL;
}

void dtLoadSetCustomers(dtLoad *l, int n) {
    if (n > 0) atomic_store(&l->customers, n);
}

void dtLoadSetDoc(dtLoad *l, const json_t *doc, int kind) {
    char *text = json_dumps(doc, JSON_COMPACT);
    pthread_mutex_lock(&l->lock);
    free(l->doc_text);
    l->doc_text = text;
    l->kind = kind;
    l->generation++;
    pthread_mutex_unlock(&l->lock);
}

typedef struct loadProgress {
    dtLoad *l;
    long *until;
} loadProgress;

static bool loadReached(void *arg) {
    loadProgress *p = arg;
    for (int i = 0; i < p->l->nthreads; i++)
        if (atomic_load(&p->l->threads[i].attempts) < p->until[i]) return false;
    return true;
}

bool dtLoadAdvance(dtLoad *l, long n) {
    long until[l->nthreads];
    for (int i = 0; i < l->nthreads; i++) until[i] = atomic_load(&l->threads[i].attempts) + n;
    loadProgress p = {l, until};
    return dtWaitFor(loadReached, &p, 60000);
}

void dtLoadStop(dtLoad *l) {
    if (atomic_exchange(&l->stop, true)) return;
    for (int i = 0; i < l->nthreads; i++) pthread_join(l->threads[i].thread, NULL);
    for (int i = 0; i < l->nthreads; i++) l->nall += l->threads[i].n;
    l->all = malloc((l->nall ? l->nall : 1) * sizeof(*l->all));
    size_t at = 0;
    for (int i = 0; i < l->nthreads && l->all; i++) {
        memcpy(l->all + at, l->threads[i].posts, l->threads[i].n * sizeof(*l->all));
        at += l->threads[i].n;
    }
}

const dtLoadPost *dtLoadPosts(dtLoad *l, size_t *n) {
    *n = l->all ? l->nall : 0;
    return l->all;
}

long dtLoadFailed(dtLoad *l, char *why, size_t whylen) {
    long failed = 0;
    size_t n;
    const dtLoadPost *p = dtLoadPosts(l, &n);
    if (whylen) why[0] = '\0';
    for (size_t i = 0; i < n; i++)
        if (p[i].status != 201 && failed++ == 0) snprintf(why, whylen, "%s: status %ld", p[i].id, p[i].status);
    return failed;
}

void dtLoadFree(dtLoad *l) {
    if (l == NULL) return;
    for (int i = 0; i < l->nthreads; i++) free(l->threads[i].posts);
    free(l->threads);
    free(l->all);
    free(l->doc_text);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

char *dtLoadIdList(const dtLoadPost *posts, size_t n) {
    char *list = malloc(n * 40 + 1), *w = list;
    if (list == NULL) return NULL;
    *w = '\0';
    for (size_t i = 0; i < n; i++) w += sprintf(w, "%s'%s'", i ? "," : "", posts[i].id);
    return list;
}
