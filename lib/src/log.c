/* log.c - owns the process-wide log sink: the minimum level, the component
 * name, and the line format written to stderr.
 *
 * Each call formats into a stack buffer and issues one write(2). Lines are
 * capped at PIPE_BUF because POSIX makes writes of at most PIPE_BUF bytes to a
 * pipe atomic, so lines from several processes sharing one stderr pipe never
 * interleave. dsLog() touches no shared mutable state, so concurrent calls
 * are safe once dsLogInit() has run.
 */
#include "ds/log.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#ifndef PIPE_BUF
#define PIPE_BUF 4096
#endif

#define LOG_LINE_MAX PIPE_BUF
#define LOG_TRUNCATED " [truncated]"

static char logComponentName[64];
static dsLogLevel logMinLevel = DS_LOG_INFO;

static const char *const logLevelNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void dsLogInit(const char *component, dsLogLevel min_level) {
    /* Copied so a caller's buffer may go away; longer names are cut. */
    snprintf(logComponentName, sizeof logComponentName, "%s", component ? component : "");
    logMinLevel = min_level;
}

bool dsLogParseLevel(const char *s, dsLogLevel *out) {
    if (!s) return false;
    dsLogLevel l;
    if (strcasecmp(s, "debug") == 0) l = DS_LOG_DEBUG;
    else if (strcasecmp(s, "info") == 0) l = DS_LOG_INFO;
    else if (strcasecmp(s, "warn") == 0 || strcasecmp(s, "warning") == 0) l = DS_LOG_WARN;
    else if (strcasecmp(s, "error") == 0) l = DS_LOG_ERROR;
    else return false;
    if (out) *out = l;
    return true;
}

/* Writes "<timestamp> <LEVEL> <component>: " and returns its length. */
static size_t logPrefix(char *buf, size_t len, dsLogLevel level) {
    struct timespec ts = {0, 0};
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (!gmtime_r(&ts.tv_sec, &tm)) memset(&tm, 0, sizeof tm);
    /* Before dsLogInit() the program name is the best component we have. */
    const char *comp = logComponentName[0] ? logComponentName : program_invocation_short_name;
    int n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(ts.tv_nsec / 1000000), logLevelNames[level], comp);
    if (n < 0) return 0;
    return (size_t)n < len ? (size_t)n : len - 1;
}

/* Appends msg to buf[pos..cap), escaping control characters so one event is
 * always one line. Stops before an escape that would not fit whole; returns
 * the new position and sets *cut if anything was left out. */
static size_t logAppendEscaped(char *buf, size_t pos, size_t cap, const char *msg, bool *cut) {
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        char esc[5] = {(char)*p};
        size_t n = 1;
        if (*p == '\n' || *p == '\r') {
            esc[0] = '\\';
            esc[1] = *p == '\n' ? 'n' : 'r';
            n = 2;
        } else if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
            n = (size_t)snprintf(esc, sizeof esc, "\\x%02x", *p);
        }
        if (pos + n > cap) {
            *cut = true;
            break;
        }
        memcpy(buf + pos, esc, n);
        pos += n;
    }
    return pos;
}

/* Best effort: a closed or full stderr must never take the service down. */
static void logWrite(const char *p, size_t len) {
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        p += w;
        len -= (size_t)w;
    }
}

void dsLog(dsLogLevel level, const char *fmt, ...) {
    if (level < DS_LOG_DEBUG) level = DS_LOG_DEBUG;
    if (level > DS_LOG_ERROR) level = DS_LOG_ERROR;
    if (level < logMinLevel || !fmt) return;
    int saved_errno = errno; /* callers may log between a failure and its errno check */

    char msg[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) snprintf(msg, sizeof msg, "(unformattable log message: %s)", fmt);
    bool cut = n >= (int)sizeof msg;

    char line[LOG_LINE_MAX];
    size_t cap = sizeof line - (sizeof LOG_TRUNCATED - 1) - 1; /* room for the marker and '\n' */
    size_t len = logPrefix(line, cap, level);
    len = logAppendEscaped(line, len, cap, msg, &cut);
    if (cut) {
        memcpy(line + len, LOG_TRUNCATED, sizeof LOG_TRUNCATED - 1);
        len += sizeof LOG_TRUNCATED - 1;
    }
    line[len++] = '\n';
    logWrite(line, len);
    errno = saved_errno;
}
