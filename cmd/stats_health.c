/* The health command of ace-stats: run the deployment checks and print one line or one JSON object. */
#include <stdio.h>
#include <string.h>

#include "ace/buf.h"
#include "ace/health.h"
#include "ace/migrate.h"
#include "ace-stats.h"
#include "cli.h"

int
run_health(struct cli_clients *cl, const struct options *o)
{
	struct ace_health_check checks[ACE_HEALTH_CHECKS];
	struct ace_migration_set set;
	struct ace_error err;
	int rc, failed;
	struct ace_health_options ho = {
		.conninfo = cl->cfg.database_url,
		.connect_timeout = cl->cfg.connect_timeout,
		.redis = cl->redis,
		.cache = cl->cache,
		.migrations = &set,
		.pool_size = cl->cfg.pool_size,
		.pool_max_overflow = cl->cfg.pool_max_overflow,
		.workers = cl->cfg.workers,
		.min_hit_rate = cl->cfg.health_min_hit_rate,
		.max_lag = cl->cfg.health_max_lag,
	};

	rc = cl->cfg.migrations_dir ? ace_migrations_load_dir(&set, cl->cfg.migrations_dir, &err) :
	    ace_migrations_load_embedded(&set, &err);
	if (rc != ACE_OK) {
		cli_error("%s", err.message);
		return EXIT_CONFIG;
	}
	failed = ace_health_run(&ho, checks);
	ace_migrations_release(&set);

	if (o->json) {
		struct ace_buf out = ACE_BUF_INIT;

		rc = ace_buf_printf(&out, "{\"ok\":%s,\"checks\":[", failed ? "false" : "true");
		for (int i = 0; i < ACE_HEALTH_CHECKS; i++) {
			const struct ace_health_check *c = &checks[i];

			rc |= ace_buf_printf(&out, "%s{\"name\":\"%s\",\"status\":\"%s\",\"value\":", i ? "," : "",
			    c->name, ace_health_status_name(c->status));
			rc |= ace_buf_put_json_string(&out, c->value, strlen(c->value), NULL);
			rc |= ace_buf_puts(&out, ",\"threshold\":");
			rc |= ace_buf_put_json_string(&out, c->threshold, strlen(c->threshold), NULL);
			rc |= ace_buf_puts(&out, ",\"detail\":");
			rc |= ace_buf_put_json_string(&out, c->detail, strlen(c->detail), NULL);
			rc |= ace_buf_putc(&out, '}');
		}
		rc |= ace_buf_puts(&out, "]}\n");
		if (rc == 0)
			fwrite(out.data, 1, out.len, stdout);
		ace_buf_release(&out);
	} else {
		for (int i = 0; i < ACE_HEALTH_CHECKS; i++)
			printf("%-4s %s %s (%s)\n", ace_health_status_name(checks[i].status), checks[i].name,
			    checks[i].value, checks[i].threshold);
	}
	for (int i = 0; i < ACE_HEALTH_CHECKS; i++)
		if (checks[i].status == ACE_HEALTH_FAIL)
			cli_error("health: %s: %s", checks[i].name, checks[i].detail);
	return failed ? EXIT_FOUND : EXIT_OK;
}
