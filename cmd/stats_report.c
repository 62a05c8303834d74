/* The report command of ace-stats: count, p50 and p95 duration and success rate per agent and stage. */
#include <stdio.h>
#include <string.h>

#include "ace/buf.h"
#include "ace/dbstats.h"
#include "ace/metric.h"
#include "ace/pool.h"
#include "ace-stats.h"
#include "cli.h"

enum { FORMAT_TABLE, FORMAT_JSON, FORMAT_CSV };

struct report_run {
	int format;
	long long rows;
};

/* Parses an RFC 3339 time, or a duration meaning that long before now. */
static int64_t
parse_when(const char *option, const char *text, int64_t now_us)
{
	const char *why;
	double seconds;
	int64_t us;

	if (ace_parse_rfc3339(text, &us, &why) == 0)
		return us;
	if (ace_parse_seconds(text, &seconds) == 0 && seconds >= 0 && seconds < 1e10)
		return now_us - (int64_t)(seconds * 1e6);
	cli_usage_error("%s: invalid time '%s' (expected an RFC 3339 time or a duration such as 24h)",
	    option, text);
}

static void
csv_field(const char *text)
{
	if (strpbrk(text, ",\"\r\n") == NULL) {
		fputs(text, stdout);
		return;
	}
	putchar('"');
	for (const char *p = text; *p; p++) {
		if (*p == '"')
			putchar('"');
		putchar(*p);
	}
	putchar('"');
}

static int
report_row(void *ctx, const struct ace_report_row *r)
{
	struct report_run *run = ctx;
	char p50[32] = "", p95[32] = "", rate[32] = "";

	if (r->has_duration) {
		snprintf(p50, sizeof(p50), "%.1f", r->duration_p50);
		snprintf(p95, sizeof(p95), "%.1f", r->duration_p95);
	}
	if (r->has_success_rate)
		snprintf(rate, sizeof(rate), "%.4f", r->success_rate);

	if (run->format == FORMAT_TABLE) {
		int width = r->agent_width > 5 ? r->agent_width : 5;

		if (run->rows == 0)
			printf("%-*s  %-12s  %10s  %10s  %10s  %12s\n", width, "agent", "stage", "count",
			    "p50_ms", "p95_ms", "success_rate");
		printf("%-*s  %-12s  %10lld  %10s  %10s  %12s\n", width, r->agent_id, r->stage, r->count,
		    *p50 ? p50 : "-", *p95 ? p95 : "-", *rate ? rate : "-");
	} else if (run->format == FORMAT_CSV) {
		if (run->rows == 0)
			puts("agent_id,stage,count,duration_p50_ms,duration_p95_ms,success_rate");
		csv_field(r->agent_id);
		printf(",%s,%lld,%s,%s,%s\n", r->stage, r->count, p50, p95, rate);
	} else {
		struct ace_buf out = ACE_BUF_INIT;
		int rc = ace_buf_puts(&out, run->rows ? ",\n{\"agent_id\":" : "[\n{\"agent_id\":");

		rc |= ace_buf_put_json_string(&out, r->agent_id, strlen(r->agent_id), NULL);
		rc |= ace_buf_printf(&out, ",\"stage\":\"%s\",\"count\":%lld,\"duration_p50_ms\":%s,"
		    "\"duration_p95_ms\":%s,\"success_rate\":%s}", r->stage, r->count,
		    *p50 ? p50 : "null", *p95 ? p95 : "null", *rate ? rate : "null");
		if (rc == 0)
			fwrite(out.data, 1, out.len, stdout);
		ace_buf_release(&out);
		if (rc != 0)
			return -1;
	}
	run->rows++;
	return ferror(stdout) ? -1 : 0;
}

int
run_report(struct cli_clients *cl, const struct options *o)
{
	int64_t now = ace_now_us();
	int64_t since = parse_when("--since", o->since ? o->since : "24h", now);
	int64_t until = o->until ? parse_when("--until", o->until, now) : now;
	struct report_run run = { FORMAT_TABLE, 0 };
	struct ace_error err;
	int status = EXIT_OK;
	PGconn *pg;

	if (o->format == NULL || strcmp(o->format, "table") == 0)
		run.format = FORMAT_TABLE;
	else if (strcmp(o->format, "json") == 0)
		run.format = FORMAT_JSON;
	else if (strcmp(o->format, "csv") == 0)
		run.format = FORMAT_CSV;
	else
		cli_usage_error("--format: unknown format '%s' (expected table, json or csv)", o->format);
	if (until < since)
		cli_usage_error("--until is before --since");

	pg = connect_db(cl, &status);
	if (pg == NULL)
		return status;
	if (ace_dbstats_report(pg, since, until, report_row, &run, &err) != ACE_OK) {
		report_pg_error(&err);
		status = exit_status_for(err.code);
	} else if (run.format == FORMAT_JSON) {
		fputs(run.rows ? "\n]\n" : "[]\n", stdout);
	} else if (run.format == FORMAT_CSV && run.rows == 0) {
		puts("agent_id,stage,count,duration_p50_ms,duration_p95_ms,success_rate");
	}
	PQfinish(pg);
	return status;
}
