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

char *dtSchemaV2Text(void) {
    json_error_t e;
    json_t *s = json_load_file(SD_V1, 0, &e);
    json_t *field = json_pack("{s:s, s:s, s:[s, {s:s, s:i, s:i}], s:n}", "name", DT_V2_FIELD, "doc",
                              "Test version 2: a free-text note. Added in version 2.", "type", "null", "type", "string",
                              "minLength", 1, "maxLength", 64, "default");
    char *text = NULL;
    if (!s || !field || json_array_append(json_object_get(s, "fields"), field) != 0)
        fprintf(stderr, "schemadir: cannot make version 2 from %s: %s\n", SD_V1, s ? "bad schema" : e.text);
    else
        text = json_dumps(s, JSON_INDENT(2));
    json_decref(field);
    json_decref(s);
    return text;
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
    char *v1text = dsFileRead(SD_V1, &len, err, sizeof err), *v2text = n >= 2 ? dtSchemaV2Text() : NULL;
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
