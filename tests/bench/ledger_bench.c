/* ledger_bench.c — benchmark (issue "Billing: an embedded SQLite ledger"):
 * the ledger (output/ledger.c) over a simulated year of 512 circuits at 15
 * minutes — its size per 100 circuit-years (goal <= 100 MB), the daemon's
 * time to append one boundary of 512 circuits (goal <= 50 ms, measured on
 * that year's file with the daemon's settings: WAL, synchronous=FULL), its
 * start-up look-ups (pm_ledger_last per circuit) and the month query of
 * powermeter-ledger(5).
 *
 *   build/tests/bench/ledger-bench [--circuits 512] [--interval 900]
 *       [--start 2023-01-01] [--appends 200] [--dir /tmp] [--keep]
 *   build/tests/bench/ledger-bench --write-year PATH [--circuits N]
 *       [--interval S] [--start YYYY-MM-DD]
 *
 * --write-year writes such a year to PATH (a new file) and stops: a ledger
 * for the report's benchmark and tests. What it holds, the same on every
 * run (a fixed seed): circuit i is device 1 + i / 16, channel a + i % 16,
 * named "pitch NNN" (i + 1), phase L1..L3 by channel, feed A (odd devices)
 * or B, 230 V, power factor 0.93 (every fifth 0.85), tags {"customer":
 * "Cnn" (i / 13), "pitch": "Pnnn"}; a base current of 0.1..30 A with a
 * daily profile (night 35 %) and +-10 % noise; counters from 0. Events:
 * device 3 down for 6 hours on day 100 from 12:00 (NULL peaks, the whole
 * interval unmetered, no energy); pitch 006 renamed "pitch 006 (new
 * tenant)" with customer C99 from day 182; 0.1 % of the rows a missed
 * interval (NULL peak, unmetered), 0.3 % a gap of 10..300 s. The year is
 * the calendar year from --start (local midnight, TZ): its boundaries are
 * those in (start, end], so the first row of each circuit, at start +
 * interval, is where its counting begins. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "output/ledger.h"

#define GOAL_APPEND_MS 50.0
#define GOAL_MB_PER_100_CY 100.0
#define YEAR_S (365.0 * 86400)

struct sim_circuit {
	double base_a;
	double wh, ah;
	char name[48];
	char tags[80];
	char phase[4];
	bool renamed;
};

struct sim {
	size_t n;
	unsigned interval;
	int64_t start;
	uint64_t rng;
	struct sim_circuit *c;
	struct pm_ledger_row *rows;
};

/* xorshift64*: the same year on every machine */
static double uniform(struct sim *s)
{
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return (double)((s->rng * 0x2545f4914f6cdd1dULL) >> 11) / 9007199254740992.0;
}

static int sim_init(struct sim *s, size_t n, unsigned interval, int64_t start)
{
	memset(s, 0, sizeof(*s));
	s->n = n;
	s->interval = interval;
	s->start = start;
	s->rng = 0x9e3779b97f4a7c15ULL;
	s->c = calloc(n, sizeof(*s->c));
	s->rows = calloc(n, sizeof(*s->rows));
	if (!s->c || !s->rows)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct sim_circuit *c = &s->c[i];
		struct pm_ledger_row *w = &s->rows[i];

		c->base_a = 0.1 + 29.9 * uniform(s);
		snprintf(c->name, sizeof(c->name), "pitch %03zu", i + 1);
		snprintf(c->tags, sizeof(c->tags),
			 "{\"customer\":\"C%02zu\",\"pitch\":\"P%03zu\"}",
			 i / 13, i + 1);
		snprintf(c->phase, sizeof(c->phase), "L%zu", i % 16 % 3 + 1);
		w->c = (struct pm_ledger_circuit){
			.device_id = (int)(1 + i / 16),
			.channel = (char)('a' + i % 16),
			.name = c->name, .phase = c->phase,
			.feed = (i / 16) % 2 ? "B" : "A",
			.voltage = 230, .power_factor = i % 5 ? 0.93 : 0.85,
			.breaker = c->base_a > 14 ? 32 : 16, .tags = c->tags,
		};
	}
	return 0;
}

static void sim_free(struct sim *s)
{
	free(s->c);
	free(s->rows);
}

/* The rows of the boundary at t, the counters advanced by an interval. */
static void sim_step(struct sim *s, int64_t t)
{
	double day = (double)(t - s->start) / 86400;
	time_t tt = (time_t)t;
	struct tm tm;
	double hour, profile;

	localtime_r(&tt, &tm);
	hour = tm.tm_hour + tm.tm_min / 60.0;
	profile = 0.35 + 0.65 * (0.5 - 0.5 * cos(2 * M_PI * (hour - 4) / 24));
	for (size_t i = 0; i < s->n; i++) {
		struct sim_circuit *c = &s->c[i];
		struct pm_ledger_row *w = &s->rows[i];
		double amps = c->base_a * profile * (0.9 + 0.2 * uniform(s));
		double u = uniform(s);
		double metered = s->interval;

		w->peak_a = amps * (1 + 0.5 * uniform(s));
		w->unmetered_s = 0;
		if (i / 16 == 2 && day >= 100.5 && day < 100.75) {
			metered = 0;		/* device 3 down */
		} else if (u < 0.001) {
			metered = 0;		/* a missed interval */
		} else if (u < 0.004) {
			metered -= 10 + 290 * uniform(s);	/* a gap */
		}
		if (metered <= 0) {
			w->peak_a = NAN;
			metered = 0;
		}
		w->unmetered_s = s->interval - metered;
		c->ah += amps * metered / 3600;
		c->wh += amps * w->c.voltage * w->c.power_factor * metered / 3600;
		w->energy_wh = c->wh;
		w->charge_ah = c->ah;
		if (i == 5 && day >= 182 && !c->renamed) {
			c->renamed = true;
			snprintf(c->name, sizeof(c->name),
				 "pitch %03zu (new tenant)", i + 1);
			snprintf(c->tags, sizeof(c->tags),
				 "{\"customer\":\"C99\",\"pitch\":\"P%03zu\"}",
				 i + 1);
		}
	}
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int parse_start(const char *text, int64_t *out)
{
	struct tm tm;
	char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(text, "%Y-%m-%d", &tm);
	if (!end || *end)
		return -EINVAL;
	tm.tm_isdst = -1;
	*out = (int64_t)mktime(&tm);
	return 0;
}

/* Local midnight one calendar year after 'start'. */
static int64_t year_after(int64_t start)
{
	time_t tt = (time_t)start;
	struct tm tm;

	localtime_r(&tt, &tm);
	tm.tm_year++;
	tm.tm_isdst = -1;
	return (int64_t)mktime(&tm);
}

/* Writes boundaries (from, to] of 's' into 'l'; 'bulk' without fsync (a
 * generated file: durability is not what is measured). */
static int write_span(struct pm_ledger *l, struct sim *s, int64_t from,
		      int64_t to, long *boundaries)
{
	char err[512];
	long k = 0;

	for (int64_t t = from + s->interval; t <= to; t += s->interval) {
		k++;
		sim_step(s, t);
		if (pm_ledger_append(l, t, s->interval, s->rows, s->n, err,
				     sizeof(err)) < 0) {
			fprintf(stderr, "ledger-bench: %s\n", err);
			return -1;
		}
	}
	*boundaries = k;
	return 0;
}

static int open_bulk(struct pm_ledger **l, const char *path)
{
	char err[512];

	if (pm_ledger_open(l, path, PM_LEDGER_WRITE, err, sizeof(err)) < 0) {
		fprintf(stderr, "ledger-bench: %s\n", err);
		return -1;
	}
	(void)sqlite3_exec(pm_ledger_db(*l), "PRAGMA synchronous = OFF; "
			   "PRAGMA cache_size = -65536", NULL, NULL, NULL);
	return 0;
}

static int write_year(const char *path, size_t n, unsigned interval,
		      int64_t start)
{
	struct pm_ledger *l;
	struct sim s;
	struct stat st;
	long boundaries = 0;
	int64_t t0 = mono_ns();
	int64_t end = year_after(start);

	if (access(path, F_OK) == 0) {
		fprintf(stderr, "ledger-bench: %s exists; --write-year writes a "
			"new file\n", path);
		return 2;
	}
	if (sim_init(&s, n, interval, start) < 0 || open_bulk(&l, path) < 0)
		return 1;
	if (write_span(l, &s, start, end, &boundaries) < 0) {
		pm_ledger_close(l);
		return 1;
	}
	pm_ledger_close(l);
	sim_free(&s);
	if (stat(path, &st) < 0)
		return 1;
	printf("wrote %s: %zu circuits, %ld boundaries of %u s from %lld to "
	       "%lld, %.1f MB, in %.1f s\n", path, n, boundaries, interval,
	       (long long)start, (long long)end, st.st_size / 1e6,
	       (double)(mono_ns() - t0) / 1e9);
	return 0;
}

/* The month query of powermeter-ledger(5): kWh per circuit. */
static double month_query(const char *path, int64_t from, int64_t to,
			  int *groups)
{
	static const char sql[] =
		"SELECT device_id, channel,"
		"  (SELECT name FROM circuits AS c"
		"    WHERE c.device_id = l.device_id AND c.channel = l.channel"
		"    ORDER BY since DESC, id DESC LIMIT 1) AS name,"
		"  round((max(energy_wh) - min(energy_wh)) / 1000, 3) AS kwh "
		"FROM ledger AS l WHERE time BETWEEN ?1 AND ?2 "
		"GROUP BY device_id, channel ORDER BY device_id, channel";
	struct pm_ledger *l;
	sqlite3_stmt *st;
	char err[512];
	int64_t t0;

	*groups = 0;
	if (pm_ledger_open(&l, path, PM_LEDGER_READ, err, sizeof(err)) < 0) {
		fprintf(stderr, "ledger-bench: %s\n", err);
		return NAN;
	}
	t0 = mono_ns();
	if (sqlite3_prepare_v2(pm_ledger_db(l), sql, -1, &st, NULL) != SQLITE_OK) {
		pm_ledger_close(l);
		return NAN;
	}
	sqlite3_bind_int64(st, 1, from);
	sqlite3_bind_int64(st, 2, to);
	while (sqlite3_step(st) == SQLITE_ROW)
		(*groups)++;
	sqlite3_finalize(st);
	pm_ledger_close(l);
	return (double)(mono_ns() - t0) / 1e9;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "circuits", required_argument, NULL, 'n' },
		{ "interval", required_argument, NULL, 'i' },
		{ "start", required_argument, NULL, 's' },
		{ "appends", required_argument, NULL, 'a' },
		{ "dir", required_argument, NULL, 'd' },
		{ "keep", no_argument, NULL, 'k' },
		{ "write-year", required_argument, NULL, 'w' },
		{ 0 }
	};
	size_t n = 512, appends = 200;
	unsigned interval = 900;
	int64_t start = 0, end, t0;
	const char *dir = "/tmp", *year_path = NULL;
	char tmpl[4096], path[4200], err[512];
	bool keep = false, met_size, met_append;
	struct pm_ledger *l;
	struct sim s;
	struct stat st;
	long boundaries = 0;
	double *ms, year_s, cy, mb, found = 0, last_s, q_s;
	int opt, groups;

	if (parse_start("2023-01-01", &start) < 0)
		return 2;
	while ((opt = getopt_long(argc, argv, "n:i:s:a:d:kw:", options, NULL)) != -1) {
		switch (opt) {
		case 'n': n = strtoul(optarg, NULL, 10); break;
		case 'i': interval = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's':
			if (parse_start(optarg, &start) < 0) {
				fprintf(stderr, "ledger-bench: --start YYYY-MM-DD\n");
				return 2;
			}
			break;
		case 'a': appends = strtoul(optarg, NULL, 10); break;
		case 'd': dir = optarg; break;
		case 'k': keep = true; break;
		case 'w': year_path = optarg; break;
		default: return 2;
		}
	}
	if (n == 0 || n > 16384 || interval == 0 || interval > 3600 ||
	    3600 % interval || appends == 0) {
		fprintf(stderr, "ledger-bench: --circuits 1..16384, --interval "
			"dividing an hour, --appends >= 1\n");
		return 2;
	}
	if (year_path)
		return write_year(year_path, n, interval, start);

	snprintf(tmpl, sizeof(tmpl), "%s/pm-ledger-bench-XXXXXX", dir);
	if (!mkdtemp(tmpl)) {
		perror(tmpl);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/ledger.sqlite", tmpl);
	end = year_after(start);

	/* (b) a year, then its size */
	t0 = mono_ns();
	if (sim_init(&s, n, interval, start) < 0 || open_bulk(&l, path) < 0 ||
	    write_span(l, &s, start, end, &boundaries) < 0)
		return 1;
	pm_ledger_close(l);
	year_s = (double)(mono_ns() - t0) / 1e9;
	/* on the disk before appends are timed, as a daemon's year would be */
	{
		int fd = open(path, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || fsync(fd) < 0) {
			perror(path);
			return 1;
		}
		close(fd);
	}
	if (stat(path, &st) < 0)
		return 1;
	cy = (double)n * boundaries * interval / YEAR_S;
	mb = st.st_size / 1e6 / cy * 100;
	met_size = mb <= GOAL_MB_PER_100_CY;
	printf("a year of %zu circuits at %u s: %ld boundaries, %.0f rows, "
	       "written in %.1f s (without fsync)\n", n, interval, boundaries,
	       (double)n * boundaries, year_s);
	printf("file: %.1f MB, %.1f bytes per row\n", st.st_size / 1e6,
	       (double)st.st_size / ((double)n * boundaries));
	printf("size per 100 circuit-years: %.1f MB (%.1f MiB) (goal <= %.0f MB): "
	       "%s\n", mb, mb * 1e6 / (1024.0 * 1024.0), GOAL_MB_PER_100_CY,
	       met_size ? "met" : "MISSED");

	/* the daemon's start: the newest row of each circuit */
	if (pm_ledger_open(&l, path, PM_LEDGER_WRITE, err, sizeof(err)) < 0) {
		fprintf(stderr, "ledger-bench: %s\n", err);
		return 1;
	}
	t0 = mono_ns();
	for (size_t i = 0; i < n; i++) {
		double wh;

		if (pm_ledger_last(l, s.rows[i].c.device_id, s.rows[i].c.channel,
				   &wh, NULL) == 0)
			found++;
	}
	last_s = (double)(mono_ns() - t0) / 1e9;
	printf("start-up: pm_ledger_last for %zu circuits: %.1f ms (%.0f found)\n",
	       n, last_s * 1e3, found);

	/* (a) appends with the daemon's settings, on the year's file */
	ms = calloc(appends, sizeof(*ms));
	if (!ms)
		return 1;
	for (size_t k = 0; k < appends; k++) {
		int64_t t = end + (int64_t)(k + 1) * interval;

		sim_step(&s, t);
		t0 = mono_ns();
		if (pm_ledger_append(l, t, interval, s.rows, n, err,
				     sizeof(err)) < 0) {
			fprintf(stderr, "ledger-bench: %s\n", err);
			return 1;
		}
		ms[k] = (double)(mono_ns() - t0) / 1e6;
	}
	pm_ledger_close(l);
	qsort(ms, appends, sizeof(*ms), cmp_double);
	met_append = ms[appends - 1] <= GOAL_APPEND_MS;
	printf("append one boundary of %zu circuits (%zu boundaries, WAL, "
	       "synchronous=FULL, %s): median %.2f ms, p95 %.2f ms, max %.2f ms "
	       "(goal <= %.0f ms): %s\n", n, appends, dir, ms[appends / 2],
	       ms[appends * 95 / 100], ms[appends - 1], GOAL_APPEND_MS,
	       met_append ? "met" : "MISSED");
	free(ms);

	/* the month query of powermeter-ledger(5), on the last month */
	{
		time_t tt = (time_t)end;
		struct tm tm;
		int64_t from;

		localtime_r(&tt, &tm);
		tm.tm_mon--;
		tm.tm_isdst = -1;
		from = (int64_t)mktime(&tm);
		q_s = month_query(path, from, end, &groups);
		printf("powermeter-ledger(5)'s kWh per circuit for a month: "
		       "%.2f s (%d circuits)\n", q_s, groups);
	}

	sim_free(&s);
	if (keep) {
		printf("kept %s\n", path);
	} else {
		char cmd[4300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
		(void)!system(cmd);
	}
	return met_size && met_append ? 0 : 1;
}
