/* replay_main.c - decision-replay (CONTRACT §5): the command line, the
 * target it builds, and the exit status. The replay itself is replay.c.
 *
 * Exit status: 0 every selected decision written (or already present);
 * 1 some decisions or files failed, or the run could not go on; 2 a bad
 * command line; 3 interrupted (resume with the same command and
 * --checkpoint).
 */
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ds/codec.h"
#include "ds/config.h"
#include "ds/daemon.h"
#include "ds/fileio.h"
#include "ds/kafka.h"
#include "ds/log.h"
#include "ds/timefmt.h"
#include "progress.h"
#include "replay.h"
#include "target.h"

#define ENV_PREFIX "REPLAY_"

static struct {
    char *archive, *from, *to, *customer_id, *merchant_id, *outcome, *target, *topic, *compression, *dsn,
        *url, *token, *token_file, *checkpoint, *on_error, *schemas_dir, *log_level;
    long rate, batch, checkpoint_ms, progress_ms, max_clock_skew_ms;
    size_t max_block;
    bool dry_run;
    dsKafkaOptions kafka;
} opt;

static const dsConfigOption rpConfig[] = {
    {"archive", DS_CFG_STRING, "var/archive", "archive root (the directory holding decisions/)", &opt.archive, 1, 0},
    {"from", DS_CFG_STRING, "", "first decided_at replayed, inclusive (RFC 3339; required)", &opt.from, 0, 0},
    {"to", DS_CFG_STRING, "", "end of the range on decided_at, exclusive (RFC 3339; required)", &opt.to, 0, 0},
    {"customer-id", DS_CFG_STRING, "", "only this customer's decisions", &opt.customer_id, 0, 0},
    {"merchant-id", DS_CFG_STRING, "", "only this merchant's decisions", &opt.merchant_id, 0, 0},
    {"outcome", DS_CFG_STRING, "", "only decisions with this outcome (APPROVED, REJECTED, REFERRED)", &opt.outcome, 0,
     0},
    {"target", DS_CFG_STRING, "", "kafka, postgres or variable-store (required unless --dry-run)", &opt.target, 0, 0},
    DS_KAFKA_CONFIG_OPTIONS(opt.kafka, "decision-replay", "kafka target: bootstrap servers (host:port,...)", 0),
    {"topic", DS_CFG_STRING, "decisions", "kafka target: topic", &opt.topic, 1, 0},
    {"compression", DS_CFG_STRING, "lz4", "kafka target: none, gzip, snappy, lz4 or zstd", &opt.compression, 0, 0},
    {"dsn", DS_CFG_STRING, "", "postgres target: libpq connection string", &opt.dsn, 0, 0},
    {"url", DS_CFG_STRING, "", "variable-store target: http://HOST:PORT", &opt.url, 0, 0},
    {"token-file", DS_CFG_STRING, "",
     "variable-store target: file holding the bearer token (a token with the ingest role)", &opt.token_file, 0, 0},
    {"token", DS_CFG_STRING, "",
     "variable-store target: the bearer token itself; rather set REPLAY_TOKEN or use --token-file, since a command "
     "line is visible to every user of the machine", &opt.token, 0, 0},
    {"batch", DS_CFG_INT, "1000",
     "postgres and variable-store targets: decisions per INSERT or ingest request (one transaction each)", &opt.batch,
     1, 100000},
    {"dry-run", DS_CFG_BOOL, "false", "read, resolve and filter, count, write nothing", &opt.dry_run, 0, 0},
    {"max-clock-skew", DS_CFG_DURATION, "5m",
     "a record dated later than now plus this is refused, as the decision API refuses such a post",
     &opt.max_clock_skew_ms, 0, 86400000},
    {"rate", DS_CFG_INT, "0", "at most this many decisions/s to the target (0: no limit)", &opt.rate, 0, 100000000},
    {"checkpoint", DS_CFG_STRING, "", "file recording progress; an interrupted run resumes from it",
     &opt.checkpoint, 0, 0},
    {"checkpoint-interval", DS_CFG_DURATION, "1s", "how often the target is flushed and the checkpoint saved",
     &opt.checkpoint_ms, 10, 3600000},
    {"on-error", DS_CFG_STRING, "stop", "a damaged or unreadable file: stop, or continue with the next file",
     &opt.on_error, 0, 0},
    {"max-block-size", DS_CFG_SIZE, "64MiB",
     "an archive block larger than this, stored or inflated, is refused (a damaged or hostile file); at least the "
     "archiver's block-size", &opt.max_block, 65536, 1LL << 30},
    {"progress-interval", DS_CFG_DURATION, "5s", "between JSON progress lines when stderr is not a terminal",
     &opt.progress_ms, 100, 3600000},
    {"schemas-dir", DS_CFG_STRING, "",
     "schema directory (manifest.json and the .avsc files it names) to read the archive with and resolve to its "
     "current version, instead of the schemas built in (empty: built in)", &opt.schemas_dir, 0, 0},
    {"log-level", DS_CFG_STRING, "info", "debug, info, warn or error", &opt.log_level, 0, 0},
};
#define RP_NCONFIG (sizeof(rpConfig) / sizeof(rpConfig[0]))

static volatile sig_atomic_t stopping;

static void rpOnSignal(int sig) {
    stopping = 1;
}

static const char *rpOptional(const char *s) {
    return s && *s ? s : NULL;
}

static bool rpUsageError(const char *fmt, const char *arg) {
    fprintf(stderr, "decision-replay: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see --help)\n");
    return false;
}

/* Whether sym is a symbol of the current schema's outcome enum. */
static bool rpIsOutcome(dsCodec *codec, const char *sym) {
    avro_schema_t f = avro_schema_record_field_get(dsCodecSchema(codec, dsCodecCurrentVersion(codec)), "outcome");
    return f != NULL && avro_typeof(f) == AVRO_ENUM && avro_schema_enum_get_by_name(f, sym) >= 0;
}

static bool rpParseTime(const char *name, const char *text, int64_t *ms) {
    char err[128], msg[256];
    if (!*text) return rpUsageError("--%s is required", name);
    if (dsTimeParse(text, strlen(text), ms, err, sizeof(err))) return true;
    snprintf(msg, sizeof(msg), "--%s %s: %s", name, text, err);
    return rpUsageError("%s", msg);
}

/* A token goes into a header: printable ASCII without spaces, as RFC 6750's
 * b64token, so a stray newline from a file cannot end the header early. */
static bool rpTokenValid(const char *tok) {
    if (*tok == '\0') return false;
    for (const unsigned char *p = (const unsigned char *)tok; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f) return false;
    return true;
}

/* The variable store's token: from --token-file (its first line, trailing
 * white space dropped) or --token / REPLAY_TOKEN; a new string the caller
 * frees, or NULL after printing why. */
static char *rpLoadToken(void) {
    char err[512], *tok;
    size_t len;
    if (*opt.token_file && *opt.token) {
        rpUsageError("give the token once: --token-file or --token (REPLAY_TOKEN), not both%s", "");
        return NULL;
    }
    if (!*opt.token_file && !*opt.token) {
        rpUsageError("--target variable-store needs a token with the ingest role: --token-file FILE or "
                     "REPLAY_TOKEN%s", "");
        return NULL;
    }
    if (*opt.token_file) {
        if ((tok = dsFileRead(opt.token_file, DS_FILE_MAX_SECRET, &len, err, sizeof(err))) == NULL) {
            rpUsageError("--token-file: %s", err);
            return NULL;
        }
        tok[strcspn(tok, "\r\n")] = '\0';
        for (size_t n = strlen(tok); n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t');) tok[--n] = '\0';
    } else if ((tok = strdup(opt.token)) == NULL) {
        rpUsageError("out of memory%s", "");
        return NULL;
    }
    if (!rpTokenValid(tok)) {
        rpUsageError("the token%s is empty or holds spaces or control characters",
                     *opt.token_file ? " in --token-file" : "");
        free(tok);
        return NULL;
    }
    return tok;
}

/* Checks the command line beyond what the option table can. */
static bool rpCheckOptions(rpReplaySpec *spec, dsCodec *codec, char **token) {
    if (!rpParseTime("from", opt.from, &spec->from_ms) || !rpParseTime("to", opt.to, &spec->to_ms)) return false;
    if (spec->from_ms >= spec->to_ms) return rpUsageError("--from must be before --to%s", "");
    if (strcmp(opt.on_error, "stop") != 0 && strcmp(opt.on_error, "continue") != 0)
        return rpUsageError("--on-error must be stop or continue, not %s", opt.on_error);
    if (*opt.outcome && !rpIsOutcome(codec, opt.outcome))
        return rpUsageError("--outcome %s is not an outcome of the current schema", opt.outcome);
    if (!opt.dry_run && !*opt.target) return rpUsageError("--target is required (or --dry-run)%s", "");
    if (*opt.target && strcmp(opt.target, "kafka") != 0 && strcmp(opt.target, "postgres") != 0 &&
        strcmp(opt.target, "variable-store") != 0)
        return rpUsageError("--target must be kafka, postgres or variable-store, not %s", opt.target);
    char kerr[512];
    if (strcmp(opt.target, "kafka") == 0 && !*opt.kafka.brokers)
        return rpUsageError("--target kafka needs --brokers%s", "");
    if (strcmp(opt.target, "kafka") == 0 && !dsKafkaOptionsCheck(&opt.kafka, kerr, sizeof(kerr)))
        return rpUsageError("%s", kerr);
    if (!opt.dry_run && strcmp(opt.target, "postgres") == 0 && !*opt.dsn)
        return rpUsageError("--target postgres needs --dsn%s", "");
    if (!opt.dry_run && strcmp(opt.target, "variable-store") == 0 && !*opt.url)
        return rpUsageError("--target variable-store needs --url%s", "");
    if (!opt.dry_run && strcmp(opt.target, "variable-store") == 0 && (*token = rpLoadToken()) == NULL) return false;
    return true;
}

static rpTarget *rpMakeTarget(dsCodec *codec, const char *token, char *desc, size_t dlen, char *errbuf,
                              size_t errlen) {
    if (strcmp(opt.target, "kafka") == 0) {
        snprintf(desc, dlen, "kafka:%s/%s", opt.kafka.brokers, opt.topic);
        return rpKafkaTargetNew(codec, &opt.kafka, opt.topic, opt.compression, errbuf, errlen);
    }
    if (strcmp(opt.target, "variable-store") == 0) {
        snprintf(desc, dlen, "variable-store:%s", opt.url);
        return rpVsTargetNew(codec, opt.url, token, (size_t)opt.batch, errbuf, errlen);
    }
    snprintf(desc, dlen, "postgres");
    return rpPgTargetNew(codec, opt.dsn, (size_t)opt.batch, errbuf, errlen);
}

static int rpMain(dsCodec *codec) {
    char err[2048], desc[512] = "dry-run";
    rpReplaySpec spec = {.root = opt.archive, .customer_id = rpOptional(opt.customer_id),
                         .merchant_id = rpOptional(opt.merchant_id), .outcome = rpOptional(opt.outcome),
                         .rate = (double)opt.rate, .checkpoint = rpOptional(opt.checkpoint),
                         .checkpoint_ms = opt.checkpoint_ms, .progress_ms = 200, .max_block = opt.max_block,
                         .stop_on_error = strcmp(opt.on_error, "stop") == 0,
                         .max_clock_skew_ms = opt.max_clock_skew_ms};
    char *token = NULL;
    if (!rpCheckOptions(&spec, codec, &token)) return 2;
    rpTarget *target = NULL;
    if (!opt.dry_run) target = rpMakeTarget(codec, token, desc, sizeof(desc), err, sizeof(err));
    if (token) OPENSSL_cleanse(token, strlen(token)); /* the target holds its own copy */
    free(token);
    if (!opt.dry_run && target == NULL) {
        dsLogError("%s target: %s", opt.target, err);
        return 1;
    }
    spec.target_desc = desc;
    if (!spec.checkpoint && !opt.dry_run)
        dsLogInfo("no --checkpoint: an interrupted run starts again from the beginning");
    rpProgress progress = {stderr, isatty(STDERR_FILENO) == 1, opt.progress_ms, 0, opt.dry_run};
    rpReplayStats st;
    int rc = rpReplayRun(&spec, codec, target, &stopping, rpProgressReport, &progress, &st, err, sizeof(err));
    if (rc < 0) dsLogError("%s", err);
    if (rc == RP_REPLAY_INTERRUPTED)
        dsLogWarn("interrupted%s", spec.checkpoint ? "; the same command resumes from the checkpoint" : "");
    rpProgressSummary(stdout, isatty(STDOUT_FILENO) == 1, &st, rc, opt.dry_run);
    rpTargetDestroy(target);
    return rc < 0 ? 1 : rc;
}

int main(int argc, char **argv) {
    static const dsDaemonSpec spec = {
        "decision-replay", "decision-replay --from RFC3339 --to RFC3339 --target kafka|postgres|variable-store",
        "Replays archived decisions of a time range into Kafka, PostgreSQL or the variable store.", rpConfig,
        RP_NCONFIG, ENV_PREFIX, &opt.log_level, NULL}; /* Kafka options: checked with --target kafka only */
    int early = dsDaemonStart(&spec, argc, argv, NULL, NULL);
    if (early >= 0) return early;
    char err[512];
    struct sigaction sa = {.sa_handler = rpOnSignal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    dsCodec *codec = dsCodecNewForDirOption(opt.schemas_dir, err, sizeof(err));
    int rc = 1;
    if (codec == NULL) dsLogError("cannot load the schemas: %s", err);
    else rc = rpMain(codec);
    dsCodecFree(codec);
    dsConfigFree(rpConfig, RP_NCONFIG);
    return rc;
}
