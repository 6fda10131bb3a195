/* http_request.c - reading a request: its path, method, headers and query
 * string, percent-decoding into the request's pool. */
#include "ds/http.h"

#include <stdbool.h>
#include <string.h>

bool dsHttpPathIs(const h2o_iovec_t *path, const char *literal) {
    return h2o_memis(path->base, path->len, literal, strlen(literal));
}

bool dsHttpBodyIsJson(const h2o_req_t *req) {
    h2o_iovec_t ct;
    size_t n = strlen("application/json");
    return dsHttpHeaderGet(req, H2O_TOKEN_CONTENT_TYPE, &ct) && ct.len >= n &&
           strncasecmp(ct.base, "application/json", n) == 0 && (ct.len == n || ct.base[n] == ';' || ct.base[n] == ' ');
}

bool dsHttpMethodIs(const h2o_req_t *req, const char *method) {
    return h2o_memis(req->method.base, req->method.len, method, strlen(method));
}

bool dsHttpHeaderGet(const h2o_req_t *req, const h2o_token_t *token, h2o_iovec_t *out) {
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    if (i == -1) return false;
    *out = req->headers.entries[i].value;
    return true;
}

static int httpHexVal(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes src[0..len) into the request pool; in a query a '+' is a space. */
static bool httpUnescape(h2o_mem_pool_t *pool, const char *src, size_t len, bool plus_is_space, h2o_iovec_t *out) {
    char *dst = h2o_mem_alloc_pool(pool, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '+' && plus_is_space) {
            dst[n++] = ' ';
        } else if (src[i] == '%') {
            int hi, lo;
            if (i + 2 >= len || (hi = httpHexVal(src[i + 1])) < 0 || (lo = httpHexVal(src[i + 2])) < 0)
                return false;
            dst[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            dst[n++] = src[i];
        }
    }
    dst[n] = '\0';
    *out = h2o_iovec_init(dst, n);
    return true;
}

bool dsHttpQueryNext(h2o_req_t *req, size_t *pos, h2o_iovec_t *name, h2o_iovec_t *value, bool *bad) {
    *bad = false;
    if (req->query_at == SIZE_MAX) return false;
    const char *q = req->path.base + req->query_at + 1;
    size_t qlen = req->path.len - req->query_at - 1;
    while (*pos < qlen) {
        const char *start = q + *pos;
        const char *end = memchr(start, '&', qlen - *pos);
        size_t plen = end ? (size_t)(end - start) : qlen - *pos;
        *pos += plen + 1;
        if (plen == 0) continue;
        const char *eq = memchr(start, '=', plen);
        size_t nlen = eq ? (size_t)(eq - start) : plen;
        const char *v = eq ? eq + 1 : start + plen;
        size_t vlen = eq ? plen - nlen - 1 : 0;
        if (!httpUnescape(&req->pool, start, nlen, true, name) || !httpUnescape(&req->pool, v, vlen, true, value)) {
            *bad = true;
            return false;
        }
        return true;
    }
    return false;
}

bool dsHttpUnescapePath(h2o_req_t *req, const char *src, size_t len, h2o_iovec_t *out) {
    return httpUnescape(&req->pool, src, len, false, out);
}
