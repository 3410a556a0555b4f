/* lp_load.c — drives the InfluxDB sink (pm_sink_influx) without a bus: opens
 * it with a config built from the command line, feeds synthetic samples
 * (through emit(), i.e. lineproto) or raw line protocol, then closes it and
 * prints the sink's counters as one JSON line on stdout. Used by
 * tests/integration/writer.py and the writer benchmarks.
 *
 *   lp_load --url URL --api v2 --org o --bucket b --token t \
 *           --spool DIR --devices 2 --ticks 10 --pace-ms 1000
 *
 * In samples mode, tick i of device d (id d+1) is stamped start + i*step ms
 * and input c (channel c, ratio 0.01, name "Input <letter>") reads the raw
 * count lp_value(i, d, c) (so its current is that / 100). Each tick prints
 * "tick <i> <time_ms>" on stdout once queued. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "daemon/sink_influx.h"
#include "meter/sample.h"
#include "output/influx.h"
#include "output/spool.h"
#include "util/log.h"
#include "util/timeutil.h"

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

struct options {
	const char *mode;		/* "samples" or "raw" */
	size_t devices, inputs;
	long long ticks;
	long long start_ms, step_ms, first_tick;
	long pace_ms;
	long long points;		/* raw */
	size_t chunk_lines, series;	/* raw */
	double drain_s;			/* wait for delivery before close */
	int hold;			/* wait for SIGTERM before close */
	int reload;			/* close(final=false) */
	size_t max_queued;		/* raw: back-pressure */
};

static unsigned lp_value(long long tick, size_t dev, size_t ch)
{
	return (unsigned)((tick * 7 + (long long)dev * 101 + (long long)ch * 13) % 5000);
}

static void usage(void)
{
	fputs("usage: lp_load --url URL [--api v1|v2] [--db D] [--rp RP] "
	      "[--username U] [--password P] [--org O] [--bucket B] "
	      "[--token T] [--measurement M] [--spool DIR] [--spool-max N] "
	      "[--batch-lines N] [--batch-bytes N] [--flush S] [--timeout S] "
	      "[--backoff-min-ms N] [--backoff-max-ms N] [--auth-retry-ms N] "
	      "[--final-budget-ms N] [--ring-chunks N] [--nosync] "
	      "[--mode samples|raw] [--devices N] [--inputs N] [--ticks N] "
	      "[--first-tick N] [--start-ms T] [--step-ms N] [--pace-ms N] "
	      "[--points N] [--chunk-lines N] [--series N] [--drain S] "
	      "[--hold] [--reload-close] [--ring-bytes N] [--probe-ms N]\n",
	      stderr);
	exit(2);
}

static int build_config(struct pm_config *cfg, const struct options *o)
{
	int id = 0;

	cfg->n_devices = o->devices;
	cfg->devices = calloc(o->devices, sizeof(*cfg->devices));
	if (!cfg->devices)
		return -ENOMEM;
	for (size_t d = 0; d < o->devices; d++) {
		struct pm_device *dev = &cfg->devices[d];

		dev->id = (int)d + 1;
		dev->port = "/dev/null";
		dev->address = (int)d + 1;
		dev->n_inputs = o->inputs;
		dev->inputs = calloc(o->inputs, sizeof(*dev->inputs));
		if (!dev->inputs)
			return -ENOMEM;
		for (size_t c = 0; c < o->inputs; c++) {
			struct pm_input *in = &dev->inputs[c];

			in->channel = (unsigned)c;
			in->ratio = 0.01;
			in->id = id++;
			if (asprintf(&in->name, "Input %c",
				     pm_channel_letter((unsigned)c)) < 0)
				return -ENOMEM;
		}
	}
	cfg->n_inputs = (size_t)id;
	return 0;
}

static void free_config(struct pm_config *cfg)
{
	for (size_t d = 0; d < cfg->n_devices; d++) {
		for (size_t c = 0; c < cfg->devices[d].n_inputs; c++)
			free(cfg->devices[d].inputs[c].name);
		free(cfg->devices[d].inputs);
	}
	free(cfg->devices);
}

static uint64_t pushed;	/* points queued */

static void push_samples(void *sink, const struct pm_config *cfg,
			 const struct options *o)
{
	int64_t t0 = pm_mono_ns();

	for (long long i = o->first_tick; i < o->first_tick + o->ticks &&
	     !got_signal; i++) {
		int64_t stamp = o->start_ms + i * o->step_ms;

		for (size_t d = 0; d < o->devices; d++) {
			struct pm_sample s = {
				.device = d,
				.time_ms = stamp,
			};

			for (size_t c = 0; c < PM_CHANNELS; c++)
				s.current[c] = (uint16_t)lp_value(i, d, c);
			pm_sink_influx.emit(sink, cfg, d, &s, NULL);
			pushed += cfg->devices[d].n_inputs;
		}
		pm_sink_influx_tick(sink);
		printf("tick %lld %" PRId64 "\n", i, stamp);
		fflush(stdout);
		if (o->pace_ms > 0)
			pm_sleep_until_ns(t0 + (i - o->first_tick + 1) *
					  (int64_t)o->pace_ms * 1000000);
	}
}

static void push_raw(void *sink, const struct options *o)
{
	char line[128];
	struct pm_influx_stats st;

	for (long long j = 0; j < o->points && !got_signal;) {
		char *text;
		size_t len = 0, cap = o->chunk_lines * sizeof(line);

		pm_sink_influx_stats(sink, &st);
		if (st.queued > o->max_queued) {
			usleep(200);
			continue;
		}
		text = malloc(cap);
		if (!text)
			abort();
		for (size_t k = 0; k < o->chunk_lines; k++, j++) {
			int n = snprintf(line, sizeof(line),
					 "bench,series=s%zu value=%lld %lld\n",
					 (size_t)(j % (long long)o->series), j,
					 o->start_ms + j / (long long)o->series);

			memcpy(text + len, line, (size_t)n);
			len += (size_t)n;
		}
		(void)pm_sink_influx_put(sink, text, len);
		pushed += o->chunk_lines;
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "api", required_argument, NULL, 'a' },
		{ "db", required_argument, NULL, 'd' },
		{ "rp", required_argument, NULL, 'R' },
		{ "username", required_argument, NULL, 'U' },
		{ "password", required_argument, NULL, 'P' },
		{ "org", required_argument, NULL, 'o' },
		{ "bucket", required_argument, NULL, 'b' },
		{ "token", required_argument, NULL, 't' },
		{ "measurement", required_argument, NULL, 'm' },
		{ "spool", required_argument, NULL, 's' },
		{ "spool-max", required_argument, NULL, 'S' },
		{ "batch-lines", required_argument, NULL, 'l' },
		{ "batch-bytes", required_argument, NULL, 'B' },
		{ "flush", required_argument, NULL, 'f' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "backoff-min-ms", required_argument, NULL, 1 },
		{ "backoff-max-ms", required_argument, NULL, 2 },
		{ "auth-retry-ms", required_argument, NULL, 3 },
		{ "final-budget-ms", required_argument, NULL, 4 },
		{ "ring-chunks", required_argument, NULL, 5 },
		{ "nosync", no_argument, NULL, 6 },
		{ "mode", required_argument, NULL, 7 },
		{ "devices", required_argument, NULL, 8 },
		{ "inputs", required_argument, NULL, 9 },
		{ "ticks", required_argument, NULL, 10 },
		{ "first-tick", required_argument, NULL, 11 },
		{ "start-ms", required_argument, NULL, 12 },
		{ "step-ms", required_argument, NULL, 13 },
		{ "pace-ms", required_argument, NULL, 14 },
		{ "points", required_argument, NULL, 15 },
		{ "chunk-lines", required_argument, NULL, 16 },
		{ "series", required_argument, NULL, 17 },
		{ "drain", required_argument, NULL, 18 },
		{ "hold", no_argument, NULL, 19 },
		{ "reload-close", no_argument, NULL, 20 },
		{ "ring-bytes", required_argument, NULL, 21 },
		{ "probe-ms", required_argument, NULL, 22 },
		{ NULL, 0, NULL, 0 },
	};
	struct pm_influx ix = {
		.api = PM_INFLUX_V1,
		.verify_ssl = true,
		.batch_lines = 5000,
		.batch_bytes = 1024 * 1024,
		.flush_interval = 1.0,
		.timeout = 10.0,
	};
	struct pm_config cfg = {
		.interval = 1.0,
		.spool_max_bytes = PM_DEFAULT_SPOOL_MAX,
		.influx = &ix,
	};
	struct pm_influx_tuning tune = {0};
	struct options o = {
		.mode = "samples",
		.devices = 1,
		.inputs = 16,
		.ticks = 10,
		.step_ms = 1000,
		.points = 100000,
		.chunk_lines = 16,
		.series = 1000,
		.max_queued = 200000,
	};
	struct pm_influx_stats st;
	struct sigaction sa = { .sa_handler = on_signal };
	int64_t t_start, t_pushed, t_drained, t_closed;
	void *sink = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'u': ix.url = optarg; break;
		case 'a': ix.api = strcmp(optarg, "v2") == 0 ? PM_INFLUX_V2 :
			PM_INFLUX_V1; break;
		case 'd': ix.database = optarg; break;
		case 'R': ix.retention_policy = optarg; break;
		case 'U': ix.username = optarg; break;
		case 'P': ix.password = optarg; break;
		case 'o': ix.org = optarg; break;
		case 'b': ix.bucket = optarg; break;
		case 't': ix.token = optarg; break;
		case 'm': ix.measurement = optarg; break;
		case 's': cfg.spool_dir = optarg; break;
		case 'S': cfg.spool_max_bytes = strtoull(optarg, NULL, 10); break;
		case 'l': ix.batch_lines = strtoul(optarg, NULL, 10); break;
		case 'B': ix.batch_bytes = strtoul(optarg, NULL, 10); break;
		case 'f': ix.flush_interval = atof(optarg); break;
		case 'T': ix.timeout = atof(optarg); break;
		case 1: tune.backoff_min_ms = atol(optarg); break;
		case 2: tune.backoff_max_ms = atol(optarg); break;
		case 3: tune.auth_retry_ms = atol(optarg); break;
		case 4: tune.final_budget_ms = atol(optarg); break;
		case 5: tune.ring_chunks = strtoul(optarg, NULL, 10); break;
		case 6: tune.spool_flags |= PM_SPOOL_NOSYNC; break;
		case 7: o.mode = optarg; break;
		case 8: o.devices = strtoul(optarg, NULL, 10); break;
		case 9: o.inputs = strtoul(optarg, NULL, 10); break;
		case 10: o.ticks = atoll(optarg); break;
		case 11: o.first_tick = atoll(optarg); break;
		case 12: o.start_ms = atoll(optarg); break;
		case 13: o.step_ms = atoll(optarg); break;
		case 14: o.pace_ms = atol(optarg); break;
		case 15: o.points = atoll(optarg); break;
		case 16: o.chunk_lines = strtoul(optarg, NULL, 10); break;
		case 17: o.series = strtoul(optarg, NULL, 10); break;
		case 18: o.drain_s = atof(optarg); break;
		case 19: o.hold = 1; break;
		case 20: o.reload = 1; break;
		case 21: tune.ring_bytes = strtoul(optarg, NULL, 10); break;
		case 22: tune.probe_ms = atol(optarg); break;
		default: usage();
		}
	}
	if (!ix.url || o.inputs > PM_CHANNELS || o.chunk_lines == 0 ||
	    o.series == 0)
		usage();
	if (o.start_ms == 0)
		o.start_ms = pm_now_ms() / 1000 * 1000;

	pm_log_init("lp_load", 0);
	pm_log_set_level(LOG_DEBUG);
	if (pm_influx_global_init() < 0)
		return 1;
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	pm_sink_influx_tune(&tune);
	r = build_config(&cfg, &o);
	if (r == 0)
		r = pm_sink_influx.open(&sink, &cfg);
	if (r < 0) {
		fprintf(stderr, "lp_load: cannot open the sink: %s\n",
			pm_strerror(r));
		free_config(&cfg);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);

	t_start = pm_mono_ns();
	if (strcmp(o.mode, "raw") == 0)
		push_raw(sink, &o);
	else
		push_samples(sink, &cfg, &o);
	t_pushed = pm_mono_ns();
	if (o.drain_s > 0) {
		int64_t end = t_pushed + (int64_t)(o.drain_s * 1e9);

		while (!got_signal && pm_mono_ns() < end) {
			pm_sink_influx_stats(sink, &st);
			/* everything queued is accounted for */
			if (st.written + st.rejected + st.dropped >= pushed &&
			    st.spool_points == 0 && st.queued == 0)
				break;
			usleep(1000);
		}
	}
	t_drained = pm_mono_ns();
	while (o.hold && !got_signal)
		pause();
	t_closed = pm_mono_ns();
	pm_sink_influx_close(sink, !o.reload, &st);
	t_closed = pm_mono_ns() - t_closed;
	printf("{\"pushed\": %" PRIu64 ", \"written\": %" PRIu64 ", \"replayed\": %" PRIu64
	       ", \"rejected\": %" PRIu64 ", \"spooled\": %" PRIu64
	       ", \"dropped\": %" PRIu64 ", \"requests\": %" PRIu64
	       ", \"retries\": %" PRIu64 ", \"spool_points\": %" PRIu64
	       ", \"dropped_queue\": %" PRIu64 ", \"dropped_memory\": %" PRIu64
	       ", \"dropped_bound\": %" PRIu64 ", \"dropped_damaged\": %" PRIu64
	       ", \"dropped_torn\": %" PRIu64 ", \"dropped_deleted\": %" PRIu64
	       ", \"push_s\": %.6f, \"drain_s\": %.6f, \"close_s\": %.6f}\n",
	       pushed, st.written, st.replayed, st.rejected, st.spooled, st.dropped,
	       st.requests, st.retries, st.spool_points, st.dropped_queue,
	       st.dropped_memory, st.dropped_bound, st.dropped_damaged,
	       st.dropped_torn, st.dropped_deleted,
	       (double)(t_pushed - t_start) / 1e9,
	       (double)(t_drained - t_start) / 1e9, (double)t_closed / 1e9);
	fflush(stdout);
	free_config(&cfg);
	pm_influx_global_cleanup();
	return 0;
}
