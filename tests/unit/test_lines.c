/* Unit tests of the line reader: line endings, the length limit, numbering, timeouts and wake-ups. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ace/lines.h"

static const char *
result_name(int rc)
{
	switch (rc) {
	case ACE_LINES_OK: return "a line";
	case ACE_LINES_TOO_LONG: return "too long";
	case ACE_LINES_EOF: return "end of file";
	case ACE_LINES_TIMEOUT: return "timeout";
	case ACE_LINES_INTERRUPTED: return "interrupted";
	case ACE_LINES_ERROR: return "error";
	}
	return "unknown result";
}

/* Fails the test unless the reader returns line text with the given 1-based number. */
#define assert_next_line(r, text, number) do { \
	const char *line_ = NULL; \
	size_t len_ = 0; \
	int rc_ = ace_lines_next((r), 5.0, &line_, &len_); \
	if (rc_ != ACE_LINES_OK) \
		fail_msg("%s instead of line %d, \"%s\"", result_name(rc_), (int)(number), (text)); \
	assert_int_equal(len_, strlen(text)); \
	assert_memory_equal(line_, (text), len_); \
	assert_int_equal(line_[len_], '\0'); \
	assert_int_equal(ace_lines_number(r), (number)); \
} while (0)

#define assert_next_result(r, result) do { \
	const char *line_ = NULL; \
	size_t len_ = 0; \
	assert_int_equal(ace_lines_next((r), 5.0, &line_, &len_), (result)); \
} while (0)

/* Returns a descriptor of an unlinked temporary file that contains len bytes of data, positioned at its start. */
static int
temp_input(const char *data, size_t len)
{
	char path[] = "/tmp/ace-test-lines-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		assert_true(n > 0);
		data += n;
		len -= (size_t)n;
	}
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* Returns a reader over a temporary file that contains text, and stores the file's descriptor in *fd. */
static struct ace_lines *
reader_over(const char *text, size_t len, size_t max_line, int *fd)
{
	struct ace_lines *r;

	*fd = temp_input(text, len);
	r = ace_lines_new(*fd, max_line);
	assert_non_null(r);
	return r;
}

static void
close_reader(struct ace_lines *r, int fd)
{
	ace_lines_free(r);
	close(fd);
}

static double
monotonic_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
write_all(int fd, const char *text)
{
	size_t len = strlen(text);

	assert_int_equal(write(fd, text, len), (ssize_t)len);
}

static void
test_trailing_newline(void **state)
{
	static const char text[] = "one\ntwo\n";
	int fd;
	struct ace_lines *r = reader_over(text, sizeof(text) - 1, 100, &fd);

	(void)state;
	assert_next_line(r, "one", 1);
	assert_next_line(r, "two", 2);
	assert_next_result(r, ACE_LINES_EOF);
	assert_next_result(r, ACE_LINES_EOF);
	assert_int_equal(ace_lines_number(r), 2);
	close_reader(r, fd);
}

static void
test_no_trailing_newline(void **state)
{
	static const char text[] = "one\ntwo";
	int fd;
	struct ace_lines *r = reader_over(text, sizeof(text) - 1, 100, &fd);

	(void)state;
	assert_next_line(r, "one", 1);
	assert_next_line(r, "two", 2);
	assert_next_result(r, ACE_LINES_EOF);
	close_reader(r, fd);
}

static void
test_crlf_stripped(void **state)
{
	static const char text[] = "one\r\ntwo\r\nin\rside\r\n\r\nlast\r";
	int fd;
	struct ace_lines *r = reader_over(text, sizeof(text) - 1, 100, &fd);

	(void)state;
	assert_next_line(r, "one", 1);
	assert_next_line(r, "two", 2);
	/* Only a carriage return right before the newline is removed. */
	assert_next_line(r, "in\rside", 3);
	assert_next_line(r, "", 4);
	assert_next_line(r, "last", 5);
	assert_next_result(r, ACE_LINES_EOF);
	close_reader(r, fd);
}

static void
test_empty_lines_returned(void **state)
{
	static const char text[] = "\n\nx\n\n";
	int fd;
	struct ace_lines *r = reader_over(text, sizeof(text) - 1, 100, &fd);

	(void)state;
	assert_next_line(r, "", 1);
	assert_next_line(r, "", 2);
	assert_next_line(r, "x", 3);
	assert_next_line(r, "", 4);
	assert_next_result(r, ACE_LINES_EOF);
	assert_int_equal(ace_lines_number(r), 4);
	close_reader(r, fd);
}

static void
test_empty_input_eof(void **state)
{
	int fd;
	struct ace_lines *r = reader_over("", 0, 100, &fd);

	(void)state;
	assert_next_result(r, ACE_LINES_EOF);
	assert_int_equal(ace_lines_number(r), 0);
	close_reader(r, fd);
}

static void
test_too_long_then_next(void **state)
{
	static const char text[] = "short\nxxxxxxxxxxxxxxxxxxxxxxxxx\nnext\n";
	const char *line;
	size_t len = 0;
	int fd;
	struct ace_lines *r = reader_over(text, sizeof(text) - 1, 10, &fd);

	(void)state;
	assert_next_line(r, "short", 1);
	assert_int_equal(ace_lines_next(r, 5.0, &line, &len), ACE_LINES_TOO_LONG);
	assert_int_equal(len, 25);
	assert_int_equal(ace_lines_number(r), 2);
	assert_next_line(r, "next", 3);
	assert_next_result(r, ACE_LINES_EOF);
	close_reader(r, fd);
}

static void
test_max_length_boundary(void **state)
{
	static const char text[] = "0123456789\n0123456789a\nok\n";
	const char *line;
	size_t len = 0;
	int fd;
	struct ace_lines *r = reader_over(text, sizeof(text) - 1, 10, &fd);

	(void)state;
	assert_next_line(r, "0123456789", 1);
	assert_int_equal(ace_lines_next(r, 5.0, &line, &len), ACE_LINES_TOO_LONG);
	assert_int_equal(len, 11);
	assert_next_line(r, "ok", 3);
	close_reader(r, fd);
}

static void
test_max_length_excludes_cr(void **state)
{
	/* The same 10-byte record must pass with a CRLF ending as it does with LF. */
	static const char text[] = "0123456789\r\nok\r\n";
	char first[32] = "";
	const char *line = NULL;
	size_t len = 0;
	int fd, rc;
	struct ace_lines *r = reader_over(text, sizeof(text) - 1, 10, &fd);

	(void)state;
	rc = ace_lines_next(r, 5.0, &line, &len);
	if (rc == ACE_LINES_OK)
		snprintf(first, sizeof(first), "%s", line);
	close_reader(r, fd);

	if (rc != ACE_LINES_OK)
		fail_msg("%s (length %zu) for a 10-byte line ending in CRLF", result_name(rc), len);
	assert_string_equal(first, "0123456789");
}

static void
test_too_long_at_eof(void **state)
{
	static const char text[] = "ok\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
	const char *line;
	size_t len = 0;
	int fd;
	struct ace_lines *r = reader_over(text, sizeof(text) - 1, 10, &fd);

	(void)state;
	assert_next_line(r, "ok", 1);
	assert_int_equal(ace_lines_next(r, 5.0, &line, &len), ACE_LINES_TOO_LONG);
	assert_int_equal(len, 30);
	assert_int_equal(ace_lines_number(r), 2);
	assert_next_result(r, ACE_LINES_EOF);
	close_reader(r, fd);
}

static void
test_too_long_across_chunks(void **state)
{
	/* Far longer than one 64 KiB read, so the reader must skip it over many reads. */
	const size_t long_len = 300000;
	char *text = malloc(long_len + 32);
	const char *line;
	size_t len = 0, n;
	int fd;
	struct ace_lines *r;

	(void)state;
	assert_non_null(text);
	n = (size_t)sprintf(text, "first\n");
	memset(text + n, 'y', long_len);
	n += long_len;
	n += (size_t)sprintf(text + n, "\nafter\n");
	r = reader_over(text, n, 1000, &fd);
	free(text);

	assert_next_line(r, "first", 1);
	assert_int_equal(ace_lines_next(r, 5.0, &line, &len), ACE_LINES_TOO_LONG);
	assert_int_equal(len, long_len);
	assert_int_equal(ace_lines_number(r), 2);
	assert_next_line(r, "after", 3);
	assert_next_result(r, ACE_LINES_EOF);
	close_reader(r, fd);
}

/* Fills line i of the long-input test: a length that varies with i, and content that names i. */
static size_t
make_line(size_t i, char *out)
{
	size_t len = i == 500 ? 200000 : (i * 7919) % 4000;

	for (size_t k = 0; k < len; k++)
		out[k] = (char)('a' + (i + k) % 26);
	if (len >= 8)
		snprintf(out, 8, "%07zu", i);
	return len;
}

static void
test_long_input_across_chunks(void **state)
{
	/* About 2.2 MB: the 64 KiB read boundary falls inside many lines, one of them 200000 bytes. */
	const size_t count = 1000;
	char *text = malloc(5 * 1024 * 1024), *expected = malloc(256 * 1024);
	size_t n = 0;
	int fd;
	struct ace_lines *r;

	(void)state;
	assert_non_null(text);
	assert_non_null(expected);
	for (size_t i = 1; i <= count; i++) {
		n += make_line(i, text + n);
		text[n++] = '\n';
	}
	assert_true(n > 2 * 1024 * 1024);
	r = reader_over(text, n, 1024 * 1024, &fd);
	free(text);

	for (size_t i = 1; i <= count; i++) {
		const char *line = NULL;
		size_t len = 0, want = make_line(i, expected);
		int rc = ace_lines_next(r, 5.0, &line, &len);

		if (rc != ACE_LINES_OK || len != want || memcmp(line, expected, len) != 0 ||
		    ace_lines_number(r) != i) {
			free(expected);
			close_reader(r, fd);
			fail_msg("line %zu: result %d, %zu bytes (expected %zu)", i, rc, len, want);
		}
	}
	free(expected);
	assert_next_result(r, ACE_LINES_EOF);
	close_reader(r, fd);
}

static void
test_timeout_then_late_data(void **state)
{
	int p[2];
	struct ace_lines *r;
	const char *line;
	size_t len;
	double start, waited;

	(void)state;
	assert_int_equal(pipe(p), 0);
	r = ace_lines_new(p[0], 100);
	assert_non_null(r);

	start = monotonic_seconds();
	assert_int_equal(ace_lines_next(r, 0.05, &line, &len), ACE_LINES_TIMEOUT);
	waited = monotonic_seconds() - start;
	assert_true(waited >= 0.04);
	assert_true(waited < 1.0);

	write_all(p[1], "late\n");
	assert_next_line(r, "late", 1);

	assert_int_equal(ace_lines_next(r, 0, &line, &len), ACE_LINES_TIMEOUT);
	close(p[1]);
	assert_next_result(r, ACE_LINES_EOF);
	ace_lines_free(r);
	close(p[0]);
}

static void
test_timeout_keeps_partial_line(void **state)
{
	int p[2];
	struct ace_lines *r;
	const char *line;
	size_t len;

	(void)state;
	assert_int_equal(pipe(p), 0);
	r = ace_lines_new(p[0], 100);
	assert_non_null(r);

	write_all(p[1], "par");
	assert_int_equal(ace_lines_next(r, 0.02, &line, &len), ACE_LINES_TIMEOUT);
	write_all(p[1], "tial\nnext");
	assert_next_line(r, "partial", 1);
	assert_int_equal(ace_lines_next(r, 0.02, &line, &len), ACE_LINES_TIMEOUT);
	close(p[1]);
	assert_next_line(r, "next", 2);
	assert_next_result(r, ACE_LINES_EOF);
	ace_lines_free(r);
	close(p[0]);
}

static void
test_wake_fd_interrupts_wait(void **state)
{
	int data[2], wake[2];
	struct ace_lines *r;
	const char *line;
	size_t len;
	double start;

	(void)state;
	assert_int_equal(pipe(data), 0);
	assert_int_equal(pipe(wake), 0);
	r = ace_lines_new(data[0], 100);
	assert_non_null(r);
	ace_lines_set_wake_fd(r, wake[0]);

	write_all(data[1], "a\nb\n");
	assert_next_line(r, "a", 1);
	write_all(wake[1], "x");
	/* A line already read needs no wait, so it is still returned. */
	assert_next_line(r, "b", 2);

	start = monotonic_seconds();
	assert_int_equal(ace_lines_next(r, 3.0, &line, &len), ACE_LINES_INTERRUPTED);
	assert_true(monotonic_seconds() - start < 1.0);
	/* Nothing is read from the wake descriptor, so the next wait is interrupted too. */
	assert_int_equal(ace_lines_next(r, -1, &line, &len), ACE_LINES_INTERRUPTED);

	ace_lines_free(r);
	close(data[0]);
	close(data[1]);
	close(wake[0]);
	close(wake[1]);
}

static void
test_read_error_reported(void **state)
{
	int fd = open("/", O_RDONLY | O_DIRECTORY);
	struct ace_lines *r;
	const char *line;
	size_t len;

	(void)state;
	assert_true(fd >= 0);
	r = ace_lines_new(fd, 100);
	assert_non_null(r);
	errno = 0;
	assert_int_equal(ace_lines_next(r, 1.0, &line, &len), ACE_LINES_ERROR);
	assert_int_equal(errno, EISDIR);
	close_reader(r, fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trailing_newline),
		cmocka_unit_test(test_no_trailing_newline),
		cmocka_unit_test(test_crlf_stripped),
		cmocka_unit_test(test_empty_lines_returned),
		cmocka_unit_test(test_empty_input_eof),
		cmocka_unit_test(test_too_long_then_next),
		cmocka_unit_test(test_max_length_boundary),
		cmocka_unit_test(test_max_length_excludes_cr),
		cmocka_unit_test(test_too_long_at_eof),
		cmocka_unit_test(test_too_long_across_chunks),
		cmocka_unit_test(test_long_input_across_chunks),
		cmocka_unit_test(test_timeout_then_late_data),
		cmocka_unit_test(test_timeout_keeps_partial_line),
		cmocka_unit_test(test_wake_fd_interrupts_wait),
		cmocka_unit_test(test_read_error_reported),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
