/* decision_schemas.c - decision-schemas, the schema tool (schemas/README.md,
 * "Compatibility and the schema tool"): owns the command line and the
 * schema directory as files on disk.
 *
 *   check     the manifest (unique, increasing versions and ids, the current
 *             version listed), every version file loaded by the codec's
 *             rules, and every version against the earlier ones under the
 *             compatibility mode (ds/compat.h)
 *   show      the manifest summary, or one version's schema text
 *   register  POSTs every version to a Confluent-compatible schema registry
 *             and records the ids it returns in the manifest
 *
 * It reads the directory, never the copy embedded in the binary, so a
 * schema being edited is checked before a build takes it in.
 *
 * Exit status: 0 ok; 1 a check failed, a file cannot be read or written, or
 * the registry refused; 2 a bad command line.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ds/codec.h"
#include "ds/compat.h"
#include "ds/config.h"
#include "ds/daemon.h"
#include "ds/fileio.h"
#include "ds/httpclient.h"

#define ENV_PREFIX "DECISION_SCHEMAS_"
#define SC_NAME "decision-schemas"

static struct {
    char *dir, *mode, *registry, *subject, *log_level;
    long timeout_ms;
} opt;

static const dsConfigOption scConfig[] = {
    {"dir", DS_CFG_STRING, "schemas/decision", "the schema directory: manifest.json and the .avsc files it names",
     &opt.dir, 0, 0},
    {"mode", DS_CFG_STRING, "",
     "check, register: BACKWARD, FORWARD, FULL, their _TRANSITIVE forms or NONE "
     "(default: the manifest's \"compatibility\", else FULL_TRANSITIVE)",
     &opt.mode, 0, 0},
    {"registry", DS_CFG_STRING, "", "register: the schema registry's base URL (http://HOST:PORT)", &opt.registry, 0,
     0},
    {"subject", DS_CFG_STRING, "", "register: the subject (default: the manifest's, decisions-value)", &opt.subject, 0,
     0},
    {"timeout", DS_CFG_DURATION, "10s", "register: limit on each request to the registry", &opt.timeout_ms, 100,
     600000},
    {"log-level", DS_CFG_STRING, "warn", "debug, info, warn or error", &opt.log_level, 0, 0},
};
#define SC_NCONFIG (sizeof(scConfig) / sizeof(scConfig[0]))

/* One version as the directory holds it. */
typedef struct scVersion {
    int version, id;
    const char *file; /* borrowed from the manifest */
    char *text;       /* the file's bytes, NUL-terminated; owned */
    size_t len;
    json_t *schema; /* parsed text; owned */
} scVersion;

typedef struct scSet {
    char *manifest_path; /* owned */
    json_t *manifest;    /* owned */
    const char *subject; /* borrowed from manifest */
    int current;
    dsCompatMode mode; /* the manifest's "compatibility", else the default */
    scVersion *v;      /* owned, n entries, in manifest order */
    size_t n;
} scSet;

static bool scFail(char *errbuf, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool scFail(char *errbuf, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
    return false;
}

static int scUsageError(const char *fmt, const char *arg) {
    fprintf(stderr, SC_NAME ": ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see --help)\n");
    return 2;
}

static char *scJoin(const char *dir, const char *file) {
    size_t len = strlen(dir) + 1 + strlen(file) + 1;
    char *p = malloc(len);
    if (p) snprintf(p, len, "%s/%s", dir, file);
    return p;
}

static void scSetFree(scSet *s) {
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].text);
        json_decref(s->v[i].schema);
    }
    free(s->v);
    json_decref(s->manifest);
    free(s->manifest_path);
    *s = (scSet){0};
}

/* ---- the manifest ---- */

/* versions[i] of the manifest: fields present, file a plain base name. */
static bool scManifestEntry(scSet *s, size_t i, char *errbuf, size_t errlen) {
    json_t *e = json_array_get(json_object_get(s->manifest, "versions"), i);
    json_t *ver = json_object_get(e, "version"), *id = json_object_get(e, "id");
    const char *file = json_string_value(json_object_get(e, "file"));
    if (!json_is_integer(ver) || !json_is_integer(id) || json_integer_value(ver) < 1 ||
        json_integer_value(ver) > INT32_MAX || json_integer_value(id) < 1 || json_integer_value(id) > INT32_MAX)
        return scFail(errbuf, errlen, "versions[%zu] needs a positive integer \"version\" and \"id\"", i);
    if (!file || !*file || strchr(file, '/'))
        return scFail(errbuf, errlen, "versions[%zu] needs a \"file\" naming a file of the directory", i);
    scVersion *v = &s->v[i];
    *v = (scVersion){.version = (int)json_integer_value(ver), .id = (int)json_integer_value(id), .file = file};
    /* Consumers cache schemas by id and order versions by number: a reused
     * id or a version out of order would make two schemas one. */
    if (i > 0 && v->version <= s->v[i - 1].version)
        return scFail(errbuf, errlen, "versions[%zu]: version %d follows version %d (versions must be unique and "
                      "increasing)", i, v->version, s->v[i - 1].version);
    if (i > 0 && v->id <= s->v[i - 1].id)
        return scFail(errbuf, errlen, "versions[%zu]: id %d follows id %d (ids must be unique and increasing, "
                      "never reused)", i, v->id, s->v[i - 1].id);
    return true;
}

static bool scManifestFields(scSet *s, char *errbuf, size_t errlen) {
    json_t *cur = json_object_get(s->manifest, "current"), *list = json_object_get(s->manifest, "versions");
    s->subject = json_string_value(json_object_get(s->manifest, "subject"));
    if (!s->subject || !*s->subject || !json_is_integer(cur))
        return scFail(errbuf, errlen, "needs \"subject\" (a string) and \"current\" (an integer)");
    if (!json_is_array(list) || json_array_size(list) == 0)
        return scFail(errbuf, errlen, "\"versions\" must be a non-empty array");
    if (!dsCompatManifestMode(s->manifest, &s->mode))
        return scFail(errbuf, errlen, "\"compatibility\" must be BACKWARD, FORWARD, FULL, one of their _TRANSITIVE "
                      "forms or NONE");
    if (!(s->v = calloc(json_array_size(list), sizeof *s->v))) return scFail(errbuf, errlen, "out of memory");
    for (size_t i = 0; i < json_array_size(list); i++) {
        if (!scManifestEntry(s, i, errbuf, errlen)) return false;
        s->n = i + 1;
        if (s->v[i].version == json_integer_value(cur)) s->current = s->v[i].version;
    }
    if (!s->current)
        return scFail(errbuf, errlen, "the current version %lld is not listed", (long long)json_integer_value(cur));
    return true;
}

static bool scLoadManifest(scSet *s, const char *dir, char *errbuf, size_t errlen) {
    char inner[512];
    json_error_t jerr;
    size_t len;
    if (!(s->manifest_path = scJoin(dir, "manifest.json"))) return scFail(errbuf, errlen, "out of memory");
    char *text = dsFileRead(s->manifest_path, DS_FILE_MAX_CONFIG, &len, errbuf, errlen);
    if (!text) return false;
    s->manifest = json_loadb(text, len, 0, &jerr);
    free(text);
    if (!s->manifest) return scFail(errbuf, errlen, "%s: line %d: %s", s->manifest_path, jerr.line, jerr.text);
    if (!json_is_object(s->manifest)) return scFail(errbuf, errlen, "%s: not a JSON object", s->manifest_path);
    if (!scManifestFields(s, inner, sizeof inner)) return scFail(errbuf, errlen, "%s: %s", s->manifest_path, inner);
    return true;
}

/* Reads and parses every version file. */
static bool scLoadVersions(scSet *s, const char *dir, char *errbuf, size_t errlen) {
    for (size_t i = 0; i < s->n; i++) {
        scVersion *v = &s->v[i];
        char *path = scJoin(dir, v->file);
        json_error_t jerr;
        if (!path) return scFail(errbuf, errlen, "out of memory");
        v->text = dsFileRead(path, DS_FILE_MAX_CONFIG, &v->len, errbuf, errlen);
        if (v->text && !(v->schema = json_loadb(v->text, v->len, 0, &jerr)))
            scFail(errbuf, errlen, "%s: line %d: %s", path, jerr.line, jerr.text);
        free(path);
        if (!v->schema) return false;
    }
    return true;
}

/* The codec loads the files as a program would embed them, so a schema it
 * would refuse (an unknown rule, a default breaking its own rules) fails
 * here rather than at the next build's tests. */
static bool scCodecLoads(const scSet *s, char *errbuf, size_t errlen) {
    dsEmbeddedFile *files = calloc(s->n + 1, sizeof *files);
    char *mtext = json_dumps(s->manifest, 0);
    bool ok = false;
    if (!files || !mtext) {
        scFail(errbuf, errlen, "out of memory");
        goto done;
    }
    files[0] = (dsEmbeddedFile){"manifest.json", (const unsigned char *)mtext, strlen(mtext)};
    for (size_t i = 0; i < s->n; i++)
        files[i + 1] = (dsEmbeddedFile){s->v[i].file, (const unsigned char *)s->v[i].text, s->v[i].len};
    dsCodec *c = dsCodecNewFrom(files, s->n + 1, errbuf, errlen);
    ok = c != NULL;
    dsCodecFree(c);
done:
    free(mtext);
    free(files);
    return ok;
}

/* ---- check ---- */

typedef struct scCheckOut {
    dsCompatMode mode;
    bool verbose; /* a line per pair; else only failures */
    size_t pairs, failed;
} scCheckOut;

static void scReportPair(void *ctx, int newer, int older, const char *failure) {
    scCheckOut *o = ctx;
    o->pairs++;
    if (failure) o->failed++;
    if (o->verbose || failure)
        printf("version %d against version %d (%s): %s%s\n", newer, older, dsCompatModeName(o->mode),
               failure ? "incompatible: " : "ok", failure ? failure : "");
}

/* Every version against the earlier ones; false if any pair failed. */
static bool scCheckPairs(const scSet *s, scCheckOut *o) {
    dsCompatVersion *cv = calloc(s->n, sizeof *cv);
    char first[1024];
    bool ok = true;
    if (!cv) return fprintf(stderr, SC_NAME ": out of memory\n"), false;
    for (size_t i = 0; i < s->n; i++) cv[i] = (dsCompatVersion){s->v[i].version, s->v[i].schema};
    for (size_t i = 1; i < s->n; i++)
        ok = dsCompatCheckVersions(cv, i, o->mode, scReportPair, o, first, sizeof first) && ok;
    free(cv);
    return ok;
}

/* Loads the directory completely (manifest, files, codec); the mode is
 * --mode, else the manifest's. Returns 0, or the exit status. */
static int scLoadAll(scSet *s, dsCompatMode *mode) {
    char err[1024];
    if (*opt.mode && !dsCompatParseMode(opt.mode, mode))
        return scUsageError("--mode %s is not BACKWARD, FORWARD, FULL, one of their _TRANSITIVE forms or NONE",
                            opt.mode);
    if (!scLoadManifest(s, opt.dir, err, sizeof err) || !scLoadVersions(s, opt.dir, err, sizeof err) ||
        !scCodecLoads(s, err, sizeof err)) {
        fprintf(stderr, SC_NAME ": %s\n", err);
        return 1;
    }
    if (!*opt.mode) *mode = s->mode;
    return 0;
}

static int scCheck(void) {
    scSet s = {0};
    scCheckOut o = {.verbose = true};
    int rc = scLoadAll(&s, &o.mode);
    if (rc != 0) goto done;
    printf("%s: subject %s, current version %d, %zu version%s, mode %s\n", s.manifest_path, s.subject, s.current,
           s.n, s.n == 1 ? "" : "s", dsCompatModeName(o.mode));
    for (size_t i = 0; i < s.n; i++)
        printf("version %d (id %d, %s): loads with the codec's rules\n", s.v[i].version, s.v[i].id, s.v[i].file);
    rc = scCheckPairs(&s, &o) ? 0 : 1;
    const char *mode = dsCompatModeName(o.mode);
    if (rc == 0) printf("ok: %zu pair%s checked under %s\n", o.pairs, o.pairs == 1 ? "" : "s", mode);
    else printf("incompatible: %zu of %zu pairs failed under %s\n", o.failed, o.pairs, mode);
done:
    scSetFree(&s);
    return rc;
}

/* ---- show ---- */

static void scShowSummary(const scSet *s) {
    const char *key;
    json_t *ids;
    printf("subject: %s\ncurrent: %d\ncompatibility: %s\nversions:\n", s->subject, s->current,
           dsCompatModeName(s->mode));
    for (size_t i = 0; i < s->n; i++)
        printf("  version %d  id %d  %s%s\n", s->v[i].version, s->v[i].id, s->v[i].file,
               s->v[i].version == s->current ? "  (current)" : "");
    json_t *reg = json_object_get(s->manifest, "registry_ids");
    if (json_object_size(reg)) printf("registry ids:\n");
    json_object_foreach(reg, key, ids) {
        char *text = json_dumps(ids, 0);
        printf("  %s: %s\n", key, text ? text : "?");
        free(text);
    }
}

/* One version's schema text, exactly as the file holds it. */
static int scShowVersion(const scSet *s, long want) {
    char err[1024];
    size_t len = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].version != want) continue;
        char *path = scJoin(opt.dir, s->v[i].file);
        char *text = path ? dsFileRead(path, DS_FILE_MAX_CONFIG, &len, err, sizeof err) : NULL;
        if (!path) snprintf(err, sizeof err, "out of memory");
        free(path);
        if (!text) return fprintf(stderr, SC_NAME ": %s\n", err), 1;
        fwrite(text, 1, len, stdout);
        if (len && text[len - 1] != '\n') putchar('\n');
        free(text);
        return 0;
    }
    fprintf(stderr, SC_NAME ": %s lists no version %ld\n", s->manifest_path, want);
    return 1;
}

static int scShow(const char *which) {
    scSet s = {0};
    char err[1024];
    long want = 0;
    char *end = NULL;
    int rc = 1;
    if (which && strcmp(which, "latest") != 0 && ((want = strtol(which, &end, 10)) < 1 || *end))
        return scUsageError("show takes a version number or \"latest\", not \"%s\"", which);
    if (!scLoadManifest(&s, opt.dir, err, sizeof err)) {
        fprintf(stderr, SC_NAME ": %s\n", err);
    } else if (!which) {
        scShowSummary(&s);
        rc = 0;
    } else {
        /* "latest" is the current version, as the API's registry paths have it. */
        rc = scShowVersion(&s, want ? want : s.current);
    }
    scSetFree(&s);
    return rc;
}

/* ---- the manifest, written back ---- */

static bool scDumpCompact(FILE *f, const json_t *v) {
    char *t = json_dumps(v, JSON_ENCODE_ANY);
    if (t) fputs(t, f);
    free(t);
    return t != NULL;
}

static bool scDumpKey(FILE *f, const char *indent, const char *key) {
    json_t *k = json_string(key);
    fputs(indent, f);
    bool ok = k && scDumpCompact(f, k);
    json_decref(k);
    fputs(": ", f);
    return ok;
}

/* One top-level member; a non-empty array's elements or object's members
 * one a line, so the file keeps the layout people edit by hand. */
static bool scDumpMember(FILE *f, const char *key, const json_t *v) {
    const char *sub;
    json_t *sv;
    size_t i = 0, n = json_is_array(v) ? json_array_size(v) : json_object_size(v);
    bool ok = scDumpKey(f, "  ", key);
    if (n == 0) return scDumpCompact(f, v) && ok;
    fputs(json_is_array(v) ? "[\n" : "{\n", f);
    if (json_is_array(v)) {
        for (i = 0; i < n; i++) {
            fputs("    ", f);
            ok = scDumpCompact(f, json_array_get(v, i)) && ok;
            fputs(i + 1 < n ? ",\n" : "\n", f);
        }
    } else {
        json_object_foreach((json_t *)v, sub, sv) {
            ok = scDumpKey(f, "    ", sub) && scDumpCompact(f, sv) && ok;
            fputs(++i < n ? ",\n" : "\n", f);
        }
    }
    fputs(json_is_array(v) ? "  ]" : "  }", f);
    return ok;
}

static bool scDumpManifest(FILE *f, const json_t *m) {
    const char *key;
    json_t *v;
    size_t i = 0, n = json_object_size(m);
    bool ok = true;
    fputs("{\n", f);
    json_object_foreach((json_t *)m, key, v) {
        ok = scDumpMember(f, key, v) && ok;
        fputs(++i < n ? ",\n" : "\n", f);
    }
    fputs("}\n", f);
    if (!ok) errno = ENOMEM; /* json_dumps() fails only for want of memory here */
    return ok && !ferror(f);
}

/* Atomically: a temporary file beside it, synced, then renamed over it, so
 * a crash leaves the old manifest or the new one, never half of one. */
static bool scWriteManifest(const char *path, const json_t *m, char *errbuf, size_t errlen) {
    size_t len = strlen(path) + sizeof ".tmp.XXXXXX";
    char *tmp = malloc(len);
    struct stat st;
    if (!tmp) return scFail(errbuf, errlen, "out of memory");
    snprintf(tmp, len, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        scFail(errbuf, errlen, "cannot create a file beside %s: %s", path, strerror(errno));
        free(tmp);
        return false;
    }
    FILE *f = fdopen(fd, "w");
    bool ok = f && fchmod(fd, stat(path, &st) == 0 ? st.st_mode & 07777 : 0644) == 0 && scDumpManifest(f, m) &&
              fflush(f) == 0 && fsync(fd) == 0;
    int err = errno;
    if ((f ? fclose(f) : close(fd)) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        unlink(tmp);
        scFail(errbuf, errlen, "cannot write %s: %s", path, strerror(err));
    }
    free(tmp);
    return ok;
}

/* Sets registry_ids[url][version] = id for every registered version,
 * keeping what other registries and versions already have, and rewrites
 * the manifest (unless no version was registered). */
static bool scRecordIds(scSet *s, const char *url, const long *ids, char *errbuf, size_t errlen) {
    size_t got = 0;
    for (size_t i = 0; i < s->n; i++) got += ids[i] >= 0;
    if (got == 0) return true; /* nothing to record: the file stays as it is */
    json_t *all = json_object_get(s->manifest, "registry_ids");
    if (!json_is_object(all) && json_object_set_new(s->manifest, "registry_ids", all = json_object()) != 0)
        return scFail(errbuf, errlen, "out of memory");
    json_t *mine = json_object_get(all, url);
    if (!json_is_object(mine) && json_object_set_new(all, url, mine = json_object()) != 0)
        return scFail(errbuf, errlen, "the registry URL is not valid UTF-8");
    for (size_t i = 0; i < s->n; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", s->v[i].version);
        if (ids[i] >= 0 && json_object_set_new(mine, key, json_integer(ids[i])) != 0)
            return scFail(errbuf, errlen, "out of memory");
    }
    return scWriteManifest(s->manifest_path, s->manifest, errbuf, errlen);
}

/* ---- register ---- */

typedef struct scRegistry {
    dsHttpClient *http;
    char *url; /* {registry}/subjects/{subject}/versions */
} scRegistry;

static void scRegistryClose(scRegistry *r) {
    dsHttpClientFree(r->http);
    free(r->url);
    *r = (scRegistry){0};
}

static bool scRegistryOpen(scRegistry *r, const char *base, const char *subject, char *errbuf, size_t errlen) {
    const dsHttpClientConfig hc = {0, opt.timeout_ms, 0, SC_NAME,
                                   "application/vnd.schemaregistry.v1+json, application/json"};
    char *esc = NULL;
    if (!(r->http = dsHttpClientNew(&hc, errbuf, errlen))) return false;
    if (!(esc = dsHttpClientEscape(r->http, subject))) goto failed;
    size_t len = strlen(base) + strlen(esc) + sizeof "/subjects//versions";
    if (!(r->url = malloc(len))) goto failed;
    snprintf(r->url, len, "%s/subjects/%s/versions", base, esc);
    free(esc);
    return true;
failed:
    free(esc);
    scRegistryClose(r);
    return scFail(errbuf, errlen, "cannot set up the HTTP client (out of memory)");
}

/* The registry's own words for a refusal: its JSON "message", else the
 * body; cut to fit a line. */
static const char *scRegistryMessage(const char *body, size_t blen, char *out, size_t len) {
    json_t *j = json_loadb(body, blen, 0, NULL);
    const char *m = json_string_value(json_object_get(j, "message"));
    snprintf(out, len, "%.400s", m ? m : blen ? body : "(no body)");
    json_decref(j);
    return out;
}

/* Reads {"id": N} from a 2xx answer. */
static bool scRegistryId(const char *body, size_t blen, long *id, char *errbuf, size_t errlen) {
    json_t *j = json_loadb(body, blen, 0, NULL);
    json_t *jid = json_object_get(j, "id");
    bool ok = json_is_integer(jid) && json_integer_value(jid) >= 0 && json_integer_value(jid) <= INT32_MAX;
    if (ok) *id = (long)json_integer_value(jid);
    else scFail(errbuf, errlen, "the registry's answer has no \"id\": %.200s", body);
    json_decref(j);
    return ok;
}

/* POSTs one version; *id receives the id the registry gave it. */
static bool scRegisterOne(scRegistry *r, const scVersion *v, long *id, char *errbuf, size_t errlen) {
    json_t *body = json_pack("{s:s}", "schema", v->text);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL, msg[512];
    bool ok = false;
    json_decref(body);
    if (!text) return scFail(errbuf, errlen, "version %d: cannot build the request body", v->version);
    if (!dsHttpClientPost(r->http, r->url, "application/vnd.schemaregistry.v1+json", text, strlen(text), msg,
                          sizeof msg)) {
        free(text);
        return scFail(errbuf, errlen, "version %d: %s", v->version, msg);
    }
    size_t blen;
    const char *answer = dsHttpClientBody(r->http, &blen);
    long status = dsHttpClientStatus(r->http);
    if (status < 200 || status > 299)
        scFail(errbuf, errlen, "version %d: the registry answered %ld: %s", v->version, status,
               scRegistryMessage(answer, blen, msg, sizeof msg));
    else
        ok = scRegistryId(answer, blen, id, msg, sizeof msg) || scFail(errbuf, errlen, "version %d: %s", v->version, msg);
    free(text);
    return ok;
}

/* Every version in order; ids[i] stays -1 for a version not registered. */
static bool scRegisterAll(const scSet *s, const char *url, const char *subject, long *ids, char *errbuf,
                          size_t errlen) {
    scRegistry r = {0};
    bool ok = scRegistryOpen(&r, url, subject, errbuf, errlen);
    for (size_t i = 0; ok && i < s->n; i++) {
        ok = scRegisterOne(&r, &s->v[i], &ids[i], errbuf, errlen);
        if (ok) printf("version %d (%s): registered under %s as id %ld\n", s->v[i].version, s->v[i].file, subject,
                       ids[i]);
    }
    scRegistryClose(&r);
    return ok;
}

/* The registry URL without trailing slashes (the key in registry_ids). */
static char *scRegistryBase(void) {
    char *url = strdup(opt.registry);
    size_t len = url ? strlen(url) : 0;
    while (len > 0 && url[len - 1] == '/') url[--len] = '\0';
    return url;
}

static int scRegister(void) {
    scSet s = {0};
    scCheckOut o = {.verbose = false};
    char err[1024], *url = NULL;
    long *ids = NULL;
    if (!*opt.registry) return scUsageError("register needs --registry URL%s", "");
    int rc = scLoadAll(&s, &o.mode);
    if (rc != 0) goto done;
    /* A set that fails its own gate is never pushed. */
    rc = 1;
    if (!scCheckPairs(&s, &o)) {
        fprintf(stderr, SC_NAME ": not registering: the versions fail the %s check\n", dsCompatModeName(o.mode));
        goto done;
    }
    if (!(ids = malloc(s.n * sizeof *ids)) || !(url = scRegistryBase())) {
        fprintf(stderr, SC_NAME ": out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < s.n; i++) ids[i] = -1;
    const char *subject = *opt.subject ? opt.subject : s.subject;
    bool pushed = scRegisterAll(&s, url, subject, ids, err, sizeof err);
    if (!pushed) fprintf(stderr, SC_NAME ": %s\n", err);
    /* The ids a registry gave are facts even if a later version failed. */
    if (!scRecordIds(&s, url, ids, err, sizeof err)) {
        fprintf(stderr, SC_NAME ": %s\n", err);
    } else if (pushed) {
        printf("ids recorded in %s under %s\n", s.manifest_path, url);
        rc = 0;
    }
done:
    free(ids);
    free(url);
    scSetFree(&s);
    return rc;
}

/* ---- main ---- */

int main(int argc, char **argv) {
    static const dsDaemonSpec spec = {
        SC_NAME, SC_NAME " check | show [VERSION|latest] | register --registry URL",
        "Checks, shows and registers the decision schema versions of a schema directory.", scConfig, SC_NCONFIG,
        ENV_PREFIX, &opt.log_level, NULL};
    char *pos[2];
    size_t npos = 2;
    int early = dsDaemonStart(&spec, argc, argv, pos, &npos);
    if (early >= 0) return early;
    int rc;
    const char *cmd = npos ? pos[0] : "";
    if (strcmp(cmd, "show") == 0) rc = scShow(npos == 2 ? pos[1] : NULL);
    else if (npos == 2 && (strcmp(cmd, "check") == 0 || strcmp(cmd, "register") == 0))
        rc = scUsageError("%s takes no argument", cmd);
    else if (strcmp(cmd, "check") == 0) rc = scCheck();
    else if (strcmp(cmd, "register") == 0) rc = scRegister();
    else if (npos) {
        rc = scUsageError("unknown command \"%s\" (check, show or register)", cmd);
    } else {
        rc = scUsageError("a command is needed: check, show or register%s", "");
    }
    dsConfigFree(scConfig, SC_NCONFIG);
    return rc;
}
