/* fuzz_codec.c - the JSON -> Avro codec as the API validates a posted
 * document (dsCodecFromJsonPosted, with a fixed clock so an input always
 * gives the same answer), with the canonical round trip every accepted document must
 * survive: canonical text -> parsed and validated again (as GET and search
 * read the stored text) -> the same text; and value -> wire record (as the
 * stream processor publishes it) -> decoded (as consumers read it) -> the
 * same text. Refused documents must name what is wrong in valid UTF-8. */
#include <jansson.h>
#include <string.h>

#include "ds/codec.h"
#include "fuzz.h"

/* The API's clock for the future-date rule: 2027-01-01T00:00:00Z. */
#define FUZZ_NOW_MS 1798761600000LL

static dsCodec *codec;
static avro_value_t first, again;

/* Everything released at exit, so the leak check sees only real leaks. */
static void teardown(void) {
    avro_value_decref(&first);
    avro_value_decref(&again);
    dsCodecFree(codec);
}

static void setup(void) {
    char err[256];
    FUZZ_SETUP((codec = dsCodecNew(err, sizeof(err))) != NULL, "dsCodecNew: %s", err);
    FUZZ_SETUP(dsCodecNewValue(codec, &first) && dsCodecNewValue(codec, &again), "dsCodecNewValue");
    atexit(teardown);
}

/* The canonical text of a value, as idempotency hashes and the API stores it. */
static char *canonical(avro_value_t *v) {
    json_t *doc = dsCodecToJson(codec, v, DS_CODEC_OMIT_SERVER_FIELDS);
    FUZZ_CHECK(doc != NULL, "a validated value does not render");
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    FUZZ_CHECK(text != NULL, "json_dumps");
    return text;
}

/* What the client is told of a refused document must be renderable. */
static void checkError(const dsCodecError *err) {
    json_t *probe = json_pack("{s:s, s:s, s:s}", "code", err->code, "field", err->field, "message", err->message);
    FUZZ_CHECK(probe != NULL, "the error is not valid UTF-8: code \"%s\" field \"%s\" message \"%s\"", err->code,
               err->field, err->message);
    json_decref(probe);
    FUZZ_CHECK(strcmp(err->code, "internal") != 0, "a client's document gave an internal error: %s", err->message);
}

/* Second pass: the stored canonical text, read back as GET and search do. */
static void checkStored(const char *text) {
    json_error_t jerr;
    dsCodecError err;
    json_t *doc = json_loads(text, 0, &jerr);
    FUZZ_CHECK(doc != NULL, "the canonical text does not parse back: %s: %s", jerr.text, text);
    bool ok = dsCodecFromJson(codec, doc, &again, &err);
    json_decref(doc);
    FUZZ_CHECK(ok, "the canonical text does not validate: %s %s: %s: %s", err.code, err.field, err.message, text);
    char *text2 = canonical(&again);
    FUZZ_CHECK(strcmp(text, text2) == 0, "stored text read back differs:\n  first:  %s\n  second: %s", text, text2);
    free(text2);
}

/* Third pass: the wire record the stream processor publishes, decoded. */
static void checkWire(const char *text) {
    char err[512];
    uint8_t small[4096], *buf = small;
    FUZZ_CHECK(dsCodecSetServerFields(codec, &first, 1764000000123, dsCodecCurrentVersion(codec)), "server fields");
    size_t n = dsCodecEncodeWire(codec, &first, buf, sizeof(small), err, sizeof(err));
    FUZZ_CHECK(n > 0, "an accepted document does not encode: %s", err);
    if (n > sizeof(small)) {
        FUZZ_SETUP((buf = malloc(n)) != NULL, "malloc");
        FUZZ_CHECK(dsCodecEncodeWire(codec, &first, buf, n, err, sizeof(err)) == n, "encode: %s", err);
    }
    bool ok = dsCodecDecodeWire(codec, buf, n, &again, NULL, err, sizeof(err));
    if (buf != small) free(buf);
    FUZZ_CHECK(ok, "an accepted document's wire record does not decode: %s: %s", err, text);
    char *text3 = canonical(&again);
    FUZZ_CHECK(strcmp(text, text3) == 0, "wire round trip differs:\n  first: %s\n  wire:  %s", text, text3);
    free(text3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FUZZ_ENTRY;
    if (codec == NULL) setup();
    json_error_t jerr;
    dsCodecError err;
    /* apiDecisionParseBody()'s parse: one object, duplicate keys refused. */
    json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) return 0;
    bool ok = json_is_object(doc) &&
              dsCodecFromJsonPosted(codec, doc, &first, FUZZ_NOW_MS, DS_CODEC_MAX_CLOCK_SKEW_MS, &err);
    if (json_is_object(doc) && !ok) checkError(&err);
    json_decref(doc);
    if (!ok) return 0;
    char *text = canonical(&first);
    checkStored(text);
    checkWire(text);
    free(text);
    return 0;
}
