/* cmd_watch.c — `powermeter watch`: a live view of every configured circuit
 * for finding which CT is on which circuit (switch a load on, watch its line
 * light up): current, estimated power, load against the breaker and a mark
 * on what just changed, redrawn every tick on a VT100 terminal (plain ANSI,
 * no ncurses) from powermeterd's snapshot, or from the bus when no daemon
 * runs. --once prints one frame as plain text.
 *
 * Where the data comes from (--source auto, the default), decided afresh
 * every tick:
 *   - a fresh snapshot of this config: the snapshot, never the port;
 *   - a stale snapshot whose writer still runs (powermeterd overloaded,
 *     stuck or stopped with SIGSTOP): nothing, and a line saying so.
 *     pm_read's own PM_SOURCE_AUTO would try the bus here; that fails at
 *     once with EBUSY while the daemon holds its ports, but a daemon
 *     between closing and reopening a converter (unplugged, replugged)
 *     could find the port taken by us, every tick: so watch never reads
 *     the bus while the snapshot's writer is alive;
 *   - no snapshot although a daemon was seen within the last
 *     PM_SNAPSHOT_STALE_INTERVALS of its intervals (it removes the file when
 *     it stops: a restart): nothing yet, so the new daemon gets its ports;
 *   - otherwise (no daemon, or a stale file whose writer is gone): the bus,
 *     opened, read and closed every tick, as `powermeter read` does.
 * A daemon started while watch reads the bus may find the port taken for
 * the few milliseconds of a read; it retries (poller.c) and watch switches
 * to its snapshot as soon as there is one. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <powermeter/powermeter.h>

#include "cli.h"
#include "config/config.h"
#include "meter/snapshot.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/timeutil.h"

/* A circuit's line is marked when its current moved by at least
 * max(CHANGE_MIN_A, CHANGE_MIN_FRACTION of the previous value) since the
 * previous refresh: 0.05 A is above one count of the 40 A range's 0.04 A
 * resolution (datasheet), and 5 % keeps a loaded circuit's own ripple from
 * marking it. */
#define CHANGE_MIN_A 0.05
#define CHANGE_MIN_FRACTION 0.05
/* How long a mark stays, to be seen from across the room. */
#define MARK_NS (5LL * 1000000000)
#define INTERVAL_MIN 0.1	/* seconds */
#define INTERVAL_MAX 3600.0
/* Hard caps: a frame as sent to the terminal, the columns used. */
#define FRAME_MAX (4u * 1024 * 1024)
#define COLS_MAX 1000u
#define ROWS_MAX 1000u
/* The bar's columns: at most, at least (else none), in plain text. */
#define BAR_MAX 30
#define BAR_MIN 5
#define BAR_PLAIN 20
#define NAME_MIN 10
/* Fixed columns of a circuit's line. */
#define W_MARK 9	/* ">>+12.34" while marked */
#define W_IN 2
#define W_PHASE 5
#define W_FEED_MAX 16
#define W_CURRENT 9	/* "123.45 A" */
#define W_POWER 10	/* "12345 W" */
#define W_LOAD 13	/* "100 % of 16 A", "no breaker" */

#define CSI "\033["
#define ATTR_BOLD CSI "1m"
#define ATTR_MARK CSI "1;7m"	/* bold, reverse video */
#define ATTR_OFF CSI "0m"

enum { EXIT_TERM_FAILED = 1 };

static void watch_usage(FILE *f)
{
	fprintf(f,
		"usage: powermeter watch [-c CONFIG] [--source auto|snapshot|bus]\n"
		"                        [-i SECONDS] [-d ID] [--once]\n"
		"A live view of every configured circuit: current, estimated power,\n"
		"load against its breaker, and a mark on the lines whose current just\n"
		"changed. Keys: q quit, Up/Down/PgUp/PgDn/Home/End scroll.\n"
		"  -c, --config PATH     config file (default %s)\n"
		"      --source SRC      auto (default: powermeterd's snapshot while it\n"
		"                        runs, else the bus), snapshot or bus\n"
		"  -i, --interval S      seconds between refreshes (default: the\n"
		"                        config's interval)\n"
		"  -d, --device ID       only the device with this id\n"
		"      --once            print one frame as plain text and exit\n",
		PM_DEFAULT_CONFIG);
}

/* ---- text: UTF-8 by columns ---------------------------------------------- */

/* The length (1..4) of the printable UTF-8 character at 's', or 0 when 's'
 * starts a control character (C0, DEL, C1) or a malformed sequence: those
 * never reach the terminal. Every character counts as one column. */
static size_t u8_char(const unsigned char *s)
{
	unsigned c = s[0], cp;
	size_t n;

	if (c >= 0x20 && c < 0x7f)
		return 1;
	if (c < 0xc2 || c > 0xf4)
		return 0;
	n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
	cp = c & (0x3fu >> (n - 1));
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return n;
}

/* Columns of 's' as add_text() writes it. */
static size_t u8_cols(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t cols = 0, n;

	while (*p) {
		n = u8_char(p);
		p += n ? n : 1;
		cols++;
	}
	return cols;
}

/* Appends 's' with '?' for what may not reach the terminal, in at most
 * 'cols' columns (SIZE_MAX: all of it; cut short: "…" in the last one),
 * padded with spaces to 'cols' when 'pad'. */
static int add_text(struct pm_buf *b, const char *s, size_t cols, bool pad)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t total = u8_cols(s), keep = total, used = 0, n;
	int r = 0;

	if (total > cols)
		keep = cols ? cols - 1 : 0;
	while (*p && used < keep && !r) {
		n = u8_char(p);
		r = n ? pm_buf_add(b, p, n) : pm_buf_addc(b, '?');
		p += n ? n : 1;
		used++;
	}
	if (!r && total > cols && cols) {
		r = pm_buf_adds(b, "\u2026");
		used++;
	}
	while (!r && pad && used < cols) {
		r = pm_buf_addc(b, ' ');
		used++;
	}
	return r;
}

/* 's' right-aligned in 'cols' columns (ASCII only). */
static int add_right(struct pm_buf *b, const char *s, size_t cols)
{
	size_t len = strlen(s);
	int r = 0;

	for (size_t i = len; i < cols && !r; i++)
		r = pm_buf_addc(b, ' ');
	return r ? r : pm_buf_adds(b, s);
}

/* ---- the frame: lines, then drawn or printed ----------------------------- */

enum attr { PLAIN, BOLD, MARK };

struct line {
	char *text;		/* UTF-8, printable only */
	enum attr attr;
};

struct frame {
	struct line *v;
	size_t n, cap;
	size_t n_head;		/* lines that never scroll */
	bool foot;		/* the last line goes to the screen's last row */
};

static void frame_free(struct frame *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->v[i].text);
	free(f->v);
	*f = (struct frame){ 0 };
}

/* Takes the text of 'b' (emptied) as the next line. */
static int frame_add(struct frame *f, enum attr attr, struct pm_buf *b)
{
	char *text;

	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		struct line *v;

		if (cap > FRAME_MAX / sizeof(*v))
			return -PM_ETOOBIG;
		v = realloc(f->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		f->v = v;
		f->cap = cap;
	}
	text = b->data ? pm_buf_take(b, NULL) : strdup("");
	if (!text)
		return -ENOMEM;
	f->v[f->n++] = (struct line){ .text = text, .attr = attr };
	return 0;
}

/* 'text' as lines of at most 'width' columns (0: one line), broken at
 * spaces where it can be, the lines after the first indented by 'indent'. */
static int frame_add_wrapped(struct frame *f, enum attr attr, const char *text,
			     size_t width, size_t indent)
{
	struct pm_buf clean, line;
	const char *p;
	bool first = true;
	int r;

	pm_buf_init(&clean, FRAME_MAX);
	pm_buf_init(&line, FRAME_MAX);
	r = add_text(&clean, text, SIZE_MAX, false);
	p = clean.data ? clean.data : "";
	if (!r && (!width || width <= indent + 8)) {
		r = pm_buf_adds(&line, p);
		if (!r)
			r = frame_add(f, attr, &line);
		goto out;
	}
	while (!r) {
		size_t room = width - (first ? 0 : indent), cols = 0;
		const char *q = p, *cut = NULL;

		for (size_t i = 0; !first && i < indent && !r; i++)
			r = pm_buf_addc(&line, ' ');
		/* the first 'room' characters, back to the last space */
		while (*q && cols < room) {
			size_t n = u8_char((const unsigned char *)q);

			if (*q == ' ')
				cut = q;
			q += n ? n : 1;
			cols++;
		}
		if (!*q || *q == ' ' || !cut || cut == p)
			cut = q;
		if (!r)
			r = pm_buf_add(&line, p, (size_t)(cut - p));
		if (!r)
			r = frame_add(f, attr, &line);
		p = cut;
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		first = false;
	}
out:
	pm_buf_free(&clean);
	pm_buf_free(&line);
	return r;
}

/* ---- what is shown ------------------------------------------------------- */

struct row {
	const struct pm_input *in;
	size_t module;		/* into watch.modules */
	bool ok;		/* current and power are of the last refresh */
	int status;		/* else why not: its device's error */
	double current, power;	/* A; W, estimated (pm_value.power) */
	double delta;		/* A, the change that marked it */
	int64_t mark_until_ns;	/* CLOCK_MONOTONIC; 0: never marked */
};

struct module {
	const struct pm_device *dev;
	char *failure;		/* its failure sentence, NULL while read */
};

struct watch {
	const struct pm_config *cfg;
	enum pm_source source;		/* as asked */
	int device_id;			/* -1: every device */
	double interval;		/* seconds between refreshes */
	size_t n_rows;
	struct row *rows;		/* config order */
	size_t n_modules;
	struct module *modules;
	int *row_of_input;		/* [pm_input.id]: index into rows, -1 */
	/* what the last refresh found */
	char source_text[256];		/* "snapshot of powermeterd pid 42" */
	char note[768];			/* why nothing is shown; "" */
	int64_t data_ms;		/* the newest value's time, 0: none */
	/* --source auto: the last powermeterd seen (for the grace after its
	 * snapshot went away) */
	int64_t daemon_seen_ns;
	pid_t daemon_pid;
	double daemon_interval;
	size_t top;			/* first body line shown */
};

static void watch_free(struct watch *w)
{
	for (size_t m = 0; m < w->n_modules; m++)
		free(w->modules[m].failure);
	free(w->modules);
	free(w->rows);
	free(w->row_of_input);
}

static int watch_init(struct watch *w, const struct pm_config *cfg)
{
	size_t n_rows = 0, n_mod = 0;

	for (size_t d = 0; d < cfg->n_devices; d++)
		if (w->device_id < 0 || cfg->devices[d].id == w->device_id) {
			n_mod++;
			n_rows += cfg->devices[d].n_inputs;
		}
	w->cfg = cfg;
	(void)snprintf(w->source_text, sizeof(w->source_text), "not read yet");
	w->rows = calloc(n_rows ? n_rows : 1, sizeof(*w->rows));
	w->modules = calloc(n_mod ? n_mod : 1, sizeof(*w->modules));
	w->row_of_input = malloc((cfg->n_inputs ? cfg->n_inputs : 1) *
				 sizeof(*w->row_of_input));
	if (!w->rows || !w->modules || !w->row_of_input)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_inputs; i++)
		w->row_of_input[i] = -1;
	for (size_t d = 0; d < cfg->n_devices; d++) {
		const struct pm_device *dev = &cfg->devices[d];

		if (w->device_id >= 0 && dev->id != w->device_id)
			continue;
		w->modules[w->n_modules].dev = dev;
		for (size_t k = 0; k < dev->n_inputs; k++) {
			const struct pm_input *in = &dev->inputs[k];

			if (in->id >= 0 && (size_t)in->id < cfg->n_inputs)
				w->row_of_input[in->id] = (int)w->n_rows;
			w->rows[w->n_rows++] = (struct row){
				.in = in, .module = w->n_modules,
				.status = -ENODATA,
			};
		}
		w->n_modules++;
	}
	return 0;
}

static bool changed(double before, double now)
{
	double d = fabs(now - before);

	/* a hair of slack: 0.05 A made of 0.01 A counts is not exact */
	return d + 1e-9 >= fmax(CHANGE_MIN_A, CHANGE_MIN_FRACTION * fabs(before));
}

/* Takes the values of 'r' (NULL: none could be had, w->note says why). */
static int watch_take(struct watch *w, const pm_readings *r, int64_t now_ns)
{
	bool *fresh = calloc(w->n_rows ? w->n_rows : 1, sizeof(*fresh));
	char text[512];

	if (!fresh)
		return -ENOMEM;
	w->data_ms = 0;
	for (size_t i = 0; r && i < pm_readings_count(r); i++) {
		const struct pm_value *v = pm_readings_get(r, i);
		struct row *row;

		if (!v || v->id < 0 || (size_t)v->id >= w->cfg->n_inputs ||
		    w->row_of_input[v->id] < 0)
			continue;
		row = &w->rows[w->row_of_input[v->id]];
		row->status = v->status;
		if (v->status != 0 || !isfinite(v->current))
			continue;
		if (row->ok && changed(row->current, v->current)) {
			row->delta = v->current - row->current;
			row->mark_until_ns = now_ns + MARK_NS;
		}
		row->ok = true;
		row->current = v->current;
		row->power = v->power;
		fresh[row - w->rows] = true;
		if (v->time_ms > w->data_ms)
			w->data_ms = v->time_ms;
	}
	/* never a number older than this refresh */
	for (size_t i = 0; i < w->n_rows; i++)
		if (!fresh[i]) {
			w->rows[i].ok = false;
			w->rows[i].mark_until_ns = 0;
			if (!r)
				w->rows[i].status = -ENODATA;
		}
	free(fresh);
	for (size_t m = 0; m < w->n_modules; m++) {
		struct module *mod = &w->modules[m];
		const char *why = r ? pm_readings_error(r, mod->dev->id) : NULL;
		int status = 0;

		free(mod->failure);
		mod->failure = NULL;
		for (size_t i = 0; r && !why && i < w->n_rows; i++)
			if (w->rows[i].module == m && w->rows[i].status < 0)
				status = w->rows[i].status;
		if (status) {
			(void)snprintf(text, sizeof(text),
				       "device %d on %s address %d: %s", mod->dev->id,
				       mod->dev->port, mod->dev->address,
				       pm_strerror(status));
			why = text;
		}
		if (why && !(mod->failure = strdup(why)))
			return -ENOMEM;
	}
	return 0;
}

/* ---- where the values come from ------------------------------------------ */

/* The signals that end, suspend or redraw the view: held back while the bus
 * is read, so that no transaction is cut short. */
static void watch_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGQUIT);
	sigaddset(set, SIGWINCH);
	sigaddset(set, SIGTSTP);
	sigaddset(set, SIGCONT);
}

static int read_held(const struct watch *w, enum pm_source source,
		     pm_readings **r)
{
	sigset_t set, old;
	int err;

	watch_signals(&set);
	(void)sigprocmask(SIG_BLOCK, &set, &old);
	err = pm_read(w->cfg, w->device_id, source, r);
	(void)sigprocmask(SIG_SETMASK, &old, NULL);
	return err;
}

/* Whether the process that wrote the snapshot still runs: alive, and (when
 * /proc shows it) still a powermeterd, not a pid reused since. */
static bool daemon_alive(pid_t pid)
{
	char comm[32];

	if (pid <= 0 || (kill(pid, 0) < 0 && errno != EPERM))
		return false;
	if (cli_process_name(pid, comm, sizeof(comm)) < 0)
		return true;	/* hidden (hidepid=): kill() has to do */
	return !comm[0] || !strcmp(comm, "powermeterd");
}

static void say_seconds(char *buf, size_t size, double s)
{
	(void)snprintf(buf, size, s < 10 ? "%.1f s" : "%.0f s", s);
}

/* The snapshot's part of a tick (see the top of the file): 0 when it
 * decided (*out set, or NULL with a note), 1 when the bus is to be read
 * (source_text says why), -ENOMEM. */
static int watch_snapshot(struct watch *w, int64_t now_ns, pm_readings **out)
{
	const struct pm_config *cfg = w->cfg;
	const char *snap = cfg->snapshot && *cfg->snapshot ? cfg->snapshot
							    : "(none configured)";
	struct pm_snapshot_info info = { 0 };
	bool have_info = false;
	int64_t now_ms = pm_now_ms();
	double age = 0, grace;
	char dur[32];
	int err, r = 0;

	err = read_held(w, PM_SOURCE_SNAPSHOT, out);
	if (err == -ENOMEM)
		return err;
	if ((err == 0 || err == -PM_ESTALE) &&
	    pm_snapshot_info_load(cfg, &info) == 0) {
		have_info = true;
		age = (double)(now_ms - info.written_at_ms) / 1000.0;
	}
	if (err == 0) {
		(void)snprintf(w->source_text, sizeof(w->source_text),
			       "snapshot of powermeterd pid %ld (%s)",
			       have_info ? (long)info.pid : 0L, snap);
		if (have_info) {
			w->daemon_seen_ns = now_ns;
			w->daemon_pid = info.pid;
			w->daemon_interval = info.interval;
		}
		goto out;
	}
	say_seconds(dur, sizeof(dur), age);
	if (w->source == PM_SOURCE_SNAPSHOT) {
		(void)snprintf(w->source_text, sizeof(w->source_text),
			       "snapshot (%s)", snap);
		if (err == -PM_ENOSNAPSHOT)
			(void)snprintf(w->note, sizeof(w->note),
				       "no snapshot of this configuration at %s: "
				       "is powermeterd running? (systemctl status "
				       "powermeterd)", snap);
		else if (err == -PM_ESTALE)
			(void)snprintf(w->note, sizeof(w->note),
				       "powermeterd's snapshot %s is stale: "
				       "written %s ago by pid %ld, more than %d "
				       "intervals: is powermeterd stopped or "
				       "stuck? (systemctl status powermeterd)",
				       snap, dur, have_info ? (long)info.pid : 0L,
				       PM_SNAPSHOT_STALE_INTERVALS);
		else
			(void)snprintf(w->note, sizeof(w->note),
				       "cannot read powermeterd's snapshot %s: %s",
				       snap, pm_strerror(err));
		goto out;
	}
	/* auto */
	if (err == -PM_ESTALE && have_info && daemon_alive(info.pid)) {
		(void)snprintf(w->source_text, sizeof(w->source_text),
			       "snapshot of powermeterd pid %ld (%s), stale",
			       (long)info.pid, snap);
		(void)snprintf(w->note, sizeof(w->note),
			       "powermeterd (pid %ld) has not replaced its "
			       "snapshot for %s (%d intervals or more): it is "
			       "stopped, stuck or overloaded. Waiting for it; its "
			       "ports stay its own.",
			       (long)info.pid, dur, PM_SNAPSHOT_STALE_INTERVALS);
		w->daemon_seen_ns = now_ns;
		w->daemon_pid = info.pid;
		w->daemon_interval = info.interval;
		goto out;
	}
	grace = PM_SNAPSHOT_STALE_INTERVALS *
		(w->daemon_interval > 0 ? w->daemon_interval : cfg->interval);
	if (err == -PM_ENOSNAPSHOT && w->daemon_seen_ns &&
	    now_ns - w->daemon_seen_ns < (int64_t)(grace * 1e9)) {
		say_seconds(dur, sizeof(dur),
			    grace - (double)(now_ns - w->daemon_seen_ns) / 1e9);
		(void)snprintf(w->source_text, sizeof(w->source_text),
			       "snapshot of powermeterd pid %ld (%s), gone",
			       (long)w->daemon_pid, snap);
		(void)snprintf(w->note, sizeof(w->note),
			       "powermeterd (pid %ld) removed its snapshot: "
			       "stopped or restarting. The bus is read in %s "
			       "unless a new snapshot appears.",
			       (long)w->daemon_pid, dur);
		goto out;
	}
	if (err == -PM_ESTALE)
		(void)snprintf(w->source_text, sizeof(w->source_text),
			       "bus (the snapshot %s is stale and its writer, "
			       "pid %ld, is gone)", snap,
			       have_info ? (long)info.pid : 0L);
	else if (err == -PM_ENOSNAPSHOT)
		(void)snprintf(w->source_text, sizeof(w->source_text),
			       "bus (no powermeterd snapshot of this "
			       "configuration at %s)", snap);
	else
		(void)snprintf(w->source_text, sizeof(w->source_text),
			       "bus (cannot read the snapshot %s: %s)", snap,
			       pm_strerror(err));
	r = 1;
out:
	if (have_info)
		pm_snapshot_info_free(&info);
	return r;
}

/* Reads the values for this tick, setting source_text and, when there are
 * none, note. 0 with *out set or NULL; -ENOMEM. */
static int watch_read(struct watch *w, int64_t now_ns, pm_readings **out)
{
	int err;

	*out = NULL;
	w->note[0] = '\0';
	if (w->source == PM_SOURCE_BUS) {
		(void)snprintf(w->source_text, sizeof(w->source_text),
			       "bus (--source bus)");
	} else {
		err = watch_snapshot(w, now_ns, out);
		if (err <= 0)
			return err;
	}
	err = read_held(w, PM_SOURCE_BUS, out);
	if (err == -ENOMEM)
		return err;
	if (err < 0)
		(void)snprintf(w->note, sizeof(w->note), "reading failed: %s",
			       pm_strerror(err));
	return 0;
}

/* ---- laying a frame out -------------------------------------------------- */

struct layout {
	size_t width;		/* 0: unlimited (plain text to a pipe) */
	size_t w_dev, w_name, w_feed;
	bool phase, feed;	/* their columns are shown */
	size_t bar;		/* columns inside the brackets; 0: no bar */
	double largest;		/* A: what bars without a breaker are against */
	bool unrated;		/* some circuit has no breaker */
};

static void layout_compute(struct layout *L, const struct watch *w,
			   size_t width)
{
	size_t name_want = 4, feed_want = 4, dev_max = 0;
	bool any_phase = false, any_feed = false;

	*L = (struct layout){ .width = width };
	for (size_t i = 0; i < w->n_rows; i++) {
		const struct row *row = &w->rows[i];
		const struct pm_input *in = row->in;
		size_t c = u8_cols(in->name ? in->name : "");

		name_want = c > name_want ? c : name_want;
		if (in->phase)
			any_phase = true;
		if (in->feed_name) {
			any_feed = true;
			c = u8_cols(in->feed_name);
			feed_want = c > feed_want ? c : feed_want;
		}
		if (in->breaker <= 0)
			L->unrated = true;
		if (row->ok && row->current > L->largest)
			L->largest = row->current;
	}
	for (size_t m = 0; m < w->n_modules; m++)
		if ((size_t)w->modules[m].dev->id > dev_max)
			dev_max = (size_t)w->modules[m].dev->id;
	L->w_dev = (size_t)snprintf(NULL, 0, "%zu", dev_max);
	L->w_dev = L->w_dev > 3 ? L->w_dev : 3;	/* "DEV" */
	if (feed_want > W_FEED_MAX)
		feed_want = W_FEED_MAX;
	L->w_feed = feed_want;
	L->phase = any_phase;
	L->feed = any_feed;
	L->w_name = name_want;
	if (!width) {
		L->bar = BAR_PLAIN;
		return;
	}
	/* Narrow: the feed column goes first, then the phase's, before the
	 * name gets shorter than NAME_MIN or the bar goes. */
	for (int attempt = 0; attempt < 3; attempt++) {
		size_t fixed = W_MARK + 1 + L->w_dev + 1 + W_IN + 1 +
			       (L->phase ? W_PHASE + 1 : 0) +
			       (L->feed ? L->w_feed + 1 : 0) + W_CURRENT + 1 +
			       W_POWER + 1 + W_LOAD + 1;
		size_t avail = width > fixed ? width - fixed : 0;

		/* the name gets up to 3/5 of the room, the bar the rest */
		if (avail >= NAME_MIN + 3 + BAR_MIN) {
			size_t share = (avail - 3) * 3 / 5;

			share = share > NAME_MIN ? share : NAME_MIN;
			L->w_name = name_want < share ? name_want : share;
			L->bar = avail - 3 - L->w_name;
			L->bar = L->bar > BAR_MAX ? BAR_MAX : L->bar;
			return;
		}
		if (attempt == 0 && L->feed)
			L->feed = false;
		else if (attempt <= 1 && L->phase)
			L->phase = false;
		else
			break;
	}
	/* too narrow for a bar: what is left goes to the name */
	{
		size_t fixed = W_MARK + 1 + L->w_dev + 1 + W_IN + 1 + W_CURRENT +
			       1 + W_POWER + 1 + W_LOAD + 1;
		size_t avail = width > fixed + 1 ? width - fixed - 1 : 0;

		L->bar = 0;
		L->w_name = avail < NAME_MIN ? NAME_MIN
					     : avail < name_want ? avail : name_want;
	}
}

static int add_heading(struct pm_buf *b, const struct layout *L)
{
	int r;

	r = add_text(b, "", W_MARK + 1, true);
	if (!r)
		r = add_right(b, "DEV", L->w_dev);
	if (!r)
		r = pm_buf_adds(b, " IN ");
	if (!r)
		r = add_text(b, "NAME", L->w_name, true);
	if (!r && L->phase)
		r = add_text(b, " PHASE", W_PHASE + 1, true);
	if (!r && L->feed) {
		r = pm_buf_addc(b, ' ');
		if (!r)
			r = add_text(b, "FEED", L->w_feed, true);
	}
	if (!r)
		r = pm_buf_addc(b, ' ');
	if (!r)
		r = add_right(b, "CURRENT", W_CURRENT);
	if (!r)
		r = pm_buf_addc(b, ' ');
	if (!r)
		r = add_right(b, "EST. POWER", W_POWER);
	if (!r)
		r = pm_buf_adds(b, " LOAD");
	return r;
}

/* One circuit's line into 'b'; *attr how to show it. */
static int add_row(struct pm_buf *b, const struct layout *L,
		   const struct row *row, int device_id, bool marked,
		   enum attr *attr)
{
	const struct pm_input *in = row->in;
	char v[64];
	int r;

	*attr = PLAIN;
	if (marked) {
		(void)snprintf(v, sizeof(v), ">>%+.2f", row->delta);
		*attr = MARK;
	} else {
		v[0] = '\0';
	}
	r = add_text(b, v, W_MARK, true);
	if (!r)
		r = pm_buf_addc(b, ' ');
	(void)snprintf(v, sizeof(v), "%d", device_id);
	if (!r)
		r = add_right(b, v, L->w_dev);
	if (!r)
		r = pm_buf_printf(b, " %c  ", pm_channel_letter(in->channel));
	if (!r)
		r = add_text(b, in->name ? in->name : "", L->w_name, true);
	if (!r && L->phase) {
		r = pm_buf_addc(b, ' ');
		if (!r)
			r = add_text(b, in->phase ? in->phase : "", W_PHASE, true);
	}
	if (!r && L->feed) {
		r = pm_buf_addc(b, ' ');
		if (!r)
			r = add_text(b, in->feed_name ? in->feed_name : "",
				     L->w_feed, true);
	}
	if (!r)
		r = pm_buf_addc(b, ' ');
	if (!row->ok) {
		/* never a number that is not of this refresh */
		if (!r)
			r = add_right(b, "-", W_CURRENT);
		if (!r)
			r = pm_buf_addc(b, ' ');
		if (!r)
			r = add_right(b, "-", W_POWER);
		return r;
	}
	(void)snprintf(v, sizeof(v), "%.2f A", row->current);
	if (!r)
		r = add_right(b, v, W_CURRENT);
	if (!r)
		r = pm_buf_addc(b, ' ');
	if (isfinite(row->power))
		(void)snprintf(v, sizeof(v), "%.0f W", row->power);
	else
		(void)snprintf(v, sizeof(v), "-");
	if (!r)
		r = add_right(b, v, W_POWER);
	if (!r)
		r = pm_buf_addc(b, ' ');
	if (!r && L->bar) {
		/* against the breaker, as the circuit_load alarm judges it
		 * (daemon/watch.c); else against the largest current shown */
		double against = in->breaker > 0 ? in->breaker : L->largest;
		double frac = against > 0 ? row->current / against : 0;
		size_t fill;

		frac = frac < 0 ? 0 : frac > 1 ? 1 : frac;
		fill = (size_t)lround(frac * (double)L->bar);
		r = pm_buf_addc(b, '[');
		for (size_t i = 0; i < L->bar && !r; i++)
			r = pm_buf_addc(b, i < fill ? '#' : '.');
		if (!r)
			r = pm_buf_adds(b, "] ");
	}
	if (r)
		return r;
	if (in->breaker > 0) {
		double load = row->current / in->breaker * 100;

		if (load >= 100 && *attr == PLAIN)
			*attr = BOLD;
		return pm_buf_printf(b, "%.0f %% of %g A", load, in->breaker);
	}
	return pm_buf_adds(b, "no breaker");
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

/* The frame's lines for a screen 'width' columns wide (0: unlimited): the
 * header that stays, then per module its line (or its failure sentence)
 * and its circuits. */
static int build_frame(const struct watch *w, struct frame *f, size_t width,
		       int64_t now_ns, int64_t now_ms)
{
	const struct pm_config *cfg = w->cfg;
	struct layout L;
	struct pm_buf b;
	char when[32], age[32];
	int r;

	layout_compute(&L, w, width);
	pm_buf_init(&b, FRAME_MAX);
	r = pm_buf_adds(&b, "powermeter watch \u00b7 ");
	if (!r)
		r = add_text(&b, cfg->path ? cfg->path : PM_DEFAULT_CONFIG,
			     SIZE_MAX, false);
	if (!r)
		r = pm_buf_printf(&b, " \u00b7 every %g s \u00b7 ", w->interval);
	if (!r && w->data_ms) {
		local_time(when, sizeof(when), w->data_ms);
		say_seconds(age, sizeof(age),
			    (double)(now_ms > w->data_ms ? now_ms - w->data_ms : 0) /
			    1000.0);
		r = pm_buf_printf(&b, "data of %s (%s old)", when, age);
	} else if (!r) {
		r = pm_buf_adds(&b, "no data");
	}
	if (!r)
		r = frame_add(f, BOLD, &b);
	if (!r)
		r = pm_buf_adds(&b, "source: ");
	if (!r)
		r = add_text(&b, w->source_text, SIZE_MAX, false);
	if (!r)
		r = frame_add(f, PLAIN, &b);
	if (!r)
		r = pm_buf_adds(&b, "power: estimate from configured voltage and "
				"power factor (the modules measure current only)");
	if (!r)
		r = frame_add(f, PLAIN, &b);
	if (!r)
		r = pm_buf_adds(&b, "load: % of the breaker");
	if (!r && L.unrated)
		r = pm_buf_adds(&b, "; no breaker: bar against the largest "
				"current shown");
	if (!r && L.unrated && L.largest > 0)
		r = pm_buf_printf(&b, ", %.2f A", L.largest);
	if (!r)
		r = frame_add(f, PLAIN, &b);
	if (!r)
		r = pm_buf_printf(&b, "changes: >>+1.50 marks a current that "
				  "moved by +1.50 A since the last refresh (by "
				  "%g A and %g %% or more), for %lld s",
				  CHANGE_MIN_A,
				  CHANGE_MIN_FRACTION * 100,
				  (long long)(MARK_NS / 1000000000));
	if (!r)
		r = frame_add(f, PLAIN, &b);
	if (!r && w->note[0])
		r = frame_add_wrapped(f, BOLD, w->note, width, 2);
	if (!r)
		r = add_heading(&b, &L);
	if (!r)
		r = frame_add(f, BOLD, &b);
	f->n_head = f->n;
	for (size_t m = 0; m < w->n_modules && !r; m++) {
		const struct module *mod = &w->modules[m];

		if (mod->failure) {
			r = frame_add_wrapped(f, BOLD, mod->failure, width, 2);
		} else {
			r = pm_buf_printf(&b, "device %d on ", mod->dev->id);
			if (!r)
				r = add_text(&b, mod->dev->port, SIZE_MAX, false);
			if (!r)
				r = pm_buf_printf(&b, " address %d",
						  mod->dev->address);
			if (!r)
				r = frame_add(f, PLAIN, &b);
		}
		for (size_t i = 0; i < w->n_rows && !r; i++) {
			const struct row *row = &w->rows[i];
			enum attr attr;

			if (row->module != m)
				continue;
			r = add_row(&b, &L, row, mod->dev->id,
				    row->ok && now_ns < row->mark_until_ns, &attr);
			if (!r)
				r = frame_add(f, attr, &b);
		}
	}
	pm_buf_free(&b);
	return r;
}

/* ---- the terminal -------------------------------------------------------- */

struct term {
	bool live;		/* the alternate screen is ours */
	bool keys;		/* stdin is a terminal: single keys are read */
	bool saved;		/* 'orig' is to be restored */
	struct termios orig;
	size_t rows, cols;
};

static int write_all(const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(STDOUT_FILENO, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = STDOUT_FILENO, .events = POLLOUT };

			(void)poll(&pfd, 1, 1000);
			continue;
		}
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void term_size(struct term *t)
{
	struct winsize ws;

	t->rows = 24;
	t->cols = 80;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row &&
	    ws.ws_col) {
		t->rows = ws.ws_row < ROWS_MAX ? ws.ws_row : ROWS_MAX;
		t->cols = ws.ws_col < COLS_MAX ? ws.ws_col : COLS_MAX;
	}
}

/* Single keys without echo (signals stay: Ctrl-C is SIGINT), the
 * alternate screen, no cursor. With 'again' the settings saved the first
 * time are kept (after SIGCONT the shell may have changed the terminal). */
static int term_enter(struct term *t, bool again)
{
	static const char enter[] = CSI "?1049h" CSI "?25l" CSI "H" CSI "2J";
	struct termios raw;

	if (t->keys) {
		if (!again || !t->saved) {
			if (tcgetattr(STDIN_FILENO, &t->orig) < 0)
				return -errno;
			t->saved = true;
		}
		raw = t->orig;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0)
			return -errno;
	}
	t->live = true;
	term_size(t);
	return write_all(enter, sizeof(enter) - 1);
}

/* Leaves the terminal exactly as it was found. */
static void term_leave(struct term *t)
{
	static const char leave[] = ATTR_OFF CSI "?25h" CSI "?1049l";

	if (t->live)
		(void)write_all(leave, sizeof(leave) - 1);
	t->live = false;
	if (t->saved)
		(void)tcsetattr(STDIN_FILENO, TCSADRAIN, &t->orig);
}

/* One line at screen row 'y' (1-based), cut to 'width' columns; a marked
 * line's reverse video spans the whole width. */
static int emit_line(struct pm_buf *out, size_t y, const struct line *l,
		     size_t width)
{
	int r = pm_buf_printf(out, CSI "%zu;1H" CSI "2K", y);

	if (!r && l->attr != PLAIN)
		r = pm_buf_adds(out, l->attr == MARK ? ATTR_MARK : ATTR_BOLD);
	if (!r)
		r = add_text(out, l->text, width, l->attr == MARK);
	if (!r && l->attr != PLAIN)
		r = pm_buf_adds(out, ATTR_OFF);
	return r;
}

/* Draws the frame: the header, the body from w->top, a footer with the
 * keys (and where the view is when it scrolls) on the last row. Sets
 * *page to the body's height and *expiry to when the next mark goes out
 * (0: none). */
static int draw(struct watch *w, const struct term *t, int64_t now_ns,
		size_t *page, int64_t *expiry)
{
	struct frame f = { 0 };
	struct pm_buf out, foot;
	struct line fl;
	size_t n_body, body_h, head, y = 1;
	int r;

	*expiry = 0;
	for (size_t i = 0; i < w->n_rows; i++) {
		int64_t until = w->rows[i].mark_until_ns;

		if (until > now_ns && (!*expiry || until < *expiry))
			*expiry = until;
	}
	pm_buf_init(&out, FRAME_MAX);
	pm_buf_init(&foot, FRAME_MAX);
	r = build_frame(w, &f, t->cols, now_ns, pm_now_ms());
	if (r)
		goto out;
	n_body = f.n - f.n_head;
	head = f.n_head < t->rows - 1 ? f.n_head : t->rows - 1;
	body_h = t->rows > head + 1 ? t->rows - head - 1 : 0;
	*page = body_h ? body_h : 1;
	if (n_body <= body_h)
		w->top = 0;
	else if (w->top > n_body - body_h)
		w->top = n_body - body_h;
	r = pm_buf_adds(&out, CSI "H");
	for (size_t i = 0; i < head && !r; i++)
		r = emit_line(&out, y++, &f.v[i], t->cols);
	for (size_t i = 0; i < body_h && w->top + i < n_body && !r; i++)
		r = emit_line(&out, y++, &f.v[f.n_head + w->top + i], t->cols);
	if (!r)
		r = pm_buf_printf(&out, CSI "%zu;1H" CSI "J", y);
	/* where the view is first: the keys are cut off when narrow */
	if (!r && n_body > body_h)
		r = pm_buf_printf(&foot, "lines %zu-%zu of %zu%s \u00b7 Up/Down "
				  "PgUp/PgDn Home/End: scroll \u00b7 ",
				  w->top + 1, w->top + body_h, n_body,
				  w->top + body_h < n_body ? ", more below" : "");
	if (!r)
		r = pm_buf_adds(&foot, t->keys ? "q: quit" : "Ctrl-C: quit");
	fl = (struct line){ .text = foot.data ? foot.data : "", .attr = PLAIN };
	/* the last column of the last row would scroll some terminals */
	if (!r && t->rows > head)
		r = emit_line(&out, t->rows, &fl, t->cols - 1);
	if (!r)
		r = write_all(out.data, out.len);
out:
	frame_free(&f);
	pm_buf_free(&foot);
	pm_buf_free(&out);
	return r;
}

/* ---- keys and signals ---------------------------------------------------- */

enum key { KEY_NONE, KEY_QUIT, KEY_UP, KEY_DOWN, KEY_PGUP, KEY_PGDN,
	   KEY_HOME, KEY_END, KEY_REDRAW };

/* The key at s[0..n): how many bytes it took. VT100/xterm sequences:
 * ESC [ A/B/H/F, ESC O A/B/H/F, ESC [ 1/7 ~ (Home), 4/8 ~ (End), 5 ~, 6 ~
 * (PgUp, PgDn), with modifiers ignored; anything else is no key. */
static size_t key_parse(const unsigned char *s, size_t n, enum key *k)
{
	unsigned num = 0;
	size_t i = 2;

	*k = KEY_NONE;
	if (s[0] != 0x1b) {
		switch (s[0]) {
		case 'q': case 'Q': *k = KEY_QUIT; break;
		case 'k': *k = KEY_UP; break;
		case 'j': *k = KEY_DOWN; break;
		case ' ': *k = KEY_PGDN; break;
		case 'b': *k = KEY_PGUP; break;
		case 'g': *k = KEY_HOME; break;
		case 'G': *k = KEY_END; break;
		case 0x0c: *k = KEY_REDRAW; break;	/* Ctrl-L */
		default: break;
		}
		return 1;
	}
	if (n < 3 || (s[1] != '[' && s[1] != 'O'))
		return 1;		/* a lone Esc */
	for (; i < n && s[i] >= 0x30 && s[i] <= 0x3f; i++)
		if (s[i] >= '0' && s[i] <= '9' && num < 1000)
			num = num * 10 + (unsigned)(s[i] - '0');
		else if (s[i] == ';')
			num += 1000;	/* a modifier follows: num is done */
	if (i == n)
		return n;
	num %= 1000;
	switch (s[i]) {
	case 'A': *k = KEY_UP; break;
	case 'B': *k = KEY_DOWN; break;
	case 'H': *k = KEY_HOME; break;
	case 'F': *k = KEY_END; break;
	case '~':
		*k = num == 1 || num == 7 ? KEY_HOME
		   : num == 4 || num == 8 ? KEY_END
		   : num == 5 ? KEY_PGUP
		   : num == 6 ? KEY_PGDN : KEY_NONE;
		break;
	default:
		break;
	}
	return i + 1;
}

static void scroll(struct watch *w, enum key k, size_t page)
{
	switch (k) {
	case KEY_UP:
		w->top = w->top ? w->top - 1 : 0;
		break;
	case KEY_DOWN:
		w->top++;		/* draw() keeps it in range */
		break;
	case KEY_PGUP:
		w->top = w->top > page ? w->top - page : 0;
		break;
	case KEY_PGDN:
		w->top += page;
		break;
	case KEY_HOME:
		w->top = 0;
		break;
	case KEY_END:
		w->top = SIZE_MAX / 2;
		break;
	default:
		break;
	}
}

static volatile sig_atomic_t got_quit, got_winch, got_tstp, got_cont;
/* The self-pipe the handlers write to, so that poll() wakes up. */
static int wake_rd = -1, wake_fd = -1;

static void on_signal(int sig)
{
	int saved = errno;
	ssize_t n;

	if (sig == SIGWINCH)
		got_winch = 1;
	else if (sig == SIGTSTP)
		got_tstp = 1;
	else if (sig == SIGCONT)
		got_cont = 1;
	else
		got_quit = sig;
	n = write(wake_fd, "", 1);
	(void)n;
	errno = saved;
}

static void handle_signals(bool on)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH,
				    SIGTSTP, SIGCONT };
	struct sigaction sa = { .sa_flags = SA_RESTART };

	sa.sa_handler = on ? on_signal : SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		(void)sigaction(sigs[i], &sa, NULL);
}

/* Ctrl-Z: the terminal as it was while stopped, ours again after. */
static int suspend(struct term *t)
{
	struct sigaction sa = { .sa_handler = SIG_DFL };

	term_leave(t);
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGTSTP, &sa, NULL);
	(void)raise(SIGTSTP);
	handle_signals(true);
	got_cont = 0;
	return term_enter(t, false);
}

/* ---- the two ways to run ------------------------------------------------- */

static int refresh(struct watch *w, int64_t now_ns)
{
	pm_readings *r = NULL;
	int err = watch_read(w, now_ns, &r);

	if (!err)
		err = watch_take(w, r, now_ns);
	pm_readings_free(r);
	return err;
}

/* The live view until q, Ctrl-C or a signal: the exit status. */
static int watch_live(struct watch *w, struct term *t)
{
	int64_t next_ns = pm_mono_ns(), expiry = 0;
	const int64_t tick_ns = (int64_t)(w->interval * 1e9);
	size_t page = 1;
	bool dirty = true;
	int err = 0, status = 0;

	for (;;) {
		struct pollfd pfd[2];
		unsigned char in[64];
		int64_t now = pm_mono_ns(), wake;
		ssize_t n;

		if (got_quit) {
			/* Ctrl-C leaves as q does; SIGTERM, SIGHUP, SIGQUIT
			 * say that they ended it */
			status = got_quit == SIGINT ? 0 : 128 + got_quit;
			break;
		}
		if (got_tstp) {
			got_tstp = 0;
			err = suspend(t);
			dirty = true;
		} else if (got_cont) {
			got_cont = 0;
			err = term_enter(t, true);
			dirty = true;
		}
		if (err)
			break;
		if (got_winch) {
			got_winch = 0;
			term_size(t);
			dirty = true;
		}
		/* a refresh is drawn before the next one, and signals that came
		 * during the read are seen before it is drawn */
		if (!dirty && now >= next_ns) {
			err = refresh(w, now);
			if (err)
				break;
			next_ns += tick_ns;
			now = pm_mono_ns();
			if (next_ns < now)	/* a read longer than a tick */
				next_ns = now;
			dirty = true;
			continue;
		}
		if (expiry && now >= expiry)
			dirty = true;
		if (dirty) {
			err = draw(w, t, now, &page, &expiry);
			if (err)
				break;
			dirty = false;
		}
		wake = expiry && expiry < next_ns ? expiry : next_ns;
		pfd[0] = (struct pollfd){ .fd = wake_rd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = t->keys ? STDIN_FILENO : -1,
					  .events = POLLIN };
		if (poll(pfd, 2, wake > now ? (int)((wake - now + 999999) / 1000000)
					    : 0) < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		while (pfd[0].revents && read(wake_rd, in, sizeof(in)) > 0)
			;
		if (!(pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = read(STDIN_FILENO, in, sizeof(in));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)		/* the terminal is gone */
			break;
		for (size_t i = 0; i < (size_t)n;) {
			enum key k;

			i += key_parse(in + i, (size_t)n - i, &k);
			if (k == KEY_QUIT)
				goto out;
			if (k != KEY_NONE)
				dirty = true;
			scroll(w, k, page);
		}
	}
out:
	term_leave(t);
	if (err) {
		log_err("watch: %s", pm_strerror(err));
		return EXIT_TERM_FAILED;
	}
	return status;
}

/* One frame as plain text: 'width' columns (0: lines as long as they
 * are). 0 when every module was read, 1 when not (as `powermeter read`). */
static int watch_once(struct watch *w, size_t width)
{
	struct frame f = { 0 };
	int64_t now = pm_mono_ns();
	bool failed;
	int err;

	err = refresh(w, now);
	if (!err)
		err = build_frame(w, &f, width, now, pm_now_ms());
	for (size_t i = 0; !err && i < f.n; i++)
		if (fputs(f.v[i].text, stdout) == EOF || fputc('\n', stdout) == EOF)
			err = -errno;
	if (!err && fflush(stdout) != 0)
		err = -errno;
	frame_free(&f);
	if (err) {
		log_err("watch: %s", pm_strerror(err));
		return 1;
	}
	failed = w->note[0] != '\0';
	for (size_t m = 0; m < w->n_modules; m++)
		failed = failed || w->modules[m].failure;
	return failed ? 1 : 0;
}

static int parse_source(const char *s, enum pm_source *source)
{
	if (!strcmp(s, "auto"))
		*source = PM_SOURCE_AUTO;
	else if (!strcmp(s, "snapshot"))
		*source = PM_SOURCE_SNAPSHOT;
	else if (!strcmp(s, "bus"))
		*source = PM_SOURCE_BUS;
	else
		return -EINVAL;
	return 0;
}

static int parse_interval(const char *s, double *interval)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= INTERVAL_MIN) || v > INTERVAL_MAX)
		return -EINVAL;
	*interval = v;
	return 0;
}

/* The live view's setup and teardown around watch_live(). */
static int watch_run_live(struct watch *w)
{
	struct term t = { .keys = isatty(STDIN_FILENO) };
	int pipefd[2], status, err;

	if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_err("watch: %s", strerror(errno));
		return EXIT_TERM_FAILED;
	}
	wake_rd = pipefd[0];
	wake_fd = pipefd[1];
	handle_signals(true);
	err = term_enter(&t, false);
	if (err) {
		term_leave(&t);
		log_err("watch: setting up the terminal: %s", pm_strerror(err));
		status = EXIT_TERM_FAILED;
	} else {
		status = watch_live(w, &t);
	}
	handle_signals(false);
	wake_rd = wake_fd = -1;
	(void)close(pipefd[0]);
	(void)close(pipefd[1]);
	return status;
}

int cmd_watch(int argc, char **argv)
{
	enum { OPT_SOURCE = 0x200, OPT_ONCE };
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "source", required_argument, NULL, OPT_SOURCE },
		{ "interval", required_argument, NULL, 'i' },
		{ "device", required_argument, NULL, 'd' },
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct watch w = { .source = PM_SOURCE_AUTO, .device_id = -1 };
	struct pm_config *cfg = NULL;
	const char *path = NULL;
	bool once = false, tty;
	double interval = 0;
	int c, status;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:i:d:h", options, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case OPT_SOURCE:
			if (parse_source(optarg, &w.source) < 0) {
				log_err("unknown source '%s' (auto, snapshot, bus)",
					optarg);
				return 2;
			}
			break;
		case 'i':
			if (parse_interval(optarg, &interval) < 0) {
				log_err("invalid interval '%s' (%g to %g seconds)",
					optarg, INTERVAL_MIN, INTERVAL_MAX);
				return 2;
			}
			break;
		case 'd':
			if (cli_device_option(optarg, &w.device_id) < 0)
				return 2;
			break;
		case OPT_ONCE:
			once = true;
			break;
		case 'h':
			watch_usage(stdout);
			return 0;
		default:
			watch_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		watch_usage(stderr);
		return 2;
	}
	tty = isatty(STDOUT_FILENO);
	if (!tty && !once) {
		log_err("watch: standard output is not a terminal; --once prints "
			"one frame as plain text");
		return 2;
	}
	status = cli_load_config(path, &cfg);
	if (status)
		return status;
	if (w.device_id >= 0 && !pm_config_device(cfg, w.device_id)) {
		log_err("%s: no device with id %d", cfg->path, w.device_id);
		status = 2;
		goto out;
	}
	w.interval = interval > 0 ? interval
		   : cfg->interval > 0 ? cfg->interval : PM_DEFAULT_INTERVAL;
	if (watch_init(&w, cfg) < 0) {
		log_err("watch: %s", pm_strerror(-ENOMEM));
		status = 1;
		goto out;
	}
	if (once) {
		struct term t = { 0 };

		if (tty)
			term_size(&t);
		status = watch_once(&w, t.cols);
	} else {
		status = watch_run_live(&w);
	}
out:
	watch_free(&w);
	pm_config_free(cfg);
	return status;
}
