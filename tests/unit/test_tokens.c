/* test_tokens.c - the tokens file and bearer-token checks (lib/src/auth.c)
 * shared by the decision API and the variable store: every role, admin
 * implying all of them, and the lines a file is refused for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ds/auth.h"

static char path[64];

/* "<sha256 hex of token> <roles>" */
static void hashLine(FILE *f, const char *token, const char *roles) {
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, strlen(token), d);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) fprintf(f, "%02x", d[i]);
    fprintf(f, " %s name-of-%s\n", roles, token);
}

static dsAuth *loadText(const char *text, char *err, size_t errlen) {
    snprintf(path, sizeof(path), "/tmp/test-tokens-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    dsAuth *a = dsAuthLoad(path, err, errlen);
    unlink(path);
    return a;
}

static dsAuthResult check(const dsAuth *a, const char *token, int roles) {
    char h[128];
    snprintf(h, sizeof(h), "Bearer %s", token);
    return dsAuthCheck(a, h, strlen(h), roles);
}

static void test_each_role_and_admin_implies_all(void **state) {
    snprintf(path, sizeof(path), "/tmp/test-tokens-XXXXXX");
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# comment\n\n");
    hashLine(f, "w", "writer");
    hashLine(f, "r", "reader");
    hashLine(f, "l", "lookup");
    hashLine(f, "i", "ingest");
    hashLine(f, "a", "admin");
    hashLine(f, "engine", "writer,lookup");
    fclose(f);
    char err[256];
    dsAuth *a = dsAuthLoad(path, err, sizeof(err));
    unlink(path);
    if (a == NULL) fail_msg("%s", err);
    assert_int_equal(dsAuthCount(a), 6);

    static const struct {
        const char *token;
        int holds;
    } want[] = {
        {"w", DS_ROLE_WRITER},
        {"r", DS_ROLE_READER},
        {"l", DS_ROLE_LOOKUP},
        {"i", DS_ROLE_INGEST},
        {"a", DS_ROLE_WRITER | DS_ROLE_READER | DS_ROLE_LOOKUP | DS_ROLE_INGEST | DS_ROLE_ADMIN},
        {"engine", DS_ROLE_WRITER | DS_ROLE_LOOKUP},
    };
    static const int roles[] = {DS_ROLE_WRITER, DS_ROLE_READER, DS_ROLE_LOOKUP, DS_ROLE_INGEST, DS_ROLE_ADMIN};
    for (size_t t = 0; t < sizeof(want) / sizeof(want[0]); t++)
        for (size_t r = 0; r < sizeof(roles) / sizeof(roles[0]); r++) {
            dsAuthResult got = check(a, want[t].token, roles[r]);
            dsAuthResult exp = (want[t].holds & roles[r]) ? DS_AUTH_OK : DS_AUTH_FORBIDDEN;
            if (got != exp) fail_msg("token %s, role bit %d: %d, expected %d", want[t].token, roles[r], got, exp);
        }
    /* a mask is any one of its roles: what the variable store's lookups ask */
    assert_int_equal(check(a, "l", DS_ROLE_LOOKUP | DS_ROLE_READER), DS_AUTH_OK);
    assert_int_equal(check(a, "r", DS_ROLE_LOOKUP | DS_ROLE_READER), DS_AUTH_OK);
    assert_int_equal(check(a, "i", DS_ROLE_LOOKUP | DS_ROLE_READER), DS_AUTH_FORBIDDEN);
    /* unknown, absent or malformed headers */
    assert_int_equal(check(a, "nobody", DS_ROLE_READER), DS_AUTH_UNKNOWN);
    assert_int_equal(dsAuthCheck(a, NULL, 0, DS_ROLE_READER), DS_AUTH_UNKNOWN);
    assert_int_equal(dsAuthCheck(a, "Basic a", 7, DS_ROLE_READER), DS_AUTH_UNKNOWN);
    assert_int_equal(dsAuthCheck(a, "Bearer ", 7, DS_ROLE_READER), DS_AUTH_UNKNOWN);
    assert_int_equal(dsAuthCheck(a, "bearer a", 8, DS_ROLE_ADMIN), DS_AUTH_OK);
    dsAuthFree(a);
}

static void refused(const char *text, const char *why) {
    char err[256] = "";
    dsAuth *a = loadText(text, err, sizeof(err));
    if (a != NULL) fail_msg("accepted: %s", text);
    if (strstr(err, why) == NULL) fail_msg("\"%s\" does not say \"%s\"", err, why);
}

static void test_bad_files_are_refused(void **state) {
    static const char hash[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    char line[200];
    snprintf(line, sizeof(line), "%s superuser\n", hash);
    refused(line, "unknown role \"superuser\"");
    snprintf(line, sizeof(line), "# ok\n%s lookup,ingester\n", hash);
    refused(line, ":2: unknown role \"ingester\"");
    snprintf(line, sizeof(line), "%s\n", hash);
    refused(line, "missing roles");
    refused("abc writer\n", "64 hex characters");
    char err[256];
    assert_null(dsAuthLoad("/nonexistent/tokens", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/tokens"));
    assert_null(dsAuthLoad("", err, sizeof(err)));
    assert_non_null(strstr(err, "no tokens file configured"));
    /* a directory is no file with no token in it, /dev/zero no endless line */
    assert_null(dsAuthLoad("/tmp", err, sizeof(err)));
    assert_non_null(strstr(err, "/tmp: Is a directory"));
    assert_null(dsAuthLoad("/dev/zero", err, sizeof(err)));
    assert_non_null(strstr(err, "/dev/zero: more than"));
    /* a NUL byte would hide the rest of its line from the parser */
    char nul[sizeof(hash) + 16];
    snprintf(nul, sizeof(nul), "%s admin", hash);
    nul[10] = '\0';
    snprintf(path, sizeof(path), "/tmp/test-tokens-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, nul, strlen(hash) + 6), (ssize_t)strlen(hash) + 6);
    close(fd);
    assert_null(dsAuthLoad(path, err, sizeof(err)));
    unlink(path);
    assert_non_null(strstr(err, "holds a NUL byte"));
}

/* The last line counts without its newline, and CRLF lines are read. */
static void test_line_ends(void **state) {
    char err[256], text[200];
    snprintf(text, sizeof(text), "# c\r\n%s", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 reader\r\n");
    dsAuth *a = loadText(text, err, sizeof(err));
    assert_non_null(a);
    assert_int_equal(check(a, "test", DS_ROLE_READER), DS_AUTH_OK);
    dsAuthFree(a);
    snprintf(text, sizeof(text), "%s", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 writer");
    a = loadText(text, err, sizeof(err));
    assert_non_null(a);
    assert_int_equal(check(a, "test", DS_ROLE_WRITER), DS_AUTH_OK);
    assert_int_equal(dsAuthCount(a), 1);
    dsAuthFree(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_role_and_admin_implies_all),
        cmocka_unit_test(test_bad_files_are_refused),
        cmocka_unit_test(test_line_ends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
