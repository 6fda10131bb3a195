/* auth.h - bearer tokens and roles, shared by every HTTP server that takes
 * writes or serves customer data (the decision API, the variable store).
 *
 * The servers never hold tokens in clear: the tokens file lists the SHA-256
 * (hex) of each token with its roles. Format, one token per line:
 *
 *     <64 hex chars> <role>[,<role>...] [name]
 *
 * Roles: writer (post decisions), reader (read decisions; also variable
 * lookups), lookup (variable lookups only: what a policy engine holds beside
 * writer, without the right to read decisions), ingest (refill the variable
 * store: decision-replay) and admin, which implies every other role. Blank
 * lines and lines starting with '#' are ignored; an unknown role fails the
 * whole file, so a typo never silently grants less (or more) than meant.
 */
#ifndef DS_AUTH_H
#define DS_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "ds/http.h"

enum {
    DS_ROLE_WRITER = 1,
    DS_ROLE_READER = 2,
    DS_ROLE_LOOKUP = 4,
    DS_ROLE_INGEST = 8,
    DS_ROLE_ADMIN = 16,
};

typedef struct dsAuth dsAuth;

/* Loads the file. Returns NULL and writes "<path>:<line>: <what>" into errbuf
 * on any unreadable file or malformed line. The caller frees it with
 * dsAuthFree(). */
dsAuth *dsAuthLoad(const char *path, char *errbuf, size_t errlen);
void dsAuthFree(dsAuth *a);
size_t dsAuthCount(const dsAuth *a);

typedef enum { DS_AUTH_OK, DS_AUTH_UNKNOWN, DS_AUTH_FORBIDDEN } dsAuthResult;

/* Checks an Authorization header value ("Bearer <token>"; header may be
 * NULL when absent) for any one of the roles in the mask roles. */
dsAuthResult dsAuthCheck(const dsAuth *a, const char *header, size_t len, int roles);

/* The same check on a request: true when its token holds one of roles;
 * otherwise answers it (401 for no or an unknown token, 403 naming the roles
 * the endpoint takes) and returns false. route labels the answer's metrics. */
bool dsAuthRequire(const dsAuth *a, dsHttpServer *http, h2o_req_t *req, const char *route, int roles);

#endif
