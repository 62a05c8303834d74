/* A circuit breaker: stops calls to a failing server and probes it after a cool-down. */
#ifndef ACE_BREAKER_H
#define ACE_BREAKER_H

#include <stdbool.h>

/*
 * States and transitions:
 *
 *   closed    --(failures consecutive failures)-->   open
 *   open      --(cooldown seconds passed, a call)--> half-open, that call is the probe
 *   half-open --(the probe succeeds)-->              closed
 *   half-open --(the probe fails)-->                 open, for another cooldown
 *
 * While open, and while a probe is out in half-open, calls are denied
 * without waiting.  The breaker keeps no clock: every function takes the
 * current time (seconds of a monotonic clock), which lets tests drive it.
 * It is not thread-safe: the owner serializes calls.
 */
enum ace_breaker_state {
	ACE_BREAKER_CLOSED,
	ACE_BREAKER_OPEN,
	ACE_BREAKER_HALF_OPEN,
};

struct ace_breaker;

/*
 * Creates a closed breaker that opens after `failures` consecutive failures
 * (at least 1) and probes after `cooldown` seconds.  Returns NULL when
 * memory runs out or the settings are out of range.
 */
struct ace_breaker *ace_breaker_new(int failures, double cooldown);

void ace_breaker_free(struct ace_breaker *b);

/*
 * Returns whether a call may go to the server now.  In the open state, the
 * first call after the cool-down moves the breaker to half-open and is
 * allowed as the probe, and *probe is set for it.  Never blocks.
 */
bool ace_breaker_allow(struct ace_breaker *b, double now, bool *probe);

/* Records a successful call: resets the count, and closes a half-open breaker. */
void ace_breaker_success(struct ace_breaker *b, double now);

/* Records a failed or timed-out call: may open the breaker. */
void ace_breaker_failure(struct ace_breaker *b, double now);

/*
 * Gives back a probe that ended with neither success nor failure (the caller
 * made no call), so that the next call becomes the probe.
 */
void ace_breaker_abandon(struct ace_breaker *b);

int ace_breaker_state(const struct ace_breaker *b);

/* Consecutive failures counted since the last success. */
int ace_breaker_failures(const struct ace_breaker *b);

/* Seconds until an open breaker lets a probe through; 0 in other states. */
double ace_breaker_retry_in(const struct ace_breaker *b, double now);

/* "closed", "open" or "half-open". */
const char *ace_breaker_state_name(int state);

#endif
