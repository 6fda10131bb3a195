/* config.h - one configuration table per program.
 *
 * A program declares a static array of dsConfigOption (name, type, default,
 * doc, target). dsConfigLoad() fills every target from, in increasing
 * priority: the default, the environment variable, the command-line flag.
 * dsConfigUsage() prints the table; that is what `--help` shows.
 *
 * Names are kebab-case ("listen-port"); the flag is "--listen-port VALUE" or
 * "--listen-port=VALUE"; the environment variable is the prefix given to
 * dsConfigLoad() plus the name upper-cased with '-' -> '_'
 * ("DECISIONS_" + "listen-port" -> "DECISIONS_LISTEN_PORT").
 */
#ifndef DS_CONFIG_H
#define DS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
    DS_CFG_STRING,   /* target: char **, NULL before the first load; the loaded string
                      * (default included) is malloc'd and owned by the target until
                      * dsConfigFree(); a later load frees the previous one */
    DS_CFG_INT,      /* target: long *; bounded by [min, max] */
    DS_CFG_BOOL,     /* target: bool *; true/false/1/0/yes/no/on/off */
    DS_CFG_SIZE,     /* target: size_t *; bytes, accepts suffixes k, KiB, m, MiB, g, GiB; bounded by [min, max] */
    DS_CFG_DURATION, /* target: long * in milliseconds; accepts ms, s, m, h suffixes (bare number = ms); bounded */
    DS_CFG_ALIAS,    /* a deprecated name: def is the name of the option it stands for
                      * (DS_CONFIG_ALIAS); no target of its own */
} dsConfigType;

typedef struct dsConfigOption {
    const char *name;   /* kebab-case, also the flag name */
    dsConfigType type;
    const char *def;    /* default as text, parsed like any other value; NULL = empty string / 0 */
    const char *doc;    /* one line for --help */
    void *target;
    long long min, max; /* for INT, SIZE, DURATION; min == max == 0 means unbounded;
                         * to bound one side only use LLONG_MIN / LLONG_MAX.
                         * For STRING, min 1 refuses an empty value (a path,
                         * topic or address that an unset variable would
                         * silently turn into "", such as an archive root
                         * of "" writing under /decisions); max is unused */
} dsConfigOption;

/* A row keeping an old option name working for one release after a rename:
 * "--OLD VALUE" and the environment variable PREFIX_OLD set the option named
 * new_name, and dsConfigLoad() logs a warning naming the new flag or
 * variable. The new name wins: a flag under either name overrides the
 * environment (the last flag wins), and PREFIX_NEW overrides PREFIX_OLD.
 * --help lists the old name as deprecated. new_name must be a non-alias row
 * of the same table. */
#define DS_CONFIG_ALIAS(old_name, new_name) \
    { old_name, DS_CFG_ALIAS, new_name, NULL, NULL, 0, 0 }

/* Result of dsConfigLoad(). */
typedef enum {
    DS_CONFIG_OK = 0,
    DS_CONFIG_HELP = 1,  /* --help or -h was given: caller prints usage and exits 0 */
    DS_CONFIG_ERROR = -1 /* errbuf names the option, its source (flag or env var) and what is wrong */
} dsConfigResult;

/* Loads every option of opts[0..n). argv[0] is skipped. Unknown flags, a
 * missing value, unparsable or out-of-range values are errors. On any result
 * but DS_CONFIG_OK no target is modified. env_prefix NULL: the environment
 * is not consulted. A value given as a separate argument may not start with
 * "--" (use --name=VALUE); a bare boolean flag means true, and takes the next
 * argument only if it is a boolean word. A repeated flag: the last one wins.
 * "--" ends the flags; "-" is a positional argument. --help wins over argv
 * errors.
 * A value given under a deprecated alias (DS_CONFIG_ALIAS), or an alias's
 * variable ignored because the new one is set, is logged as a warning
 * (ds/log.h) naming the new name, on DS_CONFIG_OK only.
 * Positional (non-flag) arguments are not allowed unless positional != NULL:
 * then they are stored in order into positional[] (pointers into argv, not
 * copied), up to *npositional on entry; *npositional is set to the count. */
dsConfigResult dsConfigLoad(const dsConfigOption *opts, size_t n, const char *env_prefix,
                            int argc, char **argv, char **positional, size_t *npositional,
                            char *errbuf, size_t errlen);

/* Prints "usage: PROG [options]" then, per option: flag, env var, type,
 * default and doc. */
void dsConfigUsage(FILE *out, const char *prog, const char *summary,
                   const dsConfigOption *opts, size_t n, const char *env_prefix);

/* Frees the strings dsConfigLoad() stored into DS_CFG_STRING targets and sets
 * them to NULL. */
void dsConfigFree(const dsConfigOption *opts, size_t n);

#endif
