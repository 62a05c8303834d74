/* Benchmark reports as Markdown tables, CSV and JSON. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ace/bench.h"

void
ace_bench_format_number(double value, char *out, size_t len)
{
	if (isnan(value))
		snprintf(out, len, "-");
	else if (fabs(value) >= 100 || value == floor(value))
		snprintf(out, len, "%.0f", value);
	else
		snprintf(out, len, "%.3g", value);
}

/* Like ace_bench_format_number(), with commas between groups of three digits from 10000 up. */
static void
format_grouped(double value, char *out, size_t len)
{
	char plain[64];
	size_t digits, n = 0;
	const char *p = plain;

	ace_bench_format_number(value, plain, sizeof(plain));
	if (isnan(value) || fabs(value) < 10000 || strchr(plain, 'e') != NULL) {
		snprintf(out, len, "%s", plain);
		return;
	}
	if (*p == '-' && n + 1 < len)
		out[n++] = *p++;
	digits = strspn(p, "0123456789");
	for (size_t i = 0; i < digits && n + 2 < len; i++) {
		if (i > 0 && (digits - i) % 3 == 0)
			out[n++] = ',';
		out[n++] = p[i];
	}
	out[n] = '\0';
}

/* Appends a value with its unit: "12.3 ms", "97.5%". */
static void
format_value(double value, const char *unit, char *out, size_t len)
{
	char number[64];

	format_grouped(value, number, sizeof(number));
	if (*unit == '\0')
		snprintf(out, len, "%s", number);
	else if (strcmp(unit, "%") == 0)
		snprintf(out, len, "%s%%", number);
	else
		snprintf(out, len, "%s %s", number, unit);
}

static const char *
op_text(int op)
{
	switch (op) {
	case ACE_BENCH_LT: return "<";
	case ACE_BENCH_LE: return "<=";
	case ACE_BENCH_GT: return ">";
	case ACE_BENCH_GE: return ">=";
	case ACE_BENCH_EQ: return "=";
	}
	return "";
}

void
ace_bench_format_target(const struct ace_bench_target *t, const char *unit, bool ascii,
    char *out, size_t len)
{
	char a[64], b[64];

	if (t->op == ACE_BENCH_NO_TARGET) {
		snprintf(out, len, ascii ? "" : "-");
		return;
	}
	if (ascii) {
		ace_bench_format_number(t->value, a, sizeof(a));
		if (t->op == ACE_BENCH_BETWEEN) {
			ace_bench_format_number(t->upper, b, sizeof(b));
			snprintf(out, len, "%s..%s", a, b);
		} else {
			snprintf(out, len, "%s%s", op_text(t->op), a);
		}
		return;
	}
	if (t->op == ACE_BENCH_BETWEEN) {
		format_grouped(t->value, a, sizeof(a));
		format_value(t->upper, unit, b, sizeof(b));
		snprintf(out, len, "%s to %s", a, b);
		return;
	}
	format_value(t->value, unit, a, sizeof(a));
	snprintf(out, len, "%s %s", op_text(t->op), a);
}

/* --- Markdown ------------------------------------------------------------- */

/* Appends text as a table cell: a pipe is escaped and a line break becomes a space. */
static int
put_cell(struct ace_buf *out, const char *text)
{
	int rc = 0;

	for (const char *p = text; *p && rc == 0; p++) {
		if (*p == '|')
			rc = ace_buf_puts(out, "\\|");
		else if (*p == '\n' || *p == '\r')
			rc = ace_buf_putc(out, ' ');
		else
			rc = ace_buf_putc(out, *p);
	}
	return rc;
}

static const char *
status_mark(int status)
{
	switch (status) {
	case ACE_BENCH_MET: return "\u2705";
	case ACE_BENCH_MISSED: return "\u274c";
	}
	return "-";
}

static int
put_machine_lines(const struct ace_bench_report *r, struct ace_buf *out)
{
	const struct ace_bench_machine *m = &r->machine;
	int rc = 0;

	rc |= ace_buf_printf(out, "- Machine: %d CPUs%s%s, %.1f GiB RAM, %s\n", m->cpus,
	    *m->cpu_model ? ", " : "", m->cpu_model, m->memory_gib, m->kernel);
	rc |= ace_buf_printf(out, "- PostgreSQL: %s\n", *m->postgresql ? m->postgresql : "not connected");
	rc |= ace_buf_printf(out, "- Redis: %s\n", *m->redis ? m->redis : "not used");
	rc |= ace_buf_puts(out, "- Settings: ");
	for (size_t i = 0; i < r->nsettings; i++)
		rc |= ace_buf_printf(out, "%s%s=%s", i ? ", " : "", r->settings[i].name, r->settings[i].value);
	rc |= ace_buf_puts(out, "\n");
	return rc;
}

static int
put_markdown_row(const struct ace_bench_row *row, struct ace_buf *out)
{
	char target[128], actual[128];
	int rc = 0;

	ace_bench_format_target(&row->target, row->unit, false, target, sizeof(target));
	rc |= ace_buf_puts(out, "| ");
	rc |= put_cell(out, row->metric);
	rc |= ace_buf_puts(out, " | ");
	rc |= put_cell(out, target);
	rc |= ace_buf_puts(out, " | ");
	if (row->status == ACE_BENCH_SKIPPED) {
		rc |= ace_buf_puts(out, "skipped: ");
		rc |= put_cell(out, row->note);
	} else {
		format_value(row->actual, row->unit, actual, sizeof(actual));
		rc |= put_cell(out, actual);
		if (*row->note) {
			rc |= ace_buf_puts(out, " (");
			rc |= put_cell(out, row->note);
			rc |= ace_buf_puts(out, ")");
		}
	}
	rc |= ace_buf_printf(out, " | %s |\n", status_mark(row->status));
	return rc;
}

int
ace_bench_format_markdown(const struct ace_bench_report *r, struct ace_buf *out)
{
	size_t judged = ace_bench_report_judged(r), missed = ace_bench_report_missed(r);
	int rc = 0;

	rc |= ace_buf_printf(out, "# ace-bench\n\nRun at %s for %.1f s%s.\n\n", r->started_at,
	    r->seconds, r->interrupted ? ", interrupted before its end" : "");
	rc |= put_machine_lines(r, out);
	for (int suite = 0; suite < ACE_BENCH_SUITES; suite++) {
		if (!(r->suites & (1u << suite)))
			continue;
		rc |= ace_buf_printf(out, "\n## %s\n\n", ace_bench_suite_name(suite));
		rc |= ace_buf_puts(out, "| Metric | Target | Actual | Status |\n"
		    "|--------|--------|--------|--------|\n");
		for (size_t i = 0; i < r->nrows; i++)
			if (r->rows[i].suite == suite)
				rc |= put_markdown_row(&r->rows[i], out);
	}
	rc |= ace_buf_printf(out, "\n%zu of %zu targets met.\n", judged - missed, judged);
	return rc ? -1 : 0;
}

/* --- CSV ------------------------------------------------------------------ */

/* Appends a field, quoted when it contains a comma, a quote or a line break (RFC 4180). */
static int
put_csv_field(struct ace_buf *out, const char *text)
{
	int rc = 0;

	if (strpbrk(text, ",\"\r\n") == NULL)
		return ace_buf_puts(out, text);
	rc |= ace_buf_putc(out, '"');
	for (const char *p = text; *p; p++)
		rc |= *p == '"' ? ace_buf_puts(out, "\"\"") : ace_buf_putc(out, *p);
	rc |= ace_buf_putc(out, '"');
	return rc;
}

static const char *
csv_status(int status)
{
	switch (status) {
	case ACE_BENCH_MET: return "ok";
	case ACE_BENCH_MISSED: return "FAIL";
	case ACE_BENCH_INFO: return "info";
	}
	return "skip";
}

/* Formats a number for machine reading: integers whole, others with 6 significant digits. */
static void
format_plain(double value, char *out, size_t len)
{
	if (isnan(value))
		snprintf(out, len, "%s", "");
	else if (value == floor(value) && fabs(value) < 1e15)
		snprintf(out, len, "%.0f", value);
	else
		snprintf(out, len, "%.6g", value);
}

int
ace_bench_format_csv(const struct ace_bench_report *r, struct ace_buf *out)
{
	int rc = ace_buf_puts(out, "suite,metric,target,actual,unit,status,note\n");

	for (size_t i = 0; i < r->nrows; i++) {
		const struct ace_bench_row *row = &r->rows[i];
		char target[128], actual[64];

		ace_bench_format_target(&row->target, row->unit, true, target, sizeof(target));
		format_plain(row->actual, actual, sizeof(actual));
		rc |= ace_buf_printf(out, "%s,", ace_bench_suite_name(row->suite));
		rc |= put_csv_field(out, row->metric);
		rc |= ace_buf_putc(out, ',');
		rc |= put_csv_field(out, target);
		rc |= ace_buf_printf(out, ",%s,", actual);
		rc |= put_csv_field(out, row->unit);
		rc |= ace_buf_printf(out, ",%s,", csv_status(row->status));
		rc |= put_csv_field(out, row->note);
		rc |= ace_buf_putc(out, '\n');
	}
	return rc ? -1 : 0;
}

/* --- JSON ------------------------------------------------------------------ */

/* Adds a number, or null for NaN, which JSON cannot hold. */
static void
add_number(cJSON *obj, const char *name, double value)
{
	if (isnan(value) || isinf(value))
		cJSON_AddNullToObject(obj, name);
	else
		cJSON_AddNumberToObject(obj, name, value);
}

/* Adds a setting as a number when its whole text is one, else as a string. */
static void
add_setting(cJSON *obj, const struct ace_bench_setting *s)
{
	char *end;
	double v = strtod(s->value, &end);

	if (end != s->value && *end == '\0' && isfinite(v))
		cJSON_AddNumberToObject(obj, s->name, v);
	else
		cJSON_AddStringToObject(obj, s->name, s->value);
}

static cJSON *
machine_json(const struct ace_bench_machine *m)
{
	cJSON *obj = cJSON_CreateObject();

	cJSON_AddNumberToObject(obj, "cpus", m->cpus);
	cJSON_AddStringToObject(obj, "cpu_model", m->cpu_model);
	cJSON_AddNumberToObject(obj, "memory_gib", round(m->memory_gib * 10) / 10);
	cJSON_AddStringToObject(obj, "kernel", m->kernel);
	cJSON_AddStringToObject(obj, "postgresql", m->postgresql);
	cJSON_AddStringToObject(obj, "redis", m->redis);
	return obj;
}

static cJSON *
row_json(const struct ace_bench_row *row)
{
	cJSON *obj = cJSON_CreateObject(), *target = cJSON_CreateObject();
	char text[128];

	cJSON_AddStringToObject(obj, "suite", ace_bench_suite_name(row->suite));
	cJSON_AddStringToObject(obj, "metric", row->metric);
	cJSON_AddStringToObject(obj, "unit", row->unit);
	ace_bench_format_target(&row->target, row->unit, false, text, sizeof(text));
	cJSON_AddStringToObject(target, "op", row->target.op == ACE_BENCH_BETWEEN ? "between" :
	    row->target.op == ACE_BENCH_NO_TARGET ? "none" : op_text(row->target.op));
	if (row->target.op != ACE_BENCH_NO_TARGET)
		add_number(target, "value", row->target.value);
	if (row->target.op == ACE_BENCH_BETWEEN)
		add_number(target, "upper", row->target.upper);
	cJSON_AddStringToObject(target, "text", text);
	cJSON_AddItemToObject(obj, "target", target);
	add_number(obj, "actual", row->actual);
	cJSON_AddStringToObject(obj, "status", ace_bench_status_name(row->status));
	cJSON_AddStringToObject(obj, "note", row->note);
	return obj;
}

static cJSON *
summary_json(const struct ace_bench_series *s)
{
	cJSON *obj = cJSON_CreateObject();

	cJSON_AddStringToObject(obj, "suite", ace_bench_suite_name(s->suite));
	cJSON_AddStringToObject(obj, "name", s->name);
	cJSON_AddStringToObject(obj, "unit", s->unit);
	cJSON_AddNumberToObject(obj, "count", (double)s->summary.count);
	add_number(obj, "min", s->summary.min);
	add_number(obj, "median", s->summary.median);
	add_number(obj, "mean", s->summary.mean);
	add_number(obj, "p95", s->summary.p95);
	add_number(obj, "p99", s->summary.p99);
	add_number(obj, "max", s->summary.max);
	return obj;
}

int
ace_bench_format_json(const struct ace_bench_report *r, struct ace_buf *out)
{
	cJSON *root = cJSON_CreateObject(), *settings, *suites, *rows, *summaries, *targets;
	char *text;
	int rc;

	if (root == NULL)
		return -1;
	cJSON_AddStringToObject(root, "started_at", r->started_at);
	cJSON_AddNumberToObject(root, "seconds", round(r->seconds * 1000) / 1000);
	cJSON_AddBoolToObject(root, "interrupted", r->interrupted);
	cJSON_AddItemToObject(root, "machine", machine_json(&r->machine));
	settings = cJSON_AddObjectToObject(root, "settings");
	for (size_t i = 0; i < r->nsettings; i++)
		add_setting(settings, &r->settings[i]);
	suites = cJSON_AddArrayToObject(root, "suites");
	for (int suite = 0; suite < ACE_BENCH_SUITES; suite++)
		if (r->suites & (1u << suite))
			cJSON_AddItemToArray(suites, cJSON_CreateString(ace_bench_suite_name(suite)));
	rows = cJSON_AddArrayToObject(root, "results");
	for (size_t i = 0; i < r->nrows; i++)
		cJSON_AddItemToArray(rows, row_json(&r->rows[i]));
	summaries = cJSON_AddArrayToObject(root, "summaries");
	for (size_t i = 0; i < r->nseries; i++)
		cJSON_AddItemToArray(summaries, summary_json(&r->series[i]));
	targets = cJSON_AddObjectToObject(root, "targets");
	cJSON_AddNumberToObject(targets, "judged", (double)ace_bench_report_judged(r));
	cJSON_AddNumberToObject(targets, "missed", (double)ace_bench_report_missed(r));

	/*
	 * NOTE: cJSON's Add functions drop an item silently when memory runs
	 * out, so only a failure of the final print is reported.
	 */
	text = cJSON_Print(root);
	cJSON_Delete(root);
	if (text == NULL)
		return -1;
	rc = ace_buf_puts(out, text) | ace_buf_putc(out, '\n');
	free(text);
	return rc ? -1 : 0;
}
