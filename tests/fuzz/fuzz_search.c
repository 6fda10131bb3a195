/* fuzz_search.c - the query string of the support search
 * GET /v1/decisions?... (filters, limit, keyset cursor), parsed as the API
 * does, without a server or a database: the input is the query string.
 *
 * The search handler's parser is static, so its file is compiled in here;
 * the harness calls only listParse() and listBuildSql(). Properties: a
 * refused query has a message; an accepted one sends PostgreSQL only
 * parameters that are valid UTF-8 text (anything else is the client's error,
 * not a database failure). Whether an error message that quotes the client's
 * bytes renders is the HTTP layer's part (dsHttpRespondError), not checked
 * here. */
#include "../../decision-api/src/handlers_read.c"

#include "fuzz.h"

static void checkText(const char *what, const char *s) {
    json_t *probe = json_string(s);
    FUZZ_CHECK(probe != NULL, "%s is not valid UTF-8: \"%s\"", what, s);
    json_decref(probe);
}

/* The request, kept from one input to the next so that what its pool holds
 * stays reachable when FUZZ_LAX abandons an input: cleared at the start of
 * the next one and at exit. */
static h2o_req_t req;
static bool req_used;

static void reqClear(void) {
    if (req_used) h2o_mem_clear_pool(&req.pool);
    req_used = false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FUZZ_ENTRY;
    static const char prefix[] = "/v1/decisions?";
    static bool registered;
    if (!registered) registered = atexit(reqClear) == 0;
    reqClear();
    memset(&req, 0, sizeof(req));
    h2o_mem_init_pool(&req.pool);
    req_used = true;
    char *path = h2o_mem_alloc_pool(&req.pool, sizeof(prefix) + size);
    memcpy(path, prefix, sizeof(prefix) - 1);
    memcpy(path + sizeof(prefix) - 1, data, size);
    req.path = h2o_iovec_init(path, sizeof(prefix) - 1 + size);
    req.query_at = sizeof(prefix) - 2;

    listQuery q;
    char msg[256];
    const char *field = NULL;
    msg[0] = '\0';
    if (!listParse(&req, &q, msg, sizeof(msg), &field)) {
        FUZZ_CHECK(msg[0] != '\0', "a refused query without a message");
    } else {
        char sql[1024];
        const char *params[8];
        int n = listBuildSql(&q, sql, sizeof(sql), params);
        FUZZ_CHECK(n >= 1 && n <= 8, "%d parameters", n);
        for (int i = 0; i < n; i++) checkText("a search parameter", params[i]);
    }
    reqClear();
    return 0;
}
