/* Filling and naming libace errors. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ace/error.h"

int
ace_error_set(struct ace_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return code;
}

int
ace_error_prefix(struct ace_error *err, const char *fmt, ...)
{
	char prefix[ACE_ERROR_MAX];
	char old[ACE_ERROR_MAX];
	va_list ap;

	if (err == NULL)
		return ACE_ERR_SYSTEM;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->message, sizeof(old));
	snprintf(err->message, sizeof(err->message), "%.200s: %.300s", prefix, old);
	return err->code;
}

const char *
ace_status_name(int code)
{
	switch (code) {
	case ACE_OK: return "ok";
	case ACE_ERR_INVALID: return "invalid";
	case ACE_ERR_RETRY: return "retryable";
	case ACE_ERR_DATA: return "data rejected";
	case ACE_ERR_TIMEOUT: return "timed out";
	case ACE_ERR_SYSTEM: return "system error";
	case ACE_ERR_SERVER: return "server error";
	case ACE_ERR_NOT_FOUND: return "not found";
	case ACE_ERR_CONFLICT: return "conflict";
	}
	return "unknown";
}
