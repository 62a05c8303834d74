/* The Prometheus text exposition format, version 0.0.4: names, escaping, samples and an atomic file write. */
#ifndef ACE_PROM_H
#define ACE_PROM_H

#include <stdbool.h>
#include <stddef.h>

#include "ace/buf.h"
#include "ace/error.h"

/*
 * A metric family is a "# HELP" line, a "# TYPE" line and then all of its
 * samples, one per line, with no other family in between: the caller writes
 * the samples of a family right after ace_prom_family().  Samples carry no
 * timestamp, as the node_exporter textfile collector requires.  The append
 * functions return 0, or -1 when memory runs out or a name is invalid.
 */

/* Returns whether name matches [a-zA-Z_:][a-zA-Z0-9_:]*. */
bool ace_prom_valid_metric_name(const char *name);

/* Returns whether name matches [a-zA-Z_][a-zA-Z0-9_]* and does not start with "__", which is reserved. */
bool ace_prom_valid_label_name(const char *name);

/* Appends HELP text with backslash and newline escaped as \\ and \n. */
int ace_prom_escape_help(struct ace_buf *out, const char *text);

/* Appends a label value with backslash, double quote and newline escaped as \\, \" and \n. */
int ace_prom_escape_label_value(struct ace_buf *out, const char *value);

/*
 * Formats a sample value into out (at least 32 bytes): NaN, +Inf, -Inf, or
 * the shortest of %.15g, %.16g and %.17g that reads back as the same double.
 */
void ace_prom_format_value(double value, char *out, size_t len);

/* Appends the HELP and TYPE lines of a family; type is counter, gauge, histogram, summary or untyped. */
int ace_prom_family(struct ace_buf *out, const char *name, const char *type, const char *help);

/*
 * Appends one sample line: name, then {label="value",...} when nlabels > 0,
 * then the value.  labels contains nlabels name and value pairs, flattened.
 */
int ace_prom_sample(struct ace_buf *out, const char *name, const char *const *labels, size_t nlabels,
    double value);

/*
 * Replaces the file at path with data, atomically.  The data goes to a new
 * temporary file in the same folder (".NAME.XXXXXX"), which is flushed to
 * disk with fsync, given mode 0644 and renamed over path.  A reader
 * therefore sees the old file or the new one, never a part.  On failure the temporary file
 * is removed and path is left as it was.  Fails with ACE_ERR_SYSTEM naming
 * the path and the system's reason.
 */
int ace_prom_write_file(const char *path, const char *data, size_t len, struct ace_error *err);

#endif
