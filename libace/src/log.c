/* Log lines in logfmt or JSON, written whole under a lock. */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "ace/buf.h"
#include "ace/log.h"

static struct {
	const char *program;
	int level;
	int format;
	FILE *sink;
	pthread_mutex_t lock;
} logger = { "ace", ACE_LOG_INFO, ACE_LOG_LOGFMT, NULL, PTHREAD_MUTEX_INITIALIZER };

static const char *level_names[] = {
	[ACE_LOG_ERROR] = "error",
	[ACE_LOG_WARNING] = "warning",
	[ACE_LOG_NOTICE] = "notice",
	[ACE_LOG_INFO] = "info",
	[ACE_LOG_DEBUG] = "debug",
};

void
ace_log_setup(const char *program, int level, int format, FILE *sink)
{
	logger.program = program;
	logger.level = level;
	logger.format = format;
	logger.sink = sink;
}

bool
ace_log_enabled(int level)
{
	return logger.sink != NULL && level <= logger.level;
}

const char *
ace_log_level_name(int level)
{
	if (level < ACE_LOG_ERROR || level > ACE_LOG_DEBUG)
		return "unknown";
	return level_names[level];
}

int
ace_log_level_parse(const char *name, int *level)
{
	for (int l = ACE_LOG_ERROR; l <= ACE_LOG_DEBUG; l++) {
		if (strcasecmp(name, level_names[l]) == 0) {
			*level = l;
			return 0;
		}
	}
	if (strcasecmp(name, "warn") == 0) {
		*level = ACE_LOG_WARNING;
		return 0;
	}
	return -1;
}

int
ace_log_format_parse(const char *name, int *format)
{
	if (strcmp(name, "logfmt") == 0)
		*format = ACE_LOG_LOGFMT;
	else if (strcmp(name, "json") == 0)
		*format = ACE_LOG_JSON;
	else
		return -1;
	return 0;
}

const char *
ace_log_int(char *buf, size_t len, long long value)
{
	snprintf(buf, len, "%lld", value);
	return buf;
}

const char *
ace_log_double(char *buf, size_t len, double value, int decimals)
{
	snprintf(buf, len, "%.*f", decimals, value);
	return buf;
}

/* Appends s as a JSON string body (without quotes). */
static void
put_json_escaped(struct ace_buf *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			ace_buf_putc(out, '\\');
			ace_buf_putc(out, (char)c);
		} else if (c == '\n') {
			ace_buf_puts(out, "\\n");
		} else if (c == '\t') {
			ace_buf_puts(out, "\\t");
		} else if (c < 0x20 || c == 0x7f) {
			ace_buf_printf(out, "\\u%04x", c);
		} else {
			ace_buf_putc(out, (char)c);
		}
	}
}

/* Appends a logfmt value, quoted when it is empty or contains a space, '=' or '"'. */
static void
put_logfmt_value(struct ace_buf *out, const char *s)
{
	bool quote = *s == '\0' || strpbrk(s, " =\"\t\n\r\\") != NULL;

	if (!quote) {
		ace_buf_puts(out, s);
		return;
	}
	ace_buf_putc(out, '"');
	put_json_escaped(out, s);
	ace_buf_putc(out, '"');
}

static void
put_field(struct ace_buf *out, const char *key, const char *value, bool first)
{
	if (value == NULL)
		value = "";
	if (logger.format == ACE_LOG_JSON) {
		ace_buf_puts(out, first ? "{\"" : ",\"");
		put_json_escaped(out, key);
		ace_buf_puts(out, "\":\"");
		put_json_escaped(out, value);
		ace_buf_putc(out, '"');
	} else {
		if (!first)
			ace_buf_putc(out, ' ');
		ace_buf_puts(out, key);
		ace_buf_putc(out, '=');
		put_logfmt_value(out, value);
	}
}

void
ace_log(int level, const char *msg, ...)
{
	struct ace_buf line = ACE_BUF_INIT;
	struct timeval tv;
	struct tm tm;
	char stamp[80];
	const char *key;
	va_list ap;

	if (!ace_log_enabled(level))
		return;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));

	put_field(&line, "ts", stamp, true);
	put_field(&line, "level", ace_log_level_name(level), false);
	put_field(&line, "prog", logger.program, false);
	put_field(&line, "msg", msg, false);
	va_start(ap, msg);
	while ((key = va_arg(ap, const char *)) != NULL)
		put_field(&line, key, va_arg(ap, const char *), false);
	va_end(ap);
	if (logger.format == ACE_LOG_JSON)
		ace_buf_putc(&line, '}');
	ace_buf_putc(&line, '\n');

	if (line.data != NULL) {
		pthread_mutex_lock(&logger.lock);
		fwrite(line.data, 1, line.len, logger.sink);
		fflush(logger.sink);
		pthread_mutex_unlock(&logger.lock);
	}
	ace_buf_release(&line);
}

/* Appends the query string, replacing the value of any password parameter. */
static void
redact_query(struct ace_buf *out, const char *query)
{
	while (*query) {
		size_t n = strcspn(query, "&");

		if (strncmp(query, "password=", 9) == 0) {
			ace_buf_puts(out, "password=***");
		} else {
			ace_buf_append(out, query, n);
		}
		query += n;
		if (*query == '&') {
			ace_buf_putc(out, '&');
			query++;
		}
	}
}

static void
redact_uri(const char *url, struct ace_buf *out)
{
	const char *auth = strstr(url, "://") + 3;
	const char *slash = auth + strcspn(auth, "/");
	const char *at = NULL, *colon = NULL, *query;

	/* Like libpq, take the last '@' before the path: a password may hold '?' or '#'. */
	for (const char *p = auth; p < slash; p++)
		if (*p == '@')
			at = p;
	if (at != NULL)
		colon = memchr(auth, ':', (size_t)(at - auth));
	query = strchr(at ? at : auth, '?');
	if (query == NULL)
		query = url + strlen(url);
	if (colon != NULL) {
		ace_buf_append(out, url, (size_t)(colon + 1 - url));
		ace_buf_puts(out, "***");
		ace_buf_append(out, at, (size_t)(query - at));
	} else {
		ace_buf_append(out, url, (size_t)(query - url));
	}
	if (*query == '?') {
		ace_buf_putc(out, '?');
		redact_query(out, query + 1);
	}
}

/* Returns whether s starts with a URI scheme and "://", as libpq and Redis URLs do. */
static bool
is_uri(const char *s)
{
	const char *p = s;

	if (!isalpha((unsigned char)*p))
		return false;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	return strncmp(p, "://", 3) == 0;
}

static void
redact_keywords(const char *conninfo, struct ace_buf *out)
{
	const char *p = conninfo;

	while (*p) {
		const char *kw = strstr(p, "password");
		const char *q;

		if (kw == NULL) {
			ace_buf_puts(out, p);
			return;
		}
		q = kw + 8;
		if (kw != conninfo && kw[-1] != ' ' && kw[-1] != '\t') {
			ace_buf_append(out, p, (size_t)(q - p));
			p = q;
			continue;
		}
		while (*q == ' ')
			q++;
		if (*q != '=') {
			ace_buf_append(out, p, (size_t)(q - p));
			p = q;
			continue;
		}
		q++;
		while (*q == ' ')
			q++;
		ace_buf_append(out, p, (size_t)(q - p));
		ace_buf_puts(out, "***");
		if (*q == '\'') {
			for (q++; *q && *q != '\''; q++)
				if (*q == '\\' && q[1])
					q++;
			if (*q)
				q++;
		} else {
			while (*q && *q != ' ' && *q != '\t')
				q++;
		}
		p = q;
	}
}

void
ace_redact_url(const char *url, char *out, size_t len)
{
	struct ace_buf redacted = ACE_BUF_INIT;

	if (len == 0)
		return;
	out[0] = '\0';
	if (url == NULL)
		return;
	if (is_uri(url))
		redact_uri(url, &redacted);
	else
		redact_keywords(url, &redacted);
	if (redacted.data != NULL)
		snprintf(out, len, "%s", redacted.data);
	ace_buf_release(&redacted);
}
