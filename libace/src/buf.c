/* Growable byte buffers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ace/buf.h"
#include "ace/metric.h"

int
ace_buf_reserve(struct ace_buf *buf, size_t extra)
{
	size_t need, cap;
	char *data;

	if (extra > (size_t)-1 / 2 - buf->len)
		return -1;
	need = buf->len + extra + 1;
	if (need <= buf->cap)
		return 0;
	cap = buf->cap ? buf->cap : 64;
	while (cap < need)
		cap *= 2;
	data = realloc(buf->data, cap);
	if (data == NULL)
		return -1;
	buf->data = data;
	buf->cap = cap;
	return 0;
}

int
ace_buf_append(struct ace_buf *buf, const void *data, size_t len)
{
	if (ace_buf_reserve(buf, len) < 0)
		return -1;
	if (len > 0)
		memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
	return 0;
}

int
ace_buf_putc(struct ace_buf *buf, char c)
{
	if (buf->len + 1 >= buf->cap && ace_buf_reserve(buf, 1) < 0)
		return -1;
	buf->data[buf->len++] = c;
	buf->data[buf->len] = '\0';
	return 0;
}

int
ace_buf_puts(struct ace_buf *buf, const char *s)
{
	return ace_buf_append(buf, s, strlen(s));
}

int
ace_buf_vprintf(struct ace_buf *buf, const char *fmt, va_list ap)
{
	va_list copy;
	int n;

	va_copy(copy, ap);
	n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n < 0 || ace_buf_reserve(buf, (size_t)n) < 0)
		return -1;
	vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
	buf->len += (size_t)n;
	return 0;
}

int
ace_buf_printf(struct ace_buf *buf, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = ace_buf_vprintf(buf, fmt, ap);
	va_end(ap);
	return rc;
}

int
ace_buf_put_json_string(struct ace_buf *buf, const char *s, size_t len, bool *replaced)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	int rc = ace_buf_putc(buf, '"');

	while (i < len && rc == 0) {
		unsigned char c = p[i];
		long bad;

		if (c == '"' || c == '\\') {
			rc |= ace_buf_putc(buf, '\\');
			rc |= ace_buf_putc(buf, (char)c);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			rc |= ace_buf_printf(buf, "\\u%04x", c);
			i++;
		} else if (c < 0x80) {
			rc |= ace_buf_putc(buf, (char)c);
			i++;
		} else {
			/* Copy the longest valid UTF-8 run, or replace one bad byte. */
			size_t run = len - i;

			bad = ace_utf8_invalid_at(s + i, run);
			if (bad == 0) {
				rc |= ace_buf_puts(buf, "\xef\xbf\xbd");
				if (replaced)
					*replaced = true;
				i++;
				continue;
			}
			if (bad > 0)
				run = (size_t)bad;
			/* Stop the run at the next ASCII byte, which may need escaping. */
			for (size_t k = 1; k < run; k++) {
				if (p[i + k] < 0x80) {
					run = k;
					break;
				}
			}
			rc |= ace_buf_append(buf, s + i, run);
			i += run;
		}
	}
	rc |= ace_buf_putc(buf, '"');
	return rc ? -1 : 0;
}

void
ace_buf_reset(struct ace_buf *buf)
{
	buf->len = 0;
	if (buf->data != NULL)
		buf->data[0] = '\0';
}

void
ace_buf_release(struct ace_buf *buf)
{
	free(buf->data);
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
}
