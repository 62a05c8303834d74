/* Histograms, the per-process counter file, its writer thread and the reader of a stats folder. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "ace/log.h"
#include "ace/procstats.h"
#include "ace/prom.h"

#define READ_FILES_MAX 10000
#define FILE_BYTES_MAX 65536

static const double bounds[ACE_HISTOGRAM_BUCKETS] = ACE_HISTOGRAM_BOUNDS;

void
ace_histogram_init(struct ace_histogram *h)
{
	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
}

void
ace_histogram_observe(struct ace_histogram *h, double seconds)
{
	int i = 0;

	while (i < ACE_HISTOGRAM_BUCKETS && seconds > bounds[i])
		i++;
	pthread_mutex_lock(&h->lock);
	h->counts[i]++;
	h->sum += seconds;
	pthread_mutex_unlock(&h->lock);
}

void
ace_histogram_read(struct ace_histogram *h, struct ace_histogram_snapshot *out)
{
	unsigned long long total = 0;

	pthread_mutex_lock(&h->lock);
	for (int i = 0; i <= ACE_HISTOGRAM_BUCKETS; i++) {
		total += h->counts[i];
		out->cumulative[i] = total;
	}
	out->sum = h->sum;
	pthread_mutex_unlock(&h->lock);
}

void
ace_histogram_destroy(struct ace_histogram *h)
{
	pthread_mutex_destroy(&h->lock);
}

double
ace_histogram_bound(int i)
{
	return i < ACE_HISTOGRAM_BUCKETS ? bounds[i] : INFINITY;
}

/* --- The file ----------------------------------------------------------------- */

int
ace_procstats_format(const struct ace_procstats *s, struct ace_buf *out)
{
	int rc = 0;

	rc |= ace_buf_puts(out, "{\"program\":");
	rc |= ace_buf_put_json_string(out, s->program, strlen(s->program), NULL);
	rc |= ace_buf_printf(out, ",\"pid\":%ld,\"updated_at\":%.6f", s->pid, s->updated_at);
	if (s->has_pool)
		rc |= ace_buf_printf(out, ",\"pool\":{\"size\":%d,\"max_overflow\":%d,\"open\":%d,"
		    "\"checked_out\":%d,\"waiting\":%d,\"checkouts\":%llu,\"timeouts\":%llu}",
		    s->pool_size, s->pool_max_overflow, s->pool_open, s->pool_checked_out,
		    s->pool_waiting, s->pool_checkouts, s->pool_timeouts);
	if (s->has_ingest)
		rc |= ace_buf_printf(out, ",\"ingest\":{\"batch_size\":%d,\"flushes\":%llu,"
		    "\"records_written\":%llu,\"records_rejected\":%llu}",
		    s->batch_size, s->flushes, s->records_written, s->records_rejected);
	rc |= ace_buf_puts(out, ",\"operations\":{");
	for (size_t i = 0; i < s->operations; i++) {
		const struct ace_histogram_snapshot *h = &s->operation[i].duration;

		rc |= ace_buf_puts(out, i ? "," : "");
		rc |= ace_buf_put_json_string(out, s->operation[i].name, strlen(s->operation[i].name), NULL);
		rc |= ace_buf_puts(out, ":{\"cumulative\":[");
		for (int b = 0; b <= ACE_HISTOGRAM_BUCKETS; b++)
			rc |= ace_buf_printf(out, "%s%llu", b ? "," : "", h->cumulative[b]);
		rc |= ace_buf_printf(out, "],\"sum\":%.9g}", h->sum);
	}
	rc |= ace_buf_puts(out, "}}\n");
	return rc ? -1 : 0;
}

/* Reads a number member into *v; returns false when it is missing or not a number. */
static bool
member(const cJSON *obj, const char *name, double *v)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!cJSON_IsNumber(item))
		return false;
	*v = item->valuedouble;
	return true;
}

static bool
parse_pool(const cJSON *pool, struct ace_procstats *s)
{
	double v[7];

	if (!member(pool, "size", &v[0]) || !member(pool, "max_overflow", &v[1]) ||
	    !member(pool, "open", &v[2]) || !member(pool, "checked_out", &v[3]) ||
	    !member(pool, "waiting", &v[4]) || !member(pool, "checkouts", &v[5]) ||
	    !member(pool, "timeouts", &v[6]))
		return false;
	s->has_pool = true;
	s->pool_size = (int)v[0];
	s->pool_max_overflow = (int)v[1];
	s->pool_open = (int)v[2];
	s->pool_checked_out = (int)v[3];
	s->pool_waiting = (int)v[4];
	s->pool_checkouts = (unsigned long long)v[5];
	s->pool_timeouts = (unsigned long long)v[6];
	return true;
}

static bool
parse_ingest(const cJSON *ingest, struct ace_procstats *s)
{
	double v[4];

	if (!member(ingest, "batch_size", &v[0]) || !member(ingest, "flushes", &v[1]) ||
	    !member(ingest, "records_written", &v[2]) || !member(ingest, "records_rejected", &v[3]))
		return false;
	s->has_ingest = true;
	s->batch_size = (int)v[0];
	s->flushes = (unsigned long long)v[1];
	s->records_written = (unsigned long long)v[2];
	s->records_rejected = (unsigned long long)v[3];
	return true;
}

static bool
parse_operation(const cJSON *op, struct ace_procstats *s)
{
	const cJSON *cumulative = cJSON_GetObjectItemCaseSensitive(op, "cumulative");
	struct ace_histogram_snapshot *h;
	size_t i = s->operations;

	if (i == ACE_PROCSTATS_OPERATIONS || op->string == NULL || strlen(op->string) >= sizeof(s->operation[i].name) ||
	    !cJSON_IsArray(cumulative) || cJSON_GetArraySize(cumulative) != ACE_HISTOGRAM_BUCKETS + 1)
		return false;
	h = &s->operation[i].duration;
	if (!member(op, "sum", &h->sum))
		return false;
	for (int b = 0; b <= ACE_HISTOGRAM_BUCKETS; b++) {
		const cJSON *c = cJSON_GetArrayItem(cumulative, b);

		if (!cJSON_IsNumber(c))
			return false;
		h->cumulative[b] = (unsigned long long)c->valuedouble;
	}
	snprintf(s->operation[i].name, sizeof(s->operation[i].name), "%s", op->string);
	s->operations++;
	return true;
}

int
ace_procstats_parse(const char *text, struct ace_procstats *s, struct ace_error *err)
{
	cJSON *root = cJSON_Parse(text);
	const cJSON *program = cJSON_GetObjectItemCaseSensitive(root, "program");
	const cJSON *pool = cJSON_GetObjectItemCaseSensitive(root, "pool");
	const cJSON *ingest = cJSON_GetObjectItemCaseSensitive(root, "ingest");
	const cJSON *ops = cJSON_GetObjectItemCaseSensitive(root, "operations");
	const cJSON *op;
	double pid;
	bool ok;

	memset(s, 0, sizeof(*s));
	ok = cJSON_IsObject(root) && cJSON_IsString(program) &&
	    strlen(program->valuestring) < sizeof(s->program) &&
	    member(root, "pid", &pid) && pid >= 1 && member(root, "updated_at", &s->updated_at) &&
	    (pool == NULL || parse_pool(pool, s)) && (ingest == NULL || parse_ingest(ingest, s)) &&
	    (ops == NULL || cJSON_IsObject(ops));
	if (ok) {
		snprintf(s->program, sizeof(s->program), "%s", program->valuestring);
		s->pid = (long)pid;
		cJSON_ArrayForEach(op, ops)
			if (!(ok = parse_operation(op, s)))
				break;
	}
	cJSON_Delete(root);
	if (!ok)
		return ace_error_set(err, ACE_ERR_INVALID, "not a process stats object");
	return ACE_OK;
}

/* --- The writer ---------------------------------------------------------------- */

struct ace_procstats_writer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	char path[4096];
	char program[32];
	ace_procstats_fill_fn fill;
	void *ctx;
	bool failing;		/* a write failed and was logged; no success since */
};

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
write_once(struct ace_procstats_writer *w)
{
	struct ace_procstats s;
	struct ace_buf text = ACE_BUF_INIT;
	struct ace_error err = { 0 };
	int rc;

	memset(&s, 0, sizeof(s));
	snprintf(s.program, sizeof(s.program), "%s", w->program);
	s.pid = (long)getpid();
	w->fill(w->ctx, &s);
	s.updated_at = now_seconds();
	if (ace_procstats_format(&s, &text) < 0)
		rc = ace_error_set(&err, ACE_ERR_SYSTEM, "out of memory");
	else
		rc = ace_prom_write_file(w->path, text.data, text.len, &err);
	ace_buf_release(&text);
	if (rc != ACE_OK && !w->failing)
		ace_log(ACE_LOG_WARNING, "cannot write the process stats file; retrying each second",
		    "error", err.message, NULL);
	w->failing = rc != ACE_OK;
}

static void *
writer_main(void *arg)
{
	struct ace_procstats_writer *w = arg;

	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		struct timespec until;

		pthread_mutex_unlock(&w->lock);
		write_once(w);
		pthread_mutex_lock(&w->lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		while (!w->stop && pthread_cond_timedwait(&w->wake, &w->lock, &until) != ETIMEDOUT)
			continue;
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct ace_procstats_writer *
ace_procstats_start(const char *dir, const char *program, ace_procstats_fill_fn fill, void *ctx,
    struct ace_error *err)
{
	struct ace_procstats_writer *w;

	if (access(dir, W_OK | X_OK) != 0) {
		ace_error_set(err, ACE_ERR_NOT_FOUND, "stats folder '%s' is not writable: %s", dir, strerror(errno));
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		return NULL;
	}
	snprintf(w->path, sizeof(w->path), "%s/%s.%ld.json", dir, program, (long)getpid());
	snprintf(w->program, sizeof(w->program), "%s", program);
	w->fill = fill;
	w->ctx = ctx;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		ace_error_set(err, ACE_ERR_SYSTEM, "cannot start the stats writer thread");
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->wake);
		free(w);
		return NULL;
	}
	return w;
}

void
ace_procstats_stop(struct ace_procstats_writer *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	unlink(w->path);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	free(w);
}

/* --- The reader ------------------------------------------------------------------ */

/* Reads a whole small file into a new NUL-terminated string, or returns NULL. */
static char *
read_small_file(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *text;
	size_t n;

	if (fp == NULL)
		return NULL;
	text = malloc(FILE_BYTES_MAX + 1);
	n = text ? fread(text, 1, FILE_BYTES_MAX, fp) : 0;
	fclose(fp);
	if (text != NULL)
		text[n] = '\0';
	return text;
}

static bool
process_gone(long pid)
{
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

int
ace_procstats_read_dir(const char *dir, double max_age, struct ace_procstats **out, size_t *count,
    struct ace_error *err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0, cap = 0, seen = 0;
	double now = now_seconds();
	int rc = ACE_OK;

	*out = NULL;
	*count = 0;
	if (d == NULL)
		return ace_error_set(err, ACE_ERR_NOT_FOUND, "cannot read stats folder '%s': %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL && seen < READ_FILES_MAX) {
		size_t len = strlen(e->d_name);
		char path[4096], *text;
		struct ace_procstats s;
		struct ace_error ignored;

		/* Temporary files of a write in progress start with a dot. */
		if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
			continue;
		seen++;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		text = read_small_file(path);
		if (text == NULL || ace_procstats_parse(text, &s, &ignored) != ACE_OK) {
			free(text);
			continue;
		}
		free(text);
		if (process_gone(s.pid)) {
			unlink(path);	/* a killed process left it; nothing will update it */
			continue;
		}
		if (now - s.updated_at > max_age)
			continue;
		if (n == cap) {
			struct ace_procstats *grown = realloc(*out, (cap ? cap * 2 : 8) * sizeof(**out));

			if (grown == NULL) {
				rc = ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
				break;
			}
			*out = grown;
			cap = cap ? cap * 2 : 8;
		}
		(*out)[n++] = s;
	}
	closedir(d);
	if (rc != ACE_OK) {
		free(*out);
		*out = NULL;
		return rc;
	}
	*count = n;
	return ACE_OK;
}
