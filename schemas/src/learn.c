/* learn.c - owns the registry conversation of learn.h: the requests, how
 * each answer is classified (learned, transient, permanent), and handing the
 * schema text to dsCodecAddVersion().
 *
 * Only answers that say "this does not exist" or "this is not ours", and
 * schemas the codec refuses, are permanent. Anything else the registry or
 * the network does (refusals, timeouts, 5xx, 429, an unexpected status or
 * body) is transient. The distinction is for the log and for callers that
 * may set a record aside; the consumers' entry point, dsLearnWire(), waits
 * on both, since a registry that lacks a version is older than the writer
 * that used it.
 */
#include "ds/learn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/httpclient.h"

#define LEARN_PATH_MAX 512
#define LEARN_EXCERPT 200

struct dsLearner {
    dsHttpClient *http;
    char *url; /* without a trailing '/' */
};

dsLearner *dsLearnerNew(const char *registry_url, const char *what, char *errbuf, size_t errlen) {
    if (!dsHttpClientCheckBaseUrl(registry_url, what, errbuf, errlen)) return NULL;
    static const dsHttpClientConfig hc = {DS_LEARN_CONNECT_TIMEOUT_MS, DS_LEARN_TIMEOUT_MS, 0, "decision-store",
                                          "application/vnd.schemaregistry.v1+json, application/json"};
    dsLearner *l = calloc(1, sizeof *l);
    if (l && (l->url = strdup(registry_url)) != NULL && (l->http = dsHttpClientNew(&hc, errbuf, errlen)) != NULL) {
        size_t len = strlen(l->url);
        while (len > 0 && l->url[len - 1] == '/') l->url[--len] = '\0';
        return l;
    }
    if (!l || !l->url) snprintf(errbuf, errlen, "out of memory");
    dsLearnerFree(l);
    return NULL;
}

void dsLearnerFree(dsLearner *l) {
    if (!l) return;
    dsHttpClientFree(l->http);
    free(l->url);
    free(l);
}

/* The registry's words for a refusal: "404, error 40403: Schema not found",
 * else an excerpt of the body. */
static void learnWhy(long status, const json_t *j, const char *body, char *out, size_t len) {
    const char *message = json_string_value(json_object_get(j, "message"));
    json_int_t code = json_integer_value(json_object_get(j, "error_code"));
    if (message && code) snprintf(out, len, "%ld, error %lld: %s", status, (long long)code, message);
    else snprintf(out, len, "%ld: %.*s", status, LEARN_EXCERPT, *body ? body : "(no body)");
}

/* GET {url}{path}; on a 200 with a JSON body, *out receives it (the caller
 * releases it). */
static dsLearnResult learnGet(dsLearner *l, const char *path, json_t **out, char *errbuf, size_t errlen) {
    char url[LEARN_PATH_MAX + 256], transport[512], why[512];
    *out = NULL;
    if ((size_t)snprintf(url, sizeof url, "%s%s", l->url, path) >= sizeof url) {
        snprintf(errbuf, errlen, "registry %s: the URL is too long", l->url);
        return DS_LEARN_PERMANENT;
    }
    if (!dsHttpClientGet(l->http, url, transport, sizeof transport)) {
        snprintf(errbuf, errlen, "registry not reachable: %s", transport);
        return DS_LEARN_TRANSIENT;
    }
    size_t blen;
    const char *body = dsHttpClientBody(l->http, &blen);
    long status = dsHttpClientStatus(l->http);
    json_t *j = json_loadb(body, blen, 0, NULL);
    if (status == 200 && j) {
        *out = j;
        return DS_LEARN_OK;
    }
    json_int_t code = json_integer_value(json_object_get(j, "error_code"));
    learnWhy(status, j, body, why, sizeof why);
    json_decref(j);
    if (status == 404 || code == 40401 || code == 40402 || code == 40403) {
        snprintf(errbuf, errlen, "registry %s: GET %s: not found (%s)", l->url, path, why);
        return DS_LEARN_PERMANENT;
    }
    snprintf(errbuf, errlen, "registry %s: GET %s answered %s", l->url, path, why);
    return DS_LEARN_TRANSIENT;
}

/* A 200 that is not what a registry answers: someone else is listening,
 * which an operator can fix. */
static dsLearnResult learnOdd(const dsLearner *l, const char *path, const char *what, char *errbuf, size_t errlen) {
    size_t blen;
    const char *body = dsHttpClientBody(l->http, &blen);
    snprintf(errbuf, errlen, "registry %s: GET %s answered 200 without %s (is this a schema registry?): %.*s", l->url,
             path, what, LEARN_EXCERPT, body);
    return DS_LEARN_TRANSIENT;
}

/* The schema text of an answer, if it is an Avro schema. */
static dsLearnResult learnText(const dsLearner *l, const char *path, const json_t *answer, const char **text,
                               char *errbuf, size_t errlen) {
    const char *type = json_string_value(json_object_get(answer, "schemaType"));
    *text = json_string_value(json_object_get(answer, "schema"));
    if (!*text) return learnOdd(l, path, "\"schema\"", errbuf, errlen);
    if (type && strcmp(type, "AVRO") != 0) {
        snprintf(errbuf, errlen, "registry %s: GET %s: a %s schema, not Avro", l->url, path, type);
        return DS_LEARN_PERMANENT;
    }
    return DS_LEARN_OK;
}

static dsLearnResult learnAdd(const dsLearner *l, dsCodec *c, int version, int id, const char *text, char *errbuf,
                              size_t errlen) {
    char why[1024];
    if (dsCodecAddVersion(c, version, id, text, strlen(text), why, sizeof why)) return DS_LEARN_OK;
    snprintf(errbuf, errlen, "registry %s: version %d of %s (schema id %d): the codec refuses it: %s", l->url, version,
             dsCodecSubject(c), id, why);
    return DS_LEARN_PERMANENT;
}

/* The version under the codec's subject in a /schemas/ids/{id}/versions
 * answer, [{"subject": ..., "version": ...}, ...]. */
static dsLearnResult learnVersionOfId(const dsLearner *l, const dsCodec *c, int id, const char *path,
                                      const json_t *list, int *version, char *errbuf, size_t errlen) {
    if (!json_is_array(list)) return learnOdd(l, path, "a list of subjects and versions", errbuf, errlen);
    size_t i;
    const json_t *e;
    json_array_foreach(list, i, e) {
        const char *subject = json_string_value(json_object_get(e, "subject"));
        json_int_t v = json_integer_value(json_object_get(e, "version"));
        if (subject && strcmp(subject, dsCodecSubject(c)) == 0 && v >= 1 && v <= INT32_MAX) {
            *version = (int)v;
            return DS_LEARN_OK;
        }
    }
    snprintf(errbuf, errlen, "registry %s: schema id %d is not registered under subject %s", l->url, id,
             dsCodecSubject(c));
    return DS_LEARN_PERMANENT;
}

dsLearnResult dsLearnId(dsLearner *l, dsCodec *c, int id, char *errbuf, size_t errlen) {
    if (dsCodecVersionOfId(c, id) >= 0) return DS_LEARN_OK;
    char path[LEARN_PATH_MAX], vpath[LEARN_PATH_MAX];
    json_t *schema = NULL, *versions = NULL;
    const char *text = NULL;
    int version = 0;
    snprintf(path, sizeof path, "/schemas/ids/%d", id);
    snprintf(vpath, sizeof vpath, "/schemas/ids/%d/versions", id);
    dsLearnResult r = learnGet(l, path, &schema, errbuf, errlen);
    if (r == DS_LEARN_OK) r = learnText(l, path, schema, &text, errbuf, errlen);
    if (r == DS_LEARN_OK) r = learnGet(l, vpath, &versions, errbuf, errlen);
    if (r == DS_LEARN_OK) r = learnVersionOfId(l, c, id, vpath, versions, &version, errbuf, errlen);
    if (r == DS_LEARN_OK) r = learnAdd(l, c, version, id, text, errbuf, errlen);
    json_decref(schema);
    json_decref(versions);
    return r;
}

dsLearnResult dsLearnVersion(dsLearner *l, dsCodec *c, int version, char *errbuf, size_t errlen) {
    if (dsCodecSchemaId(c, version) >= 0) return DS_LEARN_OK;
    char path[LEARN_PATH_MAX], *subject = dsHttpClientEscape(l->http, dsCodecSubject(c));
    json_t *answer = NULL;
    const char *text = NULL;
    if (!subject) {
        snprintf(errbuf, errlen, "out of memory");
        return DS_LEARN_TRANSIENT;
    }
    snprintf(path, sizeof path, "/subjects/%s/versions/%d", subject, version);
    free(subject);
    dsLearnResult r = learnGet(l, path, &answer, errbuf, errlen);
    if (r == DS_LEARN_OK) r = learnText(l, path, answer, &text, errbuf, errlen);
    json_int_t id = json_integer_value(json_object_get(answer, "id"));
    if (r == DS_LEARN_OK && (id < 1 || id > INT32_MAX)) r = learnOdd(l, path, "a positive \"id\"", errbuf, errlen);
    if (r == DS_LEARN_OK) r = learnAdd(l, c, version, (int)id, text, errbuf, errlen);
    json_decref(answer);
    return r;
}

dsLearnResult dsLearnWire(dsLearner *l, dsCodec *c, const void *buf, size_t len, int *version, char *errbuf,
                          size_t errlen) {
    int id = dsCodecWireId(buf, len);
    if (id < 0) {
        snprintf(errbuf, errlen, "record of %zu bytes is not in the wire format (0x00, schema id, Avro body)", len);
        return DS_LEARN_PERMANENT;
    }
    if (dsCodecVersionOfId(c, id) < 0) {
        if (l == NULL) {
            snprintf(errbuf, errlen, "unknown schema id %d, and no registry to learn it from (registry-url is empty):"
                     " waiting for a restart with a newer build or a registry-url", id);
            return DS_LEARN_TRANSIENT;
        }
        /* See learn.h: never a reason to pass the record over. */
        if (dsLearnId(l, c, id, errbuf, errlen) != DS_LEARN_OK) return DS_LEARN_TRANSIENT;
    }
    *version = dsCodecVersionOfId(c, id);
    return DS_LEARN_OK;
}
