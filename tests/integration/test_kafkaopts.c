/* test_kafkaopts.c - every Kafka client refuses a wrong Kafka option as a
 * usage error (exit 2, the option named, nothing started) before it opens
 * anything, the way it refuses any other flag; decision-replay only when
 * its target is Kafka. No broker is needed: nothing may reach one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static const char *const daemons[] = {"stream-processor", "decision-archiver", "variable-store"};

/* Runs $BUILD/bin/<program> with args; its exit status, its output in *out
 * (the caller frees). */
static int runProgram(const char *program, const char *args, char **out) {
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s/bin/%s %s </dev/null", build, program, args);
    return dtRun(cmd, out);
}

static void assertUsageError(const char *program, const char *args, const char *says) {
    char *out = NULL;
    int rc = runProgram(program, args, &out);
    if (rc != 2 || strstr(out, says) == NULL)
        fail_msg("%s %s: exit %d, wanted 2 with \"%s\"; output:\n%s", program, args, rc, says, out);
    free(out);
}

static void test_daemons_refuse_wrong_kafka_options(void **state) {
    (void)state;
    /* An empty --brokers: the store then runs without Kafka (ingest only). */
    assertUsageError("stream-processor", "--brokers ''", "--brokers");
    assertUsageError("decision-archiver", "--brokers ''", "--brokers");
    assertUsageError("stream-processor", "--delivery exactly-twice", "--delivery: \"exactly-twice\" is not");
    for (size_t i = 0; i < sizeof(daemons) / sizeof(daemons[0]); i++) {
        const char *p = daemons[i];
        assertUsageError(p, "--security-protocol tls", "--security-protocol: \"tls\" is not plaintext");
        assertUsageError(p, "--sasl-username u", "--sasl-username is set but --security-protocol is plaintext");
        assertUsageError(p, "--security-protocol sasl_ssl --sasl-mechanism GSSAPI --sasl-username u",
                         "--sasl-mechanism: \"GSSAPI\" is not PLAIN");
        assertUsageError(p,
                         "--security-protocol sasl_plaintext --sasl-mechanism SCRAM-SHA-512 --sasl-username u "
                         "--sasl-password-file /nonexistent/password",
                         "--sasl-password-file: /nonexistent/password");
        assertUsageError(p, "--security-protocol ssl --ssl-ca-location /nonexistent/ca.pem",
                         "--ssl-ca-location /nonexistent/ca.pem");
    }
}

static void test_replay_checks_kafka_options_for_a_kafka_target_only(void **state) {
    (void)state;
    const char *range = "--from 2026-01-01T00:00:00Z --to 2026-01-02T00:00:00Z --archive /nonexistent/archive";
    char args[512];
    snprintf(args, sizeof(args), "%s --target kafka --security-protocol tls", range);
    assertUsageError("decision-replay", args, "--security-protocol: \"tls\" is not plaintext");
    snprintf(args, sizeof(args), "%s --target kafka --brokers ''", range);
    assertUsageError("decision-replay", args, "--target kafka needs --brokers");
    /* The same option beside another target is not read: the run goes on
     * to the archive, which is missing (a runtime error, exit 1). */
    char *out = NULL;
    snprintf(args, sizeof(args), "%s --target postgres --dsn postgresql:///none --security-protocol tls", range);
    int rc = runProgram("decision-replay", args, &out);
    if (rc != 1 || strstr(out, "security-protocol") != NULL)
        fail_msg("decision-replay %s: exit %d, wanted 1 without a word on Kafka; output:\n%s", args, rc, out);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_daemons_refuse_wrong_kafka_options),
        cmocka_unit_test(test_replay_checks_kafka_options_for_a_kafka_target_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
