/* A line reader over a file descriptor with a maximum line length and a timeout. */
#ifndef ACE_LINES_H
#define ACE_LINES_H

#include <stddef.h>
#include <stdint.h>

enum ace_lines_result {
	ACE_LINES_OK,		/* a line is returned */
	ACE_LINES_TOO_LONG,	/* a line longer than the maximum was skipped whole */
	ACE_LINES_EOF,
	ACE_LINES_TIMEOUT,	/* no complete line arrived within the timeout */
	ACE_LINES_INTERRUPTED,	/* a signal arrived while waiting */
	ACE_LINES_ERROR,	/* read(2) failed; errno is set */
};

struct ace_lines;

/* Reads from fd, which the caller keeps owning.  Returns NULL when memory runs out. */
struct ace_lines *ace_lines_new(int fd, size_t max_line);

/*
 * Returns the next line without its "\n" (and without a "\r" before it),
 * NUL-terminated, valid until the next call.  A last line without a newline
 * is returned at end of file.  Waits at most timeout seconds for input when
 * timeout >= 0, forever when negative.  ACE_LINES_TOO_LONG sets *len to the
 * skipped line's length.
 */
int ace_lines_next(struct ace_lines *r, double timeout, const char **line, size_t *len);

/*
 * Makes every wait for input also watch wake_fd: when it is readable (a
 * signal handler wrote to a pipe, say), ace_lines_next() returns
 * ACE_LINES_INTERRUPTED instead of waiting.  Nothing is read from wake_fd,
 * so a wake-up is never lost between a check and a wait.
 */
void ace_lines_set_wake_fd(struct ace_lines *r, int wake_fd);

/* The 1-based number of the line last returned (or skipped). */
uint64_t ace_lines_number(const struct ace_lines *r);

void ace_lines_free(struct ace_lines *r);

#endif
