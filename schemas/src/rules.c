/* rules.c - compiles an Avro schema (as JSON) into the codec's rule tree.
 *
 * Owns the rule vocabulary: which attributes a type object may carry and
 * what they mean. Anything the codec would not enforce (an unknown or
 * misspelt rule attribute, an unsupported logicalType, a union other than
 * null + one type, fixed or bytes) is refused at load, so a schema can never
 * promise a rule that is silently skipped. After compiling, the tree is
 * checked against the avro-c schema parsed from the same text (field order,
 * symbols, branches) and every default is run through the converter.
 */
#include <float.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"

typedef struct dsCompile {
    dsRuleSet *rs;
    const char *origin;
    char *errbuf;
    size_t errlen;
} dsCompile;

static bool cfail(dsCompile *cc, const char *where, const char *fmt, ...) {
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(cc->errbuf, cc->errlen, "%s: %s: %s", cc->origin, where, msg);
    return false;
}

static dsRule *ruleNew(dsCompile *cc, dsRuleKind kind) {
    dsRule *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->kind = kind;
    r->max_len = SIZE_MAX;
    r->max_items = SIZE_MAX;
    r->imin = kind == DSR_INT ? INT32_MIN : INT64_MIN;
    r->imax = kind == DSR_INT ? INT32_MAX : INT64_MAX;
    r->dmin = kind == DSR_FLOAT ? -FLT_MAX : -DBL_MAX;
    r->dmax = kind == DSR_FLOAT ? FLT_MAX : DBL_MAX;
    r->next_alloc = cc->rs->all;
    cc->rs->all = r;
    return r;
}

static void ruleFree(dsRule *r) {
    free(r->fullname);
    if (r->pattern) regfree(&r->re);
    free(r->pattern);
    for (size_t i = 0; i < r->nfields; i++) {
        free(r->fields[i].name);
        json_decref(r->fields[i].def);
    }
    free(r->fields);
    for (size_t i = 0; i < r->nsymbols; i++) free(r->symbols[i]);
    free(r->symbols);
    free(r->symbol_list);
    free(r);
}

void dsRulesFree(dsRuleSet *rs) {
    dsRule *r = rs->all;
    while (r) {
        dsRule *next = r->next_alloc;
        ruleFree(r);
        r = next;
    }
    rs->all = rs->root = NULL;
}

/* ---- attribute checks ---- */

/* Refuses any key of obj not in allowed (NULL-terminated). */
static bool onlyKeys(dsCompile *cc, const json_t *obj, const char *const *allowed, const char *where) {
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        size_t i;
        for (i = 0; allowed[i] && strcmp(allowed[i], key) != 0; i++)
            ;
        if (!allowed[i]) return cfail(cc, where, "attribute \"%s\" is not supported here", key);
    }
    return true;
}

static bool isAvroName(const char *s) {
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_')) return false;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

static bool sizeAttr(dsCompile *cc, const json_t *obj, const char *key, size_t *out, const char *where) {
    json_t *v = json_object_get(obj, key);
    if (!v) return true;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return cfail(cc, where, "\"%s\" must be a non-negative integer", key);
    *out = (size_t)json_integer_value(v);
    return true;
}

static bool boundAttrs(dsCompile *cc, dsRule *r, const json_t *obj, const char *where) {
    static const char *const keys[2] = {"minimum", "maximum"};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(obj, keys[i]);
        if (!v) continue;
        if (r->kind == DSR_FLOAT || r->kind == DSR_DOUBLE) {
            if (!json_is_number(v)) return cfail(cc, where, "\"%s\" must be a number", keys[i]);
            *(i ? &r->dmax : &r->dmin) = json_number_value(v);
        } else {
            if (!json_is_integer(v)) return cfail(cc, where, "\"%s\" must be an integer", keys[i]);
            json_int_t n = json_integer_value(v);
            if (n < r->imin || n > r->imax) return cfail(cc, where, "\"%s\" is outside the type's range", keys[i]);
            *(i ? &r->imax : &r->imin) = n;
        }
        *(i ? &r->has_max : &r->has_min) = true;
    }
    return true;
}

static bool stringAttrs(dsCompile *cc, dsRule *r, const json_t *obj, const char *where) {
    if (!sizeAttr(cc, obj, "minLength", &r->min_len, where) || !sizeAttr(cc, obj, "maxLength", &r->max_len, where))
        return false;
    if (r->min_len > r->max_len) return cfail(cc, where, "minLength is greater than maxLength");
    json_t *fmt = json_object_get(obj, "format");
    json_t *lt = json_object_get(obj, "logicalType");
    if (lt && !(json_is_string(lt) && strcmp(json_string_value(lt), "uuid") == 0))
        return cfail(cc, where, "unsupported logicalType on string (only \"uuid\")");
    if (lt) r->format = DSR_FORMAT_UUID; /* a uuid logical type is only honest if enforced */
    if (fmt) {
        const char *f = json_string_value(fmt);
        if (f && strcmp(f, "uuid") == 0)
            r->format = DSR_FORMAT_UUID;
        else if (f && strcmp(f, "printable") == 0 && !lt)
            r->format = DSR_FORMAT_PRINTABLE;
        else
            return cfail(cc, where, "unsupported format (\"uuid\" or \"printable\")");
    }
    json_t *pat = json_object_get(obj, "pattern");
    if (!pat) return true;
    if (!json_is_string(pat)) return cfail(cc, where, "\"pattern\" must be a string");
    /* REG_NOSUB: only match/no-match is needed, which lets regexec skip
     * tracking submatches on the hot path. */
    int rc = regcomp(&r->re, json_string_value(pat), REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[128];
        regerror(rc, &r->re, why, sizeof why);
        return cfail(cc, where, "pattern does not compile: %s", why);
    }
    r->pattern = strdup(json_string_value(pat));
    if (!r->pattern) {
        regfree(&r->re);
        return cfail(cc, where, "out of memory");
    }
    return true;
}

/* ---- types ---- */

static dsRule *compileType(dsCompile *cc, const json_t *t, const char *ns, const char *where);

static bool primitiveKind(const char *name, dsRuleKind *kind) {
    static const struct {
        const char *name;
        dsRuleKind kind;
    } prims[] = {{"null", DSR_NULL},   {"boolean", DSR_BOOLEAN}, {"int", DSR_INT},       {"long", DSR_LONG},
                 {"float", DSR_FLOAT}, {"double", DSR_DOUBLE},   {"string", DSR_STRING}};
    for (size_t i = 0; i < sizeof prims / sizeof prims[0]; i++)
        if (strcmp(prims[i].name, name) == 0) {
            *kind = prims[i].kind;
            return true;
        }
    return false;
}

/* "a.b.C" stays; "C" in namespace "a.b" becomes "a.b.C". Caller frees. */
static char *qualify(const char *name, const char *ns) {
    if (strchr(name, '.') || !ns || !*ns) return strdup(name);
    size_t len = strlen(ns) + 1 + strlen(name) + 1;
    char *out = malloc(len);
    if (out) snprintf(out, len, "%s.%s", ns, name);
    return out;
}

static dsRule *findNamed(dsCompile *cc, const char *fullname) {
    for (dsRule *r = cc->rs->all; r; r = r->next_alloc)
        if (r->fullname && strcmp(r->fullname, fullname) == 0) return r;
    return NULL;
}

static dsRule *lookupNamed(dsCompile *cc, const char *name, const char *ns, const char *where) {
    char *full = qualify(name, ns);
    dsRule *r = full ? findNamed(cc, full) : NULL;
    if (!r) r = findNamed(cc, name); /* a name in the null namespace */
    free(full);
    if (!r) cfail(cc, where, "unknown type \"%s\" (named types must be defined before use)", name);
    return r;
}

static dsRule *compilePrimitive(dsCompile *cc, dsRuleKind kind, const json_t *obj, const char *where) {
    static const char *const k_plain[] = {"type", "doc", NULL};
    static const char *const k_string[] = {"type", "doc", "minLength", "maxLength", "pattern", "format", "logicalType", NULL};
    static const char *const k_number[] = {"type", "doc", "minimum", "maximum", NULL};
    static const char *const k_long[] = {"type", "doc", "minimum", "maximum", "logicalType", NULL};
    dsRule *r = ruleNew(cc, kind);
    if (!r) return cfail(cc, where, "out of memory"), NULL;
    if (!obj) return r;
    const char *const *allowed = kind == DSR_STRING ? k_string
                                 : kind == DSR_LONG ? k_long
                                 : (kind == DSR_INT || kind == DSR_FLOAT || kind == DSR_DOUBLE) ? k_number
                                                                                                : k_plain;
    if (!onlyKeys(cc, obj, allowed, where)) return NULL;
    if (kind == DSR_STRING) return stringAttrs(cc, r, obj, where) ? r : NULL;
    if (!boundAttrs(cc, r, obj, where)) return NULL;
    json_t *lt = json_object_get(obj, "logicalType");
    if (lt) {
        if (!json_is_string(lt) || strcmp(json_string_value(lt), "timestamp-millis") != 0)
            return cfail(cc, where, "unsupported logicalType on long (only \"timestamp-millis\")"), NULL;
        r->timestamp_ms = true;
    }
    return r;
}

static dsRule *compileUnion(dsCompile *cc, const json_t *arr, const char *ns, const char *where) {
    dsRule *r = ruleNew(cc, DSR_UNION);
    if (!r) return cfail(cc, where, "out of memory"), NULL;
    if (json_array_size(arr) != 2) return cfail(cc, where, "only unions of null and one other type are supported"), NULL;
    r->null_index = r->branch_index = -1;
    for (int i = 0; i < 2; i++) {
        dsRule *b = compileType(cc, json_array_get(arr, (size_t)i), ns, where);
        if (!b) return NULL;
        if (b->kind == DSR_NULL && r->null_index < 0)
            r->null_index = i;
        else if (b->kind != DSR_NULL && b->kind != DSR_UNION && r->branch_index < 0)
            r->branch_index = i, r->branch = b;
    }
    if (r->null_index < 0 || r->branch_index < 0)
        return cfail(cc, where, "only unions of null and one other type are supported"), NULL;
    return r;
}

static char *joinSymbols(char **syms, size_t n) {
    size_t len = 1;
    for (size_t i = 0; i < n; i++) len += strlen(syms[i]) + 2;
    char *out = malloc(len), *p = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) p += sprintf(p, "%s%s", i ? ", " : "", syms[i]);
    *p = '\0';
    return out;
}

/* The symbol an unknown writer symbol resolves to (Avro 1.9+); it must be
 * one of the enum's own, or resolution would fill a value no reader has. */
static bool enumDefault(dsCompile *cc, dsRule *r, const json_t *def, const char *where) {
    r->default_symbol = -1;
    if (!def) return true;
    for (size_t i = 0; json_is_string(def) && i < r->nsymbols; i++)
        if (strcmp(r->symbols[i], json_string_value(def)) == 0) return r->default_symbol = (int)i, true;
    return cfail(cc, where, "the enum's \"default\" must be one of its symbols");
}

static dsRule *compileEnum(dsCompile *cc, dsRule *r, const json_t *obj, const char *where) {
    static const char *const allowed[] = {"type", "name", "namespace", "doc", "aliases", "symbols", "default", NULL};
    if (!onlyKeys(cc, obj, allowed, where)) return NULL;
    json_t *syms = json_object_get(obj, "symbols");
    if (!json_is_array(syms) || json_array_size(syms) == 0)
        return cfail(cc, where, "enum needs a non-empty \"symbols\" array"), NULL;
    r->symbols = calloc(json_array_size(syms), sizeof *r->symbols);
    if (!r->symbols) return cfail(cc, where, "out of memory"), NULL;
    for (size_t i = 0; i < json_array_size(syms); i++) {
        const char *s = json_string_value(json_array_get(syms, i));
        if (!s || !isAvroName(s)) return cfail(cc, where, "enum symbol %zu is not a valid Avro name", i), NULL;
        for (size_t j = 0; j < r->nsymbols; j++)
            if (strcmp(r->symbols[j], s) == 0) return cfail(cc, where, "duplicate enum symbol %s", s), NULL;
        if (!(r->symbols[r->nsymbols] = strdup(s))) return cfail(cc, where, "out of memory"), NULL;
        r->nsymbols++;
    }
    if (!(r->symbol_list = joinSymbols(r->symbols, r->nsymbols))) return cfail(cc, where, "out of memory"), NULL;
    return enumDefault(cc, r, json_object_get(obj, "default"), where) ? r : NULL;
}

static bool compileField(dsCompile *cc, dsRule *rec, size_t i, const json_t *f, const char *ns, const char *where) {
    static const char *const allowed[] = {"name", "type", "doc", "default", "order", "aliases", "serverSet", NULL};
    char fwhere[256];
    const char *name = json_string_value(json_object_get(f, "name"));
    if (!json_is_object(f) || !name || !isAvroName(name))
        return cfail(cc, where, "field %zu needs a valid \"name\"", i);
    snprintf(fwhere, sizeof fwhere, "%s.%s", where, name);
    if (!onlyKeys(cc, f, allowed, fwhere)) return false;
    for (size_t j = 0; j < i; j++)
        if (strcmp(rec->fields[j].name, name) == 0) return cfail(cc, fwhere, "duplicate field name");
    dsRuleField *rf = &rec->fields[i];
    if (!(rf->name = strdup(name))) return cfail(cc, fwhere, "out of memory");
    rec->nfields = i + 1; /* so ruleFree() sees this field even if compiling its type fails */
    json_t *ss = json_object_get(f, "serverSet");
    if (ss && !json_is_boolean(ss)) return cfail(cc, fwhere, "\"serverSet\" must be true or false");
    rf->server_set = json_is_true(ss);
    rf->def = json_incref(json_object_get(f, "default"));
    if (rf->server_set && !rf->def) return cfail(cc, fwhere, "a serverSet field needs a default");
    json_t *t = json_object_get(f, "type");
    if (!t) return cfail(cc, fwhere, "missing \"type\"");
    return (rf->type = compileType(cc, t, ns, fwhere)) != NULL;
}

static dsRule *compileRecord(dsCompile *cc, dsRule *r, const json_t *obj, const char *ns, const char *where) {
    static const char *const allowed[] = {"type", "name", "namespace", "doc", "aliases", "fields", NULL};
    if (!onlyKeys(cc, obj, allowed, where)) return NULL;
    json_t *fields = json_object_get(obj, "fields");
    if (!json_is_array(fields) || json_array_size(fields) == 0)
        return cfail(cc, where, "record needs a non-empty \"fields\" array"), NULL;
    r->fields = calloc(json_array_size(fields), sizeof *r->fields);
    if (!r->fields) return cfail(cc, where, "out of memory"), NULL;
    for (size_t i = 0; i < json_array_size(fields); i++)
        if (!compileField(cc, r, i, json_array_get(fields, i), ns, where)) return NULL;
    return r;
}

/* Records and enums: registers the name before compiling the body so a
 * record can refer to itself. */
static dsRule *compileNamed(dsCompile *cc, dsRuleKind kind, const json_t *obj, const char *ns, const char *where) {
    const char *name = json_string_value(json_object_get(obj, "name"));
    const char *own_ns = json_string_value(json_object_get(obj, "namespace"));
    if (!name) return cfail(cc, where, "named type needs a \"name\""), NULL;
    if (own_ns) ns = own_ns;
    char *full = qualify(name, ns);
    if (!full) return cfail(cc, where, "out of memory"), NULL;
    if (findNamed(cc, full)) {
        cfail(cc, where, "type %s is defined twice", full);
        free(full);
        return NULL;
    }
    dsRule *r = ruleNew(cc, kind);
    if (!r) {
        free(full);
        return cfail(cc, where, "out of memory"), NULL;
    }
    r->fullname = full;
    /* The namespace of a dotted name is its prefix; nested types inherit it. */
    char *nested_ns = strdup(full);
    if (!nested_ns) return cfail(cc, where, "out of memory"), NULL;
    char *dot = strrchr(nested_ns, '.');
    *(dot ? dot : nested_ns) = '\0';
    dsRule *out = kind == DSR_RECORD ? compileRecord(cc, r, obj, nested_ns, full) : compileEnum(cc, r, obj, full);
    free(nested_ns);
    return out;
}

static dsRule *compileContainer(dsCompile *cc, dsRuleKind kind, const json_t *obj, const char *ns, const char *where) {
    static const char *const k_array[] = {"type", "doc", "items", "maxItems", NULL};
    static const char *const k_map[] = {"type", "doc", "values", "keys", "maxItems", NULL};
    char iwhere[256];
    dsRule *r = ruleNew(cc, kind);
    if (!r) return cfail(cc, where, "out of memory"), NULL;
    if (!onlyKeys(cc, obj, kind == DSR_ARRAY ? k_array : k_map, where)) return NULL;
    if (!sizeAttr(cc, obj, "maxItems", &r->max_items, where)) return NULL;
    json_t *items = json_object_get(obj, kind == DSR_ARRAY ? "items" : "values");
    if (!items) return cfail(cc, where, kind == DSR_ARRAY ? "array needs \"items\"" : "map needs \"values\""), NULL;
    snprintf(iwhere, sizeof iwhere, "%s%s", where, kind == DSR_ARRAY ? "[]" : "{}");
    if (!(r->items = compileType(cc, items, ns, iwhere))) return NULL;
    if (kind == DSR_ARRAY) return r;
    /* Map keys are always Avro strings; "keys" only adds string rules. */
    json_t *keys = json_object_get(obj, "keys");
    if (keys && !(json_is_object(keys) && json_is_string(json_object_get(keys, "type")) &&
                  strcmp(json_string_value(json_object_get(keys, "type")), "string") == 0))
        return cfail(cc, where, "\"keys\" must be a string type object"), NULL;
    snprintf(iwhere, sizeof iwhere, "%s keys", where);
    if (!(r->keys = compilePrimitive(cc, DSR_STRING, keys, iwhere))) return NULL;
    /* Lower-casing keys could merge two of them; uuid keys are not needed. */
    if (r->keys->format == DSR_FORMAT_UUID) return cfail(cc, iwhere, "format uuid is not supported on map keys"), NULL;
    return r;
}

static dsRule *compileType(dsCompile *cc, const json_t *t, const char *ns, const char *where) {
    dsRuleKind kind;
    if (json_is_array(t)) return compileUnion(cc, t, ns, where);
    const json_t *obj = json_is_object(t) ? t : NULL;
    const char *name = json_string_value(obj ? json_object_get(obj, "type") : t);
    if (!name) return cfail(cc, where, "a type must be a name, an object with \"type\" or a union array"), NULL;
    if (primitiveKind(name, &kind)) return compilePrimitive(cc, kind, obj, where);
    if (strcmp(name, "record") == 0 && obj) return compileNamed(cc, DSR_RECORD, obj, ns, where);
    if (strcmp(name, "enum") == 0 && obj) return compileNamed(cc, DSR_ENUM, obj, ns, where);
    if (strcmp(name, "array") == 0 && obj) return compileContainer(cc, DSR_ARRAY, obj, ns, where);
    if (strcmp(name, "map") == 0 && obj) return compileContainer(cc, DSR_MAP, obj, ns, where);
    if (strcmp(name, "bytes") == 0 || strcmp(name, "fixed") == 0)
        return cfail(cc, where, "type %s is not supported by the codec", name), NULL;
    static const char *const k_ref[] = {"type", NULL};
    if (obj && !onlyKeys(cc, obj, k_ref, where)) return NULL;
    return lookupNamed(cc, name, ns, where);
}

/* ---- cross-checks ---- */

static bool sameShape(dsCompile *cc, const dsRule *r, avro_schema_t s, const char *where, int depth);

static bool sameRecord(dsCompile *cc, const dsRule *r, avro_schema_t s, const char *where, int depth) {
    if (avro_schema_record_size(s) != r->nfields) return cfail(cc, where, "avro-c sees a different field count");
    for (size_t i = 0; i < r->nfields; i++) {
        const char *an = avro_schema_record_field_name(s, (int)i);
        if (!an || strcmp(an, r->fields[i].name) != 0) return cfail(cc, where, "avro-c sees different field names");
        if (!sameShape(cc, r->fields[i].type, avro_schema_record_field_get_by_index(s, (int)i), where, depth + 1))
            return false;
    }
    return true;
}

/* The converters address Avro children by index, so the avro-c schema must
 * have exactly the rule tree's shape. Recursive types are followed to a
 * bounded depth, which covers every distinct node. */
static bool sameShape(dsCompile *cc, const dsRule *r, avro_schema_t s, const char *where, int depth) {
    static const avro_type_t types[] = {
        [DSR_NULL] = AVRO_NULL,     [DSR_BOOLEAN] = AVRO_BOOLEAN, [DSR_INT] = AVRO_INT32, [DSR_LONG] = AVRO_INT64,
        [DSR_FLOAT] = AVRO_FLOAT,   [DSR_DOUBLE] = AVRO_DOUBLE,   [DSR_STRING] = AVRO_STRING,
        [DSR_RECORD] = AVRO_RECORD, [DSR_ENUM] = AVRO_ENUM,       [DSR_ARRAY] = AVRO_ARRAY,
        [DSR_MAP] = AVRO_MAP,       [DSR_UNION] = AVRO_UNION,
    };
    if (depth > 32) return true;
    while (is_avro_link(s)) s = avro_schema_link_target(s);
    if (!s || avro_typeof(s) != types[r->kind]) return cfail(cc, where, "avro-c sees a different type");
    switch (r->kind) {
    case DSR_RECORD:
        return sameRecord(cc, r, s, where, depth);
    case DSR_ENUM:
        if ((size_t)avro_schema_enum_number_of_symbols(s) != r->nsymbols)
            return cfail(cc, where, "avro-c sees different symbols");
        for (size_t i = 0; i < r->nsymbols; i++)
            if (strcmp(avro_schema_enum_get(s, (int)i), r->symbols[i]) != 0)
                return cfail(cc, where, "avro-c sees different symbols");
        return true;
    case DSR_ARRAY:
        return sameShape(cc, r->items, avro_schema_array_items(s), where, depth + 1);
    case DSR_MAP:
        return sameShape(cc, r->items, avro_schema_map_values(s), where, depth + 1);
    case DSR_UNION:
        return avro_schema_union_size(s) == 2 &&
               sameShape(cc, r->branch, avro_schema_union_branch(s, r->branch_index), where, depth + 1);
    default:
        return true;
    }
}

/* Every default must be a valid value of its field, and a union's default
 * must match its first branch (Avro spec), or other readers reject the
 * schema or fill something this codec would not accept. */
static bool checkDefaults(dsCompile *cc) {
    for (dsRule *r = cc->rs->all; r; r = r->next_alloc) {
        for (size_t i = 0; r->kind == DSR_RECORD && i < r->nfields; i++) {
            const dsRuleField *f = &r->fields[i];
            char where[256];
            snprintf(where, sizeof where, "%s.%s default", r->fullname, f->name);
            if (!f->def) continue;
            if (f->type->kind == DSR_UNION && (json_is_null(f->def) ? f->type->null_index : f->type->branch_index) != 0)
                return cfail(cc, where, "a union's default must match its first branch");
            dsCodecError err;
            dsWalk w;
            dsWalkInit(&w, &err);
            w.from_default = true;
            if (!dsWalkValue(&w, f->type, f->def, NULL)) return cfail(cc, where, "%s", err.message);
        }
    }
    return true;
}

/* The decision's own time is bounded (codec.h) beyond what a schema
 * attribute can say: the upper bound moves with the clock. Only the
 * top-level decided_at, so a nested field of the same name is not. */
static void markDecisionTime(dsRule *root) {
    for (size_t i = 0; i < root->nfields; i++) {
        dsRule *t = root->fields[i].type;
        if (strcmp(root->fields[i].name, "decided_at") == 0 && t->kind == DSR_LONG && t->timestamp_ms)
            t->decision_time = true;
    }
}

bool dsRulesCompile(const json_t *schema, avro_schema_t avro, const char *origin, dsRuleSet *out, char *errbuf,
                    size_t errlen) {
    dsCompile cc = {.rs = out, .origin = origin, .errbuf = errbuf, .errlen = errlen};
    memset(out, 0, sizeof *out);
    out->root = compileType(&cc, schema, NULL, "schema");
    bool ok = out->root != NULL;
    if (ok && out->root->kind != DSR_RECORD) ok = cfail(&cc, "schema", "the top-level type must be a record");
    ok = ok && sameShape(&cc, out->root, avro, out->root->fullname, 0) && checkDefaults(&cc);
    if (ok) markDecisionTime(out->root);
    if (!ok) dsRulesFree(out);
    return ok;
}
