/* fuzz_wire.c - a Kafka record value decoded as the consumers do: into the
 * current version (the variable store) and into the writer's own version
 * (the archiver). A record that decodes and keeps every rule (what the
 * consumers take) must encode again, decode to an equal value, and render
 * as JSON. */
#include <jansson.h>

#include "ds/codec.h"
#include "fuzz.h"

#define MAX_VERSIONS 16

static dsCodec *codec;
static avro_value_t current, copy, writer[MAX_VERSIONS + 1];

/* Everything released at exit, so the leak check sees only real leaks. */
static void teardown(void) {
    avro_value_decref(&current);
    avro_value_decref(&copy);
    for (int v = 0; v <= MAX_VERSIONS; v++)
        if (writer[v].iface) avro_value_decref(&writer[v]);
    dsCodecFree(codec);
}

static void setup(void) {
    char err[256];
    FUZZ_SETUP((codec = dsCodecNew(err, sizeof(err))) != NULL, "dsCodecNew: %s", err);
    FUZZ_SETUP(dsCodecNewValue(codec, &current) && dsCodecNewValue(codec, &copy), "dsCodecNewValue");
    int last = dsCodecCurrentVersion(codec);
    FUZZ_SETUP(last <= MAX_VERSIONS, "%d versions", last);
    for (int v = 1; v <= last; v++)
        if (dsCodecSchemaId(codec, v) >= 0)
            FUZZ_SETUP(dsCodecNewVersionValue(codec, v, &writer[v]), "dsCodecNewVersionValue(%d)", v);
    atexit(teardown);
}

/* A decoded value encodes and decodes back to itself, and renders. */
static void roundTrip(avro_value_t *v, avro_value_t *back) {
    char err[512];
    uint8_t buf[1 << 16];
    size_t n = dsCodecEncodeWire(codec, v, buf, sizeof(buf), err, sizeof(err));
    FUZZ_CHECK(n > 0, "a decoded record does not encode: %s", err);
    if (n > sizeof(buf)) return; /* only inputs near the fuzzer's size limit */
    FUZZ_CHECK(dsCodecDecodeWire(codec, buf, n, back, NULL, err, sizeof(err)), "re-encoded record: %s", err);
    FUZZ_CHECK(avro_value_equal(v, back), "re-encoded record decodes to another value");
    /* What replay and the API serve: a record consumers took must render. */
    json_t *doc = dsCodecToJson(codec, v, 0);
    FUZZ_CHECK(doc != NULL, "a decoded record does not render as JSON");
    json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FUZZ_ENTRY;
    if (codec == NULL) setup();
    char err[512], why[512] = "";
    int version = -1;
    int id = dsCodecWireId(data, size);
    if (dsCodecDecodeWire(codec, data, size, &current, &version, why, sizeof(why))) {
        FUZZ_CHECK(id >= 0 && dsCodecVersionOfId(codec, id) == version, "id %d decoded as version %d", id, version);
        /* Consumers take only a record that keeps every rule (a NaN, a
         * date past 9999, bytes that are not UTF-8 are refused there). */
        dsCodecError e;
        if (dsCodecValidate(codec, &current, &e)) roundTrip(&current, &copy);
    }
    int v = id >= 0 ? dsCodecVersionOfId(codec, id) : -1;
    if (v >= 1 && v <= MAX_VERSIONS && writer[v].iface &&
        dsCodecDecodeWire(codec, data, size, &writer[v], NULL, err, sizeof(err)))
        FUZZ_CHECK(version == v, "decodes into its writer's version %d but not into the current one: %s", v, why);
    return 0;
}
