/* cmd_scan.c — `powermeter scan`: finds the modules on a bus (or on every
 * serial port) by probing addresses x baud rates x framings, tells an HDHK
 * from any other Modbus device by its info registers 0..7, and prints a
 * table or a config fragment the daemon loads. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <linux/serial.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sysexits.h>
#include <unistd.h>

#include <powermeter/powermeter.h>

#include "bus/bus.h"
#include "cli.h"
#include "device/hdhk.h"
#include "device/line.h"
#include "util/buf.h"
#include "util/jsonstr.h"
#include "util/log.h"
#include "util/timeutil.h"

/* Datasheet register map: registers 0..7 are version, ranges, line
 * settings (3), factory date, frequency coefficients; register 3 is
 * framing << 12 | baud code << 8 | address. */
#define INFO_FIRST		0
#define INFO_COUNT		8
#define REG_VERSION		0
#define REG_RANGE_AH		1
#define REG_RANGE_IP		2
#define REG_LINE		3
#define REG_DATE		4

/* Modbus RTU frame sizes: a read request is 8 bytes; an answer of n
 * registers 5 + 2n (address, function, byte count, data, CRC). */
#define RTU_READ_REQUEST	8
#define RTU_READ_ANSWER(n)	(5 + 2 * (n))
/* Modbus over serial line v1.02, 2.5.1.1: 3.5 characters between frames,
 * a fixed 1.75 ms above 19200 baud. */
#define RTU_SILENCE_CHARS	3.5
#define RTU_SILENCE_FAST_S	0.00175
#define RTU_FAST_BAUD		19200

/* What a probe waits beyond the frames' wire time and the module's
 * 3.5-character turnaround: USB converters hand bytes over in bursts
 * (FTDI's latency timer is 16 ms). Over a gateway the network adds more. */
#define PROBE_MARGIN_S		0.025
#define GATEWAY_MARGIN_S	0.1
/* A probe that met a bad answer (CRC, cut short, another unit) is sent
 * again this many times: something is there. */
#define PROBE_AGAIN		2
/* An address whose answer came late is probed again after the pass with
 * this many times the timeout (at least twice what the line needs). */
#define LATE_FACTOR		4

/* Connecting to a gateway again (see probe_on): tries, first pause. */
#define RECONNECT_TRIES		4
#define RECONNECT_PAUSE_NS	25000000LL

#define PORTS_MAX		256
#define FOUND_MAX		4096
#define LINES_MAX		32	/* 8 baud rates x 4 framings */
#define NOTE_MAX		112
#define CONFIG_TEXT_MAX		(4u * 1024 * 1024)
#define TABLE_TEXT_MAX		(4u * 1024 * 1024)
#define PROGRESS_EVERY_NS	100000000LL
#define NS_PER_SEC		1000000000LL

/* "all" baud rates: the factory 9600 first, then the common ones. */
static const int all_bauds[] = {
	9600, 19200, 115200, 38400, 57600, 4800, 2400, 1200,
};

static volatile sig_atomic_t scan_stop;

static void on_signal(int sig)
{
	(void)sig;
	scan_stop = 1;
}

enum found_kind {
	FOUND_HDHK,
	FOUND_OTHER,	/* answers, but not as an HDHK */
	FOUND_GARBLED,	/* something answers, nothing readable */
};

struct found {
	enum found_kind kind;
	size_t port;		/* index into scan.ports */
	int address;
	struct pm_line line;	/* HDHK: register 3's settings; else probed */
	uint16_t regs[INFO_COUNT];	/* HDHK: registers 0..7 */
	char note[NOTE_MAX];
};

struct scan_opts {
	const char *port;
	struct pm_line lines[LINES_MAX];
	size_t n_lines;
	bool lines_given;	/* --baud or --framing */
	bool want[PM_ADDRESS_MAX + 1];
	unsigned n_addresses;
	const char *range;	/* as given, for messages */
	double timeout;		/* 0: from the line */
	bool config;
};

struct progress {
	bool tty;
	bool drawn;		/* a progress line is on the screen */
	unsigned long done, total;
	int64_t start_ns, drawn_ns;
	char what[160];		/* port and line now probed */
};

struct scan {
	const struct scan_opts *o;
	char *ports[PORTS_MAX];
	size_t n_ports;
	struct found *found;
	size_t n_found;
	bool late[PM_ADDRESS_MAX + 1];	/* answered after its probe's timeout */
	struct progress pg;
	unsigned long probes;
	bool full;		/* FOUND_MAX reached */
};

static void scan_usage(FILE *f)
{
	fprintf(f,
		"usage: powermeter scan [--port PORT] [--baud LIST|all]\n"
		"                       [--framing LIST|all] [--address RANGE]\n"
		"                       [--timeout S] [--config]\n"
		"  -p, --port PORT      scan this port (default: every serial port found)\n"
		"  -b, --baud LIST      baud rates, e.g. 9600,19200, or all (default 9600)\n"
		"      --framing LIST   framings, e.g. N81,E81, or all (default N81)\n"
		"  -a, --address RANGE  addresses, e.g. 1-10,20 (default %d-%d)\n"
		"  -t, --timeout S      seconds per probe (default: from the baud rate)\n"
		"      --config         print a config fragment instead of the table\n"
		"Exit status: 0 found something, 1 found nothing, 64 usage,\n"
		"69 port unavailable (busy, missing), 74 port failed, 130 interrupted.\n",
		PM_ADDRESS_MIN, PM_ADDRESS_MAX);
}

/* ---- arguments ---------------------------------------------------------- */

static int parse_uint(const char *s, const char **end, long *v)
{
	char *e;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*v = strtol(s, &e, 10);
	if (errno)
		return -EINVAL;
	*end = e;
	return 0;
}

/* "1-10,20" into o->want. 0 or -EINVAL. */
static int parse_range(const char *s, struct scan_opts *o)
{
	bool want[PM_ADDRESS_MAX + 1] = { false };
	const char *p = s;
	unsigned n = 0;

	for (;;) {
		long lo, hi;

		if (parse_uint(p, &p, &lo) < 0)
			return -EINVAL;
		hi = lo;
		if (*p == '-' && parse_uint(p + 1, &p, &hi) < 0)
			return -EINVAL;
		if (lo < PM_ADDRESS_MIN || hi > PM_ADDRESS_MAX || lo > hi)
			return -EINVAL;
		for (long a = lo; a <= hi; a++) {
			n += !want[a];
			want[a] = true;
		}
		if (*p == '\0')
			break;
		if (*p++ != ',')
			return -EINVAL;
	}
	memcpy(o->want, want, sizeof(want));
	o->n_addresses = n;
	o->range = s;
	return 0;
}

/* A comma-separated list of baud rates, or "all", into bauds (in order,
 * without repeats). The count, or -EINVAL. */
static int parse_bauds(const char *s, int *bauds)
{
	size_t n = 0;
	const char *p = s;

	if (!strcmp(s, "all")) {
		memcpy(bauds, all_bauds, sizeof(all_bauds));
		return (int)(sizeof(all_bauds) / sizeof(all_bauds[0]));
	}
	for (;;) {
		bool seen = false;
		long v;

		if (parse_uint(p, &p, &v) < 0 || !pm_line_baud_ok(v))
			return -EINVAL;
		for (size_t i = 0; i < n; i++)
			seen |= bauds[i] == v;
		if (!seen)
			bauds[n++] = (int)v;
		if (*p == '\0')
			return (int)n;
		if (*p++ != ',' || n == pm_line_n_bauds)
			return -EINVAL;
	}
}

/* A comma-separated list of framings, or "all", into framings[] (lines
 * with only parity, data and stop bits set). The count, or -EINVAL. */
static int parse_framings(const char *s, struct pm_line *framings)
{
	char item[8];
	size_t n = 0;

	if (!strcmp(s, "all")) {
		for (size_t i = 0; i < pm_line_n_framings; i++)
			if (pm_line_parse_framing(pm_line_framings[i],
						  &framings[i]) < 0)
				return -EINVAL;
		return (int)pm_line_n_framings;
	}
	while (*s) {
		size_t len = strcspn(s, ",");
		struct pm_line l = PM_LINE_DEFAULT;
		bool seen = false;

		if (len == 0 || len >= sizeof(item))
			return -EINVAL;
		memcpy(item, s, len);
		item[len] = '\0';
		if (pm_line_parse_framing(item, &l) < 0)
			return -EINVAL;
		for (size_t i = 0; i < n; i++)
			seen |= !strcmp(pm_line_framing(&framings[i]),
					pm_line_framing(&l));
		if (!seen) {
			if (n == pm_line_n_framings)
				return -EINVAL;
			framings[n++] = l;
		}
		s += len;
		if (*s == ',' && *++s == '\0')
			return -EINVAL;
	}
	return n ? (int)n : -EINVAL;
}

/* ---- ports -------------------------------------------------------------- */

/* Is 'port' a serial line of ours (a tty path)? Gateways ("tcp://...")
 * carry the frames to a line whose settings are the gateway's own. */
static bool port_is_serial(const char *port)
{
	return !strstr(port, "://");
}

static int add_port(struct scan *s, const char *port)
{
	for (size_t i = 0; i < s->n_ports; i++)
		if (pm_bus_same(s->ports[i], port))
			return 0;	/* a by-id link of a port we have */
	if (s->n_ports == PORTS_MAX)
		return -PM_ETOOBIG;
	s->ports[s->n_ports] = strdup(port);
	if (!s->ports[s->n_ports])
		return -ENOMEM;
	s->n_ports++;
	return 0;
}

/* Does the UART behind ttyS* exist? The kernel creates the nodes whether
 * or not there is one; TIOCGSERIAL tells. 1, 0, or -errno when it cannot
 * be told (permission). A port open elsewhere in exclusive mode exists. */
static int uart_exists(const char *path)
{
	struct serial_struct ss;
	int fd, r;

	fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == EBUSY ? 1 : -errno;
	memset(&ss, 0, sizeof(ss));
	r = ioctl(fd, TIOCGSERIAL, &ss);
	close(fd);
	return r == 0 && ss.type != PORT_UNKNOWN;
}

/* Every serial port that may have a converter: the stable by-id names
 * first, then USB and ACM ttys not behind one, then the UARTs that exist.
 * 0 or -errno; *unchecked counts ttyS* that could not be opened. */
static int discover_ports(struct scan *s, unsigned *unchecked)
{
	static const char *const patterns[] = {
		"/dev/serial/by-id/*", "/dev/ttyUSB*", "/dev/ttyACM*", "/dev/ttyS*",
	};
	int r = 0;

	*unchecked = 0;
	for (size_t p = 0; r == 0 && p < sizeof(patterns) / sizeof(patterns[0]); p++) {
		bool uart = !strcmp(patterns[p], "/dev/ttyS*");
		glob_t g;

		if (glob(patterns[p], 0, NULL, &g) != 0)
			continue;	/* none, or unreadable: nothing there */
		for (size_t i = 0; r == 0 && i < g.gl_pathc; i++) {
			if (uart) {
				int u = uart_exists(g.gl_pathv[i]);

				*unchecked += u < 0;
				if (u <= 0)
					continue;
			}
			r = add_port(s, g.gl_pathv[i]);
		}
		globfree(&g);
	}
	return r;
}

/* Says why 'port' could not be opened; returns the exit status. */
static int port_fail(const char *port, int err,
		     const struct pm_bus_fault *fault)
{
	char name[32];

	if (err != -EBUSY && !port_is_serial(port)) {
		log_err("%s: %s \u2014 is the gateway powered, on this network, "
			"and its TCP server on that port?", port, pm_strerror(err));
		return EX_UNAVAILABLE;
	}
	switch (err) {
	case -EBUSY:
		if (fault->holder <= 0) {
			log_err("%s is busy (held by another process): scanning "
				"would mix its frames with that process's", port);
			return EX_UNAVAILABLE;
		}
		cli_process_name(fault->holder, name, sizeof(name));
		if (!strcmp(name, "powermeterd"))
			log_err("%s is busy: powermeterd (pid %ld) owns it \u2014 "
				"stop the daemon first (systemctl stop "
				"powermeterd)", port, (long)fault->holder);
		else
			log_err("%s is busy (held by pid %ld%s%s): scanning "
				"would mix its frames with that process's", port,
				(long)fault->holder, name[0] ? ", " : "", name);
		return EX_UNAVAILABLE;
	case -ENOENT:
		log_err("%s does not exist \u2014 is the USB\u2013RS-485 converter "
			"plugged in?", port);
		return EX_UNAVAILABLE;
	case -EACCES:
	case -EPERM:
		log_err("permission denied on %s \u2014 add the user to group "
			"dialout", port);
		return EX_UNAVAILABLE;
	case -ENOTTY:
		log_err("%s is not a serial port", port);
		return EX_UNAVAILABLE;
	case -EINVAL:
		log_err("%s: not a port powermeter can open", port);
		return EX_UNAVAILABLE;
	default:
		log_err("%s: %s \u2014 was the converter unplugged?", port,
			pm_strerror(err));
		return EX_IOERR;
	}
}

/* ---- timing and progress ------------------------------------------------ */

static double char_seconds(const struct pm_line *line)
{
	int bits = 1 + line->data_bits + (line->parity != 'N') + line->stop_bits;

	return (double)bits / line->baud;
}

/* The wait for an answer of 'registers' registers: request and answer on
 * the wire, the module's turnaround, and a margin. */
static double answer_timeout(const struct pm_line *line, bool serial,
			     unsigned registers)
{
	double chars = RTU_READ_REQUEST + RTU_READ_ANSWER(registers) +
		       RTU_SILENCE_CHARS;

	return chars * char_seconds(line) +
	       (serial ? PROBE_MARGIN_S : GATEWAY_MARGIN_S);
}

/* The silence the bus keeps after each answer or timeout. */
static double silence_seconds(const struct pm_line *line)
{
	if (line->baud > RTU_FAST_BAUD)
		return RTU_SILENCE_FAST_S;
	return RTU_SILENCE_CHARS * char_seconds(line);
}

static void progress_clear(struct progress *pg)
{
	if (pg->drawn)
		fputs("\r\033[K", stderr);
	pg->drawn = false;
}

static void progress_draw(struct progress *pg, size_t found, bool force)
{
	int64_t now = pm_mono_ns();
	double elapsed = (double)(now - pg->start_ns) / NS_PER_SEC;
	double rate = elapsed > 0 ? (double)pg->done / elapsed : 0;
	char left[32] = "?";

	if (!pg->tty || (!force && now - pg->drawn_ns < PROGRESS_EVERY_NS))
		return;
	if (rate > 0) {
		double secs = (double)(pg->total - pg->done) / rate;

		if (secs >= 120)
			snprintf(left, sizeof(left), "%.0f min", secs / 60);
		else
			snprintf(left, sizeof(left), "%.0f s", secs);
	}
	fprintf(stderr, "\r\033[K%s: %lu/%lu probes, %.1f/s, %s left, %zu found",
		pg->what, pg->done, pg->total, rate, left, found);
	pg->drawn = true;
	pg->drawn_ns = now;
}

/* ---- probing ------------------------------------------------------------ */

static const char *line_text(const struct pm_line *line, char *buf, size_t size)
{
	const char *framing = pm_line_framing(line);

	snprintf(buf, size, "%d %s", line->baud, framing ? framing : "?");
	return buf;
}

static bool same_line(const struct pm_line *a, const struct pm_line *b)
{
	return a->baud == b->baud && a->parity == b->parity &&
	       a->data_bits == b->data_bits && a->stop_bits == b->stop_bits;
}

/* Register 3 into the line settings it names (the address is the low
 * byte). 0, or -EINVAL for codes the datasheet does not define. */
static int line_from_register(uint16_t reg, struct pm_line *line)
{
	unsigned framing = reg >> 12;
	int baud = pm_hdhk_baud_from_code((reg >> 8) & 0x0f);
	struct pm_line l = PM_LINE_DEFAULT;

	if (baud < 0 || framing >= pm_line_n_framings ||
	    pm_line_parse_framing(pm_line_framings[framing], &l) < 0)
		return -EINVAL;
	l.baud = baud;
	*line = l;
	return 0;
}

/* Says what was found, in plain words, above the progress line. */
static void report_found(struct scan *s, const struct found *f)
{
	char lt[32];

	progress_clear(&s->pg);
	line_text(&f->line, lt, sizeof(lt));
	switch (f->kind) {
	case FOUND_HDHK:
		log_info("found %s address %d: HDHK %u.%u.%u at %s%s%s",
			 s->ports[f->port], f->address, f->regs[REG_VERSION] / 100,
			 f->regs[REG_VERSION] / 10 % 10, f->regs[REG_VERSION] % 10,
			 lt, f->note[0] ? ", " : "", f->note);
		break;
	case FOUND_OTHER:
		log_info("found %s address %d at %s: a Modbus device that is not "
			 "an HDHK (%s)", s->ports[f->port], f->address, lt, f->note);
		break;
	case FOUND_GARBLED:
		log_info("%s address %d at %s: something answers, garbled (%s)",
			 s->ports[f->port], f->address, lt, f->note);
		break;
	}
	progress_draw(&s->pg, s->n_found, true);
}

/* Keeps 'f' unless the same thing was found before (an HDHK answering at
 * another framing too, a device answering at several). */
static int record(struct scan *s, const struct found *f)
{
	for (size_t i = 0; i < s->n_found; i++) {
		const struct found *g = &s->found[i];

		if (g->port != f->port || g->address != f->address ||
		    g->kind != f->kind)
			continue;
		if (f->kind != FOUND_HDHK || g->regs[REG_LINE] == f->regs[REG_LINE])
			return 0;
	}
	if (s->n_found == FOUND_MAX) {
		s->full = true;
		return -PM_ETOOBIG;
	}
	if (!s->found) {
		s->found = calloc(FOUND_MAX, sizeof(*s->found));
		if (!s->found)
			return -ENOMEM;
	}
	s->found[s->n_found++] = *f;
	report_found(s, f);
	return 0;
}

/* Who answered registers 0..7 'regs' at 'address': an HDHK when register 3
 * holds that address and line settings the datasheet defines. */
static void classify(struct found *f, const uint16_t *regs, int address,
		     const struct pm_line *probed, bool serial)
{
	uint16_t line_reg = regs[REG_LINE];
	struct pm_line own;
	char lt[32];

	if ((line_reg & 0xff) != address) {
		f->kind = FOUND_OTHER;
		snprintf(f->note, sizeof(f->note), "register 3 reads 0x%04x, "
			 "not address %d", (unsigned)line_reg, address);
		return;
	}
	if (line_from_register(line_reg, &own) < 0) {
		f->kind = FOUND_OTHER;
		snprintf(f->note, sizeof(f->note), "register 3 reads 0x%04x, "
			 "not line settings", (unsigned)line_reg);
		return;
	}
	f->kind = FOUND_HDHK;
	memcpy(f->regs, regs, sizeof(f->regs));
	/* A module set to N81 may well answer a probe at N82 or E81 (a
	 * second stop bit is only idle line; a parity bit can pass for a
	 * stop bit). Its register 3 says what it is set to: that is what a
	 * config needs. Over a gateway the line is the gateway's. */
	if (serial && !same_line(&own, probed))
		snprintf(f->note, sizeof(f->note), "answered a probe at %s",
			 line_text(probed, lt, sizeof(lt)));
	f->line = own;
}

/* Modbus application protocol v1.1b3, 7: exceptions 0x0A (gateway path
 * unavailable) and 0x0B (gateway target device failed to respond) are a
 * Modbus TCP gateway saying that nobody answered behind it. */
static bool nobody_there(const struct pm_bus *bus, int r)
{
	int ex = pm_bus_last_fault(bus)->exception;

	return r == -PM_EEXCEPTION && (ex == 0x0a || ex == 0x0b);
}

/* A port failure that ends the scan of the port (or an interruption). */
static bool port_error(int r)
{
	return r < 0 && r != -ETIMEDOUT && r != -PM_ECRC && r != -PM_EFRAME &&
	       r != -PM_EUNIT && r != -PM_EEXCEPTION;
}

/*
 * Probes 'address' at line 'line': one read of register 3 (a short answer
 * keeps a silent address quick), sent again after a bad answer; whoever
 * answers is asked for registers 0..7. Records what it found. 0, or a port
 * failure / -EINTR that ends the port's scan.
 */
static int probe(struct scan *s, struct pm_bus *bus, size_t port, int address,
		 const struct pm_line *line, double timeout, const char *note)
{
	bool serial = port_is_serial(s->ports[port]);
	struct found f = { .port = port, .address = address, .line = *line };
	uint16_t reg, regs[INFO_COUNT];
	int r = -ETIMEDOUT, bad = 0, last_bad = 0, from = 0;
	double info_timeout;

	s->probes++;
	for (int i = 0; i <= PROBE_AGAIN && !scan_stop; i++) {
		r = pm_bus_read_registers(bus, address, timeout, REG_LINE, 1, &reg);
		if (nobody_there(bus, r))
			r = -ETIMEDOUT;
		if (r == 0 || r == -PM_EEXCEPTION || port_error(r))
			break;
		if (r == -ETIMEDOUT && !bad)
			break;
		if (r == -PM_EUNIT) {
			/* a late answer from an address probed before, or a
			 * unit that answers under another id */
			from = pm_bus_last_fault(bus)->from_address;
			if (from >= PM_ADDRESS_MIN && from <= PM_ADDRESS_MAX)
				s->late[from] = true;
		} else if (r != -ETIMEDOUT) {
			bad++;
			last_bad = r;
		}
	}
	if (scan_stop)
		return -EINTR;
	if (r == -EINTR || port_error(r))
		return r;
	if (r == -ETIMEDOUT && !bad)
		return 0;	/* silence, or only others' late answers */
	if (r == -PM_EUNIT && !bad) {
		f.kind = FOUND_GARBLED;
		snprintf(f.note, sizeof(f.note), "the answers name address %d",
			 from);
		return record(s, &f);
	}
	if (r != 0 && r != -PM_EEXCEPTION) {
		f.kind = FOUND_GARBLED;
		snprintf(f.note, sizeof(f.note), "%s \u2014 two modules at one "
			 "address? wrong framing? noise?",
			 last_bad == -PM_ECRC ? "answers fail their CRC check"
					      : "short or malformed answers");
		return record(s, &f);
	}
	if (r == -PM_EEXCEPTION) {
		f.kind = FOUND_OTHER;
		snprintf(f.note, sizeof(f.note), "Modbus exception %d to a read "
			 "of register 3", pm_bus_last_fault(bus)->exception);
		return record(s, &f);
	}
	/* Someone is there: registers 0..7 tell what, retried like any read,
	 * waiting at least what their longer answer needs. */
	info_timeout = answer_timeout(line, serial, INFO_COUNT);
	if (timeout * 2 > info_timeout)
		info_timeout = timeout * 2;
	pm_bus_set_retries(bus, PROBE_AGAIN);
	r = pm_bus_read_registers(bus, address, info_timeout, INFO_FIRST,
				  INFO_COUNT, regs);
	pm_bus_set_retries(bus, 0);
	if (nobody_there(bus, r))
		r = -ETIMEDOUT;
	if (r == 0) {
		classify(&f, regs, address, line, serial);
	} else if (port_error(r)) {
		return r;
	} else if (r == -PM_EEXCEPTION) {
		f.kind = FOUND_OTHER;
		snprintf(f.note, sizeof(f.note), "Modbus exception %d to a read "
			 "of registers 0..7", pm_bus_last_fault(bus)->exception);
	} else {
		f.kind = FOUND_OTHER;
		snprintf(f.note, sizeof(f.note), "answers register 3, then %s "
			 "to registers 0..7", pm_strerror(r));
	}
	if (note && f.kind == FOUND_HDHK && !f.note[0])
		snprintf(f.note, sizeof(f.note), "%s", note);
	return record(s, &f);
}

static bool found_at(const struct scan *s, size_t port, int address)
{
	for (size_t i = 0; i < s->n_found; i++)
		if (s->found[i].port == port && s->found[i].address == address)
			return true;
	return false;
}

/*
 * probe() on a bus that may have to be connected again: the transport
 * connects again after PM_NET_SILENT_REQUESTS_MAX requests in a row that
 * got nothing back (bus/netconn.h), and silence is what a scan mostly
 * meets; when that fails the bus is broken: it is opened again and the
 * address probed once more. A cheap gateway
 * serves one client at a time and turns a new one away until it has seen
 * the old one go: the connection is tried RECONNECT_TRIES times, after a
 * growing pause. A failure to connect ends the port's scan (*bus NULL,
 * *fault saying why).
 */
static int probe_on(struct scan *s, struct pm_bus **bus, size_t port,
		    int address, const struct pm_line *line, double timeout,
		    const char *note, struct pm_bus_fault *fault)
{
	int r = probe(s, *bus, port, address, line, timeout, note);

	if (port_is_serial(s->ports[port]))
		return r;
	for (int i = 0; i < RECONNECT_TRIES && (r == -EIO || r == -ENODEV) &&
			!scan_stop; i++) {
		if (i > 0)
			pm_sleep_until_ns(pm_mono_ns() + (RECONNECT_PAUSE_NS << i));
		pm_bus_close(*bus);
		*bus = NULL;
		r = pm_bus_open_fault(bus, s->ports[port], line, fault);
		if (r < 0)
			return r;
		pm_bus_set_retries(*bus, 0);
		r = probe(s, *bus, port, address, line, timeout, note);
	}
	return r;
}

/* Every wanted address at one line setting, then once more, with a longer
 * wait, those whose answer came after their probe had given up. */
static int scan_line(struct scan *s, struct pm_bus **bus, size_t port,
		     const struct pm_line *line, struct pm_bus_fault *fault)
{
	bool serial = port_is_serial(s->ports[port]);
	double timeout = s->o->timeout > 0 ? s->o->timeout
					   : answer_timeout(line, serial, 1);
	double late;
	char lt[32], note[64];
	int r = 0;

	snprintf(s->pg.what, sizeof(s->pg.what), "%s %s", s->ports[port],
		 serial ? line_text(line, lt, sizeof(lt)) : "(gateway)");
	memset(s->late, 0, sizeof(s->late));
	for (int a = PM_ADDRESS_MIN; a <= PM_ADDRESS_MAX && r == 0; a++) {
		if (!s->o->want[a])
			continue;
		r = probe_on(s, bus, port, a, line, timeout, NULL, fault);
		s->pg.done++;
		progress_draw(&s->pg, s->n_found, false);
	}
	/* at least twice what the line needs: a --timeout may be too short */
	late = timeout * LATE_FACTOR;
	if (late < 2 * answer_timeout(line, serial, 1))
		late = 2 * answer_timeout(line, serial, 1);
	snprintf(note, sizeof(note), "slow: answered only within %.2f s", late);
	for (int a = PM_ADDRESS_MIN; a <= PM_ADDRESS_MAX && r == 0; a++)
		if (s->late[a] && s->o->want[a] && !found_at(s, port, a))
			r = probe_on(s, bus, port, a, line, late, note, fault);
	return r;
}

/*
 * Moves an open bus from line 'from' to line 'to'. A change of parity
 * reopens the port instead of pm_bus_set_line(): on a pseudo-terminal
 * (hdhk-sim) glibc's tcsetattr() fails when the kernel drops PARENB, and
 * the INPCK libmodbus sets with parity would stay. 0 or the failure (*bus
 * then NULL after a failed reopen, *fault filled).
 */
static int switch_line(struct pm_bus **bus, const char *port,
		       const struct pm_line *from, const struct pm_line *to,
		       struct pm_bus_fault *fault)
{
	if (same_line(from, to))
		return 0;
	if (from->parity == 'N' && to->parity == 'N')
		return pm_bus_set_line(*bus, to);
	pm_bus_close(*bus);
	*bus = NULL;
	return pm_bus_open_fault(bus, port, to, fault);
}

/* Every line setting asked for on one port (over a gateway: addresses
 * only). 0, or the exit status after saying what went wrong. */
static int scan_port(struct scan *s, size_t port)
{
	const char *name = s->ports[port];
	bool serial = port_is_serial(name);
	struct pm_bus_fault fault = { 0 };
	struct pm_bus *bus = NULL;
	int r;

	r = pm_bus_open_fault(&bus, name, &s->o->lines[0], &fault);
	for (size_t l = 0; r == 0 && l < s->o->n_lines && !scan_stop; l++) {
		if (l > 0)
			r = switch_line(&bus, name, &s->o->lines[l - 1],
					&s->o->lines[l], &fault);
		if (r < 0)
			break;
		/* silence is the common answer: no retries for it */
		pm_bus_set_retries(bus, 0);
		r = scan_line(s, &bus, port, &s->o->lines[l], &fault);
		if (!serial)
			break;
	}
	pm_bus_close(bus);
	if (r < 0 && !bus && r != -EINTR) {
		progress_clear(&s->pg);
		r = port_fail(name, r, &fault);
		progress_draw(&s->pg, s->n_found, true);
		return r;
	}
	if (r == -EINTR || r == -PM_ETOOBIG || (r == 0 && scan_stop))
		return 0;
	if (r < 0) {
		progress_clear(&s->pg);
		log_err("%s: %s \u2014 %s (scan of this port stopped)", name,
			pm_strerror(r), serial ? "was the converter unplugged?"
					       : "was the gateway restarted or "
						 "the network interrupted?");
		return EX_IOERR;
	}
	return 0;
}

/* ---- output ------------------------------------------------------------- */

static int found_order(const void *pa, const void *pb)
{
	const struct found *a = pa, *b = pb;

	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	if (a->address != b->address)
		return a->address - b->address;
	return (int)a->kind - (int)b->kind;
}

/* Sorts by port and address and drops garbled answers where a readable
 * device was found at the same address (at its own line settings). */
static void tidy_found(struct scan *s)
{
	size_t n = 0;

	if (!s->n_found)
		return;
	qsort(s->found, s->n_found, sizeof(*s->found), found_order);
	for (size_t i = 0; i < s->n_found; i++) {
		const struct found *f = &s->found[i];
		bool shadowed = false;

		for (size_t j = 0; f->kind == FOUND_GARBLED && j < s->n_found; j++)
			shadowed |= s->found[j].port == f->port &&
				    s->found[j].address == f->address &&
				    s->found[j].kind != FOUND_GARBLED;
		if (!shadowed)
			s->found[n++] = *f;
	}
	s->n_found = n;
}

static int print_table(const struct scan *s)
{
	int width = (int)strlen("PORT");
	struct pm_buf out;
	int r;

	for (size_t i = 0; i < s->n_found; i++) {
		int w = (int)strlen(s->ports[s->found[i].port]);

		width = w > width ? w : width;
	}
	pm_buf_init(&out, TABLE_TEXT_MAX);
	r = pm_buf_printf(&out, "%-*s  %7s  %6s  %-7s  %-7s  %-9s  %-7s  %s\n",
			  width, "PORT", "ADDRESS", "BAUD", "FRAMING", "VERSION",
			  "RANGES", "DATE", "NOTE");
	for (size_t i = 0; r == 0 && i < s->n_found; i++) {
		const struct found *f = &s->found[i];
		const char *framing = pm_line_framing(&f->line);
		char version[16] = "-", ranges[24] = "-", date[16] = "-";
		char note[NOTE_MAX + 64];
		unsigned v = f->regs[REG_VERSION], d = f->regs[REG_DATE];

		if (f->kind == FOUND_HDHK) {
			snprintf(version, sizeof(version), "%u.%u.%u", v / 100,
				 v / 10 % 10, v % 10);
			snprintf(ranges, sizeof(ranges), "%u/%u A",
				 (unsigned)f->regs[REG_RANGE_AH],
				 (unsigned)f->regs[REG_RANGE_IP]);
			if ((d & 0xff) >= 1 && (d & 0xff) <= 12)
				snprintf(date, sizeof(date), "%u-%02u",
					 2000 + (d >> 8), d & 0xff);
			else
				snprintf(date, sizeof(date), "0x%04x", d);
			snprintf(note, sizeof(note), "%s", f->note);
		} else if (f->kind == FOUND_OTHER) {
			snprintf(note, sizeof(note), "not an HDHK: %s", f->note);
		} else {
			snprintf(note, sizeof(note), "garbled: %s", f->note);
		}
		r = pm_buf_printf(&out, "%-*s  %7d  %6d  %-7s  %-7s  %-9s  %-7s  %s",
				  width, s->ports[f->port], f->address,
				  f->line.baud, framing ? framing : "?", version,
				  ranges, date, note);
		/* no trailing blanks when there is no note */
		while (r == 0 && out.len && out.data[out.len - 1] == ' ')
			pm_buf_truncate(&out, 1);
		if (r == 0)
			r = pm_buf_addc(&out, '\n');
	}
	if (r == 0)
		r = cli_print_buf(&out) ? -EIO : 0;
	else
		log_err("cannot print the table: %s", pm_strerror(r));
	pm_buf_free(&out);
	return r < 0 ? EX_IOERR : 0;
}

/* The line settings most HDHKs on 'port' share (the first found among
 * equals): a config needs one per port. */
static const struct pm_line *port_line(const struct scan *s, size_t port)
{
	const struct pm_line *best = NULL;
	size_t best_n = 0;

	for (size_t i = 0; i < s->n_found; i++) {
		const struct found *f = &s->found[i];
		size_t n = 0;

		if (f->port != port || f->kind != FOUND_HDHK)
			continue;
		for (size_t j = 0; j < s->n_found; j++)
			n += s->found[j].port == port &&
			     s->found[j].kind == FOUND_HDHK &&
			     same_line(&s->found[j].line, &f->line);
		if (n > best_n) {
			best = &f->line;
			best_n = n;
		}
	}
	return best;
}

/* One device of the config fragment. */
static int config_device(struct pm_buf *b, int id, const char *port,
			 const struct found *f, bool serial)
{
	int r;

	r = pm_buf_printf(b, "%s        {\"id\": %d, \"port\": ", id > 1 ? ",\n" : "",
			  id);
	if (r == 0)
		r = pm_json_string(b, port);
	if (r == 0)
		r = pm_buf_printf(b, ", \"address\": %d", f->address);
	if (r == 0 && serial) {
		r = pm_buf_printf(b, ", \"baudrate\": %d", f->line.baud);
		if (r == 0 && f->line.parity != 'N')
			r = pm_buf_printf(b, ", \"parity\": \"%c\"", f->line.parity);
		if (r == 0 && f->line.stop_bits != 1)
			r = pm_buf_printf(b, ", \"stopbits\": %d", f->line.stop_bits);
	}
	if (r == 0)
		r = pm_buf_adds(b, ",\n         \"inputs\": [\n");
	for (unsigned c = 0; r == 0 && c < PM_CHANNELS; c++)
		r = pm_buf_printf(b, "             {\"input\": \"%c\", \"ratio\": "
				  "0.01, \"name\": \"Device %d input %c\"}%s\n",
				  'a' + c, id, 'a' + c,
				  c + 1 < PM_CHANNELS ? "," : "");
	if (r == 0)
		r = pm_buf_adds(b, "         ]}");
	return r;
}

/* The object form of the config with every HDHK found; modules whose line
 * settings differ from the others on their port are left out (one bus,
 * one setting), with the command that brings them in line. */
static int print_config(const struct scan *s)
{
	struct pm_buf out;
	int r, id = 0;

	pm_buf_init(&out, CONFIG_TEXT_MAX);
	r = pm_buf_adds(&out, "{\n    \"devices\": [\n");
	for (size_t i = 0; r == 0 && i < s->n_found; i++) {
		const struct found *f = &s->found[i];
		const char *port = s->ports[f->port];
		bool serial = port_is_serial(port);
		const struct pm_line *want = port_line(s, f->port);
		char lt[32], wt[32];

		if (f->kind != FOUND_HDHK)
			continue;
		if (serial && !same_line(&f->line, want)) {
			char to[48] = "";

			if (want->baud != f->line.baud)
				snprintf(to, sizeof(to), " baud=%d", want->baud);
			if (strcmp(pm_line_framing(want), pm_line_framing(&f->line)))
				snprintf(to + strlen(to), sizeof(to) - strlen(to),
					 " framing=%s", pm_line_framing(want));
			log_warning("left out of the config: %s address %d at %s "
				    "(the other modules on the port use %s; "
				    "`powermeter set --port %s --address %d "
				    "--baud %d --framing %s%s` brings it in line)",
				    port, f->address,
				    line_text(&f->line, lt, sizeof(lt)),
				    line_text(want, wt, sizeof(wt)), port,
				    f->address, f->line.baud,
				    pm_line_framing(&f->line), to);
			continue;
		}
		r = config_device(&out, ++id, port, f, serial);
	}
	if (r == 0)
		r = pm_buf_adds(&out, "\n    ]\n}\n");
	if (r == 0)
		r = cli_print_buf(&out) ? -EIO : 0;
	else
		log_err("cannot print the config: %s", pm_strerror(r));
	pm_buf_free(&out);
	return r < 0 ? EX_IOERR : 0;
}

/* ---- the command -------------------------------------------------------- */

static int parse_options(int argc, char **argv, struct scan_opts *o)
{
	enum { OPT_FRAMING = 0x100, OPT_CONFIG };
	static const struct option options[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "baud", required_argument, NULL, 'b' },
		{ "framing", required_argument, NULL, OPT_FRAMING },
		{ "address", required_argument, NULL, 'a' },
		{ "timeout", required_argument, NULL, 't' },
		{ "config", no_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int bauds[8] = { 9600 }, n_bauds = 1, n_framings = 1, c;
	struct pm_line framings[4] = { PM_LINE_DEFAULT };

	(void)parse_range("1-247", o);
	optind = 0;
	while ((c = getopt_long(argc, argv, "p:b:a:t:h", options, NULL)) != -1) {
		switch (c) {
		case 'p':
			o->port = optarg;
			break;
		case 'b':
			n_bauds = parse_bauds(optarg, bauds);
			if (n_bauds < 0) {
				log_err("invalid baud rates '%s' (a list of "
					PM_LINE_BAUD_LIST ", or all)", optarg);
				return EX_USAGE;
			}
			o->lines_given = true;
			break;
		case OPT_FRAMING:
			n_framings = parse_framings(optarg, framings);
			if (n_framings < 0) {
				log_err("invalid framings '%s' (a list of "
					PM_LINE_FRAMING_LIST ", or all)", optarg);
				return EX_USAGE;
			}
			o->lines_given = true;
			break;
		case 'a':
			if (parse_range(optarg, o) < 0) {
				log_err("invalid address range '%s' (e.g. 1-10,20; "
					"addresses %d..%d)", optarg,
					PM_ADDRESS_MIN, PM_ADDRESS_MAX);
				return EX_USAGE;
			}
			break;
		case 't':
			if (cli_parse_timeout(optarg, &o->timeout) < 0) {
				log_err("invalid timeout '%s' (seconds)", optarg);
				return EX_USAGE;
			}
			break;
		case OPT_CONFIG:
			o->config = true;
			break;
		case 'h':
			scan_usage(stdout);
			return 0;
		default:
			scan_usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		scan_usage(stderr);
		return EX_USAGE;
	}
	/* each baud rate at every framing: the factory setting first */
	for (int b = 0; b < n_bauds; b++)
		for (int f = 0; f < n_framings; f++) {
			o->lines[o->n_lines] = framings[f];
			o->lines[o->n_lines++].baud = bauds[b];
		}
	return CLI_GO_ON;
}

/* What is about to happen, and about how long it takes. */
static void announce(const struct scan *s)
{
	const struct scan_opts *o = s->o;
	double secs = 0;
	char list[1024], lt[32];
	size_t len = 0;

	for (size_t p = 0; p < s->n_ports; p++) {
		bool serial = port_is_serial(s->ports[p]);

		len += (size_t)snprintf(list + len, len < sizeof(list) ?
					sizeof(list) - len : 0, "%s%s",
					p ? ", " : "", s->ports[p]);
		len = len < sizeof(list) ? len : sizeof(list) - 1;
		for (size_t l = 0; l < (serial ? o->n_lines : 1); l++)
			secs += o->n_addresses *
				((o->timeout > 0 ? o->timeout
						 : answer_timeout(&o->lines[l],
								  serial, 1)) +
				 silence_seconds(&o->lines[l]));
		if (!serial && o->lines_given)
			log_warning("%s is a gateway: its serial side has "
				    "settings of its own, so only addresses are "
				    "probed (--baud and --framing ignored)",
				    s->ports[p]);
	}
	if (s->n_ports == 1 && !port_is_serial(s->ports[0]))
		snprintf(lt, sizeof(lt), "through the gateway");
	else if (o->n_lines == 1)
		snprintf(lt, sizeof(lt), "at %d %s", o->lines[0].baud,
			 pm_line_framing(&o->lines[0]));
	else
		snprintf(lt, sizeof(lt), "at %zu line settings", o->n_lines);
	log_info("scanning %s: addresses %s %s, %lu probe%s, about %.0f s",
		 list, o->range, lt, s->pg.total, s->pg.total == 1 ? "" : "s",
		 secs);
}

int cmd_scan(int argc, char **argv)
{
	struct scan_opts o = { 0 };
	struct scan s = { .o = &o };
	struct sigaction sa = { .sa_handler = on_signal };
	int status, port_status = 0;
	unsigned unchecked = 0;
	size_t scanned = 0, hdhk = 0, other = 0, garbled = 0;
	double elapsed;

	status = parse_options(argc, argv, &o);
	if (status != CLI_GO_ON)
		return status;
	status = o.port ? add_port(&s, o.port) : discover_ports(&s, &unchecked);
	if (status < 0) {
		log_err("cannot list the serial ports: %s", pm_strerror(status));
		status = EX_OSERR;
		goto out;
	}
	if (!s.n_ports) {
		log_err("no serial port found (tried /dev/serial/by-id/*, "
			"/dev/ttyUSB*, /dev/ttyACM*, /dev/ttyS* with a UART%s) "
			"\u2014 is the USB\u2013RS-485 converter plugged in? "
			"Or name one with --port", unchecked ?
			"; some ttyS* could not be opened to check" : "");
		status = EX_UNAVAILABLE;
		goto out;
	}
	for (size_t p = 0; p < s.n_ports; p++)
		s.pg.total += (unsigned long)o.n_addresses *
			      (port_is_serial(s.ports[p]) ? o.n_lines : 1);

	/* Ctrl-C ends the scan after the probe under way; a second one
	 * ends the program. */
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGTERM, &sa, NULL);

	s.pg.tty = isatty(STDERR_FILENO);
	s.pg.start_ns = pm_mono_ns();
	announce(&s);
	for (size_t p = 0; p < s.n_ports && !scan_stop && !s.full; p++) {
		int r = scan_port(&s, p);

		if (r)
			port_status = r;
		else
			scanned++;
	}
	progress_clear(&s.pg);
	elapsed = (double)(pm_mono_ns() - s.pg.start_ns) / NS_PER_SEC;
	tidy_found(&s);
	for (size_t i = 0; i < s.n_found; i++) {
		hdhk += s.found[i].kind == FOUND_HDHK;
		other += s.found[i].kind == FOUND_OTHER;
		garbled += s.found[i].kind == FOUND_GARBLED;
	}
	if (s.full)
		log_err("more than %d answers: scan stopped (too large)", FOUND_MAX);
	if (scan_stop)
		log_notice("interrupted after %lu of %lu probes", s.pg.done,
			   s.pg.total);
	if (scanned || scan_stop)
		log_info("%zu HDHK module%s, %zu other Modbus device%s, %zu garbled "
			 "address%s on %zu port%s (%lu probes in %.1f s)",
			 hdhk, hdhk == 1 ? "" : "s", other, other == 1 ? "" : "s",
			 garbled, garbled == 1 ? "" : "es", scanned,
			 scanned == 1 ? "" : "s", s.probes, elapsed);

	status = 0;
	if (s.n_found)
		status = o.config ? print_config(&s) : print_table(&s);
	if (status == 0 && scan_stop) {
		status = 128 + SIGINT;
	} else if (status == 0 && !s.n_found && !scanned && port_status) {
		status = port_status;
	} else if (status == 0 && !s.n_found) {
		log_info("nothing answered \u2014 check wiring A/B, 12 V supply%s",
			 o.n_lines < LINES_MAX ? "; other line settings: --baud all "
						 "--framing all" : "");
		status = 1;
	}
out:
	for (size_t p = 0; p < s.n_ports; p++)
		free(s.ports[p]);
	free(s.found);
	return status;
}
