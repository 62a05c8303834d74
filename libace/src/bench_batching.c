/*
 * The batching suite: when ace-ingest flushes (by size and by timeout),
 * timed on the binary from outside, and what the ingest pipeline costs and
 * sustains in-process: records per hour, CPU per record, record-to-commit
 * latency.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ace/buf.h"
#include "ace/ingest.h"
#include "ace/log.h"
#include "bench_private.h"

extern char **environ;

/* Records kept for latency, at most: 16 MiB of timestamps. */
#define MAX_RECORDS 2000000

/* How often the flush probes count rows, and so the resolution of their timing. */
#define POLL_INTERVAL 0.001

static void
sleep_seconds(double seconds)
{
	struct timespec ts;

	if (seconds <= 0)
		return;
	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Appends one metric record of the generated workload, agent and task from n. */
static int
put_record(struct bench *b, struct ace_buf *out, long n, const char *task)
{
	static const char *const stages[] = { "planning", "execution", "reflection", "verification" };
	double success = 0.5 + bench_uniform(b) * 0.5;

	return ace_buf_printf(out,
	    "{\"agent_id\":\"%sagent-%ld\",\"task_id\":\"%s%s-%ld\",\"task_type\":\"%s\","
	    "\"stage\":\"%s\",\"stage_success_rate\":%.3f,\"stage_error_rate\":%.3f,"
	    "\"stage_duration_ms\":%d,\"stage_action_count\":%d,\"overall_progress_velocity\":%.2f,"
	    "\"context_staleness_score\":%.3f,\"model\":\"gpt-4.1\",\"prompt_tokens\":%d,"
	    "\"completion_tokens\":%d}\n",
	    b->agent_prefix, 1 + n % b->agents, b->agent_prefix, task, n / 4,
	    bench_task_types[n % BENCH_TASK_TYPES], stages[n % 4], success,
	    (1 - success) * bench_uniform(b), (int)(bench_uniform(b) * 5000),
	    (int)(bench_uniform(b) * 20), bench_uniform(b) * 10, bench_uniform(b),
	    (int)(bench_uniform(b) * 4000), (int)(bench_uniform(b) * 800));
}

/* --- ace-ingest as a child process ------------------------------------------------ */

struct child {
	pid_t pid;
	int in;			/* the write end of its standard input */
};

/* Builds the child's environment: ours, with DATABASE_URL pointing into the run's schema. */
static char **
child_environment(const char *conninfo)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	env = calloc(n + 2, sizeof(*env));
	if (env == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "DATABASE_URL=", 13) != 0)
			env[k++] = environ[i];
	if (asprintf(&env[k], "DATABASE_URL=%s", conninfo) < 0) {
		free(env);
		return NULL;
	}
	return env;
}

/*
 * Starts ace-ingest reading from a pipe, with the configured batch size and
 * timeout, on the run's schema.  Its standard error stays ours, so its
 * messages reach the user.
 */
static int
spawn_ingest(struct bench *b, struct child *c, struct ace_error *err)
{
	posix_spawn_file_actions_t actions;
	char batch_size[32], batch_timeout[48];
	const char *argv[12];
	char **env;
	int fds[2], n = 0, rc;

	snprintf(batch_size, sizeof(batch_size), "%d", b->cfg->batch_size);
	snprintf(batch_timeout, sizeof(batch_timeout), "%.17g", b->cfg->batch_timeout);
	argv[n++] = b->o->ingest_path;
	if (b->o->config_path != NULL) {
		argv[n++] = "--config";
		argv[n++] = b->o->config_path;
	}
	argv[n++] = "--batch-size";
	argv[n++] = batch_size;
	argv[n++] = "--batch-timeout";
	argv[n++] = batch_timeout;
	argv[n++] = "--quiet";
	argv[n++] = "--log-level";
	argv[n++] = "error";
	argv[n] = NULL;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return ace_error_set(err, ACE_ERR_SYSTEM, "cannot create a pipe: %s", strerror(errno));
	env = child_environment(b->conninfo);
	if (env == NULL) {
		close(fds[0]);
		close(fds[1]);
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	}
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_adddup2(&actions, fds[0], STDIN_FILENO);
	posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	if (strchr(b->o->ingest_path, '/') != NULL)
		rc = posix_spawn(&c->pid, b->o->ingest_path, &actions, NULL, (char **)argv, env);
	else
		rc = posix_spawnp(&c->pid, b->o->ingest_path, &actions, NULL, (char **)argv, env);
	posix_spawn_file_actions_destroy(&actions);
	for (size_t i = 0; env[i] != NULL; i++)
		if (strncmp(env[i], "DATABASE_URL=", 13) == 0)
			free(env[i]);
	free(env);
	close(fds[0]);
	if (rc != 0) {
		close(fds[1]);
		return ace_error_set(err, ACE_ERR_SYSTEM, "cannot run '%s': %s", b->o->ingest_path, strerror(rc));
	}
	c->in = fds[1];
	return ACE_OK;
}

/*
 * Closes the child's input, so that it writes what it read and exits, and
 * waits for it: at most timeout seconds, then SIGTERM, then SIGKILL.
 * Returns its exit status, or -1 when it was killed.
 */
static int
finish_ingest(struct child *c, double timeout)
{
	double deadline = ace_monotonic() + timeout;
	int status = 0, sig = SIGTERM;
	pid_t got;

	if (c->in >= 0)
		close(c->in);
	c->in = -1;
	for (;;) {
		got = waitpid(c->pid, &status, WNOHANG);
		if (got == c->pid || (got < 0 && errno != EINTR))
			break;
		if (ace_monotonic() > deadline) {
			kill(c->pid, sig);
			sig = SIGKILL;
			deadline = ace_monotonic() + 2;
		}
		sleep_seconds(0.01);
	}
	if (got == c->pid && WIFEXITED(status))
		return WEXITSTATUS(status);
	return -1;
}

/* Writes n records of task tag to the child in one go. */
static int
write_records(struct bench *b, struct child *c, const char *tag, long n, struct ace_error *err)
{
	struct ace_buf buf = ACE_BUF_INIT;
	size_t off = 0;
	int rc = ACE_OK;

	for (long i = 0; i < n && rc == ACE_OK; i++)
		if (put_record(b, &buf, i, tag) < 0)
			rc = ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	while (rc == ACE_OK && off < buf.len) {
		ssize_t w = write(c->in, buf.data + off, buf.len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			rc = ace_error_set(err, ACE_ERR_SYSTEM, "cannot write to ace-ingest: %s%s",
			    strerror(errno), errno == EPIPE ? " (it exited early; see its messages above)" : "");
		else
			off += (size_t)w;
	}
	ace_buf_release(&buf);
	return rc;
}

/* Counts the committed rows whose task id starts with tag ("flush-size" also counts "flush-size-last"). */
static int
count_rows(struct bench *b, const char *tag, long *count, struct ace_error *err)
{
	char sql[256];
	double v;
	int rc;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM performance_metrics WHERE task_id LIKE '%s%s-%%'",
	    b->agent_prefix, tag);
	rc = bench_query_number(b->pg, sql, &v, err);
	*count = rc == ACE_OK ? (long)v : 0;
	return rc;
}

/*
 * Polls until at least want rows of tag are committed or deadline passes.
 * *count gets the last count and *at the monotonic time it was read.
 */
static int
wait_rows(struct bench *b, const char *tag, long want, double deadline, long *count, double *at,
    struct ace_error *err)
{
	int rc;

	for (;;) {
		rc = count_rows(b, tag, count, err);
		*at = ace_monotonic();
		if (rc != ACE_OK || *count >= want || *at > deadline || bench_cancelled(b))
			return rc;
		sleep_seconds(POLL_INTERVAL);
	}
}

/*
 * Writes batch_size - 1 records, checks that nothing is committed half a
 * timeout later, writes one more, and expects the whole batch committed
 * before the timeout would have flushed it.
 */
static int
check_size_flush(struct bench *b, struct child *c, struct ace_error *err)
{
	const double timeout = b->cfg->batch_timeout;
	const long size = b->cfg->batch_size;
	double first, last, at, wait = fmin(timeout / 2, 1.0);
	long early = 0, count = 0;
	char note[160];
	int rc;

	first = ace_monotonic();
	rc = write_records(b, c, "flush-size", size - 1, err);
	if (rc != ACE_OK)
		return rc;
	sleep_seconds(first + wait - ace_monotonic());
	if (size > 1 && (rc = count_rows(b, "flush-size", &early, err)) != ACE_OK)
		return rc;
	last = ace_monotonic();
	if (early == 0 && (rc = write_records(b, c, "flush-size-last", 1, err)) != ACE_OK)
		return rc;
	/* Rows that appear later than this may come from the timeout instead. */
	if (early == 0)
		rc = wait_rows(b, "flush-size", size, first + timeout * 0.9, &count, &at, err);
	if (rc != ACE_OK)
		return rc;
	if (early > 0)
		snprintf(note, sizeof(note), "flushed before the last record");
	else if (count >= size)
		snprintf(note, sizeof(note), "committed %.1f ms after the last record", (at - last) * 1000);
	else
		snprintf(note, sizeof(note), "not flushed before batch_timeout");
	rc = bench_row(b, "Flush at batch_size", "records", ACE_BENCH_EQ, (double)size, 0,
	    (double)(early > 0 ? early : count), note, err);
	if (rc != ACE_OK)
		return rc;
	/* Let a late flush land, so that it does not count in the next measurement. */
	return wait_rows(b, "flush-size", early > 0 ? size - 1 : size, ace_monotonic() + timeout + 5,
	    &count, &at, err);
}

/* Writes half a batch, flush_repeats times, and times each commit from the write. */
static int
check_timeout_flush(struct bench *b, struct child *c, struct ace_error *err)
{
	const double timeout = b->cfg->batch_timeout, tolerance = b->cfg->bench_flush_tolerance;
	const long half = b->cfg->batch_size / 2 > 0 ? b->cfg->batch_size / 2 : 1;
	struct ace_bench_series *s = bench_series(b, "partial batch flush delay", "s", err);
	double worst = NAN, lo = INFINITY, hi = -INFINITY;
	int never = 0, rc = ACE_OK;
	char note[200];

	if (s == NULL)
		return err->code;
	for (int i = 0; i < b->flush_repeats && rc == ACE_OK && !bench_cancelled(b); i++) {
		char tag[32];
		double written, at;
		long count;

		snprintf(tag, sizeof(tag), "flush-timeout-%d", i);
		rc = write_records(b, c, tag, half, err);
		written = ace_monotonic();
		if (rc == ACE_OK)
			rc = wait_rows(b, tag, half, written + timeout + tolerance + 5, &count, &at, err);
		if (rc != ACE_OK)
			break;
		bench_progress(b, 0.2 + 0.3 * (i + 1) / b->flush_repeats);
		if (count < half) {
			never++;
			continue;
		}
		if (ace_bench_samples_add(&s->samples, at - written) < 0)
			rc = ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		if (isnan(worst) || fabs(at - written - timeout) > fabs(worst - timeout))
			worst = at - written;
		lo = fmin(lo, at - written);
		hi = fmax(hi, at - written);
	}
	if (rc != ACE_OK || s->samples.count + (size_t)never == 0)
		return rc;
	if (never > 0)
		snprintf(note, sizeof(note), "%d of %zu never flushed", never, s->samples.count + (size_t)never);
	else
		snprintf(note, sizeof(note), "worst of %zu; error %+.1f to %+.1f ms, polled every %.0f ms",
		    s->samples.count, (lo - timeout) * 1000, (hi - timeout) * 1000, POLL_INTERVAL * 1000);
	/* A batch that never flushed misses the target, whatever the others did. */
	return bench_row(b, "Partial batch flushed after batch_timeout", "s", ACE_BENCH_BETWEEN,
	    timeout, timeout + tolerance, never > 0 ? NAN : worst, note, err);
}

/*
 * ace-ingest connects when it writes its first batch.  One record, flushed
 * by the timeout, takes the connection's setup out of the measurements.
 */
static int
warm_up(struct bench *b, struct child *c, struct ace_error *err)
{
	double at;
	long count;
	int rc = write_records(b, c, "warm-up", 1, err);

	if (rc != ACE_OK)
		return rc;
	return wait_rows(b, "warm-up", 1, ace_monotonic() + b->cfg->batch_timeout + 10, &count, &at, err);
}

static int
run_flush_checks(struct bench *b, struct child *c, struct ace_error *err)
{
	const double timeout = b->cfg->batch_timeout, upper = timeout + b->cfg->bench_flush_tolerance;
	int rc = warm_up(b, c, err);

	if (rc != ACE_OK)
		return rc;
	if (timeout < 0.05)
		rc = bench_skip(b, "Flush at batch_size", "records", ACE_BENCH_EQ, b->cfg->batch_size, 0,
		    "batch_timeout is below 50 ms, too short to tell a size flush from a timeout flush", err);
	else
		rc = check_size_flush(b, c, err);
	bench_progress(b, 0.2);
	if (rc != ACE_OK)
		return rc;
	if (b->cfg->batch_size < 2)
		return bench_skip(b, "Partial batch flushed after batch_timeout", "s", ACE_BENCH_BETWEEN,
		    timeout, upper, "a batch_size of 1 leaves no partial batch", err);
	if (timeout * b->flush_repeats > b->duration * 2)
		return bench_skip(b, "Partial batch flushed after batch_timeout", "s", ACE_BENCH_BETWEEN,
		    timeout, upper, "batch_timeout is too long for bench.duration", err);
	return check_timeout_flush(b, c, err);
}

static int
check_flushes(struct bench *b, struct ace_error *err)
{
	const double timeout = b->cfg->batch_timeout, upper = timeout + b->cfg->bench_flush_tolerance;
	struct child c = { .pid = -1, .in = -1 };
	int rc, status;

	if (b->o->ingest_path == NULL) {
		rc = bench_skip(b, "Flush at batch_size", "records", ACE_BENCH_EQ, b->cfg->batch_size, 0,
		    "ace-ingest was not found", err);
		if (rc == ACE_OK)
			rc = bench_skip(b, "Partial batch flushed after batch_timeout", "s", ACE_BENCH_BETWEEN,
			    timeout, upper, "ace-ingest was not found", err);
		return rc;
	}
	rc = spawn_ingest(b, &c, err);
	if (rc != ACE_OK)
		return rc;
	rc = run_flush_checks(b, &c, err);
	status = finish_ingest(&c, timeout + 10);
	if (rc == ACE_OK && status != 0)
		rc = ace_error_set(err, ACE_ERR_SERVER, "ace-ingest %s%d; its messages are above",
		    status < 0 ? "was killed after not exiting, status " : "exited with status ", status);
	return rc;
}

/* --- The pipeline in-process --------------------------------------------------------- */

/* A commit seen by the monitor: at time `at`, `rows` rows were stored in all. */
struct commit_event {
	double at;
	uint64_t rows;
};

struct monitor {
	struct ace_ingest *ing;
	volatile int stop;
	struct commit_event *events;
	size_t count, cap;
	bool failed;		/* out of memory: latencies are incomplete */
	double cpu;		/* the monitor thread's own CPU seconds, taken off the pipeline's */
};

static double
thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Reads the pipeline's stored-row counter every 0.2 ms and records each
 * change with its time.  With one worker, batches commit in input order,
 * so the k-th stored row is the k-th record added.
 */
static void *
monitor_main(void *arg)
{
	struct monitor *m = arg;
	uint64_t last = 0;

	for (;;) {
		struct ace_ingest_stats st;
		uint64_t rows;
		int stop = __atomic_load_n(&m->stop, __ATOMIC_ACQUIRE);

		ace_ingest_stats(m->ing, &st);
		rows = st.written + st.duplicates + st.rejected;
		if (rows != last) {
			if (m->count == m->cap) {
				size_t cap = m->cap ? 2 * m->cap : 1024;
				struct commit_event *grown = realloc(m->events, cap * sizeof(*grown));

				if (grown == NULL) {
					m->failed = true;
					break;
				}
				m->events = grown;
				m->cap = cap;
			}
			m->events[m->count++] = (struct commit_event){ ace_monotonic(), rows };
			last = rows;
		}
		if (stop)
			break;
		usleep(200);
	}
	m->cpu = thread_cpu();
	return NULL;
}

static double
process_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Matches the k-th record added with the commit that took the row count past k. */
static int
add_latencies(struct ace_bench_series *s, const double *added, long n, const struct monitor *m)
{
	size_t e = 0;

	for (long i = 0; i < n; i++) {
		while (e < m->count && m->events[e].rows <= (uint64_t)i)
			e++;
		if (e == m->count)
			break;
		if (ace_bench_samples_add(&s->samples, (m->events[e].at - added[i]) * 1000) < 0)
			return -1;
	}
	return 0;
}

struct sustained {
	long added;
	uint64_t stored;
	double seconds;		/* from the first record to the last commit */
	double cpu;		/* CPU seconds of the process, less the monitor's */
};

static int
feed_pipeline(struct bench *b, struct ace_ingest *ing, double *added, struct sustained *out,
    struct ace_error *err)
{
	struct ace_buf line = ACE_BUF_INIT;
	double start = ace_monotonic(), end = start + b->duration;
	int rc = ACE_OK;
	long n;

	for (n = 0; n < MAX_RECORDS && rc == ACE_OK && !bench_cancelled(b); n++) {
		if ((n & 255) == 0) {
			double now = ace_monotonic();

			if (now >= end)
				break;
			bench_progress(b, 0.5 + 0.5 * (now - start) / b->duration);
		}
		ace_buf_reset(&line);
		if (put_record(b, &line, n, "sustained") < 0) {
			rc = ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
			break;
		}
		line.data[--line.len] = '\0';	/* the pipeline takes lines without their newline */
		added[n] = ace_monotonic();
		rc = ace_ingest_add(ing, "bench", (uint64_t)n + 1, line.data, line.len, err);
	}
	ace_buf_release(&line);
	out->added = n;
	return rc;
}

static void
count_reject(void *ctx, const struct ace_reject *r)
{
	(void)r;
	(*(long *)ctx)++;
}

static int
run_sustained(struct bench *b, struct ace_pool *pool, struct sustained *out,
    struct ace_bench_series *latency, struct ace_error *err)
{
	long rejected = 0;
	struct ace_ingest_options io = {
		.pool = pool,
		.batch_size = b->cfg->batch_size,
		.batch_timeout = b->cfg->batch_timeout,
		.workers = b->cfg->workers,
		.retry_timeout = b->cfg->retry_timeout,
		.retry_initial_delay = b->cfg->retry_initial_delay,
		.retry_max_delay = b->cfg->retry_max_delay,
		.on_reject = count_reject,
		.ctx = &rejected,
		.cancel = b->o->cancel,
	};
	struct monitor m = { 0 };
	struct ace_ingest_stats st;
	double *added, cpu0, start;
	pthread_t thread;
	int rc, frc;

	added = malloc(MAX_RECORDS * sizeof(*added));
	if (added == NULL)
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	m.ing = ace_ingest_new(&io, err);
	if (m.ing == NULL) {
		free(added);
		return err->code;
	}
	if (pthread_create(&thread, NULL, monitor_main, &m) != 0) {
		rc = ace_error_set(err, ACE_ERR_SYSTEM, "cannot start a thread");
		ace_ingest_finish(m.ing, NULL);
		goto out;
	}
	cpu0 = process_cpu();
	start = ace_monotonic();
	rc = feed_pipeline(b, m.ing, added, out, err);
	frc = ace_ingest_finish(m.ing, rc == ACE_OK ? err : NULL);
	if (rc == ACE_OK)
		rc = frc;
	__atomic_store_n(&m.stop, 1, __ATOMIC_RELEASE);
	pthread_join(thread, NULL);
	out->cpu = process_cpu() - cpu0 - m.cpu;

	ace_ingest_stats(m.ing, &st);
	out->stored = st.written + st.duplicates;
	out->seconds = (m.count > 0 ? m.events[m.count - 1].at : ace_monotonic()) - start;
	if (rc == ACE_OK && rejected > 0)
		rc = ace_error_set(err, ACE_ERR_DATA, "the pipeline rejected %ld generated records", rejected);
	if (rc == ACE_OK && (m.failed || add_latencies(latency, added, out->added, &m) < 0))
		rc = ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
out:
	ace_ingest_free(m.ing);
	free(m.events);
	free(added);
	return rc;
}

static int
measure_pipeline(struct bench *b, struct ace_error *err)
{
	struct ace_bench_series *latency;
	struct sustained s = { 0 };
	struct ace_pool *pool;
	char note[200];
	int rc;

	latency = bench_series(b, "ingest record-to-commit latency", "ms", err);
	if (latency == NULL)
		return err->code;
	pool = bench_pool_new(b, b->cfg->pool_size, b->cfg->pool_max_overflow, err);
	if (pool == NULL)
		return err->code;
	rc = run_sustained(b, pool, &s, latency, err);
	ace_pool_free(pool);
	if (rc != ACE_OK || bench_cancelled(b))
		return rc;

	snprintf(note, sizeof(note), "%llu records stored in %.2f s by %d worker%s",
	    (unsigned long long)s.stored, s.seconds, b->cfg->workers, b->cfg->workers == 1 ? "" : "s");
	rc = bench_row(b, "Sustained ingest rate", "records/h", ACE_BENCH_GE,
	    b->cfg->bench_min_records_per_hour, 0,
	    s.seconds > 0 ? round((double)s.stored / s.seconds * 3600) : 0, note, err);
	if (rc != ACE_OK)
		return rc;

	ace_bench_summarize(&latency->samples, &latency->summary);
	snprintf(note, sizeof(note), "p50 %.2f ms, under the sustained load%s", latency->summary.median,
	    b->cfg->workers > 1 ? "; rows matched in commit order" : "");
	rc = bench_row(b, "Write latency p95, record to commit", "ms", ACE_BENCH_LT,
	    b->cfg->bench_max_write_latency * 1000, 0, latency->summary.p95, note, err);
	if (rc != ACE_OK)
		return rc;

	snprintf(note, sizeof(note), "all threads: parsing, validation and COPY, over %llu records",
	    (unsigned long long)s.stored);
	return bench_row(b, "CPU per record in the producer process", "\u00b5s", ACE_BENCH_NO_TARGET, 0, 0,
	    s.stored > 0 ? s.cpu / (double)s.stored * 1e6 : NAN, note, err);
}

int
bench_batching(struct bench *b, struct ace_error *err)
{
	int rc = check_flushes(b, err);

	if (rc != ACE_OK || bench_cancelled(b))
		return rc;
	bench_progress(b, 0.5);
	return measure_pipeline(b, err);
}
