/* The latency plot of a benchmark report: percentile curves as a standalone SVG image. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ace/bench.h"

/* Layout in SVG user units (pixels at 100% zoom). */
#define WIDTH 1020
#define PLOT_LEFT 80
#define PLOT_TOP 60
#define PLOT_WIDTH 560
#define PLOT_HEIGHT 320
#define LEGEND_LEFT (PLOT_LEFT + PLOT_WIDTH + 20)
#define LEGEND_LINE 18
#define MAX_NINES 3		/* the x axis ends at the 99.9th percentile */
#define CURVE_POINTS 240

/* Distinct colors that stay apart for common color blindness (Okabe and Ito's palette, plus grey). */
static const char *const colors[] = {
	"#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442",
	"#999999",
};
#define NCOLORS (sizeof(colors) / sizeof(colors[0]))

/* Each pass through the colors draws its lines with the next dash pattern, so no two curves look alike. */
static const char *const dashes[] = { "none", "6 3", "2 2" };
#define NDASHES (sizeof(dashes) / sizeof(dashes[0]))

/* Appends text with XML's five special characters escaped. */
static int
put_text(struct ace_buf *out, const char *text)
{
	int rc = 0;

	for (const char *p = text; *p && rc == 0; p++) {
		switch (*p) {
		case '&': rc = ace_buf_puts(out, "&amp;"); break;
		case '<': rc = ace_buf_puts(out, "&lt;"); break;
		case '>': rc = ace_buf_puts(out, "&gt;"); break;
		case '"': rc = ace_buf_puts(out, "&quot;"); break;
		case '\'': rc = ace_buf_puts(out, "&apos;"); break;
		default: rc = ace_buf_putc(out, *p); break;
		}
	}
	return rc;
}

static bool
plotted(const struct ace_bench_series *s)
{
	return strcmp(s->unit, "ms") == 0 && s->summary.count > 0;
}

/* x position of a "nines" value t: t = -log10(1 - p/100), so 1 is p90 and 2 is p99. */
static double
x_of(double t)
{
	return PLOT_LEFT + t / MAX_NINES * PLOT_WIDTH;
}

static double
y_of(double ms, double lo_decade, double hi_decade)
{
	double v = log10(ms > 0 ? ms : pow(10, lo_decade));

	if (v < lo_decade)
		v = lo_decade;
	return PLOT_TOP + PLOT_HEIGHT - (v - lo_decade) / (hi_decade - lo_decade) * PLOT_HEIGHT;
}

/* Finds the decades that enclose every plotted value, at least one decade apart. */
static void
value_range(const struct ace_bench_report *r, double *lo, double *hi)
{
	double min = INFINITY, max = 0;

	for (size_t i = 0; i < r->nseries; i++) {
		const struct ace_bench_series *s = &r->series[i];

		if (!plotted(s))
			continue;
		for (size_t j = 0; j < s->samples.count; j++) {
			double v = s->samples.values[j];

			if (v > 0 && v < min)
				min = v;
			if (v > max)
				max = v;
		}
	}
	if (!isfinite(min) || max <= 0) {
		*lo = -1;
		*hi = 2;
		return;
	}
	*lo = floor(log10(min));
	*hi = ceil(log10(max));
	if (*hi <= *lo)
		*hi = *lo + 1;
}

static int
put_axes(struct ace_buf *out, double lo, double hi)
{
	static const char *const x_labels[] = { "0", "90", "99", "99.9" };
	int rc = 0;

	rc |= ace_buf_printf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
	    "fill=\"none\" stroke=\"#444\"/>\n", PLOT_LEFT, PLOT_TOP, PLOT_WIDTH, PLOT_HEIGHT);
	for (int t = 0; t <= MAX_NINES; t++) {
		double x = x_of(t);

		rc |= ace_buf_printf(out, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n",
		    x, PLOT_TOP, x, PLOT_TOP + PLOT_HEIGHT);
		rc |= ace_buf_printf(out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
		    x, PLOT_TOP + PLOT_HEIGHT + 18, x_labels[t]);
	}
	for (double d = lo; d <= hi + 1e-9; d++) {
		double y = y_of(pow(10, d), lo, hi);
		char label[32];

		ace_bench_format_number(pow(10, d), label, sizeof(label));
		rc |= ace_buf_printf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
		    PLOT_LEFT, y, PLOT_LEFT + PLOT_WIDTH, y);
		rc |= ace_buf_printf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
		    PLOT_LEFT - 6, y + 4, label);
	}
	rc |= ace_buf_printf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">percentile</text>\n",
	    PLOT_LEFT + PLOT_WIDTH / 2, PLOT_TOP + PLOT_HEIGHT + 40);
	rc |= ace_buf_printf(out, "<text transform=\"translate(%d %d) rotate(-90)\" "
	    "text-anchor=\"middle\">latency (ms, log scale)</text>\n", 22, PLOT_TOP + PLOT_HEIGHT / 2);
	return rc;
}

/* Appends one series as a polyline through CURVE_POINTS percentiles. */
static int
put_curve(struct ace_buf *out, const struct ace_bench_series *s, const char *color, const char *dash,
    double lo, double hi)
{
	int rc = ace_buf_printf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
	    "stroke-dasharray=\"%s\" points=\"", color, dash);

	for (int i = 0; i <= CURVE_POINTS; i++) {
		double t = (double)MAX_NINES * i / CURVE_POINTS;
		double p = 100 * (1 - pow(10, -t));
		double v = ace_bench_percentile(s->samples.values, s->samples.count, p);

		rc |= ace_buf_printf(out, "%s%.1f,%.1f", i ? " " : "", x_of(t), y_of(v, lo, hi));
	}
	rc |= ace_buf_puts(out, "\"/>\n");
	return rc;
}

static int
put_legend_entry(struct ace_buf *out, const struct ace_bench_series *s, const char *color,
    const char *dash, int line)
{
	char p50[32], p99[32];
	int y = PLOT_TOP + line * 2 * LEGEND_LINE;
	int rc = 0;

	ace_bench_format_number(s->summary.median, p50, sizeof(p50));
	ace_bench_format_number(s->summary.p99, p99, sizeof(p99));
	rc |= ace_buf_printf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
	    "stroke-width=\"3\" stroke-dasharray=\"%s\"/>\n", LEGEND_LEFT, y - 4, LEGEND_LEFT + 16, y - 4,
	    color, dash);
	rc |= ace_buf_printf(out, "<text x=\"%d\" y=\"%d\">", LEGEND_LEFT + 20, y);
	rc |= ace_buf_printf(out, "%s: ", ace_bench_suite_name(s->suite));
	rc |= put_text(out, s->name);
	rc |= ace_buf_printf(out, "</text>\n<text x=\"%d\" y=\"%d\" fill=\"#555\">p50 %s ms, p99 %s ms, n=%zu</text>\n",
	    LEGEND_LEFT + 20, y + LEGEND_LINE - 4, p50, p99, s->summary.count);
	return rc;
}

int
ace_bench_format_svg(const struct ace_bench_report *r, struct ace_buf *out)
{
	int lines = 0, height, rc = 0;
	double lo, hi;

	for (size_t i = 0; i < r->nseries; i++)
		lines += plotted(&r->series[i]);
	height = PLOT_TOP + PLOT_HEIGHT + 60;
	if (PLOT_TOP + lines * 2 * LEGEND_LINE + 20 > height)
		height = PLOT_TOP + lines * 2 * LEGEND_LINE + 20;
	value_range(r, &lo, &hi);

	rc |= ace_buf_printf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
	    "font-family=\"sans-serif\" font-size=\"12\">\n", WIDTH, height, WIDTH, height);
	rc |= ace_buf_printf(out, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", WIDTH, height);
	rc |= ace_buf_printf(out, "<text x=\"%d\" y=\"24\" font-size=\"16\">ace-bench latency distributions</text>\n",
	    PLOT_LEFT);
	rc |= ace_buf_printf(out, "<text x=\"%d\" y=\"42\" fill=\"#555\">", PLOT_LEFT);
	rc |= put_text(out, r->started_at);
	rc |= ace_buf_printf(out, ", %d CPUs, PostgreSQL ", r->machine.cpus);
	rc |= put_text(out, *r->machine.postgresql ? r->machine.postgresql : "-");
	rc |= ace_buf_puts(out, "</text>\n");
	rc |= put_axes(out, lo, hi);
	if (lines == 0)
		rc |= ace_buf_printf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">no latency was measured</text>\n",
		    PLOT_LEFT + PLOT_WIDTH / 2, PLOT_TOP + PLOT_HEIGHT / 2);

	lines = 0;
	for (size_t i = 0; i < r->nseries; i++) {
		const struct ace_bench_series *s = &r->series[i];
		const char *color = colors[(size_t)lines % NCOLORS];
		const char *dash = dashes[(size_t)lines / NCOLORS % NDASHES];

		if (!plotted(s))
			continue;
		rc |= put_curve(out, s, color, dash, lo, hi);
		rc |= put_legend_entry(out, s, color, dash, lines);
		lines++;
	}
	rc |= ace_buf_puts(out, "</svg>\n");
	return rc ? -1 : 0;
}
