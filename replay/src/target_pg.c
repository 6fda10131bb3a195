/* target_pg.c - the PostgreSQL target of decision-replay (target.h).
 *
 * A batch is one statement over a jsonb array of rows, so one round trip
 * and one transaction carry it; ON CONFLICT DO NOTHING makes the target
 * idempotent (also for duplicates inside one batch, which an at-least-once
 * archive may hold). A row already there is "present" only if it is the
 * same decision: the same statement returns the ids whose stored row has
 * the same schema version but another document hash (the main query sees
 * the table as it was before the insert), and those count as failed, as the
 * API answers 409: the archive and the store disagree about a decision.
 * Rows stored under another version cannot be compared by hash and count
 * as present. Rows are what the decision API writes: the canonical
 * document without server fields and the SHA-256 of its compact text, so an
 * idempotent retry through the API after a refill still compares equal.
 */
#include <libpq-fe.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ds/log.h"
#include "ds/timefmt.h"
#include "target.h"

#define TP_RETRIES 5

static const char tpInsert[] =
    "WITH b AS (SELECT r FROM jsonb_array_elements($1::jsonb) AS r),"
    " ins AS (INSERT INTO decisions (decision_id, purchase_id, customer_id, merchant_id, outcome, decided_at,"
    " recorded_at, schema_version, doc_sha256, doc, doc_text)"
    " SELECT (r->3->>'decision_id')::uuid, r->3->>'purchase_id', r->3->>'customer_id', r->3->>'merchant_id',"
    " r->3->>'outcome', (r->3->>'decided_at')::timestamptz, (r->>0)::timestamptz, (r->>1)::int,"
    " decode(r->>2, 'hex'), r->3, r->>4"
    " FROM b ON CONFLICT (decision_id) DO NOTHING RETURNING 1),"
    " bad AS (SELECT d.decision_id FROM decisions d JOIN b ON d.decision_id = (b.r->3->>'decision_id')::uuid"
    " WHERE d.schema_version = (b.r->>1)::int AND d.doc_sha256 <> decode(b.r->>2, 'hex'))"
    " SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM bad),"
    " (SELECT string_agg(decision_id::text, ' ') FROM (SELECT decision_id FROM bad LIMIT 10) x)";

typedef struct tpTarget {
    rpTarget base;
    dsCodec *codec;
    PGconn *conn;
    char *conninfo;
    json_t *rows; /* the batch being built */
    size_t batch;
} tpTarget;

static bool tpConnect(tpTarget *t, char *errbuf, size_t errlen) {
    if (t->conn) PQfinish(t->conn);
    t->conn = PQconnectdb(t->conninfo);
    if (PQstatus(t->conn) == CONNECTION_OK) return true;
    snprintf(errbuf, errlen, "postgres: cannot connect: %s", PQerrorMessage(t->conn));
    return false;
}

/* Runs the batch: *inserted rows new, *conflicting rows already stored
 * with another document (up to 10 of their ids logged). */
static bool tpExec(tpTarget *t, const char *text, uint64_t *inserted, uint64_t *conflicting, char *errbuf,
                   size_t errlen) {
    const char *params[1] = {text};
    PGresult *res = PQexecParams(t->conn, tpInsert, 1, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) == 3;
    if (ok) {
        *inserted = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        *conflicting = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
        if (*conflicting)
            dsLogError("postgres: %llu decisions of the batch are stored with another document than the archive's "
                       "(not written, counted as failed): %s%s", (unsigned long long)*conflicting,
                       PQgetvalue(res, 0, 2), *conflicting > 10 ? " ..." : "");
    } else {
        snprintf(errbuf, errlen, "postgres: the batch insert failed: %s", PQresultErrorMessage(res));
    }
    PQclear(res);
    return ok;
}

/* Sends the batch; a lost connection is retried with a fresh one (the
 * statement is idempotent), any other failure is final. */
static bool tpSend(tpTarget *t, char *errbuf, size_t errlen) {
    size_t n = json_array_size(t->rows);
    if (n == 0) return true;
    char *text = json_dumps(t->rows, JSON_COMPACT);
    if (text == NULL) return snprintf(errbuf, errlen, "out of memory"), false;
    uint64_t inserted = 0, conflicting = 0;
    bool ok = false;
    for (int attempt = 0; attempt < TP_RETRIES && !ok; attempt++) {
        if (attempt > 0) {
            dsLogWarn("%s; retrying (%d of %d)", errbuf, attempt, TP_RETRIES - 1);
            nanosleep(&(struct timespec){0, 200000000L * attempt}, NULL);
            if (!tpConnect(t, errbuf, errlen)) continue;
        }
        ok = tpExec(t, text, &inserted, &conflicting, errbuf, errlen);
        if (!ok && PQstatus(t->conn) == CONNECTION_OK) break; /* the server refused it: not a retry case */
    }
    free(text);
    if (!ok) {
        t->base.settled.failed += n;
        return false;
    }
    t->base.settled.written += inserted;
    t->base.settled.failed += conflicting;
    t->base.settled.present += n - inserted - conflicting;
    json_array_clear(t->rows);
    return true;
}

static bool tpRow(tpTarget *t, avro_value_t *v, char *errbuf, size_t errlen) {
    json_t *full = dsCodecToJson(t->codec, v, 0), *doc = dsCodecToJson(t->codec, v, DS_CODEC_OMIT_SERVER_FIELDS);
    char *canon = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    const char *recorded = json_string_value(json_object_get(full, "recorded_at"));
    /* The row's version is the one its doc is canonical under, as the API
     * writes it: the value's (the replay resolved it), not the archived
     * record's schema_version field. The stream processor encodes a row
     * under that version, and idempotency hashes under it. */
    int v_version = dsCodecVersionOfSchema(t->codec, avro_value_get_schema(v));
    json_t *version = v_version > 0 ? json_integer(v_version) : NULL;
    bool ok = false;
    if (canon && recorded && version) {
        unsigned char d[SHA256_DIGEST_LENGTH];
        char hex[2 * SHA256_DIGEST_LENGTH + 1];
        SHA256((const unsigned char *)canon, strlen(canon), d);
        for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
        ok = json_array_append_new(t->rows, json_pack("[sOsOs]", recorded, version, hex, doc, canon)) == 0;
    }
    if (!ok) snprintf(errbuf, errlen, "cannot render a decision as a row (out of memory or a broken value)");
    free(canon);
    json_decref(version);
    json_decref(doc);
    json_decref(full);
    return ok;
}

static bool tpWrite(rpTarget *base, avro_value_t *v, char *errbuf, size_t errlen) {
    tpTarget *t = (tpTarget *)base;
    if (!tpRow(t, v, errbuf, errlen)) return false;
    return json_array_size(t->rows) < t->batch || tpSend(t, errbuf, errlen);
}

static bool tpFlush(rpTarget *base, char *errbuf, size_t errlen) {
    return tpSend((tpTarget *)base, errbuf, errlen);
}

static void tpDestroy(rpTarget *base) {
    tpTarget *t = (tpTarget *)base;
    if (t->conn) PQfinish(t->conn);
    json_decref(t->rows);
    free(t->conninfo);
    free(t);
}

static const rpTargetOps tpOps = {"postgres", tpWrite, tpFlush, tpDestroy};

rpTarget *rpPgTargetNew(dsCodec *codec, const char *conninfo, size_t batch, char *errbuf, size_t errlen) {
    tpTarget *t = calloc(1, sizeof(*t));
    if (t == NULL) return snprintf(errbuf, errlen, "out of memory"), NULL;
    t->base.ops = &tpOps;
    t->codec = codec;
    t->batch = batch ? batch : 1;
    t->rows = json_array();
    t->conninfo = strdup(conninfo);
    if (t->rows == NULL || t->conninfo == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        goto failed;
    }
    if (!tpConnect(t, errbuf, errlen)) goto failed;
    return &t->base;

failed:
    tpDestroy(&t->base);
    return NULL;
}
