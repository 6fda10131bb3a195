/* auth.h - bearer tokens and roles.
 *
 * The server never holds tokens in clear: the tokens file lists the SHA-256
 * (hex) of each token with its roles. Format, one token per line:
 *
 *     <64 hex chars> <role>[,<role>...] [name]
 *
 * roles: writer, reader, admin (admin implies writer and reader). Blank
 * lines and lines starting with '#' are ignored.
 */
#ifndef API_AUTH_H
#define API_AUTH_H

#include <stdbool.h>
#include <stddef.h>

enum { API_ROLE_WRITER = 1, API_ROLE_READER = 2, API_ROLE_ADMIN = 4 };

typedef struct apiAuth apiAuth;

/* Loads the file. Returns NULL and writes "<path>:<line>: <what>" into errbuf
 * on any unreadable file or malformed line. Freed with apiAuthFree(). */
apiAuth *apiAuthLoad(const char *path, char *errbuf, size_t errlen);
void apiAuthFree(apiAuth *a);
size_t apiAuthCount(const apiAuth *a);

typedef enum { API_AUTH_OK, API_AUTH_UNKNOWN, API_AUTH_FORBIDDEN } apiAuthResult;

/* Checks an Authorization header value ("Bearer <token>"; header may be
 * NULL when absent) for a role. */
apiAuthResult apiAuthCheck(const apiAuth *a, const char *header, size_t len, int role);

/* Writes the lower-case hex SHA-256 of token into out (65 bytes). */
void apiAuthHashToken(const char *token, size_t len, char out[65]);

#endif
