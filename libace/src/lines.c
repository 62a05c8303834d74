/* Reading newline-separated records from a descriptor, bounded in length and time. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ace/lines.h"
#include "ace/pool.h"

#define READ_CHUNK (64 * 1024)

struct ace_lines {
	int fd;
	size_t max_line;
	char *buf;
	size_t cap;
	size_t start;		/* first byte not yet returned */
	size_t end;		/* one past the last byte read */
	uint64_t number;
	bool eof;
	bool skipping;		/* inside a too-long line, discarding until its newline */
	size_t skipped;
	int wake_fd;		/* readable means stop waiting; -1 for none */
};

struct ace_lines *
ace_lines_new(int fd, size_t max_line)
{
	struct ace_lines *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->fd = fd;
	r->wake_fd = -1;
	r->max_line = max_line;
	r->cap = READ_CHUNK * 2;
	r->buf = malloc(r->cap);
	if (r->buf == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

void
ace_lines_free(struct ace_lines *r)
{
	if (r == NULL)
		return;
	free(r->buf);
	free(r);
}

void
ace_lines_set_wake_fd(struct ace_lines *r, int wake_fd)
{
	r->wake_fd = wake_fd;
}

uint64_t
ace_lines_number(const struct ace_lines *r)
{
	return r->number;
}

/* Makes room for one more read: moves pending bytes to the front, then grows. */
static int
make_room(struct ace_lines *r)
{
	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	if (r->cap - r->end < READ_CHUNK) {
		size_t cap = r->cap * 2;
		char *grown = realloc(r->buf, cap);

		if (grown == NULL)
			return -1;
		r->buf = grown;
		r->cap = cap;
	}
	return 0;
}

/* Waits for input until the deadline (forever when negative) and reads once. */
static int
fill(struct ace_lines *r, double deadline)
{
	struct pollfd pfd[2] = {
		{ .fd = r->fd, .events = POLLIN },
		{ .fd = r->wake_fd, .events = POLLIN },
	};
	ssize_t n;
	int rc, ms = -1;

	if (deadline >= 0) {
		double left = deadline - ace_monotonic();

		ms = left <= 0 ? 0 : (int)(left * 1000 + 0.999);
	}
	rc = poll(pfd, r->wake_fd >= 0 ? 2 : 1, ms);
	if (rc < 0)
		return errno == EINTR ? ACE_LINES_INTERRUPTED : ACE_LINES_ERROR;
	if (r->wake_fd >= 0 && pfd[1].revents != 0)
		return ACE_LINES_INTERRUPTED;
	if (rc == 0)
		return ACE_LINES_TIMEOUT;
	if (make_room(r) < 0) {
		errno = ENOMEM;
		return ACE_LINES_ERROR;
	}
	n = read(r->fd, r->buf + r->end, r->cap - r->end - 1);
	if (n < 0)
		return errno == EINTR ? ACE_LINES_INTERRUPTED : ACE_LINES_ERROR;
	if (n == 0)
		r->eof = true;
	r->end += (size_t)n;
	return ACE_LINES_OK;
}

static int
emit(struct ace_lines *r, size_t len, size_t next, const char **line, size_t *out_len)
{
	char *p = r->buf + r->start;

	if (len > 0 && p[len - 1] == '\r')
		len--;
	p[len] = '\0';
	*line = p;
	*out_len = len;
	r->start = next;
	r->number++;
	return ACE_LINES_OK;
}

int
ace_lines_next(struct ace_lines *r, double timeout, const char **line, size_t *len)
{
	double deadline = timeout >= 0 ? ace_monotonic() + timeout : -1;
	size_t scanned = 0;

	for (;;) {
		size_t avail = r->end - r->start;
		char *nl = memchr(r->buf + r->start + scanned, '\n', avail - scanned);
		int rc;

		if (r->skipping) {
			if (nl != NULL) {
				r->skipped += (size_t)(nl - (r->buf + r->start));
				r->start = (size_t)(nl - r->buf) + 1;
				r->skipping = false;
				r->number++;
				*len = r->skipped;
				return ACE_LINES_TOO_LONG;
			}
			r->skipped += avail;
			r->start = r->end = 0;
			scanned = 0;
			if (r->eof) {
				r->skipping = false;
				r->number++;
				*len = r->skipped;
				return ACE_LINES_TOO_LONG;
			}
		} else if (nl != NULL) {
			size_t n = (size_t)(nl - (r->buf + r->start));
			size_t content = n > 0 && nl[-1] == '\r' ? n - 1 : n;

			if (content > r->max_line) {
				r->start += n + 1;
				r->number++;
				*len = n;
				return ACE_LINES_TOO_LONG;
			}
			return emit(r, n, r->start + n + 1, line, len);
		} else if (avail > r->max_line + 1 ||
		    (avail == r->max_line + 1 && r->buf[r->end - 1] != '\r')) {
			r->skipping = true;
			r->skipped = 0;
			scanned = 0;
			continue;
		} else if (r->eof) {
			if (avail == 0)
				return ACE_LINES_EOF;
			return emit(r, avail, r->end, line, len);
		} else {
			scanned = avail;
		}
		if (r->eof)
			continue;
		rc = fill(r, deadline);
		if (rc != ACE_LINES_OK)
			return rc;
	}
}
