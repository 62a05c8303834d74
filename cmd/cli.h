/* What the ace binaries share: exit statuses, messages, configuration from flags. */
#ifndef ACE_CLI_H
#define ACE_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "ace/config.h"

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

extern const char *cli_program;

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

/* Sets up libace logging to stderr from cfg. */
void cli_setup_log(const struct ace_config *cfg);

/*
 * Flushes and closes stdout and returns EXIT_IOERR when that fails (a full
 * disk or a closed pipe), so that lost output is never silent.
 */
int cli_close_stdout(int status);

#endif
