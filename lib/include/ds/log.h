/* log.h - structured logging to stderr.
 *
 * One line per event: "<RFC 3339 UTC ms> <LEVEL> <component>: <message>",
 * LEVEL one of DEBUG, INFO, WARN, ERROR. Each line is one write(2) of at most
 * PIPE_BUF bytes (longer messages end in " [truncated]"), so lines from
 * several processes never interleave; control characters in the message are
 * escaped ("\n", "\x01") so an event is always one line. errno is preserved.
 * Logging never fails loudly: a message that cannot be written is dropped.
 */
#ifndef DS_LOG_H
#define DS_LOG_H

#include <stdbool.h>

typedef enum { DS_LOG_DEBUG = 0, DS_LOG_INFO, DS_LOG_WARN, DS_LOG_ERROR } dsLogLevel;

/* component: a short name printed on every line ("decision-api"); copied,
 * cut at 63 bytes. Before the first call the program name is used and the
 * minimum level is INFO. Call before starting threads: dsLog() itself is
 * thread-safe, this is not. */
void dsLogInit(const char *component, dsLogLevel min_level);

/* Parses "debug", "info", "warn" (or "warning"), "error", any case; false if
 * unknown. */
bool dsLogParseLevel(const char *s, dsLogLevel *out);

void dsLog(dsLogLevel level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define dsLogDebug(...) dsLog(DS_LOG_DEBUG, __VA_ARGS__)
#define dsLogInfo(...) dsLog(DS_LOG_INFO, __VA_ARGS__)
#define dsLogWarn(...) dsLog(DS_LOG_WARN, __VA_ARGS__)
#define dsLogError(...) dsLog(DS_LOG_ERROR, __VA_ARGS__)

#endif
