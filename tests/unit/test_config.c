/* test_config.c - dsConfigLoad() sources, parsing, errors and --help.
 *
 * Every test that sets environment variables uses its own prefix so tests
 * never see each other's variables, whatever order they run in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ds/config.h"
#include "ds/fileio.h"

typedef struct {
    char *host;
    long port;
    bool verbose;
    size_t cache;
    long timeout;
} testVals;

#define NOPTS 5

static void testOpts(dsConfigOption opts[NOPTS], testVals *v) {
    dsConfigOption o[NOPTS] = {
        {"host", DS_CFG_STRING, "localhost", "address to bind", &v->host, 0, 0},
        {"listen-port", DS_CFG_INT, "8080", "TCP port", &v->port, 1, 65535},
        {"verbose", DS_CFG_BOOL, "false", "log more", &v->verbose, 0, 0},
        {"cache-size", DS_CFG_SIZE, "1MiB", "cache budget", &v->cache, 1024, 1LL << 30},
        {"timeout", DS_CFG_DURATION, "5s", "request timeout", &v->timeout, 1, 3600000},
    };
    memcpy(opts, o, sizeof o);
}

/* Loads with argv = {"prog", args..., NULL}; no positional arguments. */
static dsConfigResult load(testVals *v, const char *prefix, char *err, size_t errlen, int argc,
                           char **argv) {
    dsConfigOption opts[NOPTS];
    testOpts(opts, v);
    return dsConfigLoad(opts, NOPTS, prefix, argc, argv, NULL, NULL, err, errlen);
}

#define ARGC(a) ((int)(sizeof(a) / sizeof(a[0])) - 1)

static void freeVals(testVals *v) {
    dsConfigOption opts[NOPTS];
    testOpts(opts, v);
    dsConfigFree(opts, NOPTS);
    assert_null(v->host);
}

static void test_defaults(void **state) {
    testVals v = {0};
    char err[256];
    char *argv[] = {"prog", NULL};
    assert_int_equal(load(&v, "TCDEF_", err, sizeof err, ARGC(argv), argv), DS_CONFIG_OK);
    assert_string_equal(err, "");
    assert_string_equal(v.host, "localhost");
    assert_int_equal(v.port, 8080);
    assert_false(v.verbose);
    assert_int_equal(v.cache, 1024 * 1024);
    assert_int_equal(v.timeout, 5000);
    freeVals(&v);
}

static void test_null_default_and_no_env(void **state) {
    char *s = NULL;
    long n = -1;
    bool b = true;
    dsConfigOption opts[] = {
        {"name", DS_CFG_STRING, NULL, "", &s, 0, 0},
        {"count", DS_CFG_INT, NULL, "", &n, 0, 0},
        {"flag", DS_CFG_BOOL, NULL, "", &b, 0, 0},
    };
    char *argv[] = {"prog", NULL};
    char err[256];
    assert_int_equal(dsConfigLoad(opts, 3, NULL, 1, argv, NULL, NULL, err, sizeof err), DS_CONFIG_OK);
    assert_non_null(s); /* the empty default is a malloc'd "" so free is uniform */
    assert_string_equal(s, "");
    assert_int_equal(n, 0);
    assert_false(b);
    dsConfigFree(opts, 3);
    assert_null(s);
}

static void test_env_override(void **state) {
    setenv("TCENV_HOST", "db.internal", 1);
    setenv("TCENV_LISTEN_PORT", "9090", 1);
    setenv("TCENV_VERBOSE", "yes", 1);
    setenv("TCENV_CACHE_SIZE", "512k", 1);
    setenv("TCENV_TIMEOUT", "2m", 1);
    testVals v = {0};
    char err[256];
    char *argv[] = {"prog", NULL};
    assert_int_equal(load(&v, "TCENV_", err, sizeof err, ARGC(argv), argv), DS_CONFIG_OK);
    assert_string_equal(v.host, "db.internal");
    assert_int_equal(v.port, 9090);
    assert_true(v.verbose);
    assert_int_equal(v.cache, 512 * 1024);
    assert_int_equal(v.timeout, 120000);
    freeVals(&v);
}

static void test_flag_beats_env(void **state) {
    setenv("TCFLAG_LISTEN_PORT", "9090", 1);
    setenv("TCFLAG_HOST", "from-env", 1);
    testVals v = {0};
    char err[256];
    char *argv[] = {"prog", "--listen-port", "7070", "--host=from-flag", NULL};
    assert_int_equal(load(&v, "TCFLAG_", err, sizeof err, ARGC(argv), argv), DS_CONFIG_OK);
    assert_int_equal(v.port, 7070);
    assert_string_equal(v.host, "from-flag");
    freeVals(&v);
}

static void test_flag_syntaxes(void **state) {
    testVals v = {0};
    char err[256];
    char *argv[] = {"prog", "--cache-size=2MiB", "--timeout", "250ms", "--listen-port=1",
                    "--listen-port", "2", NULL}; /* repeated: the last one wins */
    assert_int_equal(load(&v, "TCSYN_", err, sizeof err, ARGC(argv), argv), DS_CONFIG_OK);
    assert_int_equal(v.cache, 2 * 1024 * 1024);
    assert_int_equal(v.timeout, 250);
    assert_int_equal(v.port, 2);
    freeVals(&v);
}

static void test_bad_int_names_source(void **state) {
    setenv("TCBAD_LISTEN_PORT", "abc", 1);
    testVals v = {0};
    char err[256];
    char *argv[] = {"prog", NULL};
    assert_int_equal(load(&v, "TCBAD_", err, sizeof err, ARGC(argv), argv), DS_CONFIG_ERROR);
    assert_string_equal(err, "invalid value \"abc\" for --listen-port (from TCBAD_LISTEN_PORT): "
                             "not an integer");
    assert_null(v.host); /* a failed load stores nothing */

    const char *bad[] = {"", " 1", "1 ", "12x", "0x10", "1.5", "+", "-"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *a[] = {"prog", "--listen-port", (char *)bad[i], NULL};
        char arg[64];
        snprintf(arg, sizeof arg, "--listen-port=%s", bad[i]);
        char *b[] = {"prog", arg, NULL};
        assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(b), b), DS_CONFIG_ERROR);
        assert_non_null(strstr(err, "(from command line): not an integer"));
        assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(a), a), DS_CONFIG_ERROR);
        assert_non_null(strstr(err, "(from command line): not an integer"));
    }
    assert_null(v.host);
}

static void test_int_overflow_and_range(void **state) {
    testVals v = {0};
    char err[256];
    char *big[] = {"prog", "--listen-port", "99999999999999999999", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(big), big), DS_CONFIG_ERROR);
    assert_string_equal(err, "invalid value \"99999999999999999999\" for --listen-port "
                             "(from command line): integer too large");

    char *hi[] = {"prog", "--listen-port=65536", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(hi), hi), DS_CONFIG_ERROR);
    assert_string_equal(err, "invalid value \"65536\" for --listen-port (from command line): "
                             "out of range [1, 65535]");

    char *lo[] = {"prog", "--listen-port", "0", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(lo), lo), DS_CONFIG_ERROR);
    assert_non_null(strstr(err, "out of range [1, 65535]"));

    char *neg[] = {"prog", "--listen-port", "-5", NULL}; /* "-5" is a value, not a flag */
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(neg), neg), DS_CONFIG_ERROR);
    assert_non_null(strstr(err, "out of range"));

    char *edge[] = {"prog", "--listen-port", "65535", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(edge), edge), DS_CONFIG_OK);
    assert_int_equal(v.port, 65535);
    freeVals(&v);
}

static void test_unbounded_negative_int(void **state) {
    long n = 0;
    dsConfigOption opts[] = {{"offset", DS_CFG_INT, "0", "", &n, 0, 0}};
    char err[256];
    char *argv[] = {"prog", "--offset", "-9223372036854775808", NULL};
    assert_int_equal(dsConfigLoad(opts, 1, NULL, 3, argv, NULL, NULL, err, sizeof err), DS_CONFIG_OK);
    assert_true(n == (-9223372036854775807L - 1));
}

static void test_sizes(void **state) {
    static const struct {
        const char *text;
        size_t want;
    } ok[] = {
        {"1048576", 1048576}, {"1MiB", 1 << 20}, {"1mib", 1 << 20}, {"512k", 512 << 10},
        {"2KiB", 2048},       {"1g", 1 << 30},   {"1GiB", 1 << 30}, {"4096b", 4096},
        {"1M", 1 << 20},
    };
    testVals v = {0};
    char err[256];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char *argv[] = {"prog", "--cache-size", (char *)ok[i].text, NULL};
        assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(argv), argv), DS_CONFIG_OK);
        assert_int_equal(v.cache, ok[i].want);
    }

    char *suffix[] = {"prog", "--cache-size", "10MB", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(suffix), suffix), DS_CONFIG_ERROR);
    assert_string_equal(err, "invalid value \"10MB\" for --cache-size (from command line): "
                             "unknown size suffix \"MB\" (use k, KiB, m, MiB, g, GiB, t, TiB)");

    const char *bad[] = {"", "k", "-1", "1.5MiB", " 1k", "1 k", "99999999999999999999",
                         "20000000000000000t"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char arg[64];
        snprintf(arg, sizeof arg, "--cache-size=%s", bad[i]);
        char *argv[] = {"prog", arg, NULL};
        assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(argv), argv), DS_CONFIG_ERROR);
    }

    char *range[] = {"prog", "--cache-size", "2GiB", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(range), range), DS_CONFIG_ERROR);
    assert_non_null(strstr(err, "out of range [1024, 1073741824] bytes"));
    freeVals(&v);
}

static void test_durations(void **state) {
    static const struct {
        const char *text;
        long want;
    } ok[] = {
        {"250ms", 250}, {"250", 250}, {"5s", 5000}, {"2m", 120000}, {"1h", 3600000}, {"1S", 1000},
    };
    testVals v = {0};
    char err[256];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char *argv[] = {"prog", "--timeout", (char *)ok[i].text, NULL};
        assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(argv), argv), DS_CONFIG_OK);
        assert_int_equal(v.timeout, ok[i].want);
    }
    char *unit[] = {"prog", "--timeout=5d", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(unit), unit), DS_CONFIG_ERROR);
    assert_string_equal(err, "invalid value \"5d\" for --timeout (from command line): "
                             "unknown duration unit \"d\" (use ms, s, m, h)");

    char *range[] = {"prog", "--timeout=2h", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(range), range), DS_CONFIG_ERROR);
    assert_non_null(strstr(err, "out of range [1, 3600000] ms"));

    const char *bad[] = {"", "s", "-5s", "1.5s", "99999999999999999h", "5 s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char arg[64];
        snprintf(arg, sizeof arg, "--timeout=%s", bad[i]);
        char *argv[] = {"prog", arg, NULL};
        assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(argv), argv), DS_CONFIG_ERROR);
    }
    freeVals(&v);
}

static void test_bools(void **state) {
    static const struct {
        const char *text;
        bool want;
    } words[] = {
        {"true", true}, {"1", true}, {"yes", true}, {"on", true}, {"TRUE", true},
        {"false", false}, {"0", false}, {"no", false}, {"off", false}, {"Off", false},
    };
    testVals v = {0};
    char err[256];
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        char arg[64];
        snprintf(arg, sizeof arg, "--verbose=%s", words[i].text);
        char *eq[] = {"prog", arg, NULL};
        assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(eq), eq), DS_CONFIG_OK);
        assert_int_equal(v.verbose, words[i].want);
        char *sep[] = {"prog", "--verbose", (char *)words[i].text, NULL};
        assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(sep), sep), DS_CONFIG_OK);
        assert_int_equal(v.verbose, words[i].want);
    }
    /* A bare boolean flag means true and does not swallow the next flag. */
    char *bare[] = {"prog", "--verbose", "--listen-port", "81", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(bare), bare), DS_CONFIG_OK);
    assert_true(v.verbose);
    assert_int_equal(v.port, 81);

    char *bad[] = {"prog", "--verbose=maybe", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(bad), bad), DS_CONFIG_ERROR);
    assert_string_equal(err, "invalid value \"maybe\" for --verbose (from command line): "
                             "not a boolean (use true/false, 1/0, yes/no, on/off)");
    freeVals(&v);
}

static void test_unknown_flag(void **state) {
    testVals v = {0};
    char err[256];
    char *argv[] = {"prog", "--no-such=1", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(argv), argv), DS_CONFIG_ERROR);
    assert_string_equal(err, "unknown option --no-such (see --help)");
    char *shrt[] = {"prog", "-x", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(shrt), shrt), DS_CONFIG_ERROR);
    assert_string_equal(err, "unknown option -x (see --help)");
    char *prefix[] = {"prog", "--listen", "1", NULL}; /* no prefix matching */
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(prefix), prefix), DS_CONFIG_ERROR);
    assert_null(v.host);
}

static void test_missing_value(void **state) {
    testVals v = {0};
    char err[256];
    char *end[] = {"prog", "--listen-port", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(end), end), DS_CONFIG_ERROR);
    assert_string_equal(err, "missing value for --listen-port");
    char *flag[] = {"prog", "--host", "--listen-port", "80", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(flag), flag), DS_CONFIG_ERROR);
    assert_string_equal(err, "missing value for --host");
    /* The = form can carry anything, including an empty string. */
    char *eq[] = {"prog", "--host=--weird", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(eq), eq), DS_CONFIG_OK);
    assert_string_equal(v.host, "--weird");
    char *empty[] = {"prog", "--host=", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(empty), empty), DS_CONFIG_OK);
    assert_string_equal(v.host, "");
    freeVals(&v);
}

static void test_help(void **state) {
    testVals v = {0};
    char err[256];
    char *lng[] = {"prog", "--listen-port", "81", "--help", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(lng), lng), DS_CONFIG_HELP);
    assert_int_equal(v.port, 0); /* nothing stored */
    char *shrt[] = {"prog", "-h", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(shrt), shrt), DS_CONFIG_HELP);
    /* Help wins over a typo made before it. */
    char *typo[] = {"prog", "--bogus", "-h", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(typo), typo), DS_CONFIG_HELP);
    /* After "--" it is just an argument. */
    char *dash[] = {"prog", "--", "--help", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(dash), dash), DS_CONFIG_ERROR);
    assert_string_equal(err, "unexpected argument \"--help\"");
    assert_null(v.host);
}

static void test_positional(void **state) {
    testVals v = {0};
    dsConfigOption opts[NOPTS];
    testOpts(opts, &v);
    char err[256];
    char *pos[3];
    size_t npos = 3;
    char *argv[] = {"prog", "in.txt", "--listen-port", "90", "-", "--", "--not-a-flag", NULL};
    assert_int_equal(dsConfigLoad(opts, NOPTS, NULL, ARGC(argv), argv, pos, &npos, err, sizeof err),
                     DS_CONFIG_OK);
    assert_int_equal(npos, 3);
    assert_ptr_equal(pos[0], argv[1]); /* pointers into argv, not copies */
    assert_string_equal(pos[1], "-");
    assert_string_equal(pos[2], "--not-a-flag");
    assert_int_equal(v.port, 90);

    npos = 1;
    char *many[] = {"prog", "a", "b", NULL};
    assert_int_equal(dsConfigLoad(opts, NOPTS, NULL, ARGC(many), many, pos, &npos, err, sizeof err),
                     DS_CONFIG_ERROR);
    assert_string_equal(err, "too many arguments (at most 1): \"b\"");
    assert_int_equal(npos, 0);

    char *none[] = {"prog", "stray", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(none), none), DS_CONFIG_ERROR);
    assert_string_equal(err, "unexpected argument \"stray\"");
    freeVals(&v);
}

static void test_reload_and_error_keep_strings(void **state) {
    testVals v = {0};
    char err[256];
    char *first[] = {"prog", "--host", "one", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(first), first), DS_CONFIG_OK);
    char *second[] = {"prog", "--host", "two", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(second), second), DS_CONFIG_OK);
    assert_string_equal(v.host, "two"); /* "one" freed: ASan would report the leak */
    char *bad[] = {"prog", "--host", "three", "--listen-port", "x", NULL};
    assert_int_equal(load(&v, NULL, err, sizeof err, ARGC(bad), bad), DS_CONFIG_ERROR);
    assert_string_equal(v.host, "two"); /* "three" discarded, "two" kept */
    freeVals(&v);
    dsConfigOption opts[NOPTS];
    testOpts(opts, &v);
    dsConfigFree(opts, NOPTS); /* twice is harmless */
}

static void test_bad_default_and_tiny_errbuf(void **state) {
    long n = 0;
    dsConfigOption opts[] = {{"workers", DS_CFG_INT, "many", "", &n, 0, 0}};
    char *argv[] = {"prog", NULL};
    char err[256];
    assert_int_equal(dsConfigLoad(opts, 1, "TCDFL_", 1, argv, NULL, NULL, err, sizeof err),
                     DS_CONFIG_ERROR);
    assert_string_equal(err, "invalid value \"many\" for --workers (from default): not an integer");
    char tiny[8];
    assert_int_equal(dsConfigLoad(opts, 1, NULL, 1, argv, NULL, NULL, tiny, sizeof tiny),
                     DS_CONFIG_ERROR);
    assert_string_equal(tiny, "invalid");
    assert_int_equal(dsConfigLoad(opts, 1, NULL, 1, argv, NULL, NULL, NULL, 0), DS_CONFIG_ERROR);
}

static void test_usage(void **state) {
    testVals v = {0};
    dsConfigOption opts[NOPTS];
    testOpts(opts, &v);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    dsConfigUsage(f, "decision-api", "Serves decisions.", opts, NOPTS, "DECISIONS_");
    fclose(f);
    const char *want =
        "usage: decision-api [options]\n"
        "Serves decisions.\n"
        "\n"
        "  OPTION              ENVIRONMENT            DEFAULT    DESCRIPTION\n"
        "  --host STR          DECISIONS_HOST         localhost  address to bind\n"
        "  --listen-port INT   DECISIONS_LISTEN_PORT  8080       TCP port (range 1..65535)\n"
        "  --verbose BOOL      DECISIONS_VERBOSE      false      log more\n"
        "  --cache-size SIZE   DECISIONS_CACHE_SIZE   1MiB       cache budget "
        "(range 1024..1073741824 bytes)\n"
        "  --timeout DURATION  DECISIONS_TIMEOUT      5s         request timeout "
        "(range 1..3600000 ms)\n"
        "  -h, --help                                            show this help and exit\n";
    assert_string_equal(text, want);
    free(text);
}

/* A string option with min 1 refuses "" from the environment or a flag,
 * naming it (an unset variable expanded to nothing must not make the
 * archive root "", i.e. /decisions), and --help says so. */
static void test_string_not_empty(void **state) {
    char *root = NULL, err[256], *text = NULL;
    size_t len = 0;
    dsConfigOption opts[] = {{"root", DS_CFG_STRING, "var/archive", "archive root", &root, 1, 0}};
    setenv("TCNE_ROOT", "", 1);
    char *none[] = {"prog", NULL};
    assert_int_equal(dsConfigLoad(opts, 1, "TCNE_", ARGC(none), none, NULL, NULL, err, sizeof err), DS_CONFIG_ERROR);
    assert_string_equal(err, "invalid value \"\" for --root (from TCNE_ROOT): must not be empty");
    unsetenv("TCNE_ROOT");
    char *flag[] = {"prog", "--root=", NULL};
    assert_int_equal(dsConfigLoad(opts, 1, "TCNE_", ARGC(flag), flag, NULL, NULL, err, sizeof err), DS_CONFIG_ERROR);
    assert_non_null(strstr(err, "must not be empty"));
    char *ok[] = {"prog", "--root", "/srv/archive", NULL};
    assert_int_equal(dsConfigLoad(opts, 1, "TCNE_", ARGC(ok), ok, NULL, NULL, err, sizeof err), DS_CONFIG_OK);
    assert_string_equal(root, "/srv/archive");
    dsConfigFree(opts, 1);
    FILE *f = open_memstream(&text, &len);
    dsConfigUsage(f, "prog", NULL, opts, 1, "TCNE_");
    fclose(f);
    assert_non_null(strstr(text, "archive root (not empty)"));
    free(text);
}

/* A file an option names is read whole but never beyond its cap: /dev/zero
 * (or any endless or huge file) is an error naming the path, not a read
 * until memory runs out; a directory is an error too. */
static void test_file_read_cap(void **state) {
    char err[256], path[] = "/tmp/test-fileio-XXXXXX";
    size_t len;
    assert_null(dsFileRead("/dev/zero", 4096, &len, err, sizeof(err)));
    assert_non_null(strstr(err, "/dev/zero: more than 4096 bytes"));
    assert_null(dsFileRead("/tmp", 4096, &len, err, sizeof(err)));
    assert_string_equal(err, "/tmp: Is a directory");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    for (int i = 0; i < 4096; i++) fputc('k', f);
    fclose(f);
    char *text = dsFileRead(path, 4096, &len, err, sizeof(err));
    assert_non_null(text);
    assert_int_equal(len, 4096);
    free(text);
    assert_null(dsFileRead(path, 4095, &len, err, sizeof(err)));
    unlink(path);
}


/* ---- deprecated aliases */

typedef struct {
    char *archive;
    long port;
} aliasVals;

#define NALIAS 4

static void aliasOpts(dsConfigOption opts[NALIAS], aliasVals *v) {
    dsConfigOption o[NALIAS] = {
        {"archive", DS_CFG_STRING, "var/archive", "archive root", &v->archive, 0, 0},
        DS_CONFIG_ALIAS("root", "archive"),
        {"metrics-port", DS_CFG_INT, "0", "metrics port", &v->port, 0, 65535},
        DS_CONFIG_ALIAS("port", "metrics-port"),
    };
    memcpy(opts, o, sizeof o);
}

/* Runs dsConfigLoad() with stderr going to a file; returns what was logged
 * (the caller frees it). */
static char *aliasLoad(aliasVals *v, const char *prefix, int argc, char **argv, dsConfigResult *rc, char *err,
                       size_t errlen) {
    dsConfigOption opts[NALIAS];
    aliasOpts(opts, v);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    *rc = dsConfigLoad(opts, NALIAS, prefix, argc, argv, NULL, NULL, err, errlen);
    dup2(saved, 2);
    close(saved);
    long len = ftell(tmp) >= 0 ? (fseek(tmp, 0, SEEK_END), ftell(tmp)) : 0;
    char *text = calloc(1, (size_t)len + 1);
    rewind(tmp);
    assert_int_equal(fread(text, 1, (size_t)len, tmp), (size_t)len);
    fclose(tmp);
    return text;
}

static void aliasFree(aliasVals *v) {
    dsConfigOption opts[NALIAS];
    aliasOpts(opts, v);
    dsConfigFree(opts, NALIAS);
}

static void test_alias_flag_warns(void **state) {
    aliasVals v = {0};
    char err[256];
    dsConfigResult rc;
    char *argv[] = {"prog", "--root", "/data/a", "--port=9100", NULL};
    char *log = aliasLoad(&v, "TCAL1_", ARGC(argv), argv, &rc, err, sizeof err);
    assert_int_equal(rc, DS_CONFIG_OK);
    assert_string_equal(v.archive, "/data/a");
    assert_int_equal(v.port, 9100);
    assert_non_null(strstr(log, "WARN"));
    assert_non_null(strstr(log, "option --root is deprecated and will be removed: use --archive"));
    assert_non_null(strstr(log, "option --port is deprecated and will be removed: use --metrics-port"));
    free(log);

    /* the new name gives no warning; the last flag wins whatever its name */
    char *argv2[] = {"prog", "--root", "/old", "--archive", "/new", NULL};
    log = aliasLoad(&v, "TCAL1_", ARGC(argv2), argv2, &rc, err, sizeof err);
    assert_int_equal(rc, DS_CONFIG_OK);
    assert_string_equal(v.archive, "/new");
    assert_string_equal(log, "");
    free(log);
    char *argv3[] = {"prog", "--archive", "/new", "--root", "/old", NULL};
    log = aliasLoad(&v, "TCAL1_", ARGC(argv3), argv3, &rc, err, sizeof err);
    assert_string_equal(v.archive, "/old");
    assert_non_null(strstr(log, "--root is deprecated"));
    free(log);
    aliasFree(&v);
}

static void test_alias_env(void **state) {
    aliasVals v = {0};
    char err[256];
    dsConfigResult rc;
    char *argv[] = {"prog", NULL};
    setenv("TCAL2_ROOT", "/env/old", 1);
    char *log = aliasLoad(&v, "TCAL2_", ARGC(argv), argv, &rc, err, sizeof err);
    assert_int_equal(rc, DS_CONFIG_OK);
    assert_string_equal(v.archive, "/env/old");
    assert_non_null(strstr(log, "environment variable TCAL2_ROOT is deprecated and will be removed: use TCAL2_ARCHIVE"));
    free(log);

    /* the new variable wins over the old one, and a flag over both */
    setenv("TCAL2_ARCHIVE", "/env/new", 1);
    log = aliasLoad(&v, "TCAL2_", ARGC(argv), argv, &rc, err, sizeof err);
    assert_string_equal(v.archive, "/env/new");
    assert_non_null(strstr(log, "environment variable TCAL2_ROOT is deprecated and ignored: TCAL2_ARCHIVE is set"));
    assert_null(strstr(log, "use TCAL2_ARCHIVE"));
    free(log);
    char *argv2[] = {"prog", "--archive=/flag", NULL};
    log = aliasLoad(&v, "TCAL2_", ARGC(argv2), argv2, &rc, err, sizeof err);
    assert_string_equal(v.archive, "/flag");
    free(log);
    unsetenv("TCAL2_ROOT");
    unsetenv("TCAL2_ARCHIVE");
    aliasFree(&v);
}

static void test_alias_errors_name_the_old_name(void **state) {
    aliasVals v = {0};
    char err[256];
    dsConfigResult rc;
    char *argv[] = {"prog", "--port", "x", NULL};
    char *log = aliasLoad(&v, "TCAL3_", ARGC(argv), argv, &rc, err, sizeof err);
    assert_int_equal(rc, DS_CONFIG_ERROR);
    assert_string_equal(err, "invalid value \"x\" for --metrics-port (from command line, as --port): not an integer");
    assert_string_equal(log, ""); /* no warning for a load that failed */
    free(log);
    assert_null(v.archive);

    setenv("TCAL3_PORT", "70000", 1);
    char *argv2[] = {"prog", NULL};
    log = aliasLoad(&v, "TCAL3_", ARGC(argv2), argv2, &rc, err, sizeof err);
    assert_int_equal(rc, DS_CONFIG_ERROR);
    assert_non_null(strstr(err, "for --metrics-port (from TCAL3_PORT)"));
    free(log);
    unsetenv("TCAL3_PORT");

    char *argv3[] = {"prog", "--root", NULL};
    log = aliasLoad(&v, "TCAL3_", ARGC(argv3), argv3, &rc, err, sizeof err);
    assert_int_equal(rc, DS_CONFIG_ERROR);
    assert_string_equal(err, "missing value for --root");
    free(log);

    /* an alias of nothing is a programming error, reported at once */
    dsConfigOption bad[] = {DS_CONFIG_ALIAS("old", "nowhere")};
    assert_int_equal(dsConfigLoad(bad, 1, NULL, 1, argv2, NULL, NULL, err, sizeof err), DS_CONFIG_ERROR);
    assert_non_null(strstr(err, "--old is an alias of --nowhere"));
}

static void test_alias_usage(void **state) {
    aliasVals v = {0};
    dsConfigOption opts[NALIAS];
    aliasOpts(opts, &v);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    dsConfigUsage(f, "prog", NULL, opts, NALIAS, "P_");
    fclose(f);
    assert_non_null(strstr(text, "  --root STR          P_ROOT                       deprecated: use --archive (this name goes in the "
                                "next release)\n"));
    assert_non_null(strstr(text, "  --port INT          P_PORT                       deprecated: use --metrics-port"));
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_null_default_and_no_env),
        cmocka_unit_test(test_env_override),
        cmocka_unit_test(test_flag_beats_env),
        cmocka_unit_test(test_flag_syntaxes),
        cmocka_unit_test(test_bad_int_names_source),
        cmocka_unit_test(test_int_overflow_and_range),
        cmocka_unit_test(test_unbounded_negative_int),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_bools),
        cmocka_unit_test(test_unknown_flag),
        cmocka_unit_test(test_missing_value),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_positional),
        cmocka_unit_test(test_reload_and_error_keep_strings),
        cmocka_unit_test(test_bad_default_and_tiny_errbuf),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_file_read_cap),
        cmocka_unit_test(test_string_not_empty),
        cmocka_unit_test(test_alias_flag_warns),
        cmocka_unit_test(test_alias_env),
        cmocka_unit_test(test_alias_errors_name_the_old_name),
        cmocka_unit_test(test_alias_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
