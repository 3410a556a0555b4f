/* module.c — one simulated HDHK module: its register file (datasheet
 * registers 0..55), reads, writes, and the line settings of register 3. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>

#include "device/hdhk.h"
#include "device/line.h"
#include "sim.h"

/* Register 3's codes are the HDHK driver's (device/hdhk.h), its framings
 * the module's (device/line.h). */
int sim_baud_code(int baud)
{
	return pm_hdhk_baud_code(baud);
}

int sim_baud_from_code(int code)
{
	return pm_hdhk_baud_from_code(code);
}

int sim_framing_parse(const char *s)
{
	for (size_t i = 0; i < pm_line_n_framings; i++)
		if (strcasecmp(s, pm_line_framings[i]) == 0)
			return (int)i;
	return -EINVAL;
}

const char *sim_framing_name(enum sim_framing f)
{
	return pm_line_framings[f & 3];
}

/* One character on the wire: start bit, 8 data bits, parity, stop bits. */
int64_t sim_char_ns(const struct sim_line *line)
{
	int bits = 1 + 8 + (line->framing == SIM_E81 || line->framing == SIM_O81 ? 1 : 0) +
		   (line->framing == SIM_N82 ? 2 : 1);

	return (int64_t)bits * 1000000000 / line->baud;
}

int sim_default_raw(int address, int channel)
{
	/* distinct per module and channel; wraps above address 65 */
	return (address * 1000 + (channel + 1) * 10) & 0xFFFF;
}

void sim_gen_const(struct sim_gen *g, int value)
{
	memset(g, 0, sizeof(*g));
	g->kind = SIM_GEN_CONST;
	g->value = value;
}

/* Releases what g owns; g is the constant 0 afterwards. */
void sim_gen_clear(struct sim_gen *g)
{
	if (g->kind == SIM_GEN_PROFILE)
		free(g->profile);
	sim_gen_const(g, 0);
}

/* dst (whatever it held is not released) becomes a copy of src with its own
 * profile. Returns 0 or -ENOMEM (dst is then the constant 0). */
int sim_gen_copy(struct sim_gen *dst, const struct sim_gen *src)
{
	size_t size;

	*dst = *src;
	if (src->kind != SIM_GEN_PROFILE)
		return 0;
	size = sizeof(*src->profile) + src->profile->n * sizeof(src->profile->points[0]);
	dst->profile = malloc(size);
	if (!dst->profile) {
		sim_gen_const(dst, 0);
		return -ENOMEM;
	}
	memcpy(dst->profile, src->profile, size);
	return 0;
}

/* The profile at x seconds after its start, points sorted by time: the
 * first value before the first point, the last after the last, linear in
 * between; at a step (points sharing a time) the last of them counts. */
static double profile_at(const struct sim_profile *p, double x)
{
	const struct sim_point *a, *b;
	size_t lo = 0, hi = p->n;

	/* lo = how many points have t <= x */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->points[mid].t <= x)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return p->points[0].raw;
	if (lo == p->n)
		return p->points[p->n - 1].raw;
	a = &p->points[lo - 1];
	b = &p->points[lo];	/* b->t > x >= a->t */
	return a->raw + (b->raw - a->raw) * (x - a->t) / (b->t - a->t);
}

/* A profile's exact (unrounded) value at Unix time unix_s. Repeating, it
 * runs from the first point's time to the last's and starts over. */
double sim_profile_value(const struct sim_profile *p, double unix_s)
{
	double x = unix_s - p->start, t0 = p->points[0].t;
	double period = p->points[p->n - 1].t - t0;

	if (p->repeat && period > 0 && x >= t0) {
		x = t0 + fmod(x - t0, period);
		if (x >= t0 + period)	/* rounding of fmod */
			x = t0;
	}
	return profile_at(p, x);
}

static uint16_t clamp_reg(double v)
{
	if (v < 0)
		return 0;
	if (v > 65535)
		return 65535;
	return (uint16_t)lround(v);
}

/* The channel's value at t_s seconds after the simulator started (sine)
 * or at Unix time unix_s (profile); a walk moves one step per read of its
 * register ('advance'). */
uint16_t sim_gen_value(struct sim_gen *g, double t_s, double unix_s, bool advance)
{
	switch (g->kind) {
	case SIM_GEN_PROFILE:
		return clamp_reg(sim_profile_value(g->profile, unix_s));
	case SIM_GEN_SINE:
		return clamp_reg(g->mean + g->amplitude * sin(2 * M_PI * t_s / g->period));
	case SIM_GEN_WALK:
		if (advance && g->step > 0) {
			long span = 2L * g->step + 1;
			long delta = (long)(sim_rand(&g->rng) % (uint64_t)span) - g->step;
			long v = g->value + delta;

			g->value = (int)(v < g->min ? g->min : v > g->max ? g->max : v);
		}
		return (uint16_t)g->value;
	case SIM_GEN_CONST:
	default:
		return (uint16_t)g->value;
	}
}

static uint16_t line_reg_value(int address, const struct sim_line *line)
{
	int code = sim_baud_code(line->baud);

	if (code < 0)
		code = 0;
	return (uint16_t)(((int)line->framing << 12) | (code << 8) | (address & 0xFF));
}

void sim_module_init(struct sim_module *m, int address, const struct sim_line *line)
{
	memset(m, 0, sizeof(*m));
	m->line_reg = line_reg_value(address, line);
	m->pending_line = -1;
	m->version = HDHK_DEFAULT_VERSION;
	m->range_ah = HDHK_DEFAULT_RANGE;
	m->range_ip = HDHK_DEFAULT_RANGE;
	m->date = HDHK_DEFAULT_DATE;
	m->division = HDHK_DEFAULT_DIVISION;
	m->selection = HDHK_DEFAULT_SELECTION;
	for (int i = 0; i < HDHK_NCHANNELS; i++) {
		sim_gen_const(&m->current[i], sim_default_raw(address, i));
		sim_gen_const(&m->frequency[i], HDHK_DEFAULT_FREQUENCY);
		m->ratio[i] = HDHK_DEFAULT_RATIO;
	}
}

/* Releases what the module's generators own. */
void sim_module_free(struct sim_module *m)
{
	for (int i = 0; i < HDHK_NCHANNELS; i++) {
		sim_gen_clear(&m->current[i]);
		sim_gen_clear(&m->frequency[i]);
	}
}

int sim_module_address(const struct sim_module *m)
{
	return m->line_reg & 0xFF;
}

void sim_module_line(const struct sim_module *m, struct sim_line *line)
{
	line->baud = sim_baud_from_code((m->line_reg >> 8) & 0x0F);
	line->framing = (enum sim_framing)((m->line_reg >> 12) & 0x0F);
}

static uint16_t module_reg(struct sim_module *m, int reg, double t_s, double unix_s)
{
	switch (reg) {
	case HDHK_REG_VERSION:	return m->version;
	case HDHK_REG_RANGE_AH:	return m->range_ah;
	case HDHK_REG_RANGE_IP:	return m->range_ip;
	case HDHK_REG_LINE:	return m->line_reg;
	case HDHK_REG_DATE:	return m->date;
	case HDHK_REG_RESERVED:	return m->reserved;
	case HDHK_REG_DIVISION:	return m->division;
	case HDHK_REG_SELECTION: return m->selection;
	default:
		break;
	}
	if (reg < HDHK_REG_FREQUENCY)
		return sim_gen_value(&m->current[reg - HDHK_REG_CURRENT], t_s, unix_s, true);
	if (reg < HDHK_REG_RATIO)
		return sim_gen_value(&m->frequency[reg - HDHK_REG_FREQUENCY], t_s, unix_s, true);
	return m->ratio[reg - HDHK_REG_RATIO];
}

/* FC 0x03 at t_s seconds after the simulator started, Unix time unix_s.
 * Returns 0 or the Modbus exception code. */
int sim_module_read(struct sim_module *m, int start, int count, uint16_t *out, double t_s,
		    double unix_s)
{
	if (count < 1 || count > MB_MAX_READ)
		return MB_EX_ILLEGAL_VALUE;
	if (start < 0 || start + count > HDHK_NREGS)
		return MB_EX_ILLEGAL_ADDRESS;
	for (int i = 0; i < count; i++)
		out[i] = module_reg(m, start + i, t_s, unix_s);
	return 0;
}

static bool reg_writable(int reg)
{
	/* datasheet: 3 (line settings), 6, 7 and the CT ratios 40..55 */
	return reg == HDHK_REG_LINE || reg == HDHK_REG_DIVISION || reg == HDHK_REG_SELECTION ||
	       (reg >= HDHK_REG_RATIO && reg < HDHK_NREGS);
}

static bool reg_value_ok(int reg, uint16_t v)
{
	if (reg == HDHK_REG_LINE)
		return (v & 0xFF) != MB_BROADCAST && sim_baud_from_code((v >> 8) & 0x0F) > 0 &&
		       (v >> 12) <= SIM_N82;
	if (reg == HDHK_REG_DIVISION)
		return v >= 1 && v <= 5;
	return true;
}

/*
 * FC 0x06 / 0x10: all registers or none. A new register 3 takes effect
 * after the answer went out with the old settings ('defer_line').
 * Returns 0 or the Modbus exception code.
 */
int sim_module_write(struct sim_module *m, int start, int count, const uint16_t *values,
		     bool defer_line)
{
	if (count < 1 || count > MB_MAX_WRITE)
		return MB_EX_ILLEGAL_VALUE;
	for (int i = 0; i < count; i++)
		if (!reg_writable(start + i))
			return MB_EX_ILLEGAL_ADDRESS;
	for (int i = 0; i < count; i++)
		if (!reg_value_ok(start + i, values[i]))
			return MB_EX_ILLEGAL_VALUE;
	for (int i = 0; i < count; i++) {
		int reg = start + i;

		if (reg == HDHK_REG_LINE) {
			if (defer_line)
				m->pending_line = values[i];
			else
				m->line_reg = values[i];
		} else if (reg == HDHK_REG_DIVISION) {
			m->division = values[i];
		} else if (reg == HDHK_REG_SELECTION) {
			m->selection = values[i];
		} else {
			m->ratio[reg - HDHK_REG_RATIO] = values[i];
		}
	}
	return 0;
}

void sim_module_apply_pending(struct sim_module *m)
{
	if (m->pending_line >= 0)
		m->line_reg = (uint16_t)m->pending_line;
	m->pending_line = -1;
}

/* The control socket's 'setreg': any register, currents and frequencies
 * become constants. */
int sim_module_setreg(struct sim_module *m, int reg, int value)
{
	if (reg < 0 || reg >= HDHK_NREGS || value < 0 || value > 0xFFFF)
		return -EINVAL;
	switch (reg) {
	case HDHK_REG_VERSION:	m->version = (uint16_t)value; return 0;
	case HDHK_REG_RANGE_AH:	m->range_ah = (uint16_t)value; return 0;
	case HDHK_REG_RANGE_IP:	m->range_ip = (uint16_t)value; return 0;
	case HDHK_REG_LINE:
		if (!reg_value_ok(reg, (uint16_t)value))
			return -EINVAL;
		m->line_reg = (uint16_t)value;
		return 0;
	case HDHK_REG_DATE:	m->date = (uint16_t)value; return 0;
	case HDHK_REG_RESERVED:	m->reserved = (uint16_t)value; return 0;
	case HDHK_REG_DIVISION:	m->division = (uint16_t)value; return 0;
	case HDHK_REG_SELECTION: m->selection = (uint16_t)value; return 0;
	default:
		break;
	}
	if (reg < HDHK_REG_FREQUENCY) {
		sim_gen_clear(&m->current[reg - HDHK_REG_CURRENT]);
		sim_gen_const(&m->current[reg - HDHK_REG_CURRENT], value);
	} else if (reg < HDHK_REG_RATIO) {
		sim_gen_clear(&m->frequency[reg - HDHK_REG_FREQUENCY]);
		sim_gen_const(&m->frequency[reg - HDHK_REG_FREQUENCY], value);
	} else {
		m->ratio[reg - HDHK_REG_RATIO] = (uint16_t)value;
	}
	return 0;
}
