/* A growable byte buffer, always NUL-terminated, used for rows and messages. */
#ifndef ACE_BUF_H
#define ACE_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct ace_buf {
	char *data;	/* NULL until the first append; owned by the buffer */
	size_t len;
	size_t cap;
};

#define ACE_BUF_INIT { NULL, 0, 0 }

/*
 * The append functions return 0, or -1 when memory runs out, in which case
 * the buffer keeps its previous contents.
 */
int ace_buf_reserve(struct ace_buf *buf, size_t extra);
int ace_buf_append(struct ace_buf *buf, const void *data, size_t len);
int ace_buf_putc(struct ace_buf *buf, char c);
int ace_buf_puts(struct ace_buf *buf, const char *s);
int ace_buf_printf(struct ace_buf *buf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int ace_buf_vprintf(struct ace_buf *buf, const char *fmt, va_list ap);

/*
 * Appends len bytes as a quoted JSON string.  Control characters, NUL
 * included, are escaped; a byte that is not valid UTF-8 becomes U+FFFD and
 * sets *replaced (when not NULL), because JSON text must be UTF-8.
 */
int ace_buf_put_json_string(struct ace_buf *buf, const char *s, size_t len, bool *replaced);

/* Empties the buffer but keeps its memory for reuse. */
void ace_buf_reset(struct ace_buf *buf);

/* Frees the memory; the buffer may be reused after, as if just initialized. */
void ace_buf_release(struct ace_buf *buf);

#endif
