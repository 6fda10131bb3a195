/* check.c - the per-rule checks of codec_internal.h and the error/path
 * helpers they report through.
 *
 * A rule is enforced in two walks: from_json.c on a posted JSON document,
 * validate.c on an Avro value already built (a record read back from the
 * archive). Both get the value of one node into C form (a string and its
 * length, an integer, a double, an enum index, an element count) and call
 * the same check here, so a rule and its error are written once and the
 * two walks cannot drift apart. Nothing here allocates: this runs once per
 * field of every request and every replayed record.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec_internal.h"
#include "ds/timefmt.h"

/* ---- errors and paths ---- */

void dsUtf8TrimPartial(char *s) {
    size_t n = strlen(s), i = n;
    /* Walk back over continuation bytes to the last lead byte. */
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--;
    if (i == 0) return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (n - (i - 1) < need) s[i - 1] = '\0';
}

bool dsWalkFail(dsWalk *w, const char *code, const char *fmt, ...) {
    dsCodecError *e = w->err;
    char rest[384];
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(rest, sizeof rest, fmt, ap) >= (int)sizeof rest) dsUtf8TrimPartial(rest);
    va_end(ap);
    snprintf(e->code, sizeof e->code, "%s", code);
    dsWalkPath(w, e->field);
    if (snprintf(e->message, sizeof e->message, "%s %s", e->field[0] ? e->field : "the document", rest) >=
        (int)sizeof e->message)
        dsUtf8TrimPartial(e->message);
    return false;
}

/* Appends one step to the plen bytes of out: as much as fits, cut at a
 * character boundary. Returns the new length. */
static size_t appendStep(char *out, size_t plen, const dsWalkStep *st) {
    const size_t cap = DS_WALK_PATH_MAX;
    char index[24];
    const char *s = st->s;
    size_t len, saved = plen;
    if (plen >= cap - 1) return plen;
    if (st->kind == DS_STEP_INDEX) {
        len = (size_t)snprintf(index, sizeof index, "[%zu]", st->n);
        s = index;
    } else {
        len = st->kind == DS_STEP_KEY ? strnlen(s, st->n) : strlen(s);
        if (st->kind == DS_STEP_KEY || plen > 0) out[plen++] = '.';
    }
    size_t room = cap - 1 - plen, take = len < room ? len : room;
    memcpy(out + plen, s, take);
    out[plen + take] = '\0';
    if (take < len) dsUtf8TrimPartial(out + saved);
    return saved + strlen(out + saved);
}

void dsWalkPath(const dsWalk *w, char out[DS_WALK_PATH_MAX]) {
    size_t plen = 0, n = w->depth < DS_WALK_STEPS ? w->depth : DS_WALK_STEPS;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) plen = appendStep(out, plen, &w->steps[i]);
}

/* ---- strings ---- */

typedef enum { STR_OK, STR_BAD_UTF8, STR_NUL, STR_CONTROL } strScan;

/* The length of the valid UTF-8 sequence at s[i] (1-4), 0 if none starts
 * there: overlong forms, surrogates and code points past U+10FFFF are
 * invalid. */
static size_t utf8Seq(const unsigned char *s, size_t i, size_t len) {
    unsigned char c = s[i];
    if (c < 0x80) return 1;
    size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (n == 0 || c > 0xF4 || i + n > len) return 0;
    for (size_t k = 1; k < n; k++)
        if ((s[i + k] & 0xC0) != 0x80) return 0;
    unsigned char c1 = s[i + 1];
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90))
        return 0;
    return n;
}

/* One pass over the bytes: UTF-8 validity (jansson checks what it parses,
 * not what callers build with *_nocheck; avro-c checks nothing), NUL, and
 * control characters: C0, DEL and C1 (U+0080..U+009F, encoded C2 80..C2 9F). */
static strScan scanString(const unsigned char *s, size_t len, bool want_controls) {
    strScan found = STR_OK;
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if (c == 0) return STR_NUL;
            if (c < 0x20 || c == 0x7F) found = STR_CONTROL;
            i++;
            continue;
        }
        size_t n = utf8Seq(s, i, len);
        if (n == 0) return STR_BAD_UTF8;
        if (c == 0xC2 && s[i + 1] <= 0x9F) found = STR_CONTROL;
        i += n;
    }
    return want_controls ? found : STR_OK;
}

/* s as valid UTF-8 for a message: each byte that starts no valid sequence
 * becomes U+FFFD. Stops at a NUL (as %s does) or when out is full. */
static void utf8Repair(const char *s, size_t len, char *out, size_t cap) {
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < len && u[i] != 0;) {
        size_t n = utf8Seq(u, i, len);
        const char *from = n ? s + i : "\xEF\xBF\xBD";
        size_t take = n ? n : 3;
        if (o + take >= cap) break;
        memcpy(out + o, from, take);
        o += take;
        i += n ? n : 1;
    }
    out[o] = '\0';
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* 8-4-4-4-12 hex digits of either case; writes the lower-case form. */
static bool uuidLower(const char *s, size_t len, char out[37]) {
    if (len != 36) return false;
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : hexval(s[i]) < 0) return false;
        out[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
    }
    out[36] = '\0';
    return true;
}

/* On failure writes why (a phrase that follows the field's name). */
static bool stringRules(const dsRule *r, const char *s, size_t len, char uuid[37], char *why, size_t whylen) {
    switch (scanString((const unsigned char *)s, len, r->format == DSR_FORMAT_PRINTABLE)) {
    case STR_BAD_UTF8: return snprintf(why, whylen, "is not valid UTF-8"), false;
    case STR_NUL: return snprintf(why, whylen, "must not contain NUL characters"), false;
    case STR_CONTROL: return snprintf(why, whylen, "must not contain control characters"), false;
    case STR_OK: break;
    }
    if (len < r->min_len)
        return (r->min_len == 1 ? snprintf(why, whylen, "must not be empty")
                                : snprintf(why, whylen, "must be at least %zu bytes long", r->min_len)), false;
    if (len > r->max_len)
        return snprintf(why, whylen, "must be at most %zu bytes long (got %zu)", r->max_len, len), false;
    if (r->format == DSR_FORMAT_UUID && !uuidLower(s, len, uuid))
        return snprintf(why, whylen, "must be a UUID (8-4-4-4-12 hexadecimal digits)"), false;
    /* s[len] is NUL (the callers' contract) and s holds no NUL (checked
     * above), so regexec sees exactly the value. */
    if (r->pattern && regexec(&r->re, s, 0, NULL, 0) != 0)
        return snprintf(why, whylen, "must match the pattern %s", r->pattern), false;
    return true;
}

bool dsCheckString(dsWalk *w, const dsRule *r, const char *s, size_t len, char uuid[37]) {
    char why[256];
    return stringRules(r, s, len, uuid, why, sizeof why) || dsWalkFail(w, "invalid_value", "%s", why);
}

/* A bad key is reported at the entry's path, with a message naming the map
 * ("attributes key \"\" must not be empty"). The key comes from the data:
 * it is repaired to valid UTF-8 for the error, which must be. */
bool dsCheckMapKey(dsWalk *w, const dsRule *map, const char *key, size_t len) {
    char why[256], uuid[37], shown[DS_WALK_PATH_MAX];
    if (stringRules(map->keys, key, len, uuid, why, sizeof why)) return true;
    utf8Repair(key, len, shown, sizeof shown);
    dsWalkFail(w, "invalid_value", "key \"%s\" %s", shown, why);
    size_t saved = dsWalkPushKey(w, shown, strlen(shown));
    dsWalkPath(w, w->err->field);
    dsWalkPopPath(w, saved);
    return false;
}

/* ---- numbers, enums, counts ---- */

/* What dsTimeFormat() renders: 0001-01-01T00:00:00.000Z ..
 * 9999-12-31T23:59:59.999Z. dsTimeParse() refuses the rest on the JSON
 * side; test_codec checks the two agree. */
#define TS_MIN_MS (-62135596800000LL)
#define TS_MAX_MS 253402300799999LL

bool dsCheckTimestampRange(dsWalk *w, int64_t ms) {
    return (ms >= TS_MIN_MS && ms <= TS_MAX_MS) ||
           dsWalkFail(w, "invalid_value", "is out of range for a timestamp (years 0001-9999 in UTC)");
}

/* A decision before 2000 is a client's bug (an unset clock, a zero value)
 * and one before 1970 cannot be placed in the archive; one in the future
 * would be counted by the variable store for ever. The future is only
 * refused at intake: a record validated again later (a stored row, an
 * archived record) was accepted then. */
static bool decisionTime(dsWalk *w, int64_t ms) {
    char ts[DS_TIME_BUFLEN];
    if (ms < DS_CODEC_DECIDED_AT_MIN_MS)
        return dsWalkFail(w, "invalid_value", "must not be before 2000-01-01T00:00:00.000Z");
    if (w->bound_future && ms > w->latest_ms && dsTimeFormat(w->latest_ms, ts))
        return dsWalkFail(w, "invalid_value", "is in the future: at most %s is accepted now (the server's clock "
                          "plus the allowed clock skew)", ts);
    return true;
}

bool dsCheckInteger(dsWalk *w, const dsRule *r, int64_t n) {
    int bits = r->kind == DSR_INT ? 32 : 64;
    if (r->decision_time && !w->from_default && !decisionTime(w, n)) return false;
    if (n < r->imin)
        return r->has_min ? dsWalkFail(w, "invalid_value", "must be at least %" PRId64, r->imin)
                          : dsWalkFail(w, "invalid_value", "is out of range for a %d-bit integer", bits);
    if (n > r->imax)
        return r->has_max ? dsWalkFail(w, "invalid_value", "must be at most %" PRId64, r->imax)
                          : dsWalkFail(w, "invalid_value", "is out of range for a %d-bit integer", bits);
    return true;
}

/* JSON cannot carry NaN or an infinity, so neither can a stored value: its
 * rendering would fail every read of the record. */
bool dsCheckReal(dsWalk *w, const dsRule *r, double d) {
    const char *type = r->kind == DSR_FLOAT ? "float" : "double";
    if (isnan(d)) return dsWalkFail(w, "invalid_value", "must be a number, not NaN");
    if (d < r->dmin) return r->has_min ? dsWalkFail(w, "invalid_value", "must be at least %g", r->dmin)
                                       : dsWalkFail(w, "invalid_value", "is out of range for a %s", type);
    if (d > r->dmax) return r->has_max ? dsWalkFail(w, "invalid_value", "must be at most %g", r->dmax)
                                       : dsWalkFail(w, "invalid_value", "is out of range for a %s", type);
    return true;
}

int dsRuleEnumIndex(const dsRule *r, const char *s, size_t len) {
    for (size_t i = 0; i < r->nsymbols; i++)
        if (strlen(r->symbols[i]) == len && memcmp(r->symbols[i], s, len) == 0) return (int)i;
    return -1;
}

bool dsCheckEnum(dsWalk *w, const dsRule *r, int index) {
    return (index >= 0 && (size_t)index < r->nsymbols) ||
           dsWalkFail(w, "invalid_value", "must be one of %s", r->symbol_list);
}

int dsMapEntryCompare(const void *a, const void *b) {
    const dsMapEntry *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

bool dsCheckItems(dsWalk *w, const dsRule *r, size_t n) {
    if (n <= r->max_items) return true;
    return dsWalkFail(w, "too_many_items", "has %zu %s; at most %zu are allowed", n,
                      r->kind == DSR_MAP ? "entries" : "items", r->max_items);
}
