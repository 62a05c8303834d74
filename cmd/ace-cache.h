/* Declarations shared by the files of ace-cache, which are linked into that binary only. */
#ifndef ACE_CACHE_CMD_H
#define ACE_CACHE_CMD_H

#include <signal.h>
#include <stdbool.h>

#include "ace/procstats.h"
#include "cli.h"

/* Statuses of ace-cache besides the sysexits ones in cli.h. */
enum {
	EXIT_NOT_FOUND = 1,	/* PostgreSQL has no such playbook or baseline */
	EXIT_CONFLICT = 2,	/* --expect-version differs from the current version */
};

struct options {
	const char *config;
	const char *pattern;
	long expect_version;	/* -1: not given */
	bool json;
	struct cli_flags flags;
};

/* Set by the SIGINT and SIGTERM handler, which also writes to wake_pipe[1] to end a wait. */
extern volatile sig_atomic_t stop_requested;
extern int wake_pipe[2];

/* The sources of the stats file of ace-cache, read from the writer's thread. */
struct figures {
	struct ace_pool *pool;
	const struct ace_config *cfg;
	bool timed;			/* true in filter mode, which observes and writes the histograms */
	/* Seconds from reading a filter request to writing its response, per op. */
	struct ace_histogram get;
	struct ace_histogram set;
	struct ace_histogram invalidate;
};

/* cache_commands.c */
int run_get(struct cli_clients *cl, int argc, char **argv);
int run_set(struct cli_clients *cl, const struct options *o, int argc, char **argv);
int run_invalidate(struct cli_clients *cl, const struct options *o, int argc, char **argv);
int run_warm(struct cli_clients *cl);
int run_stats(struct cli_clients *cl, const struct options *o);
int run_listen(struct cli_clients *cl);

/* cache_figures.c */
struct ace_procstats_writer *start_figures(struct cli_clients *cl, struct figures *f, bool timed);
void stop_figures(struct ace_procstats_writer *w, struct figures *f);

/* cache_filter.c */
int run_filter(struct cli_clients *cl, struct figures *figures);

#endif
