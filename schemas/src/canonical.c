/* canonical.c - Avro's Parsing Canonical Form (canonical.h), following the
 * Avro 1.11 specification's transformation rules: [PRIMITIVES] a primitive
 * in object form becomes its name; [FULLNAMES] names become fullnames;
 * [STRIP] only type, name, fields, symbols, items, values and size stay;
 * [ORDER] in that order; [STRINGS] and [WHITESPACE] by jansson's compact
 * output (UTF-8, no spaces); [INTEGERS] sizes as plain integers. The form is
 * built as a jansson tree (insertion order is output order) and dumped. */
#include "ds/canonical.h"
#include "ds/codec.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct canonCtx {
    json_t *names; /* fullnames defined so far, as a set */
    char *errbuf;
    size_t errlen;
} canonCtx;

static json_t *canonFail(canonCtx *cx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static json_t *canonFail(canonCtx *cx, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cx->errbuf, cx->errlen, fmt, ap);
    va_end(ap);
    return NULL;
}

static bool canonPrimitive(const char *name) {
    static const char *const prims[] = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"};
    for (size_t i = 0; i < sizeof(prims) / sizeof(prims[0]); i++)
        if (strcmp(name, prims[i]) == 0) return true;
    return false;
}

/* [A-Za-z_][A-Za-z0-9_]*, each dot-separated part of a fullname. */
static bool canonValidName(const char *s, bool dotted) {
    bool start = true;
    for (; *s; s++) {
        char c = *s;
        bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        if (dotted && c == '.' && !start) {
            start = true;
            continue;
        }
        if (!(alpha || (!start && c >= '0' && c <= '9'))) return false;
        start = false;
    }
    return !start;
}

/* name qualified by ns, unless it already holds a dot or ns is empty.
 * malloc'd; NULL when out of memory. */
static char *canonQualify(const char *name, const char *ns) {
    size_t n = strlen(name) + (ns ? strlen(ns) : 0) + 2;
    char *full = malloc(n);
    if (full == NULL) return NULL;
    if (strchr(name, '.') != NULL || ns == NULL || ns[0] == '\0') snprintf(full, n, "%s", name);
    else snprintf(full, n, "%s.%s", ns, name);
    return full;
}

/* A type name in a reference position: a primitive, or a named type
 * defined before (the enclosing namespace first, then as written). */
static json_t *canonReference(canonCtx *cx, const char *name, const char *ns) {
    if (canonPrimitive(name)) return json_string(name);
    char *full = canonQualify(name, ns);
    if (full == NULL) return canonFail(cx, "out of memory");
    const char *found = json_object_get(cx->names, full) ? full : json_object_get(cx->names, name) ? name : NULL;
    json_t *out = found ? json_string(found) : canonFail(cx, "\"%.64s\" is not a defined type", name);
    free(full);
    return out;
}

static json_t *canonType(canonCtx *cx, const json_t *t, const char *ns, int depth);

/* Defines the named type of object t: returns its fullname and sets
 * *inner to the namespace its children are resolved in (both malloc'd);
 * NULL when the name is invalid or defined before. */
static char *canonDefine(canonCtx *cx, const json_t *t, const char *ns, char **inner) {
    const char *name = json_string_value(json_object_get(t, "name"));
    const json_t *nsv = json_object_get(t, "namespace");
    if (name == NULL || !canonValidName(name, true)) return canonFail(cx, "a named type needs a valid \"name\""), NULL;
    if (nsv != NULL && !json_is_string(nsv)) return canonFail(cx, "\"namespace\" of %.64s must be a string", name), NULL;
    const char *space = nsv ? json_string_value(nsv) : ns;
    if (space[0] != '\0' && strchr(name, '.') == NULL && !canonValidName(space, true))
        return canonFail(cx, "\"%.64s\" is not a valid namespace", space), NULL;
    char *full = canonQualify(name, space);
    if (full == NULL) return canonFail(cx, "out of memory"), NULL;
    const char *last = strrchr(full, '.');
    if (canonPrimitive(last ? last + 1 : full)) {
        canonFail(cx, "\"%.64s\" redefines a primitive type", full);
    } else if (json_object_get(cx->names, full) != NULL) {
        canonFail(cx, "\"%.64s\" is defined twice", full);
    } else if ((*inner = strndup(full, last ? (size_t)(last - full) : 0)) == NULL) {
        canonFail(cx, "out of memory");
    } else {
        json_object_set_new(cx->names, full, json_true());
        return full;
    }
    free(full);
    return NULL;
}

static json_t *canonFields(canonCtx *cx, const json_t *fields, const char *fullname, const char *inner, int depth) {
    if (!json_is_array(fields)) return canonFail(cx, "record %.64s needs a \"fields\" array", fullname);
    json_t *list = json_array(), *seen = json_object(), *f;
    size_t i;
    json_array_foreach(fields, i, f) {
        const char *fname = json_string_value(json_object_get(f, "name"));
        json_t *ftype = json_object_get(f, "type"), *ct = NULL;
        if (!json_is_object(f) || fname == NULL || !canonValidName(fname, false) || ftype == NULL)
            canonFail(cx, "record %.64s: field %zu needs a valid \"name\" and a \"type\"", fullname, i);
        else if (json_object_get(seen, fname) != NULL)
            canonFail(cx, "record %.64s: field \"%s\" appears twice", fullname, fname);
        else if (json_object_set_new(seen, fname, json_true()) == 0)
            ct = canonType(cx, ftype, inner, depth + 1);
        if (ct == NULL) {
            json_decref(list);
            list = NULL;
            break;
        }
        json_array_append_new(list, json_pack("{s:s, s:o}", "name", fname, "type", ct));
    }
    json_decref(seen);
    return list;
}

/* record, enum and fixed: the name, then what the kind adds. */
static json_t *canonNamed(canonCtx *cx, const json_t *t, const char *type, const char *ns, int depth) {
    char *inner = NULL, *full = canonDefine(cx, t, ns, &inner);
    json_t *out = NULL;
    if (full == NULL) return NULL;
    if (strcmp(type, "fixed") == 0) {
        json_t *size = json_object_get(t, "size");
        if (!json_is_integer(size) || json_integer_value(size) < 0)
            canonFail(cx, "fixed %.64s needs a non-negative integer \"size\"", full);
        else
            out = json_pack("{s:s, s:s, s:I}", "name", full, "type", type, "size", json_integer_value(size));
    } else if (strcmp(type, "enum") == 0) {
        json_t *symbols = json_object_get(t, "symbols"), *sym;
        size_t i;
        bool ok = json_is_array(symbols);
        if (!ok) canonFail(cx, "enum %.64s needs a \"symbols\" array", full);
        json_array_foreach(ok ? symbols : NULL, i, sym) {
            if (!json_is_string(sym) || !canonValidName(json_string_value(sym), false)) {
                canonFail(cx, "enum %.64s: symbol %zu is not a valid name", full, i);
                ok = false;
                break;
            }
        }
        if (ok) out = json_pack("{s:s, s:s, s:O}", "name", full, "type", type, "symbols", symbols);
    } else {
        json_t *fields = canonFields(cx, json_object_get(t, "fields"), full, inner, depth);
        if (fields != NULL) out = json_pack("{s:s, s:s, s:o}", "name", full, "type", type, "fields", fields);
    }
    free(full);
    free(inner);
    return out;
}

static json_t *canonObject(canonCtx *cx, const json_t *t, const char *ns, int depth) {
    const char *type = json_string_value(json_object_get(t, "type"));
    if (type == NULL) return canonFail(cx, "a schema object needs a \"type\" string");
    if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0 || strcmp(type, "enum") == 0 ||
        strcmp(type, "fixed") == 0)
        return canonNamed(cx, t, type, ns, depth);
    bool array = strcmp(type, "array") == 0;
    if (array || strcmp(type, "map") == 0) {
        const char *key = array ? "items" : "values";
        json_t *sub = json_object_get(t, key);
        if (sub == NULL) return canonFail(cx, "%s needs \"%s\"", type, key);
        json_t *ct = canonType(cx, sub, ns, depth + 1);
        return ct ? json_pack("{s:s, s:o}", "type", type, key, ct) : NULL;
    }
    return canonReference(cx, type, ns); /* {"type": "int"} and {"type": "a.Named"} */
}

static json_t *canonType(canonCtx *cx, const json_t *t, const char *ns, int depth) {
    if (depth > DS_CANONICAL_MAX_DEPTH) return canonFail(cx, "nested deeper than %d", DS_CANONICAL_MAX_DEPTH);
    if (json_is_string(t)) return canonReference(cx, json_string_value(t), ns);
    if (json_is_object(t)) return canonObject(cx, t, ns, depth);
    if (!json_is_array(t)) return canonFail(cx, "a schema is a string, an object or an array (a union)");
    json_t *out = json_array(), *b;
    size_t i;
    json_array_foreach(t, i, b) {
        if (json_is_array(b)) {
            json_decref(out);
            return canonFail(cx, "a union may not hold a union");
        }
        json_t *ct = canonType(cx, b, ns, depth + 1);
        if (ct == NULL) {
            json_decref(out);
            return NULL;
        }
        json_array_append_new(out, ct);
    }
    return out;
}

char *dsCanonicalForm(const json_t *schema, char *errbuf, size_t errlen) {
    canonCtx cx = {json_object(), errbuf, errlen};
    if (cx.names == NULL) return snprintf(errbuf, errlen, "out of memory"), NULL;
    json_t *form = canonType(&cx, schema, "", 0);
    json_decref(cx.names);
    if (form == NULL) return NULL;
    char *text = json_dumps(form, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(form);
    if (text == NULL) snprintf(errbuf, errlen, "out of memory");
    return text;
}

char *dsCanonicalFormText(const char *text, size_t len, char *errbuf, size_t errlen) {
    json_error_t jerr;
    json_t *schema = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (schema == NULL) {
        snprintf(errbuf, errlen, "not JSON: line %d: %s", jerr.line, jerr.text);
        return NULL;
    }
    char *form = dsCanonicalForm(schema, errbuf, errlen);
    json_decref(schema);
    return form;
}

int dsCodecVersionOfSchemaText(const dsCodec *c, const char *text, size_t len, char *errbuf, size_t errlen) {
    char *form = dsCanonicalFormText(text, len, errbuf, errlen);
    if (form == NULL) return -1;
    int found = 0;
    for (int v = dsCodecCurrentVersion(c); v >= 1 && found == 0; v--) {
        const char *known = dsCodecSchemaId(c, v) >= 0 ? dsCodecSchemaText(c, v) : NULL;
        char err[256];
        char *kform = known ? dsCanonicalFormText(known, strlen(known), err, sizeof(err)) : NULL;
        if (kform != NULL && strcmp(kform, form) == 0) found = v;
        free(kform);
    }
    free(form);
    if (found == 0) snprintf(errbuf, errlen, "it is none of the known schema versions");
    return found;
}
