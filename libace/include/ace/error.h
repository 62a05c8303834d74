/* Status codes and the error buffer that every failing libace call fills. */
#ifndef ACE_ERROR_H
#define ACE_ERROR_H

/*
 * Every libace function that can fail returns one of these (ACE_OK is 0,
 * failures are negative) and, when given a struct ace_error, writes a
 * message into it.  Retryable and permanent failures are distinct codes so
 * that callers can decide to back off or give up without parsing text.
 */
enum ace_status {
	ACE_OK = 0,
	ACE_ERR_INVALID = -1,	/* bad input, option or configuration: permanent */
	ACE_ERR_RETRY = -2,	/* connection lost or refused, server starting: try again later */
	ACE_ERR_DATA = -3,	/* the server rejected these rows: permanent for them */
	ACE_ERR_TIMEOUT = -4,	/* a bounded wait ran out */
	ACE_ERR_SYSTEM = -5,	/* out of memory, I/O, a system call failed */
	ACE_ERR_SERVER = -6,	/* the server rejected the statement itself (schema, permissions) */
	ACE_ERR_NOT_FOUND = -7,	/* a named object does not exist */
	ACE_ERR_CONFLICT = -8,	/* the state changed under the caller (drift, lock, version) */
};

#define ACE_ERROR_MAX 512

struct ace_error {
	int code;
	char message[ACE_ERROR_MAX];
};

/*
 * Fills err (when not NULL) with code and a printf-style message, and returns
 * code so that callers can write "return ace_error_set(err, ...)".
 */
int ace_error_set(struct ace_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes err's message with a printf-style context, keeping its code. */
int ace_error_prefix(struct ace_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Returns a short English name for a status code, such as "retryable". */
const char *ace_status_name(int code);

#endif
