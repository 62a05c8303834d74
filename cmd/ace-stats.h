/* Declarations shared by the files of ace-stats, which are linked into that binary only. */
#ifndef ACE_STATS_CMD_H
#define ACE_STATS_CMD_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "ace/error.h"
#include "cli.h"

/* Statuses of ace-stats besides the sysexits ones in cli.h. */
enum {
	EXIT_FOUND = 1,		/* drift: some record drifted; health: some check failed */
};

struct options {
	const char *config;
	const char *output;
	const char *since;
	const char *until;
	const char *format;
	bool no_publish;
	bool only_drift;
	bool json;
	struct cli_flags flags;
	/* Options that belong to one command, for the check after parsing. */
	struct {
		const char *option;
		const char *command;
	} owned[16];
	int nowned;
};

/* ace-stats.c */
int exit_status_for(int code);
void report_pg_error(const struct ace_error *err);
PGconn *connect_db(const struct cli_clients *cl, int *status);

/* stats_baselines.c */
int run_baselines(struct cli_clients *cl, const struct options *o);
int run_drift(struct cli_clients *cl, const struct options *o, int argc, char **argv);

/* stats_prom.c */
int run_prom(struct cli_clients *cl, const struct options *o);

/* stats_health.c */
int run_health(struct cli_clients *cl, const struct options *o);

/* stats_report.c */
int run_report(struct cli_clients *cl, const struct options *o);

#endif
