/* test_metrics.c - the registry and its Prometheus text rendering, compared
 * as whole strings so ordering and formatting regressions show up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ds/metrics.h"

/* Renders m and compares with want, checking the reported length too. */
static void assertRender(const dsMetrics *m, const char *want) {
    size_t len = 12345;
    char *text = dsMetricsRender(m, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    /* Free before comparing: a failing assert longjmps past any later free. */
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", text);
    free(text);
    assert_string_equal(copy, want);
}

static void test_empty_registry(void **state) {
    dsMetrics *m = dsMetricsNew();
    assert_non_null(m);
    assertRender(m, "");
    dsMetricsFree(m);
}

static void test_counter_with_labels(void **state) {
    dsMetrics *m = dsMetricsNew();
    const char *labels[] = {"route", "status"};
    dsMetricFamily *f = dsMetricsFamily(m, "http_requests_total", "HTTP requests answered.",
                                        DS_METRIC_COUNTER, labels, 2, NULL, 0);
    assert_non_null(f);
    const char *ok[] = {"/decisions", "200"};
    const char *nf[] = {"/decisions", "404"};
    dsMetricInc(dsMetricGet(f, ok), 1);
    dsMetricInc(dsMetricGet(f, nf), 1);
    dsMetric *c = dsMetricGet(f, ok);
    assert_ptr_equal(c, dsMetricGet(f, ok)); /* same labels, same child */
    dsMetricInc(c, 41);
    dsMetricInc(c, -5); /* counters never go down */
    assertRender(m, "# HELP http_requests_total HTTP requests answered.\n"
                    "# TYPE http_requests_total counter\n"
                    "http_requests_total{route=\"/decisions\",status=\"200\"} 42\n"
                    "http_requests_total{route=\"/decisions\",status=\"404\"} 1\n");
    dsMetricsFree(m);
}

static void test_registration_order_and_fractions(void **state) {
    dsMetrics *m = dsMetricsNew();
    dsMetric *z = dsMetricsCounter(m, "zeta_total", "Registered first.");
    dsMetric *a = dsMetricsCounter(m, "alpha_total", "Registered second.");
    dsMetricInc(z, 0.1);
    dsMetricInc(a, 1e20);
    assertRender(m, "# HELP zeta_total Registered first.\n"
                    "# TYPE zeta_total counter\n"
                    "zeta_total 0.1\n"
                    "# HELP alpha_total Registered second.\n"
                    "# TYPE alpha_total counter\n"
                    "alpha_total 1e+20\n");
    dsMetricsFree(m);
}

static void test_gauge_set_inc(void **state) {
    dsMetrics *m = dsMetricsNew();
    dsMetric *g = dsMetricsGauge(m, "queue_depth", "Items waiting.");
    assert_non_null(g);
    dsMetricSet(g, 10);
    dsMetricInc(g, -3);
    dsMetricInc(g, 0.5);
    assertRender(m, "# HELP queue_depth Items waiting.\n"
                    "# TYPE queue_depth gauge\n"
                    "queue_depth 7.5\n");
    dsMetricSet(g, -2);
    assertRender(m, "# HELP queue_depth Items waiting.\n"
                    "# TYPE queue_depth gauge\n"
                    "queue_depth -2\n");
    dsMetricSet(g, 4503599627370496.0); /* 2^52: still an integer, no exponent */
    assertRender(m, "# HELP queue_depth Items waiting.\n"
                    "# TYPE queue_depth gauge\n"
                    "queue_depth 4503599627370496\n");
    dsMetricSet(g, -0.0);
    assertRender(m, "# HELP queue_depth Items waiting.\n"
                    "# TYPE queue_depth gauge\n"
                    "queue_depth 0\n");
    dsMetricObserve(g, 100); /* wrong kind: ignored */
    dsMetricsFree(m);
}

static void test_histogram(void **state) {
    dsMetrics *m = dsMetricsNew();
    const double buckets[] = {0.25, 0.5, 1};
    const char *labels[] = {"route"};
    dsMetricFamily *f = dsMetricsFamily(m, "latency_seconds", "Request latency.",
                                        DS_METRIC_HISTOGRAM, labels, 1, buckets, 3);
    assert_non_null(f);
    const char *r[] = {"/x"};
    dsMetric *h = dsMetricGet(f, r);
    const double obs[] = {0.125, 0.25, 0.375, 0.75, 2, 3}; /* 0.25: bounds are inclusive */
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++) dsMetricObserve(h, obs[i]);
    dsMetricInc(h, 5);    /* wrong kind: ignored */
    dsMetricSet(h, 5);    /* wrong kind: ignored */
    dsMetricObserve(h, NAN); /* dropped */
    assertRender(m, "# HELP latency_seconds Request latency.\n"
                    "# TYPE latency_seconds histogram\n"
                    "latency_seconds_bucket{route=\"/x\",le=\"0.25\"} 2\n"
                    "latency_seconds_bucket{route=\"/x\",le=\"0.5\"} 3\n"
                    "latency_seconds_bucket{route=\"/x\",le=\"1\"} 4\n"
                    "latency_seconds_bucket{route=\"/x\",le=\"+Inf\"} 6\n"
                    "latency_seconds_sum{route=\"/x\"} 6.5\n"
                    "latency_seconds_count{route=\"/x\"} 6\n");
    dsMetricsFree(m);
}

static void test_histogram_without_labels(void **state) {
    dsMetrics *m = dsMetricsNew();
    const double buckets[] = {1, 10, INFINITY}; /* an explicit +Inf is not repeated */
    dsMetric *h = dsMetricsHistogram(m, "batch_size", "Rows per batch.", buckets, 3);
    assert_non_null(h);
    dsMetricObserve(h, 4);
    assertRender(m, "# HELP batch_size Rows per batch.\n"
                    "# TYPE batch_size histogram\n"
                    "batch_size_bucket{le=\"1\"} 0\n"
                    "batch_size_bucket{le=\"10\"} 1\n"
                    "batch_size_bucket{le=\"+Inf\"} 1\n"
                    "batch_size_sum 4\n"
                    "batch_size_count 1\n");
    dsMetricsFree(m);
}

static void test_label_and_help_escaping(void **state) {
    dsMetrics *m = dsMetricsNew();
    const char *labels[] = {"path"};
    dsMetricFamily *f = dsMetricsFamily(m, "odd_total", "Help with \\ and\nnewline and \"quotes\".",
                                        DS_METRIC_COUNTER, labels, 1, NULL, 0);
    const char *v[] = {"a\\b\"c\nd"};
    dsMetricInc(dsMetricGet(f, v), 3);
    assertRender(m, "# HELP odd_total Help with \\\\ and\\nnewline and \"quotes\".\n"
                    "# TYPE odd_total counter\n"
                    "odd_total{path=\"a\\\\b\\\"c\\nd\"} 3\n");
    dsMetricsFree(m);
}

static void test_family_without_children(void **state) {
    dsMetrics *m = dsMetricsNew();
    const char *labels[] = {"kind"};
    assert_non_null(dsMetricsFamily(m, "errors_total", "Errors.", DS_METRIC_COUNTER, labels, 1,
                                    NULL, 0));
    assertRender(m, "# HELP errors_total Errors.\n"
                    "# TYPE errors_total counter\n");
    dsMetricsFree(m);
}

static void test_null_safe(void **state) {
    dsMetricInc(NULL, 1);
    dsMetricSet(NULL, 1);
    dsMetricObserve(NULL, 1);
    assert_null(dsMetricGet(NULL, NULL));
    assert_null(dsMetricsCounter(NULL, "x", "y"));
    dsMetricsFree(NULL);
    size_t len = 99;
    char *text = dsMetricsRender(NULL, &len);
    assert_non_null(text);
    assert_int_equal(len, 0);
    free(text);

    /* A NULL label value reads as "". */
    dsMetrics *m = dsMetricsNew();
    const char *labels[] = {"a"};
    dsMetricFamily *f = dsMetricsFamily(m, "n_total", "N.", DS_METRIC_COUNTER, labels, 1, NULL, 0);
    const char *vals[] = {NULL};
    dsMetricInc(dsMetricGet(f, vals), 1);
    assertRender(m, "# HELP n_total N.\n# TYPE n_total counter\nn_total{a=\"\"} 1\n");
    dsMetricsFree(m);
}

static void test_rejects(void **state) {
    dsMetrics *m = dsMetricsNew();
    assert_non_null(dsMetricsCounter(m, "dup_total", "First."));
    assert_null(dsMetricsCounter(m, "dup_total", "Second."));
    assert_null(dsMetricsGauge(m, "dup_total", "As a gauge."));
    assert_null(dsMetricsCounter(m, "bad-name", "Dash."));
    assert_null(dsMetricsCounter(m, "1st", "Digit first."));
    assert_null(dsMetricsCounter(m, "", "Empty."));

    const char *five[] = {"a", "b", "c", "d", "e"};
    assert_null(dsMetricsFamily(m, "five_total", "", DS_METRIC_COUNTER, five, 5, NULL, 0));
    const char *le[] = {"le"};
    assert_null(dsMetricsFamily(m, "h1", "", DS_METRIC_HISTOGRAM, le, 1, NULL, 0));
    const char *reserved[] = {"__x"};
    assert_null(dsMetricsFamily(m, "r_total", "", DS_METRIC_COUNTER, reserved, 1, NULL, 0));
    const char *twice[] = {"a", "a"};
    assert_null(dsMetricsFamily(m, "t_total", "", DS_METRIC_COUNTER, twice, 2, NULL, 0));
    const double desc[] = {1, 0.5};
    assert_null(dsMetricsHistogram(m, "h2", "", desc, 2));
    const double nan[] = {NAN};
    assert_null(dsMetricsHistogram(m, "h3", "", nan, 1));
    const double inf_first[] = {INFINITY, 1};
    assert_null(dsMetricsHistogram(m, "h4", "", inf_first, 2));

    /* Only the first registration rendered; rejected ones left nothing. */
    assertRender(m, "# HELP dup_total First.\n# TYPE dup_total counter\ndup_total 0\n");
    dsMetricsFree(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_registry),
        cmocka_unit_test(test_counter_with_labels),
        cmocka_unit_test(test_registration_order_and_fractions),
        cmocka_unit_test(test_gauge_set_inc),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_histogram_without_labels),
        cmocka_unit_test(test_label_and_help_escaping),
        cmocka_unit_test(test_family_without_children),
        cmocka_unit_test(test_null_safe),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
