/* Structured logging: levels, logfmt or JSON lines, and password masking. */
#ifndef ACE_LOG_H
#define ACE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Levels take syslog's numbers, so a smaller number is more severe. */
enum ace_log_level {
	ACE_LOG_ERROR = 3,
	ACE_LOG_WARNING = 4,
	ACE_LOG_NOTICE = 5,
	ACE_LOG_INFO = 6,
	ACE_LOG_DEBUG = 7,
};

enum ace_log_format {
	ACE_LOG_LOGFMT,
	ACE_LOG_JSON,
};

/*
 * Sets the program name, the most verbose level written, the format and the
 * stream.  libace writes log lines only after a binary has called this with a
 * non-NULL sink; until then ace_log() does nothing.  Not thread-safe: call it
 * before starting threads.
 */
void ace_log_setup(const char *program, int level, int format, FILE *sink);

/* Returns whether a line at this level would be written. */
bool ace_log_enabled(int level);

/*
 * Writes one line: time, level, program, msg, then key/value pairs of
 * strings, ended by a NULL key.  A NULL value is written as an empty string.
 * Thread-safe: each line is written whole.  If the sink fails, the failure is
 * not reported, because logging has no one left to tell.
 */
void ace_log(int level, const char *msg, ...);

/* Formats an integer into buf (of size len) and returns buf. */
const char *ace_log_int(char *buf, size_t len, long long value);

/* Formats a number with the given decimals into buf and returns buf. */
const char *ace_log_double(char *buf, size_t len, double value, int decimals);

/*
 * Integer and number arguments for ace_log().  The compound literal lives
 * until the end of the enclosing block, which covers the ace_log() call.
 */
#define ACE_LOG_INT(v) ace_log_int((char[24]){0}, 24, (long long)(v))
#define ACE_LOG_NUM(v, d) ace_log_double((char[40]){0}, 40, (double)(v), (d))

/* Parses "error", "warning", "notice", "info" or "debug"; returns 0 or -1. */
int ace_log_level_parse(const char *name, int *level);

/* Parses "logfmt" or "json"; returns 0 or -1. */
int ace_log_format_parse(const char *name, int *format);

const char *ace_log_level_name(int level);

/*
 * Copies a libpq connection string or URI (or a redis:// URL) into out with
 * any password replaced by "***".  Handles "password=..." key/value pairs
 * (quoted or not) and the "user:password@" part of URIs.  Always
 * NUL-terminates out when len > 0, truncating if needed.
 */
void ace_redact_url(const char *url, char *out, size_t len);

#endif
