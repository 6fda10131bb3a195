/* metrics.c - owns the metrics registry (families and their children) and
 * its rendering in the Prometheus text exposition format 0.0.4.
 *
 * Families and children are singly linked lists appended at the tail, which
 * gives the documented render order (registration, then creation order) for
 * free. Child lookup is a linear scan: label cardinality per family is small
 * and hot paths are expected to cache the dsMetric pointer.
 * Single-threaded by contract (see metrics.h): no locks.
 */
#include "ds/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dsMetric {
    dsMetricFamily *family;                /* back pointer: updates check the type */
    char *values[DS_METRICS_MAX_LABELS];   /* owned copies, family->nlabels of them */
    double value;                          /* counter, gauge */
    double sum;                            /* histogram */
    uint64_t count;                        /* histogram observations, i.e. the +Inf bucket */
    uint64_t *bucket_counts;               /* histogram, per bucket, NOT cumulative; owned */
    dsMetric *next;
};

struct dsMetricFamily {
    char *name, *help;                     /* owned */
    dsMetricType type;
    char *labels[DS_METRICS_MAX_LABELS];   /* owned */
    size_t nlabels;
    double *buckets;                       /* owned, strictly ascending, finite */
    size_t nbuckets;
    dsMetric *first, *last;
    dsMetricFamily *next;
};

struct dsMetrics {
    dsMetricFamily *first, *last;
};

/* Exact integers up to 2^53 print as integers; beyond, doubles skip values. */
#define MX_EXACT_INT_MAX 9007199254740992.0

/* ---------------------------------------------------------- life cycle */

dsMetrics *dsMetricsNew(void) {
    return calloc(1, sizeof(dsMetrics));
}

static void mxChildFree(dsMetric *c, size_t nlabels) {
    for (size_t i = 0; i < nlabels; i++) free(c->values[i]);
    free(c->bucket_counts);
    free(c);
}

static void mxFamilyFree(dsMetricFamily *f) {
    dsMetric *c = f->first;
    while (c) {
        dsMetric *next = c->next;
        mxChildFree(c, f->nlabels);
        c = next;
    }
    for (size_t i = 0; i < f->nlabels; i++) free(f->labels[i]);
    free(f->name);
    free(f->help);
    free(f->buckets);
    free(f);
}

void dsMetricsFree(dsMetrics *m) {
    if (!m) return;
    dsMetricFamily *f = m->first;
    while (f) {
        dsMetricFamily *next = f->next;
        mxFamilyFree(f);
        f = next;
    }
    free(m);
}

/* ---------------------------------------------------------- validation */

/* Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names the same without ':'. */
static bool mxValidName(const char *s, bool allow_colon) {
    if (!s || !*s) return false;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

static bool mxValidLabels(dsMetricType type, const char *const *names, size_t n) {
    if (n > DS_METRICS_MAX_LABELS || (n > 0 && !names)) return false;
    for (size_t i = 0; i < n; i++) {
        /* "__" is reserved by Prometheus; "le" would collide with the bucket label. */
        if (!mxValidName(names[i], false) || strncmp(names[i], "__", 2) == 0) return false;
        if (type == DS_METRIC_HISTOGRAM && strcmp(names[i], "le") == 0) return false;
        for (size_t j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0) return false;
    }
    return true;
}

/* Returns how many of the buckets to keep (a trailing +Inf is dropped, since
 * it is always rendered), or -1 if they are not finite and strictly ascending. */
static long mxUsableBuckets(const double *b, size_t n) {
    if (n > 0 && !b) return -1;
    if (n > 0 && isinf(b[n - 1]) && b[n - 1] > 0) n--;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(b[i])) return -1;
        if (i > 0 && !(b[i] > b[i - 1])) return -1;
    }
    return (long)n;
}

/* ----------------------------------------------------------- families */

static dsMetricFamily *mxFind(const dsMetrics *m, const char *name) {
    for (dsMetricFamily *f = m->first; f; f = f->next)
        if (strcmp(f->name, name) == 0) return f;
    return NULL;
}

static bool mxFamilyCopyIn(dsMetricFamily *f, const char *name, const char *help,
                           const char *const *label_names, const double *buckets) {
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    if (!f->name || !f->help) return false;
    for (size_t i = 0; i < f->nlabels; i++)
        if (!(f->labels[i] = strdup(label_names[i]))) return false;
    if (f->nbuckets > 0) {
        f->buckets = malloc(f->nbuckets * sizeof *f->buckets);
        if (!f->buckets) return false;
        memcpy(f->buckets, buckets, f->nbuckets * sizeof *f->buckets);
    }
    return true;
}

dsMetricFamily *dsMetricsFamily(dsMetrics *m, const char *name, const char *help, dsMetricType type,
                                const char *const *label_names, size_t nlabels,
                                const double *buckets, size_t nbuckets) {
    if (!m || !mxValidName(name, true) || mxFind(m, name)) return NULL;
    if (type != DS_METRIC_COUNTER && type != DS_METRIC_GAUGE && type != DS_METRIC_HISTOGRAM)
        return NULL;
    if (!mxValidLabels(type, label_names, nlabels)) return NULL;
    long usable = type == DS_METRIC_HISTOGRAM ? mxUsableBuckets(buckets, nbuckets) : 0;
    if (usable < 0) return NULL;

    dsMetricFamily *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->type = type;
    f->nlabels = nlabels;
    f->nbuckets = (size_t)usable;
    if (!mxFamilyCopyIn(f, name, help, label_names, buckets)) {
        mxFamilyFree(f); /* copes with a partial copy: calloc'd fields are NULL */
        return NULL;
    }
    if (m->last) m->last->next = f;
    else m->first = f;
    m->last = f;
    return f;
}

/* ----------------------------------------------------------- children */

static const char *mxValue(const char *const *values, size_t i) {
    return values && values[i] ? values[i] : "";
}

static dsMetric *mxChildNew(dsMetricFamily *f, const char *const *values) {
    dsMetric *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->family = f;
    bool ok = true;
    for (size_t i = 0; i < f->nlabels; i++)
        ok = ok && (c->values[i] = strdup(mxValue(values, i))) != NULL;
    if (ok && f->type == DS_METRIC_HISTOGRAM && f->nbuckets > 0)
        ok = (c->bucket_counts = calloc(f->nbuckets, sizeof *c->bucket_counts)) != NULL;
    if (!ok) {
        mxChildFree(c, f->nlabels);
        return NULL;
    }
    return c;
}

dsMetric *dsMetricGet(dsMetricFamily *f, const char *const *label_values) {
    if (!f) return NULL;
    for (dsMetric *c = f->first; c; c = c->next) {
        size_t i = 0;
        while (i < f->nlabels && strcmp(c->values[i], mxValue(label_values, i)) == 0) i++;
        if (i == f->nlabels) return c;
    }
    dsMetric *c = mxChildNew(f, label_values);
    if (!c) return NULL;
    if (f->last) f->last->next = c;
    else f->first = c;
    f->last = c;
    return c;
}

dsMetric *dsMetricsCounter(dsMetrics *m, const char *name, const char *help) {
    return dsMetricGet(dsMetricsFamily(m, name, help, DS_METRIC_COUNTER, NULL, 0, NULL, 0), NULL);
}

dsMetric *dsMetricsGauge(dsMetrics *m, const char *name, const char *help) {
    return dsMetricGet(dsMetricsFamily(m, name, help, DS_METRIC_GAUGE, NULL, 0, NULL, 0), NULL);
}

dsMetric *dsMetricsHistogram(dsMetrics *m, const char *name, const char *help,
                             const double *buckets, size_t nbuckets) {
    return dsMetricGet(
        dsMetricsFamily(m, name, help, DS_METRIC_HISTOGRAM, NULL, 0, buckets, nbuckets), NULL);
}

/* ------------------------------------------------------------- updates */

void dsMetricInc(dsMetric *c, double by) {
    if (!c) return;
    if (c->family->type == DS_METRIC_GAUGE) c->value += by;
    /* Counters only go up (Prometheus treats a decrease as a reset); this
     * also keeps NaN out. */
    else if (c->family->type == DS_METRIC_COUNTER && by >= 0) c->value += by;
}

void dsMetricSet(dsMetric *g, double value) {
    if (g && g->family->type == DS_METRIC_GAUGE) g->value = value;
}

void dsMetricObserve(dsMetric *h, double v) {
    /* A NaN would poison _sum for the life of the process; drop it. */
    if (!h || h->family->type != DS_METRIC_HISTOGRAM || isnan(v)) return;
    const dsMetricFamily *f = h->family;
    for (size_t i = 0; i < f->nbuckets; i++) {
        if (v <= f->buckets[i]) {
            h->bucket_counts[i]++;
            break;
        }
    }
    h->count++;
    h->sum += v;
}

/* ----------------------------------------------------------- rendering */

typedef struct {
    char *p;
    size_t len, cap;
    bool oom; /* sticky: later appends are no-ops, render returns NULL */
} mxBuf;

static void mxPut(mxBuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (b->len + n + 1 > cap) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void mxPuts(mxBuf *b, const char *s) {
    mxPut(b, s, strlen(s));
}

/* HELP text escapes backslash and newline; label values also the quote. */
static void mxPutEscaped(mxBuf *b, const char *s, bool quote) {
    const char *run = s;
    for (; *s; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : (quote && *s == '"') ? "\\\"" : NULL;
        if (!esc) continue;
        mxPut(b, run, (size_t)(s - run));
        mxPuts(b, esc);
        run = s + 1;
    }
    mxPut(b, run, (size_t)(s - run));
}

/* Integers without exponent or decimals; other values in the shortest form
 * that reads back to the same double, so 0.1 is "0.1", not
 * "0.10000000000000001". Relies on the "C" numeric locale. */
static void mxFormatNumber(char out[32], double v) {
    if (isnan(v)) {
        strcpy(out, "NaN");
    } else if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
    } else if (v >= -MX_EXACT_INT_MAX && v <= MX_EXACT_INT_MAX && v == (double)(long long)v) {
        snprintf(out, 32, "%lld", (long long)v); /* also turns -0 into "0" */
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(out, 32, "%.*g", prec, v);
            if (strtod(out, NULL) == v) break;
        }
    }
}

static void mxPutNumber(mxBuf *b, double v) {
    char num[32];
    mxFormatNumber(num, v);
    mxPuts(b, num);
}

static void mxPutU64(mxBuf *b, uint64_t v) {
    char num[24];
    snprintf(num, sizeof num, "%" PRIu64, v);
    mxPuts(b, num);
}

/* "{a="x",le="0.5"}", or nothing at all when there is no label to print. */
static void mxPutLabels(mxBuf *b, const dsMetricFamily *f, const dsMetric *c, const char *le) {
    if (f->nlabels == 0 && !le) return;
    mxPuts(b, "{");
    for (size_t i = 0; i < f->nlabels; i++) {
        if (i > 0) mxPuts(b, ",");
        mxPuts(b, f->labels[i]);
        mxPuts(b, "=\"");
        mxPutEscaped(b, c->values[i], true);
        mxPuts(b, "\"");
    }
    if (le) {
        mxPuts(b, f->nlabels > 0 ? ",le=\"" : "le=\"");
        mxPuts(b, le);
        mxPuts(b, "\"");
    }
    mxPuts(b, "}");
}

/* One sample line: name + suffix, labels, a space, the value (already text). */
static void mxPutSample(mxBuf *b, const dsMetricFamily *f, const dsMetric *c, const char *suffix,
                        const char *le) {
    mxPuts(b, f->name);
    mxPuts(b, suffix);
    mxPutLabels(b, f, c, le);
    mxPuts(b, " ");
}

static void mxRenderHistogram(mxBuf *b, const dsMetricFamily *f, const dsMetric *c) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < f->nbuckets; i++) {
        char le[32];
        mxFormatNumber(le, f->buckets[i]);
        cumulative += c->bucket_counts[i];
        mxPutSample(b, f, c, "_bucket", le);
        mxPutU64(b, cumulative);
        mxPuts(b, "\n");
    }
    mxPutSample(b, f, c, "_bucket", "+Inf");
    mxPutU64(b, c->count);
    mxPuts(b, "\n");
    mxPutSample(b, f, c, "_sum", NULL);
    mxPutNumber(b, c->sum);
    mxPuts(b, "\n");
    mxPutSample(b, f, c, "_count", NULL);
    mxPutU64(b, c->count);
    mxPuts(b, "\n");
}

static void mxRenderFamily(mxBuf *b, const dsMetricFamily *f) {
    static const char *const types[] = {"counter", "gauge", "histogram"};
    mxPuts(b, "# HELP ");
    mxPuts(b, f->name);
    mxPuts(b, " ");
    mxPutEscaped(b, f->help, false);
    mxPuts(b, "\n# TYPE ");
    mxPuts(b, f->name);
    mxPuts(b, " ");
    mxPuts(b, types[f->type]);
    mxPuts(b, "\n");
    for (const dsMetric *c = f->first; c; c = c->next) {
        if (f->type == DS_METRIC_HISTOGRAM) {
            mxRenderHistogram(b, f, c);
            continue;
        }
        mxPutSample(b, f, c, "", NULL);
        mxPutNumber(b, c->value);
        mxPuts(b, "\n");
    }
}

char *dsMetricsRender(const dsMetrics *m, size_t *len) {
    mxBuf b = {0};
    mxPut(&b, "", 0); /* an empty registry still yields a string */
    for (const dsMetricFamily *f = m ? m->first : NULL; f; f = f->next) mxRenderFamily(&b, f);
    if (b.oom) {
        free(b.p);
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = b.len;
    return b.p;
}
