/* cursor.h - the search's keyset cursor, signed.
 *
 * A cursor names the last decision of a page (its decided_at and
 * decision_id); the next page starts strictly after it. It is the base64url
 * of "v2:<decided_at ms>:<decision_id>" followed by an HMAC-SHA256 of that
 * text under the server's cursor key, so a client cannot move a page by
 * editing the cursor: any changed, missing or added byte, or a cursor signed
 * under another key, is refused (the handler answers 400).
 *
 * The key comes from a file (cursor-key-file) that every replica shares, so
 * a cursor issued by one is accepted by the others and after a restart.
 * Without one, each process draws a random key: cursors then die with the
 * process and are refused by other replicas.
 */
#ifndef API_CURSOR_H
#define API_CURSOR_H

#include <h2o.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    API_CURSOR_KEY_MIN = 32,  /* bytes of key material a file must hold */
    API_CURSOR_KEY_MAX = 256,
    API_CURSOR_BUFLEN = 160,  /* an encoded cursor with its NUL */
};

typedef struct apiCursorKey {
    unsigned char key[API_CURSOR_KEY_MAX];
    size_t len;
    bool ephemeral; /* drawn at random: no file configured */
} apiCursorKey;

/* Loads the key from path: the file's bytes, less one trailing newline
 * ("\n" or "\r\n"), API_CURSOR_KEY_MIN to API_CURSOR_KEY_MAX of them. An
 * empty path draws a random key (ephemeral). false with errbuf filled when
 * the file cannot be read, is too short or too long, or no randomness is
 * available. */
bool apiCursorKeyLoad(const char *path, apiCursorKey *k, char *errbuf, size_t errlen);

/* Writes the cursor for (decided_at_ms, id) into out (API_CURSOR_BUFLEN
 * bytes, NUL-terminated). false if the values cannot be encoded. */
bool apiCursorEncode(const apiCursorKey *k, int64_t decided_at_ms, const char *id, char out[API_CURSOR_BUFLEN]);

/* Checks and reads a cursor; scratch memory comes from pool. false, writing
 * nothing, unless it is exactly a cursor this key signed. id receives the
 * decision_id (37 bytes with the NUL). */
bool apiCursorDecode(const apiCursorKey *k, h2o_mem_pool_t *pool, const char *text, size_t len,
                     int64_t *decided_at_ms, char id[37]);

#endif
