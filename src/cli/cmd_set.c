/* cmd_set.c — `powermeter set`: writes a module's settings (datasheet
 * registers 3, 6, 7 and 40..55) with FC 0x06, each read back to confirm it;
 * a new address, baud rate or framing (register 3) is read back at the new
 * settings, where the module answers from then on. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <powermeter/powermeter.h>

#include "bus/bus.h"
#include "cli.h"
#include "config/config.h"
#include "device/hdhk.h"
#include "device/line.h"
#include "meter/failure.h"
#include "util/log.h"

/* Datasheet register map: the registers a module lets us write. */
#define REG_INFO_FIRST		0	/* 0..7: version .. threshold */
#define REG_INFO_COUNT		8
#define REG_LINE		3	/* framing << 12 | baud code << 8 | address */
#define REG_FREQ_DIV		6	/* frequency division coefficient 1..5 */
#define REG_THRESHOLD		7	/* threshold << 8 | frequency selection */
#define REG_CT_RATIO		40	/* 40..55: channel A..P CT ratio */
#define CT_CHANNELS		16

#define LINE_ADDRESS_MASK	0x00ff
#define LINE_BAUD_SHIFT		8
#define LINE_BAUD_MASK		0x0f00
#define LINE_FRAMING_SHIFT	12
#define LINE_FRAMING_MASK	0xf000
#define THRESHOLD_SHIFT		8
#define THRESHOLD_MASK		0xff00
#define THRESHOLD_MAX		255
#define FREQ_DIV_MIN		1
#define FREQ_DIV_MAX		5
#define CT_RATIO_MAX		65535	/* an unsigned register */

#define FAILURE_TEXT_MAX	512
#define WHAT_MAX		48
/* registers 6, 7, 40..55 and 3 */
#define WRITES_MAX		(2 + CT_CHANNELS + 1)

/* What the command line asks for; -1 (0 for address and baud): keep. */
struct wanted {
	int address;
	int baud;
	int framing;		/* index into pm_line_framings */
	long ct[CT_CHANNELS];
	int threshold;
	int freq_div;
};

/* One register to write: its value now and the one wanted; 'mask' and
 * 'shift' pick the field the setting is (the rest is kept). */
struct reg_write {
	uint16_t reg;
	uint16_t old, value;
	char what[WHAT_MAX];
	uint16_t mask;
	unsigned shift;
};

/* The setting's own value in register value 'v'. */
static unsigned field(const struct reg_write *w, uint16_t v)
{
	return (unsigned)(v & w->mask) >> w->shift;
}

static void set_usage(FILE *f)
{
	fprintf(f,
		"usage: powermeter set --port PORT [--address A] [--baud B]\n"
		"                      [--framing N81|E81|O81|N82] [--timeout S]\n"
		"                      [--dry-run] SETTING=VALUE...\n"
		"  -p, --port PORT     the module's port\n"
		"  -a, --address A     its Modbus address now (default 1)\n"
		"  -b, --baud B        its baud rate now (default 9600)\n"
		"      --framing F     its framing now (default N81)\n"
		"  -t, --timeout S     seconds to wait for an answer (default 1)\n"
		"  -n, --dry-run       print what would be written, write nothing\n"
		"settings (each written with FC 0x06, then read back):\n"
		"  address=%d..%d  baud=" PM_LINE_BAUD_LIST "\n"
		"  framing=" PM_LINE_FRAMING_LIST "   (address, baud, framing: register 3)\n"
		"  ct.a=0..%d ... ct.p=0..%d   CT ratio of a channel (registers 40..55)\n"
		"  threshold=0..%d   a raw result below it reads 0 (register 7, high byte)\n"
		"  freqdiv=%d..%d   frequency division coefficient (register 6)\n"
		"Exit status: 0 done, 1 not confirmed, 64 usage, 69 port unavailable,\n"
		"74 port failed.\n",
		PM_ADDRESS_MIN, PM_ADDRESS_MAX, CT_RATIO_MAX, CT_RATIO_MAX,
		THRESHOLD_MAX, FREQ_DIV_MIN, FREQ_DIV_MAX);
}

/* ---- the settings ------------------------------------------------------- */

static int parse_long(const char *s, long min, long max, long *v)
{
	char *end;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	*v = strtol(s, &end, 10);
	if (errno || *end || *v < min || *v > max)
		return -EINVAL;
	return 0;
}

/* One SETTING=VALUE into 'w'. 0, or -EINVAL after saying what is wrong
 * (nothing is written unless every setting is good). */
static int parse_setting(const char *arg, struct wanted *w)
{
	const char *eq = strchr(arg, '='), *value;
	char name[16];
	size_t len;
	long v;

	if (!eq || eq == arg || (len = (size_t)(eq - arg)) >= sizeof(name)) {
		log_err("'%s' is not a SETTING=VALUE (see powermeter set --help)",
			arg);
		return -EINVAL;
	}
	memcpy(name, arg, len);
	name[len] = '\0';
	value = eq + 1;

	if (!strcmp(name, "address")) {
		if (w->address)
			goto twice;
		if (parse_long(value, PM_ADDRESS_MIN, PM_ADDRESS_MAX, &v) < 0) {
			log_err("invalid address '%s' (%d..%d)", value,
				PM_ADDRESS_MIN, PM_ADDRESS_MAX);
			return -EINVAL;
		}
		w->address = (int)v;
	} else if (!strcmp(name, "baud")) {
		if (w->baud)
			goto twice;
		if (parse_long(value, 1, 115200, &v) < 0 || !pm_line_baud_ok(v)) {
			log_err("invalid baud rate '%s' (" PM_LINE_BAUD_LIST ")",
				value);
			return -EINVAL;
		}
		w->baud = (int)v;
	} else if (!strcmp(name, "framing")) {
		struct pm_line l = PM_LINE_DEFAULT;

		if (w->framing >= 0)
			goto twice;
		if (pm_line_parse_framing(value, &l) < 0) {
			log_err("invalid framing '%s' (" PM_LINE_FRAMING_LIST ")",
				value);
			return -EINVAL;
		}
		for (size_t i = 0; i < pm_line_n_framings; i++)
			if (!strcmp(pm_line_framings[i], pm_line_framing(&l)))
				w->framing = (int)i;
	} else if (!strncmp(name, "ct.", 3) && name[3] >= 'a' &&
		   name[3] < 'a' + CT_CHANNELS && name[4] == '\0') {
		int c = name[3] - 'a';

		if (w->ct[c] >= 0)
			goto twice;
		if (parse_long(value, 0, CT_RATIO_MAX, &v) < 0) {
			log_err("invalid CT ratio '%s' for %s (0..%d)", value,
				name, CT_RATIO_MAX);
			return -EINVAL;
		}
		w->ct[c] = v;
	} else if (!strcmp(name, "threshold")) {
		if (w->threshold >= 0)
			goto twice;
		if (parse_long(value, 0, THRESHOLD_MAX, &v) < 0) {
			log_err("invalid threshold '%s' (0..%d)", value,
				THRESHOLD_MAX);
			return -EINVAL;
		}
		w->threshold = (int)v;
	} else if (!strcmp(name, "freqdiv")) {
		if (w->freq_div >= 0)
			goto twice;
		if (parse_long(value, FREQ_DIV_MIN, FREQ_DIV_MAX, &v) < 0) {
			log_err("invalid freqdiv '%s' (%d..%d)", value,
				FREQ_DIV_MIN, FREQ_DIV_MAX);
			return -EINVAL;
		}
		w->freq_div = (int)v;
	} else {
		log_err("unknown setting '%s' (address, baud, framing, ct.a..ct.p, "
			"threshold, freqdiv)", name);
		return -EINVAL;
	}
	return 0;

twice:
	log_err("setting '%s' given twice", name);
	return -EINVAL;
}

static bool wants_ct(const struct wanted *w)
{
	for (int c = 0; c < CT_CHANNELS; c++)
		if (w->ct[c] >= 0)
			return true;
	return false;
}

/* Register 3 into address and line. 0, or -EINVAL for codes the datasheet
 * does not define. */
static int line_decode(uint16_t reg, int *address, struct pm_line *line)
{
	unsigned framing = (reg & LINE_FRAMING_MASK) >> LINE_FRAMING_SHIFT;
	int baud = pm_hdhk_baud_from_code((reg & LINE_BAUD_MASK) >> LINE_BAUD_SHIFT);
	struct pm_line l = PM_LINE_DEFAULT;

	if (baud < 0 || framing >= pm_line_n_framings ||
	    pm_line_parse_framing(pm_line_framings[framing], &l) < 0)
		return -EINVAL;
	l.baud = baud;
	*line = l;
	*address = reg & LINE_ADDRESS_MASK;
	return 0;
}

/* "address 2, 19200 baud N81" for register 3 value 'reg'. */
static const char *line_words(uint16_t reg, char *buf, size_t size)
{
	struct pm_line l;
	int address;

	if (line_decode(reg, &address, &l) < 0)
		snprintf(buf, size, "unknown codes");
	else
		snprintf(buf, size, "address %d, %d baud %s", address, l.baud,
			 pm_line_framing(&l));
	return buf;
}

/* Register 3 with the parts asked for changed and the others kept as they
 * are (a baud rate already set keeps its code: 9600 has two). */
static uint16_t line_wanted(uint16_t reg, const struct wanted *w)
{
	struct pm_line l;
	int address;

	if (line_decode(reg, &address, &l) < 0)
		return reg;
	if (w->address)
		reg = (uint16_t)((reg & ~LINE_ADDRESS_MASK) | (unsigned)w->address);
	if (w->baud && w->baud != l.baud)
		reg = (uint16_t)((reg & ~LINE_BAUD_MASK) |
				 (unsigned)pm_hdhk_baud_code(w->baud) << LINE_BAUD_SHIFT);
	if (w->framing >= 0)
		reg = (uint16_t)((reg & ~LINE_FRAMING_MASK) |
				 (unsigned)w->framing << LINE_FRAMING_SHIFT);
	return reg;
}

/* The writes 'w' needs, register 3 last (it moves the module), from the
 * registers as they read now: info[] = 0..7, ct[] = 40..55. */
static size_t plan_writes(const struct wanted *w, const uint16_t *info,
			  const uint16_t *ct, struct reg_write *out)
{
	size_t n = 0;

	if (w->freq_div >= 0)
		out[n++] = (struct reg_write){ REG_FREQ_DIV, info[REG_FREQ_DIV],
					       (uint16_t)w->freq_div,
					       "frequency division", 0xffff, 0 };
	if (w->threshold >= 0)
		out[n++] = (struct reg_write){
			REG_THRESHOLD, info[REG_THRESHOLD],
			(uint16_t)((info[REG_THRESHOLD] & ~THRESHOLD_MASK) |
				   (unsigned)w->threshold << THRESHOLD_SHIFT),
			"threshold", THRESHOLD_MASK, THRESHOLD_SHIFT
		};
	for (int c = 0; c < CT_CHANNELS; c++) {
		if (w->ct[c] < 0)
			continue;
		out[n] = (struct reg_write){ (uint16_t)(REG_CT_RATIO + c), ct[c],
					     (uint16_t)w->ct[c], "", 0xffff, 0 };
		snprintf(out[n].what, sizeof(out[n].what), "CT ratio %c", 'a' + c);
		n++;
	}
	if (w->address || w->baud || w->framing >= 0)
		out[n++] = (struct reg_write){ REG_LINE, info[REG_LINE],
					       line_wanted(info[REG_LINE], w),
					       "line settings", 0xffff, 0 };
	return n;
}

/* ---- talking to the module ---------------------------------------------- */

struct target {
	const struct pm_device *dev;
	struct pm_bus *bus;
	struct pm_line line;	/* the bus's line now */
	/* Behind a gateway (dev->port a URL) the gateway's serial side keeps
	 * its own settings: the module is reached at those only. */
	bool gateway;
};

static bool same_line(const struct pm_line *a, const struct pm_line *b)
{
	return a->baud == b->baud && a->parity == b->parity &&
	       a->data_bits == b->data_bits && a->stop_bits == b->stop_bits;
}

/*
 * Moves the bus to line 'to'. A change of parity reopens the port instead
 * of pm_bus_set_line(): on a pseudo-terminal (hdhk-sim) glibc's
 * tcsetattr() fails when the kernel drops PARENB, and the INPCK libmodbus
 * sets with parity would stay. 0 or the failure (t->bus NULL after a
 * failed reopen).
 */
static int switch_line(struct target *t, const struct pm_line *to)
{
	struct pm_bus_fault fault;
	int r;

	if (same_line(&t->line, to))
		return 0;
	if (t->line.parity == 'N' && to->parity == 'N') {
		r = pm_bus_set_line(t->bus, to);
	} else {
		pm_bus_close(t->bus);
		t->bus = NULL;
		r = pm_bus_open_fault(&t->bus, t->dev->port, to, &fault);
	}
	if (r == 0)
		t->line = *to;
	return r;
}

/* The last failure's details, or none when the bus is gone. */
static const struct pm_bus_fault *last_fault(const struct target *t)
{
	return t->bus ? pm_bus_last_fault(t->bus) : NULL;
}

/* The electrician's sentence for 'err' at 'address' (failure.c), then
 * what it means here. Returns the exit status: 74 when the port failed,
 * else 1. */
static int set_fail(const struct target *t, int address, int err,
		    const struct pm_bus_fault *fault, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int set_fail(const struct target *t, int address, int err,
		    const struct pm_bus_fault *fault, const char *fmt, ...)
{
	struct pm_device at = *t->dev;
	char why[FAILURE_TEXT_MAX], what[FAILURE_TEXT_MAX];
	va_list ap;

	at.address = address;
	pm_describe_failure(why, sizeof(why), &at, err, fault);
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	log_err("%s%s%s", why, what[0] ? " \u2014 " : "", what);
	return err == -EIO || err == -ENODEV || err == -ENXIO ? EX_IOERR : 1;
}

static int open_fail(const struct target *t, int err,
		     const struct pm_bus_fault *fault)
{
	char name[32] = "";

	if (err == -EBUSY && fault->holder > 0)
		cli_process_name(fault->holder, name, sizeof(name));
	set_fail(t, t->dev->address, err, fault, "%s",
		 !strcmp(name, "powermeterd")
		 ? "stop the daemon first (systemctl stop powermeterd); nothing written"
		 : "nothing written");
	switch (err) {
	case -EBUSY:
	case -ENOENT:
	case -EACCES:
	case -EPERM:
	case -ENOTTY:
	case -EINVAL:
		return EX_UNAVAILABLE;
	default:
		return EX_IOERR;
	}
}

/* Does anything answer at 'address' with line 'line'? Only silence means
 * no; the module itself, reading 'self' in register 3, does not count
 * (a module may answer at a framing near its own). The bus is switched
 * back. 0 (free), 1 (taken), or a port failure. */
static int address_taken(struct target *t, int address,
			 const struct pm_line *line, uint16_t self)
{
	const struct pm_line back = t->line;
	uint16_t reg;
	int r, s;

	r = switch_line(t, line);
	if (r < 0)
		return r;
	pm_bus_set_retries(t->bus, 0);
	r = pm_bus_read_registers(t->bus, address, t->dev->timeout, REG_LINE, 1,
				  &reg);
	pm_bus_set_retries(t->bus, PM_BUS_RETRIES_DEFAULT);
	if (r == 0 && reg == self)
		r = -ETIMEDOUT;
	if (r == -EIO || r == -ENODEV || r == -ENXIO || r == -EINTR)
		return r;
	s = switch_line(t, &back);
	if (s < 0)
		return s;
	return r == -ETIMEDOUT ? 0 : 1;
}

/* Writes one register other than 3 and reads it back. 0, or the exit
 * status after saying what went wrong. */
static int write_checked(struct target *t, const struct reg_write *w,
			 size_t done)
{
	const struct pm_device *dev = t->dev;
	char after[80] = "";
	uint16_t check;
	int r;

	if (done)
		snprintf(after, sizeof(after), " (%zu setting%s written before it "
			 "stay written)", done, done == 1 ? "" : "s");
	r = pm_bus_write_register(t->bus, dev->address, dev->timeout, w->reg,
				  w->value);
	if (r == -PM_EEXCEPTION)
		return set_fail(t, dev->address, r, pm_bus_last_fault(t->bus),
				"the module refused %s (register %u) = %u: is it "
				"write-protected, or the value out of its range?%s",
				w->what, (unsigned)w->reg, field(w, w->value),
				after);
	if (r < 0)
		return set_fail(t, dev->address, r, pm_bus_last_fault(t->bus),
				"%s (register %u) = %u not confirmed: it may or may "
				"not be written (powermeter info shows it)%s",
				w->what, (unsigned)w->reg, field(w, w->value),
				after);
	r = pm_bus_read_registers(t->bus, dev->address, dev->timeout, w->reg,
				  1, &check);
	if (r < 0)
		return set_fail(t, dev->address, r, pm_bus_last_fault(t->bus),
				"%s (register %u) = %u written, but it could not be "
				"read back%s", w->what, (unsigned)w->reg,
				field(w, w->value), after);
	if (check != w->value) {
		log_err("%s address %d: %s (register %u): wrote %u, but it reads "
			"back %u \u2014 the module did not keep it (write-protected? "
			"value out of its range?)%s", dev->port, dev->address,
			w->what, (unsigned)w->reg, field(w, w->value),
			field(w, check), after);
		return 1;
	}
	printf("%s address %d: %s (register %u): %u -> %u, confirmed\n",
	       dev->port, dev->address, w->what, (unsigned)w->reg,
	       field(w, w->old), field(w, w->value));
	return 0;
}

/*
 * Writes register 3. The module answers at its old settings, then takes
 * the new ones: the write goes out once (a retry could only reach it at
 * the old ones), and whether it took is read at the new settings; when
 * that fails, at the old ones, to tell "not written" from "gone".
 */
static int write_line(struct target *t, const struct reg_write *w, size_t done)
{
	const struct pm_device *dev = t->dev;
	struct pm_line new_line;
	int new_address, r, rw;
	bool moves_line;
	char old_words[64], new_words[64], after[80] = "";
	uint16_t check;

	(void)line_decode(w->value, &new_address, &new_line);
	line_words(w->old, old_words, sizeof(old_words));
	line_words(w->value, new_words, sizeof(new_words));
	if (done)
		snprintf(after, sizeof(after), " (%zu setting%s written before it "
			 "stay written)", done, done == 1 ? "" : "s");
	log_warning("%s: register 3 moves the module: it answers this write at "
		    "%s, then only at %s \u2014 use those from now on (the "
		    "config's \"address\", \"baudrate\", \"parity\", "
		    "\"stopbits\")", dev->port, old_words, new_words);
	moves_line = !same_line(&new_line, &dev->line);
	if (t->gateway && moves_line)
		log_warning("%s: behind a gateway the module is reached at the "
			    "gateway's serial settings: set the gateway to %d baud "
			    "%s too (its own setup page); the new settings cannot "
			    "be read back until then", dev->port, new_line.baud,
			    pm_line_framing(&new_line));

	pm_bus_set_retries(t->bus, 0);
	rw = pm_bus_write_register(t->bus, dev->address, dev->timeout, REG_LINE,
				   w->value);
	pm_bus_set_retries(t->bus, PM_BUS_RETRIES_DEFAULT);
	if (rw == -PM_EEXCEPTION)
		return set_fail(t, dev->address, rw, pm_bus_last_fault(t->bus),
				"the module refused line settings (register 3) = "
				"0x%04x: is it write-protected?%s",
				(unsigned)w->value, after);
	if (rw == -EIO || rw == -ENODEV || rw == -ENXIO ||
	    (rw && t->gateway && moves_line))
		return set_fail(t, dev->address, rw, pm_bus_last_fault(t->bus),
				"line settings (register 3) = 0x%04x not "
				"confirmed%s", (unsigned)w->value, after);
	if (t->gateway && moves_line) {
		printf("%s address %d: line settings (register 3): 0x%04x -> "
		       "0x%04x, confirmed by the module's answer (not read back: "
		       "set the gateway to %d baud %s, then powermeter info "
		       "--address %d)\n", dev->port, dev->address,
		       (unsigned)w->old, (unsigned)w->value, new_line.baud,
		       pm_line_framing(&new_line), new_address);
		return 0;
	}

	r = switch_line(t, &new_line);
	if (r == 0)
		r = pm_bus_read_registers(t->bus, new_address, dev->timeout,
					  REG_LINE, 1, &check);
	if (r == 0 && check == w->value) {
		printf("%s address %d: line settings (register 3): 0x%04x -> "
		       "0x%04x, confirmed at %s%s\n", dev->port, dev->address,
		       (unsigned)w->old, (unsigned)w->value, new_words,
		       rw ? " (its answer to the write was lost)" : "");
		return 0;
	}
	if (r == 0) {
		log_err("%s address %d: line settings (register 3): wrote 0x%04x, "
			"but it reads back 0x%04x at %s \u2014 the module did not "
			"keep it%s", dev->port, new_address, (unsigned)w->value,
			(unsigned)check, new_words, after);
		return 1;
	}
	if (!t->bus || r == -EIO || r == -ENODEV || r == -ENXIO)
		return set_fail(t, new_address, r, last_fault(t),
				"line settings (register 3) = 0x%04x: reading it "
				"back failed", (unsigned)w->value);
	if (rw == 0)
		return set_fail(t, new_address, r, pm_bus_last_fault(t->bus),
				"the module confirmed line settings (register 3) = "
				"0x%04x, but does not answer at %s; try "
				"powermeter scan --port %s --baud all --framing all",
				(unsigned)w->value, new_words, dev->port);
	/* no answer to the write: did it take? */
	r = switch_line(t, &dev->line);
	if (r == 0)
		r = pm_bus_read_registers(t->bus, dev->address, dev->timeout,
					  REG_LINE, 1, &check);
	if (r == 0 && check == w->old) {
		log_err("%s address %d: line settings (register 3) = 0x%04x not "
			"written: no answer to the write, and the module still "
			"answers at %s \u2014 check wiring A/B and noise, then "
			"try again%s", dev->port, dev->address, (unsigned)w->value,
			old_words, after);
		return 1;
	}
	return set_fail(t, dev->address, rw, NULL,
			"line settings (register 3) = 0x%04x not confirmed, and "
			"the module answers neither at %s nor at %s; try "
			"powermeter scan --port %s --baud all --framing all",
			(unsigned)w->value, old_words, new_words, dev->port);
}

static int run_set(const struct pm_device *dev, const struct wanted *want,
		   bool dry_run)
{
	struct target t = { .dev = dev, .line = dev->line,
			    .gateway = strstr(dev->port, "://") != NULL };
	struct pm_bus_fault fault = { 0 };
	struct reg_write writes[WRITES_MAX];
	uint16_t info[REG_INFO_COUNT], ct[CT_CHANNELS] = { 0 };
	struct pm_line line;
	size_t n, done = 0;
	int r, address, status = 1;

	r = pm_bus_open_fault(&t.bus, dev->port, &dev->line, &fault);
	if (r < 0)
		return open_fail(&t, r, &fault);
	r = pm_bus_read_registers(t.bus, dev->address, dev->timeout,
				  REG_INFO_FIRST, REG_INFO_COUNT, info);
	if (r < 0) {
		status = set_fail(&t, dev->address, r, pm_bus_last_fault(t.bus),
				  "nothing written");
		goto out;
	}
	/* Only an HDHK's register 3 is worth rewriting. */
	if (line_decode(info[REG_LINE], &address, &line) < 0 ||
	    address != dev->address) {
		log_err("%s address %d: register 3 reads 0x%04x, not an HDHK's "
			"line settings for this address \u2014 nothing written",
			dev->port, dev->address, (unsigned)info[REG_LINE]);
		goto out;
	}
	if (wants_ct(want)) {
		r = pm_bus_read_registers(t.bus, dev->address, dev->timeout,
					  REG_CT_RATIO, CT_CHANNELS, ct);
		if (r < 0) {
			status = set_fail(&t, dev->address, r,
					  pm_bus_last_fault(t.bus),
					  "nothing written");
			goto out;
		}
	}
	n = plan_writes(want, info, ct, writes);
	/* a new address or line must not land on another module's */
	if (n && writes[n - 1].reg == REG_LINE &&
	    writes[n - 1].value != writes[n - 1].old) {
		const struct reg_write *w = &writes[n - 1];
		char words[64];

		(void)line_decode(w->value, &address, &line);
		if (t.gateway)
			line = t.line;	/* the gateway's side stays as it is */
		r = address == dev->address && same_line(&line, &t.line) ? 0
		    : address_taken(&t, address, &line, w->old);
		if (r != 0) {
			if (r > 0)
				log_err("%s: something already answers at %s "
					"\u2014 nothing written", dev->port,
					line_words(w->value, words, sizeof(words)));
			else
				status = set_fail(&t, address, r, last_fault(&t),
						  "nothing written");
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct reg_write *w = &writes[i];
		char words[64];

		if (w->value == w->old && w->reg == REG_LINE)
			printf("%s address %d: %s (register 3) is 0x%04x "
			       "already, not written\n", dev->port, dev->address,
			       w->what, (unsigned)w->value);
		else if (w->value == w->old)
			printf("%s address %d: %s (register %u) is %u already, "
			       "not written\n", dev->port, dev->address, w->what,
			       (unsigned)w->reg, field(w, w->value));
		else if (dry_run && w->reg == REG_LINE)
			printf("%s address %d: would write %s (register 3): "
			       "0x%04x -> 0x%04x (%s); the module then answers "
			       "there only\n", dev->port, dev->address, w->what,
			       (unsigned)w->old, (unsigned)w->value,
			       line_words(w->value, words, sizeof(words)));
		else if (dry_run)
			printf("%s address %d: would write %s (register %u): "
			       "%u -> %u\n", dev->port, dev->address, w->what,
			       (unsigned)w->reg, field(w, w->old),
			       field(w, w->value));
		else {
			fflush(stdout);
			r = w->reg == REG_LINE ? write_line(&t, w, done)
					       : write_checked(&t, w, done);
			if (r) {
				status = r;
				goto out;
			}
			done++;
		}
	}
	status = fflush(stdout) == 0 ? 0 : EX_IOERR;
out:
	pm_bus_close(t.bus);
	return status;
}

int cmd_set(int argc, char **argv)
{
	static const struct option options[] = {
		CLI_MODULE_OPTIONS,
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct wanted want = { .framing = -1, .threshold = -1, .freq_div = -1 };
	struct pm_device dev;
	bool dry_run = false;
	int c, r;

	for (int i = 0; i < CT_CHANNELS; i++)
		want.ct[i] = -1;
	cli_module_init(&dev);
	optind = 0;
	while ((c = getopt_long(argc, argv, CLI_MODULE_SHORTOPTS "nh",
				options, NULL)) != -1) {
		r = cli_module_option(c, optarg, &dev);
		if (r < 0)
			return EX_USAGE;
		if (r > 0)
			continue;
		switch (c) {
		case 'n':
			dry_run = true;
			break;
		case 'h':
			set_usage(stdout);
			return 0;
		default:
			set_usage(stderr);
			return EX_USAGE;
		}
	}
	if (!dev.port || optind == argc) {
		set_usage(stderr);
		return EX_USAGE;
	}
	/* every value checked before anything is sent */
	for (int i = optind; i < argc; i++)
		if (parse_setting(argv[i], &want) < 0)
			return EX_USAGE;
	return run_set(&dev, &want, dry_run);
}
