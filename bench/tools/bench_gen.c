/* bench_gen.c - the input of bench/replay.sh: an archive of N decisions
 * (tests/support/archive_gen.h) and, for the kcat baseline, the same
 * decisions as already-encoded Kafka messages in one file: per message
 * <key> KEY_DELIM <value> MSG_DELIM, value in the Confluent wire format, for
 * kcat -K KEY_DELIM -D MSG_DELIM (kcat splits on multi-byte delimiters).
 * Binary Avro may hold any byte, so the delimiters are 8 bytes long and a
 * message holding one is an error, not a silent difference.
 *
 * usage: bench-gen ROOT N FIRST_MS STEP_MS KCAT_FILE
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive_gen.h"
#include "ds/codec.h"
#include "filereader.h"
#include "scan.h"

#define KEY_DELIM "\x1f\x1e\x1d\x1c\x1b\x1a\x19\x18"
#define MSG_DELIM "\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f"

static bool writeMessages(dsCodec *c, const char *root, FILE *out, long *written) {
    char err[1024];
    rpScanList l;
    avro_value_t v;
    if (!rpScanArchive(root, 0, INT64_MAX, NULL, NULL, &l, err, sizeof(err)) || !dsCodecNewValue(c, &v))
        return fprintf(stderr, "%s\n", err), rpScanListFree(&l), false;
    unsigned char buf[65536];
    bool ok = true;
    for (size_t i = 0; ok && i < l.n; i++) {
        rpFileReader *r = rpFileReaderOpen(c, l.files[i].path, err, sizeof(err));
        ok = r != NULL;
        while (ok && rpFileReaderNext(r, &v, err, sizeof(err)) == 1) {
            const char *key = dsCodecFieldText(&v, "customer_id");
            size_t n = dsCodecEncodeWire(c, &v, buf, sizeof(buf), err, sizeof(err));
            ok = n > 0 && n <= sizeof(buf) && key != NULL;
            if (ok && (memmem(buf, n, MSG_DELIM, 8) || memmem(buf, n, KEY_DELIM, 8))) {
                fprintf(stderr, "%s: a record holds a delimiter; change the delimiters\n", l.files[i].path);
                ok = false;
            }
            ok = ok && fprintf(out, "%s" KEY_DELIM, key) > 0 && fwrite(buf, 1, n, out) == n &&
                 fwrite(MSG_DELIM, 1, 8, out) == 8;
            (*written)++;
        }
        rpFileReaderClose(r);
    }
    avro_value_decref(&v);
    rpScanListFree(&l);
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: bench-gen ROOT N FIRST_MS STEP_MS KCAT_FILE\n");
        return 2;
    }
    char err[512];
    if (!dtArchiveGenerate(argv[1], atoi(argv[2]), atoll(argv[3]), atoll(argv[4]), NULL)) return 1;
    dsCodec *c = dsCodecNew(err, sizeof(err));
    FILE *out = fopen(argv[5], "wb");
    long written = 0;
    bool ok = c && out && writeMessages(c, argv[1], out, &written);
    if (out && fclose(out) != 0) ok = false;
    dsCodecFree(c);
    printf("%ld messages\n", written);
    return ok ? 0 : 1;
}
