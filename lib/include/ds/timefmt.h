/* timefmt.h - RFC 3339 timestamps <-> milliseconds since the Unix epoch (UTC).
 *
 * Decision timestamps are stored and returned in UTC with millisecond
 * precision; these two functions are the only place that conversion lives.
 */
#ifndef DS_TIMEFMT_H
#define DS_TIMEFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest output of dsTimeFormat(), NUL included: "9999-12-31T23:59:59.999Z". */
#define DS_TIME_BUFLEN 25

/* Parses an RFC 3339 date-time with a mandatory offset ("Z", "z" or
 * "+hh:mm"/"-hh:mm"), 'T' or 't' separator, years 0001-9999, optional
 * fraction of any length (digits past milliseconds are truncated).
 * Leap seconds (":60") are rejected. s need not be NUL-terminated.
 * On failure returns false and writes a human reason ("month 13 out of
 * range", "missing UTC offset") into errbuf. */
bool dsTimeParse(const char *s, size_t len, int64_t *ms_out, char *errbuf, size_t errlen);

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" (always 3 fraction digits, always Z).
 * ms must be within years 0001-9999; returns false otherwise. */
bool dsTimeFormat(int64_t ms, char out[DS_TIME_BUFLEN]);

/* Wall-clock now in ms since the epoch. */
int64_t dsTimeNowMs(void);
/* Milliseconds of the monotonic clock, for deadlines and intervals: a step
 * of the wall clock must not stretch or cut them. */
int64_t dsTimeMonoMs(void);

#endif
