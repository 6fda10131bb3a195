/* test_pgoutput.c - the pgoutput and CopyData parser (stream-processor/src/
 * pgoutput.c) against streams recorded from PostgreSQL 15 (see
 * pgoutput_fixtures.h), plus hand-made malformed input: every truncation,
 * bad lengths, unknown types and relids, column count mismatches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pgoutput.h"
#include "pgoutput_fixtures.h"

#define NREC (sizeof(pgoRec) / sizeof(pgoRec[0]))
#define NALL (sizeof(pgoAll) / sizeof(pgoAll[0]))

typedef struct {
    spRelCache *cache;
    spMsg msg;
    char err[256];
} fx;

static int setup(void **state) {
    fx *f = calloc(1, sizeof(*f));
    if (f == NULL || (f->cache = spRelCacheNew()) == NULL) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    spMsgFree(&f->msg);
    spRelCacheFree(f->cache);
    free(f);
    return 0;
}

/* The pgoutput message inside a recorded XLogData payload. */
static const uint8_t *body(const uint8_t *payload, size_t len, size_t *blen) {
    spCopyData cd;
    char err[128];
    assert_true(spCopyDataParse(payload, len, &cd, err, sizeof(err)));
    assert_int_equal(cd.kind, SP_COPY_XLOGDATA);
    *blen = cd.len;
    return cd.data;
}

/* Parses recorded payload i of a stream; it must be XLogData and parse. */
static void feed(fx *f, const uint8_t *payload, size_t len) {
    size_t blen;
    const uint8_t *b = body(payload, len, &blen);
    if (!spPgoutputParse(f->cache, b, blen, &f->msg, f->err, sizeof(f->err))) fail_msg("%s", f->err);
}

/* Parses msg from a heap copy of exactly len bytes, so ASan sees any read
 * past the end. */
static bool parseExact(fx *f, const uint8_t *msg, size_t len) {
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, msg, len);
    f->err[0] = 0;
    bool ok = spPgoutputParse(f->cache, copy, len, &f->msg, f->err, sizeof(f->err));
    free(copy);
    return ok;
}

static void assertValue(const spRelation *rel, const spTuple *t, const char *col, const char *text) {
    const spValue *v = spTupleGet(rel, t, col);
    assert_non_null(v);
    if (text == NULL) {
        assert_int_equal(v->kind, SP_VAL_NULL);
        assert_null(v->data);
        return;
    }
    assert_int_equal(v->kind, SP_VAL_TEXT);
    assert_int_equal(v->len, strlen(text));
    assert_memory_equal(v->data, text, v->len);
}

static void assertErr(fx *f, const char *needle) {
    if (strstr(f->err, needle) == NULL) fail_msg("error \"%s\" does not contain \"%s\"", f->err, needle);
}

/* The decisions stream, in order: the transaction with the first insert. */
static void test_stream_in_order(void **state) {
    fx *f = *state;
    static const char want[] = "BRICBRIICBMCM";
    char got[32] = "";
    size_t ng = 0;
    uint64_t begin_final = 0, commit_wal_start = 0;
    for (size_t i = 0; i < NREC; i++) {
        spCopyData cd;
        assert_true(spCopyDataParse(pgoRec[i].buf, pgoRec[i].len, &cd, f->err, sizeof(f->err)));
        if (cd.kind == SP_COPY_KEEPALIVE) continue;
        assert_true(spPgoutputParse(f->cache, cd.data, cd.len, &f->msg, f->err, sizeof(f->err)));
        got[ng++] = (char)f->msg.type;
        if (ng == 1) begin_final = f->msg.u.begin.final_lsn;
        if (ng == 4) {
            commit_wal_start = cd.wal_start;
            assert_int_equal(f->msg.u.commit.commit_lsn, begin_final);
            assert_int_equal(f->msg.u.commit.end_lsn, commit_wal_start);
            assert_true(f->msg.u.commit.end_lsn > f->msg.u.commit.commit_lsn);
        }
    }
    assert_string_equal(got, want);
    assert_int_equal(spRelCacheCount(f->cache), 1);
}

static void test_first_transaction(void **state) {
    fx *f = *state;
    feed(f, pgoRec2, sizeof(pgoRec2));
    assert_int_equal(f->msg.type, SP_MSG_BEGIN);
    assert_int_equal(f->msg.u.begin.xid, 732);
    uint64_t final_lsn = f->msg.u.begin.final_lsn;
    int64_t ts = f->msg.u.begin.commit_time;
    assert_true(ts > 0);

    feed(f, pgoRec3, sizeof(pgoRec3));
    assert_int_equal(f->msg.type, SP_MSG_RELATION);
    const spRelation *rel = f->msg.u.relation;
    assert_ptr_equal(rel, spRelCacheGet(f->cache, rel->relid));
    assert_string_equal(rel->nspname, "public");
    assert_string_equal(rel->relname, "decisions");
    assert_int_equal(rel->replident, 'd');
    assert_int_equal(rel->ncols, 10);
    assert_string_equal(rel->cols[0].name, "decision_id");
    assert_int_equal(rel->cols[0].flags, 1);
    assert_int_equal(rel->cols[0].type_oid, 2950); /* uuid */
    assert_int_equal(rel->cols[0].typmod, -1);
    assert_int_equal(rel->cols[1].flags, 0);
    assert_int_equal(spRelationColumn(rel, "decided_at"), 5);
    assert_int_equal(rel->cols[5].type_oid, 1184); /* timestamptz */
    assert_int_equal(spRelationColumn(rel, "note"), -1);

    feed(f, pgoRec4, sizeof(pgoRec4));
    assert_int_equal(f->msg.type, SP_MSG_INSERT);
    assert_ptr_equal(f->msg.u.change.rel, rel);
    const spTuple *t = &f->msg.u.change.newtup;
    assert_int_equal(t->ncols, 10);
    assertValue(rel, t, "decision_id", "7d3f0c1e-5b7a-4c2e-9a51-0e4a1c9b2d11");
    assertValue(rel, t, "purchase_id", "p-1");
    assertValue(rel, t, "customer_id", "cust-42");
    assertValue(rel, t, "merchant_id", "m-7");
    assertValue(rel, t, "outcome", "APPROVED");
    assertValue(rel, t, "decided_at", "2026-11-24 10:00:00.25+00");
    assertValue(rel, t, "schema_version", "1");
    assertValue(rel, t, "doc_sha256", "\\x0102");
    assertValue(rel, t, "doc", "{\"outcome\": \"APPROVED\"}");
    assert_null(spTupleGet(rel, t, "nope"));
    /* Zero copy: values point into the input. */
    size_t blen;
    const uint8_t *b = body(pgoRec4, sizeof(pgoRec4), &blen);
    assert_true(t->values[0].data > b && t->values[0].data < b + blen);

    size_t clen;
    const uint8_t *cb = body(pgoRec5, sizeof(pgoRec5), &clen);
    spCopyData cd;
    assert_true(spCopyDataParse(pgoRec5, sizeof(pgoRec5), &cd, f->err, sizeof(f->err)));
    assert_true(spPgoutputParse(f->cache, cb, clen, &f->msg, f->err, sizeof(f->err)));
    assert_int_equal(f->msg.type, SP_MSG_COMMIT);
    assert_int_equal(f->msg.u.commit.flags, 0);
    assert_int_equal(f->msg.u.commit.commit_lsn, final_lsn);
    assert_int_equal(f->msg.u.commit.end_lsn, cd.wal_start);
    assert_int_equal(f->msg.u.commit.commit_time, ts);
}

/* ALTER TABLE ADD COLUMN: a second Relation replaces the entry; then a NULL
 * note and a set one. */
static void test_relation_replacement_and_null(void **state) {
    fx *f = *state;
    feed(f, pgoRec3, sizeof(pgoRec3));
    uint32_t relid = f->msg.u.relation->relid;
    feed(f, pgoRec12, sizeof(pgoRec12));
    const spRelation *rel = f->msg.u.relation;
    assert_int_equal(rel->relid, relid);
    assert_int_equal(spRelCacheCount(f->cache), 1);
    assert_ptr_equal(spRelCacheGet(f->cache, relid), rel);
    assert_int_equal(rel->ncols, 11);
    assert_int_equal(spRelationColumn(rel, "note"), 10);
    assert_int_equal(rel->cols[10].type_oid, 25); /* text */

    feed(f, pgoRec13, sizeof(pgoRec13));
    assertValue(rel, &f->msg.u.change.newtup, "purchase_id", "p-2");
    assertValue(rel, &f->msg.u.change.newtup, "note", NULL);
    feed(f, pgoRec14, sizeof(pgoRec14));
    assertValue(rel, &f->msg.u.change.newtup, "purchase_id", "p-3");
    assertValue(rel, &f->msg.u.change.newtup, "note", "manual review");
}

/* The old 10-column Insert against the 11-column relation. */
static void test_column_count_mismatch(void **state) {
    fx *f = *state;
    feed(f, pgoRec12, sizeof(pgoRec12));
    size_t blen;
    const uint8_t *b = body(pgoRec4, sizeof(pgoRec4), &blen);
    assert_false(parseExact(f, b, blen));
    assertErr(f, "Insert: new tuple has 10 columns, relation public.decisions");
    assertErr(f, "has 11");
}

static void test_logical_messages(void **state) {
    fx *f = *state;
    feed(f, pgoRec19, sizeof(pgoRec19));
    assert_int_equal(f->msg.type, SP_MSG_MESSAGE);
    assert_int_equal(f->msg.u.message.flags, 1);
    assert_string_equal(f->msg.u.message.prefix, "ds-test");
    assert_int_equal(f->msg.u.message.len, 5);
    assert_memory_equal(f->msg.u.message.content, "hello", 5);
    assert_true(f->msg.u.message.lsn > 0);
    feed(f, pgoRec23, sizeof(pgoRec23));
    assert_int_equal(f->msg.u.message.flags, 0);
    assert_int_equal(f->msg.u.message.len, strlen("non-transactional"));
    assert_memory_equal(f->msg.u.message.content, "non-transactional", f->msg.u.message.len);
}

/* The notes stream: a toasted insert, updates with an unchanged TOAST value
 * and a key change, a delete and a truncate. */
static void test_other_changes(void **state) {
    fx *f = *state;
    feed(f, pgoAll3, sizeof(pgoAll3));
    const spRelation *rel = f->msg.u.relation;
    uint32_t relid = rel->relid;
    assert_string_equal(rel->relname, "notes");
    assert_int_equal(rel->ncols, 3);

    feed(f, pgoAll9, sizeof(pgoAll9));
    const spValue *body_v = spTupleGet(rel, &f->msg.u.change.newtup, "body");
    assert_int_equal(body_v->kind, SP_VAL_TEXT);
    assert_int_equal(body_v->len, 10000);
    assert_memory_equal(body_v->data, "abcdefghij", 10);

    feed(f, pgoAll31, sizeof(pgoAll31));
    assert_int_equal(f->msg.type, SP_MSG_UPDATE);
    assert_int_equal(f->msg.u.change.old_kind, 0);
    assert_int_equal(f->msg.u.change.oldtup.ncols, 0);
    assertValue(rel, &f->msg.u.change.newtup, "id", "2");
    assert_int_equal(spTupleGet(rel, &f->msg.u.change.newtup, "body")->kind, SP_VAL_UNCHANGED);
    assertValue(rel, &f->msg.u.change.newtup, "n", "2");

    feed(f, pgoAll36, sizeof(pgoAll36));
    assert_int_equal(f->msg.u.change.old_kind, 'K');
    assertValue(rel, &f->msg.u.change.oldtup, "id", "1");
    assertValue(rel, &f->msg.u.change.oldtup, "body", NULL);
    assertValue(rel, &f->msg.u.change.newtup, "id", "101");
    assertValue(rel, &f->msg.u.change.newtup, "body", "same transaction");

    feed(f, pgoAll41, sizeof(pgoAll41));
    assert_int_equal(f->msg.type, SP_MSG_DELETE);
    assert_int_equal(f->msg.u.change.old_kind, 'K');
    assertValue(rel, &f->msg.u.change.oldtup, "id", "3");
    assert_int_equal(f->msg.u.change.newtup.ncols, 0);

    feed(f, pgoAll46, sizeof(pgoAll46)); /* Relation sent again before the truncate */
    feed(f, pgoAll47, sizeof(pgoAll47));
    assert_int_equal(f->msg.type, SP_MSG_TRUNCATE);
    assert_int_equal(f->msg.u.truncate.options, 0);
    assert_int_equal(f->msg.u.truncate.nrelids, 1);
    assert_int_equal(f->msg.u.truncate.relids[0], relid);
}

static void test_whole_notes_stream(void **state) {
    fx *f = *state;
    for (size_t i = 0; i < NALL; i++) {
        spCopyData cd;
        assert_true(spCopyDataParse(pgoAll[i].buf, pgoAll[i].len, &cd, f->err, sizeof(f->err)));
        if (cd.kind == SP_COPY_XLOGDATA && !spPgoutputParse(f->cache, cd.data, cd.len, &f->msg, f->err, sizeof(f->err)))
            fail_msg("payload %zu: %s", i, f->err);
    }
}

static void test_keepalive(void **state) {
    fx *f = *state;
    spCopyData cd;
    assert_true(spCopyDataParse(pgoRec0, sizeof(pgoRec0), &cd, f->err, sizeof(f->err)));
    assert_int_equal(cd.kind, SP_COPY_KEEPALIVE);
    assert_int_equal(cd.wal_end, 0x192DCF8);
    assert_int_equal(cd.send_time, 0x00030407adc18f31);
    assert_false(cd.reply_requested);
    assert_null(cd.data);

    uint8_t k[18];
    memcpy(k, pgoRec0, sizeof(k));
    k[17] = 1;
    assert_true(spCopyDataParse(k, sizeof(k), &cd, f->err, sizeof(f->err)));
    assert_true(cd.reply_requested);
    for (size_t n = 0; n < sizeof(k); n++) {
        f->err[0] = 0;
        assert_false(spCopyDataParse(k, n, &cd, f->err, sizeof(f->err)));
        assert_true(f->err[0] != 0);
    }
    assertErr(f, "keepalive: truncated");
    uint8_t longer[19] = {0};
    memcpy(longer, k, sizeof(k));
    assert_false(spCopyDataParse(longer, sizeof(longer), &cd, f->err, sizeof(f->err)));
    assertErr(f, "keepalive: 1 trailing bytes");
    uint8_t odd[] = {'x', 0};
    assert_false(spCopyDataParse(odd, sizeof(odd), &cd, f->err, sizeof(f->err)));
    assertErr(f, "CopyData: unknown kind 0x78");
}

static void test_xlogdata_header(void **state) {
    fx *f = *state;
    spCopyData cd;
    assert_true(spCopyDataParse(pgoRec4, sizeof(pgoRec4), &cd, f->err, sizeof(f->err)));
    assert_int_equal(cd.wal_start, 0x192DCF8);
    assert_int_equal(cd.wal_end, 0x192DCF8);
    assert_int_equal(cd.len, sizeof(pgoRec4) - 25);
    assert_ptr_equal(cd.data, pgoRec4 + 25);
    for (size_t n = 0; n < 25; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, pgoRec4, n);
        f->err[0] = 0;
        assert_false(spCopyDataParse(copy, n, &cd, f->err, sizeof(f->err)));
        assert_true(f->err[0] != 0);
        free(copy);
    }
    assertErr(f, "XLogData: truncated at offset 17 reading sendTime");
}

static void test_standby_status(void **state) {
    uint8_t out[40];
    memset(out, 0xee, sizeof(out));
    static const uint8_t want[SP_STANDBY_STATUS_LEN] = {
        'r',  0x00, 0x00, 0x00, 0x1a, 0x00, 0x00, 0x00, 0x01, /* write 1A/1 */
        0x00, 0x00, 0x00, 0x00, 0x01, 0x6b, 0x37, 0x48,       /* flush 0/16B3748 */
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,       /* apply */
        0x00, 0x03, 0x04, 0x07, 0xad, 0xc1, 0x8f, 0x31,       /* clock */
        0x01,
    };
    size_t n = spStandbyStatusBuild(out, sizeof(out), 0x1A00000001ull, 0x16B3748, 0x0102030405060708ull,
                                    0x00030407adc18f31, true);
    assert_int_equal(n, SP_STANDBY_STATUS_LEN);
    assert_memory_equal(out, want, sizeof(want));
    assert_int_equal(out[SP_STANDBY_STATUS_LEN], 0xee);
    assert_int_equal(spStandbyStatusBuild(out, SP_STANDBY_STATUS_LEN - 1, 1, 1, 1, 0, false), 0);
    assert_int_equal(spStandbyStatusBuild(out, SP_STANDBY_STATUS_LEN, 1, 1, 1, -1, false), SP_STANDBY_STATUS_LEN);
    assert_int_equal(out[33], 0);
    assert_int_equal(out[25], 0xff);
}

static void test_lsn(void **state) {
    static const char *good[] = {"0/16B3748", "1A/0", "0/0", "FFFFFFFF/FFFFFFFF", "16/B374D848"};
    char buf[24];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint64_t lsn;
        assert_true(spLsnParse(good[i], &lsn));
        assert_string_equal(spLsnFormat(lsn, buf), good[i]);
    }
    uint64_t lsn = 7;
    assert_true(spLsnParse("0/16B3748", &lsn));
    assert_int_equal(lsn, 0x16B3748);
    assert_true(spLsnParse("1a/0", &lsn));
    assert_int_equal(lsn, 0x1A00000000ull);
    assert_string_equal(spLsnFormat(0x1A00000000ull, buf), "1A/0");
    static const char *bad[] = {"", "/", "0/", "/0", "0", "0/0/0", "100000000/0", "0/100000000", " 0/0", "0/0 ",
                                "-1/0", "+1/0", "g/0", "0x1/0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lsn = 7;
        if (spLsnParse(bad[i], &lsn)) fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(lsn, 7);
    }
    assert_false(spLsnParse(NULL, &lsn));
}

/* Every proper prefix of a recorded Insert fails with a message. */
static void test_insert_truncations(void **state) {
    fx *f = *state;
    feed(f, pgoRec12, sizeof(pgoRec12));
    size_t blen;
    const uint8_t *b = body(pgoRec14, sizeof(pgoRec14), &blen);
    assert_true(parseExact(f, b, blen));
    for (size_t n = 0; n < blen; n++) {
        if (parseExact(f, b, n)) fail_msg("prefix of %zu bytes accepted", n);
        if (n > 0 && strncmp(f->err, "Insert: ", 8) != 0) fail_msg("prefix %zu: \"%s\"", n, f->err);
        if (n == 0) assertErr(f, "empty message");
    }
    /* The last prefix cuts the note value short. */
    assertErr(f, "tuple column 10 (note) length 13 exceeds message (12 bytes left)");
}

/* Every proper prefix of a Relation fails and leaves the cache alone. */
static void test_relation_truncations(void **state) {
    fx *f = *state;
    feed(f, pgoRec3, sizeof(pgoRec3));
    const spRelation *before = f->msg.u.relation;
    size_t blen;
    const uint8_t *b = body(pgoRec12, sizeof(pgoRec12), &blen);
    for (size_t n = 1; n < blen; n++) {
        if (parseExact(f, b, n)) fail_msg("prefix of %zu bytes accepted", n);
        if (strncmp(f->err, "Relation: ", 10) != 0) fail_msg("prefix %zu: \"%s\"", n, f->err);
        assert_ptr_equal(spRelCacheGet(f->cache, before->relid), before);
        assert_int_equal(before->ncols, 10);
    }
}

/* The other recorded messages, cut at every point, also fail cleanly. */
static void test_other_truncations(void **state) {
    fx *f = *state;
    feed(f, pgoAll3, sizeof(pgoAll3));
    static const struct {
        const uint8_t *buf;
        size_t len;
    } msgs[] = {{pgoRec2, sizeof(pgoRec2)},   {pgoRec5, sizeof(pgoRec5)},   {pgoRec19, sizeof(pgoRec19)},
                {pgoAll31, sizeof(pgoAll31)}, {pgoAll36, sizeof(pgoAll36)}, {pgoAll41, sizeof(pgoAll41)},
                {pgoAll47, sizeof(pgoAll47)}};
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        size_t blen;
        const uint8_t *b = body(msgs[i].buf, msgs[i].len, &blen);
        assert_true(parseExact(f, b, blen));
        const char *name = spMsgTypeName(b[0]);
        for (size_t n = 1; n < blen; n++) {
            if (parseExact(f, b, n)) fail_msg("%s: prefix of %zu bytes accepted", name, n);
            if (strncmp(f->err, name, strlen(name)) != 0) fail_msg("%s prefix %zu: \"%s\"", name, n, f->err);
        }
    }
}

static void test_malformed(void **state) {
    fx *f = *state;
    feed(f, pgoRec3, sizeof(pgoRec3));
    uint32_t relid = f->msg.u.relation->relid;
    size_t blen;
    const uint8_t *b = body(pgoRec4, sizeof(pgoRec4), &blen);
    uint8_t m[512];
    assert_true(blen <= sizeof(m));

    /* Unknown message type. */
    uint8_t z[] = {'Z', 0, 0};
    assert_false(parseExact(f, z, sizeof(z)));
    assert_string_equal(f->err, "pgoutput: unknown message type 0x5a");

    /* A tuple referencing an unknown relid. */
    memcpy(m, b, blen);
    m[4] ^= 0x40;
    assert_false(parseExact(f, m, blen));
    char want[128];
    snprintf(want, sizeof(want), "Insert: unknown relid %u", relid ^ 0x40);
    assertErr(f, want);

    /* A column length far beyond the message: column 3 is merchant_id, at
     * 1 + 4 + 1 + 2 + (1+4+36) + (1+4+3) + (1+4+7) = 69. */
    memcpy(m, b, blen);
    assert_int_equal(m[69], 't');
    m[70] = 0x00, m[71] = 0x01, m[72] = 0x11, m[73] = 0x70; /* 70000 */
    assert_false(parseExact(f, m, blen));
    assertErr(f, "Insert: tuple column 3 (merchant_id) length 70000 exceeds message");

    /* An unknown value kind, a wrong tuple tag, trailing bytes. */
    memcpy(m, b, blen);
    m[69] = 'x';
    assert_false(parseExact(f, m, blen));
    assertErr(f, "Insert: new tuple column 3 (merchant_id) has unknown kind 0x78");
    memcpy(m, b, blen);
    m[5] = 'K';
    assert_false(parseExact(f, m, blen));
    assertErr(f, "Insert: tuple tag 0x4b, expected 'N'");
    memcpy(m, b, blen);
    m[blen] = 0;
    assert_false(parseExact(f, m, blen + 1));
    assertErr(f, "Insert: 1 trailing bytes");

    /* A Relation whose column count cannot fit, and an unterminated name. */
    static const uint8_t rel_huge[] = {'R', 0, 0, 0, 9, 'p', 0, 't', 0, 'd', 0xff, 0xff, 1, 'a', 0};
    assert_false(parseExact(f, rel_huge, sizeof(rel_huge)));
    assertErr(f, "Relation: column count 65535 exceeds message");
    static const uint8_t rel_unterm[] = {'R', 0, 0, 0, 9, 'p', 'x'};
    assert_false(parseExact(f, rel_unterm, sizeof(rel_unterm)));
    assertErr(f, "Relation: unterminated namespace");
    static const uint8_t trunc_huge[] = {'T', 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1};
    assert_false(parseExact(f, trunc_huge, sizeof(trunc_huge)));
    assertErr(f, "Truncate: relation count 2147483647 exceeds message");
    static const uint8_t msg_long[] = {'M', 1, 0, 0, 0, 0, 0, 0, 0, 1, 'p', 0, 0, 0, 0, 9, 'a'};
    assert_false(parseExact(f, msg_long, sizeof(msg_long)));
    assertErr(f, "Message: content length 9 exceeds message (1 bytes left)");
    static const uint8_t del_new[] = {'D', 0, 0, 0, 0, 'N'};
    uint8_t d[sizeof(del_new)];
    memcpy(d, del_new, sizeof(d));
    d[1] = (uint8_t)(relid >> 24), d[2] = (uint8_t)(relid >> 16), d[3] = (uint8_t)(relid >> 8), d[4] = (uint8_t)relid;
    assert_false(parseExact(f, d, sizeof(d)));
    assertErr(f, "Delete: tuple tag 0x4e, expected 'K' or 'O'");

    /* No errbuf: still false, no crash. */
    assert_false(spPgoutputParse(f->cache, z, sizeof(z), &f->msg, NULL, 0));
    assert_false(spPgoutputParse(f->cache, NULL, 0, &f->msg, f->err, sizeof(f->err)));
    /* A tiny errbuf is truncated, never overrun. */
    char tiny[4];
    assert_false(spPgoutputParse(f->cache, z, sizeof(z), &f->msg, tiny, sizeof(tiny)));
}

/* What an Insert may carry besides text, which the processor must name
 * rather than take for a value (record.h, spRowText): an unchanged TOAST
 * marker has no data, a binary value keeps its bytes, null has none. A
 * Relation for another table is cached like any. */
static void test_insert_value_kinds_kept(void **state) {
    fx *f = *state;
    static const uint8_t rel[] = {'R', 0, 0, 0, 7, 's', 'h', 0, 'd', 0, 'd',  0, 3,
                                  1,   'a', 0, 0, 0, 0, 25, 0xff, 0xff, 0xff, 0xff,
                                  0,   'b', 0, 0, 0, 0, 25, 0xff, 0xff, 0xff, 0xff,
                                  0,   'c', 0, 0, 0, 0, 25, 0xff, 0xff, 0xff, 0xff};
    assert_true(parseExact(f, rel, sizeof(rel)));
    assert_string_equal(f->msg.u.relation->nspname, "sh");
    assert_string_equal(f->msg.u.relation->relname, "d");
    static const uint8_t ins[] = {'I', 0, 0, 0, 7, 'N', 0, 3, 'u', 'b', 0, 0, 0, 2, 0xde, 0xad, 'n'};
    if (!parseExact(f, ins, sizeof(ins))) fail_msg("%s", f->err);
    const spRelation *r = f->msg.u.change.rel;
    const spTuple *t = &f->msg.u.change.newtup;
    const spValue *a = spTupleGet(r, t, "a"), *b = spTupleGet(r, t, "b"), *c = spTupleGet(r, t, "c");
    assert_int_equal(a->kind, SP_VAL_UNCHANGED);
    assert_null(a->data);
    assert_int_equal(a->len, 0);
    assert_int_equal(b->kind, SP_VAL_BINARY);
    assert_int_equal(b->len, 2);
    assert_int_equal(c->kind, SP_VAL_NULL);
    assert_null(spTupleGet(r, t, "doc"));
    /* a tuple of the wrong width for its relation is refused, named */
    static const uint8_t narrow[] = {'I', 0, 0, 0, 7, 'N', 0, 2, 'n', 'n'};
    assert_false(parseExact(f, narrow, sizeof(narrow)));
    assertErr(f, "new tuple has 2 columns, relation sh.d (relid 7) has 3");
}

/* Type and Origin are not in the recordings (no custom types, no origins):
 * hand-built per the protocol documentation. */
static void test_type_and_origin(void **state) {
    fx *f = *state;
    static const uint8_t ty[] = {'Y', 0, 0, 0x40, 0x10, 0, 'm', 'o', 'o', 'd', 0};
    /* Parsed in place: the names point into the input. */
    assert_true(spPgoutputParse(f->cache, ty, sizeof(ty), &f->msg, f->err, sizeof(f->err)));
    assert_int_equal(f->msg.type, SP_MSG_TYPE);
    assert_int_equal(f->msg.u.type.oid, 0x4010);
    assert_string_equal(f->msg.u.type.nspname, "pg_catalog");
    assert_string_equal(f->msg.u.type.name, "mood");
    static const uint8_t orig[] = {'O', 0, 0, 0, 0x1a, 0, 0, 0, 1, 'n', 'o', 'd', 'e', '1', 0};
    assert_true(spPgoutputParse(f->cache, orig, sizeof(orig), &f->msg, f->err, sizeof(f->err)));
    assert_int_equal(f->msg.u.origin.commit_lsn, 0x1A00000001ull);
    assert_string_equal(f->msg.u.origin.name, "node1");
    for (size_t n = 1; n < sizeof(orig); n++) {
        assert_false(parseExact(f, orig, n));
        assertErr(f, "Origin: ");
    }
}

/* Every byte of every recorded message set to a few values: whatever the
 * outcome, no read past the end (ASan) and a message on failure. */
static void test_byte_flips(void **state) {
    fx *f = *state;
    static const uint8_t vals[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 'n', 't'};
    for (int s = 0; s < 2; s++) {
        size_t n = s ? NALL : NREC;
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = s ? pgoAll[i].buf : pgoRec[i].buf;
            size_t plen = s ? pgoAll[i].len : pgoRec[i].len;
            if (p[0] != 'w' || plen > 1024) continue;
            size_t blen;
            const uint8_t *b = body(p, plen, &blen);
            uint8_t *m = malloc(blen);
            assert_non_null(m);
            for (size_t at = 0; at < blen; at++) {
                for (size_t v = 0; v < sizeof(vals); v++) {
                    memcpy(m, b, blen);
                    m[at] = vals[v];
                    f->err[0] = 0;
                    if (!spPgoutputParse(f->cache, m, blen, &f->msg, f->err, sizeof(f->err)))
                        assert_true(f->err[0] != 0);
                }
            }
            free(m);
            /* Keep the genuine relations in the cache for what follows. */
            if (b[0] == 'R') assert_true(spPgoutputParse(f->cache, b, blen, &f->msg, f->err, sizeof(f->err)));
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stream_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relation_replacement_and_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_column_count_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logical_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whole_notes_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xlogdata_header, setup, teardown),
        cmocka_unit_test(test_standby_status),
        cmocka_unit_test(test_lsn),
        cmocka_unit_test_setup_teardown(test_insert_truncations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relation_truncations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_truncations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_and_origin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_byte_flips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_value_kinds_kept, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
