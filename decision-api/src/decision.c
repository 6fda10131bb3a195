/* decision.c - posted document -> write item, stored row -> served document. */
#include "decision.h"

#include <ctype.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/timefmt.h"

static void decisionError(dsCodecError *err, const char *code, const char *field, const char *message) {
    snprintf(err->code, sizeof(err->code), "%s", code);
    snprintf(err->field, sizeof(err->field), "%s", field);
    snprintf(err->message, sizeof(err->message), "%s", message);
}

json_t *apiDecisionParseBody(const char *body, size_t len, dsCodecError *err) {
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        char msg[sizeof(err->message)];
        snprintf(msg, sizeof(msg), "malformed JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        decisionError(err, "malformed_json", "", msg);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        decisionError(err, "malformed_json", "", "the request body must be a JSON object");
        return NULL;
    }
    return doc;
}

static const char *decisionField(const json_t *canon, const char *name) {
    return json_string_value(json_object_get(canon, name));
}

bool apiDecisionValuesNew(apiServer *s, char *errbuf, size_t errlen) {
    int current = dsCodecCurrentVersion(s->codec);
    if ((s->older = calloc((size_t)current, sizeof(*s->older))) == NULL) goto failed;
    if (!dsCodecNewValue(s->codec, &s->scratch)) goto failed;
    if (!dsCodecNewValue(s->codec, &s->again)) goto failed;
    /* A version missing from the manifest keeps a value without an iface. */
    for (int v = 1; v < current; v++)
        if (dsCodecSchemaId(s->codec, v) >= 0 && !dsCodecNewVersionValue(s->codec, v, &s->older[v - 1])) goto failed;
    return true;

failed:
    snprintf(errbuf, errlen, "cannot create the Avro values: out of memory");
    return false;
}

void apiDecisionValuesFree(apiServer *s) {
    if (s->older == NULL) return;
    /* Values never created have a NULL iface; avro_value_decref() would
     * dereference it. */
    if (s->scratch.iface) avro_value_decref(&s->scratch);
    if (s->again.iface) avro_value_decref(&s->again);
    for (int v = 1; v < dsCodecCurrentVersion(s->codec); v++)
        if (s->older[v - 1].iface) avro_value_decref(&s->older[v - 1]);
    free(s->older);
    s->older = NULL;
}

static void decisionHex(const char *text, char out[2 * SHA256_DIGEST_LENGTH + 1]) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, strlen(text), digest);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

/* The hex hash of the decision in s->scratch as an API whose current version
 * was v would have stored it: its canonical text under v, when v holds the
 * decision unchanged (every newer field at its default: down to v and back
 * up gives the same value). false when it does not. */
static bool decisionOlderHash(apiServer *s, int v, char out[2 * SHA256_DIGEST_LENGTH + 1]) {
    char why[256];
    avro_value_t *down = &s->older[v - 1];
    if (down->iface == NULL || !dsCodecResolve(s->codec, &s->scratch, down, why, sizeof(why)) ||
        !dsCodecResolve(s->codec, down, &s->again, why, sizeof(why)) || !avro_value_equal(&s->scratch, &s->again))
        return false;
    json_t *doc = dsCodecToJson(s->codec, down, DS_CODEC_OMIT_SERVER_FIELDS);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) return false;
    decisionHex(text, out);
    free(text);
    return true;
}

bool apiDecisionSameAsStored(void *server, const apiWriteItem *item, int stored_version, const char *stored_sha256) {
    apiServer *s = server;
    dsCodecError cerr;
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    if (stored_version < 1 || stored_version >= dsCodecCurrentVersion(s->codec)) return false;
    /* item->doc is the canonical current-version document: it validates. */
    return dsCodecFromJson(s->codec, item->doc, &s->scratch, &cerr) && decisionOlderHash(s, stored_version, hex) &&
           strcmp(hex, stored_sha256) == 0;
}

/* Points the item's INSERT parameters into its own canonical document. */
static bool decisionFillParams(apiServer *s, apiWriteItem *item) {
    static const char *const direct[] = {"decision_id", "purchase_id", "customer_id", "merchant_id", "outcome",
                                         "decided_at"};
    for (size_t i = 0; i < sizeof(direct) / sizeof(direct[0]); i++)
        if ((item->params[i] = decisionField(item->doc, direct[i])) == NULL) return false;

    char *version = item->buf;
    int n = snprintf(version, 16, "%d", dsCodecCurrentVersion(s->codec));
    char *hash = item->buf + n + 1;
    hash[0] = '\\';
    hash[1] = 'x';
    decisionHex(item->doc_text, hash + 2);
    item->params[6] = version;
    item->params[7] = hash;
    item->params[8] = item->doc_text;
    return true;
}

apiWriteItem *apiDecisionPrepare(apiServer *s, const json_t *posted, dsCodecError *err) {
    if (!dsCodecFromJsonPosted(s->codec, posted, &s->scratch, dsTimeNowMs(), s->max_clock_skew_ms, err)) return NULL;
    apiWriteItem *item = apiWriteItemNew();
    if (item == NULL) goto failed;
    item->doc = dsCodecToJson(s->codec, &s->scratch, DS_CODEC_OMIT_SERVER_FIELDS);
    if (item->doc == NULL) goto failed;
    item->doc_text = json_dumps(item->doc, JSON_COMPACT);
    if (item->doc_text == NULL || !decisionFillParams(s, item)) goto failed;
    return item;

failed:
    apiWriteItemFree(item);
    decisionError(err, "internal", "", "cannot prepare the decision (out of memory)");
    return NULL;
}

json_t *apiDecisionServed(apiServer *s, const apiWriteItem *item) {
    json_t *doc = json_deep_copy(item->doc);
    if (doc == NULL) return NULL;
    char ts[DS_TIME_BUFLEN];
    if (!dsTimeFormat(item->recorded_at_ms, ts)) ts[0] = '\0';
    /* The server-set fields come last in the schema, so appending keeps
     * the schema's field order. */
    json_object_set_new(doc, "recorded_at", json_string(ts));
    json_object_set_new(doc, "schema_version", json_integer(dsCodecCurrentVersion(s->codec)));
    return doc;
}

json_t *apiDecisionFromRow(apiServer *s, const char *doc_text, int64_t recorded_at_ms, char *errbuf,
                           size_t errlen) {
    json_error_t jerr;
    json_t *stored = json_loads(doc_text, 0, &jerr);
    if (stored == NULL) {
        snprintf(errbuf, errlen, "stored document is not JSON: %s", jerr.text);
        return NULL;
    }
    dsCodecError cerr;
    bool ok = dsCodecFromJson(s->codec, stored, &s->scratch, &cerr);
    json_decref(stored);
    if (!ok) {
        snprintf(errbuf, errlen, "stored document does not validate: %s", cerr.message);
        return NULL;
    }
    if (!dsCodecSetServerFields(s->codec, &s->scratch, recorded_at_ms, dsCodecCurrentVersion(s->codec))) {
        snprintf(errbuf, errlen, "cannot set the server fields");
        return NULL;
    }
    json_t *doc = dsCodecToJson(s->codec, &s->scratch, 0);
    if (doc == NULL) snprintf(errbuf, errlen, "cannot render the stored document");
    return doc;
}

bool apiDecisionNormalizeId(const char *id, size_t len, char out[37]) {
    if (len != 36) return false;
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? id[i] != '-' : !isxdigit((unsigned char)id[i])) return false;
        out[i] = (char)tolower((unsigned char)id[i]);
    }
    out[36] = '\0';
    return true;
}
