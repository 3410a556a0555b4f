/* hdhk.c — the HDHK 16-channel AC current acquisition module
 * (HDXXAXXXA160K): its register map and the decoding of its info registers.
 * Register numbers and meanings cite the vendor's datasheet (2020). */
#include <errno.h>
#include <stdint.h>

#include "device/driver.h"
#include "device/hdhk.h"
#include "device/line.h"
#include "util/buf.h"

/* Datasheet register map: 56 holding registers, 0x0000..0x0037. */
#define HDHK_REGISTERS		56
#define HDHK_CHANNELS		16	/* channels A..P */
#define HDHK_REG_VERSION	0	/* 628 = V6.2.8 */
#define HDHK_REG_RANGE_AH	1	/* amperes, channels A..H */
#define HDHK_REG_RANGE_IP	2	/* amperes, channels I..P */
#define HDHK_REG_LINE		3	/* line settings and address */
#define HDHK_REG_DATE		4	/* year << 8 | month */
#define HDHK_REG_FREQ_DIV	6	/* frequency division coefficient 1..5 */
#define HDHK_REG_THRESHOLD	7	/* threshold << 8 | frequency selection */
#define HDHK_REG_CURRENT	8	/* 8..23: channel A..P, 0.01 A */
#define HDHK_REG_FREQUENCY	24	/* 24..39: channel A..P, 0.1 Hz */
#define HDHK_REG_CT_RATIO	40	/* 40..55: channel A..P CT ratio */

/* Register 3: high byte the line settings (below), low byte the address. */
#define HDHK_LINE_ADDRESS_MASK	0x00ff

#define HDHK_FREQ_DIV_MIN	1
#define HDHK_FREQ_DIV_MAX	5

/* Register 3, high byte, low nibble: the baud rate code. */
static const int hdhk_baud_codes[] = {
	9600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200,
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

int pm_hdhk_baud_code(int baud)
{
	for (size_t i = 0; i < ARRAY_SIZE(hdhk_baud_codes); i++)
		if (hdhk_baud_codes[i] == baud)
			return (int)i;
	return -EINVAL;
}

int pm_hdhk_baud_from_code(int code)
{
	if (code < 0 || code >= (int)ARRAY_SIZE(hdhk_baud_codes))
		return -EINVAL;
	return hdhk_baud_codes[code];
}

/* Register 0: the version as decimal digits, 628 = 6.2.8. */
static int hdhk_decode_version(const uint16_t *regs, struct pm_buf *out)
{
	unsigned v = regs[0];

	return pm_buf_printf(out, "%u.%u.%u (%u)", v / 100, v / 10 % 10,
			     v % 10, v);
}

/* Registers 1 and 2: current range of a group of eight channels. */
static int hdhk_decode_range(const uint16_t *regs, struct pm_buf *out)
{
	return pm_buf_printf(out, "%u A", (unsigned)regs[0]);
}

/* Register 3 into line settings and address. 0 or -EINVAL for a code the
 * datasheet does not define (the outputs are then untouched). */
static int hdhk_decode_line(uint16_t reg, int *baud, const char **framing,
			    int *address)
{
	unsigned baud_code = (reg >> 8) & 0x0f;
	unsigned framing_code = (reg >> 12) & 0x0f;

	if (baud_code >= ARRAY_SIZE(hdhk_baud_codes) ||
	    framing_code >= pm_line_n_framings)
		return -EINVAL;
	*baud = hdhk_baud_codes[baud_code];
	/* Register 3, high byte, high nibble: the framing code, in the
	 * order of pm_line_framings. */
	*framing = pm_line_framings[framing_code];
	*address = reg & HDHK_LINE_ADDRESS_MASK;
	return 0;
}

static int hdhk_decode_line_text(const uint16_t *regs, struct pm_buf *out)
{
	const char *framing;
	int baud, address;

	if (hdhk_decode_line(regs[0], &baud, &framing, &address) < 0)
		return pm_buf_printf(out,
				     "unknown codes (baud %u, framing %u) in 0x%04x",
				     (unsigned)(regs[0] >> 8) & 0x0f,
				     (unsigned)(regs[0] >> 12) & 0x0f,
				     (unsigned)regs[0]);
	return pm_buf_printf(out, "%d baud %s (0x%04x)", baud, framing,
			     (unsigned)regs[0]);
}

static int hdhk_decode_address(const uint16_t *regs, struct pm_buf *out)
{
	unsigned address = regs[0] & HDHK_LINE_ADDRESS_MASK;

	if (address == 0)
		return pm_buf_adds(out, "0 (broadcast)");
	return pm_buf_printf(out, "%u", address);
}

/* Register 4: high byte the year after 2000, low byte the month. */
static int hdhk_decode_date(const uint16_t *regs, struct pm_buf *out)
{
	unsigned year = regs[0] >> 8, month = regs[0] & 0xff;

	if (month < 1 || month > 12)
		return pm_buf_printf(out, "unknown (0x%04x)", (unsigned)regs[0]);
	return pm_buf_printf(out, "%u-%02u", 2000 + year, month);
}

static int hdhk_decode_freq_div(const uint16_t *regs, struct pm_buf *out)
{
	unsigned v = regs[0];

	if (v < HDHK_FREQ_DIV_MIN || v > HDHK_FREQ_DIV_MAX)
		return pm_buf_printf(out, "%u (outside %d..%d)", v,
				     HDHK_FREQ_DIV_MIN, HDHK_FREQ_DIV_MAX);
	return pm_buf_printf(out, "%u", v);
}

/* Register 7, high byte: a raw result below it reads as 0. */
static int hdhk_decode_threshold(const uint16_t *regs, struct pm_buf *out)
{
	return pm_buf_printf(out, "%u", (unsigned)regs[0] >> 8);
}

/* Register 7, low byte: actual coefficient = 1 + value / 10. */
static int hdhk_decode_freq_sel(const uint16_t *regs, struct pm_buf *out)
{
	unsigned v = regs[0] & 0xff;

	return pm_buf_printf(out, "%u (actual %u.%u)", v, 1 + v / 10, v % 10);
}

/* Registers 40..55: one CT ratio per channel, 8 per field. */
static int hdhk_decode_ratios(const uint16_t *regs, char first_letter,
			      struct pm_buf *out)
{
	size_t len = out->len;
	int r = 0;

	for (unsigned i = 0; i < 8 && r == 0; i++)
		r = pm_buf_printf(out, "%s%c=%u", i ? " " : "",
				  first_letter + (char)i, (unsigned)regs[i]);
	if (r < 0)
		pm_buf_truncate(out, out->len - len);
	return r;
}

static int hdhk_decode_ratios_ah(const uint16_t *regs, struct pm_buf *out)
{
	return hdhk_decode_ratios(regs, 'A', out);
}

static int hdhk_decode_ratios_ip(const uint16_t *regs, struct pm_buf *out)
{
	return hdhk_decode_ratios(regs, 'I', out);
}

static const struct pm_register_block hdhk_info_blocks[] = {
	{ .first = HDHK_REG_VERSION, .count = 8 },	/* 0..7 */
	{ .first = HDHK_REG_CT_RATIO, .count = HDHK_CHANNELS },	/* 40..55 */
};

static const struct pm_info_field hdhk_info_fields[] = {
	{ "version", HDHK_REG_VERSION, 1, hdhk_decode_version },
	{ "range A-H", HDHK_REG_RANGE_AH, 1, hdhk_decode_range },
	{ "range I-P", HDHK_REG_RANGE_IP, 1, hdhk_decode_range },
	{ "line settings", HDHK_REG_LINE, 1, hdhk_decode_line_text },
	{ "address", HDHK_REG_LINE, 1, hdhk_decode_address },
	{ "factory date", HDHK_REG_DATE, 1, hdhk_decode_date },
	{ "frequency division", HDHK_REG_FREQ_DIV, 1, hdhk_decode_freq_div },
	{ "frequency selection", HDHK_REG_THRESHOLD, 1, hdhk_decode_freq_sel },
	{ "threshold", HDHK_REG_THRESHOLD, 1, hdhk_decode_threshold },
	{ "CT ratios A-H", HDHK_REG_CT_RATIO, 8, hdhk_decode_ratios_ah },
	{ "CT ratios I-P", HDHK_REG_CT_RATIO + 8, 8, hdhk_decode_ratios_ip },
};

const struct pm_driver pm_driver_hdhk = {
	.model = "hdhk",
	.description = "HDHK 16-channel AC current module",
	.channels = HDHK_CHANNELS,
	.n_registers = HDHK_REGISTERS,
	.current = {
		.first = HDHK_REG_CURRENT,
		.count = HDHK_CHANNELS,
		.unit = 0.01,
		.unit_name = "A",
	},
	.frequency = {
		.first = HDHK_REG_FREQUENCY,
		.count = HDHK_CHANNELS,
		.unit = 0.1,
		.unit_name = "Hz",
	},
	.info_blocks = hdhk_info_blocks,
	.n_info_blocks = ARRAY_SIZE(hdhk_info_blocks),
	.info_fields = hdhk_info_fields,
	.n_info_fields = ARRAY_SIZE(hdhk_info_fields),
	.address_register = HDHK_REG_LINE,
	.address_mask = HDHK_LINE_ADDRESS_MASK,
};
