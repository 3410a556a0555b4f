/* cmd_zabbix.c — `powermeter zabbix discovery|feeds|status|circuits`:
 * low-level discovery of the configured inputs, feed phases and modules,
 * each module's health, the feeds' figures and the daemon's alarm severity
 * of every subject for triggers, and each circuit's current, estimated
 * power and energy. None touches a serial port: discovery comes from the
 * config, status and circuits from powermeterd's snapshot. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <powermeter/powermeter.h>

#include "util/buf.h"
#include "cli.h"
#include "config/config.h"
#include "meter/alarms.h"
#include "meter/snapshot.h"
#include "output/format.h"
#include "util/jsonstr.h"
#include "util/log.h"
#include "util/numfmt.h"
#include "util/timeutil.h"

#define ZABBIX_TEXT_MAX (64u * 1024 * 1024)

static void zabbix_usage(FILE *f)
{
	fprintf(f,
		"usage: powermeter zabbix discovery [-c CONFIG]\n"
		"       powermeter zabbix feeds [-c CONFIG]\n"
		"       powermeter zabbix status [-c CONFIG]\n"
		"       powermeter zabbix circuits [-c CONFIG]\n"
		"  discovery  Zabbix LLD JSON of the configured inputs\n"
		"             ({#ID}, {#DEVICE_ID}, {#INPUT}, {#NAME}, {#KEY},\n"
		"             {#PHASE}, {#TAG.<KEY>}, ...)\n"
		"  feeds      Zabbix LLD JSON of the configured feeds' phases\n"
		"             ({#FEED}, {#PHASE}, {#CAPACITY}, {#PARTNER})\n"
		"  status     powermeterd's snapshot age, every module's health,\n"
		"             the feeds' figures and the daemon's alarm severity\n"
		"             (0 ok, 1 warning, 2 critical) of every subject\n"
		"  circuits   every circuit's current, estimated power and energy\n"
		"             from powermeterd's snapshot\n"
		"  -c, --config PATH   config file (default %s)\n",
		PM_DEFAULT_CONFIG);
}

/* The members after an object's first: ", \"<name>\": " and the value in
 * one call, so that no name goes without its value. */

/* 'v' rounded to 'ndigits' (as the circuits' JSON of powermeter read; < 0:
 * as it is), or null when not known (NaN). */
static int add_number(struct pm_buf *b, const char *name, double v,
		      int ndigits)
{
	int r = pm_buf_printf(b, ", \"%s\": ", name);

	return r ? r : pm_json_number(b, ndigits < 0 ? v : pm_round(v, ndigits));
}

static int add_string(struct pm_buf *b, const char *name, const char *s)
{
	int r = pm_buf_printf(b, ", \"%s\": ", name);

	return r ? r : pm_json_string(b, s);
}

/* The tags a circuit's points carry besides phase: the file's and its own. */
static bool is_user_tag(const struct pm_tag *t)
{
	return strcmp(t->key, "phase") != 0;
}

/* {#TAG.<KEY>} for each of 'in''s tags: its key uppercased, which keeps it
 * within LLD macro names (A-Z, 0-9, _ and .); keys are lowercase
 * (config/circuits.c), so no two make one macro. */
static int tag_macros(struct pm_buf *b, const struct pm_input *in)
{
	int r = 0;

	for (size_t t = 0; t < in->n_point_tags && !r; t++) {
		const struct pm_tag *tag = &in->point_tags[t];
		char macro[64];
		size_t k;

		if (!is_user_tag(tag))
			continue;
		for (k = 0; tag->key[k] && k < sizeof(macro) - 1; k++)
			macro[k] = (char)toupper((unsigned char)tag->key[k]);
		macro[k] = '\0';
		r = pm_buf_printf(b, ", \"{#TAG.%s}\": ", macro);
		if (!r)
			r = pm_json_string(b, tag->value);
	}
	return r;
}

/* The start of an LLD row, on a line of its own: row *n (counted), its
 * first member next. */
static int lld_row(struct pm_buf *b, size_t *n)
{
	return pm_buf_adds(b, (*n)++ ? ",\n    {" : "\n    {");
}

/* Zabbix LLD JSON: "[", the rows that 'rows' writes (each begun with
 * lld_row()), "]". Both discoveries are one such array, of inputs or of
 * feed phases. */
static int lld_format(const struct pm_config *cfg, struct pm_buf *b,
		      int (*rows)(const struct pm_config *cfg,
				  struct pm_buf *b, size_t *n))
{
	size_t n = 0;
	int r;

	r = pm_buf_adds(b, "[");
	if (!r)
		r = rows(cfg, b, &n);
	if (!r)
		r = pm_buf_adds(b, n ? "\n]\n" : "]\n");
	return r;
}

/* {#KEY} is "<device id>.<input letter>": it stays with the circuit when
 * devices or inputs are added to the config, unlike {#ID}. */
static int discovery_rows(const struct pm_config *cfg, struct pm_buf *b,
			  size_t *n)
{
	int r = 0;

	for (size_t d = 0; d < cfg->n_devices && !r; d++) {
		const struct pm_device *dev = &cfg->devices[d];

		for (size_t i = 0; i < dev->n_inputs && !r; i++) {
			const struct pm_input *in = &dev->inputs[i];
			char letter = pm_channel_letter(in->channel);

			r = lld_row(b, n);
			if (!r)
				r = pm_buf_printf(b, "\"{#ID}\": %d, "
						  "\"{#DEVICE_ID}\": %d, "
						  "\"{#INPUT}\": \"%c\"", in->id,
						  dev->id, letter);
			if (!r)
				r = add_string(b, "{#NAME}",
					       in->name ? in->name : "");
			if (!r)
				r = pm_buf_printf(b, ", \"{#KEY}\": \"%d.%c\"",
						  dev->id, letter);
			if (!r)
				r = add_string(b, "{#PORT}", dev->port);
			if (!r)
				r = pm_buf_printf(b, ", \"{#ADDRESS}\": %d",
						  dev->address);
			if (!r)
				r = add_string(b, "{#PHASE}",
					       in->phase ? in->phase : "");
			if (!r)
				r = tag_macros(b, in);
			if (!r)
				r = pm_buf_adds(b, "}");
		}
	}
	return r;
}

/* One row per phase of every feed: {#FEED} (names cannot hold " \\ / ,
 * = { } $, config/feeds.c, so they fit JSONPath literals and quoted item
 * key parameters), {#PHASE}, {#CAPACITY} in A, {#PARTNER} ("" when
 * none). */
static int feeds_discovery_rows(const struct pm_config *cfg, struct pm_buf *b,
				size_t *n)
{
	int r = 0;

	for (size_t f = 0; f < cfg->n_feeds && !r; f++) {
		const struct pm_feed *feed = &cfg->feeds[f];

		for (unsigned p = 0; p < feed->n_phases && p < PM_PHASES && !r;
		     p++) {
			r = lld_row(b, n);
			if (!r)
				r = pm_buf_adds(b, "\"{#FEED}\": ");
			if (!r)
				r = pm_json_string(b, feed->name);
			if (!r)
				r = pm_buf_printf(b, ", \"{#PHASE}\": \"%s\"",
						  pm_phase_names[feed->phases[p]]);
			if (!r)
				r = add_number(b, "{#CAPACITY}", feed->capacity,
					       -1);
			if (!r)
				r = add_string(b, "{#PARTNER}",
					       feed->redundant_with
					       ? feed->redundant_with : "");
			if (!r)
				r = pm_buf_adds(b, "}");
		}
	}
	return r;
}

static int add_seconds(struct pm_buf *b, int64_t ms)
{
	char num[PM_DOUBLE_LEN];

	(void)pm_fmt_double(num, (double)ms / 1000.0);
	return pm_buf_adds(b, num);
}

/* What the daemon's alarms say, for Zabbix: the severity of the active
 * alarm of 'kind' on 'subject' (0 when none is active), or null while the
 * daemon's judgement is not known (no fresh snapshot with alarms), so
 * that the template discards the value rather than clearing a trigger. */
struct judgement {
	const struct pm_snapshot_info *info;	/* NULL: not known */
};

static int add_severity(struct pm_buf *b, const struct judgement *j,
			const char *name, enum pm_alarm_kind kind,
			const char *subject, bool first)
{
	const struct pm_snapshot_alarm *a;
	int r;

	r = pm_buf_printf(b, "%s\"%s\": ", first ? "" : ", ", name);
	if (r)
		return r;
	if (!j->info || !subject)
		return pm_buf_adds(b, j->info ? "0" : "null");
	a = pm_snapshot_alarm_find(j->info, kind, subject);
	return pm_buf_printf(b, "%d", a ? (int)a->severity : 0);
}

/* The end of one of status's arrays, of 'n' rows: on a line of its own
 * after rows, as each row is. */
static int status_array_end(struct pm_buf *b, size_t n)
{
	return pm_buf_adds(b, n ? "\n    ]" : "]");
}

/* One module's health. Without a fresh snapshot nothing is known to be
 * up: "up" is 0 and "error" says why, while "age" keeps growing from the
 * last success the daemon recorded (-1: none known). */
static int status_device(struct pm_buf *b, const struct pm_device *dev,
			 const struct pm_snapshot_device *sd, bool fresh,
			 const char *why_not, int64_t now_ms,
			 const struct judgement *j)
{
	static const struct pm_device_state none;
	char subject[32];
	const struct pm_device_state *st = sd ? &sd->state : NULL;
	const char *error;
	int r;

	r = pm_buf_printf(b, "        {\"device_id\": %d, \"port\": ", dev->id);
	if (!r)
		r = pm_json_string(b, dev->port);
	if (!r)
		r = pm_buf_printf(b, ", \"address\": %d, \"up\": %d, \"age\": ",
				  dev->address, fresh && st && st->up ? 1 : 0);
	if (!r)
		r = st && st->last_success_ms > 0
			? add_seconds(b, now_ms - st->last_success_ms)
			: pm_buf_adds(b, "-1");
	if (!r)
		r = pm_buf_printf(b, ", \"consecutive_failures\": %u, ",
				  st ? st->consecutive_failures : 0);
	if (!r)
		r = pm_snapshot_counters(b, st ? st : &none);
	if (!r)
		r = pm_buf_adds(b, ", \"error\": ");
	if (r)
		return r;
	if (!fresh)
		error = why_not;
	else if (st && !st->up)
		error = sd->error[0] ? sd->error : pm_strerror(st->last_error);
	else if (st && !st->last_attempt_ms)
		error = "not read yet by powermeterd";
	else
		error = "";
	r = pm_json_string(b, error);
	(void)pm_alarm_subject_module(subject, sizeof(subject), dev->id);
	if (!r)
		r = pm_buf_adds(b, ", \"severity\": {");
	if (!r)
		r = add_severity(b, j, "module_offline", PM_ALARM_MODULE_OFFLINE,
				 subject, true);
	if (!r)
		r = add_severity(b, j, "stale", PM_ALARM_STALE, subject, false);
	if (!r)
		r = pm_buf_adds(b, "}}");
	return r;
}

/* {"key": "1.a", "severity": {"circuit_load": 0, "load_lost": 0}}: one
 * circuit, keyed as in discovery. */
static int status_circuit(struct pm_buf *b, const struct pm_device *dev,
			  const struct pm_input *in, const struct judgement *j)
{
	int r;

	r = pm_buf_printf(b, "        {\"key\": \"%d.%c\", \"severity\": {",
			  dev->id, pm_channel_letter(in->channel));
	if (!r)
		r = add_severity(b, j, "circuit_load", PM_ALARM_CIRCUIT_LOAD,
				 in->subject, true);
	if (!r)
		r = add_severity(b, j, "load_lost", PM_ALARM_LOAD_LOST,
				 in->subject, false);
	if (!r)
		r = pm_buf_adds(b, "}}");
	return r;
}

/* Every circuit, in config order. */
static int status_circuits(struct pm_buf *b, const struct pm_config *cfg,
			   const struct judgement *j)
{
	size_t n = 0;
	int r;

	r = pm_buf_adds(b, ",\n    \"circuits\": [");
	for (size_t d = 0; d < cfg->n_devices && !r; d++) {
		const struct pm_device *dev = &cfg->devices[d];

		for (size_t i = 0; i < dev->n_inputs && !r; i++) {
			r = pm_buf_adds(b, n++ ? ",\n" : "\n");
			if (!r)
				r = status_circuit(b, dev, &dev->inputs[i], j);
		}
	}
	if (!r)
		r = status_array_end(b, n);
	return r;
}

/* The start of a row of "feeds" or of "feed_phases": which feed (and
 * which of its phases, unless 'phase' is NULL) and its capacity. */
static int feed_row(struct pm_buf *b, bool first, const struct pm_feed *feed,
		    const char *phase)
{
	int r;

	r = pm_buf_adds(b, first ? "\n        {\"feed\": "
			       : ",\n        {\"feed\": ");
	if (!r)
		r = pm_json_string(b, feed->name);
	if (!r && phase)
		r = pm_buf_printf(b, ", \"phase\": \"%s\"", phase);
	if (!r)
		r = add_number(b, "capacity", feed->capacity, -1);
	return r;
}

/* "feeds" (one row per feed: totals, imbalance, neutral) and
 * "feed_phases" (one per phase: current, power, load against capacity),
 * each with the daemon's severities. Figures are null unless 'fig' (the
 * fresh snapshot's, in config order). */
static int status_feeds(struct pm_buf *b, const struct pm_config *cfg,
			const struct pm_snapshot_feed *figs,
			const struct judgement *j)
{
	char subject[PM_ALARM_SUBJECT_MAX];
	size_t n = 0;
	int r;

	r = pm_buf_adds(b, ",\n    \"feeds\": [");
	for (size_t f = 0; f < cfg->n_feeds && !r; f++) {
		const struct pm_feed *feed = &cfg->feeds[f];
		const struct pm_snapshot_feed *fig = figs ? &figs[f] : NULL;
		bool known = fig && fig->known;

		r = feed_row(b, f == 0, feed, NULL);
		if (!r)
			r = add_string(b, "partner", feed->redundant_with
						     ? feed->redundant_with : "");
		if (!r)
			r = known ? pm_buf_printf(b, ", \"complete\": %d, "
						  "\"missing\": %u",
						  fig->complete ? 1 : 0,
						  fig->missing)
				  : pm_buf_adds(b, ", \"complete\": null, "
						"\"missing\": null");
		if (!r)
			r = add_number(b, "current",
				       known ? fig->current : NAN, -1);
		if (!r)
			r = add_number(b, "power", known ? fig->power : NAN, -1);
		if (!r)
			r = add_number(b, "imbalance",
				       known ? fig->imbalance : NAN, -1);
		if (!r)
			r = add_number(b, "neutral",
				       known ? fig->neutral : NAN, -1);
		if (!r)
			r = add_number(b, "redundant_load",
				       known ? fig->redundant_load : NAN, -1);
		if (!r)
			r = pm_buf_adds(b, ", \"severity\": {");
		if (!r)
			r = add_severity(b, j, "imbalance", PM_ALARM_IMBALANCE,
					 feed->name, true);
		if (!r)
			r = pm_buf_adds(b, "}}");
	}
	if (!r)
		r = status_array_end(b, cfg->n_feeds);
	if (!r)
		r = pm_buf_adds(b, ",\n    \"feed_phases\": [");
	for (size_t f = 0; f < cfg->n_feeds && !r; f++) {
		const struct pm_feed *feed = &cfg->feeds[f];
		const struct pm_snapshot_feed *fig = figs ? &figs[f] : NULL;
		bool known = fig && fig->known;

		for (unsigned p = 0; p < feed->n_phases && p < PM_PHASES && !r;
		     p++) {
			const struct pm_snapshot_feed_phase *ph =
				known ? &fig->phase[p] : NULL;

			r = feed_row(b, n++ == 0, feed,
				     pm_phase_names[feed->phases[p]]);
			if (!r)
				r = ph ? pm_buf_printf(b, ", \"inputs\": %u, "
						       "\"missing\": %u",
						       ph->inputs, ph->missing)
				       : pm_buf_adds(b, ", \"inputs\": null, "
						     "\"missing\": null");
			if (!r)
				r = add_number(b, "current",
					       ph ? ph->current : NAN, -1);
			if (!r)
				r = add_number(b, "power", ph ? ph->power : NAN, -1);
			if (!r)
				r = add_number(b, "load", ph ? ph->load : NAN, -1);
			if (!r)
				r = add_number(b, "redundant_load",
					       ph ? ph->redundant_load : NAN, -1);
			(void)pm_alarm_subject_phase(subject, sizeof(subject),
						     feed, p);
			if (!r)
				r = pm_buf_adds(b, ", \"severity\": {");
			if (!r)
				r = add_severity(b, j, "feed_load",
						 PM_ALARM_FEED_LOAD, subject, true);
			if (!r)
				r = add_severity(b, j, "redundancy",
						 PM_ALARM_REDUNDANCY,
						 pm_alarm_subject_pair(subject,
								       sizeof(subject),
								       cfg, f, p),
						 false);
			if (!r)
				r = pm_buf_adds(b, "}}");
		}
	}
	if (!r)
		r = status_array_end(b, n);
	return r;
}

/* "alarms": whether the daemon judges, how many are active, the worst
 * severity, the spool's, and the active alarms themselves (worst first);
 * the numbers null while not known. */
static int status_alarms(struct pm_buf *b, const struct judgement *j)
{
	const struct pm_snapshot_info *info = j->info;
	int worst = 0, r;

	if (!info)
		return pm_buf_adds(b, ",\n    \"alarms\": {\"enabled\": null, "
				   "\"count\": null, \"worst\": null, "
				   "\"spool_backlog\": null, \"active\": []}\n");
	for (size_t i = 0; i < info->n_alarms; i++)
		if ((int)info->alarms[i].severity > worst)
			worst = (int)info->alarms[i].severity;
	r = pm_buf_printf(b, ",\n    \"alarms\": {\"enabled\": %d, "
			  "\"count\": %zu, \"worst\": %d, ",
			  info->alarms_enabled ? 1 : 0, info->n_alarms, worst);
	if (!r)
		r = add_severity(b, j, "spool_backlog", PM_ALARM_SPOOL_BACKLOG,
				 PM_ALARM_SUBJECT_SPOOL, true);
	if (!r)
		r = pm_buf_adds(b, ", \"active\": [");
	for (size_t i = 0; i < info->n_alarms && !r; i++) {
		const struct pm_snapshot_alarm *a = &info->alarms[i];

		r = pm_buf_adds(b, i ? ",\n        {\"alarm\": "
				     : "\n        {\"alarm\": ");
		if (!r)
			r = pm_json_string(b, a->alarm);
		if (!r)
			r = add_string(b, "subject", a->subject);
		if (!r)
			r = pm_buf_printf(b, ", \"severity\": %d, "
					  "\"severity_name\": \"%s\"",
					  (int)a->severity,
					  pm_severity_name(a->severity));
		if (!r)
			r = add_number(b, "value", a->value, -1);
		if (!r)
			r = add_number(b, "threshold", a->threshold, -1);
		if (!r)
			r = pm_buf_printf(b, ", \"since\": %lld}",
					  (long long)a->since_ms);
	}
	if (!r)
		r = pm_buf_adds(b, info->n_alarms ? "\n    ]}\n" : "]}\n");
	return r;
}

/* {"snapshot": {...}, "devices": [...]}: the daemon's freshness first, so
 * that one trigger can say "powermeterd is not running" and the module
 * triggers depend on it. */
static int status_format(const struct pm_config *cfg, struct pm_buf *b,
			 int64_t now_ms)
{
	struct pm_snapshot_info info = { 0 };
	int64_t limit = (int64_t)(PM_SNAPSHOT_STALE_INTERVALS * cfg->interval *
				  1000.0);
	const char *why_not = NULL;
	struct judgement j = { NULL };
	bool fresh = false;
	int err, r;

	err = pm_snapshot_info_load(cfg, &info);
	if (err == 0) {
		int64_t age = now_ms - info.written_at_ms;

		fresh = age < limit && age > -limit;
		if (!fresh)
			why_not = "powermeterd's snapshot is older than 3 "
				  "intervals (daemon stopped or stuck?)";
	} else if (err == -PM_ENOSNAPSHOT) {
		why_not = "no snapshot of this configuration from powermeterd "
			  "(not running, or another config?)";
	} else if (err == -ENOMEM) {
		return err;
	} else {
		why_not = "powermeterd's snapshot cannot be read";
	}
	/* the daemon's judgement, only from a fresh file that carries it */
	j.info = !err && fresh && info.has_watch ? &info : NULL;
	r = pm_buf_printf(b, "{\n    \"snapshot\": {\"path\": ");
	if (!r)
		r = pm_json_string(b, cfg->snapshot ? cfg->snapshot : "");
	if (!r)
		r = pm_buf_printf(b, ", \"fresh\": %d, \"pid\": %ld, \"age\": ",
				  fresh ? 1 : 0, err ? 0L : (long)info.pid);
	if (!r)
		r = err ? pm_buf_adds(b, "-1")
			: add_seconds(b, now_ms - info.written_at_ms);
	if (!r)
		r = pm_buf_adds(b, ", \"error\": ");
	if (!r)
		r = pm_json_string(b, why_not ? why_not : "");
	if (!r)
		r = pm_buf_adds(b, "},\n    \"devices\": [");
	for (size_t d = 0; d < cfg->n_devices && !r; d++) {
		r = pm_buf_adds(b, d ? ",\n" : "\n");
		if (!r)
			r = status_device(b, &cfg->devices[d],
					  err ? NULL : &info.devices[d], fresh,
					  why_not, now_ms, &j);
	}
	if (!r)
		r = status_array_end(b, cfg->n_devices);
	if (!r)
		r = status_circuits(b, cfg, &j);
	/* figures and severities only of the daemon's feeds, and only
	 * fresh ones */
	if (!r) {
		struct judgement jf = { j.info && info.feeds_match ? j.info
								   : NULL };

		r = status_feeds(b, cfg, jf.info ? info.feeds : NULL, &jf);
	}
	if (!r)
		r = status_alarms(b, &j);
	if (!r)
		r = pm_buf_adds(b, "}\n");
	if (!err)
		pm_snapshot_info_free(&info);
	return r;
}

/* ---- circuits ------------------------------------------------------------ */

/* One circuit: what the config says of it, then its values from 'v' (NULL
 * or failed: every value null). */
static int circuit_format(struct pm_buf *b, const struct pm_device *dev,
			  const struct pm_input *in, const struct pm_value *v,
			  bool first)
{
	char letter = pm_channel_letter(in->channel);
	bool ok = v && v->status == 0;
	size_t shown = 0;
	int r;

	r = pm_buf_printf(b, "%s\n        {\"id\": %d, \"key\": \"%d.%c\", "
			  "\"device_id\": %d, \"input\": \"%c\", \"name\": ",
			  first ? "" : ",", in->id, dev->id, letter, dev->id,
			  letter);
	if (!r)
		r = pm_json_string(b, in->name ? in->name : "");
	if (!r)
		r = in->phase ? add_string(b, "phase", in->phase)
			      : pm_buf_adds(b, ", \"phase\": null");
	if (!r)
		r = add_number(b, "breaker", in->breaker > 0 ? in->breaker : NAN,
			       -1);
	if (!r)
		r = pm_buf_adds(b, ", \"tags\": {");
	for (size_t t = 0; t < in->n_point_tags && !r; t++) {
		if (!is_user_tag(&in->point_tags[t]))
			continue;
		r = pm_buf_adds(b, shown++ ? ", " : "");
		if (!r)
			r = pm_json_string(b, in->point_tags[t].key);
		if (!r)
			r = pm_buf_adds(b, ": ");
		if (!r)
			r = pm_json_string(b, in->point_tags[t].value);
	}
	if (!r)
		r = pm_buf_adds(b, "}");
	if (!r)
		r = add_number(b, "voltage", in->voltage, -1);
	if (!r)
		r = add_number(b, "power_factor", in->power_factor, -1);
	if (!r)
		r = add_number(b, "current", ok ? v->current : NAN, 2);
	if (!r)
		r = add_number(b, "power", ok ? v->power : NAN, 1);
	if (!r)
		r = add_number(b, "energy", ok ? v->energy : NAN, 3);
	if (!r)
		r = add_number(b, "charge", ok ? v->charge : NAN, 4);
	if (!r)
		r = pm_buf_adds(b, "}");
	return r;
}

/* {"estimate": ..., "units": ..., "circuits": [...]}: every configured
 * circuit in config order, the values of 'r' (the snapshot's readings) where
 * its device was read. */
static int circuits_format(const struct pm_config *cfg, const pm_readings *r,
			   struct pm_buf *b)
{
	size_t k = 0;
	int err;

	err = pm_buf_adds(b, "{\n    \"estimate\": {\"fields\": [\"power\", "
			  "\"energy\"], \"basis\": \"the modules measure "
			  "current only: power is current x the configured "
			  "voltage x power_factor, energy its integral over "
			  "time\"},\n    \"units\": {\"current\": \"A\", "
			  "\"power\": \"W\", \"energy\": \"Wh\", \"charge\": "
			  "\"Ah\", \"voltage\": \"V\", \"breaker\": \"A\"},\n"
			  "    \"circuits\": [");
	for (size_t d = 0; d < cfg->n_devices && !err; d++) {
		const struct pm_device *dev = &cfg->devices[d];

		for (size_t i = 0; i < dev->n_inputs && !err; i++, k++) {
			const struct pm_input *in = &dev->inputs[i];
			const struct pm_value *v = pm_readings_get(r, k);

			/* config order; anything else is not this circuit */
			if (v && (v->device_id != dev->id ||
				  v->channel != (int)in->channel + 1))
				v = NULL;
			err = circuit_format(b, dev, in, v, k == 0);
		}
	}
	if (!err)
		err = pm_buf_adds(b, k ? "\n    ]\n}\n" : "]\n}\n");
	return err;
}

/* Why the snapshot gives no values, for people. */
static const char *snapshot_problem(int err)
{
	if (err == -PM_ENOSNAPSHOT)
		return "no snapshot of this configuration from powermeterd "
		       "(not running, or another config?)";
	if (err == -PM_ESTALE)
		return "powermeterd's snapshot is older than 3 intervals "
		       "(daemon stopped or stuck?)";
	return pm_strerror(err);
}

/* Only ever the snapshot, never the bus (the agent must not wait for it, nor
 * take a port from the daemon). As powermeter json: without any current
 * value nothing is printed and the exit status is 1, so that Zabbix keeps
 * its last values rather than seeing every circuit's become unknown; a
 * module that failed leaves its circuits' values null, says why on stderr
 * and makes the exit status 1. */
static int circuits_run(const struct pm_config *cfg, struct pm_buf *out)
{
	pm_readings *r = NULL;
	size_t ok = 0;
	int err, status;

	err = pm_read(cfg, -1, PM_SOURCE_SNAPSHOT, &r);
	if (err == -ENOMEM) {
		log_err("circuits: %s", pm_strerror(err));
		return 1;
	}
	if (err) {
		log_err("no circuit values: %s", snapshot_problem(err));
		return 1;
	}
	cli_warn_failed_devices(cfg, r);
	for (size_t i = 0; i < pm_readings_count(r); i++)
		ok += pm_readings_get(r, i)->status == 0;
	if (!ok && pm_readings_count(r)) {
		pm_readings_free(r);
		return 1;
	}
	err = circuits_format(cfg, r, out);
	if (err) {
		log_err("circuits: %s", pm_strerror(err));
		status = 1;
	} else {
		status = cli_print_buf(out);
		if (!status && pm_readings_failed(r))
			status = 1;
	}
	pm_readings_free(r);
	return status;
}

int cmd_zabbix(int argc, char **argv)
{
	struct pm_config *cfg = NULL;
	const char *path = NULL, *what;
	struct pm_buf out;
	int err, status;

	/* In order: options before the subcommand; those after it are
	 * parsed again below. */
	status = cli_config_options(argc, argv, true, zabbix_usage, &path);
	if (status != CLI_GO_ON)
		return status;
	if (optind >= argc) {
		zabbix_usage(stderr);
		return 2;
	}
	what = argv[optind];
	if (strcmp(what, "discovery") && strcmp(what, "feeds") &&
	    strcmp(what, "status") && strcmp(what, "circuits")) {
		log_err("unknown zabbix command '%s' (discovery, feeds, status, "
			"circuits)", what);
		return 2;
	}
	argc -= optind;
	argv += optind;
	status = cli_config_options(argc, argv, true, zabbix_usage, &path);
	if (status != CLI_GO_ON)
		return status;
	if (optind != argc) {
		zabbix_usage(stderr);
		return 2;
	}
	status = cli_load_config(path, &cfg);
	if (status)
		return status;
	pm_buf_init(&out, ZABBIX_TEXT_MAX);
	if (!strcmp(what, "circuits")) {
		status = circuits_run(cfg, &out);
		goto out;
	}
	if (!strcmp(what, "discovery"))
		err = lld_format(cfg, &out, discovery_rows);
	else if (!strcmp(what, "feeds"))
		err = lld_format(cfg, &out, feeds_discovery_rows);
	else
		err = status_format(cfg, &out, pm_now_ms());
	if (err) {
		log_err("%s: %s", what, pm_strerror(err));
		status = 1;
		goto out;
	}
	status = cli_print_buf(&out);
out:
	pm_buf_free(&out);
	pm_config_free(cfg);
	return status;
}
