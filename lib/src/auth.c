/* auth.c - the tokens file and bearer-token checks. */
#include "ds/auth.h"
#include "ds/fileio.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct authEntry {
    unsigned char hash[SHA256_DIGEST_LENGTH];
    int roles;
} authEntry;

struct dsAuth {
    authEntry *entries;
    size_t n, cap;
};

static bool authParseHex(const char *hex, size_t len, unsigned char *out) {
    if (len != 2 * SHA256_DIGEST_LENGTH) return false;
    for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)hex[2 * i]) || !isxdigit((unsigned char)hex[2 * i + 1])) return false;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
    return true;
}

#define AUTH_ROLE_ALL (DS_ROLE_WRITER | DS_ROLE_READER | DS_ROLE_LOOKUP | DS_ROLE_INGEST | DS_ROLE_ADMIN)

static const struct {
    const char *name;
    int bit;
} authRoles[] = {
    {"writer", DS_ROLE_WRITER}, {"reader", DS_ROLE_READER}, {"lookup", DS_ROLE_LOOKUP},
    {"ingest", DS_ROLE_INGEST}, {"admin", DS_ROLE_ADMIN},
};
#define AUTH_NROLES (sizeof(authRoles) / sizeof(authRoles[0]))

static int authRoleBits(const char *name) {
    for (size_t i = 0; i < AUTH_NROLES; i++)
        if (strcmp(name, authRoles[i].name) == 0)
            return authRoles[i].bit == DS_ROLE_ADMIN ? AUTH_ROLE_ALL : authRoles[i].bit;
    return 0;
}

static bool authParseRoles(char *list, int *roles, char *bad, size_t badlen) {
    *roles = 0;
    for (char *save = NULL, *r = strtok_r(list, ",", &save); r != NULL; r = strtok_r(NULL, ",", &save)) {
        int bits = authRoleBits(r);
        if (bits == 0) {
            snprintf(bad, badlen, "unknown role \"%s\" (expected writer, reader, lookup, ingest or admin)", r);
            return false;
        }
        *roles |= bits;
    }
    if (*roles == 0) snprintf(bad, badlen, "no role given");
    return *roles != 0;
}

static bool authAdd(dsAuth *a, const authEntry *e) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        authEntry *grown = realloc(a->entries, cap * sizeof(*grown));
        if (grown == NULL) return false;
        a->entries = grown;
        a->cap = cap;
    }
    a->entries[a->n++] = *e;
    return true;
}

/* Parses one non-comment line into e; writes the problem into why. */
static bool authParseLine(char *line, authEntry *e, char *why, size_t whylen) {
    char *save = NULL;
    char *hex = strtok_r(line, " \t", &save);
    char *roles = strtok_r(NULL, " \t", &save);
    if (!authParseHex(hex, strlen(hex), e->hash)) {
        snprintf(why, whylen, "expected the SHA-256 of a token as 64 hex characters");
        return false;
    }
    if (roles == NULL) {
        snprintf(why, whylen, "missing roles after the hash");
        return false;
    }
    return authParseRoles(roles, &e->roles, why, whylen);
}

/* Read whole and capped (dsFileRead), so a directory is an error rather
 * than a file with no token, and /dev/zero one rather than a line growing
 * until memory runs out. */
dsAuth *dsAuthLoad(const char *path, char *errbuf, size_t errlen) {
    dsAuth *a = calloc(1, sizeof(*a));
    char *text = NULL, *line, *next;
    size_t len;
    unsigned lineno = 0;
    if (a == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        goto failed;
    }
    if (*path == '\0') {
        snprintf(errbuf, errlen, "no tokens file configured (tokens-file is empty): every request would be refused");
        goto failed;
    }
    if ((text = dsFileRead(path, DS_FILE_MAX_CONFIG, &len, errbuf, errlen)) == NULL) goto failed;
    if (memchr(text, '\0', len)) {
        snprintf(errbuf, errlen, "%s: holds a NUL byte: not a tokens file", path);
        goto failed;
    }
    for (line = text; line < text + len; line = next) {
        lineno++;
        next = line + strcspn(line, "\n");
        if (*next) *next++ = '\0';
        char *p = line + strspn(line, " \t");
        p[strcspn(p, "\r")] = '\0';
        if (*p == '\0' || *p == '#') continue;
        authEntry e;
        char why[128];
        if (!authParseLine(p, &e, why, sizeof(why))) {
            snprintf(errbuf, errlen, "%s:%u: %s", path, lineno, why);
            goto failed;
        }
        if (!authAdd(a, &e)) {
            snprintf(errbuf, errlen, "out of memory");
            goto failed;
        }
    }
    free(text);
    return a;

failed:
    free(text);
    dsAuthFree(a);
    return NULL;
}

void dsAuthFree(dsAuth *a) {
    if (a == NULL) return;
    free(a->entries);
    free(a);
}

size_t dsAuthCount(const dsAuth *a) {
    return a->n;
}

dsAuthResult dsAuthCheck(const dsAuth *a, const char *header, size_t len, int roles) {
    static const char bearer[] = "Bearer ";
    if (header == NULL || len <= sizeof(bearer) - 1 || strncasecmp(header, bearer, sizeof(bearer) - 1) != 0)
        return DS_AUTH_UNKNOWN;
    const char *tok = header + sizeof(bearer) - 1;
    size_t toklen = len - (sizeof(bearer) - 1);
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)tok, toklen, d);
    /* Compare against every entry in constant time so the time taken does
     * not tell which prefix of which hash matched. */
    int held = -1;
    for (size_t i = 0; i < a->n; i++)
        if (CRYPTO_memcmp(d, a->entries[i].hash, sizeof(d)) == 0) held = a->entries[i].roles;
    if (held < 0) return DS_AUTH_UNKNOWN;
    return (held & roles) ? DS_AUTH_OK : DS_AUTH_FORBIDDEN;
}

/* "writer", "lookup, reader or admin": the roles in mask, for a message. */
static void authRoleList(int mask, char *out, size_t len) {
    size_t n = 0, k = 0, used = 0;
    mask |= DS_ROLE_ADMIN;
    for (size_t i = 0; i < AUTH_NROLES; i++) n += (mask & authRoles[i].bit) != 0;
    out[0] = '\0';
    for (size_t i = 0; i < AUTH_NROLES && used < len; i++) {
        if (!(mask & authRoles[i].bit)) continue;
        k++;
        const char *sep = k == 1 ? "" : k == n ? " or " : ", ";
        int w = snprintf(out + used, len - used, "%s%s", sep, authRoles[i].name);
        if (w < 0) break;
        used += (size_t)w;
    }
}

bool dsAuthRequire(const dsAuth *a, dsHttpServer *http, h2o_req_t *req, const char *route, int roles) {
    h2o_iovec_t auth;
    bool present = dsHttpHeaderGet(req, H2O_TOKEN_AUTHORIZATION, &auth);
    char msg[160], names[96];
    switch (dsAuthCheck(a, present ? auth.base : NULL, present ? auth.len : 0, roles)) {
    case DS_AUTH_OK:
        return true;
    case DS_AUTH_FORBIDDEN:
        authRoleList(roles, names, sizeof(names));
        snprintf(msg, sizeof(msg), "this token lacks the role this endpoint requires (%s)", names);
        dsHttpRespondError(http, req, route, 403, "forbidden", msg, NULL, 0);
        return false;
    default:
        dsHttpRespondError(http, req, route, 401, "unauthorized",
                           present ? "unknown token" : "missing Authorization: Bearer <token> header", NULL, 0);
        return false;
    }
}
