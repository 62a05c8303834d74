/* Writing the Prometheus text format: name checks, escaping, value formatting and replacing a file atomically. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ace/prom.h"

static bool
name_char(char c, bool first, bool colon)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
		return true;
	if (colon && c == ':')
		return true;
	return !first && c >= '0' && c <= '9';
}

bool
ace_prom_valid_metric_name(const char *name)
{
	if (name == NULL || *name == '\0')
		return false;
	for (const char *p = name; *p; p++)
		if (!name_char(*p, p == name, true))
			return false;
	return true;
}

bool
ace_prom_valid_label_name(const char *name)
{
	if (name == NULL || *name == '\0' || strncmp(name, "__", 2) == 0)
		return false;
	for (const char *p = name; *p; p++)
		if (!name_char(*p, p == name, false))
			return false;
	return true;
}

/* Appends text with a backslash before each of the characters in special, and newlines as \n. */
static int
escape(struct ace_buf *out, const char *text, const char *special)
{
	for (const char *p = text; *p; p++) {
		int rc;

		if (*p == '\n')
			rc = ace_buf_puts(out, "\\n");
		else if (strchr(special, *p) != NULL)
			rc = ace_buf_putc(out, '\\') | ace_buf_putc(out, *p);
		else
			rc = ace_buf_putc(out, *p);
		if (rc != 0)
			return -1;
	}
	return 0;
}

int
ace_prom_escape_help(struct ace_buf *out, const char *text)
{
	return escape(out, text, "\\");
}

int
ace_prom_escape_label_value(struct ace_buf *out, const char *value)
{
	return escape(out, value, "\\\"");
}

void
ace_prom_format_value(double value, char *out, size_t len)
{
	if (isnan(value)) {
		snprintf(out, len, "NaN");
		return;
	}
	if (isinf(value)) {
		snprintf(out, len, "%s", value > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (int digits = 15; digits <= 17; digits++) {
		snprintf(out, len, "%.*g", digits, value);
		if (strtod(out, NULL) == value)
			return;
	}
}

int
ace_prom_family(struct ace_buf *out, const char *name, const char *type, const char *help)
{
	if (!ace_prom_valid_metric_name(name))
		return -1;
	if (ace_buf_printf(out, "# HELP %s ", name) < 0 || ace_prom_escape_help(out, help) < 0)
		return -1;
	return ace_buf_printf(out, "\n# TYPE %s %s\n", name, type);
}

int
ace_prom_sample(struct ace_buf *out, const char *name, const char *const *labels, size_t nlabels,
    double value)
{
	char text[40];

	if (!ace_prom_valid_metric_name(name) || ace_buf_puts(out, name) < 0)
		return -1;
	for (size_t i = 0; i < nlabels; i++) {
		if (!ace_prom_valid_label_name(labels[2 * i]))
			return -1;
		if (ace_buf_printf(out, "%s%s=\"", i ? "," : "{", labels[2 * i]) < 0 ||
		    ace_prom_escape_label_value(out, labels[2 * i + 1]) < 0 || ace_buf_putc(out, '"') < 0)
			return -1;
	}
	ace_prom_format_value(value, text, sizeof(text));
	return ace_buf_printf(out, "%s %s\n", nlabels ? "}" : "", text);
}

/* Writes all len bytes to fd, retrying after short writes and signals. */
static int
write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int
ace_prom_write_file(const char *path, const char *data, size_t len, struct ace_error *err)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	int dir_len = slash ? (int)(slash - path + 1) : 0;
	char tmp[PATH_MAX];
	int fd, saved;

	if (*base == '\0')
		return ace_error_set(err, ACE_ERR_INVALID, "'%s' names a folder, not a file", path);
	if (snprintf(tmp, sizeof(tmp), "%.*s.%s.XXXXXX", dir_len, path, base) >= (int)sizeof(tmp))
		return ace_error_set(err, ACE_ERR_INVALID, "'%s': path too long", path);
	fd = mkstemp(tmp);
	if (fd < 0)
		return ace_error_set(err, ACE_ERR_SYSTEM, "cannot create a temporary file beside '%s': %s",
		    path, strerror(errno));
	if (write_all(fd, data, len) < 0 || fsync(fd) < 0 || fchmod(fd, 0644) < 0)
		goto failed;
	if (close(fd) < 0) {
		fd = -1;
		goto failed;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto failed;
	return ACE_OK;
failed:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return ace_error_set(err, ACE_ERR_SYSTEM, "cannot write '%s': %s", path, strerror(saved));
}
