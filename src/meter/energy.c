/* energy.c — the energy and charge counters (energy.h): integration with the
 * gap rule, and the state file that keeps them.
 *
 * The state file is text, one counter a line, so that a person can read it:
 *
 *   powermeter-energy 1
 *   written 1700000000123
 *   # device_id input energy_wh charge_ah unmetered_s last_ms last_power_w last_current_a shown_energy_wh shown_charge_ah
 *   1 a 1234.5 5.36 12 1700000000000 230 1 1200.25 5.2
 *   end 1 crc32 0123abcd
 *
 * The last line counts the counter lines and carries the CRC-32 of every
 * byte before it: a torn or altered file is never taken for a good one.
 * "shown" is what outputs show once this file is written: the integrated
 * values of the file before it, which both generations then hold. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <powermeter/powermeter.h>

#include "meter/energy.h"
#include "util/buf.h"
#include "util/crc32.h"
#include "util/fileio.h"

#define STATE_MAX (16u * 1024 * 1024)	/* 65536 counters of ~200 bytes */
#define LINE_MAX_LEN 512

struct pm_energy {
	pthread_mutex_t lock;
	char *dir;
	char *path;			/* dir/energy.state */
	char *previous;			/* dir/energy.state.prev */
	struct pm_energy_counter *c;	/* sorted by (device_id, channel) */
	size_t n, cap;
	size_t *by_input;		/* config input id -> index into c */
	size_t n_inputs;
	const struct pm_config *cfg;
	double max_gap_s;
	bool withheld;			/* a damaged file lies aside */
	uint64_t saves;
};

static int counter_cmp(int dev_a, unsigned ch_a, int dev_b, unsigned ch_b)
{
	if (dev_a != dev_b)
		return dev_a < dev_b ? -1 : 1;
	if (ch_a != ch_b)
		return ch_a < ch_b ? -1 : 1;
	return 0;
}

/* Index of (device_id, channel) in e->c, or where it would be inserted
 * (*found false). */
static size_t counter_find(const struct pm_energy_counter *c, size_t n,
			   int device_id, unsigned channel, bool *found)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = counter_cmp(c[mid].device_id, c[mid].channel, device_id,
				    channel);

		if (r == 0) {
			*found = true;
			return mid;
		}
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

/* ---- the state file ------------------------------------------------------ */

static int format_state(struct pm_buf *b, const struct pm_energy_counter *c,
			size_t n, int64_t now_ms)
{
	uint32_t crc;
	int r;

	r = pm_buf_printf(b, "%s %d\nwritten %" PRId64 "\n"
			  "# device_id input energy_wh charge_ah unmetered_s "
			  "last_ms last_power_w last_current_a shown_energy_wh "
			  "shown_charge_ah\n", PM_ENERGY_FORMAT,
			  PM_ENERGY_VERSION, now_ms);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = pm_buf_printf(b, "%d %c %.17g %.17g %.17g %" PRId64
				  " %.17g %.17g %.17g %.17g\n", c[i].device_id,
				  pm_channel_letter(c[i].channel), c[i].energy_wh,
				  c[i].charge_ah, c[i].unmetered_s, c[i].last_ms,
				  c[i].last_power_w, c[i].last_current_a,
				  c[i].saved_energy_wh, c[i].saved_charge_ah);
	if (r == 0) {
		crc = pm_crc32(0, b->data, b->len);
		r = pm_buf_printf(b, "end %zu crc32 %08" PRIx32 "\n", n, crc);
	}
	return r;
}

/* A finite number as the file writes it; with 'amount', not negative. */
static bool parse_number(const char *s, bool amount, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(v) || (amount && v < 0))
		return false;
	*out = v;
	return true;
}

static bool parse_ms(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end || errno || v < 0)
		return false;
	*out = v;
	return true;
}

static bool parse_counter(char *line, struct pm_energy_counter *c)
{
	char *f[10], *save = NULL;
	size_t nf = 0;
	char *end;
	long id;

	for (char *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (nf == 10)
			return false;
		f[nf++] = t;
	}
	if (nf != 10)
		return false;
	errno = 0;
	id = strtol(f[0], &end, 10);
	if (end == f[0] || *end || errno || id < 0 || id > INT32_MAX)
		return false;
	if (strlen(f[1]) != 1 || f[1][0] < 'a' || f[1][0] >= 'a' + PM_CHANNELS)
		return false;
	memset(c, 0, sizeof(*c));
	c->device_id = (int)id;
	c->channel = (unsigned)(f[1][0] - 'a');
	return parse_number(f[2], true, &c->energy_wh) &&
	       parse_number(f[3], true, &c->charge_ah) &&
	       parse_number(f[4], true, &c->unmetered_s) &&
	       parse_ms(f[5], &c->last_ms) &&
	       parse_number(f[6], false, &c->last_power_w) &&
	       parse_number(f[7], false, &c->last_current_a) &&
	       parse_number(f[8], true, &c->shown_energy_wh) &&
	       parse_number(f[9], true, &c->shown_charge_ah) &&
	       c->shown_energy_wh <= c->energy_wh &&
	       c->shown_charge_ah <= c->charge_ah;
}

/* Parses a whole state file's text (NUL-terminated, 'len' bytes). */
static int parse_state(char *text, size_t len, struct pm_energy_counter **out,
		       size_t *n_out, int64_t *written_ms)
{
	struct pm_energy_counter *c = NULL;
	size_t n = 0, cap = 0, declared;
	char *p = text, *end_line;
	unsigned long crc_file;
	int64_t written = 0;
	int version, used;
	bool found;

	/* the last line: "end N crc32 XXXXXXXX\n" over everything before */
	if (len < 2 || text[len - 1] != '\n')
		return -PM_EFRAME;
	text[len - 1] = '\0';
	end_line = strrchr(text, '\n');
	if (!end_line)
		return -PM_EFRAME;
	end_line++;
	if (sscanf(end_line, "end %zu crc32 %8lx%n", &declared, &crc_file,
		   &used) != 2 || end_line[used] != '\0' || strlen(end_line) < 20)
		return -PM_EFRAME;
	if (pm_crc32(0, text, (size_t)(end_line - text)) != (uint32_t)crc_file)
		return -PM_EFRAME;
	*end_line = '\0';	/* the lines before it, each ending in '\n' */

	for (unsigned lineno = 1; *p; lineno++) {
		char *nl = strchr(p, '\n');

		if (!nl)
			goto bad;
		*nl = '\0';
		if (lineno == 1) {
			if (sscanf(p, PM_ENERGY_FORMAT " %d%n", &version,
				   &used) != 1 || p[used] ||
			    version != PM_ENERGY_VERSION)
				goto bad;
		} else if (lineno == 2) {
			if (strncmp(p, "written ", 8) || !parse_ms(p + 8, &written))
				goto bad;
		} else if (p[0] != '#') {
			struct pm_energy_counter one;
			size_t at;

			if (!parse_counter(p, &one) || n == PM_ENERGY_COUNTERS_MAX)
				goto bad;
			at = counter_find(c, n, one.device_id, one.channel, &found);
			if (found)
				goto bad;
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				void *m = realloc(c, ncap * sizeof(*c));

				if (!m) {
					free(c);
					return -ENOMEM;
				}
				c = m;
				cap = ncap;
			}
			memmove(c + at + 1, c + at, (n - at) * sizeof(*c));
			c[at] = one;
			n++;
		}
		p = nl + 1;
	}
	if (n != declared || written == 0)
		goto bad;
	*out = c;
	*n_out = n;
	*written_ms = written;
	return 0;
bad:
	free(c);
	return -PM_EFRAME;
}

int pm_energy_read_file(const char *path, struct pm_energy_counter **out,
			size_t *n, int64_t *written_ms)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	r = pm_read_file_capped(path, STATE_MAX, &text, &len);
	if (r < 0)
		return r;
	r = parse_state(text, len, out, n, written_ms);
	free(text);
	return r;
}

/* ---- open, configure, integrate ----------------------------------------- */

static char *path_join(const char *dir, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

/* Puts a damaged file aside as energy.state.damaged-<time>[.prev]. */
static void put_aside(const char *dir, const char *path, const char *suffix,
		      char *aside, size_t size)
{
	snprintf(aside, size, "%s/" PM_ENERGY_DAMAGED "%lld%s", dir,
		 (long long)time(NULL), suffix);
	if (rename(path, aside) < 0)
		snprintf(aside, size, "%s (could not be renamed: %s)", path,
			 strerror(errno));
}

/* The counters restarted from 0 after every save was found damaged: while
 * this file exists, nothing is shown. */
static bool withheld(const char *dir)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/" PM_ENERGY_WITHHELD, dir);
	return access(path, F_OK) == 0;
}

static void withhold(const char *dir)
{
	char path[4096];
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "%s/" PM_ENERGY_WITHHELD, dir);
	/* Created, never opened: one that is there withholds already, and
	 * whatever else is at the name is not written through. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC |
		  O_NONBLOCK, 0644);
	if (fd < 0)
		return;
	f = fdopen(fd, "w");
	if (!f) {
		(void)close(fd);
		return;
	}
	fprintf(f, "powermeterd found no usable save of the energy counters\n"
		"here (see the " PM_ENERGY_DAMAGED "* files) and counts from 0\n"
		"again, showing no energy while this file exists: the\n"
		"databases hold higher counters. Restore a good " PM_ENERGY_FILE "\n"
		"and remove this file, or remove it to accept counting from 0;\n"
		"then restart powermeterd.\n");
	fclose(f);
}

int pm_energy_open(struct pm_energy **out, const char *dir,
		   struct pm_energy_open_report *rep)
{
	struct pm_energy *e = calloc(1, sizeof(*e));
	int64_t written;
	int r;

	memset(rep, 0, sizeof(*rep));
	if (!e)
		return -ENOMEM;
	(void)pthread_mutex_init(&e->lock, NULL);
	e->dir = strdup(dir);
	e->path = path_join(dir, PM_ENERGY_FILE);
	e->previous = path_join(dir, PM_ENERGY_PREVIOUS);
	if (!e->dir || !e->path || !e->previous) {
		pm_energy_free(e);
		return -ENOMEM;
	}

	r = pm_energy_read_file(e->path, &e->c, &e->n, &written);
	/* A file that cannot be read now (permissions, I/O) is not damaged:
	 * counting from 0 and saving over it would lose it. */
	if (r < 0 && r != -ENOENT && r != -PM_EFRAME && r != -PM_ETOOBIG) {
		rep->newest_err = r;
		pm_energy_free(e);
		return r;
	}
	if (r == 0) {
		for (size_t i = 0; i < e->n; i++) {
			e->c[i].saved_energy_wh = e->c[i].energy_wh;
			e->c[i].saved_charge_ah = e->c[i].charge_ah;
		}
		rep->origin = PM_ENERGY_LOADED;
	} else {
		bool newest_exists = r != -ENOENT;

		rep->newest_err = r;
		if (r == -PM_EFRAME || r == -PM_ETOOBIG)
			put_aside(dir, e->path, "", rep->newest_aside,
				  sizeof(rep->newest_aside));
		r = pm_energy_read_file(e->previous, &e->c, &e->n, &written);
		if (r < 0 && r != -ENOENT && r != -PM_EFRAME &&
		    r != -PM_ETOOBIG) {
			rep->previous_err = r;
			pm_energy_free(e);
			return r;
		}
		if (r == 0) {
			/* Outputs may have shown what the damaged newest
			 * generation held as "shown", which is at most this
			 * one's integrated value: start showing that. */
			for (size_t i = 0; i < e->n; i++) {
				e->c[i].shown_energy_wh = e->c[i].energy_wh;
				e->c[i].shown_charge_ah = e->c[i].charge_ah;
				e->c[i].saved_energy_wh = e->c[i].energy_wh;
				e->c[i].saved_charge_ah = e->c[i].charge_ah;
			}
			rep->origin = newest_exists ? PM_ENERGY_FALLBACK
						    : PM_ENERGY_LOADED;
		} else {
			rep->previous_err = r;
			if (r == -PM_EFRAME || r == -PM_ETOOBIG)
				put_aside(dir, e->previous, ".prev",
					  rep->previous_aside,
					  sizeof(rep->previous_aside));
			rep->origin = PM_ENERGY_NEW;
		}
	}
	e->cap = e->n;
	if (rep->origin == PM_ENERGY_NEW &&
	    (rep->newest_aside[0] || rep->previous_aside[0]))
		withhold(dir);
	e->withheld = withheld(dir);
	if (e->withheld)
		rep->origin = PM_ENERGY_HELD_BACK;
	rep->counters = e->n;
	*out = e;
	return 0;
}

void pm_energy_free(struct pm_energy *e)
{
	if (!e)
		return;
	(void)pthread_mutex_destroy(&e->lock);
	free(e->c);
	free(e->by_input);
	free(e->dir);
	free(e->path);
	free(e->previous);
	free(e);
}

int pm_energy_configure(struct pm_energy *e, const struct pm_config *cfg)
{
	size_t *map = calloc(cfg->n_inputs ? cfg->n_inputs : 1, sizeof(*map));
	int r = 0;

	if (!map)
		return -ENOMEM;
	(void)pthread_mutex_lock(&e->lock);
	for (size_t i = 0; i < e->n; i++)
		e->c[i].configured = false;
	for (size_t d = 0; d < cfg->n_devices && r == 0; d++) {
		const struct pm_device *dev = &cfg->devices[d];

		for (size_t k = 0; k < dev->n_inputs; k++) {
			const struct pm_input *in = &dev->inputs[k];
			bool found;
			size_t at = counter_find(e->c, e->n, dev->id,
						 in->channel, &found);

			if (!found) {
				if (e->n == e->cap) {
					size_t ncap = e->cap ? e->cap * 2 : 64;
					void *m = realloc(e->c, ncap * sizeof(*e->c));

					if (!m) {
						r = -ENOMEM;
						break;
					}
					e->c = m;
					e->cap = ncap;
				}
				/* Entries move: remap what came before. */
				for (size_t j = 0; j < (size_t)in->id; j++)
					if (map[j] >= at)
						map[j]++;
				memmove(e->c + at + 1, e->c + at,
					(e->n - at) * sizeof(*e->c));
				memset(&e->c[at], 0, sizeof(e->c[at]));
				e->c[at].device_id = dev->id;
				e->c[at].channel = in->channel;
				e->n++;
			}
			e->c[at].configured = true;
			map[in->id] = at;
		}
	}
	if (r == 0) {
		free(e->by_input);
		e->by_input = map;
		e->n_inputs = cfg->n_inputs;
		e->cfg = cfg;
		e->max_gap_s = cfg->energy.max_gap;
	}
	(void)pthread_mutex_unlock(&e->lock);
	if (r < 0)
		free(map);
	return r;
}

const struct pm_energy_counter *
pm_energy_counter_find(const struct pm_energy_counter *c, size_t n,
		       int device_id, unsigned channel)
{
	bool found;
	size_t at = counter_find(c, n, device_id, channel, &found);

	return found ? &c[at] : NULL;
}

bool pm_energy_raise(struct pm_energy *e, int device_id, unsigned channel,
		     double energy_wh, double charge_ah)
{
	bool found, raised = false;
	size_t at;

	(void)pthread_mutex_lock(&e->lock);
	at = counter_find(e->c, e->n, device_id, channel, &found);
	if (found) {
		struct pm_energy_counter *c = &e->c[at];

		raised = energy_wh > c->energy_wh || charge_ah > c->charge_ah;
		c->energy_wh = fmax(c->energy_wh, energy_wh);
		c->charge_ah = fmax(c->charge_ah, charge_ah);
	}
	(void)pthread_mutex_unlock(&e->lock);
	return raised;
}

void pm_energy_add(struct pm_energy *e, struct pm_sample *s)
{
	const struct pm_config *cfg;
	const struct pm_device *dev;

	(void)pthread_mutex_lock(&e->lock);
	cfg = e->cfg;
	if (!cfg || s->device >= cfg->n_devices) {
		(void)pthread_mutex_unlock(&e->lock);
		return;
	}
	dev = &cfg->devices[s->device];
	for (size_t k = 0; k < PM_CHANNELS; k++)
		s->energy_wh[k] = s->charge_ah[k] = NAN;
	for (size_t k = 0; k < dev->n_inputs; k++) {
		const struct pm_input *in = &dev->inputs[k];
		struct pm_energy_counter *c;
		double amps, watts, dt;

		if (in->channel >= PM_CHANNELS || (size_t)in->id >= e->n_inputs)
			continue;
		c = &e->c[e->by_input[in->id]];
		amps = pm_sample_amperes(s, in);
		watts = pm_sample_power(s, in);
		/* not a reading: the counters would never be numbers again */
		if (!isfinite(amps) || !isfinite(watts))
			continue;
		dt = (double)(s->time_ms - c->last_ms) / 1000.0;
		if (c->last_ms > 0 && dt > 0 && dt <= e->max_gap_s) {
			c->energy_wh += (c->last_power_w + watts) / 2 * dt / 3600;
			c->charge_ah += (c->last_current_a + amps) / 2 * dt / 3600;
		} else if (c->last_ms > 0 && dt > 0) {
			c->unmetered_s += dt;
		}
		/* A clock stepped back (dt <= 0) adds nothing; the next
		 * interval counts from this sample. */
		c->last_ms = s->time_ms;
		c->last_power_w = watts;
		c->last_current_a = amps;
		if (!c->has_peak || amps > c->peak_a)
			c->peak_a = amps;
		c->has_peak = true;
		if (!e->withheld) {
			s->energy_wh[in->channel] = c->shown_energy_wh;
			s->charge_ah[in->channel] = c->shown_charge_ah;
		}
	}
	s->has_energy = true;
	(void)pthread_mutex_unlock(&e->lock);
}

/* ---- saving ------------------------------------------------------------ */

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* Writes 'b' into a new file dir/energy.state.tmp (exclusively: a file left
 * there by a crash is removed first, and a symlink is never followed). */
static int write_tmp(const char *tmp, const struct pm_buf *b)
{
	int fd, r;

	if (unlink(tmp) < 0 && errno != ENOENT)
		return -errno;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0644);
	if (fd < 0)
		return -errno;
	r = pm_write_all(fd, b->data, b->len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		(void)unlink(tmp);
	return r;
}

int pm_energy_save(struct pm_energy *e, int64_t now_ms)
{
	struct pm_energy_counter *snap = NULL;
	char *tmp = NULL, *prev_tmp = NULL;
	struct pm_buf b;
	size_t n;
	int r;

	(void)pthread_mutex_lock(&e->lock);
	n = e->n;
	snap = malloc((n ? n : 1) * sizeof(*snap));
	if (snap)
		memcpy(snap, e->c, n * sizeof(*snap));
	(void)pthread_mutex_unlock(&e->lock);
	if (!snap)
		return -ENOMEM;

	pm_buf_init(&b, STATE_MAX);
	r = format_state(&b, snap, n, now_ms);
	if (r == 0 && (asprintf(&tmp, "%s.tmp", e->path) < 0 ||
		       asprintf(&prev_tmp, "%s.tmp", e->previous) < 0))
		r = -ENOMEM;
	if (r == 0)
		r = write_tmp(tmp, &b);
	/* The current file becomes the previous generation without a copy:
	 * a second name for it, renamed over the old previous. At every
	 * instant both names hold a complete file. */
	if (r == 0) {
		(void)unlink(prev_tmp);
		if (link(e->path, prev_tmp) == 0) {
			if (rename(prev_tmp, e->previous) < 0)
				r = -errno;
		} else if (errno != ENOENT) {
			r = -errno;
		}
		if (r < 0)
			(void)unlink(tmp);
	}
	if (r == 0 && rename(tmp, e->path) < 0) {
		r = -errno;
		(void)unlink(tmp);
	}
	if (r == 0)
		r = sync_dir(e->dir);
	pm_buf_free(&b);
	free(tmp);
	free(prev_tmp);
	if (r < 0) {
		free(snap);
		return r;
	}

	/* What the file before this one held is now in both generations:
	 * outputs may show it, as the file just written says. */
	(void)pthread_mutex_lock(&e->lock);
	for (size_t i = 0; i < n; i++) {
		bool found;
		size_t at = counter_find(e->c, e->n, snap[i].device_id,
					 snap[i].channel, &found);

		if (!found)
			continue;
		e->c[at].shown_energy_wh = e->c[at].saved_energy_wh;
		e->c[at].shown_charge_ah = e->c[at].saved_charge_ah;
		e->c[at].saved_energy_wh = snap[i].energy_wh;
		e->c[at].saved_charge_ah = snap[i].charge_ah;
	}
	e->saves++;
	e->withheld = withheld(e->dir);
	(void)pthread_mutex_unlock(&e->lock);
	free(snap);
	return 0;
}

uint64_t pm_energy_saves(const struct pm_energy *e)
{
	return __atomic_load_n(&e->saves, __ATOMIC_RELAXED);
}

static int counters_copy(struct pm_energy *e, struct pm_energy_counter **out,
			 size_t *n, bool take_peaks)
{
	struct pm_energy_counter *c;

	(void)pthread_mutex_lock(&e->lock);
	c = malloc((e->n ? e->n : 1) * sizeof(*c));
	if (c) {
		memcpy(c, e->c, e->n * sizeof(*c));
		*n = e->n;
		for (size_t i = 0; take_peaks && i < e->n; i++)
			e->c[i].has_peak = false;
	}
	(void)pthread_mutex_unlock(&e->lock);
	if (!c)
		return -ENOMEM;
	*out = c;
	return 0;
}

int pm_energy_counters(struct pm_energy *e, struct pm_energy_counter **out,
		       size_t *n)
{
	return counters_copy(e, out, n, false);
}

int pm_energy_take_peaks(struct pm_energy *e, struct pm_energy_counter **out,
			 size_t *n)
{
	return counters_copy(e, out, n, true);
}
