/* Messages, configuration loading, clients and stdout checks shared by the ace binaries. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ace/cache.h"
#include "ace/log.h"
#include "ace/pool.h"
#include "ace/redis.h"
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
cli_help_exit(const char *usage_text)
{
	fputs(usage_text, stdout);
	exit(cli_close_stdout(EXIT_OK));
}

void
cli_version_exit(void)
{
	printf("%s %s\n", cli_program, ACE_VERSION);
	exit(cli_close_stdout(EXIT_OK));
}

void
cli_bad_option_exit(void)
{
	fprintf(stderr, "Try '%s --help' for more information.\n", cli_program);
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
cli_flags_add(struct cli_flags *flags, const char *key, const char *flag, const char *value)
{
	if (flags->count == (int)(sizeof(flags->item) / sizeof(flags->item[0])))
		cli_usage_error("too many options");
	flags->item[flags->count].key = key;
	flags->item[flags->count].flag = flag;
	flags->item[flags->count].value = value;
	flags->count++;
}

void
cli_flags_apply(struct ace_config *cfg, const struct cli_flags *flags)
{
	for (int i = 0; i < flags->count; i++)
		cli_set(cfg, flags->item[i].key, flags->item[i].value, flags->item[i].flag);
}

void
cli_setup_log(const struct ace_config *cfg)
{
	ace_log_setup(cli_program, cfg->log_level, cfg->log_format, stderr);
}

void
cli_open_clients(struct cli_clients *cl, int pool_size, int max_overflow)
{
	struct ace_pool_options po = {
		.conninfo = cl->cfg.database_url,
		.application_name = cli_program,
		.size = pool_size,
		.max_overflow = max_overflow,
		.recycle = cl->cfg.pool_recycle,
		.timeout = cl->cfg.pool_timeout,
		.connect_timeout = cl->cfg.connect_timeout,
	};
	struct ace_redis_options ro = {
		.url = cl->cfg.redis_url,
		.max_connections = cl->cfg.redis_max_connections,
		.connect_timeout = cl->cfg.redis_connect_timeout,
		.command_timeout = cl->cfg.redis_command_timeout,
		.breaker_failures = cl->cfg.redis_breaker_failures,
		.breaker_cooldown = cl->cfg.redis_breaker_cooldown,
	};
	struct ace_error err;

	cl->pool = ace_pool_new(&po, &err);
	if (cl->pool != NULL)
		cl->redis = ace_redis_new(&ro, &err);
	if (cl->redis != NULL) {
		struct ace_cache_options co = {
			.redis = cl->redis,
			.pool = cl->pool,
			.playbook_ttl = cl->cfg.playbook_ttl,
			.baseline_ttl = cl->cfg.baseline_ttl,
			.negative_ttl = cl->cfg.negative_ttl,
			.jitter_percent = cl->cfg.ttl_jitter_percent,
			.lock_timeout = cl->cfg.cache_lock_timeout,
		};

		cl->cache = ace_cache_new(&co, &err);
	}
	if (cl->cache == NULL) {
		cli_error("%s", err.message);
		exit(err.code == ACE_ERR_INVALID ? EXIT_CONFIG : EXIT_SOFTWARE);
	}
}

void
cli_close_clients(struct cli_clients *cl)
{
	ace_cache_free(cl->cache);
	ace_redis_free(cl->redis);
	ace_pool_free(cl->pool);
	ace_config_release(&cl->cfg);
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
