/* codec.c - the codec's life cycle: loads the manifest and schema versions
 * (embedded, or from a caller's file table), compiles their rules, makes
 * values of any version, and answers the registry-style questions (subject,
 * ids, schema text) and the server-set fields.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"
#include "ds/fileio.h"
#include "ds/schemas_embedded.h"
#include "ds/timefmt.h"

static void *lfail(char *errbuf, size_t errlen, const char *fmt, ...) {
    if (errbuf && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

static const dsEmbeddedFile *embedded(const dsCodec *c, const char *name) {
    for (size_t i = 0; i < c->nfiles; i++)
        if (strcmp(c->files[i].name, name) == 0) return &c->files[i];
    return NULL;
}

/* Parses one .avsc twice: with jansson for the rules, with avro-c for the
 * Avro schema. Both see the same bytes. */
static bool loadVersion(dsCodecVersion *v, const dsEmbeddedFile *f, char *errbuf, size_t errlen) {
    json_error_t jerr;
    json_t *js = json_loadb((const char *)f->data, f->len, 0, &jerr);
    if (!js) return lfail(errbuf, errlen, "%s: line %d: %s", f->name, jerr.line, jerr.text), false;
    bool ok = false;
    if (avro_schema_from_json_length((const char *)f->data, f->len, &v->schema) != 0) {
        v->schema = NULL;
        lfail(errbuf, errlen, "%s: avro-c rejects the schema: %s", f->name, avro_strerror());
    } else {
        ok = dsRulesCompile(js, v->schema, f->name, &v->rules, errbuf, errlen);
    }
    json_decref(js);
    if (!ok) return false;
    /* A copy, so a caller's table need not outlive the codec. */
    if (!(v->text = malloc(f->len + 1))) return lfail(errbuf, errlen, "out of memory"), false;
    memcpy(v->text, f->data, f->len);
    v->text[f->len] = '\0';
    if (!(v->iface = avro_generic_class_from_schema(v->schema)))
        return lfail(errbuf, errlen, "%s: avro-c cannot build a value class: %s", f->name, avro_strerror()), false;
    return true;
}

/* A server-set field dsCodecSetServerFields() writes, in version v. */
static bool findServerField(const dsCodecVersion *v, const char *name, dsRuleKind kind, size_t *index, char *errbuf,
                            size_t errlen) {
    const dsRule *root = v->rules.root;
    for (size_t i = 0; i < root->nfields; i++) {
        const dsRuleField *f = &root->fields[i];
        if (strcmp(f->name, name) != 0) continue;
        if (!f->server_set || f->type->kind != kind)
            return lfail(errbuf, errlen, "version %d: %s must be a serverSet %s field", v->version, name,
                         kind == DSR_LONG ? "long" : "int"), false;
        *index = i;
        return true;
    }
    return lfail(errbuf, errlen, "version %d: no %s field", v->version, name), false;
}

/* Records where v's server-set fields are; false (errbuf filled) if it has
 * none that qualify. */
static bool findServerFields(dsCodecVersion *v, char *errbuf, size_t errlen) {
    v->has_server_fields = findServerField(v, "recorded_at", DSR_LONG, &v->recorded_at_index, errbuf, errlen) &&
                           findServerField(v, "schema_version", DSR_INT, &v->schema_version_index, errbuf, errlen);
    return v->has_server_fields;
}

static bool loadVersions(dsCodec *c, const json_t *list, char *errbuf, size_t errlen) {
    if (!json_is_array(list) || json_array_size(list) == 0)
        return lfail(errbuf, errlen, "manifest.json: \"versions\" must be a non-empty array"), false;
    c->versions = calloc(json_array_size(list), sizeof *c->versions);
    if (!c->versions) return lfail(errbuf, errlen, "out of memory"), false;
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *e = json_array_get(list, i);
        json_t *ver = json_object_get(e, "version"), *id = json_object_get(e, "id");
        const char *file = json_string_value(json_object_get(e, "file"));
        if (!json_is_integer(ver) || !json_is_integer(id) || !file || json_integer_value(ver) < 1 ||
            json_integer_value(ver) > INT32_MAX || json_integer_value(id) < 1 || json_integer_value(id) > INT32_MAX)
            return lfail(errbuf, errlen, "manifest.json: versions[%zu] needs positive integer \"version\" and \"id\" and a \"file\"", i), false;
        dsCodecVersion *v = &c->versions[i];
        v->version = (int)json_integer_value(ver);
        v->id = (int)json_integer_value(id);
        for (size_t k = 0; k < i; k++)
            if (c->versions[k].version == v->version || c->versions[k].id == v->id)
                return lfail(errbuf, errlen, "manifest.json: version %d or id %d appears twice", v->version, v->id), false;
        const dsEmbeddedFile *f = embedded(c, file);
        if (!f) return lfail(errbuf, errlen, "manifest.json: %s is not embedded in this build", file), false;
        c->nversions = i + 1; /* so dsCodecFree() releases a half-loaded version */
        if (!loadVersion(v, f, errbuf, errlen)) return false;
        findServerFields(v, NULL, 0); /* required of the current version only, checked once it is known */
    }
    return true;
}

static bool loadManifest(dsCodec *c, char *errbuf, size_t errlen) {
    const dsEmbeddedFile *mf = embedded(c, "manifest.json");
    if (!mf) return lfail(errbuf, errlen, "manifest.json is not embedded in this build"), false;
    json_error_t jerr;
    json_t *m = json_loadb((const char *)mf->data, mf->len, 0, &jerr);
    if (!m) return lfail(errbuf, errlen, "manifest.json: line %d: %s", jerr.line, jerr.text), false;
    bool ok = false;
    const char *subject = json_string_value(json_object_get(m, "subject"));
    json_t *cur = json_object_get(m, "current");
    if (!subject || !json_is_integer(cur)) {
        lfail(errbuf, errlen, "manifest.json needs \"subject\" (string) and \"current\" (integer)");
    } else if (!dsCompatManifestMode(m, &c->compatibility)) {
        lfail(errbuf, errlen, "manifest.json: \"compatibility\" must be BACKWARD, FORWARD, FULL, one of their "
                              "_TRANSITIVE forms or NONE");
    } else if (!(c->subject = strdup(subject))) {
        lfail(errbuf, errlen, "out of memory");
    } else if (loadVersions(c, json_object_get(m, "versions"), errbuf, errlen)) {
        for (size_t i = 0; i < c->nversions; i++)
            if (c->versions[i].version == json_integer_value(cur)) c->current = &c->versions[i];
        ok = c->current != NULL || lfail(errbuf, errlen, "manifest.json: current version %lld is not listed", (long long)json_integer_value(cur));
    }
    json_decref(m);
    return ok;
}

dsCodec *dsCodecNewFrom(const dsEmbeddedFile *files, size_t nfiles, char *errbuf, size_t errlen) {
    dsCodec *c = calloc(1, sizeof *c);
    if (!c) return lfail(errbuf, errlen, "out of memory");
    c->files = files;
    c->nfiles = nfiles;
    if (!loadManifest(c, errbuf, errlen) || !findServerFields(c->current, errbuf, errlen)) {
        dsCodecFree(c);
        return NULL;
    }
    c->files = NULL; /* borrowed for loading only */
    c->nfiles = 0;
    return c;
}

dsCodec *dsCodecNew(char *errbuf, size_t errlen) {
    return dsCodecNewFrom(dsEmbeddedSchemas, dsEmbeddedSchemasCount, errbuf, errlen);
}

/* A directory's files as a table for dsCodecNewFrom(): the manifest, then
 * every file its "versions" name. Each entry's name and data are owned by
 * the table (freed with dirFilesFree()). */
typedef struct dirFiles {
    dsEmbeddedFile *f;
    size_t n;
} dirFiles;

static void dirFilesFree(dirFiles *t) {
    for (size_t i = 0; i < t->n; i++) {
        free((char *)t->f[i].name);
        free((unsigned char *)t->f[i].data);
    }
    free(t->f);
}

/* Reads dir/name into the next entry of t (room was made for it). */
static bool dirFileAdd(dirFiles *t, const char *dir, const char *name, char *errbuf, size_t errlen) {
    /* Only names in dir itself: the manifest must not reach elsewhere. */
    if (!*name || strchr(name, '/'))
        return lfail(errbuf, errlen, "%s/manifest.json: \"%s\" is not a file name of the directory", dir, name), false;
    size_t plen = strlen(dir) + 1 + strlen(name) + 1, len;
    char *path = malloc(plen), *copy = strdup(name), *data = NULL;
    if (path && copy) {
        snprintf(path, plen, "%s/%s", dir, name);
        data = dsFileRead(path, DS_FILE_MAX_CONFIG, &len, errbuf, errlen);
    } else {
        lfail(errbuf, errlen, "out of memory");
    }
    free(path);
    if (!data) {
        free(copy);
        return false;
    }
    t->f[t->n++] = (dsEmbeddedFile){copy, (const unsigned char *)data, len};
    return true;
}

static bool dirFilesLoad(dirFiles *t, const char *dir, char *errbuf, size_t errlen) {
    if (!(t->f = calloc(1, sizeof *t->f))) return lfail(errbuf, errlen, "out of memory"), false;
    if (!dirFileAdd(t, dir, "manifest.json", errbuf, errlen)) return false;
    json_error_t jerr;
    json_t *m = json_loadb((const char *)t->f[0].data, t->f[0].len, 0, &jerr);
    if (!m) return lfail(errbuf, errlen, "%s/manifest.json: line %d: %s", dir, jerr.line, jerr.text), false;
    json_t *list = json_object_get(m, "versions");
    bool ok = true;
    dsEmbeddedFile *grown = realloc(t->f, (1 + json_array_size(list)) * sizeof *t->f);
    if (grown) t->f = grown;
    else ok = lfail(errbuf, errlen, "out of memory");
    /* Entries without a "file" are left to the manifest checks of
     * dsCodecNewFrom(), which name them. */
    for (size_t i = 0; ok && i < json_array_size(list); i++) {
        const char *file = json_string_value(json_object_get(json_array_get(list, i), "file"));
        if (file) ok = dirFileAdd(t, dir, file, errbuf, errlen);
    }
    json_decref(m);
    return ok;
}

dsCodec *dsCodecNewForDirOption(const char *dir, char *errbuf, size_t errlen) {
    if (!dir || !*dir) return dsCodecNew(errbuf, errlen);
    char why[1024];
    dsCodec *c = dsCodecNewFromDir(dir, why, sizeof why);
    if (!c) lfail(errbuf, errlen, "schemas-dir: %s", why);
    return c;
}

dsCodec *dsCodecNewFromDir(const char *dir, char *errbuf, size_t errlen) {
    dirFiles t = {0};
    dsCodec *c = NULL;
    char why[1024];
    if (dirFilesLoad(&t, dir, errbuf, errlen)) {
        c = dsCodecNewFrom(t.f, t.n, why, sizeof why);
        if (!c) lfail(errbuf, errlen, "%s: %s", dir, why);
    }
    dirFilesFree(&t);
    return c;
}

void dsCodecFree(dsCodec *c) {
    if (!c) return;
    for (size_t i = 0; i < c->nversions; i++) {
        dsCodecVersion *v = &c->versions[i];
        if (v->has_scratch) avro_value_decref(&v->scratch);
        if (v->iface) avro_value_iface_decref(v->iface);
        dsRulesFree(&v->rules);
        free(v->text);
        if (v->schema) avro_schema_decref(v->schema);
    }
    free(c->versions);
    free(c->subject);
    free(c);
}

bool dsCodecAddVersion(dsCodec *c, int version, int id, const char *text, size_t len, char *errbuf,
                       size_t errlen) {
    if (version < 1 || id < 1) return lfail(errbuf, errlen, "version %d, id %d: both must be positive", version, id), false;
    for (size_t i = 0; i < c->nversions; i++)
        if (c->versions[i].version == version || c->versions[i].id == id)
            return lfail(errbuf, errlen, "version %d or id %d is already known", version, id), false;
    size_t current = (size_t)(c->current - c->versions);
    dsCodecVersion *grown = realloc(c->versions, (c->nversions + 1) * sizeof *c->versions);
    if (!grown) return lfail(errbuf, errlen, "out of memory"), false;
    c->versions = grown;
    c->current = &c->versions[current]; /* the array moved */
    dsCodecVersion *v = &c->versions[c->nversions];
    memset(v, 0, sizeof *v);
    v->version = version;
    v->id = id;
    char origin[32];
    snprintf(origin, sizeof origin, "schema id %d", id);
    dsEmbeddedFile f = {origin, (const unsigned char *)text, len};
    c->nversions++; /* so that dsCodecFree() releases it even if it failed half way */
    if (loadVersion(v, &f, errbuf, errlen)) {
        findServerFields(v, NULL, 0);
        return true;
    }
    dsCodecVersion failed = *v;
    c->nversions--;
    if (failed.iface) avro_value_iface_decref(failed.iface);
    dsRulesFree(&failed.rules);
    free(failed.text);
    if (failed.schema) avro_schema_decref(failed.schema);
    return false;
}

static const dsCodecVersion *findVersion(const dsCodec *c, int version) {
    for (size_t i = 0; i < c->nversions; i++)
        if (c->versions[i].version == version) return &c->versions[i];
    return NULL;
}

int dsCodecCurrentVersion(const dsCodec *c) { return c->current->version; }

int dsCodecSchemaId(const dsCodec *c, int version) {
    const dsCodecVersion *v = findVersion(c, version);
    return v ? v->id : -1;
}

const char *dsCodecSubject(const dsCodec *c) { return c->subject; }

const char *dsCodecCompatibility(const dsCodec *c) { return dsCompatModeName(c->compatibility); }

const char *dsCodecSchemaText(const dsCodec *c, int version) {
    const dsCodecVersion *v = findVersion(c, version);
    return v ? v->text : NULL;
}

avro_schema_t dsCodecSchema(const dsCodec *c, int version) {
    const dsCodecVersion *v = findVersion(c, version);
    return v ? v->schema : NULL;
}

bool dsCodecNewValue(dsCodec *c, avro_value_t *out) {
    return avro_generic_value_new(c->current->iface, out) == 0;
}

bool dsCodecNewVersionValue(dsCodec *c, int version, avro_value_t *out) {
    const dsCodecVersion *v = findVersion(c, version);
    return v && avro_generic_value_new(v->iface, out) == 0;
}

bool dsCodecSetServerFields(dsCodec *c, avro_value_t *val, int64_t recorded_at_ms, int schema_version) {
    avro_value_t f;
    char ts[DS_TIME_BUFLEN];
    /* Fields are addressed by index, found per version at load; and a time
     * that cannot be rendered would break every read. */
    const dsCodecVersion *v = dsCodecFindSchema(c, avro_value_get_schema(val));
    if (!v || !v->has_server_fields || !dsTimeFormat(recorded_at_ms, ts)) return false;
    return avro_value_get_by_index(val, v->recorded_at_index, &f, NULL) == 0 &&
           avro_value_set_long(&f, recorded_at_ms) == 0 &&
           avro_value_get_by_index(val, v->schema_version_index, &f, NULL) == 0 &&
           avro_value_set_int(&f, schema_version) == 0;
}

const char *dsCodecFieldText(avro_value_t *val, const char *name) {
    avro_value_t f;
    const char *s = NULL;
    size_t len;
    int sym;
    if (avro_value_get_by_name(val, name, &f, NULL) != 0) return NULL;
    if (avro_value_get_type(&f) == AVRO_ENUM)
        return avro_value_get_enum(&f, &sym) == 0 ? avro_schema_enum_get(avro_value_get_schema(&f), sym) : NULL;
    return avro_value_get_type(&f) == AVRO_STRING && avro_value_get_string(&f, &s, &len) == 0 ? s : NULL;
}

bool dsCodecFieldLong(avro_value_t *val, const char *name, int64_t *out) {
    avro_value_t f;
    return avro_value_get_by_name(val, name, &f, NULL) == 0 && avro_value_get_type(&f) == AVRO_INT64 &&
           avro_value_get_long(&f, out) == 0;
}
