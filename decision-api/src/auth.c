/* auth.c - the tokens file and bearer-token checks. */
#include "auth.h"

#include <ctype.h>
#include <errno.h>
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

struct apiAuth {
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

static bool authParseRoles(char *list, int *roles, char *bad, size_t badlen) {
    *roles = 0;
    for (char *save = NULL, *r = strtok_r(list, ",", &save); r != NULL; r = strtok_r(NULL, ",", &save)) {
        if (strcmp(r, "writer") == 0) *roles |= API_ROLE_WRITER;
        else if (strcmp(r, "reader") == 0) *roles |= API_ROLE_READER;
        else if (strcmp(r, "admin") == 0) *roles |= API_ROLE_ADMIN | API_ROLE_WRITER | API_ROLE_READER;
        else {
            snprintf(bad, badlen, "unknown role \"%s\" (expected writer, reader or admin)", r);
            return false;
        }
    }
    if (*roles == 0) snprintf(bad, badlen, "no role given");
    return *roles != 0;
}

static bool authAdd(apiAuth *a, const authEntry *e) {
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

apiAuth *apiAuthLoad(const char *path, char *errbuf, size_t errlen) {
    apiAuth *a = calloc(1, sizeof(*a));
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    if (a == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        goto failed;
    }
    if (f == NULL) {
        snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
        goto failed;
    }
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        char *p = line + strspn(line, " \t");
        p[strcspn(p, "\r\n")] = '\0';
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
    free(line);
    fclose(f);
    return a;

failed:
    free(line);
    if (f) fclose(f);
    apiAuthFree(a);
    return NULL;
}

void apiAuthFree(apiAuth *a) {
    if (a == NULL) return;
    free(a->entries);
    free(a);
}

size_t apiAuthCount(const apiAuth *a) {
    return a->n;
}

void apiAuthHashToken(const char *token, size_t len, char out[65]) {
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, len, d);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

apiAuthResult apiAuthCheck(const apiAuth *a, const char *header, size_t len, int role) {
    static const char bearer[] = "Bearer ";
    if (header == NULL || len <= sizeof(bearer) - 1 || strncasecmp(header, bearer, sizeof(bearer) - 1) != 0)
        return API_AUTH_UNKNOWN;
    const char *tok = header + sizeof(bearer) - 1;
    size_t toklen = len - (sizeof(bearer) - 1);
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)tok, toklen, d);
    /* Compare against every entry in constant time so the time taken does
     * not tell which prefix of which hash matched. */
    int roles = -1;
    for (size_t i = 0; i < a->n; i++)
        if (CRYPTO_memcmp(d, a->entries[i].hash, sizeof(d)) == 0) roles = a->entries[i].roles;
    if (roles < 0) return API_AUTH_UNKNOWN;
    return (roles & role) ? API_AUTH_OK : API_AUTH_FORBIDDEN;
}
