/* cursor.c - the signed keyset cursor (cursor.h). */
#include "cursor.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decision.h"
#include "ds/fileio.h"

#define CURSOR_PREFIX "v2:"
#define CURSOR_MAC_LEN 32 /* SHA-256 */
#define CURSOR_PAYLOAD_MAX 64 /* "v2:" + at most 20 digits and a sign + ":" + 36 */

bool apiCursorKeyLoad(const char *path, apiCursorKey *k, char *errbuf, size_t errlen) {
    memset(k, 0, sizeof(*k));
    if (path == NULL || path[0] == '\0') {
        k->len = API_CURSOR_KEY_MIN;
        k->ephemeral = true;
        if (RAND_bytes(k->key, (int)k->len) != 1) {
            snprintf(errbuf, errlen, "cannot draw a random cursor key");
            return false;
        }
        return true;
    }
    size_t len;
    char *text = dsFileRead(path, DS_FILE_MAX_SECRET, &len, errbuf, errlen);
    if (text == NULL) return false;
    if (len > 0 && text[len - 1] == '\n') len--;
    if (len > 0 && text[len - 1] == '\r') len--;
    bool ok = len >= API_CURSOR_KEY_MIN && len <= API_CURSOR_KEY_MAX;
    if (ok) {
        memcpy(k->key, text, len);
        k->len = len;
    } else {
        snprintf(errbuf, errlen, "%s: a cursor key must hold %d to %d bytes (it has %zu); make one with `openssl rand -hex 32`",
                 path, API_CURSOR_KEY_MIN, API_CURSOR_KEY_MAX, len);
    }
    OPENSSL_cleanse(text, len);
    free(text);
    return ok;
}

static bool cursorMac(const apiCursorKey *k, const char *payload, size_t len, unsigned char mac[CURSOR_MAC_LEN]) {
    unsigned int maclen = 0;
    return HMAC(EVP_sha256(), k->key, (int)k->len, (const unsigned char *)payload, len, mac, &maclen) != NULL &&
           maclen == CURSOR_MAC_LEN;
}

bool apiCursorEncode(const apiCursorKey *k, int64_t decided_at_ms, const char *id, char out[API_CURSOR_BUFLEN]) {
    unsigned char raw[CURSOR_PAYLOAD_MAX + CURSOR_MAC_LEN];
    int n = snprintf((char *)raw, CURSOR_PAYLOAD_MAX + 1, CURSOR_PREFIX "%lld:%s", (long long)decided_at_ms, id);
    if (n < 0 || n > CURSOR_PAYLOAD_MAX) return false;
    if (!cursorMac(k, (const char *)raw, (size_t)n, raw + n)) return false;
    size_t total = (size_t)n + CURSOR_MAC_LEN;
    if (h2o_base64_encode_capacity(total) > API_CURSOR_BUFLEN) return false;
    h2o_base64_encode(out, raw, total, 1);
    return true;
}

/* The payload's values, read strictly: an optional '-', digits without a
 * leading zero (or "0"), ':', a lower-case UUID. The MAC already vouches
 * for it; this keeps a key compromise from reaching strtoll's leniency. */
static bool cursorParse(const char *p, size_t len, int64_t *ms, char id[37]) {
    size_t plen = sizeof(CURSOR_PREFIX) - 1;
    if (len <= plen || memcmp(p, CURSOR_PREFIX, plen) != 0) return false;
    char buf[CURSOR_PAYLOAD_MAX + 1];
    memcpy(buf, p + plen, len - plen);
    buf[len - plen] = '\0';
    char *colon = strchr(buf, ':');
    if (colon == NULL) return false;
    const char *digits = buf[0] == '-' ? buf + 1 : buf;
    if (digits == colon || (digits[0] == '0' && digits + 1 != colon)) return false;
    for (const char *d = digits; d < colon; d++)
        if (*d < '0' || *d > '9') return false;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno != 0 || end != colon) return false;
    char norm[37];
    if (!apiDecisionNormalizeId(colon + 1, strlen(colon + 1), norm) || strcmp(norm, colon + 1) != 0) return false;
    *ms = v;
    memcpy(id, norm, sizeof(norm));
    return true;
}

bool apiCursorDecode(const apiCursorKey *k, h2o_mem_pool_t *pool, const char *text, size_t len,
                     int64_t *decided_at_ms, char id[37]) {
    if (len == 0 || len >= API_CURSOR_BUFLEN) return false;
    h2o_iovec_t raw = h2o_decode_base64url(pool, text, len);
    if (raw.base == NULL || raw.len <= CURSOR_MAC_LEN || raw.len > CURSOR_PAYLOAD_MAX + CURSOR_MAC_LEN) return false;
    /* base64 leaves unused bits in a last partial group: the decoder ignores
     * them, so several texts decode alike. Only the one this server wrote is
     * the cursor. */
    char again[API_CURSOR_BUFLEN];
    h2o_base64_encode(again, raw.base, raw.len, 1);
    if (strlen(again) != len || memcmp(again, text, len) != 0) return false;
    size_t plen = raw.len - CURSOR_MAC_LEN;
    unsigned char mac[CURSOR_MAC_LEN];
    if (!cursorMac(k, raw.base, plen, mac) || CRYPTO_memcmp(mac, raw.base + plen, CURSOR_MAC_LEN) != 0) return false;
    return cursorParse(raw.base, plen, decided_at_ms, id);
}
