/* The stats file of ace-cache: pool figures and, in filter mode, per-op durations. */
#include <stdio.h>

#include "ace/log.h"
#include "ace/pool.h"
#include "ace/procstats.h"
#include "ace-cache.h"
#include "cli.h"

static void
add_operation(struct ace_procstats *s, const char *name, struct ace_histogram *h)
{
	snprintf(s->operation[s->operations].name, sizeof(s->operation[s->operations].name), "%s", name);
	ace_histogram_read(h, &s->operation[s->operations].duration);
	s->operations++;
}

static void
fill_figures(void *ctx, struct ace_procstats *s)
{
	struct figures *f = ctx;
	struct ace_pool_stats ps;

	ace_pool_stats(f->pool, &ps);
	s->has_pool = true;
	s->pool_size = f->cfg->pool_size;
	s->pool_max_overflow = f->cfg->pool_max_overflow;
	s->pool_open = ps.open;
	s->pool_checked_out = ps.in_use;
	s->pool_waiting = ps.waiting;
	s->pool_checkouts = ps.checkouts;
	s->pool_timeouts = ps.timeouts;
	if (f->timed) {
		add_operation(s, "get", &f->get);
		add_operation(s, "set", &f->set);
		add_operation(s, "invalidate", &f->invalidate);
	}
}

/*
 * Starts the writer of the stats file in stats.dir.  Returns NULL, after
 * logging why, when it cannot start: the command then runs without a file.
 */
struct ace_procstats_writer *
start_figures(struct cli_clients *cl, struct figures *f, bool timed)
{
	struct ace_procstats_writer *w;
	struct ace_error err;

	f->pool = cl->pool;
	f->cfg = &cl->cfg;
	f->timed = timed;
	ace_histogram_init(&f->get);
	ace_histogram_init(&f->set);
	ace_histogram_init(&f->invalidate);
	w = ace_procstats_start(cl->cfg.stats_dir, "ace-cache", fill_figures, f, &err);
	if (w == NULL) {
		ace_log(ACE_LOG_WARNING, "process stats are not written", "error", err.message, NULL);
		ace_histogram_destroy(&f->get);
		ace_histogram_destroy(&f->set);
		ace_histogram_destroy(&f->invalidate);
	}
	return w;
}

/* Stops the writer, which removes the file.  NULL is ignored. */
void
stop_figures(struct ace_procstats_writer *w, struct figures *f)
{
	if (w == NULL)
		return;
	ace_procstats_stop(w);
	ace_histogram_destroy(&f->get);
	ace_histogram_destroy(&f->set);
	ace_histogram_destroy(&f->invalidate);
}
