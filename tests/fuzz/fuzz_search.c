/* fuzz_search.c - the query string of the support search
 * GET /v1/decisions?... (filters, limit, keyset cursor), parsed as the API
 * does, without a server or a database: the input is the query string.
 *
 * The search handler's parser is static, so its file is compiled in here;
 * the harness calls only listParse() and listBuildSql(), with a server that
 * has the embedded schemas and a fixed cursor key (FUZZ_CURSOR_KEY, so a
 * signed cursor in a seed stays valid). Properties: a refused query has a
 * message; an accepted one sends PostgreSQL only parameters that are valid
 * UTF-8 text (anything else is the client's error, not a database failure).
 * The whole input is also tried as a cursor: one the key accepts must be
 * exactly the cursor the server would issue for what it names (a changed
 * byte is refused). Whether an error message that quotes the client's bytes
 * renders is the HTTP layer's part (dsHttpRespondError), not checked here. */
#include "../../decision-api/src/handlers_read.c"

#include "fuzz.h"

static apiServer server;

static void teardown(void) {
    dsCodecFree(server.codec);
}

static void setup(void) {
    char err[256];
    FUZZ_SETUP((server.codec = dsCodecNew(err, sizeof(err))) != NULL, "dsCodecNew: %s", err);
    server.cursor_key.len = sizeof(FUZZ_CURSOR_KEY) - 1;
    memcpy(server.cursor_key.key, FUZZ_CURSOR_KEY, server.cursor_key.len);
    atexit(teardown);
}

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
    if (server.codec == NULL) setup();
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
    if (!listParse(&server, &req, &q, msg, sizeof(msg), &field)) {
        FUZZ_CHECK(msg[0] != '\0', "a refused query without a message");
    } else {
        char sql[1024];
        const char *params[8];
        int n = listBuildSql(&q, sql, sizeof(sql), params);
        FUZZ_CHECK(n >= 1 && n <= 8, "%d parameters", n);
        for (int i = 0; i < n; i++) checkText("a search parameter", params[i]);
    }
    int64_t ms;
    char id[37], again[API_CURSOR_BUFLEN];
    if (apiCursorDecode(&server.cursor_key, &req.pool, (const char *)data, size, &ms, id)) {
        FUZZ_CHECK(apiCursorEncode(&server.cursor_key, ms, id, again), "an accepted cursor does not encode");
        FUZZ_CHECK(strlen(again) == size && memcmp(again, data, size) == 0,
                   "an accepted cursor is not the one issued for what it names: %s", again);
    }
    reqClear();
    return 0;
}
