/*
 * Measures request latency of ace-cache filter mode for scripts/bench-cache:
 * it starts the command given after "--", sends one request line at a time
 * from FILE, waits for the response line, and prints the latency
 * percentiles in microseconds and how many responses came from Redis.
 *
 * Usage: bench-cache-latency COUNT FILE -- COMMAND [ARG]...
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int
compare(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
percentile(const double *sorted, long n, double p)
{
	long i = (long)(p / 100.0 * (double)n + 0.5) - 1;

	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return sorted[i];
}

int
main(int argc, char **argv)
{
	int to_child[2], from_child[2];
	char *line = NULL, *answer = NULL;
	size_t line_cap = 0, answer_cap = 0;
	long count, redis = 0, bad = 0;
	double *lat;
	FILE *requests, *in, *out;
	pid_t pid;
	int status;

	if (argc < 5 || strcmp(argv[3], "--") != 0) {
		fprintf(stderr, "usage: bench-cache-latency COUNT FILE -- COMMAND [ARG]...\n");
		return 64;
	}
	count = strtol(argv[1], NULL, 10);
	requests = fopen(argv[2], "r");
	lat = calloc((size_t)(count > 0 ? count : 1), sizeof(*lat));
	if (count < 1 || requests == NULL || lat == NULL) {
		fprintf(stderr, "bench-cache-latency: invalid COUNT, or cannot open %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	if (pipe(to_child) < 0 || pipe(from_child) < 0)
		return 1;
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		dup2(to_child[0], STDIN_FILENO);
		dup2(from_child[1], STDOUT_FILENO);
		close(to_child[1]);
		close(from_child[0]);
		execvp(argv[4], argv + 4);
		_exit(127);
	}
	close(to_child[0]);
	close(from_child[1]);
	signal(SIGPIPE, SIG_IGN);
	in = fdopen(to_child[1], "w");
	out = fdopen(from_child[0], "r");

	for (long i = 0; i < count; i++) {
		double started;

		if (getline(&line, &line_cap, requests) < 0) {
			rewind(requests);
			if (getline(&line, &line_cap, requests) < 0)
				return 1;
		}
		started = now_us();
		if (fputs(line, in) == EOF || fflush(in) != 0 || getline(&answer, &answer_cap, out) < 0) {
			fprintf(stderr, "bench-cache-latency: the filter stopped after %ld requests\n", i);
			return 1;
		}
		lat[i] = now_us() - started;
		if (strstr(answer, "\"source\":\"redis\"") != NULL)
			redis++;
		if (strncmp(answer, "{\"status\":\"ok\"", 14) != 0)
			bad++;
	}
	fclose(in);
	while (getline(&answer, &answer_cap, out) >= 0)
		;
	waitpid(pid, &status, 0);
	qsort(lat, (size_t)count, sizeof(*lat), compare);
	printf("requests %ld redis %ld not_ok %ld p50_us %.0f p95_us %.0f p99_us %.0f max_us %.0f\n",
	    count, redis, bad, percentile(lat, count, 50), percentile(lat, count, 95),
	    percentile(lat, count, 99), lat[count - 1]);
	free(lat);
	free(line);
	free(answer);
	fclose(requests);
	fclose(out);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 && bad == 0 ? 0 : 1;
}
