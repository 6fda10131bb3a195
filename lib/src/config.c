/* config.c - owns turning a program's option table into values: picking the
 * winning source (default < environment < flag) for each option, parsing the
 * text strictly by type, and printing the --help table.
 *
 * dsConfigLoad() works in three phases so that a failed load leaves every
 * target untouched: pick the text per option, parse all of them into
 * temporaries, and only then commit (freeing strings a previous load stored).
 */
#include "ds/config.h"
#include "ds/log.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Environment variable names are built on the stack; option names are
 * program constants, so a name this long is a programming error. */
#define CFG_ENV_MAX 256

typedef enum { CFG_FROM_DEFAULT, CFG_FROM_ENV, CFG_FROM_FLAG } cfgSource;

typedef struct {
    const char *text; /* borrowed: the option's def, getenv() or argv */
    cfgSource src;
    const dsConfigOption *via; /* the deprecated alias row text came under, or NULL */
    const dsConfigOption *shadowed; /* an alias whose variable is set but lost to the new name */
} cfgPick;

typedef union {
    char *s; /* owned until committed or discarded */
    long l;
    bool b;
    size_t z;
} cfgValue;

/* State of one pass over argv. Only the first error is kept: it is the one
 * the user will fix first, and later ones may be its consequences. */
typedef struct {
    const dsConfigOption *opts;
    size_t n;
    cfgPick *picks;
    char **positional; /* NULL: positional arguments are an error */
    size_t cap, count;
    bool help, failed;
    char *errbuf;
    size_t errlen;
} cfgScan;

static void cfgErr(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void cfgErr(char *errbuf, size_t errlen, const char *fmt, ...) {
    if (!errbuf || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- names */

/* Returns false if the result would not fit; buf is then unusable. */
static bool cfgEnvName(char *buf, size_t len, const char *prefix, const char *name) {
    size_t pl = strlen(prefix), nl = strlen(name);
    if (pl + nl + 1 > len) return false;
    memcpy(buf, prefix, pl);
    for (size_t i = 0; i < nl; i++) {
        char c = name[i];
        buf[pl + i] = c == '-' ? '_' : (char)toupper((unsigned char)c);
    }
    buf[pl + nl] = '\0';
    return true;
}

static const char *cfgTypeName(dsConfigType t) {
    switch (t) {
    case DS_CFG_STRING: return "STR";
    case DS_CFG_INT: return "INT";
    case DS_CFG_BOOL: return "BOOL";
    case DS_CFG_SIZE: return "SIZE";
    case DS_CFG_DURATION: return "DURATION";
    case DS_CFG_ALIAS: return "ALIAS";
    }
    return "?";
}

/* A NULL default means "empty / zero", spelled so the parser accepts it. */
static const char *cfgDefaultText(const dsConfigOption *o) {
    if (o->def) return o->def;
    if (o->type == DS_CFG_STRING) return "";
    return o->type == DS_CFG_BOOL ? "false" : "0";
}

static bool cfgBounded(const dsConfigOption *o) {
    return !(o->min == 0 && o->max == 0);
}

static const char *cfgUnit(dsConfigType t) {
    if (t == DS_CFG_SIZE) return " bytes";
    if (t == DS_CFG_DURATION) return " ms";
    return "";
}

/* The row an alias stands for: a non-alias row named by its def; NULL if the
 * table has none (a programming error dsConfigLoad() reports). */
static const dsConfigOption *cfgAliasTarget(const dsConfigOption *opts, size_t n, const dsConfigOption *alias) {
    for (size_t i = 0; alias->def && i < n; i++)
        if (opts[i].type != DS_CFG_ALIAS && strcmp(opts[i].name, alias->def) == 0) return &opts[i];
    return NULL;
}

static bool cfgCheckAliases(const dsConfigOption *opts, size_t n, char *errbuf, size_t errlen) {
    for (size_t i = 0; i < n; i++) {
        if (opts[i].type != DS_CFG_ALIAS || cfgAliasTarget(opts, n, &opts[i])) continue;
        cfgErr(errbuf, errlen, "option table: --%s is an alias of --%s, which is not an option of the table",
               opts[i].name, opts[i].def ? opts[i].def : "(null)");
        return false;
    }
    return true;
}

/* -------------------------------------------------------------- parsing */

static bool cfgOutOfRange(const dsConfigOption *o, long long v, char *why, size_t whylen) {
    if (!cfgBounded(o) || (v >= o->min && v <= o->max)) return false;
    cfgErr(why, whylen, "out of range [%lld, %lld]%s", o->min, o->max, cfgUnit(o->type));
    return true;
}

static bool cfgParseInt(const dsConfigOption *o, const char *s, long *out, char *why, size_t whylen) {
    /* strtoll alone would skip leading blanks and accept "" as 0. */
    const char *d = (s[0] == '-' || s[0] == '+') ? s + 1 : s;
    if (!isdigit((unsigned char)*d)) {
        cfgErr(why, whylen, "not an integer");
        return false;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0') {
        cfgErr(why, whylen, "not an integer");
        return false;
    }
    if (errno == ERANGE || v < LONG_MIN || v > LONG_MAX) {
        cfgErr(why, whylen, "integer too large");
        return false;
    }
    if (cfgOutOfRange(o, v, why, whylen)) return false;
    *out = (long)v;
    return true;
}

/* Parses the leading run of decimal digits (no sign: sizes and durations are
 * never negative, and strtoull would silently wrap "-1"). */
static bool cfgParseDigits(const char *s, unsigned long long *out, const char **rest,
                           const char *what, char *why, size_t whylen) {
    if (!isdigit((unsigned char)*s)) {
        cfgErr(why, whylen, "not a %s", what);
        return false;
    }
    char *end;
    errno = 0;
    *out = strtoull(s, &end, 10);
    if (errno == ERANGE) {
        cfgErr(why, whylen, "%s too large", what);
        return false;
    }
    *rest = end;
    return true;
}

/* Binary multiples only; "KB"/"MB" are refused because half the world reads
 * them as powers of 1000. */
static const struct {
    const char *suffix;
    unsigned shift;
} cfgSizeUnits[] = {
    {"", 0},    {"b", 0},  {"k", 10},   {"kib", 10}, {"m", 20},
    {"mib", 20}, {"g", 30}, {"gib", 30}, {"t", 40},   {"tib", 40},
};

static bool cfgParseSize(const dsConfigOption *o, const char *s, size_t *out, char *why, size_t whylen) {
    unsigned long long v;
    const char *suffix;
    if (!cfgParseDigits(s, &v, &suffix, "size", why, whylen)) return false;
    size_t i, nunits = sizeof cfgSizeUnits / sizeof cfgSizeUnits[0];
    for (i = 0; i < nunits; i++)
        if (strcasecmp(suffix, cfgSizeUnits[i].suffix) == 0) break;
    if (i == nunits) {
        cfgErr(why, whylen, "unknown size suffix \"%s\" (use k, KiB, m, MiB, g, GiB, t, TiB)", suffix);
        return false;
    }
    unsigned shift = cfgSizeUnits[i].shift;
    if (v > (ULLONG_MAX >> shift) || (v << shift) > SIZE_MAX) {
        cfgErr(why, whylen, "size too large");
        return false;
    }
    v <<= shift;
    /* Bounds are long long: above LLONG_MAX no bounded option can admit it. */
    if (v > LLONG_MAX && cfgBounded(o)) {
        cfgErr(why, whylen, "out of range [%lld, %lld] bytes", o->min, o->max);
        return false;
    }
    if (v <= LLONG_MAX && cfgOutOfRange(o, (long long)v, why, whylen)) return false;
    *out = (size_t)v;
    return true;
}

static const struct {
    const char *suffix;
    long long ms;
} cfgDurationUnits[] = {
    {"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000},
};

static bool cfgParseDuration(const dsConfigOption *o, const char *s, long *out, char *why,
                             size_t whylen) {
    unsigned long long v;
    const char *suffix;
    if (!cfgParseDigits(s, &v, &suffix, "duration", why, whylen)) return false;
    size_t i, nunits = sizeof cfgDurationUnits / sizeof cfgDurationUnits[0];
    for (i = 0; i < nunits; i++)
        if (strcasecmp(suffix, cfgDurationUnits[i].suffix) == 0) break;
    if (i == nunits) {
        cfgErr(why, whylen, "unknown duration unit \"%s\" (use ms, s, m, h)", suffix);
        return false;
    }
    long long ms;
    if (v > LLONG_MAX || __builtin_mul_overflow((long long)v, cfgDurationUnits[i].ms, &ms) ||
        ms > LONG_MAX) {
        cfgErr(why, whylen, "duration too large");
        return false;
    }
    if (cfgOutOfRange(o, ms, why, whylen)) return false;
    *out = (long)ms;
    return true;
}

/* out may be NULL to only ask whether s is a boolean word. */
static bool cfgBoolWord(const char *s, bool *out) {
    static const char *const words[][2] = {{"true", "false"}, {"1", "0"}, {"yes", "no"}, {"on", "off"}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        for (int neg = 0; neg < 2; neg++) {
            if (strcasecmp(s, words[i][neg]) != 0) continue;
            if (out) *out = !neg;
            return true;
        }
    }
    return false;
}

/* On success *out holds the value (a malloc'd string for DS_CFG_STRING). */
static bool cfgParseValue(const dsConfigOption *o, const char *s, cfgValue *out, char *why,
                          size_t whylen) {
    switch (o->type) {
    case DS_CFG_STRING:
        if (o->min > 0 && *s == '\0') {
            cfgErr(why, whylen, "must not be empty");
            return false;
        }
        out->s = strdup(s);
        if (!out->s) cfgErr(why, whylen, "out of memory");
        return out->s != NULL;
    case DS_CFG_INT: return cfgParseInt(o, s, &out->l, why, whylen);
    case DS_CFG_SIZE: return cfgParseSize(o, s, &out->z, why, whylen);
    case DS_CFG_DURATION: return cfgParseDuration(o, s, &out->l, why, whylen);
    case DS_CFG_BOOL:
        if (cfgBoolWord(s, &out->b)) return true;
        cfgErr(why, whylen, "not a boolean (use true/false, 1/0, yes/no, on/off)");
        return false;
    case DS_CFG_ALIAS: break; /* never parsed: its value goes to the row it names */
    }
    cfgErr(why, whylen, "unknown option type %d", (int)o->type);
    return false;
}

/* ------------------------------------------------------------- sources */

/* A deprecated alias's environment variable, for the row it names: used only
 * when the new variable is not set. */
static bool cfgPickAliasEnv(const dsConfigOption *opts, size_t n, const char *env_prefix, cfgPick *picks,
                            char *errbuf, size_t errlen) {
    for (size_t i = 0; env_prefix && i < n; i++) {
        if (opts[i].type != DS_CFG_ALIAS) continue;
        char env[CFG_ENV_MAX];
        if (!cfgEnvName(env, sizeof env, env_prefix, opts[i].name)) {
            cfgErr(errbuf, errlen, "option --%s: environment variable name too long", opts[i].name);
            return false;
        }
        const char *v = getenv(env);
        cfgPick *p = &picks[cfgAliasTarget(opts, n, &opts[i]) - opts];
        if (v && p->src != CFG_FROM_DEFAULT) p->shadowed = &opts[i];
        if (!v || p->src != CFG_FROM_DEFAULT) continue;
        p->text = v;
        p->src = CFG_FROM_ENV;
        p->via = &opts[i];
    }
    return true;
}

static bool cfgPickSources(const dsConfigOption *opts, size_t n, const char *env_prefix,
                           cfgPick *picks, char *errbuf, size_t errlen) {
    for (size_t i = 0; i < n; i++) {
        picks[i].text = cfgDefaultText(&opts[i]);
        picks[i].src = CFG_FROM_DEFAULT;
        picks[i].via = picks[i].shadowed = NULL;
        if (!env_prefix || opts[i].type == DS_CFG_ALIAS) continue;
        char env[CFG_ENV_MAX];
        if (!cfgEnvName(env, sizeof env, env_prefix, opts[i].name)) {
            cfgErr(errbuf, errlen, "option --%s: environment variable name too long", opts[i].name);
            return false;
        }
        const char *v = getenv(env);
        if (v) {
            picks[i].text = v;
            picks[i].src = CFG_FROM_ENV;
        }
    }
    return cfgPickAliasEnv(opts, n, env_prefix, picks, errbuf, errlen);
}

static void cfgScanFail(cfgScan *sc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void cfgScanFail(cfgScan *sc, const char *fmt, ...) {
    if (sc->failed) return;
    sc->failed = true;
    if (!sc->errbuf || sc->errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sc->errbuf, sc->errlen, fmt, ap);
    va_end(ap);
}

static const dsConfigOption *cfgFind(const cfgScan *sc, const char *name, size_t len) {
    for (size_t i = 0; i < sc->n; i++)
        if (strncmp(sc->opts[i].name, name, len) == 0 && sc->opts[i].name[len] == '\0')
            return &sc->opts[i];
    return NULL;
}

static void cfgScanPositional(cfgScan *sc, char *arg) {
    if (!sc->positional)
        cfgScanFail(sc, "unexpected argument \"%s\"", arg);
    else if (sc->count >= sc->cap)
        cfgScanFail(sc, "too many arguments (at most %zu): \"%s\"", sc->cap, arg);
    else
        sc->positional[sc->count++] = arg;
}

/* Handles argv[i], a "--name[=value]" flag; returns the index of the last
 * argument it consumed. A separate value never starts with "--" so that a
 * forgotten value reads as "missing value", not as a flag swallowed whole;
 * such values can still be given as --name=--value. Booleans stand alone
 * ("--verbose") and only take the next argument if it is a boolean word. */
static int cfgScanFlag(cfgScan *sc, int argc, char **argv, int i) {
    const char *name = argv[i] + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const dsConfigOption *o = cfgFind(sc, name, len), *via = NULL;
    if (!o) {
        cfgScanFail(sc, "unknown option --%.*s (see --help)", (int)len, name);
        return i;
    }
    if (o->type == DS_CFG_ALIAS) {
        via = o;
        o = cfgAliasTarget(sc->opts, sc->n, o);
    }
    const char *value;
    if (eq) {
        value = eq + 1;
    } else if (o->type == DS_CFG_BOOL) {
        value = (i + 1 < argc && cfgBoolWord(argv[i + 1], NULL)) ? argv[++i] : "true";
    } else if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0) {
        cfgScanFail(sc, "missing value for --%s", via ? via->name : o->name);
        return i;
    } else {
        value = argv[++i];
    }
    sc->picks[o - sc->opts].text = value; /* a repeated flag: the last one wins */
    sc->picks[o - sc->opts].src = CFG_FROM_FLAG;
    sc->picks[o - sc->opts].via = via;
    return i;
}

/* --help wins over any argv error: someone asking for help after a typo
 * should get the help. */
static void cfgScanArgs(cfgScan *sc, int argc, char **argv) {
    bool flags_done = false;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (flags_done || a[0] != '-' || a[1] == '\0') { /* "-" is stdin, a value */
            cfgScanPositional(sc, a);
        } else if (strcmp(a, "--") == 0) {
            flags_done = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            sc->help = true;
            return;
        } else if (a[1] != '-') {
            cfgScanFail(sc, "unknown option %s (see --help)", a);
        } else {
            i = cfgScanFlag(sc, argc, argv, i);
        }
    }
}

static void cfgFreeValues(const dsConfigOption *opts, size_t n, cfgValue *vals) {
    for (size_t i = 0; i < n; i++)
        if (opts[i].type == DS_CFG_STRING) free(vals[i].s);
}

static bool cfgParseAll(const dsConfigOption *opts, size_t n, const char *env_prefix,
                        const cfgPick *picks, cfgValue *vals, char *errbuf, size_t errlen) {
    for (size_t i = 0; i < n; i++) {
        char why[160];
        if (opts[i].type == DS_CFG_ALIAS || cfgParseValue(&opts[i], picks[i].text, &vals[i], why, sizeof why))
            continue;
        char env[CFG_ENV_MAX], flag[CFG_ENV_MAX];
        const char *from = "default", *named = picks[i].via ? picks[i].via->name : opts[i].name;
        if (picks[i].src == CFG_FROM_FLAG) {
            snprintf(flag, sizeof flag, "command line, as --%s", named);
            from = picks[i].via ? flag : "command line";
        }
        if (picks[i].src == CFG_FROM_ENV)
            from = cfgEnvName(env, sizeof env, env_prefix, named) ? env : "environment";
        cfgErr(errbuf, errlen, "invalid value \"%s\" for --%s (from %s): %s", picks[i].text,
               opts[i].name, from, why);
        cfgFreeValues(opts, i, vals);
        return false;
    }
    return true;
}

static void cfgCommit(const dsConfigOption *opts, size_t n, const cfgValue *vals) {
    for (size_t i = 0; i < n; i++) {
        void *t = opts[i].target;
        if (!t) { /* parse-only option: validated, nowhere to store */
            if (opts[i].type == DS_CFG_STRING) free(vals[i].s);
            continue;
        }
        switch (opts[i].type) {
        case DS_CFG_STRING:
            free(*(char **)t); /* what a previous load stored, or NULL */
            *(char **)t = vals[i].s;
            break;
        case DS_CFG_INT:
        case DS_CFG_DURATION: *(long *)t = vals[i].l; break;
        case DS_CFG_BOOL: *(bool *)t = vals[i].b; break;
        case DS_CFG_SIZE: *(size_t *)t = vals[i].z; break;
        case DS_CFG_ALIAS: break;
        }
    }
}

/* Once the load succeeded: every value that came under an old name, and an
 * old variable left set beside the new one (an operator would otherwise
 * wonder why changing it does nothing). */
static void cfgWarnDeprecated(const dsConfigOption *opts, size_t n, const char *env_prefix, const cfgPick *picks) {
    for (size_t i = 0; i < n; i++) {
        const dsConfigOption *via = picks[i].via, *shadowed = picks[i].shadowed;
        char old_env[CFG_ENV_MAX], new_env[CFG_ENV_MAX];
        if (shadowed && cfgEnvName(old_env, sizeof old_env, env_prefix, shadowed->name) &&
            cfgEnvName(new_env, sizeof new_env, env_prefix, opts[i].name))
            dsLogWarn("environment variable %s is deprecated and ignored: %s is set", old_env, new_env);
        if (!via) continue;
        if (picks[i].src == CFG_FROM_FLAG)
            dsLogWarn("option --%s is deprecated and will be removed: use --%s", via->name, opts[i].name);
        else if (cfgEnvName(old_env, sizeof old_env, env_prefix, via->name) &&
                 cfgEnvName(new_env, sizeof new_env, env_prefix, opts[i].name))
            dsLogWarn("environment variable %s is deprecated and will be removed: use %s", old_env, new_env);
    }
}

dsConfigResult dsConfigLoad(const dsConfigOption *opts, size_t n, const char *env_prefix,
                            int argc, char **argv, char **positional, size_t *npositional,
                            char *errbuf, size_t errlen) {
    if (errbuf && errlen) errbuf[0] = '\0';
    cfgScan sc = {.opts = opts, .n = n, .errbuf = errbuf, .errlen = errlen};
    if (positional && npositional) {
        sc.positional = positional;
        sc.cap = *npositional;
    }
    if (npositional) *npositional = 0;

    cfgPick *picks = calloc(n ? n : 1, sizeof *picks);
    cfgValue *vals = calloc(n ? n : 1, sizeof *vals);
    dsConfigResult rc = DS_CONFIG_ERROR;
    if (!picks || !vals) {
        cfgErr(errbuf, errlen, "out of memory");
        goto done;
    }
    if (!cfgCheckAliases(opts, n, errbuf, errlen) || !cfgPickSources(opts, n, env_prefix, picks, errbuf, errlen))
        goto done;
    sc.picks = picks;
    cfgScanArgs(&sc, argc, argv);
    if (sc.help) {
        if (errbuf && errlen) errbuf[0] = '\0';
        rc = DS_CONFIG_HELP;
    } else if (!sc.failed && cfgParseAll(opts, n, env_prefix, picks, vals, errbuf, errlen)) {
        cfgCommit(opts, n, vals);
        cfgWarnDeprecated(opts, n, env_prefix, picks);
        if (npositional) *npositional = sc.count;
        rc = DS_CONFIG_OK;
    }
done:
    free(picks);
    free(vals);
    return rc;
}

/* ---------------------------------------------------------------- usage */

typedef struct {
    char flag[128], env[CFG_ENV_MAX], def[128], doc[192];
} cfgUsageRow;

/* An alias's row shows the type of the option it stands for and no default. */
static void cfgUsageRowFill(cfgUsageRow *r, const dsConfigOption *opts, size_t n, const dsConfigOption *o,
                            const char *env_prefix) {
    const dsConfigOption *t = o->type == DS_CFG_ALIAS ? cfgAliasTarget(opts, n, o) : o;
    snprintf(r->flag, sizeof r->flag, "--%s %s", o->name, cfgTypeName(t ? t->type : o->type));
    if (!env_prefix || !cfgEnvName(r->env, sizeof r->env, env_prefix, o->name))
        snprintf(r->env, sizeof r->env, "-");
    const char *d = cfgDefaultText(o);
    snprintf(r->def, sizeof r->def, "%s", o->type == DS_CFG_ALIAS ? "" : *d ? d : "\"\"");
    r->doc[0] = '\0';
    if (o->type == DS_CFG_ALIAS)
        snprintf(r->doc, sizeof r->doc, "deprecated: use --%s (this name goes in the next release)", o->def);
}

static void cfgUsageLine(FILE *out, const int w[3], const char *flag, const char *env,
                         const char *def, const char *doc, const dsConfigOption *o) {
    fprintf(out, "  %-*s  %-*s  %-*s  %s", w[0], flag, w[1], env, w[2], def, doc ? doc : "");
    if (o && o->type == DS_CFG_STRING && o->min > 0)
        fprintf(out, " (not empty)");
    else if (o && o->type != DS_CFG_STRING && cfgBounded(o))
        fprintf(out, " (range %lld..%lld%s)", o->min, o->max, cfgUnit(o->type));
    fputc('\n', out);
}

void dsConfigUsage(FILE *out, const char *prog, const char *summary,
                   const dsConfigOption *opts, size_t n, const char *env_prefix) {
    if (!out) return;
    fprintf(out, "usage: %s [options]\n", prog ? prog : "program");
    if (summary && *summary) fprintf(out, "%s\n", summary);
    fputc('\n', out);

    int w[3] = {(int)strlen("-h, --help"), (int)strlen("ENVIRONMENT"), (int)strlen("DEFAULT")};
    cfgUsageRow row;
    for (size_t i = 0; i < n; i++) {
        cfgUsageRowFill(&row, opts, n, &opts[i], env_prefix);
        int lens[3] = {(int)strlen(row.flag), (int)strlen(row.env), (int)strlen(row.def)};
        for (int c = 0; c < 3; c++)
            if (lens[c] > w[c]) w[c] = lens[c];
    }
    cfgUsageLine(out, w, "OPTION", "ENVIRONMENT", "DEFAULT", "DESCRIPTION", NULL);
    for (size_t i = 0; i < n; i++) {
        cfgUsageRowFill(&row, opts, n, &opts[i], env_prefix);
        bool alias = opts[i].type == DS_CFG_ALIAS;
        cfgUsageLine(out, w, row.flag, row.env, row.def, alias ? row.doc : opts[i].doc, alias ? NULL : &opts[i]);
    }
    cfgUsageLine(out, w, "-h, --help", "", "", "show this help and exit", NULL);
}

void dsConfigFree(const dsConfigOption *opts, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (opts[i].type != DS_CFG_STRING || !opts[i].target) continue;
        char **t = opts[i].target;
        free(*t);
        *t = NULL;
    }
}
