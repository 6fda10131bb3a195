/* httpclient.h - a small blocking HTTP client over one libcurl easy handle.
 *
 * One client, one connection kept alive between requests (libcurl reuses it
 * when the next request goes to the same host). Each request replaces the
 * previous response: its status, its body (collected into a buffer the
 * client owns and grows as needed, up to max_body) and its Retry-After.
 * A request either gets an HTTP answer, whatever its status (true), or fails
 * in transport (false, a human sentence in the caller's errbuf:
 * "GET http://127.0.0.1:8080/schemas/ids/2: Couldn't connect to server"),
 * and dsHttpClientTransient() then tells whether waiting may mend it.
 *
 * Blocking: a request holds the calling thread for up to the configured
 * timeouts, so callers on an event loop keep them short and call rarely.
 * Not thread-safe: one client per thread. libcurl's global state is set up
 * and released with the clients (reference counted; thread-safe in the
 * libcurl this project builds against, 7.84 or newer).
 */
#ifndef DS_HTTPCLIENT_H
#define DS_HTTPCLIENT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct dsHttpClient dsHttpClient;

typedef struct dsHttpClientConfig {
    long connect_timeout_ms; /* to establish the TCP (and TLS) connection; 0: libcurl's default (300 s) */
    long timeout_ms;         /* for a whole request, connecting included; 0: none */
    size_t max_body;         /* longest response body kept; longer fails the request; 0: 1 MiB */
    const char *user_agent;  /* NULL: libcurl sends none; copied */
    const char *accept;      /* the Accept header of every request; NULL: none; copied */
} dsHttpClientConfig;

/* A new client; NULL with the reason in errbuf (out of memory, libcurl
 * cannot start). cfg is read during the call only. Freed with
 * dsHttpClientFree(). */
dsHttpClient *dsHttpClientNew(const dsHttpClientConfig *cfg, char *errbuf, size_t errlen);
/* Closes the connection and frees everything, the response included. NULL
 * is allowed. */
void dsHttpClientFree(dsHttpClient *c);

/* GET url. true when an answer came (any status); false with errbuf naming
 * the method, the URL and libcurl's reason. url is read during the call. */
bool dsHttpClientGet(dsHttpClient *c, const char *url, char *errbuf, size_t errlen);
/* POST body (len bytes, sent as is) to url with the given Content-Type
 * (NULL: "application/json"). Same result as dsHttpClientGet(). All
 * arguments are read during the call only. */
bool dsHttpClientPost(dsHttpClient *c, const char *url, const char *content_type, const char *body, size_t len,
                      char *errbuf, size_t errlen);

/* Sends "Authorization: Bearer <token>" with every later request. token is
 * copied. false if libcurl cannot (out of memory, or too old for bearer). */
bool dsHttpClientSetBearer(dsHttpClient *c, const char *token);

/* The last response's HTTP status; 0 when the last request got no answer. */
long dsHttpClientStatus(const dsHttpClient *c);
/* The last response's body, NUL-terminated (the NUL is not counted in
 * *len; len may be NULL); "" when there was none. Owned by the client:
 * valid until its next request or dsHttpClientFree(). */
const char *dsHttpClientBody(const dsHttpClient *c, size_t *len);
/* The last response's Retry-After in milliseconds (the delta-seconds form
 * only, 1 s to 1 day); 0 when absent or a date. */
long dsHttpClientRetryAfterMs(const dsHttpClient *c);
/* After a failed request: whether the failure is one a peer restarting,
 * overloaded or unreachable for a while causes (connection refused, name
 * not resolved, timeout, connection reset or closed mid-answer), so trying
 * again later may succeed. false for the rest (TLS, a malformed answer, a
 * body over max_body), and after a request that got an answer. */
bool dsHttpClientTransient(const dsHttpClient *c);

/* s percent-encoded for a URL path segment ("decisions value" ->
 * "decisions%20value"); a new string the caller frees with free(); NULL if
 * out of memory. */
char *dsHttpClientEscape(dsHttpClient *c, const char *s);

/* Whether url is a base URL that endpoint paths can be appended to:
 * http(s)://HOST[:PORT] with an optional path prefix (a proxy in front),
 * no query or fragment, and nothing libcurl cannot parse. false with
 * errbuf naming what (the option, "--registry-url") and why. Needs no
 * client. */
bool dsHttpClientCheckBaseUrl(const char *url, const char *what, char *errbuf, size_t errlen);

#endif
