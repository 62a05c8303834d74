/* Exit statuses, messages, configuration flags and clients that the ace binaries share. */
#ifndef ACE_CLI_H
#define ACE_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "ace/config.h"

struct ace_cache;
struct ace_pool;
struct ace_redis;

/* Exit statuses follow sysexits(3), so scripts can tell failures apart. */
enum {
	EXIT_OK = 0,
	EXIT_USAGE = 64,	/* bad option or argument */
	EXIT_DATAERR = 65,	/* bad input data: records rejected, migration drift */
	EXIT_NOINPUT = 66,	/* an input file cannot be opened */
	EXIT_UNAVAILABLE = 69,	/* the database could not be reached in time */
	EXIT_SOFTWARE = 70,	/* the server refused a statement (missing table, permissions) */
	EXIT_CANTCREAT = 73,	/* an output file cannot be created */
	EXIT_IOERR = 74,	/* reading input or writing output failed */
	EXIT_TEMPFAIL = 75,	/* interrupted before everything was written */
	EXIT_CONFIG = 78,	/* invalid configuration */
};

#ifndef ACE_VERSION
#define ACE_VERSION "0.1.0"
#endif

extern const char *cli_program;

/* Prints usage_text on stdout and exits 0, or EXIT_IOERR when stdout fails. */
void cli_help_exit(const char *usage_text) __attribute__((noreturn));

/* Prints "program VERSION" on stdout and exits like cli_help_exit(). */
void cli_version_exit(void) __attribute__((noreturn));

/* Prints "Try 'program --help'." on stderr and exits with EXIT_USAGE, after getopt's own message. */
void cli_bad_option_exit(void) __attribute__((noreturn));

/* Prints "program: message" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints the error and "Try 'program --help'." and exits with EXIT_USAGE. */
void cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * Loads ace.yaml (config_path, or ACE_CONFIG) and the environment into cfg.
 * Prints the error and exits with EXIT_CONFIG when that fails.
 */
void cli_load_config(struct ace_config *cfg, const char *config_path);

/* Sets a key from a flag's argument; prints the error and exits with EXIT_USAGE when invalid. */
void cli_set(struct ace_config *cfg, const char *key, const char *value, const char *flag);

/*
 * Configuration flags collected during getopt, so that they are applied
 * after ace.yaml and the environment, which they override.
 */
struct cli_flags {
	struct {
		const char *key;	/* configuration key, such as "log.level" */
		const char *flag;	/* the option as given, for messages */
		const char *value;
	} item[16];
	int count;
};

/* Appends a flag, or prints "too many options" and exits with EXIT_USAGE when flags is full. */
void cli_flags_add(struct cli_flags *flags, const char *key, const char *flag, const char *value);

/* Sets every flag in cfg, in the order given, as cli_set does. */
void cli_flags_apply(struct ace_config *cfg, const struct cli_flags *flags);

/* Sets up libace logging to stderr from cfg. */
void cli_setup_log(const struct ace_config *cfg);

/* The PostgreSQL pool, Redis client and cache that ace-cache and ace-stats open. */
struct cli_clients {
	struct ace_config cfg;
	struct ace_pool *pool;
	struct ace_redis *redis;
	struct ace_cache *cache;
};

/*
 * Opens the pool (pool_size connections, max_overflow more), the Redis client
 * and the cache over both, from cl->cfg, named cli_program in PostgreSQL.
 * Prints the error and exits with EXIT_CONFIG or EXIT_SOFTWARE when that fails.
 */
void cli_open_clients(struct cli_clients *cl, int pool_size, int max_overflow);

/* Frees the clients and releases cl->cfg. */
void cli_close_clients(struct cli_clients *cl);

/*
 * Flushes and closes stdout and returns EXIT_IOERR when that fails (a full
 * disk or a closed pipe), so that lost output is never silent.
 */
int cli_close_stdout(int status);

#endif
