/* Messages, configuration loading and stdout checks shared by the ace binaries. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ace/log.h"
#include "cli.h"

const char *cli_program = "ace";

void
cli_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cli_program);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cli_program);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", cli_program);
	exit(EXIT_USAGE);
}

void
cli_load_config(struct ace_config *cfg, const char *config_path)
{
	struct ace_error err;

	if (ace_config_load(cfg, config_path, &err) != ACE_OK) {
		cli_error("%s", err.message);
		ace_config_release(cfg);
		exit(EXIT_CONFIG);
	}
}

void
cli_set(struct ace_config *cfg, const char *key, const char *value, const char *flag)
{
	struct ace_error err;

	if (ace_config_set(cfg, key, value, flag, &err) != ACE_OK) {
		ace_config_release(cfg);
		cli_usage_error("%s", err.message);
	}
}

void
cli_setup_log(const struct ace_config *cfg)
{
	ace_log_setup(cli_program, cfg->log_level, cfg->log_format, stderr);
}

int
cli_close_stdout(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0) {
		cli_error("cannot write to standard output: %s", strerror(errno));
		return status == EXIT_OK ? EXIT_IOERR : status;
	}
	return status;
}
