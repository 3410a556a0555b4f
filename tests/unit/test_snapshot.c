/* test_snapshot.c — the daemon's snapshot file: what is written reads back
 * to the same doubles a bus read gives, it is replaced atomically, stale or
 * foreign snapshots are refused, down devices become failures, the feeds'
 * figures and the active alarms read back as written, and the sink writes
 * and removes the file. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "reader_fixture.h"
#include "daemon/sink.h"
#include "daemon/watch.h"
#include "meter/readings.h"
#include "meter/snapshot.h"
#include "util/timeutil.h"

#define T0 1700000000000LL	/* a sample time, Unix ms */

struct env {
	char dir[64];
	char path[96];
	struct pm_config cfg;
};

static const struct fixture_input inputs16[] = {
	{ 'a', 0.01, "Input a" }, { 'b', 0.01, "Input b" },
	{ 'c', 0.01, "Input c" }, { 'd', 0.01, "Input d" },
	{ 'e', 0.01, "Input e" }, { 'f', 0.01, "Input f" },
	{ 'g', 0.01, "Input g" }, { 'h', 0.01, "Input h" },
	{ 'i', 0.01, "Input i" }, { 'j', 0.01, "Input j" },
	{ 'k', 0.01, "Input k" }, { 'l', 0.01, "Input l" },
	{ 'm', 0.01, "Input m" }, { 'n', 0.01, "Input n" },
	{ 'o', 0.01, "Input o" }, { 'p', 0.01, "Input p" },
};

/* Odd ratios and a name that needs escaping: the round trip must be exact. */
static const struct fixture_input inputs3[] = {
	{ 'a', 0.03, "Kitchen \"north\" \xc3\xa9" },
	{ 'c', 0.1, "Heat pump" },
	{ 'p', 1.0 / 3.0, "Odd CT" },
};

static void build_config(struct pm_config *cfg, const char *snapshot)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->path = (char *)"/etc/powermeter/test.json";
	cfg->interval = 1.0;
	cfg->snapshot = (char *)snapshot;
	(void)fixture_add_device(cfg, 1, "/dev/ttyUSB0", 1, false, inputs16, 16);
	(void)fixture_add_device(cfg, 7, "/dev/ttyUSB1", 3, true, inputs3, 3);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	if (!e)
		return -1;
	strcpy(e->dir, "/tmp/pm-test-snapshot-XXXXXX");
	if (!mkdtemp(e->dir))
		return -1;
	snprintf(e->path, sizeof(e->path), "%s/values.json", e->dir);
	build_config(&e->cfg, e->path);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char cmd[128];

	fixture_free(&e->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
	if (system(cmd) != 0)
		return -1;
	free(e);
	return 0;
}

static struct pm_sample sample_of(size_t device, int64_t time_ms, bool freq)
{
	struct pm_sample s = { .device = device, .time_ms = time_ms };

	for (unsigned ch = 0; ch < PM_CHANNELS; ch++) {
		s.current[ch] = (uint16_t)((device + 1) * 1000 + (ch + 1) * 10 + 7);
		s.frequency[ch] = (uint16_t)(499 + ch % 3);
	}
	s.has_frequency = freq;
	return s;
}

static struct pm_device_state state_up(int64_t time_ms)
{
	struct pm_device_state st = {
		.up = true, .last_success_ms = time_ms,
		.last_attempt_ms = time_ms, .reads = 5,
	};
	return st;
}

/* Both devices read at T0, written at T0 + 100. */
static struct pm_snapshot *write_both_up(struct env *e)
{
	struct pm_snapshot *snap = pm_snapshot_new(&e->cfg);
	struct pm_sample s0 = sample_of(0, T0, false);
	struct pm_sample s1 = sample_of(1, T0 + 20, true);
	struct pm_device_state st0 = state_up(T0), st1 = state_up(T0 + 20);

	assert_non_null(snap);
	pm_snapshot_update(snap, 0, &s0, &st0);
	pm_snapshot_update(snap, 1, &s1, &st1);
	assert_int_equal(pm_snapshot_write(snap, T0 + 100), 0);
	return snap;
}

static const struct pm_value *value_of(const struct pm_readings *r, int id)
{
	for (size_t i = 0; i < r->n_values; i++)
		if (r->values[i].id == id)
			return &r->values[i];
	fail_msg("no value with id %d", id);
	return NULL;
}

/* The snapshot gives the very doubles a bus read of the same samples gives. */
static void test_round_trip(void **state)
{
	struct env *e = *state;
	struct pm_snapshot *snap = write_both_up(e);
	struct pm_readings *from_file = pm_readings_new(&e->cfg);
	struct pm_readings *from_bus = pm_readings_new(&e->cfg);
	struct pm_sample s0 = sample_of(0, T0, false);
	struct pm_sample s1 = sample_of(1, T0 + 20, true);

	assert_int_equal(pm_readings_add_sample(from_bus, &s0), 0);
	assert_int_equal(pm_readings_add_sample(from_bus, &s1), 0);
	assert_int_equal(pm_snapshot_read(&e->cfg, from_file, T0 + 500), 0);
	assert_int_equal(from_file->n_values, 19);
	for (size_t i = 0; i < from_file->n_values; i++) {
		const struct pm_value *a = &from_file->values[i];
		const struct pm_value *b = value_of(from_bus, a->id);

		assert_int_equal(a->status, 0);
		assert_int_equal(a->device_id, b->device_id);
		assert_int_equal(a->input, b->input);
		assert_string_equal(a->name, b->name);
		/* bit for bit: no rounding on the way through the file */
		assert_memory_equal(&a->current, &b->current, sizeof(double));
		assert_int_equal(a->time_ms, b->time_ms);
		if (isnan(b->frequency))
			assert_true(isnan(a->frequency));
		else
			assert_memory_equal(&a->frequency, &b->frequency,
					    sizeof(double));
	}
	/* spot checks against hand-computed values */
	assert_true(value_of(from_file, 0)->current == 1017 * 0.01);
	assert_true(value_of(from_file, 18)->current == 2167 * (1.0 / 3.0));
	assert_true(value_of(from_file, 16)->frequency == 49.9);
	assert_true(isnan(value_of(from_file, 0)->frequency));
	assert_int_equal(pm_readings_failed(from_file), 0);
	pm_readings_free(from_file);
	pm_readings_free(from_bus);
	pm_snapshot_free(snap);
}

/* The file is JSON with the header and per-device state, mode 0644 even
 * under a strict umask, and no temporary file is left behind. */
static void test_file_content(void **state)
{
	struct env *e = *state;
	struct pm_snapshot *snap;
	struct json_object *o, *v, *dev, *in;
	struct stat st;
	mode_t old = umask(077);
	char tmpglob[160];

	snap = write_both_up(e);
	umask(old);
	assert_int_equal(stat(e->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	o = json_object_from_file(e->path);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "version", &v));
	assert_int_equal(json_object_get_int(v), PM_SNAPSHOT_VERSION);
	assert_true(json_object_object_get_ex(o, "pid", &v));
	assert_int_equal(json_object_get_int(v), getpid());
	assert_true(json_object_object_get_ex(o, "written_at", &v));
	assert_int_equal(json_object_get_int64(v), T0 + 100);
	assert_true(json_object_object_get_ex(o, "config", &v));
	assert_string_equal(json_object_get_string(v), e->cfg.path);
	assert_true(json_object_object_get_ex(o, "devices", &v));
	assert_int_equal(json_object_array_length(v), 2);
	dev = json_object_array_get_idx(v, 1);
	assert_true(json_object_object_get_ex(dev, "port", &v));
	assert_string_equal(json_object_get_string(v), "/dev/ttyUSB1");
	assert_true(json_object_object_get_ex(dev, "state", &v));
	assert_true(json_object_object_get_ex(v, "up", &v));
	assert_true(json_object_get_boolean(v));
	assert_true(json_object_object_get_ex(dev, "inputs", &v));
	in = json_object_array_get_idx(v, 0);
	assert_true(json_object_object_get_ex(in, "name", &v));
	assert_string_equal(json_object_get_string(v), inputs3[0].name);
	assert_true(json_object_object_get_ex(in, "raw", &v));
	assert_int_equal(json_object_get_int(v), 2017);
	json_object_put(o);
	snprintf(tmpglob, sizeof(tmpglob), "ls %s | grep -c tmp >/dev/null",
		 e->dir);
	assert_int_not_equal(system(tmpglob), 0);
	pm_snapshot_free(snap);
}

/* Written 3 intervals ago or more: stale, and the readings stay as they
 * were. Just under: fresh. A stamp far in the future is stale as well. */
static void test_stale(void **state)
{
	struct env *e = *state;
	struct pm_snapshot *snap = write_both_up(e);
	struct pm_readings *r = pm_readings_new(&e->cfg);

	assert_int_equal(pm_snapshot_read(&e->cfg, r, T0 + 100 + 3000),
			 -PM_ESTALE);
	for (size_t i = 0; i < r->n_values; i++)
		assert_int_equal(r->values[i].status, -ENODATA);
	assert_int_equal(pm_snapshot_read(&e->cfg, r, T0 + 100 - 3000),
			 -PM_ESTALE);
	/* the samples (T0, T0 + 20) are younger than 3 s at T0 + 2999 */
	assert_int_equal(pm_snapshot_read(&e->cfg, r, T0 + 2999), 0);
	assert_int_equal(pm_readings_failed(r), 0);
	pm_readings_free(r);

	/* a longer interval moves the limit */
	e->cfg.interval = 10.0;
	r = pm_readings_new(&e->cfg);
	assert_int_equal(pm_snapshot_read(&e->cfg, r, T0 + 100 + 29000), 0);
	pm_readings_free(r);
	pm_snapshot_free(snap);
}

/* The file is fresh but one device's last sample is old (its poller is
 * stuck): that device fails with -PM_ESTALE, the other is read. */
static void test_device_sample_stale(void **state)
{
	struct env *e = *state;
	struct pm_snapshot *snap = pm_snapshot_new(&e->cfg);
	struct pm_sample s0 = sample_of(0, T0, false);
	struct pm_sample s1 = sample_of(1, T0 + 5000, true);
	struct pm_device_state st0 = state_up(T0), st1 = state_up(T0 + 5000);
	struct pm_readings *r = pm_readings_new(&e->cfg);
	const char *why;

	pm_snapshot_update(snap, 0, &s0, &st0);
	pm_snapshot_update(snap, 1, &s1, &st1);
	assert_int_equal(pm_snapshot_write(snap, T0 + 5100), 0);
	assert_int_equal(pm_snapshot_read(&e->cfg, r, T0 + 5200), 0);
	assert_int_equal(pm_readings_failed(r), 1);
	assert_int_equal(value_of(r, 0)->status, -PM_ESTALE);
	assert_true(isnan(value_of(r, 0)->current));
	assert_int_equal(value_of(r, 16)->status, 0);
	why = pm_readings_error(r, 1);
	assert_non_null(why);
	assert_non_null(strstr(why, "5.2 s old"));
	pm_readings_free(r);
	pm_snapshot_free(snap);
}

/* A device that is down in the snapshot is a failure with its error text;
 * its previous (older) sample is never shown. A device never read yet is
 * a failure too (-EAGAIN). */
static void test_down_devices(void **state)
{
	struct env *e = *state;
	struct pm_snapshot *snap = pm_snapshot_new(&e->cfg);
	struct pm_sample s0 = sample_of(0, T0, false);
	struct pm_device_state st0 = state_up(T0);
	struct pm_readings *r;
	struct pm_snapshot_info info;
	const char *why;

	pm_snapshot_update(snap, 0, &s0, &st0);
	st0.up = false;
	st0.last_attempt_ms = T0 + 1000;
	st0.consecutive_failures = 2;
	st0.failures = 2;
	st0.timeouts = 2;
	st0.last_error = -ETIMEDOUT;
	pm_snapshot_update(snap, 0, NULL, &st0);
	assert_int_equal(pm_snapshot_write(snap, T0 + 1100), 0);

	r = pm_readings_new(&e->cfg);
	assert_int_equal(pm_snapshot_read(&e->cfg, r, T0 + 1200), 0);
	assert_int_equal(pm_readings_failed(r), 2);
	assert_int_equal(value_of(r, 0)->status, -ETIMEDOUT);
	assert_true(isnan(value_of(r, 3)->current));
	why = pm_readings_error(r, 1);
	assert_non_null(why);
	assert_non_null(strstr(why, "device 1 on /dev/ttyUSB0 address 1"));
	assert_non_null(strstr(why, "timeout"));
	assert_int_equal(value_of(r, 16)->status, -EAGAIN);
	assert_non_null(strstr(pm_readings_error(r, 7), "not read yet"));
	pm_readings_free(r);

	assert_int_equal(pm_snapshot_info_load(&e->cfg, &info), 0);
	assert_int_equal(info.n_devices, 2);
	assert_int_equal(info.written_at_ms, T0 + 1100);
	assert_int_equal(info.pid, getpid());
	assert_false(info.devices[0].state.up);
	assert_int_equal(info.devices[0].state.consecutive_failures, 2);
	assert_int_equal(info.devices[0].state.timeouts, 2);
	assert_int_equal(info.devices[0].state.reads, 5);
	assert_int_equal(info.devices[0].state.last_error, -ETIMEDOUT);
	assert_int_equal(info.devices[0].state.last_success_ms, T0);
	assert_int_equal(info.devices[0].sample_ms, T0);
	assert_non_null(strstr(info.devices[0].error, "timeout"));
	assert_false(info.devices[1].has_sample);
	assert_int_equal(info.devices[1].state.last_attempt_ms, 0);
	pm_snapshot_info_free(&info);

	/* recovery: up again with a new sample */
	s0.time_ms = T0 + 2000;
	st0 = state_up(T0 + 2000);
	pm_snapshot_update(snap, 0, &s0, &st0);
	assert_int_equal(pm_snapshot_write(snap, T0 + 2100), 0);
	r = pm_readings_new_device(&e->cfg, 1);
	assert_int_equal(pm_snapshot_read(&e->cfg, r, T0 + 2200), 0);
	assert_int_equal(pm_readings_failed(r), 0);
	assert_int_equal(r->n_values, 16);
	assert_int_equal(r->values[0].time_ms, T0 + 2000);
	pm_readings_free(r);
	pm_snapshot_free(snap);
}

/* A snapshot written for another config is not used: other port, address,
 * input name, ratio, device id or device count. */
static void test_config_mismatch(void **state)
{
	struct env *e = *state;
	struct pm_snapshot *snap = write_both_up(e);

	for (int variant = 0; variant < 7; variant++) {
		struct pm_config other;
		struct pm_readings *r;
		struct pm_snapshot_info info;

		build_config(&other, e->path);
		switch (variant) {
		case 0:
			free(other.devices[1].port);
			other.devices[1].port = strdup("/dev/ttyUSB9");
			break;
		case 1:
			other.devices[0].address = 2;
			break;
		case 2:
			free(other.devices[1].inputs[2].name);
			other.devices[1].inputs[2].name = strdup("Odd CT 2");
			break;
		case 3:
			other.devices[0].inputs[4].ratio = 0.02;
			break;
		case 4:
			other.devices[1].id = 8;
			break;
		case 5:
			(void)fixture_add_device(&other, 9, "/dev/ttyUSB2", 1,
						 false, inputs3, 1);
			break;
		case 6:
			other.devices[0].inputs[15].channel = 14;
			break;
		}
		r = pm_readings_new(&other);
		assert_non_null(r);
		assert_int_equal(pm_snapshot_read(&other, r, T0 + 200),
				 -PM_ENOSNAPSHOT);
		assert_int_equal(value_of(r, 0)->status, -ENODATA);
		assert_int_equal(pm_snapshot_info_load(&other, &info),
				 -PM_ENOSNAPSHOT);
		pm_readings_free(r);
		fixture_free(&other);
	}
	pm_snapshot_free(snap);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* Missing, garbage, truncated, another version, trailing junk. */
static void test_bad_files(void **state)
{
	struct env *e = *state;
	struct pm_readings *r = pm_readings_new(&e->cfg);
	struct pm_snapshot *snap;
	struct pm_buf text;
	char *mangled;

	assert_int_equal(pm_snapshot_read(&e->cfg, r, T0), -PM_ENOSNAPSHOT);
	write_text(e->path, "not json");
	assert_int_equal(pm_snapshot_read(&e->cfg, r, T0), -PM_EFRAME);
	write_text(e->path, "[]");
	assert_int_equal(pm_snapshot_read(&e->cfg, r, T0), -PM_EFRAME);

	snap = write_both_up(e);
	pm_buf_init(&text, PM_SNAPSHOT_MAX);
	assert_int_equal(pm_snapshot_format(snap, T0 + 100, getpid(), &text), 0);
	/* every truncation is refused, never half-read */
	for (size_t cut = 0; cut + 2 < text.len; cut += 97) {
		mangled = strndup(text.data, cut);
		write_text(e->path, mangled);
		free(mangled);
		assert_int_equal(pm_snapshot_read(&e->cfg, r, T0 + 200),
				 -PM_EFRAME);
	}
	mangled = malloc(text.len + 8);
	snprintf(mangled, text.len + 8, "%s}", text.data);
	write_text(e->path, mangled);
	assert_int_equal(pm_snapshot_read(&e->cfg, r, T0 + 200), -PM_EFRAME);
	strcpy(mangled, text.data);
	memcpy(strstr(mangled, "\"version\": 1"), "\"version\": 2", 12);
	write_text(e->path, mangled);
	assert_int_equal(pm_snapshot_read(&e->cfg, r, T0 + 200), -PM_EFRAME);
	free(mangled);
	for (size_t i = 0; i < r->n_values; i++)
		assert_int_equal(r->values[i].status, -ENODATA);
	pm_buf_free(&text);
	pm_readings_free(r);
	pm_snapshot_free(snap);
}

struct race {
	struct env *e;
	int stop;		/* atomic: the reader polls it */
	unsigned reads, bad;
};

static void *reader_loop(void *arg)
{
	struct race *race = arg;

	while (!__atomic_load_n(&race->stop, __ATOMIC_RELAXED)) {
		struct pm_readings *r = pm_readings_new(&race->e->cfg);
		int err;

		if (!r)
			abort();
		/* stamps are within 1 s of T0 + 10000 */
		err = pm_snapshot_read(&race->e->cfg, r, T0 + 10000);
		__atomic_add_fetch(&race->reads, 1, __ATOMIC_RELAXED);
		if (err != 0 || pm_readings_failed(r))
			__atomic_add_fetch(&race->bad, 1, __ATOMIC_RELAXED);
		pm_readings_free(r);
	}
	return NULL;
}

struct writer_arg {
	struct pm_snapshot *snap;
	size_t device;
	int n;
};

static void *writer_loop(void *arg)
{
	struct writer_arg *w = arg;

	for (int i = 0; i < w->n; i++) {
		int64_t t = T0 + 9500 + i;
		struct pm_sample s = sample_of(w->device, t, w->device == 1);
		struct pm_device_state st = state_up(t);

		pm_snapshot_update(w->snap, w->device, &s, &st);
		if (pm_snapshot_write(w->snap, t) != 0)
			abort();
	}
	return NULL;
}

/* Readers never see a partial or missing file while two pollers replace
 * it concurrently, and the stamp never goes back. */
static void test_atomic_replace(void **state)
{
	struct env *e = *state;
	struct pm_snapshot *snap = pm_snapshot_new(&e->cfg);
	struct race race = { .e = e };
	struct writer_arg w0 = { snap, 0, 300 }, w1 = { snap, 1, 300 };
	struct pm_snapshot_info info;
	pthread_t reader, writer0, writer1;
	struct pm_sample s0 = sample_of(0, T0 + 9500, false);
	struct pm_sample s1 = sample_of(1, T0 + 9500, true);
	struct pm_device_state st = state_up(T0 + 9500);

	/* fresh at T0 + 10000 from here on */
	pm_snapshot_update(snap, 0, &s0, &st);
	pm_snapshot_update(snap, 1, &s1, &st);
	assert_int_equal(pm_snapshot_write(snap, T0 + 9500), 0);
	assert_int_equal(pthread_create(&reader, NULL, reader_loop, &race), 0);
	assert_int_equal(pthread_create(&writer0, NULL, writer_loop, &w0), 0);
	assert_int_equal(pthread_create(&writer1, NULL, writer_loop, &w1), 0);
	pthread_join(writer0, NULL);
	pthread_join(writer1, NULL);
	/* let the reader see the final file at least once */
	while (__atomic_load_n(&race.reads, __ATOMIC_RELAXED) < 20)
		usleep(1000);
	__atomic_store_n(&race.stop, 1, __ATOMIC_RELAXED);
	pthread_join(reader, NULL);
	assert_int_equal(race.bad, 0);
	assert_true(race.reads >= 20);
	assert_int_equal(pm_snapshot_info_load(&e->cfg, &info), 0);
	assert_int_equal(info.written_at_ms, T0 + 9500 + 299);
	assert_int_equal(info.devices[0].sample_ms, T0 + 9500 + 299);
	assert_int_equal(info.devices[1].sample_ms, T0 + 9500 + 299);
	pm_snapshot_info_free(&info);
	/* an earlier stamp after a later one is clamped */
	assert_int_equal(pm_snapshot_write(snap, T0), 0);
	assert_int_equal(pm_snapshot_info_load(&e->cfg, &info), 0);
	assert_int_equal(info.written_at_ms, T0 + 9500 + 299);
	pm_snapshot_info_free(&info);
	pm_snapshot_free(snap);
}

/* The file goes on clean shutdown, but only if it is still ours. */
static void test_remove(void **state)
{
	struct env *e = *state;
	struct pm_snapshot *snap = write_both_up(e);
	struct stat st;
	char other[128];

	assert_int_equal(pm_snapshot_remove(snap), 0);
	assert_int_equal(stat(e->path, &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(pm_snapshot_remove(snap), 0);
	pm_snapshot_free(snap);

	snap = write_both_up(e);
	/* another daemon replaced it since */
	snprintf(other, sizeof(other), "%s.other", e->path);
	write_text(other, "{}");
	assert_int_equal(rename(other, e->path), 0);
	assert_int_equal(pm_snapshot_remove(snap), 0);
	assert_int_equal(stat(e->path, &st), 0);
	pm_snapshot_free(snap);
}

/* A directory that does not exist: an error, nothing written. */
static void test_write_error(void **state)
{
	struct env *e = *state;
	struct pm_config cfg;
	struct pm_snapshot *snap;
	char path[128];

	snprintf(path, sizeof(path), "%s/missing/values.json", e->dir);
	build_config(&cfg, path);
	snap = pm_snapshot_new(&cfg);
	assert_int_equal(pm_snapshot_write(snap, T0), -ENOENT);
	pm_snapshot_free(snap);
	fixture_free(&cfg);
}

static void on_alarm(int sig)
{
	static const char msg[] = "# timed out: the snapshot's writer blocked\n";

	(void)sig;
	(void)!write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	_exit(1);
}

/* In a directory another user may write, they can put a FIFO, a symlink or
 * a file of theirs at the temporary's next names: the writer neither waits
 * on the FIFO (a poller stuck, SIGTERM ignored) nor writes through the
 * link, nor renames their file (false currents for Zabbix) into place: it
 * takes another name. */
static void test_temporary_names_taken(void **state)
{
	struct env *e = *state;
	struct pm_snapshot *snap;
	struct pm_readings *r;
	char trap[4][160], victim[128], *forged = "{\"forged\": true}\n";
	struct stat st;
	FILE *f;

	snprintf(victim, sizeof(victim), "%s/victim", e->dir);
	write_text(victim, "victim\n");
	for (unsigned i = 0; i < 4; i++)
		snprintf(trap[i], sizeof(trap[i]), "%s/.values.json.%ld.%u.tmp",
			 e->dir, (long)getpid(), i);
	assert_int_equal(mkfifo(trap[0], 0666), 0);
	assert_int_equal(symlink(victim, trap[1]), 0);
	write_text(trap[2], forged);
	assert_int_equal(mkfifo(trap[3], 0666), 0);

	(void)signal(SIGALRM, on_alarm);
	(void)alarm(10);
	snap = write_both_up(e);
	assert_int_equal(pm_snapshot_write(snap, T0 + 200), 0);
	(void)alarm(0);
	r = pm_readings_new(&e->cfg);
	assert_int_equal(pm_snapshot_read(&e->cfg, r, T0 + 300), 0);
	assert_int_equal(pm_readings_failed(r), 0);
	assert_true(value_of(r, 0)->current == 1017 * 0.01);
	pm_readings_free(r);
	f = fopen(victim, "r");
	assert_non_null(f);
	assert_non_null(fgets(victim, sizeof(victim), f));
	assert_string_equal(victim, "victim\n");
	fclose(f);
	assert_int_equal(lstat(trap[0], &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(lstat(trap[1], &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(lstat(trap[2], &st), 0);
	assert_int_equal(st.st_size, (off_t)strlen(forged));
	assert_int_equal(lstat(e->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	pm_snapshot_free(snap);
}

/* A current that is not a finite number (a ratio no config accepts) is
 * null in the file, which stays JSON (no Infinity), and its reader fails
 * that input alone (-ERANGE), never hands out an infinite current. */
static void test_not_finite(void **state)
{
	struct env *e = *state;
	struct pm_snapshot *snap;
	struct pm_readings *r;
	struct json_tokener *tok;
	struct json_object *o;
	struct pm_buf text;

	e->cfg.devices[0].inputs[0].ratio = 1e308;
	snap = write_both_up(e);
	pm_buf_init(&text, PM_SNAPSHOT_MAX);
	assert_int_equal(pm_snapshot_format(snap, T0 + 100, getpid(), &text), 0);
	assert_null(strstr(text.data, "Infinity"));
	assert_null(strstr(text.data, "inf"));
	assert_null(strstr(text.data, "NaN"));
	assert_non_null(strstr(text.data, "\"raw\": 1017, \"current\": null"));
	tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, text.data, (int)text.len);
	assert_non_null(o);
	json_object_put(o);
	json_tokener_free(tok);
	pm_buf_free(&text);

	r = pm_readings_new(&e->cfg);
	assert_int_equal(pm_snapshot_read(&e->cfg, r, T0 + 500), 0);
	assert_int_equal(value_of(r, 0)->status, -ERANGE);
	assert_true(isnan(value_of(r, 0)->current));
	assert_int_equal(value_of(r, 1)->status, 0);
	assert_true(value_of(r, 1)->current == 1027 * 0.01);
	assert_int_equal(pm_readings_failed(r), 0);
	pm_readings_free(r);
	pm_snapshot_free(snap);
}

/* The daemon's view: open, emit, tick_done writes, close(final) removes,
 * close(reload) keeps. */
static void test_sink(void **state)
{
	struct env *e = *state;
	const struct pm_sink_ops *ops = &pm_sink_snapshot;
	struct pm_sample s0 = sample_of(0, 0, false);
	struct pm_device_state st0;
	struct pm_readings *r;
	struct pm_buf status;
	struct stat st;
	void *sink = NULL;
	int64_t now;

	assert_string_equal(ops->name, "snapshot");
	assert_true(ops->wanted(&e->cfg));
	assert_int_equal(ops->open(&sink, &e->cfg), 0);
	now = pm_now_ms();
	s0.time_ms = now;
	st0 = state_up(now);
	ops->emit(sink, &e->cfg, 0, &s0, &st0);
	assert_int_equal(stat(e->path, &st), -1);
	ops->tick_done(sink, &e->cfg);
	assert_int_equal(stat(e->path, &st), 0);
	r = pm_readings_new_device(&e->cfg, 1);
	assert_int_equal(pm_snapshot_read(&e->cfg, r, pm_now_ms()), 0);
	assert_int_equal(pm_readings_failed(r), 0);
	assert_true(r->values[2].current == 1037 * 0.01);
	pm_readings_free(r);
	pm_buf_init(&status, 1024);
	ops->status(sink, &status);
	assert_string_equal(status.data, "snapshot ok");
	pm_buf_free(&status);
	ops->close(sink, false);
	assert_int_equal(stat(e->path, &st), 0);

	assert_int_equal(ops->open(&sink, &e->cfg), 0);
	ops->tick_done(sink, &e->cfg);
	ops->close(sink, true);
	assert_int_equal(stat(e->path, &st), -1);

	e->cfg.snapshot = (char *)"";
	assert_false(ops->wanted(&e->cfg));
	e->cfg.snapshot = NULL;
	assert_false(ops->wanted(&e->cfg));
	e->cfg.snapshot = e->path;
}

/* ---- feeds and alarms --------------------------------------------------- */

/* Two feeds of a 2N pair on build_config()'s devices: "UPS A" (32 A, L1-L3)
 * takes device 1's inputs a-f (a, d: L1; b, e: L2; c, f: L3), "UPS B"
 * (40 A, L1 and L2) device 7's a (L1) and c (L2). */
static void add_feeds(struct pm_config *cfg)
{
	static const unsigned a_phase[6] = { 0, 1, 2, 0, 1, 2 };

	cfg->feeds = calloc(2, sizeof(*cfg->feeds));
	assert_non_null(cfg->feeds);
	cfg->n_feeds = 2;
	cfg->feeds[0] = (struct pm_feed){
		.name = strdup("UPS A"), .capacity = 32, .voltage = NAN,
		.n_phases = 3, .phases = { 0, 1, 2 },
		.redundant_with = strdup("UPS B"), .partner = 1, .n_inputs = 6,
	};
	cfg->feeds[1] = (struct pm_feed){
		.name = strdup("UPS B"), .capacity = 40, .voltage = NAN,
		.n_phases = 2, .phases = { 0, 1 },
		.redundant_with = strdup("UPS A"), .partner = 0, .n_inputs = 2,
	};
	for (size_t d = 0; d < cfg->n_devices; d++)
		for (size_t k = 0; k < cfg->devices[d].n_inputs; k++)
			cfg->devices[d].inputs[k].feed = -1;
	for (size_t k = 0; k < 6; k++) {
		cfg->devices[0].inputs[k].feed = 0;
		cfg->devices[0].inputs[k].feed_phase = a_phase[k];
	}
	cfg->devices[1].inputs[0].feed = 1;
	cfg->devices[1].inputs[0].feed_phase = 0;
	cfg->devices[1].inputs[1].feed = 1;
	cfg->devices[1].inputs[1].feed_phase = 1;
	cfg->alarms.enabled = true;
}

static void free_feeds(struct pm_config *cfg)
{
	for (size_t f = 0; f < cfg->n_feeds; f++) {
		free(cfg->feeds[f].name);
		free(cfg->feeds[f].redundant_with);
	}
	free(cfg->feeds);
	cfg->feeds = NULL;
	cfg->n_feeds = 0;
}

static int setup_feeds(void **state)
{
	int r = setup(state);

	if (!r)
		add_feeds(&((struct env *)*state)->cfg);
	return r;
}

static int teardown_feeds(void **state)
{
	free_feeds(&((struct env *)*state)->cfg);
	return teardown(state);
}

/* Figures of a tick: UPS A complete, UPS B missing one circuit on L2. */
static void feed_figures(struct pm_feed_fig figs[2])
{
	memset(figs, 0, 2 * sizeof(*figs));
	figs[0].phase[0] = (struct pm_feed_phase_fig){
		.current = 14.0, .power = 3220.0, .load = 43.75,
		.redundant_load = 87.5, .inputs = 2, .missing = 0 };
	figs[0].phase[1] = (struct pm_feed_phase_fig){
		.current = 10.2, .power = 2346.0, .load = 31.875,
		.redundant_load = 60.0, .inputs = 2, .missing = 0 };
	figs[0].phase[2] = (struct pm_feed_phase_fig){
		.current = 17.0, .power = 3910.0, .load = 53.125,
		.redundant_load = NAN, .inputs = 2, .missing = 0 };
	figs[0].current = 41.2;
	figs[0].power = 9476.0;
	figs[0].imbalance = 12.5;
	figs[0].neutral = 5.1;
	figs[0].redundant_load = 87.5;
	figs[0].complete = true;
	figs[1].phase[0] = (struct pm_feed_phase_fig){
		.current = 14.0, .power = 3220.0, .load = 35.0,
		.redundant_load = 87.5, .inputs = 1, .missing = 0 };
	figs[1].phase[1] = (struct pm_feed_phase_fig){
		.current = 0.0, .power = 0.0, .load = 0.0,
		.redundant_load = 60.0, .inputs = 1, .missing = 1 };
	figs[1].current = 14.0;
	figs[1].power = 3220.0;
	figs[1].imbalance = NAN;	/* a phase without a reading */
	figs[1].neutral = NAN;
	figs[1].redundant_load = 87.5;
	figs[1].missing = 1;
	figs[1].complete = false;
}

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no member \"%s\"", key);
	return v;
}

static void assert_null_member(struct json_object *o, const char *key)
{
	assert_null(get(o, key));
}

static double number(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);

	assert_true(json_object_is_type(v, json_type_double) ||
		    json_object_is_type(v, json_type_int));
	return json_object_get_double(v);
}

/* Before the first tick: the configured feeds with null figures (the
 * circuits per phase counted from the config), no alarm; members in the
 * schema's order, after "devices". */
static void test_feeds_before_first_tick(void **state)
{
	struct env *e = *state;
	struct pm_snapshot *snap = write_both_up(e);
	struct pm_snapshot_info info;
	struct json_object *o, *feeds, *f, *phases, *p;
	struct pm_buf text;
	const char *devices, *feeds_at, *alarms_at, *enabled_at;

	pm_buf_init(&text, PM_SNAPSHOT_MAX);
	assert_int_equal(pm_snapshot_format(snap, T0 + 100, getpid(), &text), 0);
	devices = strstr(text.data, "\"devices\"");
	feeds_at = strstr(text.data, "\"feeds\"");
	alarms_at = strstr(text.data, "\"alarms\"");
	enabled_at = strstr(text.data, "\"alarms_enabled\"");
	assert_non_null(devices);
	assert_true(feeds_at > devices && alarms_at > feeds_at &&
		    enabled_at > alarms_at);
	pm_buf_free(&text);

	o = json_object_from_file(e->path);
	assert_non_null(o);
	feeds = get(o, "feeds");
	assert_int_equal(json_object_array_length(feeds), 2);
	f = json_object_array_get_idx(feeds, 0);
	assert_string_equal(json_object_get_string(get(f, "name")), "UPS A");
	assert_true(number(f, "capacity") == 32);
	assert_string_equal(json_object_to_json_string_ext(
				    get(f, "phases_configured"),
				    JSON_C_TO_STRING_PLAIN),
			    "[\"L1\",\"L2\",\"L3\"]");
	assert_string_equal(json_object_get_string(get(f, "redundant_with")),
			    "UPS B");
	assert_null_member(f, "complete");
	assert_null_member(f, "missing");
	assert_null_member(f, "current");
	assert_null_member(f, "power");
	assert_null_member(f, "imbalance");
	assert_null_member(f, "neutral");
	assert_null_member(f, "redundant_load");
	assert_null_member(f, "time_ms");
	phases = get(f, "phases");
	assert_int_equal(json_object_array_length(phases), 3);
	p = json_object_array_get_idx(phases, 1);
	assert_string_equal(json_object_get_string(get(p, "phase")), "L2");
	assert_int_equal(json_object_get_int(get(p, "inputs")), 2);
	assert_null_member(p, "missing");
	assert_null_member(p, "current");
	assert_null_member(p, "power");
	assert_null_member(p, "load");
	assert_null_member(p, "redundant_load");
	f = json_object_array_get_idx(feeds, 1);
	assert_int_equal(json_object_array_length(get(f, "phases")), 2);
	assert_int_equal(json_object_array_length(get(o, "alarms")), 0);
	assert_true(json_object_get_boolean(get(o, "alarms_enabled")));
	json_object_put(o);

	assert_int_equal(pm_snapshot_info_load(&e->cfg, &info), 0);
	assert_true(info.has_watch);
	assert_true(info.feeds_match);
	assert_true(info.alarms_enabled);
	assert_int_equal(info.n_feeds, 2);
	assert_false(info.feeds[0].known);
	assert_false(info.feeds[0].complete);
	assert_true(isnan(info.feeds[0].current));
	assert_true(isnan(info.feeds[0].phase[2].load));
	assert_int_equal(info.feeds[0].n_phases, 3);
	assert_int_equal(info.feeds[0].phase[2].phase, 2);
	assert_int_equal(info.feeds[0].phase[2].inputs, 2);
	assert_int_equal(info.feeds[1].n_phases, 2);
	assert_int_equal(info.n_alarms, 0);
	pm_snapshot_info_free(&info);
	pm_snapshot_free(snap);
}

/* After a tick: every figure as computed (NaN as null), the active alarms
 * worst first with the time they reached their level; read back to the
 * same doubles. The values of the circuits are untouched. */
static void test_feeds_and_alarms_round_trip(void **state)
{
	struct env *e = *state;
	struct pm_snapshot *snap = write_both_up(e);
	struct pm_feed_fig figs[2];
	struct pm_alarm crit = {
		.kind = PM_ALARM_FEED_LOAD, .subject = (char *)"UPS A L1",
		.level = PM_SEVERITY_CRITICAL, .changed_ms = T0 - 5000,
		.value = 103.2, .threshold = 100,
	};
	struct pm_alarm warn = {
		.kind = PM_ALARM_LOAD_LOST, .subject = (char *)"Kitchen \"north\" \xc3\xa9",
		.level = PM_SEVERITY_WARNING, .changed_ms = T0 - 100,
		.value = NAN, .threshold = 0.5,
	};
	const struct pm_alarm *active[] = { &crit, &warn };
	struct json_object *o, *f, *p, *alarms, *a;
	struct pm_snapshot_info info;
	const struct pm_snapshot_alarm *found;
	struct pm_readings *r;

	feed_figures(figs);
	assert_int_equal(pm_snapshot_watch(snap, T0 + 50, figs, active, 2), 0);
	assert_int_equal(pm_snapshot_write(snap, T0 + 100), 0);

	o = json_object_from_file(e->path);
	assert_non_null(o);
	f = json_object_array_get_idx(get(o, "feeds"), 0);
	assert_true(json_object_get_boolean(get(f, "complete")));
	assert_int_equal(json_object_get_int(get(f, "missing")), 0);
	assert_true(number(f, "current") == 41.2);
	assert_true(number(f, "power") == 9476.0);
	assert_true(number(f, "imbalance") == 12.5);
	assert_true(number(f, "neutral") == 5.1);
	assert_true(number(f, "redundant_load") == 87.5);
	assert_int_equal(json_object_get_int64(get(f, "time_ms")), T0 + 50);
	p = json_object_array_get_idx(get(f, "phases"), 0);
	assert_string_equal(json_object_get_string(get(p, "phase")), "L1");
	assert_true(number(p, "current") == 14.0);
	assert_true(number(p, "power") == 3220.0);
	assert_true(number(p, "load") == 43.75);
	assert_true(number(p, "redundant_load") == 87.5);
	assert_int_equal(json_object_get_int(get(p, "inputs")), 2);
	assert_int_equal(json_object_get_int(get(p, "missing")), 0);
	p = json_object_array_get_idx(get(f, "phases"), 2);
	assert_null_member(p, "redundant_load");	/* NaN */
	f = json_object_array_get_idx(get(o, "feeds"), 1);
	assert_false(json_object_get_boolean(get(f, "complete")));
	assert_int_equal(json_object_get_int(get(f, "missing")), 1);
	assert_null_member(f, "imbalance");
	assert_null_member(f, "neutral");
	p = json_object_array_get_idx(get(f, "phases"), 1);
	assert_int_equal(json_object_get_int(get(p, "missing")), 1);

	alarms = get(o, "alarms");
	assert_int_equal(json_object_array_length(alarms), 2);
	a = json_object_array_get_idx(alarms, 0);
	assert_string_equal(json_object_get_string(get(a, "alarm")), "feed_load");
	assert_string_equal(json_object_get_string(get(a, "subject")), "UPS A L1");
	assert_string_equal(json_object_get_string(get(a, "severity")), "critical");
	assert_int_equal(json_object_get_int64(get(a, "since")), T0 - 5000);
	assert_true(number(a, "value") == 103.2);
	assert_true(number(a, "threshold") == 100);
	a = json_object_array_get_idx(alarms, 1);
	assert_string_equal(json_object_get_string(get(a, "alarm")), "load_lost");
	assert_string_equal(json_object_get_string(get(a, "subject")),
			    "Kitchen \"north\" \xc3\xa9");
	assert_string_equal(json_object_get_string(get(a, "severity")), "warning");
	assert_null_member(a, "value");
	json_object_put(o);

	assert_int_equal(pm_snapshot_info_load(&e->cfg, &info), 0);
	assert_true(info.feeds_match);
	assert_true(info.feeds[0].known);
	assert_true(info.feeds[0].complete);
	assert_int_equal(info.feeds[0].time_ms, T0 + 50);
	assert_true(info.feeds[0].current == 41.2);
	assert_true(info.feeds[0].neutral == 5.1);
	assert_true(info.feeds[0].phase[1].current == 10.2);
	assert_true(info.feeds[0].phase[1].load == 31.875);
	assert_true(isnan(info.feeds[0].phase[2].redundant_load));
	assert_false(info.feeds[1].complete);
	assert_int_equal(info.feeds[1].missing, 1);
	assert_int_equal(info.feeds[1].phase[1].missing, 1);
	assert_true(isnan(info.feeds[1].imbalance));
	assert_int_equal(info.n_alarms, 2);
	assert_int_equal(info.alarms[0].kind, PM_ALARM_FEED_LOAD);
	assert_int_equal(info.alarms[0].severity, PM_SEVERITY_CRITICAL);
	assert_int_equal(info.alarms[0].since_ms, T0 - 5000);
	assert_true(info.alarms[0].value == 103.2);
	assert_true(info.alarms[0].threshold == 100);
	assert_int_equal(info.alarms[1].kind, PM_ALARM_LOAD_LOST);
	assert_true(isnan(info.alarms[1].value));
	found = pm_snapshot_alarm_find(&info, PM_ALARM_FEED_LOAD, "UPS A L1");
	assert_ptr_equal(found, &info.alarms[0]);
	assert_null(pm_snapshot_alarm_find(&info, PM_ALARM_FEED_LOAD, "UPS A L2"));
	assert_null(pm_snapshot_alarm_find(&info, PM_ALARM_CIRCUIT_LOAD, "UPS A L1"));
	pm_snapshot_info_free(&info);

	r = pm_readings_new(&e->cfg);
	assert_int_equal(pm_snapshot_read(&e->cfg, r, T0 + 500), 0);
	assert_int_equal(pm_readings_failed(r), 0);
	pm_readings_free(r);

	/* the next tick replaces them: cleared alarms are gone */
	assert_int_equal(pm_snapshot_watch(snap, T0 + 1050, figs, NULL, 0), 0);
	assert_int_equal(pm_snapshot_write(snap, T0 + 1100), 0);
	assert_int_equal(pm_snapshot_info_load(&e->cfg, &info), 0);
	assert_int_equal(info.n_alarms, 0);
	assert_int_equal(info.feeds[0].time_ms, T0 + 1050);
	pm_snapshot_info_free(&info);
	pm_snapshot_free(snap);
}

/* A reader whose feeds differ (capacity, phases, partner, another feed)
 * gets no figures, but its devices and the alarms; a reader without feeds
 * against a writer with them likewise. */
static void test_feeds_of_another_config(void **state)
{
	struct env *e = *state;
	struct pm_snapshot *snap = write_both_up(e);
	struct pm_feed_fig figs[2];

	feed_figures(figs);
	assert_int_equal(pm_snapshot_watch(snap, T0 + 50, figs, NULL, 0), 0);
	assert_int_equal(pm_snapshot_write(snap, T0 + 100), 0);
	for (int variant = 0; variant < 5; variant++) {
		struct pm_config other;
		struct pm_snapshot_info info;
		struct pm_readings *r;

		build_config(&other, e->path);
		add_feeds(&other);
		switch (variant) {
		case 0:
			other.feeds[0].capacity = 63;
			break;
		case 1:
			other.feeds[1].n_phases = 3;
			other.feeds[1].phases[2] = 2;
			break;
		case 2:
			free(other.feeds[1].redundant_with);
			other.feeds[1].redundant_with = NULL;
			break;
		case 3:
			free(other.feeds[1].name);
			other.feeds[1].name = strdup("UPS C");
			break;
		case 4:
			free_feeds(&other);
			break;
		}
		assert_int_equal(pm_snapshot_info_load(&other, &info), 0);
		assert_true(info.has_watch);
		assert_false(info.feeds_match);
		assert_int_equal(info.n_feeds, 0);
		assert_null(info.feeds);
		assert_int_equal(info.n_devices, 2);
		pm_snapshot_info_free(&info);
		r = pm_readings_new(&other);
		assert_int_equal(pm_snapshot_read(&other, r, T0 + 200), 0);
		pm_readings_free(r);
		free_feeds(&other);
		fixture_free(&other);
	}
	pm_snapshot_free(snap);
}

/* A file of a daemon from before feeds and alarms reads as before;
 * malformed feeds or alarms are refused by the info reader only. */
static void test_feeds_old_and_bad_files(void **state)
{
	struct env *e = *state;
	struct pm_snapshot *snap = write_both_up(e);
	struct pm_feed_fig figs[2];
	struct pm_alarm crit = {
		.kind = PM_ALARM_FEED_LOAD, .subject = (char *)"UPS A L1",
		.level = PM_SEVERITY_CRITICAL, .changed_ms = T0,
		.value = 103.2, .threshold = 100,
	};
	const struct pm_alarm *active[] = { &crit };
	static const struct {
		const char *from, *to;
	} bad[] = {
		{ "\"severity\": \"critical\"", "\"severity\": \"fatal\"" },
		{ "\"alarm\": \"feed_load\"", "\"alarm\": 3" },
		{ "\"since\": ", "\"since\": \"x\", \"y\": " },
		{ "\"alarms_enabled\": true", "\"alarms_enabled\": 1" },
		{ "\"load\": 43.75", "\"load\": \"43.75\"" },
		{ "\"phase\": \"L2\"", "\"phase\": \"L3\"" },
	};
	struct pm_snapshot_info info;
	struct pm_readings *r;
	struct pm_buf text;
	char *mangled, *at;

	feed_figures(figs);
	assert_int_equal(pm_snapshot_watch(snap, T0 + 50, figs, active, 1), 0);
	pm_buf_init(&text, PM_SNAPSHOT_MAX);
	assert_int_equal(pm_snapshot_format(snap, T0 + 100, getpid(), &text), 0);

	/* the old file: "devices" closes the object */
	mangled = strdup(text.data);
	at = strstr(mangled, "\t],\n\t\"feeds\"");
	assert_non_null(at);
	strcpy(at, "\t]\n}\n");
	write_text(e->path, mangled);
	free(mangled);
	assert_int_equal(pm_snapshot_info_load(&e->cfg, &info), 0);
	assert_false(info.has_watch);
	assert_false(info.feeds_match);
	assert_int_equal(info.n_feeds + info.n_alarms, 0);
	assert_int_equal(info.n_devices, 2);
	pm_snapshot_info_free(&info);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = strlen(text.data) + 64;

		mangled = malloc(n);
		assert_non_null(mangled);
		at = strstr(text.data, bad[i].from);
		assert_non_null(at);
		(void)snprintf(mangled, n, "%.*s%s%s", (int)(at - text.data),
			       text.data, bad[i].to, at + strlen(bad[i].from));
		write_text(e->path, mangled);
		free(mangled);
		assert_int_equal(pm_snapshot_info_load(&e->cfg, &info),
				 -PM_EFRAME);
		/* the circuits' values do not depend on them */
		r = pm_readings_new(&e->cfg);
		assert_int_equal(pm_snapshot_read(&e->cfg, r, T0 + 200), 0);
		pm_readings_free(r);
	}
	pm_buf_free(&text);
	pm_snapshot_free(snap);
}

/* No feeds, alarms off: empty lists, "alarms_enabled": false. */
static void test_no_feeds(void **state)
{
	struct env *e = *state;
	struct pm_snapshot *snap = write_both_up(e);
	struct pm_snapshot_info info;
	struct json_object *o;

	o = json_object_from_file(e->path);
	assert_non_null(o);
	assert_int_equal(json_object_array_length(get(o, "feeds")), 0);
	assert_int_equal(json_object_array_length(get(o, "alarms")), 0);
	assert_false(json_object_get_boolean(get(o, "alarms_enabled")));
	json_object_put(o);
	assert_int_equal(pm_snapshot_info_load(&e->cfg, &info), 0);
	assert_true(info.has_watch);
	assert_true(info.feeds_match);
	assert_false(info.alarms_enabled);
	assert_int_equal(info.n_feeds, 0);
	pm_snapshot_info_free(&info);
	pm_snapshot_free(snap);
}

/* The sink's 'watch': what the tick says reaches the next file; a tick of
 * another config (a reload) is ignored. */
static void test_sink_watch(void **state)
{
	struct env *e = *state;
	const struct pm_sink_ops *ops = &pm_sink_snapshot;
	struct pm_feed_fig figs[3];
	struct pm_alarm warn = {
		.kind = PM_ALARM_CIRCUIT_LOAD, .subject = (char *)"Input a",
		.level = PM_SEVERITY_WARNING, .changed_ms = T0,
		.value = 85, .threshold = 80,
	};
	const struct pm_alarm *active[] = { &warn };
	struct pm_watch_tick t = {
		.time_ms = T0 + 10, .n_feeds = 2, .feeds = figs,
		.n_active = 1, .active = active,
	};
	struct pm_snapshot_info info;
	void *sink = NULL;

	assert_non_null(ops->watch);
	feed_figures(figs);
	assert_int_equal(ops->open(&sink, &e->cfg), 0);
	ops->watch(sink, &e->cfg, &t);
	ops->tick_done(sink, &e->cfg);
	assert_int_equal(pm_snapshot_info_load(&e->cfg, &info), 0);
	assert_int_equal(info.n_alarms, 1);
	assert_string_equal(info.alarms[0].subject, "Input a");
	assert_int_equal(info.feeds[0].time_ms, T0 + 10);
	pm_snapshot_info_free(&info);

	t.n_feeds = 3;
	t.time_ms = T0 + 20;
	t.n_active = 0;
	ops->watch(sink, &e->cfg, &t);
	ops->tick_done(sink, &e->cfg);
	assert_int_equal(pm_snapshot_info_load(&e->cfg, &info), 0);
	assert_int_equal(info.n_alarms, 1);
	assert_int_equal(info.feeds[0].time_ms, T0 + 10);
	pm_snapshot_info_free(&info);
	ops->close(sink, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_content, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_sample_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_down_devices, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_atomic_replace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_temporary_names_taken, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_finite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_feeds_before_first_tick, setup_feeds, teardown_feeds),
		cmocka_unit_test_setup_teardown(test_feeds_and_alarms_round_trip, setup_feeds, teardown_feeds),
		cmocka_unit_test_setup_teardown(test_feeds_of_another_config, setup_feeds, teardown_feeds),
		cmocka_unit_test_setup_teardown(test_feeds_old_and_bad_files, setup_feeds, teardown_feeds),
		cmocka_unit_test_setup_teardown(test_no_feeds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sink_watch, setup_feeds, teardown_feeds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
