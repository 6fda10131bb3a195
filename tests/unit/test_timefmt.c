/* test_timefmt.c - RFC 3339 parsing and formatting (lib/src/timefmt.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ds/timefmt.h"

static int64_t parseOk(const char *s) {
    int64_t ms = 0;
    char err[128] = "";
    if (!dsTimeParse(s, strlen(s), &ms, err, sizeof err)) fail_msg("%s rejected: %s", s, err);
    return ms;
}

static void parseBad(const char *s, const char *why) {
    int64_t ms = 0;
    char err[128] = "";
    if (dsTimeParse(s, strlen(s), &ms, err, sizeof err)) fail_msg("%s accepted", s);
    if (!strstr(err, why)) fail_msg("%s: reason \"%s\" does not mention \"%s\"", s, err, why);
}

static void formatIs(int64_t ms, const char *want) {
    char out[DS_TIME_BUFLEN];
    assert_true(dsTimeFormat(ms, out));
    assert_string_equal(out, want);
}

static void test_epoch_and_known_instants(void **state) {
    assert_int_equal(parseOk("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parseOk("1970-01-01T00:00:00.001Z"), 1);
    assert_int_equal(parseOk("2026-11-24T10:00:00.250Z"), 1795514400250LL);
    assert_int_equal(parseOk("2000-02-29T23:59:59.999Z"), 951868799999LL);
    assert_int_equal(parseOk("1969-12-31T23:59:59.999Z"), -1);
    formatIs(0, "1970-01-01T00:00:00.000Z");
    formatIs(-1, "1969-12-31T23:59:59.999Z");
    formatIs(1795514400250LL, "2026-11-24T10:00:00.250Z");
    formatIs(951868799999LL, "2000-02-29T23:59:59.999Z");
}

static void test_offsets_normalized_to_utc(void **state) {
    int64_t utc = parseOk("2026-11-24T10:00:00.250Z");
    assert_int_equal(parseOk("2026-11-24T11:00:00.250+01:00"), utc);
    assert_int_equal(parseOk("2026-11-24T05:30:00.250-04:30"), utc);
    assert_int_equal(parseOk("2026-11-25T09:59:00.250+23:59"), utc);
    assert_int_equal(parseOk("2026-11-23T10:01:00.250-23:59"), utc);
    assert_int_equal(parseOk("2026-11-24T10:00:00.250-00:00"), utc);
    assert_int_equal(parseOk("2026-11-24t10:00:00.250z"), utc);
    /* across a year boundary */
    assert_int_equal(parseOk("2027-01-01T00:30:00+01:00"), parseOk("2026-12-31T23:30:00Z"));
}

static void test_fraction(void **state) {
    assert_int_equal(parseOk("1970-01-01T00:00:01.5Z"), 1500);
    assert_int_equal(parseOk("1970-01-01T00:00:01.05Z"), 1050);
    assert_int_equal(parseOk("1970-01-01T00:00:01.123456789Z"), 1123); /* truncated */
    assert_int_equal(parseOk("1970-01-01T00:00:01.999999Z"), 1999);
    parseBad("1970-01-01T00:00:01.Z", "digits after '.'");
}

static void test_calendar_validation(void **state) {
    parseBad("2026-13-01T00:00:00Z", "month 13 out of range");
    parseBad("2026-00-01T00:00:00Z", "month 00 out of range");
    parseBad("2026-02-30T00:00:00Z", "day 30 out of range for 2026-02");
    parseBad("2026-02-29T00:00:00Z", "day 29 out of range");
    parseOk("2024-02-29T00:00:00Z");
    parseOk("2000-02-29T00:00:00Z");
    parseBad("1900-02-29T00:00:00Z", "day 29 out of range");
    parseBad("2026-04-31T00:00:00Z", "day 31 out of range");
    parseBad("2026-01-00T00:00:00Z", "day 00 out of range");
    parseBad("0000-01-01T00:00:00Z", "year 0000");
    parseBad("2026-01-01T24:00:00Z", "hour 24");
    parseBad("2026-01-01T23:60:00Z", "minute 60");
    parseBad("2026-12-31T23:59:60Z", "leap second");
    parseBad("2026-12-31T23:59:61Z", "second 61");
}

static void test_syntax(void **state) {
    parseBad("2026-11-24T10:00:00", "missing UTC offset");
    parseBad("2026-11-24T10:00:00.123", "missing UTC offset");
    parseBad("2026-11-24 10:00:00Z", "'T'");
    parseBad("2026-11-24", "'T'");
    parseBad("", "empty");
    parseBad("26-11-24T10:00:00Z", "4-digit year");
    parseBad("2026-11-24T10:00:00+0100", "+hh:mm");
    parseBad("2026-11-24T10:00:00+01", "+hh:mm");
    parseBad("2026-11-24T10:00:00+24:00", "offset hour 24");
    parseBad("2026-11-24T10:00:00+01:60", "offset minute 60");
    parseBad("2026-11-24T10:00:00Zjunk", "after the UTC offset");
    parseBad("2026-11-24T10:00Z", "':'");
    parseBad("+2026-11-24T10:00:00Z", "4-digit year");
    parseBad("1970-01-01T00:00:00 Z", "missing UTC offset");
}

static void test_not_nul_terminated(void **state) {
    const char buf[] = "1970-01-01T00:00:01Zgarbage";
    int64_t ms;
    char err[64];
    assert_true(dsTimeParse(buf, 20, &ms, err, sizeof err));
    assert_int_equal(ms, 1000);
    assert_false(dsTimeParse(buf, 19, &ms, err, sizeof err)); /* cut before the Z */
}

static void test_range_limits(void **state) {
    int64_t lo = parseOk("0001-01-01T00:00:00Z");
    int64_t hi = parseOk("9999-12-31T23:59:59.999Z");
    formatIs(lo, "0001-01-01T00:00:00.000Z");
    formatIs(hi, "9999-12-31T23:59:59.999Z");
    char out[DS_TIME_BUFLEN];
    assert_false(dsTimeFormat(lo - 1, out));
    assert_false(dsTimeFormat(hi + 1, out));
    assert_false(dsTimeFormat(INT64_MIN, out));
    assert_false(dsTimeFormat(INT64_MAX, out));
    /* in range locally, out of range in UTC */
    parseBad("0001-01-01T00:30:00+01:00", "out of range");
    parseBad("9999-12-31T23:30:00-01:00", "out of range");
}

static void test_round_trip_every_day(void **state) {
    /* Every day from 1600 to 2400 formats and parses back to itself. */
    int64_t start = parseOk("1600-01-01T12:34:56.789Z");
    for (int64_t d = 0; d < 800LL * 366; d++) {
        int64_t ms = start + d * 86400000LL;
        char out[DS_TIME_BUFLEN];
        assert_true(dsTimeFormat(ms, out));
        int64_t back = 0;
        assert_true(dsTimeParse(out, strlen(out), &back, NULL, 0));
        assert_int_equal(back, ms);
    }
}

static void test_now(void **state) {
    int64_t now = dsTimeNowMs();
    assert_true(now > parseOk("2020-01-01T00:00:00Z"));
    char out[DS_TIME_BUFLEN];
    assert_true(dsTimeFormat(now, out));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_epoch_and_known_instants),
        cmocka_unit_test(test_offsets_normalized_to_utc),
        cmocka_unit_test(test_fraction),
        cmocka_unit_test(test_calendar_validation),
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_not_nul_terminated),
        cmocka_unit_test(test_range_limits),
        cmocka_unit_test(test_round_trip_every_day),
        cmocka_unit_test(test_now),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
