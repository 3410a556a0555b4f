/* cmd_status.c — `powermeter status`: modules, feeds and active alarms as
 * powermeterd last wrote them to its snapshot (never the serial port), for
 * people and, by its first line and exit status, as an Icinga/Nagios check
 * (the monitoring-plugin convention: 0 OK, 1 WARNING, 2 CRITICAL,
 * 3 UNKNOWN). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <powermeter/powermeter.h>

#include "cli.h"
#include "config/config.h"
#include "meter/alarms.h"
#include "meter/snapshot.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/timeutil.h"

/* The monitoring-plugin exit statuses. */
enum {
	STATUS_OK = 0,
	STATUS_WARNING = 1,
	STATUS_CRITICAL = 2,
	STATUS_UNKNOWN = 3,
};

#define STATUS_TEXT_MAX (16u * 1024 * 1024)
/* Alarms named on the first line; the rest are counted. */
#define SUMMARY_ALARMS 3

static const char *const status_words[] = {
	"OK", "WARNING", "CRITICAL", "UNKNOWN",
};

static void status_usage(FILE *f)
{
	fprintf(f,
		"usage: powermeter status [-c CONFIG]\n"
		"Modules, feeds per phase against capacity and active alarms\n"
		"from powermeterd's snapshot; the first line and the exit status\n"
		"(0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) make it an Icinga or\n"
		"Nagios check.\n"
		"  -c, --config PATH   config file (default %s)\n",
		PM_DEFAULT_CONFIG);
}

/* 'v' with at most 'decimals' digits after the point, trailing zeros
 * dropped: 103.2, 100, 0.5. */
static const char *num(char *buf, size_t size, double v, int decimals)
{
	char *dot, *end;

	if (!isfinite(v)) {
		(void)snprintf(buf, size, "?");
		return buf;
	}
	(void)snprintf(buf, size, "%.*f", decimals, v);
	dot = strchr(buf, '.');
	if (dot) {
		end = buf + strlen(buf) - 1;
		while (end > dot && *end == '0')
			*end-- = '\0';
		if (end == dot)
			*end = '\0';
	}
	if (!strcmp(buf, "-0"))
		(void)snprintf(buf, size, "0");
	return buf;
}

/* 'v' with exactly 'decimals' digits after the point: 23.00. */
static const char *fixed(char *buf, size_t size, double v, int decimals)
{
	if (!isfinite(v))
		(void)snprintf(buf, size, "?");
	else
		(void)snprintf(buf, size, "%.*f", decimals, v);
	return buf;
}

/* What an alarm's value and threshold are measured in, and how the value
 * stands against the threshold while it is raised. */
static const char *alarm_unit(int kind)
{
	switch (kind) {
	case PM_ALARM_CIRCUIT_LOAD:
	case PM_ALARM_FEED_LOAD:
	case PM_ALARM_IMBALANCE:
	case PM_ALARM_REDUNDANCY:
		return "%";
	case PM_ALARM_LOAD_LOST:
		return "A";
	case PM_ALARM_MODULE_OFFLINE:
	case PM_ALARM_STALE:
		return "s";
	case PM_ALARM_SPOOL_BACKLOG:
		return "MB";
	default:
		return "";
	}
}

/* "103.2 % >= 100 %", "0 A < 0.5 A"; "" without a value. */
static void alarm_figures(char *buf, size_t size,
			  const struct pm_snapshot_alarm *a)
{
	const char *unit = alarm_unit(a->kind);
	const char *sep = *unit ? " " : "";
	char v[32], t[32];

	if (isnan(a->value)) {
		buf[0] = '\0';
		return;
	}
	if (isnan(a->threshold)) {
		(void)snprintf(buf, size, "%s%s%s", num(v, sizeof(v), a->value, 1),
			       sep, unit);
		return;
	}
	(void)snprintf(buf, size, "%s%s%s %s %s%s%s",
		       num(v, sizeof(v), a->value, 1), sep, unit,
		       a->kind == PM_ALARM_LOAD_LOST ? "<" : ">=",
		       num(t, sizeof(t), a->threshold, 1), sep, unit);
}

/* "3 min 12 s" */
static void duration(char *buf, size_t size, int64_t ms)
{
	long long s = ms > 0 ? ms / 1000 : 0;

	if (s < 60)
		(void)snprintf(buf, size, "%lld s", s);
	else if (s < 3600)
		(void)snprintf(buf, size, "%lld min %lld s", s / 60, s % 60);
	else if (s < 86400)
		(void)snprintf(buf, size, "%lld h %lld min", s / 3600,
			       s / 60 % 60);
	else
		(void)snprintf(buf, size, "%lld d %lld h", s / 86400,
			       s / 3600 % 24);
}

/* Local time of 'ms', "2025-01-31 14:05:09". */
static void local_time(char *buf, size_t size, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || !localtime_r(&t, &tm) ||
	    !strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm))
		(void)snprintf(buf, size, "?");
}

/* A perfdata label: quoted, a quote doubled, no '=' (the guidelines
 * forbid it). */
static int add_label(struct pm_buf *b, const char *feed, const char *phase)
{
	int r = pm_buf_addc(b, '\'');

	for (const char *s = feed; *s && !r; s++)
		r = *s == '\'' ? pm_buf_adds(b, "''")
			       : pm_buf_addc(b, *s == '=' ? '_' : *s);
	if (!r)
		r = pm_buf_printf(b, " %s load'=", phase);
	return r;
}

/* " | 'UPS A L1 load'=43.75%;80;100;0 ...": every feed phase's load with
 * the feed_load rule's thresholds (none when it is off). */
static int perfdata(struct pm_buf *b, const struct pm_config *cfg,
		    const struct pm_snapshot_info *info)
{
	const struct pm_alarm_rule *rule = &cfg->alarms.feed_load;
	bool thresholds = cfg->alarms.enabled && rule->enabled;
	char w[32] = "", c[32] = "", v[32];
	int r = 0;

	if (!info->n_feeds)
		return 0;
	if (thresholds) {
		(void)num(w, sizeof(w), rule->warning, 2);
		(void)num(c, sizeof(c), rule->critical, 2);
	}
	r = pm_buf_adds(b, " |");
	for (size_t f = 0; f < info->n_feeds && !r; f++) {
		const struct pm_snapshot_feed *fd = &info->feeds[f];

		for (unsigned p = 0; p < fd->n_phases && !r; p++) {
			double load = fd->phase[p].load;

			r = pm_buf_addc(b, ' ');
			if (!r)
				r = add_label(b, cfg->feeds[f].name,
					      pm_phase_names[fd->phase[p].phase]);
			if (!r)
				r = isfinite(load)
					? pm_buf_printf(b, "%s%%",
							num(v, sizeof(v), load, 2))
					: pm_buf_adds(b, "U");
			if (!r)
				r = pm_buf_printf(b, ";%s;%s;0", w, c);
		}
	}
	return r;
}

static int worst_severity(const struct pm_snapshot_info *info)
{
	int worst = PM_SEVERITY_OK;

	for (size_t i = 0; i < info->n_alarms; i++)
		if ((int)info->alarms[i].severity > worst)
			worst = (int)info->alarms[i].severity;
	return worst;
}

static size_t modules_up(const struct pm_snapshot_info *info)
{
	size_t up = 0;

	for (size_t d = 0; d < info->n_devices; d++)
		up += info->devices[d].state.up;
	return up;
}

/* "POWERMETER CRITICAL - 2 alarms: feed_load UPS A L1 critical (103.2 % >=
 * 100 %), ..." or "POWERMETER OK - 4/4 modules up, 2 feeds, no alarms",
 * then the perfdata. */
static int summary(struct pm_buf *b, const struct pm_config *cfg,
		   const struct pm_snapshot_info *info, int status)
{
	char fig[96];
	int r;

	r = pm_buf_printf(b, "POWERMETER %s - ", status_words[status]);
	if (!r && info->n_alarms) {
		r = pm_buf_printf(b, "%zu alarm%s: ", info->n_alarms,
				  info->n_alarms == 1 ? "" : "s");
		for (size_t i = 0; i < info->n_alarms && i < SUMMARY_ALARMS &&
				   !r; i++) {
			const struct pm_snapshot_alarm *a = &info->alarms[i];

			alarm_figures(fig, sizeof(fig), a);
			r = pm_buf_printf(b, "%s%s %s %s%s%s%s", i ? ", " : "",
					  a->alarm, a->subject,
					  pm_severity_name(a->severity),
					  *fig ? " (" : "", fig, *fig ? ")" : "");
		}
		if (!r && info->n_alarms > SUMMARY_ALARMS)
			r = pm_buf_printf(b, " and %zu more",
					  info->n_alarms - SUMMARY_ALARMS);
		if (!r)
			r = pm_buf_adds(b, "; ");
	}
	if (!r)
		r = pm_buf_printf(b, "%zu/%zu modules up, %zu feed%s", modules_up(info),
				  info->n_devices, cfg->n_feeds,
				  cfg->n_feeds == 1 ? "" : "s");
	if (!r && !info->n_alarms)
		r = pm_buf_adds(b, info->alarms_enabled ? ", no alarms"
							: ", alarms disabled");
	if (!r)
		r = perfdata(b, cfg, info);
	if (!r)
		r = pm_buf_addc(b, '\n');
	return r;
}

/* What the line is like: frames sent and the bad answers among them. */
static int line_counters(struct pm_buf *b, const struct pm_device_state *st)
{
	return pm_buf_printf(b, "    %llu requests, %llu retried (%.1f %%): "
			     "%llu timeouts, %llu CRC errors, %llu other bad "
			     "frames; %llu of %llu reads failed\n",
			     (unsigned long long)st->requests,
			     (unsigned long long)st->retries,
			     100.0 * (double)st->retries / (double)st->requests,
			     (unsigned long long)st->timeouts,
			     (unsigned long long)st->crc_errors,
			     (unsigned long long)st->frame_errors,
			     (unsigned long long)st->failures,
			     (unsigned long long)(st->reads + st->failures));
}

static int modules_detail(struct pm_buf *b, const struct pm_config *cfg,
			  const struct pm_snapshot_info *info)
{
	int r;

	r = pm_buf_printf(b, "modules: %zu of %zu up\n", modules_up(info),
			  info->n_devices);
	for (size_t d = 0; d < info->n_devices && !r; d++) {
		const struct pm_device *dev = &cfg->devices[d];
		const struct pm_snapshot_device *sd = &info->devices[d];
		const struct pm_device_state *st = &sd->state;

		r = pm_buf_printf(b, "  module %d (%s address %d): ", dev->id,
				  dev->port, dev->address);
		if (r)
			break;
		if (!st->last_attempt_ms && !sd->has_sample)
			r = pm_buf_adds(b, "not read yet\n");
		else if (st->up && st->consecutive_failures)
			r = pm_buf_printf(b, "up, last %u read%s failed: %s\n",
					  st->consecutive_failures,
					  st->consecutive_failures == 1 ? "" : "s",
					  sd->error[0] ? sd->error
						       : pm_strerror(st->last_error));
		else if (st->up)
			r = pm_buf_adds(b, "up\n");
		else
			r = pm_buf_printf(b, "DOWN, %u consecutive failure%s: %s\n",
					  st->consecutive_failures,
					  st->consecutive_failures == 1 ? "" : "s",
					  sd->error[0] ? sd->error
						       : pm_strerror(st->last_error));
		if (!r && st->requests)
			r = line_counters(b, st);
	}
	return r;
}

/* "at least " when a sum misses circuits: then it is a lower bound. */
static const char *at_least(unsigned missing)
{
	return missing ? "at least " : "";
}

/* Circuits of feed f's partner on the phase of f's phase p that lack a
 * reading: the pair's redundant load is then a lower bound too. */
static unsigned partner_missing(const struct pm_config *cfg,
				const struct pm_snapshot_info *info, size_t f,
				unsigned p)
{
	int o = cfg->feeds[f].partner;
	const struct pm_snapshot_feed *of;

	if (o < 0 || (size_t)o >= info->n_feeds)
		return 0;
	of = &info->feeds[o];
	for (unsigned i = 0; i < of->n_phases; i++)
		if (of->phase[i].phase == info->feeds[f].phase[p].phase)
			return of->known ? of->phase[i].missing : 0;
	return 0;
}

static int phase_detail(struct pm_buf *b, const struct pm_config *cfg,
			const struct pm_snapshot_info *info, size_t f,
			unsigned p)
{
	const struct pm_feed *feed = &cfg->feeds[f];
	const struct pm_snapshot_feed_phase *ph = &info->feeds[f].phase[p];
	char cur[32], load[32], cap[32], pw[32], red[32];
	int r;

	r = pm_buf_printf(b, "    %s: ", pm_phase_names[ph->phase]);
	if (!r && ph->inputs == 0)
		return pm_buf_adds(b, "no circuits\n");
	if (!r)
		/* one "at least" for the three: all are sums over the same
		 * circuits */
		r = pm_buf_printf(b, "%s%s A, %s %% of %s A, %s W",
				  at_least(ph->missing),
				  fixed(cur, sizeof(cur), ph->current, 2),
				  fixed(load, sizeof(load), ph->load, 1),
				  num(cap, sizeof(cap), feed->capacity, 1),
				  fixed(pw, sizeof(pw), ph->power, 0));
	/* this phase and the partner's together, in % of the smaller
	 * capacity (meter/feeds.h): a lower bound while either misses a
	 * reading */
	if (!r && feed->redundant_with && isfinite(ph->redundant_load))
		r = pm_buf_printf(b, ", redundant load %s%s %%",
				  at_least(ph->missing +
					   partner_missing(cfg, info, f, p)),
				  fixed(red, sizeof(red), ph->redundant_load, 1));
	if (!r && ph->missing)
		r = pm_buf_printf(b, " (%u of %u circuit%s without a reading)",
				  ph->missing, ph->inputs,
				  ph->inputs == 1 ? "" : "s");
	if (!r)
		r = pm_buf_addc(b, '\n');
	return r;
}

static int feeds_detail(struct pm_buf *b, const struct pm_config *cfg,
			const struct pm_snapshot_info *info)
{
	char v[32], n[32];
	int r;

	if (!cfg->n_feeds)
		return pm_buf_adds(b, "feeds: none configured\n");
	r = pm_buf_adds(b, "feeds:\n");
	for (size_t f = 0; f < info->n_feeds && !r; f++) {
		const struct pm_feed *feed = &cfg->feeds[f];
		const struct pm_snapshot_feed *fd = &info->feeds[f];

		r = pm_buf_printf(b, "  %s: %s A per phase", feed->name,
				  num(v, sizeof(v), feed->capacity, 1));
		if (!r && feed->redundant_with)
			r = pm_buf_printf(b, ", redundant with %s",
					  feed->redundant_with);
		if (!r && !fd->known)
			r = pm_buf_adds(b, ": no figures yet\n");
		if (r || !fd->known)
			continue;
		r = pm_buf_addc(b, '\n');
		for (unsigned p = 0; p < fd->n_phases && !r; p++)
			r = phase_detail(b, cfg, info, f, p);
		if (r || feed->n_phases < 2)
			continue;
		if (!fd->complete)
			r = pm_buf_printf(b, "    imbalance and neutral unknown: "
					  "%u circuit%s without a reading\n",
					  fd->missing, fd->missing == 1 ? "" : "s");
		else
			r = pm_buf_printf(b, "    imbalance %s %%, neutral %s A "
					  "(estimated)\n",
					  isfinite(fd->imbalance)
					  ? fixed(v, sizeof(v), fd->imbalance, 1)
					  : "n/a (no load)",
					  fixed(n, sizeof(n), fd->neutral, 2));
	}
	return r;
}

static int alarms_detail(struct pm_buf *b, const struct pm_snapshot_info *info,
			 int64_t now_ms)
{
	char fig[96], when[32], dur[32];
	int r;

	if (!info->alarms_enabled)
		return pm_buf_adds(b, "alarms: disabled in the config\n");
	if (!info->n_alarms)
		return pm_buf_adds(b, "alarms: none\n");
	r = pm_buf_adds(b, "alarms:\n");
	for (size_t i = 0; i < info->n_alarms && !r; i++) {
		const struct pm_snapshot_alarm *a = &info->alarms[i];

		alarm_figures(fig, sizeof(fig), a);
		local_time(when, sizeof(when), a->since_ms);
		duration(dur, sizeof(dur), now_ms - a->since_ms);
		r = pm_buf_printf(b, "  %s %s %s%s%s, since %s (%s)\n",
				  a->severity == PM_SEVERITY_CRITICAL
				  ? "CRITICAL" : "WARNING",
				  a->alarm, a->subject, *fig ? ": " : "", fig,
				  when, dur);
	}
	return r;
}

/* The snapshot cannot tell: the first line says why and what to do. */
static int unknown(struct pm_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int unknown(struct pm_buf *b, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	(void)pm_buf_printf(b, "POWERMETER UNKNOWN - %s\n", text);
	return STATUS_UNKNOWN;
}

/* Why pm_snapshot_info_load() gave 'err', on the first line. */
static int snapshot_unknown(struct pm_buf *b, const struct pm_config *cfg,
			    int err)
{
	const char *path = cfg->snapshot ? cfg->snapshot : "";
	struct stat st;

	if (!*path)
		return unknown(b, "no snapshot configured (\"snapshot\" in %s), "
			       "so powermeterd's state cannot be known",
			       cfg->path ? cfg->path : PM_DEFAULT_CONFIG);
	if (err == -PM_ENOSNAPSHOT && stat(path, &st) < 0 && errno == ENOENT)
		return unknown(b, "no snapshot at %s: is powermeterd running? "
			       "(systemctl status powermeterd)", path);
	if (err == -PM_ENOSNAPSHOT)
		return unknown(b, "the snapshot at %s is of another configuration "
			       "than %s: powermeterd runs with another config or "
			       "has not reloaded it (systemctl reload powermeterd)",
			       path, cfg->path ? cfg->path : PM_DEFAULT_CONFIG);
	return unknown(b, "cannot read powermeterd's snapshot %s: %s", path,
		       pm_strerror(err));
}

/* Everything after the config is loaded: the text into 'b', the exit
 * status returned. */
static int status_format(const struct pm_config *cfg, struct pm_buf *b,
			 int64_t now_ms)
{
	struct pm_snapshot_info info = { 0 };
	double interval;
	int64_t age, limit;
	char when[32], dur[32], iv[32];
	int err, status, r;

	err = pm_snapshot_info_load(cfg, &info);
	if (err == -ENOMEM)
		return -ENOMEM;
	if (err)
		return snapshot_unknown(b, cfg, err);
	/* the writer's interval: it says how often the file is replaced */
	interval = info.interval > 0 ? info.interval : cfg->interval;
	age = now_ms - info.written_at_ms;
	limit = (int64_t)(PM_SNAPSHOT_STALE_INTERVALS * interval * 1000.0);
	(void)num(iv, sizeof(iv), interval, 3);
	if (age >= limit || age <= -limit) {
		local_time(when, sizeof(when), info.written_at_ms);
		duration(dur, sizeof(dur), age);
		status = unknown(b, "powermeterd's snapshot %s is stale: written "
				 "%s (%s ago) by pid %ld, more than %d intervals "
				 "of %s s: is powermeterd stopped or stuck? "
				 "(systemctl status powermeterd)",
				 cfg->snapshot, when,
				 age < 0 ? "in the future" : dur, (long)info.pid,
				 PM_SNAPSHOT_STALE_INTERVALS, iv);
		goto out;
	}
	if (!info.has_watch) {
		status = unknown(b, "powermeterd (pid %ld) writes no alarms to "
				 "its snapshot: it is older than this powermeter "
				 "(systemctl restart powermeterd)", (long)info.pid);
		goto out;
	}
	if (!info.feeds_match) {
		status = unknown(b, "the snapshot at %s has other feeds than %s: "
				 "powermeterd has not reloaded the config "
				 "(systemctl reload powermeterd)", cfg->snapshot,
				 cfg->path ? cfg->path : PM_DEFAULT_CONFIG);
		goto out;
	}
	status = worst_severity(&info);
	r = summary(b, cfg, &info, status);
	if (!r)
		r = pm_buf_printf(b, "snapshot: %s, written %s s ago by "
				  "powermeterd (pid %ld), interval %s s\n",
				  cfg->snapshot,
				  num(dur, sizeof(dur), age > 0 ? age / 1000.0 : 0, 1),
				  (long)info.pid, iv);
	if (!r)
		r = modules_detail(b, cfg, &info);
	if (!r)
		r = feeds_detail(b, cfg, &info);
	if (!r)
		r = alarms_detail(b, &info, now_ms);
	if (!r && cfg->n_feeds)
		r = pm_buf_adds(b, "power: estimated from configured voltage "
				"and power factor (the modules measure current "
				"only)\n");
	if (r)
		status = r;
out:
	pm_snapshot_info_free(&info);
	return status;
}

int cmd_status(int argc, char **argv)
{
	struct pm_config *cfg = NULL;
	const char *path = NULL;
	struct pm_buf out;
	int status;

	status = cli_config_options(argc, argv, false, status_usage, &path);
	/* A usage error is UNKNOWN: 2 would read as CRITICAL to a monitor. */
	if (status != CLI_GO_ON)
		return status == 0 ? 0 : STATUS_UNKNOWN;
	if (optind != argc) {
		status_usage(stderr);
		return STATUS_UNKNOWN;
	}
	status = cli_load_config(path, &cfg);
	if (status)
		return status;
	pm_buf_init(&out, STATUS_TEXT_MAX);
	status = status_format(cfg, &out, pm_now_ms());
	if (status < 0) {
		printf("POWERMETER UNKNOWN - %s\n", pm_strerror(status));
		status = STATUS_UNKNOWN;
	} else if (cli_print_buf(&out)) {
		status = STATUS_UNKNOWN;
	}
	pm_buf_free(&out);
	pm_config_free(cfg);
	return status;
}
