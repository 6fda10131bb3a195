/* timefmt.c - RFC 3339 timestamps <-> milliseconds since the epoch (UTC).
 *
 * Calendar arithmetic is done by hand (proleptic Gregorian, days-from-civil)
 * rather than with timegm()/strptime(): those depend on the C library, the
 * locale and TZ, and none of them rejects "2026-02-30" on its own.
 */
#include "ds/timefmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#define MS_PER_DAY 86400000LL

/* Days from 1970-01-01 to y-m-d (H. Hinnant's algorithm; valid for any y). */
static int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civilFromDays(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool isLeap(int y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned daysInMonth(int y, unsigned m) {
    static const unsigned dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && isLeap(y) ? 29 : dim[m - 1];
}

/* The formattable range, 0001-01-01T00:00:00.000Z .. 9999-12-31T23:59:59.999Z. */
static int64_t minMs(void) { return daysFromCivil(1, 1, 1) * MS_PER_DAY; }
static int64_t maxMs(void) { return daysFromCivil(9999, 12, 31) * MS_PER_DAY + MS_PER_DAY - 1; }

static bool fail(char *errbuf, size_t errlen, const char *fmt, ...) {
    if (errbuf && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* Reads exactly n decimal digits at s[*pos]. */
static bool digits(const char *s, size_t len, size_t *pos, int n, int *out) {
    int v = 0;
    if (*pos + (size_t)n > len) return false;
    for (int i = 0; i < n; i++) {
        char c = s[*pos + (size_t)i];
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    *pos += (size_t)n;
    *out = v;
    return true;
}

static bool expectChar(const char *s, size_t len, size_t *pos, char c) {
    if (*pos >= len || s[*pos] != c) return false;
    (*pos)++;
    return true;
}

typedef struct {
    int year, month, day, hour, minute, second, millis;
    int offset_minutes; /* local time = UTC + offset */
} tfFields;

static bool parseDate(const char *s, size_t len, size_t *pos, tfFields *f, char *errbuf, size_t errlen) {
    if (!digits(s, len, pos, 4, &f->year)) return fail(errbuf, errlen, "expected a 4-digit year (YYYY-MM-DD)");
    if (!expectChar(s, len, pos, '-')) return fail(errbuf, errlen, "expected '-' after the year");
    if (!digits(s, len, pos, 2, &f->month)) return fail(errbuf, errlen, "expected a 2-digit month");
    if (!expectChar(s, len, pos, '-')) return fail(errbuf, errlen, "expected '-' after the month");
    if (!digits(s, len, pos, 2, &f->day)) return fail(errbuf, errlen, "expected a 2-digit day");
    if (f->year < 1) return fail(errbuf, errlen, "year 0000 out of range");
    if (f->month < 1 || f->month > 12) return fail(errbuf, errlen, "month %02d out of range", f->month);
    unsigned dim = daysInMonth(f->year, (unsigned)f->month);
    if (f->day < 1 || (unsigned)f->day > dim)
        return fail(errbuf, errlen, "day %02d out of range for %04d-%02d", f->day, f->year, f->month);
    return true;
}

static bool parseTime(const char *s, size_t len, size_t *pos, tfFields *f, char *errbuf, size_t errlen) {
    if (!digits(s, len, pos, 2, &f->hour)) return fail(errbuf, errlen, "expected a 2-digit hour");
    if (!expectChar(s, len, pos, ':')) return fail(errbuf, errlen, "expected ':' after the hour");
    if (!digits(s, len, pos, 2, &f->minute)) return fail(errbuf, errlen, "expected 2-digit minutes");
    if (!expectChar(s, len, pos, ':')) return fail(errbuf, errlen, "expected ':' after the minutes");
    if (!digits(s, len, pos, 2, &f->second)) return fail(errbuf, errlen, "expected 2-digit seconds");
    if (f->hour > 23) return fail(errbuf, errlen, "hour %02d out of range", f->hour);
    if (f->minute > 59) return fail(errbuf, errlen, "minute %02d out of range", f->minute);
    if (f->second == 60) return fail(errbuf, errlen, "leap second (:60) not supported");
    if (f->second > 59) return fail(errbuf, errlen, "second %02d out of range", f->second);
    f->millis = 0;
    if (*pos < len && s[*pos] == '.') {
        (*pos)++;
        size_t start = *pos;
        /* Digits past milliseconds are truncated, not rounded, so a time
         * never moves into the next second (or day). */
        while (*pos < len && s[*pos] >= '0' && s[*pos] <= '9') {
            if (*pos - start < 3) f->millis = f->millis * 10 + (s[*pos] - '0');
            (*pos)++;
        }
        size_t n = *pos - start;
        if (n == 0) return fail(errbuf, errlen, "expected digits after '.'");
        for (; n < 3; n++) f->millis *= 10;
    }
    return true;
}

static bool parseOffset(const char *s, size_t len, size_t *pos, tfFields *f, char *errbuf, size_t errlen) {
    if (*pos >= len) return fail(errbuf, errlen, "missing UTC offset (Z or +hh:mm)");
    char c = s[(*pos)++];
    if (c == 'Z' || c == 'z') {
        f->offset_minutes = 0;
        return true;
    }
    if (c != '+' && c != '-') return fail(errbuf, errlen, "missing UTC offset (Z or +hh:mm)");
    int oh, om;
    if (!digits(s, len, pos, 2, &oh) || !expectChar(s, len, pos, ':') || !digits(s, len, pos, 2, &om))
        return fail(errbuf, errlen, "UTC offset must be Z or +hh:mm / -hh:mm");
    if (oh > 23) return fail(errbuf, errlen, "offset hour %02d out of range", oh);
    if (om > 59) return fail(errbuf, errlen, "offset minute %02d out of range", om);
    f->offset_minutes = (c == '-' ? -1 : 1) * (oh * 60 + om);
    return true;
}

bool dsTimeParse(const char *s, size_t len, int64_t *ms_out, char *errbuf, size_t errlen) {
    tfFields f = {0};
    size_t pos = 0;
    if (!s || len == 0) return fail(errbuf, errlen, "empty timestamp");
    if (!parseDate(s, len, &pos, &f, errbuf, errlen)) return false;
    if (pos >= len || (s[pos] != 'T' && s[pos] != 't'))
        return fail(errbuf, errlen, "expected 'T' between date and time");
    pos++;
    if (!parseTime(s, len, &pos, &f, errbuf, errlen)) return false;
    if (!parseOffset(s, len, &pos, &f, errbuf, errlen)) return false;
    if (pos != len) return fail(errbuf, errlen, "unexpected characters after the UTC offset");

    int64_t days = daysFromCivil(f.year, (unsigned)f.month, (unsigned)f.day);
    int64_t ms = days * MS_PER_DAY + ((int64_t)f.hour * 3600 + f.minute * 60 + f.second) * 1000 + f.millis;
    ms -= (int64_t)f.offset_minutes * 60000;
    /* An offset can push the UTC instant out of 0001..9999; reject it here so
     * every parsed value can be formatted back. */
    if (ms < minMs() || ms > maxMs()) return fail(errbuf, errlen, "out of range (years 0001-9999 in UTC)");
    *ms_out = ms;
    return true;
}

static void putDigits(char *out, int v, int n) {
    for (int i = n - 1; i >= 0; i--, v /= 10) out[i] = (char)('0' + v % 10);
}

bool dsTimeFormat(int64_t ms, char out[DS_TIME_BUFLEN]) {
    if (ms < minMs() || ms > maxMs()) return false;
    int64_t days = ms / MS_PER_DAY, rem = ms % MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civilFromDays(days, &y, &m, &d);
    int secs = (int)(rem / 1000);
    /* Written digit by digit: every field's width is fixed, and snprintf's
     * int-sized reasoning trips -Wformat-truncation. */
    putDigits(out, (int)y, 4);
    out[4] = '-';
    putDigits(out + 5, (int)m, 2);
    out[7] = '-';
    putDigits(out + 8, (int)d, 2);
    out[10] = 'T';
    putDigits(out + 11, secs / 3600, 2);
    out[13] = ':';
    putDigits(out + 14, secs / 60 % 60, 2);
    out[16] = ':';
    putDigits(out + 17, secs % 60, 2);
    out[19] = '.';
    putDigits(out + 20, (int)(rem % 1000), 3);
    out[23] = 'Z';
    out[24] = '\0';
    return true;
}

int64_t dsTimeMonoMs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t dsTimeNowMs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
