/* registry.c - the project's own decision schemas served read-only under the
 * Confluent Schema Registry REST paths (CONTRACT §3), without a token, so a
 * stock Avro deserializer pointed at the decision API decodes the stream with
 * no registry running. Owns the path matching, the answers and the Confluent
 * error shape ({"error_code": 40401, "message": ...}) of:
 *   GET  /schemas/ids/{id}                      {"schema": text}
 *   GET  /schemas/ids/{id}/versions             [{"subject", "version"}]
 *   GET  /subjects                              ["decisions-value"]
 *   GET  /subjects/{subject}/versions           [1, 2, ...]
 *   GET  /subjects/{subject}/versions/{version} {"subject", "version", "id", "schema"}
 *   POST /subjects/{subject}                    the version object of a posted schema
 *   GET  /config                                {"compatibilityLevel": ...}
 * The versions, ids and texts all come from the codec (the embedded manifest):
 * the server is the registry of exactly the schemas it was built with. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

#define REG_CTYPE "application/vnd.schemaregistry.v1+json"
#define REG_MAX_SEGS 5

/* Confluent's error codes: the HTTP status followed by a detail number. */
#define REG_SUBJECT_NOT_FOUND 40401
#define REG_VERSION_NOT_FOUND 40402
#define REG_SCHEMA_NOT_FOUND 40403
#define REG_INVALID_SCHEMA 42201
#define REG_INVALID_VERSION 42202

typedef struct regRoute regRoute;
typedef void regHandler(apiServer *s, h2o_req_t *req, const regRoute *r, const h2o_iovec_t *seg);

/* One endpoint: its path segments ("*" matches any one non-empty segment),
 * its method (GET also answers HEAD) and the route label of the metrics. */
struct regRoute {
    const char *pattern[REG_MAX_SEGS];
    size_t nseg;
    const char *method;
    const char *label;
    regHandler *fn;
};

static void regRespond(apiServer *s, h2o_req_t *req, const char *route, int status, json_t *body) {
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        static const char oom[] = "{\"error_code\":50001,\"message\":\"cannot render the response\"}";
        dsHttpRespond(s->http, req, route, 500, REG_CTYPE, oom, sizeof(oom) - 1, NULL, 0);
        return;
    }
    dsHttpRespond(s->http, req, route, status, REG_CTYPE, text, strlen(text), NULL, 0);
    free(text);
}

static void regError(apiServer *s, h2o_req_t *req, const char *route, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Sends {"error_code": code, "message": ...}; the status is the code's first
 * three digits (40401 -> 404), or the code itself when it has only three. */
static void regError(apiServer *s, h2o_req_t *req, const char *route, int code, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* json_string refuses invalid UTF-8, which a quoted path segment may be */
    json_t *m = json_string(msg);
    if (m == NULL) m = json_string("invalid request");
    int status = code >= 1000 ? code / 100 : code;
    regRespond(s, req, route, status, json_pack("{s:i, s:o}", "error_code", code, "message", m));
}

/* A whole path segment as a decimal int, the way Java's Integer.parseInt
 * (which Confluent uses) reads it: optional sign, digits, within int32. A
 * NUL (%00, decoded in the normalized path) is refused, not taken as the
 * end of the number: "1%00x" is no id. */
static bool regParseInt(h2o_iovec_t seg, long *out) {
    char buf[16];
    if (seg.len == 0 || seg.len >= sizeof(buf) || memchr(seg.base, '\0', seg.len)) return false;
    memcpy(buf, seg.base, seg.len);
    buf[seg.len] = '\0';
    if (!(buf[0] == '-' || buf[0] == '+' || (buf[0] >= '0' && buf[0] <= '9'))) return false;
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (*end != '\0' || errno != 0 || v < -2147483648L || v > 2147483647L) return false;
    *out = v;
    return true;
}

/* The version whose registry id is id; -1 if none. */
static int regVersionOfId(const dsCodec *c, long id) {
    for (int v = 1; v <= dsCodecCurrentVersion(c); v++)
        if (dsCodecSchemaId(c, v) == id) return v;
    return -1;
}

/* Whether the (percent-encoded) segment names our one subject. */
static bool regSubjectIs(apiServer *s, h2o_req_t *req, h2o_iovec_t seg) {
    h2o_iovec_t name;
    const char *ours = dsCodecSubject(s->codec);
    return dsHttpUnescapePath(req, seg.base, seg.len, &name) && h2o_memis(name.base, name.len, ours, strlen(ours));
}

/* Answers 40401 unless the segment names our subject. */
static bool regRequireSubject(apiServer *s, h2o_req_t *req, const regRoute *r, h2o_iovec_t seg) {
    if (regSubjectIs(s, req, seg)) return true;
    regError(s, req, r->label, REG_SUBJECT_NOT_FOUND, "Subject '%.*s' not found.", (int)(seg.len > 100 ? 100 : seg.len),
             seg.base);
    return false;
}

static json_t *regVersionObject(const dsCodec *c, int version) {
    return json_pack("{s:s, s:i, s:i, s:s}", "subject", dsCodecSubject(c), "version", version, "id",
                     dsCodecSchemaId(c, version), "schema", dsCodecSchemaText(c, version));
}

/* The version a /schemas/ids/{id} path names; answers 40403 and returns -1
 * when there is none (Confluent answers a non-numeric id with a 404 too). */
static int regRequireId(apiServer *s, h2o_req_t *req, const regRoute *r, h2o_iovec_t seg) {
    long id;
    int v = regParseInt(seg, &id) ? regVersionOfId(s->codec, id) : -1;
    if (v < 0)
        regError(s, req, r->label, REG_SCHEMA_NOT_FOUND, "Schema %.*s not found", (int)(seg.len > 32 ? 32 : seg.len),
                 seg.base);
    return v;
}

static void regGetSchema(apiServer *s, h2o_req_t *req, const regRoute *r, const h2o_iovec_t *seg) {
    int v = regRequireId(s, req, r, seg[2]);
    /* the text exactly as shipped, as a JSON string: what Confluent returns */
    if (v > 0) regRespond(s, req, r->label, 200, json_pack("{s:s}", "schema", dsCodecSchemaText(s->codec, v)));
}

static void regGetSchemaVersions(apiServer *s, h2o_req_t *req, const regRoute *r, const h2o_iovec_t *seg) {
    int v = regRequireId(s, req, r, seg[2]);
    if (v > 0)
        regRespond(s, req, r->label, 200,
                   json_pack("[{s:s, s:i}]", "subject", dsCodecSubject(s->codec), "version", v));
}

static void regGetSubjects(apiServer *s, h2o_req_t *req, const regRoute *r, const h2o_iovec_t *seg) {
    (void)seg;
    regRespond(s, req, r->label, 200, json_pack("[s]", dsCodecSubject(s->codec)));
}

static void regGetVersions(apiServer *s, h2o_req_t *req, const regRoute *r, const h2o_iovec_t *seg) {
    if (!regRequireSubject(s, req, r, seg[1])) return;
    json_t *list = json_array();
    for (int v = 1; v <= dsCodecCurrentVersion(s->codec); v++)
        if (dsCodecSchemaId(s->codec, v) >= 0) json_array_append_new(list, json_integer(v));
    regRespond(s, req, r->label, 200, list);
}

static void regGetVersion(apiServer *s, h2o_req_t *req, const regRoute *r, const h2o_iovec_t *seg) {
    long v = 0;
    h2o_iovec_t vs = seg[3];
    /* Confluent checks the version's form before the subject, and takes -1
     * as another spelling of "latest" */
    bool latest = h2o_memis(vs.base, vs.len, H2O_STRLIT("latest"));
    if (!latest && (!regParseInt(vs, &v) || (v < 1 && v != -1))) {
        regError(s, req, r->label, REG_INVALID_VERSION,
                 "The specified version '%.*s' is not a valid version id. Allowed values are between [1, "
                 "2^31-1] and the string \"latest\"",
                 (int)(vs.len > 32 ? 32 : vs.len), vs.base);
        return;
    }
    if (!regRequireSubject(s, req, r, seg[1])) return;
    if (latest || v == -1) v = dsCodecCurrentVersion(s->codec);
    if (v > dsCodecCurrentVersion(s->codec) || dsCodecSchemaId(s->codec, (int)v) < 0) {
        regError(s, req, r->label, REG_VERSION_NOT_FOUND, "Version %ld not found.", v);
        return;
    }
    regRespond(s, req, r->label, 200, regVersionObject(s->codec, (int)v));
}

/* POST /subjects/{subject} with {"schema": "<text>"}: which of our versions
 * that schema is. Compared in Avro's Parsing Canonical Form, so formatting,
 * docs, defaults and rule attributes do not matter. The posted text is
 * untrusted (no token): it is parsed by jansson only, never by avro-c,
 * whose parser leaks on invalid schemas such as a named type defined
 * twice. */
static void regLookup(apiServer *s, h2o_req_t *req, const regRoute *r, const h2o_iovec_t *seg) {
    if (!regRequireSubject(s, req, r, seg[1])) return;
    json_error_t jerr;
    json_t *body = json_loadb(req->entity.base, req->entity.len, 0, &jerr);
    const char *text = json_string_value(json_object_get(body, "schema"));
    const char *type = json_string_value(json_object_get(body, "schemaType"));
    char why[256];
    int v = -1;
    if (body == NULL || !json_is_object(body)) {
        regError(s, req, r->label, 400, "the body must be a JSON object: %s", body ? "not an object" : jerr.text);
    } else if (text == NULL) {
        regError(s, req, r->label, REG_INVALID_SCHEMA, "Invalid schema: the body has no \"schema\" string");
    } else if (type != NULL && strcmp(type, "AVRO") != 0) {
        /* only Avro schemas live here: no version can be this one */
        regError(s, req, r->label, REG_SCHEMA_NOT_FOUND, "Schema not found");
    } else if ((v = dsCodecVersionOfSchemaText(s->codec, text, json_string_length(json_object_get(body, "schema")),
                                               why, sizeof(why))) > 0) {
        regRespond(s, req, r->label, 200, regVersionObject(s->codec, v));
    } else if (v == 0) {
        regError(s, req, r->label, REG_SCHEMA_NOT_FOUND, "Schema not found");
    } else {
        regError(s, req, r->label, REG_INVALID_SCHEMA, "Invalid schema: %s", why);
    }
    json_decref(body);
}

static void regGetConfig(apiServer *s, h2o_req_t *req, const regRoute *r, const h2o_iovec_t *seg) {
    (void)seg;
    regRespond(s, req, r->label, 200, json_pack("{s:s}", "compatibilityLevel", dsCodecCompatibility(s->codec)));
}

static const regRoute regRoutes[] = {
    {{"schemas", "ids", "*"}, 3, "GET", "GET /schemas/ids/{id}", regGetSchema},
    {{"schemas", "ids", "*", "versions"}, 4, "GET", "GET /schemas/ids/{id}/versions", regGetSchemaVersions},
    {{"subjects"}, 1, "GET", "GET /subjects", regGetSubjects},
    {{"subjects", "*"}, 2, "POST", "POST /subjects/{subject}", regLookup},
    {{"subjects", "*", "versions"}, 3, "GET", "GET /subjects/{subject}/versions", regGetVersions},
    {{"subjects", "*", "versions", "*"}, 4, "GET", "GET /subjects/{subject}/versions/{version}", regGetVersion},
    {{"config"}, 1, "GET", "GET /config", regGetConfig},
};

/* Splits the path into at most REG_MAX_SEGS non-empty segments; false if it
 * has more, or an empty one ("//", a trailing "/"). */
static bool regSplit(h2o_iovec_t path, h2o_iovec_t *seg, size_t *nseg) {
    const char *p = path.base, *end = path.base + path.len;
    *nseg = 0;
    if (p == end || *p != '/') return false;
    while (p < end) {
        const char *start = p + 1, *slash = memchr(start, '/', (size_t)(end - start));
        const char *stop = slash ? slash : end;
        if (stop == start || *nseg == REG_MAX_SEGS) return false;
        seg[(*nseg)++] = h2o_iovec_init(start, (size_t)(stop - start));
        p = stop;
    }
    return true;
}

static bool regMatch(const regRoute *r, const h2o_iovec_t *seg, size_t nseg) {
    if (r->nseg != nseg) return false;
    for (size_t i = 0; i < nseg; i++) {
        const char *want = r->pattern[i];
        if (strcmp(want, "*") != 0 && !h2o_memis(seg[i].base, seg[i].len, want, strlen(want))) return false;
    }
    return true;
}

bool apiRegistryRoute(apiServer *s, h2o_req_t *req) {
    h2o_iovec_t seg[REG_MAX_SEGS];
    size_t nseg;
    if (!regSplit(req->path_normalized, seg, &nseg)) return false;
    for (size_t i = 0; i < sizeof(regRoutes) / sizeof(regRoutes[0]); i++) {
        const regRoute *r = &regRoutes[i];
        if (!regMatch(r, seg, nseg)) continue;
        bool get = strcmp(r->method, "GET") == 0;
        if (dsHttpMethodIs(req, r->method) || (get && dsHttpMethodIs(req, "HEAD"))) {
            r->fn(s, req, r, seg);
        } else {
            /* Confluent's (Jersey's) 405, in the registry's content type */
            static const char body[] = "{\"error_code\":405,\"message\":\"HTTP 405 Method Not Allowed\"}";
            dsHttpHeader allow = {"allow", get ? "GET, HEAD" : r->method};
            dsHttpRespond(s->http, req, "other", 405, REG_CTYPE, body, sizeof(body) - 1, &allow, 1);
        }
        return true;
    }
    return false;
}
