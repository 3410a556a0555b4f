/* snapshot.c — the daemon's snapshot file: kept in memory by the poller
 * threads (and the feeds and alarms by the watch), written atomically after
 * every tick, and read back (validated against the reader's config, checked
 * for freshness) by pm_read(), `powermeter status` and the Zabbix commands,
 * so that nobody but the daemon touches its serial ports. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "bus/bus.h"
#include "device/driver.h"
#include "meter/failure.h"
#include "meter/readings.h"
#include "meter/snapshot.h"
#include "util/atomicfile.h"
#include "util/fileio.h"
#include "util/jsonstr.h"
#include "util/numfmt.h"

/* ---- writer ------------------------------------------------------------- */

struct snap_device {
	bool has_sample;
	struct pm_sample sample;
	struct pm_device_state state;
	char error[256];	/* text of state.last_error, "" when 0 */
};

struct pm_snapshot {
	const struct pm_config *cfg;
	pthread_mutex_t lock;		/* guards devices[] */
	pthread_mutex_t write_lock;	/* one pm_snapshot_write at a time */
	struct snap_device *devices;
	char (*ratio_text)[PM_DOUBLE_LEN];	/* per input id: constant */
	/* the "feeds", "alarms" and "alarms_enabled" members, formatted by
	 * pm_snapshot_watch; under lock, as is watch_error (its failure) */
	struct pm_buf watch_text;
	int watch_error;
	struct pm_buf text;		/* under write_lock */
	struct pm_atomic_file file;	/* cfg->snapshot, under write_lock */
	bool has_file;
	int64_t written_at;		/* last stamp written, under write_lock */
};

static int format_watch(struct pm_buf *b, const struct pm_config *cfg,
			int64_t time_ms, const struct pm_feed_fig *feeds,
			const struct pm_alarm *const *active, size_t n_active);

struct pm_snapshot *pm_snapshot_new(const struct pm_config *cfg)
{
	struct pm_snapshot *snap;

	snap = calloc(1, sizeof(*snap));
	if (!snap)
		return NULL;
	snap->cfg = cfg;
	snap->devices = calloc(cfg->n_devices ? cfg->n_devices : 1,
			       sizeof(*snap->devices));
	snap->ratio_text = calloc(cfg->n_inputs ? cfg->n_inputs : 1,
				  sizeof(*snap->ratio_text));
	/* The Zabbix agent runs as another user: 0644 whatever the umask
	 * (systemd services often run with UMask=0077). */
	if (snap->devices && snap->ratio_text && cfg->snapshot &&
	    *cfg->snapshot)
		snap->has_file = pm_atomic_init(&snap->file, cfg->snapshot,
						0644, 0) == 0;
	if (!snap->devices || !snap->ratio_text ||
	    (cfg->snapshot && *cfg->snapshot && !snap->has_file)) {
		free(snap->devices);
		free(snap->ratio_text);
		free(snap);
		return NULL;
	}
	/* Exact (a reader compares it with its own config's ratio), and the
	 * same at every tick: written once. */
	for (size_t d = 0; d < cfg->n_devices; d++)
		for (size_t k = 0; k < cfg->devices[d].n_inputs; k++) {
			const struct pm_input *in = &cfg->devices[d].inputs[k];

			if ((size_t)in->id < cfg->n_inputs)
				(void)pm_fmt_double(snap->ratio_text[in->id],
						    in->ratio);
		}
	pthread_mutex_init(&snap->lock, NULL);
	pthread_mutex_init(&snap->write_lock, NULL);
	pm_buf_init(&snap->text, PM_SNAPSHOT_MAX);
	pm_buf_init(&snap->watch_text, PM_SNAPSHOT_MAX);
	/* the configured feeds, no figures yet */
	if (format_watch(&snap->watch_text, cfg, 0, NULL, NULL, 0)) {
		pm_snapshot_free(snap);
		return NULL;
	}
	return snap;
}

void pm_snapshot_free(struct pm_snapshot *snap)
{
	if (!snap)
		return;
	pthread_mutex_destroy(&snap->lock);
	pthread_mutex_destroy(&snap->write_lock);
	pm_buf_free(&snap->text);
	pm_buf_free(&snap->watch_text);
	free(snap->devices);
	free(snap->ratio_text);
	if (snap->has_file)
		pm_atomic_fini(&snap->file);
	free(snap);
}

void pm_snapshot_update(struct pm_snapshot *snap, size_t device,
			const struct pm_sample *s,
			const struct pm_device_state *st)
{
	const struct pm_device *dev;
	struct snap_device *d;
	char error[sizeof(d->error)] = "";

	if (device >= snap->cfg->n_devices)
		return;
	dev = &snap->cfg->devices[device];
	/* Described outside the lock: -EBUSY looks the holder up in
	 * /proc/locks. */
	if (st->last_error)
		(void)pm_describe_failure(error, sizeof(error), dev,
					  st->last_error, NULL);
	pthread_mutex_lock(&snap->lock);
	d = &snap->devices[device];
	if (s) {
		d->sample = *s;
		d->has_sample = true;
	}
	d->state = *st;
	memcpy(d->error, error, sizeof(error));
	pthread_mutex_unlock(&snap->lock);
}

/* What a reader must get back exactly (the current, the ratio). */
static int add_double(struct pm_buf *b, double v)
{
	return pm_json_number(b, v);
}

/* Estimates and counters: 15 digits, as line protocol stores them (one
 * snprintf, where the exact text may take three, and the daemon formats
 * every input at every tick). */
static int add_measured(struct pm_buf *b, double v)
{
	char num[PM_DOUBLE_LEN];

	if (!isfinite(v))
		return pm_buf_adds(b, "null");
	(void)pm_fmt_measured(num, v);
	return pm_buf_adds(b, num);
}

static int add_time(struct pm_buf *b, int64_t ms)
{
	if (ms <= 0)
		return pm_buf_adds(b, "null");
	return pm_buf_printf(b, "%lld", (long long)ms);
}

int pm_snapshot_counters(struct pm_buf *b, const struct pm_device_state *st)
{
	const char *sep = "";
	int r = 0;

#define MEMBER(name)							\
	if (!r)								\
		r = pm_buf_printf(b, "%s\"" #name "\": %llu", sep,		\
				  (unsigned long long)st->name);	\
	sep = ", ";
	PM_DEVICE_COUNTERS(MEMBER)
#undef MEMBER
	return r;
}

static int format_state(struct pm_buf *b, const struct snap_device *d)
{
	const struct pm_device_state *st = &d->state;
	int r;

	r = pm_buf_printf(b, "\t\t\t\"state\": {\"up\": %s, \"last_success\": ",
			  st->up ? "true" : "false");
	if (!r)
		r = add_time(b, st->last_success_ms);
	if (!r)
		r = pm_buf_adds(b, ", \"last_attempt\": ");
	if (!r)
		r = add_time(b, st->last_attempt_ms);
	if (!r)
		r = pm_buf_printf(b, ", \"consecutive_failures\": %u, "
				  "\"last_error\": %d, \"error\": ",
				  st->consecutive_failures, st->last_error);
	if (!r)
		r = d->error[0] ? pm_json_string(b, d->error)
				: pm_buf_adds(b, "null");
	if (!r)
		r = pm_buf_adds(b, ",\n\t\t\t\t");
	if (!r)
		r = pm_snapshot_counters(b, st);
	if (!r)
		r = pm_buf_adds(b, "},\n");
	return r;
}

static int format_input(struct pm_buf *b, const struct pm_device *dev,
			const struct pm_input *in, const struct snap_device *d,
			const char *ratio)
{
	const struct pm_sample *s = &d->sample;
	int r;

	r = pm_buf_printf(b, "\t\t\t\t{\"id\": %d, \"device_id\": %d, "
			  "\"input\": \"%c\", \"name\": ", in->id, dev->id,
			  pm_channel_letter(in->channel));
	if (!r)
		r = pm_json_string(b, in->name ? in->name : "");
	if (!r)
		r = pm_buf_printf(b, ", \"ratio\": %s", ratio);
	if (r || !d->has_sample || in->channel >= PM_CHANNELS)
		return r ? r : pm_buf_adds(b, ", \"raw\": null, \"current\": "
					   "null, \"frequency\": null, "
					   "\"power\": null, \"energy\": null, "
					   "\"charge\": null, \"time_ms\": null}");
	/* A reader takes the current from raw x ratio (pm_amperes(), as
	 * everywhere): the very double a bus read would have given. "current"
	 * is for people and other tools, at 15 digits. */
	r = pm_buf_printf(b, ", \"raw\": %u, \"current\": ",
			  (unsigned)s->current[in->channel]);
	if (!r)
		r = add_measured(b, pm_sample_amperes(s, in));
	if (!r)
		r = pm_buf_adds(b, ", \"frequency\": ");
	if (!r)
		r = s->has_frequency
			? add_double(b, pm_sample_hertz(s, dev, in))
			: pm_buf_adds(b, "null");
	if (!r)
		r = pm_buf_adds(b, ", \"power\": ");
	if (!r)
		r = add_measured(b, pm_sample_power(s, in));
	if (!r)
		r = pm_buf_adds(b, ", \"energy\": ");
	if (!r)
		r = add_measured(b, s->has_energy ? s->energy_wh[in->channel] : NAN);
	if (!r)
		r = pm_buf_adds(b, ", \"charge\": ");
	if (!r)
		r = add_measured(b, s->has_energy ? s->charge_ah[in->channel] : NAN);
	if (!r)
		r = pm_buf_printf(b, ", \"time_ms\": %lld}",
				  (long long)s->time_ms);
	return r;
}

static int format_device(struct pm_buf *b, const struct pm_snapshot *snap,
			 const struct pm_device *dev,
			 const struct snap_device *d)
{
	int r;

	r = pm_buf_printf(b, "\t\t{\n\t\t\t\"id\": %d, \"port\": ", dev->id);
	if (!r)
		r = pm_json_string(b, dev->port);
	if (!r)
		r = pm_buf_printf(b, ", \"address\": %d, \"model\": ",
				  dev->address);
	if (!r)
		r = pm_json_string(b, dev->driver ? dev->driver->model : "hdhk");
	if (!r)
		r = pm_buf_adds(b, ",\n");
	if (!r)
		r = format_state(b, d);
	if (!r)
		r = pm_buf_adds(b, "\t\t\t\"time_ms\": ");
	if (!r)
		r = add_time(b, d->has_sample ? d->sample.time_ms : 0);
	if (!r)
		r = pm_buf_adds(b, ",\n\t\t\t\"inputs\": [\n");
	for (size_t i = 0; !r && i < dev->n_inputs; i++) {
		r = format_input(b, dev, &dev->inputs[i], d,
				 (size_t)dev->inputs[i].id < snap->cfg->n_inputs
				 ? snap->ratio_text[dev->inputs[i].id] : "null");
		if (!r)
			r = pm_buf_adds(b, i + 1 < dev->n_inputs ? ",\n" : "\n");
	}
	if (!r)
		r = pm_buf_adds(b, "\t\t\t]\n\t\t}");
	return r;
}

/* ---- feeds and alarms (the watch's result) ------------------------------ */

/* A figure, or null before the first tick. */
static int add_figure(struct pm_buf *b, const void *known, double v)
{
	return known ? pm_json_number(b, v) : pm_buf_adds(b, "null");
}

static int format_feed_phase(struct pm_buf *b, const struct pm_config *cfg,
			     size_t f, unsigned i,
			     const struct pm_feed_phase_fig *ph)
{
	const struct pm_feed *feed = &cfg->feeds[f];
	unsigned inputs = 0;
	int r;

	/* before the first tick: the configured count */
	if (ph)
		inputs = ph->inputs;
	else
		for (size_t d = 0; d < cfg->n_devices; d++)
			for (size_t k = 0; k < cfg->devices[d].n_inputs; k++) {
				const struct pm_input *in =
					&cfg->devices[d].inputs[k];

				inputs += in->feed == (int)f &&
					  in->feed_phase == i;
			}
	r = pm_buf_printf(b, "\t\t\t\t{\"phase\": \"%s\", \"current\": ",
			  pm_phase_names[feed->phases[i]]);
	if (!r)
		r = add_figure(b, ph, ph ? ph->current : NAN);
	if (!r)
		r = pm_buf_adds(b, ", \"power\": ");
	if (!r)
		r = add_figure(b, ph, ph ? ph->power : NAN);
	if (!r)
		r = pm_buf_adds(b, ", \"load\": ");
	if (!r)
		r = add_figure(b, ph, ph ? ph->load : NAN);
	if (!r)
		r = pm_buf_adds(b, ", \"redundant_load\": ");
	if (!r)
		r = add_figure(b, ph, ph ? ph->redundant_load : NAN);
	if (!r)
		r = pm_buf_printf(b, ", \"inputs\": %u, \"missing\": ", inputs);
	if (!r)
		r = ph ? pm_buf_printf(b, "%u}", ph->missing)
		       : pm_buf_adds(b, "null}");
	return r;
}

static int format_feed(struct pm_buf *b, const struct pm_config *cfg,
		       size_t f, int64_t time_ms, const struct pm_feed_fig *fig)
{
	const struct pm_feed *feed = &cfg->feeds[f];
	int r;

	r = pm_buf_adds(b, "\t\t{\"name\": ");
	if (!r)
		r = pm_json_string(b, feed->name ? feed->name : "");
	if (!r)
		r = pm_buf_adds(b, ", \"capacity\": ");
	if (!r)
		r = pm_json_number(b, feed->capacity);
	if (!r)
		r = pm_buf_adds(b, ", \"phases_configured\": [");
	for (unsigned i = 0; !r && i < feed->n_phases && i < PM_PHASES; i++)
		r = pm_buf_printf(b, "%s\"%s\"", i ? ", " : "",
				  pm_phase_names[feed->phases[i]]);
	if (!r)
		r = pm_buf_adds(b, "],\n\t\t\t\"complete\": ");
	if (!r)
		r = fig ? pm_buf_printf(b, "%s, \"missing\": %u",
					fig->complete ? "true" : "false",
					fig->missing)
			: pm_buf_adds(b, "null, \"missing\": null");
	if (!r)
		r = pm_buf_adds(b, ", \"current\": ");
	if (!r)
		r = add_figure(b, fig, fig ? fig->current : NAN);
	if (!r)
		r = pm_buf_adds(b, ", \"power\": ");
	if (!r)
		r = add_figure(b, fig, fig ? fig->power : NAN);
	if (!r)
		r = pm_buf_adds(b, ", \"imbalance\": ");
	if (!r)
		r = add_figure(b, fig, fig ? fig->imbalance : NAN);
	if (!r)
		r = pm_buf_adds(b, ", \"neutral\": ");
	if (!r)
		r = add_figure(b, fig, fig ? fig->neutral : NAN);
	if (!r)
		r = pm_buf_adds(b, ",\n\t\t\t\"redundant_with\": ");
	if (!r)
		r = feed->redundant_with ? pm_json_string(b, feed->redundant_with)
					 : pm_buf_adds(b, "null");
	if (!r)
		r = pm_buf_adds(b, ", \"redundant_load\": ");
	if (!r)
		r = add_figure(b, fig, fig ? fig->redundant_load : NAN);
	if (!r)
		r = pm_buf_adds(b, ", \"time_ms\": ");
	if (!r)
		r = add_time(b, fig ? time_ms : 0);
	if (!r)
		r = pm_buf_adds(b, ",\n\t\t\t\"phases\": [\n");
	for (unsigned i = 0; !r && i < feed->n_phases && i < PM_PHASES; i++) {
		r = format_feed_phase(b, cfg, f, i, fig ? &fig->phase[i] : NULL);
		if (!r)
			r = pm_buf_adds(b, i + 1 < feed->n_phases ? ",\n" : "\n");
	}
	if (!r)
		r = pm_buf_adds(b, "\t\t\t]}");
	return r;
}

static int format_alarm(struct pm_buf *b, const struct pm_alarm *a)
{
	int r = pm_buf_adds(b, "\t\t{");

	if (!r)
		r = pm_alarm_json_members(b, a);
	return r ? r : pm_buf_adds(b, "}");
}

/* The members after "devices": "feeds" in config order (figures null
 * while 'feeds' is NULL), "alarms" (active[], worst first) and
 * "alarms_enabled". Appends to 'b'; on failure 'b' is as it was. */
static int format_watch(struct pm_buf *b, const struct pm_config *cfg,
			int64_t time_ms, const struct pm_feed_fig *feeds,
			const struct pm_alarm *const *active, size_t n_active)
{
	size_t start = b->len, shown = 0;
	int r;

	r = pm_buf_adds(b, cfg->n_feeds ? "\t\"feeds\": [\n" : "\t\"feeds\": [");
	for (size_t f = 0; !r && f < cfg->n_feeds; f++) {
		r = format_feed(b, cfg, f, time_ms, feeds ? &feeds[f] : NULL);
		if (!r)
			r = pm_buf_adds(b, f + 1 < cfg->n_feeds ? ",\n" : "\n");
	}
	if (!r)
		r = pm_buf_adds(b, cfg->n_feeds ? "\t],\n\t\"alarms\": ["
				   : "],\n\t\"alarms\": [");
	for (size_t i = 0; !r && i < n_active; i++) {
		/* "active": raised, never one at OK */
		if (!active[i] || active[i]->level == PM_SEVERITY_OK)
			continue;
		r = pm_buf_adds(b, shown++ ? ",\n" : "\n");
		if (!r)
			r = format_alarm(b, active[i]);
	}
	if (!r)
		r = pm_buf_printf(b, "%s],\n\t\"alarms_enabled\": %s\n",
				  shown ? "\n\t" : "",
				  cfg->alarms.enabled ? "true" : "false");
	if (r)
		pm_buf_truncate(b, b->len - start);
	return r;
}

int pm_snapshot_watch(struct pm_snapshot *snap, int64_t time_ms,
		      const struct pm_feed_fig *feeds,
		      const struct pm_alarm *const *active, size_t n_active)
{
	struct pm_buf text, old;
	int r;

	/* formatted outside the lock: the pollers' updates never wait for
	 * it, nor a write for more than a swap */
	pm_buf_init(&text, PM_SNAPSHOT_MAX);
	r = format_watch(&text, snap->cfg, time_ms, feeds, active, n_active);
	pthread_mutex_lock(&snap->lock);
	old = snap->watch_text;
	if (!r) {
		snap->watch_text = text;
		text = old;
	}
	snap->watch_error = r;
	pthread_mutex_unlock(&snap->lock);
	pm_buf_free(&text);
	return r;
}

int pm_snapshot_format(struct pm_snapshot *snap, int64_t now_ms, pid_t pid,
		       struct pm_buf *out)
{
	const struct pm_config *cfg = snap->cfg;
	size_t start = out->len;
	int r;

	r = pm_buf_printf(out, "{\n\t\"format\": \"%s\",\n\t\"version\": %d,\n"
			  "\t\"pid\": %ld,\n\t\"config\": ", PM_SNAPSHOT_FORMAT,
			  PM_SNAPSHOT_VERSION, (long)pid);
	if (!r)
		r = cfg->path ? pm_json_string(out, cfg->path)
			      : pm_buf_adds(out, "null");
	if (!r)
		r = pm_buf_adds(out, ",\n\t\"interval\": ");
	if (!r)
		r = add_double(out, cfg->interval);
	if (!r)
		r = pm_buf_printf(out, ",\n\t\"written_at\": %lld,\n"
				  "\t\"devices\": [\n", (long long)now_ms);
	pthread_mutex_lock(&snap->lock);
	for (size_t i = 0; !r && i < cfg->n_devices; i++) {
		r = format_device(out, snap, &cfg->devices[i], &snap->devices[i]);
		if (!r)
			r = pm_buf_adds(out, i + 1 < cfg->n_devices ? ",\n" : "\n");
	}
	if (!r)
		r = snap->watch_error;
	if (!r)
		r = pm_buf_adds(out, "\t],\n");
	if (!r)
		r = pm_buf_add(out, snap->watch_text.data, snap->watch_text.len);
	pthread_mutex_unlock(&snap->lock);
	if (!r)
		r = pm_buf_adds(out, "}\n");
	if (r)
		pm_buf_truncate(out, out->len - start);
	return r;
}

int pm_snapshot_write(struct pm_snapshot *snap, int64_t now_ms)
{
	int r;

	if (!snap->has_file)
		return -EINVAL;
	/* Formatting under write_lock too: whoever renames last also
	 * formatted last, so the file never goes back in time. */
	pthread_mutex_lock(&snap->write_lock);
	/* Two pollers may take the time in one order and the lock in the
	 * other: the stamp never goes back either. */
	if (now_ms < snap->written_at)
		now_ms = snap->written_at;
	pm_buf_reset(&snap->text);
	r = pm_snapshot_format(snap, now_ms, getpid(), &snap->text);
	/* An exclusive temporary (a FIFO or another's file at its name is
	 * skipped, never waited on or written through), then rename. No
	 * fsync: the file lives on tmpfs and is rewritten every tick; after
	 * a crash a stale snapshot is what a reader should see. */
	if (!r)
		r = pm_atomic_write(&snap->file, snap->text.data,
				    snap->text.len);
	if (!r)
		snap->written_at = now_ms;
	pthread_mutex_unlock(&snap->write_lock);
	return r;
}

int pm_snapshot_remove(struct pm_snapshot *snap)
{
	int r = 0;

	pthread_mutex_lock(&snap->write_lock);
	/* Another daemon may have taken the path over since. */
	if (snap->has_file)
		r = pm_atomic_remove(&snap->file);
	pthread_mutex_unlock(&snap->write_lock);
	return r;
}

/* ---- reader ------------------------------------------------------------- */

/* The file's text, at most PM_SNAPSHOT_MAX bytes, NUL-terminated. Only a
 * regular file: a FIFO put at the path must not hang the Zabbix agent. */
static int read_file(const char *path, char **text, size_t *len)
{
	int r = pm_read_file_capped(path, PM_SNAPSHOT_MAX, text, len);

	return r == -ENOENT ? -PM_ENOSNAPSHOT : r;
}

static struct json_object *member(struct json_object *o, const char *key,
				  enum json_type type)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

/* A number member (json-c keeps 1 as an int, 1.5 as a double). */
static bool member_number(struct json_object *o, const char *key, double *out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return false;
	if (!json_object_is_type(v, json_type_int) &&
	    !json_object_is_type(v, json_type_double))
		return false;
	*out = json_object_get_double(v);
	return true;
}

static bool member_int64(struct json_object *o, const char *key, int64_t *out)
{
	struct json_object *v = member(o, key, json_type_int);

	if (!v)
		return false;
	*out = json_object_get_int64(v);
	return true;
}

/* A time member: an integer, or null for "never" (0). */
static bool member_time(struct json_object *o, const char *key, int64_t *out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return false;
	if (!v) {
		*out = 0;
		return true;
	}
	if (!json_object_is_type(v, json_type_int))
		return false;
	*out = json_object_get_int64(v);
	return true;
}

static bool member_string_is(struct json_object *o, const char *key,
			     const char *want)
{
	struct json_object *v = member(o, key, json_type_string);

	return v && want && !strcmp(json_object_get_string(v), want);
}

static bool member_int_is(struct json_object *o, const char *key, int64_t want)
{
	int64_t v;

	return member_int64(o, key, &v) && v == want;
}

/* Is input object 'jin' the configured input 'in' of 'dev'? */
static bool input_matches(struct json_object *jin, const struct pm_device *dev,
			  const struct pm_input *in)
{
	char letter[2] = { pm_channel_letter(in->channel), '\0' };
	double ratio;

	return json_object_is_type(jin, json_type_object) &&
	       member_int_is(jin, "id", in->id) &&
	       member_int_is(jin, "device_id", dev->id) &&
	       member_string_is(jin, "input", letter) &&
	       member_string_is(jin, "name", in->name ? in->name : "") &&
	       member_number(jin, "ratio", &ratio) && ratio == in->ratio;
}

/* Is device object 'jdev' the configured device 'dev', input for input? */
static bool device_matches(struct json_object *jdev,
			   const struct pm_device *dev)
{
	struct json_object *inputs;

	if (!json_object_is_type(jdev, json_type_object) ||
	    !member_int_is(jdev, "id", dev->id) ||
	    !member_string_is(jdev, "port", dev->port) ||
	    !member_int_is(jdev, "address", dev->address) ||
	    !member(jdev, "state", json_type_object))
		return false;
	inputs = member(jdev, "inputs", json_type_array);
	if (!inputs || json_object_array_length(inputs) != dev->n_inputs)
		return false;
	for (size_t i = 0; i < dev->n_inputs; i++)
		if (!input_matches(json_object_array_get_idx(inputs, i), dev,
				   &dev->inputs[i]))
			return false;
	return true;
}

static uint64_t member_counter(struct json_object *o, const char *key)
{
	int64_t v;

	return member_int64(o, key, &v) && v > 0 ? (uint64_t)v : 0;
}

/* Fills 'out' from device object 'jdev' (already checked by
 * device_matches). */
static int device_parse(struct json_object *jdev, struct pm_snapshot_device *out)
{
	struct json_object *jst = member(jdev, "state", json_type_object);
	struct json_object *up = member(jst, "up", json_type_boolean);
	struct json_object *error;
	int64_t v;

	memset(out, 0, sizeof(*out));
	if (!up || !member_time(jst, "last_success", &out->state.last_success_ms) ||
	    !member_time(jst, "last_attempt", &out->state.last_attempt_ms) ||
	    !member_time(jdev, "time_ms", &out->sample_ms) ||
	    !member_int64(jst, "consecutive_failures", &v) || v < 0 ||
	    v > UINT32_MAX)
		return -PM_EFRAME;
	out->state.up = json_object_get_boolean(up);
	out->state.consecutive_failures = (unsigned)v;
	out->device_id = (int)json_object_get_int64(member(jdev, "id",
							   json_type_int));
	out->has_sample = out->sample_ms > 0;
	if (member_int64(jst, "last_error", &v) && v <= 0 && v >= INT32_MIN)
		out->state.last_error = (int)v;
	out->state.reads = member_counter(jst, "reads");
	out->state.failures = member_counter(jst, "failures");
	out->state.requests = member_counter(jst, "requests");
	out->state.retries = member_counter(jst, "retries");
	out->state.timeouts = member_counter(jst, "timeouts");
	out->state.crc_errors = member_counter(jst, "crc_errors");
	out->state.frame_errors = member_counter(jst, "frame_errors");
	out->state.exceptions = member_counter(jst, "exceptions");
	out->state.io_errors = member_counter(jst, "io_errors");
	error = member(jst, "error", json_type_string);
	if (error)
		(void)snprintf(out->error, sizeof(out->error), "%s",
			       json_object_get_string(error));
	return 0;
}

/* Parses cfg->snapshot and checks that it was written for 'cfg': the same
 * devices (id, port, address) with the same inputs (id, letter, name,
 * ratio), in config order. On 0, *root holds the tree (caller puts it) and
 * *written_at the stamp. */
static int snapshot_load(const struct pm_config *cfg, struct json_object **root,
			 int64_t *written_at)
{
	struct json_tokener *tok;
	struct json_object *o = NULL, *devices;
	char *text = NULL;
	size_t len;
	int64_t version;
	int r;

	if (!cfg->snapshot || !*cfg->snapshot)
		return -PM_ENOSNAPSHOT;
	r = read_file(cfg->snapshot, &text, &len);
	if (r)
		return r;
	tok = json_tokener_new();
	if (!tok) {
		r = -ENOMEM;
		goto out;
	}
	o = json_tokener_parse_ex(tok, text, (int)len);
	/* A complete object and nothing but blanks after it. */
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    text[json_tokener_get_parse_end(tok) +
		 strspn(text + json_tokener_get_parse_end(tok), " \t\r\n")] ||
	    !json_object_is_type(o, json_type_object) ||
	    !member_string_is(o, "format", PM_SNAPSHOT_FORMAT) ||
	    !member_int64(o, "version", &version) ||
	    !member_int64(o, "written_at", written_at)) {
		r = -PM_EFRAME;
		goto out;
	}
	/* A later version is another format: not guessed at. */
	if (version != PM_SNAPSHOT_VERSION) {
		r = -PM_EFRAME;
		goto out;
	}
	devices = member(o, "devices", json_type_array);
	if (!devices) {
		r = -PM_EFRAME;
		goto out;
	}
	if (json_object_array_length(devices) != cfg->n_devices) {
		r = -PM_ENOSNAPSHOT;
		goto out;
	}
	for (size_t i = 0; i < cfg->n_devices; i++) {
		if (!device_matches(json_object_array_get_idx(devices, i),
				    &cfg->devices[i])) {
			r = -PM_ENOSNAPSHOT;
			goto out;
		}
	}
	*root = o;
	o = NULL;
out:
	json_object_put(o);
	if (tok)
		json_tokener_free(tok);
	free(text);
	return r;
}

/* Milliseconds after which data is stale. */
static int64_t stale_after_ms(const struct pm_config *cfg)
{
	return (int64_t)(PM_SNAPSHOT_STALE_INTERVALS * cfg->interval * 1000.0);
}

static bool is_fresh(int64_t stamp_ms, int64_t now_ms, int64_t limit_ms)
{
	int64_t age = now_ms - stamp_ms;

	/* A stamp far in the future (the clock was set back) is as
	 * untrustworthy as an old one. */
	return stamp_ms > 0 && age < limit_ms && age > -limit_ms;
}

/* The values of device 'jdev''s inputs, checked before anything is set. */
/* An optional number: absent or null is NaN. */
static bool optional_number(struct json_object *o, const char *key, double *out)
{
	struct json_object *v;

	*out = NAN;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return true;
	return member_number(o, key, out);
}

static int device_values(struct json_object *jdev,
			 const struct pm_device *dev, double *current,
			 double *frequency, double *energy, double *charge,
			 int64_t *time_ms)
{
	struct json_object *inputs = member(jdev, "inputs", json_type_array);

	for (size_t i = 0; i < dev->n_inputs; i++) {
		struct json_object *jin = json_object_array_get_idx(inputs, i);
		int64_t raw;

		/* raw x ratio: the ratio is the file's (device_matches) */
		if (!member_int64(jin, "raw", &raw) || raw < 0 || raw > UINT16_MAX ||
		    !member_int64(jin, "time_ms", &time_ms[i]))
			return -PM_EFRAME;
		current[i] = pm_amperes((uint16_t)raw, dev->inputs[i].ratio);
		if (!optional_number(jin, "frequency", &frequency[i]) ||
		    !optional_number(jin, "energy", &energy[i]) ||
		    !optional_number(jin, "charge", &charge[i]))
			return -PM_EFRAME;
	}
	return 0;
}

/* What becomes of one device of the snapshot in the readings. */
struct device_result {
	int err;		/* 0: values below */
	char message[320];
	double *current, *frequency, *energy, *charge;
	int64_t *time_ms;
};

static int device_result(const struct pm_config *cfg, size_t index,
			 struct json_object *jdev, int64_t now_ms,
			 struct device_result *res)
{
	const struct pm_device *dev = &cfg->devices[index];
	struct pm_snapshot_device sd;
	int64_t limit = stale_after_ms(cfg);
	size_t n = dev->n_inputs ? dev->n_inputs : 1;
	int r;

	r = device_parse(jdev, &sd);
	if (r)
		return r;
	/* Not -ENODATA: that means "not asked for" in the readings. */
	if (!sd.has_sample && !sd.state.last_attempt_ms) {
		res->err = -EAGAIN;
		(void)snprintf(res->message, sizeof(res->message),
			       "device %d on %s address %d: not read yet by "
			       "powermeterd", dev->id, dev->port, dev->address);
		return 0;
	}
	if (!sd.state.up) {
		res->err = sd.state.last_error ? sd.state.last_error : -EIO;
		if (sd.error[0])
			(void)snprintf(res->message, sizeof(res->message),
				       "%s", sd.error);
		else
			(void)pm_describe_failure(res->message,
						  sizeof(res->message), dev,
						  res->err, NULL);
		return 0;
	}
	if (!sd.has_sample || !is_fresh(sd.sample_ms, now_ms, limit)) {
		res->err = -PM_ESTALE;
		(void)snprintf(res->message, sizeof(res->message),
			       "device %d on %s address %d: powermeterd's last "
			       "reading is %.1f s old", dev->id, dev->port,
			       dev->address,
			       sd.has_sample ? (double)(now_ms - sd.sample_ms) / 1000.0
					     : INFINITY);
		return 0;
	}
	res->current = calloc(n, sizeof(double));
	res->frequency = calloc(n, sizeof(double));
	res->energy = calloc(n, sizeof(double));
	res->charge = calloc(n, sizeof(double));
	res->time_ms = calloc(n, sizeof(int64_t));
	if (!res->current || !res->frequency || !res->energy || !res->charge ||
	    !res->time_ms)
		return -ENOMEM;
	return device_values(jdev, dev, res->current, res->frequency,
			     res->energy, res->charge, res->time_ms);
}

int pm_snapshot_read(const struct pm_config *cfg, struct pm_readings *r,
		     int64_t now_ms)
{
	struct json_object *root = NULL, *devices;
	struct device_result *res = NULL;
	int64_t written_at;
	int err;

	err = snapshot_load(cfg, &root, &written_at);
	if (err)
		return err;
	if (!is_fresh(written_at, now_ms, stale_after_ms(cfg))) {
		err = -PM_ESTALE;
		goto out;
	}
	res = calloc(cfg->n_devices ? cfg->n_devices : 1, sizeof(*res));
	if (!res) {
		err = -ENOMEM;
		goto out;
	}
	devices = member(root, "devices", json_type_array);
	/* Everything is checked before 'r' changes. */
	for (size_t i = 0; i < cfg->n_devices && !err; i++)
		if (pm_readings_device(r, i))
			err = device_result(cfg, i,
					    json_object_array_get_idx(devices, i),
					    now_ms, &res[i]);
	if (err)
		goto out;
	for (size_t i = 0; i < cfg->n_devices && !err; i++) {
		const struct pm_device *dev = &cfg->devices[i];

		if (!pm_readings_device(r, i))
			continue;
		if (res[i].err) {
			err = pm_readings_add_failure(r, i, res[i].err,
						      res[i].message);
			continue;
		}
		for (size_t k = 0; k < dev->n_inputs && !err; k++)
			err = pm_readings_set_input(r, dev->inputs[k].id,
						    res[i].current[k],
						    res[i].frequency[k],
						    res[i].energy[k],
						    res[i].charge[k],
						    res[i].time_ms[k]);
	}
out:
	if (res) {
		for (size_t i = 0; i < cfg->n_devices; i++) {
			free(res[i].current);
			free(res[i].frequency);
			free(res[i].energy);
			free(res[i].charge);
			free(res[i].time_ms);
		}
		free(res);
	}
	json_object_put(root);
	return err;
}

/* An optional integer: absent or null is 'dflt'. */
static bool optional_uint(struct json_object *o, const char *key,
			  unsigned dflt, unsigned *out)
{
	struct json_object *v;
	int64_t n;

	*out = dflt;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return true;
	if (!member_int64(o, key, &n) || n < 0 || n > UINT32_MAX)
		return false;
	*out = (unsigned)n;
	return true;
}

/* Is feed object 'jf' the configured feed 'feed'? */
static bool feed_matches(struct json_object *jf, const struct pm_feed *feed)
{
	struct json_object *phases, *with;
	double capacity;

	if (!json_object_is_type(jf, json_type_object) ||
	    !member_string_is(jf, "name", feed->name) ||
	    !member_number(jf, "capacity", &capacity) ||
	    capacity != feed->capacity)
		return false;
	phases = member(jf, "phases_configured", json_type_array);
	if (!phases || json_object_array_length(phases) != feed->n_phases)
		return false;
	for (unsigned i = 0; i < feed->n_phases && i < PM_PHASES; i++) {
		struct json_object *p = json_object_array_get_idx(phases, i);

		if (!json_object_is_type(p, json_type_string) ||
		    strcmp(json_object_get_string(p),
			   pm_phase_names[feed->phases[i]]))
			return false;
	}
	if (!json_object_object_get_ex(jf, "redundant_with", &with))
		return false;
	if (!feed->redundant_with)
		return with == NULL;
	return member_string_is(jf, "redundant_with", feed->redundant_with);
}

/* Fills 'out' from feed object 'jf' (already checked by feed_matches):
 * figures when it has a time, else unknown. */
static int feed_parse(struct json_object *jf, const struct pm_feed *feed,
		      struct pm_snapshot_feed *out)
{
	struct json_object *phases = member(jf, "phases", json_type_array);
	struct json_object *complete;

	memset(out, 0, sizeof(*out));
	out->n_phases = feed->n_phases;
	if (!phases || json_object_array_length(phases) != feed->n_phases ||
	    !member_time(jf, "time_ms", &out->time_ms) ||
	    !optional_number(jf, "current", &out->current) ||
	    !optional_number(jf, "power", &out->power) ||
	    !optional_number(jf, "imbalance", &out->imbalance) ||
	    !optional_number(jf, "neutral", &out->neutral) ||
	    !optional_number(jf, "redundant_load", &out->redundant_load) ||
	    !optional_uint(jf, "missing", 0, &out->missing))
		return -PM_EFRAME;
	out->known = out->time_ms > 0;
	complete = member(jf, "complete", json_type_boolean);
	out->complete = out->known && complete &&
			json_object_get_boolean(complete);
	for (unsigned i = 0; i < feed->n_phases && i < PM_PHASES; i++) {
		struct json_object *jp = json_object_array_get_idx(phases, i);
		struct pm_snapshot_feed_phase *ph = &out->phase[i];

		ph->phase = feed->phases[i];
		if (!json_object_is_type(jp, json_type_object) ||
		    !member_string_is(jp, "phase", pm_phase_names[ph->phase]) ||
		    !optional_number(jp, "current", &ph->current) ||
		    !optional_number(jp, "power", &ph->power) ||
		    !optional_number(jp, "load", &ph->load) ||
		    !optional_number(jp, "redundant_load", &ph->redundant_load) ||
		    !optional_uint(jp, "inputs", 0, &ph->inputs) ||
		    !optional_uint(jp, "missing", 0, &ph->missing))
			return -PM_EFRAME;
	}
	return 0;
}

static int alarm_parse(struct json_object *ja, struct pm_snapshot_alarm *out)
{
	struct json_object *kind = member(ja, "alarm", json_type_string);
	struct json_object *subject = member(ja, "subject", json_type_string);
	struct json_object *severity = member(ja, "severity", json_type_string);
	const char *sev;

	memset(out, 0, sizeof(*out));
	if (!kind || !subject || !severity ||
	    !member_time(ja, "since", &out->since_ms) ||
	    !optional_number(ja, "value", &out->value) ||
	    !optional_number(ja, "threshold", &out->threshold))
		return -PM_EFRAME;
	sev = json_object_get_string(severity);
	if (!strcmp(sev, "warning"))
		out->severity = PM_SEVERITY_WARNING;
	else if (!strcmp(sev, "critical"))
		out->severity = PM_SEVERITY_CRITICAL;
	else
		return -PM_EFRAME;
	/* a kind of a later daemon is kept by its name */
	out->kind = pm_alarm_kind_find(json_object_get_string(kind));
	(void)snprintf(out->alarm, sizeof(out->alarm), "%s",
		       json_object_get_string(kind));
	out->subject = strdup(json_object_get_string(subject));
	return out->subject ? 0 : -ENOMEM;
}

/* "feeds", "alarms" and "alarms_enabled" into 'info'; all three absent:
 * a daemon from before them. */
static int watch_parse(const struct pm_config *cfg, struct json_object *root,
		       struct pm_snapshot_info *info)
{
	struct json_object *feeds, *alarms, *enabled;
	int r = 0;

	feeds = member(root, "feeds", json_type_array);
	alarms = member(root, "alarms", json_type_array);
	enabled = member(root, "alarms_enabled", json_type_boolean);
	if (!feeds && !alarms && !enabled &&
	    !json_object_object_get_ex(root, "feeds", NULL) &&
	    !json_object_object_get_ex(root, "alarms", NULL))
		return 0;
	if (!feeds || !alarms || !enabled)
		return -PM_EFRAME;
	info->has_watch = true;
	info->alarms_enabled = json_object_get_boolean(enabled);
	info->feeds_match = json_object_array_length(feeds) == cfg->n_feeds;
	for (size_t f = 0; f < cfg->n_feeds && info->feeds_match; f++)
		info->feeds_match = feed_matches(
			json_object_array_get_idx(feeds, f), &cfg->feeds[f]);
	if (info->feeds_match && cfg->n_feeds) {
		info->feeds = calloc(cfg->n_feeds, sizeof(*info->feeds));
		if (!info->feeds)
			return -ENOMEM;
		info->n_feeds = cfg->n_feeds;
		for (size_t f = 0; f < cfg->n_feeds && !r; f++)
			r = feed_parse(json_object_array_get_idx(feeds, f),
				       &cfg->feeds[f], &info->feeds[f]);
		if (r)
			return r;
	}
	if (json_object_array_length(alarms) == 0)
		return 0;
	info->alarms = calloc(json_object_array_length(alarms),
			      sizeof(*info->alarms));
	if (!info->alarms)
		return -ENOMEM;
	for (size_t i = 0; i < json_object_array_length(alarms) && !r; i++) {
		struct json_object *ja = json_object_array_get_idx(alarms, i);

		r = json_object_is_type(ja, json_type_object)
			? alarm_parse(ja, &info->alarms[i]) : -PM_EFRAME;
		if (!r)
			info->n_alarms++;
	}
	return r;
}

int pm_snapshot_info_load(const struct pm_config *cfg,
			  struct pm_snapshot_info *info)
{
	struct json_object *root = NULL, *devices;
	struct pm_snapshot_info tmp = { 0 };
	int64_t written_at, pid = 0;
	int err;

	err = snapshot_load(cfg, &root, &written_at);
	if (err)
		return err;
	tmp.written_at_ms = written_at;
	(void)member_int64(root, "pid", &pid);
	tmp.pid = (pid_t)pid;
	if (!member_number(root, "interval", &tmp.interval))
		tmp.interval = cfg->interval;
	tmp.n_devices = cfg->n_devices;
	tmp.devices = calloc(cfg->n_devices ? cfg->n_devices : 1,
			     sizeof(*tmp.devices));
	if (!tmp.devices) {
		err = -ENOMEM;
		goto out;
	}
	devices = member(root, "devices", json_type_array);
	for (size_t i = 0; i < cfg->n_devices && !err; i++) {
		err = device_parse(json_object_array_get_idx(devices, i),
				   &tmp.devices[i]);
	}
	if (!err)
		err = watch_parse(cfg, root, &tmp);
	if (err)
		goto out;
	*info = tmp;
	memset(&tmp, 0, sizeof(tmp));
out:
	pm_snapshot_info_free(&tmp);
	json_object_put(root);
	return err;
}

void pm_snapshot_info_free(struct pm_snapshot_info *info)
{
	free(info->devices);
	info->devices = NULL;
	info->n_devices = 0;
	free(info->feeds);
	info->feeds = NULL;
	info->n_feeds = 0;
	for (size_t i = 0; i < info->n_alarms; i++)
		free(info->alarms[i].subject);
	free(info->alarms);
	info->alarms = NULL;
	info->n_alarms = 0;
}

const struct pm_snapshot_alarm *
pm_snapshot_alarm_find(const struct pm_snapshot_info *info,
		       enum pm_alarm_kind kind, const char *subject)
{
	for (size_t i = 0; i < info->n_alarms; i++)
		if (info->alarms[i].kind == (int)kind &&
		    !strcmp(info->alarms[i].subject, subject))
			return &info->alarms[i];
	return NULL;
}
