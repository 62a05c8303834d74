/* The circuit breaker's state machine, with time passed in by the caller. */
#include <stdlib.h>

#include "ace/breaker.h"

struct ace_breaker {
	int state;
	int threshold;		/* consecutive failures that open a closed breaker */
	double cooldown;	/* seconds an open breaker denies calls */
	int failures;		/* consecutive failures since the last success */
	double opened_at;
	bool probe_out;		/* half-open: the probe call has not reported yet */
};

struct ace_breaker *
ace_breaker_new(int failures, double cooldown)
{
	struct ace_breaker *b;

	if (failures < 1 || cooldown < 0)
		return NULL;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	b->state = ACE_BREAKER_CLOSED;
	b->threshold = failures;
	b->cooldown = cooldown;
	return b;
}

void
ace_breaker_free(struct ace_breaker *b)
{
	free(b);
}

bool
ace_breaker_allow(struct ace_breaker *b, double now, bool *probe)
{
	*probe = false;
	switch (b->state) {
	case ACE_BREAKER_CLOSED:
		return true;
	case ACE_BREAKER_OPEN:
		if (now - b->opened_at < b->cooldown)
			return false;
		b->state = ACE_BREAKER_HALF_OPEN;
		b->probe_out = true;
		*probe = true;
		return true;
	case ACE_BREAKER_HALF_OPEN:
		if (b->probe_out)
			return false;
		b->probe_out = true;
		*probe = true;
		return true;
	}
	return false;
}

void
ace_breaker_success(struct ace_breaker *b, double now)
{
	(void)now;
	b->failures = 0;
	b->probe_out = false;
	b->state = ACE_BREAKER_CLOSED;
}

void
ace_breaker_failure(struct ace_breaker *b, double now)
{
	b->failures++;
	if (b->state == ACE_BREAKER_HALF_OPEN ||
	    (b->state == ACE_BREAKER_CLOSED && b->failures >= b->threshold)) {
		b->state = ACE_BREAKER_OPEN;
		b->opened_at = now;
		b->probe_out = false;
	}
}

void
ace_breaker_abandon(struct ace_breaker *b)
{
	b->probe_out = false;
}

int
ace_breaker_state(const struct ace_breaker *b)
{
	return b->state;
}

int
ace_breaker_failures(const struct ace_breaker *b)
{
	return b->failures;
}

double
ace_breaker_retry_in(const struct ace_breaker *b, double now)
{
	double left;

	if (b->state != ACE_BREAKER_OPEN)
		return 0;
	left = b->opened_at + b->cooldown - now;
	return left > 0 ? left : 0;
}

const char *
ace_breaker_state_name(int state)
{
	switch (state) {
	case ACE_BREAKER_CLOSED: return "closed";
	case ACE_BREAKER_OPEN: return "open";
	case ACE_BREAKER_HALF_OPEN: return "half-open";
	}
	return "unknown";
}
