/* metrics.h - an in-process metrics registry rendered in the Prometheus text
 * exposition format (version 0.0.4).
 *
 * Single-threaded by design: every daemon updates and renders its metrics on
 * its event loop thread, so no locks or atomics are used.
 *
 * A family has a name, help text, a type and up to DS_METRICS_MAX_LABELS label
 * names. Children (one per label-value combination) are created on first use
 * and live as long as the registry; callers may cache the returned child
 * pointer. All strings passed in are copied.
 */
#ifndef DS_METRICS_H
#define DS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define DS_METRICS_MAX_LABELS 4

typedef struct dsMetrics dsMetrics;
typedef struct dsMetricFamily dsMetricFamily;
typedef struct dsMetric dsMetric; /* one child: a counter, gauge or histogram */

typedef enum { DS_METRIC_COUNTER, DS_METRIC_GAUGE, DS_METRIC_HISTOGRAM } dsMetricType;

/* Returns NULL only on allocation failure. Freed with dsMetricsFree(). */
dsMetrics *dsMetricsNew(void);
void dsMetricsFree(dsMetrics *m);

/* Registers a family. label_names: nlabels static-or-copied strings.
 * For histograms, buckets are the nbuckets ascending upper bounds (the +Inf
 * bucket is implicit; a trailing +Inf is accepted and ignored); they are
 * copied. Returns NULL on allocation failure, a duplicate name, an invalid
 * metric or label name (reserved "__" prefix, "le" on a histogram, repeats,
 * more than DS_METRICS_MAX_LABELS) or buckets not finite and strictly
 * ascending. m may be NULL (returns NULL). The family is owned by the
 * registry. */
dsMetricFamily *dsMetricsFamily(dsMetrics *m, const char *name, const char *help, dsMetricType type,
                                const char *const *label_names, size_t nlabels,
                                const double *buckets, size_t nbuckets);

/* Returns the child for these label values (nlabels of them, as registered;
 * a NULL array or element reads as ""), creating it at zero on first use.
 * NULL on allocation failure or when f is NULL. Lookup is a linear scan.
 * Owned by the family. */
dsMetric *dsMetricGet(dsMetricFamily *f, const char *const *label_values);

/* Shorthands for families without labels. */
dsMetric *dsMetricsCounter(dsMetrics *m, const char *name, const char *help);
dsMetric *dsMetricsGauge(dsMetrics *m, const char *name, const char *help);
dsMetric *dsMetricsHistogram(dsMetrics *m, const char *name, const char *help,
                             const double *buckets, size_t nbuckets);

/* NULL-safe: a NULL metric is ignored, so an allocation failure at setup
 * degrades metrics, never the service. */
/* Calls on the wrong kind of metric are ignored, as are negative or NaN
 * counter increments (counters never go down) and NaN observations. */
void dsMetricInc(dsMetric *c, double by);     /* counter or gauge */
void dsMetricSet(dsMetric *g, double value);  /* gauge */
void dsMetricObserve(dsMetric *h, double v);  /* histogram */

/* Renders the whole registry. Returns a malloc'd NUL-terminated string the
 * caller frees, and its length in *len; NULL on allocation failure. */
char *dsMetricsRender(const dsMetrics *m, size_t *len);

#endif
