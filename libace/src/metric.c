/* Turns one NDJSON line into a validated metric and a COPY text row. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "ace/metric.h"

enum field_kind {
	F_METRIC_ID,
	F_RECORDED_AT,
	F_AGENT_ID,
	F_TASK_ID,
	F_TASK_TYPE,
	F_STAGE,
	F_NUMBER,
	F_BASELINE_DELTA,
};

enum number_rule {
	RATE,		/* real in 0..1 */
	NONNEG_REAL,	/* real >= 0 */
	NONNEG_INT,	/* integer in 0..2^31-1 */
};

struct field {
	const char *name;
	int kind;
	int number;	/* enum ace_metric_number, for F_NUMBER */
	int rule;	/* enum number_rule, for F_NUMBER */
};

static const struct field fields[] = {
	{ "metric_id", F_METRIC_ID, 0, 0 },
	{ "recorded_at", F_RECORDED_AT, 0, 0 },
	{ "agent_id", F_AGENT_ID, 0, 0 },
	{ "task_id", F_TASK_ID, 0, 0 },
	{ "task_type", F_TASK_TYPE, 0, 0 },
	{ "stage", F_STAGE, 0, 0 },
	{ "stage_success_rate", F_NUMBER, ACE_M_SUCCESS_RATE, RATE },
	{ "stage_error_rate", F_NUMBER, ACE_M_ERROR_RATE, RATE },
	{ "stage_duration_ms", F_NUMBER, ACE_M_DURATION_MS, NONNEG_INT },
	{ "stage_action_count", F_NUMBER, ACE_M_ACTION_COUNT, NONNEG_INT },
	{ "overall_progress_velocity", F_NUMBER, ACE_M_VELOCITY, NONNEG_REAL },
	{ "error_accumulation_rate", F_NUMBER, ACE_M_ERROR_ACCUMULATION, NONNEG_REAL },
	{ "context_staleness_score", F_NUMBER, ACE_M_STALENESS, RATE },
	{ "intervention_effectiveness", F_NUMBER, ACE_M_INTERVENTION, RATE },
	{ "baseline_delta", F_BASELINE_DELTA, 0, 0 },
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static const char *stage_names[] = {
	[ACE_STAGE_PLANNING] = "planning",
	[ACE_STAGE_EXECUTION] = "execution",
	[ACE_STAGE_REFLECTION] = "reflection",
	[ACE_STAGE_VERIFICATION] = "verification",
};

const char *
ace_stage_name(int stage)
{
	if (stage < 0 || stage > ACE_STAGE_VERIFICATION)
		return "unknown";
	return stage_names[stage];
}

static int
fail(struct ace_metric_error *e, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
fail(struct ace_metric_error *e, const char *field, const char *fmt, ...)
{
	va_list ap;

	snprintf(e->field, sizeof(e->field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(e->reason, sizeof(e->reason), fmt, ap);
	va_end(ap);
	return -1;
}

int64_t
ace_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

long
ace_utf8_invalid_at(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned c = p[i];
		size_t n;
		unsigned cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			n = 1;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			n = 2;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return (long)i;
		}
		for (size_t k = 1; k <= n; k++) {
			if (i + k >= len || (p[i + k] & 0xC0) != 0x80)
				return (long)i;
			cp = (cp << 6) | (p[i + k] & 0x3F);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return (long)i;
		i += n + 1;
	}
	return -1;
}

/* Counts code points in valid UTF-8 and reports whether any is a control character. */
static size_t
utf8_chars(const char *s, bool *has_control)
{
	size_t n = 0;

	*has_control = false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p & 0xC0) != 0x80)
			n++;
		if (*p < 0x20 || *p == 0x7F)
			*has_control = true;
		/* C1 controls U+0080..U+009F are encoded as C2 80..C2 9F. */
		if (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F)
			*has_control = true;
	}
	return n;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

static int
digits(const char **p, int n, int *value)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*value = v;
	return 0;
}

static int
days_in_month(int y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

int
ace_parse_rfc3339(const char *s, int64_t *us, const char **why)
{
	const char *p = s;
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	int64_t frac = 0, t;

	*why = "expected an RFC 3339 timestamp such as 2025-08-01T16:20:44Z";
	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
	    digits(&p, 2, &d))
		return -1;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return -1;
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
	    digits(&p, 2, &sec))
		return -1;
	if (*p == '.') {
		int n = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, n++)
			if (n < 6)
				frac = frac * 10 + (*p - '0');
		if (n == 0)
			return -1;
		for (; n < 6; n++)
			frac *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om))
			return -1;
	} else {
		*why = "timestamp has no UTC offset (add Z or +HH:MM)";
		return -1;
	}
	if (*p != '\0')
		return -1;
	*why = "timestamp has a field out of range";
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
	    h > 23 || mi > 59 || sec > 60 || oh > 23 || om > 59)
		return -1;

	/* A leap second (60) folds into the next second, as PostgreSQL does. */
	t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	t -= sign * (oh * 3600 + om * 60);
	*us = t * 1000000 + frac;
	return 0;
}

void
ace_format_timestamp(int64_t us, char *out)
{
	int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
	int64_t frac = us - secs * 1000000;
	int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	int64_t rem = secs - days * 86400;
	int y, m, d;

	civil_from_days(days, &y, &m, &d);
	snprintf(out, 64, "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", y, m, d,
	    (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), (int)frac);
}

/*
 * Fills buf whole from getrandom(2), which may return fewer bytes when a
 * signal interrupts it.  Without the call (ENOSYS, before Linux 3.17) the
 * bytes come from the clock and rand(), which is enough for unique ids in
 * practice but not unpredictable.
 */
static void
fill_random(unsigned char *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t got = getrandom(buf + done, len - done, 0);

		if (got > 0) {
			done += (size_t)got;
		} else if (got < 0 && errno != EINTR) {
			for (; done < len; done++)
				buf[done] = (unsigned char)(ace_now_us() >> (done % 8) * 8) ^ (unsigned char)rand();
		}
	}
}

/* Random bytes from getrandom(2), fetched 4 KiB at a time per thread. */
static void
random_bytes(unsigned char *out, size_t n)
{
	static _Thread_local unsigned char pool[4096];
	static _Thread_local size_t left;

	while (n > 0) {
		size_t take;

		if (left == 0) {
			fill_random(pool, sizeof(pool));
			left = sizeof(pool);
		}
		take = n < left ? n : left;
		memcpy(out, pool + sizeof(pool) - left, take);
		left -= take;
		out += take;
		n -= take;
	}
}

void
ace_uuid_v7(int64_t now_us, char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	uint64_t ms = (uint64_t)(now_us / 1000);
	int j = 0;

	random_bytes(b + 6, 10);
	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)(ms >> (40 - 8 * i));
	b[6] = (unsigned char)(0x70 | (b[6] & 0x0F));
	b[8] = (unsigned char)(0x80 | (b[8] & 0x3F));
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hex[b[i] >> 4];
		out[j++] = hex[b[i] & 0x0F];
	}
	out[j] = '\0';
}

static int
parse_uuid(const char *s, char *out)
{
	size_t i;

	if (strlen(s) != 36)
		return -1;
	for (i = 0; i < 36; i++) {
		char c = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return -1;
		} else if (c >= '0' && c <= '9') {
		} else if (c >= 'a' && c <= 'f') {
		} else if (c >= 'A' && c <= 'F') {
			c = (char)(c - 'A' + 'a');
		} else {
			return -1;
		}
		out[i] = c;
	}
	out[36] = '\0';
	return 0;
}

static const char *
json_type_name(const cJSON *item)
{
	if (cJSON_IsString(item))
		return "a string";
	if (cJSON_IsNumber(item))
		return "a number";
	if (cJSON_IsBool(item))
		return "a boolean";
	if (cJSON_IsNull(item))
		return "null";
	if (cJSON_IsArray(item))
		return "an array";
	if (cJSON_IsObject(item))
		return "an object";
	return "invalid";
}

static int
check_id(const cJSON *item, const char *name, size_t max_chars, const char **out,
    struct ace_metric_error *e)
{
	bool control;
	size_t n;

	if (!cJSON_IsString(item))
		return fail(e, name, "expected a string, found %s", json_type_name(item));
	n = utf8_chars(item->valuestring, &control);
	if (n == 0)
		return fail(e, name, "must not be empty");
	if (n > max_chars)
		return fail(e, name, "is %zu characters long, more than the maximum of %zu", n, max_chars);
	if (control)
		return fail(e, name, "contains a control character");
	*out = item->valuestring;
	return 0;
}

static int
check_number(const cJSON *item, const struct field *f, struct ace_metric *m,
    struct ace_metric_error *e)
{
	double v;

	if (cJSON_IsNull(item))
		return 0;
	if (!cJSON_IsNumber(item))
		return fail(e, f->name, "expected a number, found %s", json_type_name(item));
	v = item->valuedouble;
	if (!isfinite(v))
		return fail(e, f->name, "is not a finite number");
	switch (f->rule) {
	case RATE:
		if (v < 0 || v > 1)
			return fail(e, f->name, "%g is out of range (0 to 1)", v);
		break;
	case NONNEG_REAL:
		if (v < 0)
			return fail(e, f->name, "%g is negative (must be 0 or more)", v);
		if (v > FLT_MAX)
			return fail(e, f->name, "%g is out of range for a real (float4) column", v);
		break;
	case NONNEG_INT:
		if (v != floor(v))
			return fail(e, f->name, "%.17g is not an integer", v);
		if (v < 0 || v > 2147483647.0)
			return fail(e, f->name, "%.15g is out of range (0 to 2147483647)", v);
		break;
	}
	m->numbers[f->number] = v;
	m->present |= 1u << f->number;
	return 0;
}

static int
check_recorded_at(const cJSON *item, struct ace_metric *m, struct ace_metric_error *e)
{
	const char *why;

	if (cJSON_IsString(item)) {
		if (ace_parse_rfc3339(item->valuestring, &m->recorded_at_us, &why) < 0)
			return fail(e, "recorded_at", "%s, found \"%.64s\"", why, item->valuestring);
		return 0;
	}
	if (cJSON_IsNumber(item)) {
		double v = item->valuedouble;

		/* 253402300800 is 10000-01-01: a bound that keeps a year of four digits. */
		if (!isfinite(v) || v < 0 || v >= 253402300800.0)
			return fail(e, "recorded_at", "%.15g is out of range for epoch seconds", v);
		m->recorded_at_us = llround(v * 1e6);
		return 0;
	}
	return fail(e, "recorded_at", "expected an RFC 3339 string or epoch seconds, found %s",
	    json_type_name(item));
}

static int
check_baseline_delta(const cJSON *item, struct ace_metric *m, struct ace_metric_error *e)
{
	const cJSON *child;

	if (cJSON_IsNull(item))
		return 0;
	if (!cJSON_IsObject(item))
		return fail(e, "baseline_delta", "expected an object, found %s", json_type_name(item));
	cJSON_ArrayForEach(child, item) {
		if (!cJSON_IsNumber(child) && !cJSON_IsNull(child))
			return fail(e, "baseline_delta", "value of '%.64s' must be a number, found %s",
			    child->string, json_type_name(child));
	}
	m->baseline_delta = cJSON_PrintUnformatted(item);
	if (m->baseline_delta == NULL)
		return fail(e, "baseline_delta", "out of memory");
	return 0;
}

static const struct field *
find_field(const char *name)
{
	for (size_t i = 0; i < NFIELDS; i++)
		if (fields[i].name[0] == name[0] && strcmp(fields[i].name, name) == 0)
			return &fields[i];
	return NULL;
}

static int
check_field(const struct field *f, const cJSON *item, struct ace_metric *m,
    struct ace_metric_error *e)
{
	switch (f->kind) {
	case F_METRIC_ID:
		if (cJSON_IsNull(item))
			return 0;
		if (!cJSON_IsString(item))
			return fail(e, f->name, "expected a UUID string, found %s", json_type_name(item));
		if (parse_uuid(item->valuestring, m->metric_id) < 0)
			return fail(e, f->name, "\"%.64s\" is not a UUID (expected 8-4-4-4-12 hex digits)",
			    item->valuestring);
		return 0;
	case F_RECORDED_AT:
		return check_recorded_at(item, m, e);
	case F_AGENT_ID:
		return check_id(item, f->name, ACE_ID_MAX_CHARS, &m->agent_id, e);
	case F_TASK_ID:
		return check_id(item, f->name, ACE_ID_MAX_CHARS, &m->task_id, e);
	case F_TASK_TYPE:
		if (cJSON_IsNull(item))
			return 0;
		return check_id(item, f->name, ACE_TASK_TYPE_MAX_CHARS, &m->task_type, e);
	case F_STAGE:
		if (!cJSON_IsString(item))
			return fail(e, f->name, "expected a string, found %s", json_type_name(item));
		for (int s = 0; s <= ACE_STAGE_VERIFICATION; s++) {
			if (strcmp(item->valuestring, stage_names[s]) == 0) {
				m->stage = s;
				return 0;
			}
		}
		return fail(e, f->name,
		    "\"%.64s\" is not a stage (expected planning, execution, reflection or verification)",
		    item->valuestring);
	case F_NUMBER:
		return check_number(item, f, m, e);
	case F_BASELINE_DELTA:
		return check_baseline_delta(item, m, e);
	}
	return 0;
}

/* Finds a JSON "\u0000" escape that is not itself escaped; PostgreSQL cannot store NUL. */
static bool
has_nul_escape(const char *s, size_t len)
{
	const char *p = s;

	while ((p = memmem(p, len - (size_t)(p - s), "\\u0000", 6)) != NULL) {
		size_t backslashes = 0;

		for (const char *q = p; q > s && q[-1] == '\\'; q--)
			backslashes++;
		if (backslashes % 2 == 0)
			return true;
		p += 6;
	}
	return false;
}

/* Checks the raw bytes before parsing: NUL bytes, UTF-8, NUL escapes. */
static int
check_raw(const char *line, size_t len, struct ace_metric_error *e)
{
	const char *nul = memchr(line, '\0', len);
	long bad;

	if (nul != NULL)
		return fail(e, "", "contains a NUL byte at byte %zu", (size_t)(nul - line) + 1);
	bad = ace_utf8_invalid_at(line, len);
	if (bad >= 0)
		return fail(e, "", "invalid UTF-8 at byte %ld", bad + 1);
	if (has_nul_escape(line, len))
		return fail(e, "", "contains \\u0000, which PostgreSQL text and jsonb cannot store");
	return 0;
}

/*
 * Moves the members of an input "attributes" object up into the attributes
 * of the row.  A member whose name is a known field or is already taken by
 * a top-level field stays in a nested "attributes" object, so nothing is lost.
 */
static int
merge_attributes(cJSON *root, struct ace_metric_error *e)
{
	cJSON *given = cJSON_DetachItemFromObjectCaseSensitive(root, "attributes");
	cJSON *child, *next;

	if (given == NULL)
		return 0;
	if (!cJSON_IsObject(given)) {
		cJSON_Delete(given);
		return fail(e, "attributes", "expected an object, found %s", json_type_name(given));
	}
	for (child = given->child; child != NULL; child = next) {
		next = child->next;
		if (find_field(child->string) != NULL ||
		    cJSON_GetObjectItemCaseSensitive(root, child->string) != NULL)
			continue;
		cJSON_DetachItemViaPointer(given, child);
		cJSON_AddItemToObject(root, child->string, child);
	}
	if (given->child != NULL)
		cJSON_AddItemToObject(root, "attributes", given);
	else
		cJSON_Delete(given);
	return 0;
}

int
ace_metric_parse(const char *line, size_t len, int64_t now_us,
    struct ace_metric *m, struct ace_metric_error *e)
{
	unsigned seen = 0;
	const char *end = NULL;
	cJSON *root, *item, *next;

	memset(m, 0, sizeof(*m));
	if (len == 0)
		return fail(e, "", "empty line");
	if (check_raw(line, len, e) < 0)
		return -1;
	root = cJSON_ParseWithOpts(line, &end, true);
	if (root == NULL) {
		size_t at = end != NULL && end >= line ? (size_t)(end - line) + 1 : 1;

		return fail(e, "", at > len ? "invalid JSON: unexpected end of line" :
		    "invalid JSON near byte %zu", at);
	}
	if (!cJSON_IsObject(root)) {
		fail(e, "", "expected a JSON object, found %s", json_type_name(root));
		cJSON_Delete(root);
		return -1;
	}
	m->json = root;
	m->ids = cJSON_CreateArray();
	if (m->ids == NULL) {
		fail(e, "", "out of memory");
		goto fail;
	}
	m->recorded_at_us = now_us;

	/* Validate the known fields and take them out, so that the rest are attributes. */
	for (item = root->child; item != NULL; item = next) {
		const struct field *f = find_field(item->string);
		unsigned bit;

		next = item->next;
		if (f == NULL)
			continue;
		bit = 1u << (f - fields);
		if (seen & bit) {
			fail(e, f->name, "appears more than once");
			goto fail;
		}
		seen |= bit;
		if (check_field(f, item, m, e) < 0)
			goto fail;
		cJSON_DetachItemViaPointer(root, item);
		/* The id strings that m points into live in m->ids until release. */
		if ((f->kind == F_AGENT_ID || f->kind == F_TASK_ID || f->kind == F_TASK_TYPE) &&
		    cJSON_IsString(item))
			cJSON_AddItemToArray(m->ids, item);
		else
			cJSON_Delete(item);
	}

	if (m->agent_id == NULL) {
		fail(e, "agent_id", "required field is missing");
		goto fail;
	}
	if (m->task_id == NULL) {
		fail(e, "task_id", "required field is missing");
		goto fail;
	}
	if (!(seen & (1u << F_STAGE))) {
		fail(e, "stage", "required field is missing");
		goto fail;
	}
	if ((m->present & (1u << ACE_M_SUCCESS_RATE)) && (m->present & (1u << ACE_M_ERROR_RATE)) &&
	    m->numbers[ACE_M_SUCCESS_RATE] + m->numbers[ACE_M_ERROR_RATE] > 1 + ACE_RATE_SUM_TOLERANCE) {
		fail(e, "stage_error_rate", "stage_success_rate + stage_error_rate is %g, more than 1",
		    m->numbers[ACE_M_SUCCESS_RATE] + m->numbers[ACE_M_ERROR_RATE]);
		goto fail;
	}
	if (m->metric_id[0] == '\0') {
		ace_uuid_v7(now_us, m->metric_id);
		m->metric_id_generated = true;
	}
	if (merge_attributes(root, e) < 0)
		goto fail;

	/*
	 * TODO: cJSON keeps numbers as doubles, so an integer attribute beyond
	 * 2^53 loses digits here; keeping exact text needs a parser that keeps
	 * each number's source span.
	 */
	m->attributes = cJSON_PrintUnformatted(root);
	if (m->attributes == NULL) {
		fail(e, "", "out of memory");
		goto fail;
	}
	return 0;

fail:
	ace_metric_release(m);
	return -1;
}

void
ace_metric_release(struct ace_metric *m)
{
	cJSON_Delete(m->json);
	cJSON_Delete(m->ids);
	cJSON_free(m->baseline_delta);
	cJSON_free(m->attributes);
	m->json = NULL;
	m->ids = NULL;
	m->baseline_delta = NULL;
	m->attributes = NULL;
	m->agent_id = m->task_id = m->task_type = NULL;
}

/* Appends s escaped for COPY text format. */
static int
put_copy_text(struct ace_buf *row, const char *s)
{
	size_t n = strlen(s);
	const char *run = s;

	if (ace_buf_reserve(row, n + 8) < 0)
		return -1;
	for (; *s; s++) {
		const char *esc;

		switch (*s) {
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default: continue;
		}
		if (ace_buf_append(row, run, (size_t)(s - run)) < 0 ||
		    ace_buf_append(row, esc, 2) < 0)
			return -1;
		run = s + 1;
	}
	return ace_buf_append(row, run, (size_t)(s - run));
}

int
ace_metric_copy_row(const struct ace_metric *m, struct ace_buf *row)
{
	char stamp[64];
	int rc = 0;

	ace_format_timestamp(m->recorded_at_us, stamp);
	rc |= ace_buf_append(row, m->metric_id, 36);
	rc |= ace_buf_putc(row, '\t');
	rc |= ace_buf_puts(row, stamp);
	rc |= ace_buf_putc(row, '\t');
	rc |= put_copy_text(row, m->agent_id);
	rc |= ace_buf_putc(row, '\t');
	rc |= put_copy_text(row, m->task_id);
	rc |= ace_buf_putc(row, '\t');
	rc |= m->task_type ? put_copy_text(row, m->task_type) : ace_buf_puts(row, "\\N");
	rc |= ace_buf_putc(row, '\t');
	rc |= ace_buf_puts(row, stage_names[m->stage]);
	for (int i = 0; i < ACE_M_NUMBERS; i++) {
		rc |= ace_buf_putc(row, '\t');
		if (!(m->present & (1u << i)))
			rc |= ace_buf_puts(row, "\\N");
		else if (m->numbers[i] == floor(m->numbers[i]) && fabs(m->numbers[i]) < 1e15)
			rc |= ace_buf_printf(row, "%lld", (long long)m->numbers[i]);
		else
			/*
			 * The columns are real (float4): nine digits keep every
			 * float4 value, and a value too small for a normal float4
			 * is rounded to float first, because PostgreSQL rejects
			 * what would underflow to 0.
			 */
			rc |= ace_buf_printf(row, "%.9g", fabs(m->numbers[i]) < FLT_MIN ?
			    (double)(float)m->numbers[i] : m->numbers[i]);
	}
	rc |= ace_buf_putc(row, '\t');
	rc |= m->baseline_delta ? put_copy_text(row, m->baseline_delta) : ace_buf_puts(row, "\\N");
	rc |= ace_buf_putc(row, '\t');
	rc |= put_copy_text(row, m->attributes);
	rc |= ace_buf_putc(row, '\n');
	return rc ? -1 : 0;
}

int
ace_metric_line_to_row(const char *line, size_t len, int64_t now_us,
    struct ace_buf *row, struct ace_metric_error *e)
{
	struct ace_metric m;
	int rc;

	if (ace_metric_parse(line, len, now_us, &m, e) < 0)
		return -1;
	rc = ace_metric_copy_row(&m, row);
	ace_metric_release(&m);
	if (rc < 0)
		return fail(e, "", "out of memory");
	return 0;
}
