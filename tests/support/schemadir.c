/* schemadir.c - writes the tests' schema directories (schemadir.h). */
#include "schemadir.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ds/fileio.h"

#define SD_V1 "schemas/decision/v1.avsc"
#define SD_V2 "schemas/decision/v2.avsc"

char *dtSchemaV2Text(void) {
    char err[512] = "";
    size_t len;
    char *text = dsFileRead(SD_V2, DS_FILE_MAX_CONFIG, &len, err, sizeof err);
    if (text == NULL) fprintf(stderr, "schemadir: %s\n", err);
    return text;
}

void dtSchemaV2Tag(json_t *doc, const char *tag) {
    json_object_set_new(doc, "model", json_pack("{s:s, s:s}", "name", tag, "version", "1"));
}

const char *dtSchemaV2TagOf(const json_t *doc) {
    return json_string_value(json_object_get(json_object_get(doc, "model"), "name"));
}

static bool sdWrite(const char *dir, const char *name, const char *text) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    bool ok = f && fputs(text, f) >= 0;
    if (f && fclose(f) != 0) ok = false;
    if (!ok) fprintf(stderr, "schemadir: %s: %s\n", path, strerror(errno));
    return ok;
}

bool dtSchemaDirWrite(const char *dir, int n) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return fprintf(stderr, "schemadir: %s: %s\n", dir, strerror(errno)), false;
    char err[512] = "";
    size_t len;
    char *v1text = dsFileRead(SD_V1, DS_FILE_MAX_CONFIG, &len, err, sizeof err), *v2text = n >= 2 ? dtSchemaV2Text() : NULL;
    json_t *m = json_pack("{s:s, s:i, s:s, s:[{s:i, s:i, s:s}]}", "subject", "decisions-value", "current", n,
                          "compatibility", "FULL_TRANSITIVE", "versions", "version", 1, "id", 1, "file", "v1.avsc");
    if (n >= 2) json_array_append_new(json_object_get(m, "versions"), json_pack("{s:i, s:i, s:s}", "version", 2, "id", 2,
                                                                                "file", "v2.avsc"));
    char *mtext = json_dumps(m, JSON_INDENT(2));
    bool ok = v1text && mtext && (n < 2 || v2text) && sdWrite(dir, "v1.avsc", v1text) &&
              (n < 2 || sdWrite(dir, "v2.avsc", v2text)) && sdWrite(dir, "manifest.json", mtext);
    if (!ok) fprintf(stderr, "schemadir: cannot write %s %s\n", dir, err);
    free(mtext);
    free(v1text);
    free(v2text);
    json_decref(m);
    return ok;
}
