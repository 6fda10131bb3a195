/* test_replication.c - the replication session against a real PostgreSQL:
 * slot and publication created when missing, inserts decoded from the
 * stream, the confirmed position persisted in the slot and used on restart,
 * and writes to other tables not holding the slot back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ds/pg.h"
#include "harness.h"
#include "pgoutput.h"
#include "record.h"
#include "replication.h"

static dtPg pg;
static uv_loop_t loop;

/* What the stream delivered so far. */
typedef struct seen {
    spRelCache *rels;
    int inserts;
    char last_id[64];
    char last_recorded[64]; /* recorded_at as the stream printed it */
    uint64_t last_commit_end;
    bool keepalive;
    bool down;
} seen;

static void onData(const uint8_t *buf, size_t len, void *arg) {
    seen *s = arg;
    spCopyData cd;
    char err[256];
    assert_true(spCopyDataParse(buf, len, &cd, err, sizeof(err)));
    if (cd.kind == SP_COPY_KEEPALIVE) {
        s->keepalive = true;
        return;
    }
    spMsg m = {0};
    assert_true(spPgoutputParse(s->rels, cd.data, cd.len, &m, err, sizeof(err)));
    if (m.type == 'I') {
        const spValue *v = spTupleGet(m.u.change.rel, &m.u.change.newtup, "decision_id");
        assert_non_null(v);
        snprintf(s->last_id, sizeof(s->last_id), "%.*s", (int)v->len, (const char *)v->data);
        v = spTupleGet(m.u.change.rel, &m.u.change.newtup, "recorded_at");
        assert_non_null(v);
        snprintf(s->last_recorded, sizeof(s->last_recorded), "%.*s", (int)v->len, (const char *)v->data);
        s->inserts++;
    } else if (m.type == 'C') {
        s->last_commit_end = m.u.commit.end_lsn;
    }
    spMsgFree(&m);
}

static void onDown(const char *reason, void *arg) {
    ((seen *)arg)->down = true;
}

static int setup(void **state) {
    if (!dtPgStart(&pg)) return -1;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "DECISIONS_DSN='%s' %s/bin/decision-api migrate --log-level warn", pg.conninfo,
             getenv("BUILD") ? getenv("BUILD") : "build");
    if (system(cmd) != 0) return -1;
    uv_loop_init(&loop);
    return dtPgExec(&pg, "CREATE TABLE other (id serial PRIMARY KEY, note text)") ? 0 : -1;
}

static int teardown(void **state) {
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    dtPgDestroy(&pg);
    return 0;
}

static const spReplConfig cfg = {NULL, "test_slot", "test_pub", "decisions"};

/* Runs the loop until cond holds or 10 s pass. */
static bool runUntil(bool (*cond)(seen *), seen *s) {
    time_t deadline = time(NULL) + 10;
    while (!cond(s) && !s->down && time(NULL) < deadline) uv_run(&loop, UV_RUN_NOWAIT), uv_sleep(5);
    return cond(s);
}

static bool gotInsert(seen *s) {
    return s->inserts > 0 && s->last_commit_end > 0;
}

static void insertDecision(const char *id) {
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "INSERT INTO decisions (decision_id, purchase_id, customer_id, merchant_id, outcome, decided_at,"
             " schema_version, doc_sha256, doc) VALUES ('%s', 'p', 'c', 'm', 'APPROVED', now(), 1, '\\x00', '{}')",
             id);
    assert_true(dtPgExec(&pg, sql));
}

static char *slotConfirmed(void) {
    return dtPgScalar(&pg, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'test_slot'");
}

static void test_stream_confirm_restart(void **state) {
    spReplConfig c = cfg;
    c.conninfo = pg.conninfo;
    seen s = {.rels = spRelCacheNew()};
    char err[512];
    uint64_t start;
    spRepl *r = spReplStart(&loop, &c, onData, onDown, &s, &start, err, sizeof(err));
    if (r == NULL) fprintf(stderr, "%s\n", err);
    assert_non_null(r);
    char id[37];
    dtUuid(id);
    insertDecision(id);
    assert_true(runUntil(gotInsert, &s));
    assert_string_equal(s.last_id, id);

    /* confirm the commit: the slot remembers it */
    assert_true(spReplSendStatus(r, s.last_commit_end, s.last_commit_end, false));
    char want[24];
    spLsnFormat(s.last_commit_end, want);
    char *got = NULL;
    for (time_t deadline = time(NULL) + 10; time(NULL) < deadline; uv_sleep(20)) {
        uv_run(&loop, UV_RUN_NOWAIT);
        free(got);
        got = slotConfirmed();
        if (got && strcmp(got, want) == 0) break;
    }
    assert_string_equal(got, want);
    free(got);
    spReplClose(r);

    /* restart: streaming resumes after the confirmed commit, not before */
    seen s2 = {.rels = spRelCacheNew()};
    uint64_t start2;
    r = spReplStart(&loop, &c, onData, onDown, &s2, &start2, err, sizeof(err));
    assert_non_null(r);
    assert_int_equal(start2, s.last_commit_end);
    char id2[37];
    dtUuid(id2);
    insertDecision(id2);
    assert_true(runUntil(gotInsert, &s2));
    assert_int_equal(s2.inserts, 1); /* the first decision is not sent again */
    assert_string_equal(s2.last_id, id2);
    spReplClose(r);
    spRelCacheFree(s.rels);
    spRelCacheFree(s2.rels);
}

/* A database whose default DateStyle and TimeZone print timestamps as
 * "24/11/2026 22:35:35.655123 NST": the stream still carries recorded_at in
 * ISO form, UTC, the instant the row holds. */
static void test_recorded_at_iso_whatever_the_database_default(void **state) {
    assert_true(dtPgSetDefault(&pg, "DateStyle", "SQL, DMY"));
    assert_true(dtPgSetDefault(&pg, "TimeZone", "America/St_Johns"));
    char *shown = dtPgScalar(&pg, "SELECT now()::text");
    assert_non_null(shown);
    assert_non_null(strchr(shown, '/')); /* the setting took: not ISO */
    free(shown);
    spReplConfig c = cfg;
    c.conninfo = pg.conninfo;
    c.slot = "iso_slot"; /* a fresh slot: nothing before this test's row */
    seen s = {.rels = spRelCacheNew()};
    char err[512], id[37], sql[256];
    uint64_t start;
    spRepl *r = spReplStart(&loop, &c, onData, onDown, &s, &start, err, sizeof(err));
    assert_non_null(r);
    dtUuid(id);
    insertDecision(id);
    assert_true(runUntil(gotInsert, &s));
    spReplClose(r);
    spRelCacheFree(s.rels);
    assert_true(dtPgSetDefault(&pg, "DateStyle", NULL) && dtPgSetDefault(&pg, "TimeZone", NULL));
    assert_string_equal(s.last_id, id);
    int64_t ms = 0;
    if (!spPgTimestampParse(s.last_recorded, &ms, err, sizeof(err))) fprintf(stderr, "%s\n", err);
    assert_true(spPgTimestampParse(s.last_recorded, &ms, err, sizeof(err)));
    assert_non_null(strstr(s.last_recorded, "+00"));
    snprintf(sql, sizeof(sql),
             "SELECT floor(extract(epoch FROM recorded_at) * 1000)::bigint FROM decisions WHERE decision_id = '%s'", id);
    char *want = dtPgScalar(&pg, sql);
    assert_non_null(want);
    assert_int_equal(ms, strtoll(want, NULL, 10));
    free(want);
}

/* The options every session connects with keep the connection's own
 * (or PGOPTIONS) and pin DateStyle and TimeZone after them, so they win. */
static void test_session_options(void **state) {
    unsetenv("PGOPTIONS");
    char *o = dsPgSessionOptions("dbname=x options='-c statement_timeout=5s'");
    assert_string_equal(o, "-c statement_timeout=5s -c DateStyle=ISO -c TimeZone=UTC");
    free(o);
    o = dsPgSessionOptions("postgresql:///x?options=-c%20work_mem%3D8MB");
    assert_string_equal(o, "-c work_mem=8MB -c DateStyle=ISO -c TimeZone=UTC");
    free(o);
    o = dsPgSessionOptions("decisions"); /* a bare database name */
    assert_string_equal(o, "-c DateStyle=ISO -c TimeZone=UTC");
    free(o);
    setenv("PGOPTIONS", "-c DateStyle=German", 1);
    o = dsPgSessionOptions("dbname=x");
    assert_string_equal(o, "-c DateStyle=German -c DateStyle=ISO -c TimeZone=UTC");
    free(o);
    unsetenv("PGOPTIONS");
}

static void test_refuses_bad_config(void **state) {
    spReplConfig c = cfg;
    c.conninfo = "host=127.0.0.1 port=1 dbname=x connect_timeout=2";
    seen s = {0};
    char err[512];
    uint64_t start;
    assert_null(spReplStart(&loop, &c, onData, onDown, &s, &start, err, sizeof(err)));
    spRelCacheFree(s.rels);
    assert_non_null(strstr(err, "replication connection"));
    c = cfg;
    c.conninfo = pg.conninfo;
    c.table = "nosuch";
    assert_null(spReplStart(&loop, &c, onData, onDown, &s, &start, err, sizeof(err)));
    assert_string_equal(err, "table nosuch does not exist");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_confirm_restart),
        cmocka_unit_test(test_recorded_at_iso_whatever_the_database_default),
        cmocka_unit_test(test_session_options),
        cmocka_unit_test(test_refuses_bad_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
