/* compat.c - schema-level compatibility (compat.h): the Avro 1.11 schema
 * resolution rules applied to two schemas instead of two values, and the
 * compatibility modes over a subject's versions.
 *
 * It walks the two schemas' JSON in lock step, as resolve.c walks two
 * values: the JSON is where field and enum defaults are (avro-c keeps
 * neither). Named types can be referred to by name anywhere after their
 * definition, so each schema's definitions are collected first (full name
 * -> defining object, namespaces inherited as the specification says) and a
 * reference resolves through that table. Recursive records terminate
 * because a pair of records already under check is assumed compatible
 * (the usual co-inductive reading: a failure anywhere still fails the walk).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ds/compat.h"

/* Deeper than any schema a person writes; bounds the walk's stack. */
#define CP_MAX_DEPTH 128

typedef enum {
    CP_NULL,
    CP_BOOLEAN,
    CP_INT,
    CP_LONG,
    CP_FLOAT,
    CP_DOUBLE,
    CP_BYTES,
    CP_STRING,
    CP_RECORD,
    CP_ENUM,
    CP_FIXED,
    CP_ARRAY,
    CP_MAP,
    CP_UNION,
} cpKind;

static const char *const cpPrimitiveNames[] = {
    [CP_NULL] = "null",     [CP_BOOLEAN] = "boolean", [CP_INT] = "int",     [CP_LONG] = "long",
    [CP_FLOAT] = "float",   [CP_DOUBLE] = "double",   [CP_BYTES] = "bytes", [CP_STRING] = "string",
};

/* A named type (record, enum, fixed) of one schema. */
typedef struct cpNamed {
    char *fullname;    /* owned */
    char *ns;          /* owned; the namespace names inside it inherit */
    const json_t *def; /* borrowed: the defining object */
} cpNamed;

typedef struct cpSchema {
    cpNamed **named; /* owned; pointers, so an entry stays put when the array grows */
    size_t n, cap;
} cpSchema;

/* One schema node, resolved: its kind and where its parts are. */
typedef struct cpType {
    cpKind kind;
    const json_t *node;   /* the object (complex form), the union array, or the bare name */
    const cpNamed *named; /* record, enum, fixed */
    const char *ns;       /* the namespace for names inside; borrowed */
    const char *name;     /* the type name as written, for "unknown type" messages */
} cpType;

typedef struct cpWalk {
    const cpSchema *r, *w; /* reader's and writer's named types */
    bool writer_first;     /* a type change is told from the writer's type to the reader's, else the reverse */
    size_t plen;
    char path[256];
    const json_t *seen[CP_MAX_DEPTH][2]; /* reader and writer records under check */
    size_t nseen;
    char *errbuf;
    size_t errlen;
} cpWalk;

/* ---- messages ---- */

static bool cpFailv(char *errbuf, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool cpFailv(char *errbuf, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (errbuf && errlen) vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
    return false;
}

/* "<path>: <rule>"; the path is "the record" at the top level. */
static bool cpFail(cpWalk *cw, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool cpFail(cpWalk *cw, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cpFailv(cw->errbuf, cw->errlen, "%s: %s", cw->plen ? cw->path : "the record", msg);
}

static size_t cpPush(cpWalk *cw, const char *fmt, const char *name) {
    size_t saved = cw->plen;
    int n = snprintf(cw->path + cw->plen, sizeof cw->path - cw->plen, fmt, name);
    if (n > 0) cw->plen = cw->plen + (size_t)n < sizeof cw->path ? cw->plen + (size_t)n : sizeof cw->path - 1;
    return saved;
}

static void cpPop(cpWalk *cw, size_t saved) {
    cw->plen = saved;
    cw->path[saved] = '\0';
}

/* ---- named types ---- */

static void cpSchemaFree(cpSchema *s) {
    for (size_t i = 0; i < s->n; i++) {
        free(s->named[i]->fullname);
        free(s->named[i]->ns);
        free(s->named[i]);
    }
    free(s->named);
    *s = (cpSchema){0};
}

/* "a.b.C" stays; "C" in namespace "a.b" becomes "a.b.C". Caller frees. */
static char *cpQualify(const char *name, const char *ns) {
    if (strchr(name, '.') || !ns || !*ns) return strdup(name);
    size_t len = strlen(ns) + 1 + strlen(name) + 1;
    char *out = malloc(len);
    if (out) snprintf(out, len, "%s.%s", ns, name);
    return out;
}

static const cpNamed *cpFindName(const cpSchema *s, const char *fullname) {
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->named[i]->fullname, fullname) == 0) return s->named[i];
    return NULL;
}

static const cpNamed *cpFindDef(const cpSchema *s, const json_t *def) {
    for (size_t i = 0; i < s->n; i++)
        if (s->named[i]->def == def) return s->named[i];
    return NULL;
}

/* A reference by name: in the enclosing namespace, else the null one. */
static const cpNamed *cpLookup(const cpSchema *s, const char *name, const char *ns) {
    char *full = cpQualify(name, ns);
    const cpNamed *nd = full ? cpFindName(s, full) : NULL;
    free(full);
    return nd ? nd : cpFindName(s, name);
}

static bool cpIsNamedKind(const char *t) {
    return strcmp(t, "record") == 0 || strcmp(t, "error") == 0 || strcmp(t, "enum") == 0 || strcmp(t, "fixed") == 0;
}

/* Registers the named type defined by obj in the enclosing namespace ns. */
static const cpNamed *cpDefine(cpSchema *s, const json_t *obj, const char *ns, char *errbuf, size_t errlen) {
    const char *name = json_string_value(json_object_get(obj, "name"));
    const char *own = json_string_value(json_object_get(obj, "namespace"));
    if (!name) return cpFailv(errbuf, errlen, "a named type has no \"name\""), NULL;
    cpNamed *nd = calloc(1, sizeof *nd);
    if (!nd || !(nd->fullname = cpQualify(name, own ? own : ns)) || !(nd->ns = strdup(nd->fullname))) goto failed;
    char *dot = strrchr(nd->ns, '.'); /* the namespace of a dotted name is its prefix */
    *(dot ? dot : nd->ns) = '\0';
    nd->def = obj;
    if (cpFindName(s, nd->fullname)) {
        cpFailv(errbuf, errlen, "type %s is defined twice", nd->fullname);
        goto failed_quiet;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        cpNamed **grown = realloc(s->named, cap * sizeof *grown);
        if (!grown) goto failed;
        s->named = grown;
        s->cap = cap;
    }
    s->named[s->n++] = nd;
    return nd;
failed:
    cpFailv(errbuf, errlen, "out of memory");
failed_quiet:
    if (nd) {
        free(nd->fullname);
        free(nd->ns);
    }
    free(nd);
    return NULL;
}

/* Collects every named type defined in node (and below) into s. */
static bool cpCollect(cpSchema *s, const json_t *node, const char *ns, int depth, char *errbuf, size_t errlen) {
    if (depth > CP_MAX_DEPTH) return cpFailv(errbuf, errlen, "the schema is nested too deeply");
    if (json_is_array(node)) {
        for (size_t i = 0; i < json_array_size(node); i++)
            if (!cpCollect(s, json_array_get(node, i), ns, depth + 1, errbuf, errlen)) return false;
        return true;
    }
    const json_t *t = json_object_get(node, "type"); /* NULL unless node is an object */
    if (!json_is_string(t)) return !t || cpCollect(s, t, ns, depth + 1, errbuf, errlen);
    const char *tn = json_string_value(t);
    if (strcmp(tn, "array") == 0 || strcmp(tn, "map") == 0)
        return cpCollect(s, json_object_get(node, tn[0] == 'a' ? "items" : "values"), ns, depth + 1, errbuf, errlen);
    if (!cpIsNamedKind(tn)) return true;
    const cpNamed *nd = cpDefine(s, node, ns, errbuf, errlen);
    if (!nd) return false;
    const json_t *fields = json_object_get(node, "fields");
    for (size_t i = 0; i < json_array_size(fields); i++)
        if (!cpCollect(s, json_object_get(json_array_get(fields, i), "type"), nd->ns, depth + 1, errbuf, errlen))
            return false;
    return true;
}

/* ---- resolving a node ---- */

static bool cpPrimitive(const char *name, cpKind *kind) {
    for (size_t i = 0; i < sizeof cpPrimitiveNames / sizeof cpPrimitiveNames[0]; i++)
        if (strcmp(cpPrimitiveNames[i], name) == 0) return *kind = (cpKind)i, true;
    return false;
}

/* What node (in namespace ns of schema s) is; false with out->name set to
 * the offending name (or NULL) if it is no valid type. */
static bool cpResolve(const cpSchema *s, const json_t *node, const char *ns, cpType *out) {
    *out = (cpType){.node = node, .ns = ns};
    if (json_is_array(node)) return out->kind = CP_UNION, true;
    const json_t *t = json_is_object(node) ? json_object_get(node, "type") : node;
    if (json_is_object(t) || json_is_array(t)) return cpResolve(s, t, ns, out);
    if (!(out->name = json_string_value(t))) return false;
    if (cpPrimitive(out->name, &out->kind)) return true;
    if (json_is_object(node) && strcmp(out->name, "array") == 0) return out->kind = CP_ARRAY, true;
    if (json_is_object(node) && strcmp(out->name, "map") == 0) return out->kind = CP_MAP, true;
    const cpNamed *nd = json_is_object(node) && cpIsNamedKind(out->name) ? cpFindDef(s, node)
                                                                         : cpLookup(s, out->name, ns);
    if (!nd) return false;
    const char *tn = json_string_value(json_object_get(nd->def, "type"));
    out->kind = strcmp(tn, "enum") == 0 ? CP_ENUM : strcmp(tn, "fixed") == 0 ? CP_FIXED : CP_RECORD;
    out->named = nd;
    out->node = nd->def;
    out->ns = nd->ns;
    return true;
}

static bool __attribute__((noinline)) cpBadType(cpWalk *cw, const cpType *t, const char *side) {
    if (t->name) return cpFail(cw, "the %s's type \"%s\" is unknown", side, t->name);
    return cpFail(cw, "the %s's type is not a valid Avro type", side);
}

/* "long", "record com.bnpl.decisions.Money", "union [null, double]". */
static const char *cpDescribe(const cpSchema *s, const cpType *t, char *buf, size_t len) {
    static const char *const complex[] = {[CP_RECORD] = "record", [CP_ENUM] = "enum", [CP_FIXED] = "fixed",
                                          [CP_ARRAY] = "array", [CP_MAP] = "map"};
    if (t->kind <= CP_STRING) snprintf(buf, len, "%s", cpPrimitiveNames[t->kind]);
    else if (t->named) snprintf(buf, len, "%s %s", complex[t->kind], t->named->fullname);
    else if (t->kind != CP_UNION) snprintf(buf, len, "%s", complex[t->kind]);
    if (t->kind != CP_UNION) return buf;
    size_t used = (size_t)snprintf(buf, len, "union [");
    for (size_t i = 0; i < json_array_size(t->node) && used < len; i++) {
        cpType b;
        char one[128];
        const char *d = cpResolve(s, json_array_get(t->node, i), t->ns, &b) && b.kind != CP_UNION
                            ? cpDescribe(s, &b, one, sizeof one) : "?";
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", d);
    }
    if (used < len) snprintf(buf + used, len - used, "]");
    return buf;
}

/* ---- matching ---- */

static bool cpPromotes(cpKind w, cpKind r) {
    switch (w) {
    case CP_INT: return r == CP_LONG || r == CP_FLOAT || r == CP_DOUBLE;
    case CP_LONG: return r == CP_FLOAT || r == CP_DOUBLE;
    case CP_FLOAT: return r == CP_DOUBLE;
    case CP_STRING: return r == CP_BYTES;
    case CP_BYTES: return r == CP_STRING;
    default: return false;
    }
}

static const char *cpUnqualified(const char *fullname) {
    const char *dot = strrchr(fullname, '.');
    return dot ? dot + 1 : fullname;
}

static bool cpSameName(const cpType *r, const cpType *w) {
    return strcmp(cpUnqualified(r->named->fullname), cpUnqualified(w->named->fullname)) == 0;
}

static const json_t *cpItems(const cpType *t) {
    return json_object_get(t->node, t->kind == CP_ARRAY ? "items" : "values");
}

/* The specification's "match": whether a writer type may resolve to a
 * reader type at all (used to pick a reader union's branch). */
static bool cpMatches(const cpWalk *cw, const cpType *r, const cpType *w) {
    cpType ri, wi;
    if (r->kind == CP_UNION || w->kind == CP_UNION) return true;
    if (r->kind != w->kind) return cpPromotes(w->kind, r->kind);
    switch (r->kind) {
    case CP_RECORD:
    case CP_ENUM: return cpSameName(r, w);
    case CP_FIXED:
        return cpSameName(r, w) && json_equal(json_object_get(r->node, "size"), json_object_get(w->node, "size"));
    case CP_ARRAY:
    case CP_MAP:
        return cpResolve(cw->r, cpItems(r), r->ns, &ri) && cpResolve(cw->w, cpItems(w), w->ns, &wi) &&
               cpMatches(cw, &ri, &wi);
    default: return true;
    }
}

/* ---- the walk ---- */

static bool cpCheck(cpWalk *cw, const cpType *r, const cpType *w);

/* "type changed from long to string", old to new (see writer_first). */
static bool __attribute__((noinline)) cpChanged(cpWalk *cw, const char *what, const cpType *r, const cpType *w,
                                                const char *detail) {
    char rd[256], wd[256];
    cpDescribe(cw->r, r, rd, sizeof rd);
    cpDescribe(cw->w, w, wd, sizeof wd);
    return cpFail(cw, "%s changed from %s to %s%s", what, cw->writer_first ? wd : rd, cw->writer_first ? rd : wd,
                  detail);
}

static bool cpMismatch(cpWalk *cw, const cpType *r, const cpType *w) {
    if (r->kind != w->kind) return cpChanged(cw, "type", r, w, "");
    if (r->kind == CP_FIXED && cpSameName(r, w)) {
        char rs[32], ws[32];
        snprintf(rs, sizeof rs, "%lld", (long long)json_integer_value(json_object_get(r->node, "size")));
        snprintf(ws, sizeof ws, "%lld", (long long)json_integer_value(json_object_get(w->node, "size")));
        return cpFail(cw, "fixed size changed from %s to %s", cw->writer_first ? ws : rs, cw->writer_first ? rs : ws);
    }
    return cpChanged(cw, "type", r, w, " (named types match by unqualified name)");
}

/* The reader union's first branch that matches the non-union writer w. */
static bool cpFirstMatch(const cpWalk *cw, const cpType *r, const cpType *w, cpType *out) {
    for (size_t i = 0; i < json_array_size(r->node); i++)
        if (cpResolve(cw->r, json_array_get(r->node, i), r->ns, out) && out->kind != CP_UNION &&
            cpMatches(cw, out, w))
            return true;
    return false;
}

static bool cpToUnion(cpWalk *cw, const cpType *r, const cpType *w) {
    cpType rb;
    if (!cpFirstMatch(cw, r, w, &rb)) return cpChanged(cw, "type", r, w, " (no branch of the reader's union matches)");
    return cpCheck(cw, &rb, w);
}

static bool __attribute__((noinline)) cpBranchFails(cpWalk *cw, const cpType *r, const cpType *w, const cpType *wb) {
    char rd[256], bd[128];
    cpDescribe(cw->w, wb, bd, sizeof bd);
    if (r->kind != CP_UNION) {
        char detail[192];
        snprintf(detail, sizeof detail, " (the writer's union branch %s does not resolve)", bd);
        return cpChanged(cw, "type", r, w, detail);
    }
    return cpFail(cw, "union branch %s of the writer matches no branch of the reader's %s", bd,
                  cpDescribe(cw->r, r, rd, sizeof rd));
}

/* A writer union: whichever branch the data holds must resolve. */
static bool cpFromUnion(cpWalk *cw, const cpType *r, const cpType *w) {
    for (size_t i = 0; i < json_array_size(w->node); i++) {
        cpType wb, rb;
        if (!cpResolve(cw->w, json_array_get(w->node, i), w->ns, &wb)) return cpBadType(cw, &wb, "writer");
        if (wb.kind == CP_UNION) return cpFail(cw, "the writer has a union inside a union, which Avro forbids");
        if (r->kind == CP_UNION ? !cpFirstMatch(cw, r, &wb, &rb) : !cpMatches(cw, r, &wb))
            return cpBranchFails(cw, r, w, &wb);
        if (!cpCheck(cw, r, &wb)) return false;
    }
    return true;
}

static bool cpEnum(cpWalk *cw, const cpType *r, const cpType *w) {
    /* An unknown writer symbol takes the reader's default (Avro 1.9+). */
    if (json_object_get(r->node, "default")) return true;
    const json_t *rsyms = json_object_get(r->node, "symbols"), *wsyms = json_object_get(w->node, "symbols");
    for (size_t i = 0; i < json_array_size(wsyms); i++) {
        const char *sym = json_string_value(json_array_get(wsyms, i));
        size_t k = 0;
        while (k < json_array_size(rsyms) && !json_equal(json_array_get(rsyms, k), json_array_get(wsyms, i))) k++;
        if (k == json_array_size(rsyms))
            return cpFail(cw, "enum symbol \"%s\" of the writer is not in the reader and the reader's enum has no "
                          "default", sym ? sym : "?");
    }
    return true;
}

/* Arrays and maps: element by element. */
static bool cpElements(cpWalk *cw, const cpType *r, const cpType *w) {
    cpType ri, wi;
    size_t saved = cpPush(cw, "%s", r->kind == CP_ARRAY ? "[]" : "{}");
    bool ok = !cpResolve(cw->r, cpItems(r), r->ns, &ri)   ? cpBadType(cw, &ri, "reader")
              : !cpResolve(cw->w, cpItems(w), w->ns, &wi) ? cpBadType(cw, &wi, "writer")
                                                           : cpCheck(cw, &ri, &wi);
    cpPop(cw, saved);
    return ok;
}

static const json_t *cpFieldByName(const json_t *fields, const char *name) {
    for (size_t i = 0; i < json_array_size(fields); i++) {
        const json_t *f = json_array_get(fields, i);
        const char *n = json_string_value(json_object_get(f, "name"));
        if (n && strcmp(n, name) == 0) return f;
    }
    return NULL;
}

/* One reader field: the writer's field of that name, else a default. */
static bool cpField(cpWalk *cw, const json_t *rf, const char *name, const cpType *r, const cpType *w) {
    const json_t *wf = cpFieldByName(json_object_get(w->node, "fields"), name);
    cpType rt, wt;
    if (!wf)
        return json_object_get(rf, "default")
                   ? true
                   : cpFail(cw, "field \"%s\" has no default and is missing from the writer", name);
    if (!cpResolve(cw->r, json_object_get(rf, "type"), r->ns, &rt)) return cpBadType(cw, &rt, "reader");
    if (!cpResolve(cw->w, json_object_get(wf, "type"), w->ns, &wt)) return cpBadType(cw, &wt, "writer");
    return cpCheck(cw, &rt, &wt);
}

/* Writer fields the reader lacks are dropped: the loop is over the reader's. */
static bool cpRecord(cpWalk *cw, const cpType *r, const cpType *w) {
    for (size_t i = 0; i < cw->nseen; i++)
        if (cw->seen[i][0] == r->node && cw->seen[i][1] == w->node) return true;
    if (cw->nseen == CP_MAX_DEPTH) return cpFail(cw, "records are nested too deeply to check");
    cw->seen[cw->nseen][0] = r->node;
    cw->seen[cw->nseen++][1] = w->node;
    const json_t *fields = json_object_get(r->node, "fields");
    bool ok = true;
    for (size_t i = 0; ok && i < json_array_size(fields); i++) {
        const json_t *rf = json_array_get(fields, i);
        const char *name = json_string_value(json_object_get(rf, "name"));
        if (!name) {
            ok = cpFail(cw, "a field of the reader has no name");
            break;
        }
        size_t saved = cpPush(cw, cw->plen ? ".%s" : "%s", name);
        ok = cpField(cw, rf, name, r, w);
        cpPop(cw, saved);
    }
    cw->nseen--;
    return ok;
}

static bool cpCheck(cpWalk *cw, const cpType *r, const cpType *w) {
    if (w->kind == CP_UNION) return cpFromUnion(cw, r, w);
    if (r->kind == CP_UNION) return cpToUnion(cw, r, w);
    /* Containers are compared element by element, so the message names the
     * element's path rather than "array changed to array". */
    if (r->kind == w->kind && (r->kind == CP_ARRAY || r->kind == CP_MAP)) return cpElements(cw, r, w);
    if (!cpMatches(cw, r, w)) return cpMismatch(cw, r, w);
    switch (r->kind) {
    case CP_RECORD: return cpRecord(cw, r, w);
    case CP_ENUM: return cpEnum(cw, r, w);
    default: return true;
    }
}

/* One direction: whether writer's data reads under reader. */
static bool cpRun(const json_t *reader, const json_t *writer, bool writer_first, char *errbuf, size_t errlen) {
    cpSchema rs = {0}, ws = {0};
    cpType rt, wt;
    cpWalk *cw = calloc(1, sizeof *cw);
    bool ok = false;
    if (!cw) return cpFailv(errbuf, errlen, "out of memory");
    *cw = (cpWalk){.r = &rs, .w = &ws, .writer_first = writer_first, .errbuf = errbuf, .errlen = errlen};
    char inner[384];
    if (!cpCollect(&rs, reader, "", 0, inner, sizeof inner)) {
        cpFailv(errbuf, errlen, "the reader schema: %s", inner);
        goto failed;
    }
    if (!cpCollect(&ws, writer, "", 0, inner, sizeof inner)) {
        cpFailv(errbuf, errlen, "the writer schema: %s", inner);
        goto failed;
    }
    if (!cpResolve(&rs, reader, "", &rt)) ok = cpBadType(cw, &rt, "reader");
    else if (!cpResolve(&ws, writer, "", &wt)) ok = cpBadType(cw, &wt, "writer");
    else ok = cpCheck(cw, &rt, &wt);
failed:
    cpSchemaFree(&rs);
    cpSchemaFree(&ws);
    free(cw);
    return ok;
}

bool dsCompatCheck(const json_t *reader, const json_t *writer, char *errbuf, size_t errlen) {
    return cpRun(reader, writer, true, errbuf, errlen);
}

/* ---- modes ---- */

static const char *const cpModeNames[] = {
    [DS_COMPAT_BACKWARD] = "BACKWARD",
    [DS_COMPAT_FORWARD] = "FORWARD",
    [DS_COMPAT_FULL] = "FULL",
    [DS_COMPAT_BACKWARD_TRANSITIVE] = "BACKWARD_TRANSITIVE",
    [DS_COMPAT_FORWARD_TRANSITIVE] = "FORWARD_TRANSITIVE",
    [DS_COMPAT_FULL_TRANSITIVE] = "FULL_TRANSITIVE",
    [DS_COMPAT_NONE] = "NONE",
};

bool dsCompatParseMode(const char *name, dsCompatMode *out) {
    for (size_t i = 0; name && i < sizeof cpModeNames / sizeof cpModeNames[0]; i++)
        if (strcasecmp(cpModeNames[i], name) == 0) return *out = (dsCompatMode)i, true;
    return false;
}

bool dsCompatManifestMode(const json_t *manifest, dsCompatMode *out) {
    const json_t *compat = json_object_get(manifest, "compatibility");
    if (compat == NULL) return *out = DS_COMPAT_FULL_TRANSITIVE, true;
    return dsCompatParseMode(json_string_value(compat), out);
}

const char *dsCompatModeName(dsCompatMode mode) {
    return (size_t)mode < sizeof cpModeNames / sizeof cpModeNames[0] ? cpModeNames[mode] : "?";
}

static bool cpBackward(dsCompatMode m) {
    return m == DS_COMPAT_BACKWARD || m == DS_COMPAT_FULL || m == DS_COMPAT_BACKWARD_TRANSITIVE ||
           m == DS_COMPAT_FULL_TRANSITIVE;
}

static bool cpForward(dsCompatMode m) {
    return m == DS_COMPAT_FORWARD || m == DS_COMPAT_FULL || m == DS_COMPAT_FORWARD_TRANSITIVE ||
           m == DS_COMPAT_FULL_TRANSITIVE;
}

static bool cpTransitive(dsCompatMode m) {
    return m == DS_COMPAT_BACKWARD_TRANSITIVE || m == DS_COMPAT_FORWARD_TRANSITIVE || m == DS_COMPAT_FULL_TRANSITIVE;
}

/* One pair in the directions the mode asks for; the first failing
 * direction is reported. */
static bool cpPair(const dsCompatVersion *newer, const dsCompatVersion *older, dsCompatMode mode, char *msg,
                   size_t len) {
    char inner[768];
    if (cpBackward(mode) && !cpRun(newer->schema, older->schema, true, inner, sizeof inner))
        return cpFailv(msg, len, "version %d (reader) cannot read version %d (writer): %s", newer->version,
                       older->version, inner);
    if (cpForward(mode) && !cpRun(older->schema, newer->schema, false, inner, sizeof inner))
        return cpFailv(msg, len, "version %d (reader) cannot read version %d (writer): %s", older->version,
                       newer->version, inner);
    return true;
}

bool dsCompatCheckVersions(const dsCompatVersion *versions, size_t index, dsCompatMode mode, dsCompatPairFn each,
                           void *ctx, char *errbuf, size_t errlen) {
    bool ok = true;
    if (mode == DS_COMPAT_NONE || index == 0) return true;
    size_t oldest = cpTransitive(mode) ? 0 : index - 1;
    for (size_t k = index; k-- > oldest;) {
        char msg[1024];
        bool pair_ok = cpPair(&versions[index], &versions[k], mode, msg, sizeof msg);
        if (each) each(ctx, versions[index].version, versions[k].version, pair_ok ? NULL : msg);
        if (!pair_ok && ok) cpFailv(errbuf, errlen, "%s", msg);
        ok = ok && pair_ok;
    }
    return ok;
}
