/* vars.c - loading and checking the variables file, and deriving the
 * storage layout from it (see vars.h). */
#include "vars.h"
#include "ds/fileio.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VS_NAME_MAX 64

static bool varsFail(char *errbuf, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool varsFail(char *errbuf, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
    return false;
}

bool vsVarsParseWindow(const char *s, int64_t *ms) {
    if (strcmp(s, "all") == 0) return *ms = 0, true;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno || end == s || n <= 0 || !isdigit((unsigned char)s[0])) return false;
    int64_t unit;
    if (strcmp(end, "s") == 0) unit = 1000;
    else if (strcmp(end, "m") == 0) unit = 60 * 1000;
    else if (strcmp(end, "h") == 0) unit = 3600 * 1000;
    else if (strcmp(end, "d") == 0) unit = 86400 * 1000;
    else return false;
    if (n > INT64_MAX / unit / 2) return false;
    *ms = n * unit;
    return true;
}

static bool varsNameOk(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > VS_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_' || s[i] == '-')) return false;
    return true;
}

/* Follows path through the schema: record fields, null-unions (to their
 * one other branch) and maps (a part is a key). */
static bool varsResolvePath(avro_schema_t s, vsPath *p, avro_schema_t *leaf, char *errbuf, size_t errlen) {
    for (size_t i = 0; i < p->nparts; i++) {
        if (is_avro_union(s)) {
            avro_schema_t other = NULL;
            for (size_t b = 0; b < avro_schema_union_size(s); b++) {
                avro_schema_t br = avro_schema_union_branch(s, b);
                if (!is_avro_null(br)) other = br;
            }
            s = other;
        }
        if (s != NULL && is_avro_record(s)) {
            /* by index: avro_schema_record_field_get() reads an uninitialized
             * pointer for a name the record lacks */
            int idx = avro_schema_record_field_get_index(s, p->parts[i]);
            if (idx < 0) return varsFail(errbuf, errlen, "field \"%s\" of \"%s\" is not in the decision schema",
                                         p->parts[i], p->text);
            s = avro_schema_record_field_get_by_index(s, idx);
        } else if (s != NULL && is_avro_map(s)) {
            s = avro_schema_map_values(s);
        } else {
            return varsFail(errbuf, errlen, "\"%s\": \"%s\" is not inside a record or map", p->text, p->parts[i]);
        }
    }
    if (is_avro_union(s)) { /* a nullable scalar: its other branch (s stays the union while looping) */
        avro_schema_t other = NULL;
        for (size_t b = 0; b < avro_schema_union_size(s); b++)
            if (!is_avro_null(avro_schema_union_branch(s, b))) other = avro_schema_union_branch(s, b);
        s = other;
    }
    if (is_avro_string(s) || is_avro_enum(s)) p->type = VS_VAL_STRING;
    else if (is_avro_int32(s) || is_avro_int64(s)) p->type = VS_VAL_LONG;
    else if (is_avro_float(s) || is_avro_double(s)) p->type = VS_VAL_DOUBLE;
    else if (is_avro_boolean(s)) p->type = VS_VAL_BOOL;
    else return varsFail(errbuf, errlen, "\"%s\" is not a string, number or boolean field", p->text);
    *leaf = s;
    return true;
}

static bool varsPathInit(vsPath *p, const char *text, avro_schema_t root, avro_schema_t *leaf, char *errbuf,
                         size_t errlen) {
    memset(p, 0, sizeof(*p));
    if ((p->text = strdup(text)) == NULL) return varsFail(errbuf, errlen, "out of memory");
    size_t n = 1;
    for (const char *c = text; *c; c++) n += *c == '.';
    if ((p->parts = calloc(n, sizeof(char *))) == NULL) return varsFail(errbuf, errlen, "out of memory");
    const char *start = text;
    for (size_t i = 0; i < n; i++) {
        const char *dot = strchr(start, '.');
        size_t len = dot ? (size_t)(dot - start) : strlen(start);
        if (len == 0) return varsFail(errbuf, errlen, "\"%s\" is not a field path (empty part)", text);
        if ((p->parts[i] = strndup(start, len)) == NULL) return varsFail(errbuf, errlen, "out of memory");
        p->nparts++;
        start = dot ? dot + 1 : start + len;
    }
    avro_schema_t unused;
    return varsResolvePath(root, p, leaf ? leaf : &unused, errbuf, errlen);
}

static void varsPathFree(vsPath *p) {
    for (size_t i = 0; i < p->nparts; i++) free(p->parts[i]);
    free(p->parts);
    free(p->text);
}

/* The index of path in e->fields, appending it (checked) on first use. */
static int varsField(vsEntity *e, const char *path, avro_schema_t root, avro_schema_t *leaf, char *errbuf,
                     size_t errlen) {
    for (size_t i = 0; i < e->nfields; i++)
        if (strcmp(e->fields[i].text, path) == 0) {
            vsPath tmp;
            bool ok = varsPathInit(&tmp, path, root, leaf, errbuf, errlen);
            varsPathFree(&tmp);
            return ok ? (int)i : -1;
        }
    vsPath *grown = realloc(e->fields, (e->nfields + 1) * sizeof(vsPath));
    if (grown == NULL) return varsFail(errbuf, errlen, "out of memory"), -1;
    e->fields = grown;
    if (!varsPathInit(&e->fields[e->nfields], path, root, leaf, errbuf, errlen)) {
        varsPathFree(&e->fields[e->nfields]);
        return -1;
    }
    return (int)e->nfields++;
}

static bool varsEnumHas(avro_schema_t en, const char *sym) {
    return avro_schema_enum_get_by_name(en, sym) >= 0;
}

/* One JSON filter value into v; a string is copied (freed by vsVarsFree). */
static bool varsFilterValue(const json_t *j, const vsPath *p, avro_schema_t leaf, vsValue *v, char *errbuf,
                            size_t errlen) {
    memset(v, 0, sizeof(*v));
    if (json_is_null(j)) return true;
    if (json_is_string(j) && p->type == VS_VAL_STRING) {
        if (is_avro_enum(leaf) && !varsEnumHas(leaf, json_string_value(j)))
            return varsFail(errbuf, errlen, "\"%s\" is not a symbol of %s", json_string_value(j), p->text);
        v->type = VS_VAL_STRING;
        if ((v->u.str.s = strdup(json_string_value(j))) == NULL) return varsFail(errbuf, errlen, "out of memory");
        v->u.str.len = json_string_length(j);
        return true;
    }
    if (json_is_integer(j) && (p->type == VS_VAL_LONG || p->type == VS_VAL_DOUBLE)) {
        v->type = VS_VAL_LONG, v->u.l = json_integer_value(j);
        return true;
    }
    if (json_is_real(j) && (p->type == VS_VAL_LONG || p->type == VS_VAL_DOUBLE)) {
        v->type = VS_VAL_DOUBLE, v->u.d = json_real_value(j);
        return true;
    }
    if (json_is_boolean(j) && p->type == VS_VAL_BOOL) {
        v->type = VS_VAL_BOOL, v->u.b = json_is_true(j);
        return true;
    }
    return varsFail(errbuf, errlen, "a filter value of %s has the wrong type", p->text);
}

static bool varsWhere(vsEntity *e, vsVariable *var, const json_t *where, avro_schema_t root, char *errbuf,
                      size_t errlen) {
    if (!json_is_object(where)) return varsFail(errbuf, errlen, "\"where\" must be an object of field: value(s)");
    if ((var->where = calloc(json_object_size(where) + 1, sizeof(vsCondition))) == NULL)
        return varsFail(errbuf, errlen, "out of memory");
    const char *path;
    json_t *vals;
    json_object_foreach((json_t *)where, path, vals) {
        avro_schema_t leaf;
        vsCondition *c = &var->where[var->nwhere++];
        if ((c->field = varsField(e, path, root, &leaf, errbuf, errlen)) < 0) return false;
        size_t n = json_is_array(vals) ? json_array_size(vals) : 1;
        if (n == 0) return varsFail(errbuf, errlen, "where %s: an empty list matches nothing", path);
        if ((c->any = calloc(n, sizeof(vsValue))) == NULL) return varsFail(errbuf, errlen, "out of memory");
        for (size_t i = 0; i < n; i++) {
            const json_t *j = json_is_array(vals) ? json_array_get(vals, i) : vals;
            if (!varsFilterValue(j, &e->fields[c->field], leaf, &c->any[c->nany], errbuf, errlen)) return false;
            c->nany++;
        }
    }
    return true;
}

static bool varsAgg(const char *s, vsAggKind *out) {
    static const char *const names[] = {"count", "sum", "min", "max", "last", "distinct"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i]) == 0) return *out = (vsAggKind)i, true;
    return false;
}

static bool varsVariable(vsEntity *e, vsVariable *var, const json_t *j, avro_schema_t root, char *errbuf,
                         size_t errlen) {
    const char *name = NULL, *agg = NULL, *field = NULL, *window = "all", *doc = NULL;
    json_t *where = NULL;
    json_error_t jerr;
    var->field = -1;
    var->running = -1;
    if (json_unpack_ex((json_t *)j, &jerr, JSON_STRICT, "{s:s, s:s, s?s, s?o, s?s, s?s}", "name", &name,
                       "aggregation", &agg, "field", &field, "where", &where, "window", &window, "doc", &doc) != 0)
        return varsFail(errbuf, errlen, "%s (a variable has name, aggregation, field, where, window and doc)",
                        jerr.text);
    if (!varsNameOk(name)) return varsFail(errbuf, errlen, "\"%s\" is not a variable name ([a-z0-9_-], 1-64)", name);
    if ((var->name = strdup(name)) == NULL) return varsFail(errbuf, errlen, "out of memory");
    for (size_t i = 0; i < e->nvars; i++)
        if (strcmp(e->vars[i].name, name) == 0) return varsFail(errbuf, errlen, "%s: declared twice", name);
    char sub[512];
    if (!varsAgg(agg, &var->agg))
        return varsFail(errbuf, errlen, "%s: unknown aggregation \"%s\" (count, sum, min, max, last, distinct)", name,
                        agg);
    if (!vsVarsParseWindow(window, &var->window_ms))
        return varsFail(errbuf, errlen, "%s: window \"%s\" is not \"all\" or a number with s, m, h or d", name, window);
    if ((var->agg == VS_AGG_COUNT) != (field == NULL))
        return varsFail(errbuf, errlen, "%s: %s", name,
                        field ? "count takes no field" : "this aggregation needs a \"field\"");
    if (field != NULL) {
        if ((var->field = varsField(e, field, root, NULL, sub, sizeof(sub))) < 0)
            return varsFail(errbuf, errlen, "%s: %s", name, sub);
        vsValType t = e->fields[var->field].type;
        if (var->agg == VS_AGG_SUM && t != VS_VAL_LONG && t != VS_VAL_DOUBLE)
            return varsFail(errbuf, errlen, "%s: sum needs a number field, %s is not", name, field);
        if ((var->agg == VS_AGG_MIN || var->agg == VS_AGG_MAX) && t == VS_VAL_BOOL)
            return varsFail(errbuf, errlen, "%s: min and max need a number or string field", name);
    }
    if (where != NULL && !varsWhere(e, var, where, root, sub, sizeof(sub)))
        return varsFail(errbuf, errlen, "%s: %s", name, sub);
    /* An all-time min, max or last is idempotent to keep as one value; the
     * others need the events (to count each decision once). */
    if (var->window_ms == 0 && (var->agg == VS_AGG_MIN || var->agg == VS_AGG_MAX || var->agg == VS_AGG_LAST))
        var->running = (int)e->nrunning++;
    else if (var->window_ms == 0) e->retention_ms = INT64_MAX;
    else if (var->window_ms > e->retention_ms) e->retention_ms = var->window_ms;
    return true;
}

static bool varsEntity(vsEntity *e, const json_t *j, avro_schema_t root, char *errbuf, size_t errlen) {
    const char *name = NULL, *key = NULL, *doc = NULL;
    json_t *vars = NULL;
    json_error_t jerr;
    if (json_unpack_ex((json_t *)j, &jerr, JSON_STRICT, "{s:s, s:s, s:o, s?s}", "name", &name, "key", &key,
                       "variables", &vars, "doc", &doc) != 0)
        return varsFail(errbuf, errlen, "entity: %s (an entity has name, key, variables and doc)", jerr.text);
    if (!varsNameOk(name)) return varsFail(errbuf, errlen, "\"%s\" is not an entity name ([a-z0-9_-], 1-64)", name);
    if ((e->name = strdup(name)) == NULL) return varsFail(errbuf, errlen, "out of memory");
    char sub[700];
    if (!varsPathInit(&e->key, key, root, NULL, sub, sizeof(sub)))
        return varsFail(errbuf, errlen, "entity %s: key: %s", name, sub);
    if (e->key.type != VS_VAL_STRING)
        return varsFail(errbuf, errlen, "entity %s: key %s is not a string field", name, key);
    if (!json_is_array(vars) || json_array_size(vars) == 0)
        return varsFail(errbuf, errlen, "entity %s: \"variables\" must be a non-empty array", name);
    if ((e->vars = calloc(json_array_size(vars), sizeof(vsVariable))) == NULL)
        return varsFail(errbuf, errlen, "out of memory");
    for (size_t i = 0; i < json_array_size(vars); i++) {
        if (!varsVariable(e, &e->vars[e->nvars], json_array_get(vars, i), root, sub, sizeof(sub))) {
            e->nvars++; /* freed with the rest */
            return varsFail(errbuf, errlen, "entity %s, variable %zu: %s", name, i + 1, sub);
        }
        e->nvars++;
    }
    if (e->nfields > VS_MAX_FIELDS)
        return varsFail(errbuf, errlen, "entity %s: its variables read %zu fields, at most %d are stored", name,
                        e->nfields, VS_MAX_FIELDS);
    return true;
}

/* The layout: what the stored bytes depend on (see vars.h). */
static char *varsLayout(const vsVars *v) {
    json_t *arr = json_array();
    for (size_t i = 0; i < v->nentities; i++) {
        const vsEntity *e = &v->entities[i];
        json_t *fields = json_array(), *running = json_array();
        for (size_t f = 0; f < e->nfields; f++) json_array_append_new(fields, json_string(e->fields[f].text));
        for (size_t k = 0; k < e->nvars; k++) {
            const vsVariable *var = &e->vars[k];
            if (var->running < 0) continue;
            json_t *where = json_array();
            for (size_t c = 0; c < var->nwhere; c++) {
                json_t *any = json_array();
                for (size_t a = 0; a < var->where[c].nany; a++) {
                    const vsValue *x = &var->where[c].any[a];
                    json_array_append_new(any, x->type == VS_VAL_STRING ? json_stringn(x->u.str.s, x->u.str.len)
                                               : x->type == VS_VAL_LONG ? json_integer(x->u.l)
                                               : x->type == VS_VAL_DOUBLE ? json_real(x->u.d)
                                               : x->type == VS_VAL_BOOL ? json_boolean(x->u.b) : json_null());
                }
                json_array_append_new(where, json_pack("{s:i, s:o}", "field", var->where[c].field, "any", any));
            }
            json_array_append_new(running, json_pack("{s:i, s:i, s:o}", "agg", var->agg, "field", var->field,
                                                     "where", where));
        }
        json_array_append_new(arr, json_pack("{s:s, s:s, s:o, s:I, s:o}", "entity", e->name, "key", e->key.text,
                                             "fields", fields, "retention_ms", (json_int_t)e->retention_ms,
                                             "running", running));
    }
    char *text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return text;
}

vsVars *vsVarsParse(const char *text, size_t len, dsCodec *codec, char *errbuf, size_t errlen) {
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return varsFail(errbuf, errlen, "not JSON: %s at line %d, column %d", jerr.text, jerr.line, jerr.column), NULL;
    vsVars *v = calloc(1, sizeof(*v));
    json_t *ents = NULL;
    char sub[900];
    jerr.text[0] = '\0';
    if (v == NULL) goto oom;
    if (json_unpack_ex(root, &jerr, JSON_STRICT, "{s:o}", "entities", &ents) != 0 || !json_is_array(ents) ||
        json_array_size(ents) == 0) {
        varsFail(errbuf, errlen, "the file must be {\"entities\": [ ... ]} with at least one entity%s%s",
                 *jerr.text ? ": " : "", jerr.text);
        goto failed;
    }
    if ((v->entities = calloc(json_array_size(ents), sizeof(vsEntity))) == NULL) goto oom;
    avro_schema_t schema = dsCodecSchema(codec, dsCodecCurrentVersion(codec));
    for (size_t i = 0; i < json_array_size(ents); i++) {
        bool ok = varsEntity(&v->entities[i], json_array_get(ents, i), schema, sub, sizeof(sub));
        v->nentities++;
        if (!ok) {
            varsFail(errbuf, errlen, "%s", sub);
            goto failed;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(v->entities[k].name, v->entities[i].name) == 0) {
                varsFail(errbuf, errlen, "entity %s: declared twice", v->entities[i].name);
                goto failed;
            }
    }
    if ((v->layout = varsLayout(v)) == NULL) goto oom;
    json_decref(root);
    return v;
oom:
    varsFail(errbuf, errlen, "out of memory");
failed:
    json_decref(root);
    vsVarsFree(v);
    return NULL;
}

vsVars *vsVarsLoad(const char *path, dsCodec *codec, char *errbuf, size_t errlen) {
    size_t len;
    char *buf = dsFileRead(path, DS_FILE_MAX_CONFIG, &len, errbuf, errlen);
    if (buf == NULL) return NULL;
    char sub[1024];
    vsVars *v = vsVarsParse(buf, len, codec, sub, sizeof(sub));
    free(buf);
    if (v == NULL) varsFail(errbuf, errlen, "%s: %s", path, sub);
    return v;
}

void vsVarsFree(vsVars *v) {
    if (v == NULL) return;
    for (size_t i = 0; i < v->nentities; i++) {
        vsEntity *e = &v->entities[i];
        for (size_t k = 0; k < e->nvars; k++) {
            vsVariable *var = &e->vars[k];
            for (size_t c = 0; c < var->nwhere; c++) {
                for (size_t a = 0; a < var->where[c].nany; a++)
                    if (var->where[c].any[a].type == VS_VAL_STRING) free((char *)var->where[c].any[a].u.str.s);
                free(var->where[c].any);
            }
            free(var->where);
            free(var->name);
        }
        free(e->vars);
        for (size_t f = 0; f < e->nfields; f++) varsPathFree(&e->fields[f]);
        free(e->fields);
        varsPathFree(&e->key);
        free(e->name);
    }
    free(v->entities);
    free(v->layout);
    free(v);
}

const vsEntity *vsVarsEntity(const vsVars *v, const char *name, size_t len) {
    for (size_t i = 0; i < v->nentities; i++)
        if (strlen(v->entities[i].name) == len && memcmp(v->entities[i].name, name, len) == 0) return &v->entities[i];
    return NULL;
}

static int varsTypeRank(vsValType t) {
    return t == VS_VAL_NULL ? 0 : t == VS_VAL_BOOL ? 1 : t == VS_VAL_STRING ? 3 : 2;
}

int vsValueCompare(const vsValue *a, const vsValue *b) {
    int ra = varsTypeRank(a->type), rb = varsTypeRank(b->type);
    if (ra != rb) return ra < rb ? -1 : 1;
    switch (ra) {
    case 0:
        return 0;
    case 1:
        return (int)a->u.b - (int)b->u.b;
    case 2:
        if (a->type == VS_VAL_LONG && b->type == VS_VAL_LONG) return (a->u.l > b->u.l) - (a->u.l < b->u.l);
        double x = a->type == VS_VAL_LONG ? (double)a->u.l : a->u.d, y = b->type == VS_VAL_LONG ? (double)b->u.l : b->u.d;
        return (x > y) - (x < y);
    default: {
        size_t n = a->u.str.len < b->u.str.len ? a->u.str.len : b->u.str.len;
        int c = n ? memcmp(a->u.str.s, b->u.str.s, n) : 0;
        if (c) return c;
        return (a->u.str.len > b->u.str.len) - (a->u.str.len < b->u.str.len);
    }
    }
}

bool vsValueEqual(const vsValue *a, const vsValue *b) {
    return vsValueCompare(a, b) == 0;
}
