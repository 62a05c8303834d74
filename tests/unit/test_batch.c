/* Unit tests of batch bookkeeping and the size and time rules that flush a batch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ace/batch.h"
#include "ace/buf.h"

/* Appends a COPY row for line n, then commits it with its raw line and returns the commit's result. */
static int
add_row(struct ace_batch *b, uint64_t n, double now)
{
	char row[64], raw[64];
	size_t off = b->rows.len;

	snprintf(row, sizeof(row), "row-%llu\tvalue\n", (unsigned long long)n);
	snprintf(raw, sizeof(raw), "{\"line\":%llu}", (unsigned long long)n);
	assert_int_equal(ace_buf_puts(&b->rows, row), 0);
	return ace_batch_commit_row(b, off, "input.ndjson", n, raw, strlen(raw), now);
}

static void
test_init_empty(void **state)
{
	struct ace_batch b;

	(void)state;
	memset(&b, 0xAB, sizeof(b));
	ace_batch_init(&b);
	assert_int_equal(b.count, 0);
	assert_int_equal(b.cap, 0);
	assert_null(b.row);
	assert_int_equal(b.rows.len, 0);
	assert_int_equal(b.raw.len, 0);
	assert_true(b.first_at == 0);
	ace_batch_release(&b);
}

static void
test_commit_row_bookkeeping(void **state)
{
	struct ace_batch b;
	const char *source = "input.ndjson";
	size_t off1;

	(void)state;
	ace_batch_init(&b);

	assert_int_equal(ace_buf_puts(&b.rows, "a\tb\n"), 0);
	assert_int_equal(ace_batch_commit_row(&b, 0, source, 7, "{\"x\":1}", 7, 10.0), 0);
	off1 = b.rows.len;
	assert_int_equal(ace_buf_puts(&b.rows, "cc\tdd\n"), 0);
	assert_int_equal(ace_batch_commit_row(&b, off1, source, 9, "{\"y\":22}", 8, 10.5), 0);

	assert_int_equal(b.count, 2);
	assert_int_equal(b.row[0].row_off, 0);
	assert_int_equal(b.row[0].row_len, 4);
	assert_int_equal(b.row[1].row_off, 4);
	assert_int_equal(b.row[1].row_len, 6);
	assert_memory_equal(b.rows.data + b.row[1].row_off, "cc\tdd\n", 6);

	assert_int_equal(b.row[0].raw_off, 0);
	assert_int_equal(b.row[0].raw_len, 7);
	assert_int_equal(b.row[1].raw_off, 7);
	assert_int_equal(b.row[1].raw_len, 8);
	assert_memory_equal(b.raw.data + b.row[0].raw_off, "{\"x\":1}", 7);
	assert_memory_equal(b.raw.data + b.row[1].raw_off, "{\"y\":22}", 8);

	assert_int_equal(b.row[0].line, 7);
	assert_int_equal(b.row[1].line, 9);
	assert_ptr_equal(b.row[0].source, source);
	assert_int_equal(b.row[0].state, ACE_ROW_PENDING);
	assert_int_equal(b.row[1].state, ACE_ROW_PENDING);

	/* The first row starts the timeout, and later rows leave it unchanged. */
	assert_true(b.first_at == 10.0);
	ace_batch_release(&b);
}

static void
test_commit_empty_raw_line(void **state)
{
	struct ace_batch b;

	(void)state;
	ace_batch_init(&b);
	assert_int_equal(ace_buf_puts(&b.rows, "r\n"), 0);
	assert_int_equal(ace_batch_commit_row(&b, 0, "-", 1, "", 0, 1.0), 0);
	assert_int_equal(b.count, 1);
	assert_int_equal(b.row[0].raw_len, 0);
	assert_int_equal(b.row[0].row_len, 2);
	ace_batch_release(&b);
}

static void
test_commit_many_rows_grows(void **state)
{
	struct ace_batch b;
	const size_t n = 1000;

	(void)state;
	ace_batch_init(&b);
	for (uint64_t i = 1; i <= n; i++)
		assert_int_equal(add_row(&b, i, 100.0 + (double)i), 0);

	assert_int_equal(b.count, n);
	assert_true(b.cap >= n);
	assert_true(b.first_at == 101.0);
	for (size_t i = 0; i < n; i++) {
		char row[64], raw[64];
		const struct ace_batch_row *r = &b.row[i];

		snprintf(row, sizeof(row), "row-%zu\tvalue\n", i + 1);
		snprintf(raw, sizeof(raw), "{\"line\":%zu}", i + 1);
		assert_int_equal(r->line, i + 1);
		assert_int_equal(r->row_len, strlen(row));
		assert_memory_equal(b.rows.data + r->row_off, row, r->row_len);
		assert_int_equal(r->raw_len, strlen(raw));
		assert_memory_equal(b.raw.data + r->raw_off, raw, r->raw_len);
		if (i > 0) {
			assert_int_equal(r->row_off, b.row[i - 1].row_off + b.row[i - 1].row_len);
			assert_int_equal(r->raw_off, b.row[i - 1].raw_off + b.row[i - 1].raw_len);
		}
	}
	assert_int_equal(b.row[n - 1].row_off + b.row[n - 1].row_len, b.rows.len);
	assert_int_equal(b.row[n - 1].raw_off + b.row[n - 1].raw_len, b.raw.len);
	ace_batch_release(&b);
}

static void
test_full_at_batch_size(void **state)
{
	struct ace_batch b;

	(void)state;
	ace_batch_init(&b);
	assert_false(ace_batch_full(&b, 3));
	assert_int_equal(add_row(&b, 1, 1.0), 0);
	assert_int_equal(add_row(&b, 2, 1.0), 0);
	assert_false(ace_batch_full(&b, 3));
	assert_int_equal(add_row(&b, 3, 1.0), 0);
	assert_true(ace_batch_full(&b, 3));
	assert_int_equal(add_row(&b, 4, 1.0), 0);
	assert_true(ace_batch_full(&b, 3));
	assert_true(ace_batch_full(&b, 1));
	ace_batch_release(&b);
}

static void
test_deadline_empty_zero(void **state)
{
	struct ace_batch b;

	(void)state;
	ace_batch_init(&b);
	assert_true(ace_batch_deadline(&b, 1.5) == 0);
	ace_batch_release(&b);
}

static void
test_deadline_first_row_plus_timeout(void **state)
{
	struct ace_batch b;

	(void)state;
	ace_batch_init(&b);
	assert_int_equal(add_row(&b, 1, 10.0), 0);
	assert_true(ace_batch_deadline(&b, 1.5) == 11.5);
	/* A later row does not push the deadline back. */
	assert_int_equal(add_row(&b, 2, 10.75), 0);
	assert_true(ace_batch_deadline(&b, 1.5) == 11.5);
	assert_true(ace_batch_deadline(&b, 0.25) == 10.25);
	ace_batch_release(&b);
}

static void
test_due_empty_never(void **state)
{
	struct ace_batch b;

	(void)state;
	ace_batch_init(&b);
	assert_false(ace_batch_due(&b, 1, 1.0, 0.0));
	assert_false(ace_batch_due(&b, 1, 1.0, 1e9));
	ace_batch_release(&b);
}

static void
test_due_by_size(void **state)
{
	struct ace_batch b;

	(void)state;
	ace_batch_init(&b);
	assert_int_equal(add_row(&b, 1, 50.0), 0);
	assert_false(ace_batch_due(&b, 2, 5.0, 50.0));
	assert_int_equal(add_row(&b, 2, 50.0), 0);
	/* Full well before the deadline. */
	assert_true(ace_batch_due(&b, 2, 5.0, 50.0));
	ace_batch_release(&b);
}

static void
test_due_by_time(void **state)
{
	struct ace_batch b;

	(void)state;
	ace_batch_init(&b);
	assert_int_equal(add_row(&b, 1, 100.0), 0);
	assert_false(ace_batch_due(&b, 100, 1.0, 100.0));
	assert_false(ace_batch_due(&b, 100, 1.0, 100.999));
	assert_true(ace_batch_due(&b, 100, 1.0, 101.0));
	assert_true(ace_batch_due(&b, 100, 1.0, 101.001));
	assert_true(ace_batch_due(&b, 100, 1.0, 500.0));
	ace_batch_release(&b);
}

static void
test_reset_keeps_memory(void **state)
{
	struct ace_batch b;
	struct ace_batch_row *rows;
	char *row_data, *raw_data;
	size_t cap, rows_cap, raw_cap;

	(void)state;
	ace_batch_init(&b);
	for (uint64_t i = 1; i <= 100; i++)
		assert_int_equal(add_row(&b, i, 5.0), 0);
	rows = b.row;
	cap = b.cap;
	row_data = b.rows.data;
	raw_data = b.raw.data;
	rows_cap = b.rows.cap;
	raw_cap = b.raw.cap;

	ace_batch_reset(&b);
	assert_int_equal(b.count, 0);
	assert_true(b.first_at == 0);
	assert_int_equal(b.rows.len, 0);
	assert_int_equal(b.raw.len, 0);
	assert_string_equal(b.rows.data, "");
	assert_string_equal(b.raw.data, "");
	assert_ptr_equal(b.row, rows);
	assert_int_equal(b.cap, cap);
	assert_ptr_equal(b.rows.data, row_data);
	assert_ptr_equal(b.raw.data, raw_data);
	assert_int_equal(b.rows.cap, rows_cap);
	assert_int_equal(b.raw.cap, raw_cap);
	assert_false(ace_batch_due(&b, 1, 0.0, 1e9));
	assert_true(ace_batch_deadline(&b, 1.0) == 0);

	/* The next row starts a fresh batch at offset 0 with its own start time. */
	assert_int_equal(add_row(&b, 101, 42.0), 0);
	assert_int_equal(b.count, 1);
	assert_int_equal(b.row[0].row_off, 0);
	assert_int_equal(b.row[0].raw_off, 0);
	assert_int_equal(b.row[0].line, 101);
	assert_true(b.first_at == 42.0);
	assert_true(ace_batch_deadline(&b, 1.0) == 43.0);
	ace_batch_release(&b);
}

static void
test_release_then_reuse(void **state)
{
	struct ace_batch b;

	(void)state;
	ace_batch_init(&b);
	assert_int_equal(add_row(&b, 1, 1.0), 0);
	ace_batch_release(&b);
	assert_int_equal(b.count, 0);
	assert_null(b.row);
	assert_null(b.rows.data);
	assert_null(b.raw.data);

	assert_int_equal(add_row(&b, 2, 2.0), 0);
	assert_int_equal(b.count, 1);
	assert_int_equal(b.row[0].line, 2);
	ace_batch_release(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_empty),
		cmocka_unit_test(test_commit_row_bookkeeping),
		cmocka_unit_test(test_commit_empty_raw_line),
		cmocka_unit_test(test_commit_many_rows_grows),
		cmocka_unit_test(test_full_at_batch_size),
		cmocka_unit_test(test_deadline_empty_zero),
		cmocka_unit_test(test_deadline_first_row_plus_timeout),
		cmocka_unit_test(test_due_empty_never),
		cmocka_unit_test(test_due_by_size),
		cmocka_unit_test(test_due_by_time),
		cmocka_unit_test(test_reset_keeps_memory),
		cmocka_unit_test(test_release_then_reuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
