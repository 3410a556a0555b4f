/* bus.c — one serial port and the Modbus RTU transactions on it: the port
 * lock, a libmodbus RTU context, the inter-frame silence, and telling every
 * kind of bad answer apart so that none ever becomes a value. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <modbus.h>

#include "bus.h"
#include "driver.h"
#include "portlock.h"
#include "timeutil.h"

/* Modbus over serial line v1.02, 2.5.1.1: frames are separated by at least
 * 3.5 character times; above 19200 baud a fixed 1.750 ms is recommended. */
#define RTU_SILENCE_CHARS	3.5
#define RTU_SILENCE_FAST_NS	1750000
#define RTU_FAST_BAUD		19200

/* Modbus application protocol v1.1b3, 6.3 (read holding registers) and 7
 * (exception responses); RTU adds the address in front and CRC-16 after. */
#define FC_READ_HOLDING		0x03
#define FC_EXCEPTION		0x80
#define RTU_ADU_MAX		256

/* How long libmodbus waits between two chunks of one answer before calling
 * it short: USB converters hand bytes over in bursts every 1..16 ms. */
#define BYTE_TIMEOUT_NS		100000000
#define BYTE_TIMEOUT_CHARS	16

/* A late answer to an unanswered request has that request's length. After
 * a request goes unanswered, the next ones to the same unit ask for up to
 * STALE_SHAPES - 1 extra registers, so an answer of the wrong length is
 * recognised as stale and discarded. */
#define STALE_SHAPES		8

#define NS_PER_SEC		1000000000LL

struct pm_bus {
	char *port;
	int lock_fd;
	modbus_t *ctx;
	struct pm_line line;
	int64_t char_ns;	/* one character on the wire */
	int64_t silence_ns;	/* the gap required between frames */
	int64_t quiet_at_ns;	/* no frame may start before this instant */
	bool broken;
	uint8_t stale[PM_ADDRESS_MAX + 1];	/* per unit: extra registers */
	struct pm_bus_fault fault;
};

static const int supported_bauds[] = {
	1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200,
};

static bool line_valid(const struct pm_line *line)
{
	bool baud_ok = false;

	for (size_t i = 0; i < sizeof(supported_bauds) / sizeof(int); i++)
		if (line->baud == supported_bauds[i])
			baud_ok = true;
	return baud_ok && (line->parity == 'N' || line->parity == 'E' ||
			   line->parity == 'O') &&
	       line->data_bits >= 7 && line->data_bits <= 8 &&
	       (line->stop_bits == 1 || line->stop_bits == 2);
}

static void bus_set_timing(struct pm_bus *bus, const struct pm_line *line)
{
	int bits = 1 + line->data_bits + (line->parity != 'N') +
		   line->stop_bits;

	bus->line = *line;
	bus->char_ns = (int64_t)bits * NS_PER_SEC / line->baud;
	if (line->baud > RTU_FAST_BAUD)
		bus->silence_ns = RTU_SILENCE_FAST_NS;
	else
		bus->silence_ns = (int64_t)(RTU_SILENCE_CHARS * (double)bus->char_ns);
}

static void set_modbus_timeout(modbus_t *ctx, int64_t ns, bool byte)
{
	uint32_t sec, usec;

	if (ns < 1000)
		ns = 1000;	/* libmodbus refuses 0 s 0 us */
	sec = (uint32_t)(ns / NS_PER_SEC);
	usec = (uint32_t)(ns % NS_PER_SEC / 1000);
	if (byte)
		(void)modbus_set_byte_timeout(ctx, sec, usec);
	else
		(void)modbus_set_response_timeout(ctx, sec, usec);
}

static int bus_fail(struct pm_bus *bus, int err)
{
	bus->fault.err = err;
	if (err == -EIO || err == -ENODEV)
		bus->broken = true;
	return err;
}

/* errno after a failed libmodbus call into our codes. */
static int map_modbus_errno(int e)
{
	switch (e) {
	case ETIMEDOUT:
		return -ETIMEDOUT;
	case EMBBADCRC:
		return -PM_ECRC;
	case EMBBADDATA:
	case EMBMDATA:
	case EMBUNKEXC:
	case EMBBADEXC:
		return -PM_EFRAME;
	case EMBBADSLAVE:
		return -PM_EUNIT;
	case ENODEV:
		return -ENODEV;
	case ECONNRESET:	/* read() returned 0: the other end hung up */
	case EIO:
	case ENXIO:
	case EBADF:
	case EPIPE:
		return -EIO;
	default:
		if (e > MODBUS_ENOBASE && e <= EMBXGTAR)
			return -PM_EEXCEPTION;
		return e > 0 ? -e : -EIO;
	}
}

int pm_bus_open_fault(struct pm_bus **busp, const char *port,
		      const struct pm_line *line, struct pm_bus_fault *fault)
{
	struct pm_bus *bus;
	pid_t holder = 0;
	int r;

	if (!port || !*port || !line_valid(line)) {
		r = -EINVAL;
		goto fail_early;
	}
	bus = calloc(1, sizeof(*bus));
	if (!bus) {
		r = -ENOMEM;
		goto fail_early;
	}
	bus->lock_fd = -1;
	bus_set_timing(bus, line);
	bus->port = strdup(port);
	if (!bus->port) {
		r = -ENOMEM;
		goto fail;
	}
	r = pm_portlock_acquire(port, &bus->lock_fd, &holder);
	if (r < 0)
		goto fail;
	bus->ctx = modbus_new_rtu(port, line->baud, line->parity,
				  line->data_bits, line->stop_bits);
	if (!bus->ctx) {
		r = errno ? -errno : -ENOMEM;
		goto fail;
	}
	(void)modbus_set_debug(bus->ctx, 0);	/* debug prints to stdout */
	(void)modbus_set_error_recovery(bus->ctx, MODBUS_ERROR_RECOVERY_NONE);
	{
		int64_t byte_ns = BYTE_TIMEOUT_NS +
				  BYTE_TIMEOUT_CHARS * bus->char_ns;

		set_modbus_timeout(bus->ctx, byte_ns, true);
	}
	if (modbus_connect(bus->ctx) < 0) {
		r = errno ? -errno : -EIO;
		modbus_free(bus->ctx);
		bus->ctx = NULL;
		goto fail;
	}
	/* Only now: libmodbus has opened its own fd, which TIOCEXCL would
	 * have refused (for an unprivileged user). Best effort — the flock
	 * already keeps every powermeter process out. */
	(void)pm_portlock_exclusive(modbus_get_socket(bus->ctx));
	*busp = bus;
	return 0;

fail:
	pm_portlock_release(bus->lock_fd);
	free(bus->port);
	free(bus);
fail_early:
	if (fault) {
		memset(fault, 0, sizeof(*fault));
		fault->err = r;
		fault->holder = holder;
	}
	return r;
}

int pm_bus_open(struct pm_bus **bus, const char *port,
		const struct pm_line *line)
{
	return pm_bus_open_fault(bus, port, line, NULL);
}

void pm_bus_close(struct pm_bus *bus)
{
	if (!bus)
		return;
	if (bus->ctx) {
		int fd = modbus_get_socket(bus->ctx);

		if (fd >= 0)
			(void)pm_portlock_shared(fd);
		modbus_close(bus->ctx);
		modbus_free(bus->ctx);
	}
	pm_portlock_release(bus->lock_fd);
	free(bus->port);
	free(bus);
}

const char *pm_bus_port(const struct pm_bus *bus)
{
	return bus->port;
}

bool pm_bus_broken(const struct pm_bus *bus)
{
	return bus->broken;
}

const struct pm_bus_fault *pm_bus_last_fault(const struct pm_bus *bus)
{
	return &bus->fault;
}

/* Devices sharing a port normally share its settings; if one does not,
 * the line is switched for it (the other devices then ignore the frames). */
static int bus_use_line(struct pm_bus *bus, const struct pm_line *line)
{
	static const struct { int baud; speed_t speed; } speeds[] = {
		{ 1200, B1200 }, { 2400, B2400 }, { 4800, B4800 },
		{ 9600, B9600 }, { 19200, B19200 }, { 38400, B38400 },
		{ 57600, B57600 }, { 115200, B115200 },
	};
	struct termios tio;
	speed_t speed = 0;
	int fd = modbus_get_socket(bus->ctx);

	if (line->baud == bus->line.baud && line->parity == bus->line.parity &&
	    line->data_bits == bus->line.data_bits &&
	    line->stop_bits == bus->line.stop_bits)
		return 0;
	if (!line_valid(line))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(speeds) / sizeof(speeds[0]); i++)
		if (speeds[i].baud == line->baud)
			speed = speeds[i].speed;
	if (tcgetattr(fd, &tio) < 0)
		return -errno;
	(void)cfsetispeed(&tio, speed);
	(void)cfsetospeed(&tio, speed);
	tio.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | PARODD | CSTOPB);
	tio.c_cflag |= line->data_bits == 7 ? CS7 : CS8;
	if (line->parity != 'N')
		tio.c_cflag |= PARENB;
	if (line->parity == 'O')
		tio.c_cflag |= PARODD;
	if (line->stop_bits == 2)
		tio.c_cflag |= CSTOPB;
	if (tcsetattr(fd, TCSANOW, &tio) < 0)
		return -errno;
	bus_set_timing(bus, line);
	return 0;
}

/* Modbus over serial line v1.02, 6.2.2: CRC-16, polynomial 0xA001
 * (reflected 0x8005), initial value 0xFFFF, low byte sent first. */
static uint16_t rtu_crc16(const uint8_t *p, size_t n)
{
	uint16_t crc = 0xffff;

	while (n--) {
		crc ^= *p++;
		for (int bit = 0; bit < 8; bit++)
			crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xa001)
					: (uint16_t)(crc >> 1);
	}
	return crc;
}

static bool rtu_crc_ok(const uint8_t *frame, size_t len)
{
	uint16_t crc;

	if (len < 4)
		return false;
	crc = rtu_crc16(frame, len - 2);
	return frame[len - 2] == (crc & 0xff) && frame[len - 1] == (crc >> 8);
}

/* An answer libmodbus did not check because it names another unit: its
 * length from its own header, then its CRC. A frame that passes names the
 * unit that really answered; anything else is noise. */
static int foreign_answer(struct pm_bus *bus, const uint8_t *rsp)
{
	size_t len;

	if (rsp[1] == FC_READ_HOLDING)
		len = 3 + (size_t)rsp[2] + 2;
	else if (rsp[1] & FC_EXCEPTION)
		len = 5;
	else
		return -PM_EFRAME;
	if (len > RTU_ADU_MAX || !rtu_crc_ok(rsp, len))
		return -PM_EFRAME;
	bus->fault.from_address = rsp[0];
	return -PM_EUNIT;
}

/* What every request does first: clears the last fault, checks the unit id
 * and timeout, drops stale input and keeps the inter-frame silence. 0 or
 * the failure (recorded). */
static int bus_begin(struct pm_bus *bus, int address, double timeout)
{
	memset(&bus->fault, 0, sizeof(bus->fault));
	if (bus->broken)
		return bus_fail(bus, -EIO);
	if (address < PM_ADDRESS_MIN || address > PM_ADDRESS_MAX ||
	    !(timeout > 0))
		return bus_fail(bus, -EINVAL);
	if (modbus_set_slave(bus->ctx, address) < 0)
		return bus_fail(bus, -EINVAL);

	/* A late answer that arrived since is not for this request. */
	(void)modbus_flush(bus->ctx);
	if (pm_mono_ns() < bus->quiet_at_ns)
		pm_sleep_until_ns(bus->quiet_at_ns);
	return 0;
}

/* One FC 0x03 transaction: 'count' registers from 'first', of which the
 * caller wants the first 'want'. */
static int bus_transact(struct pm_bus *bus, int address, double timeout,
			unsigned first, unsigned count, unsigned want,
			uint16_t *regs)
{
	uint8_t req[6], rsp[RTU_ADU_MAX];
	int64_t deadline, now;
	bool saw_stale = false;
	int r;

	if (count < 1 || count > PM_MODBUS_MAX_READ) {
		memset(&bus->fault, 0, sizeof(bus->fault));
		return bus_fail(bus, -EINVAL);
	}
	r = bus_begin(bus, address, timeout);
	if (r < 0)
		return r;

	req[0] = (uint8_t)address;
	req[1] = FC_READ_HOLDING;
	req[2] = (uint8_t)(first >> 8);
	req[3] = (uint8_t)first;
	req[4] = (uint8_t)(count >> 8);
	req[5] = (uint8_t)count;
	if (modbus_send_raw_request(bus->ctx, req, sizeof(req)) < 0)
		return bus_fail(bus, map_modbus_errno(errno));

	deadline = pm_mono_ns() + (int64_t)(timeout * (double)NS_PER_SEC);
	for (;;) {
		now = pm_mono_ns();
		if (now >= deadline) {
			r = saw_stale ? -PM_EFRAME : -ETIMEDOUT;
			break;
		}
		set_modbus_timeout(bus->ctx, deadline - now, false);
		/* A zero first byte is never a unit's answer: bytes that came
		 * in show up as nonzero address or function. */
		rsp[0] = rsp[1] = 0;
		r = modbus_receive_confirmation(bus->ctx, rsp);
		bus->quiet_at_ns = pm_mono_ns() + bus->silence_ns;
		if (r < 0) {
			int e = errno;

			if (e == ETIMEDOUT && (rsp[0] || rsp[1] || saw_stale))
				r = -PM_EFRAME;	/* an answer cut short */
			else
				r = map_modbus_errno(e);
			if (r == -PM_EEXCEPTION)
				bus->fault.exception = e - MODBUS_ENOBASE;
			break;
		}
		if (r == 0 || rsp[0] != address) {
			r = foreign_answer(bus, rsp);
			break;
		}
		if (rsp[1] == (FC_READ_HOLDING | FC_EXCEPTION)) {
			bus->fault.exception = rsp[2];
			r = -PM_EEXCEPTION;
			break;
		}
		if (rsp[1] != FC_READ_HOLDING) {
			r = -PM_EFRAME;
			break;
		}
		if (rsp[2] != 2 * count || (size_t)r != 3 + 2 * count + 2) {
			/* valid CRC, our unit, another length: the answer to
			 * an earlier request; keep waiting for ours */
			saw_stale = true;
			continue;
		}
		for (unsigned i = 0; i < want; i++)
			regs[i] = (uint16_t)(rsp[3 + 2 * i] << 8 | rsp[4 + 2 * i]);
		return 0;
	}
	if (r == -ETIMEDOUT || r == -PM_EFRAME)
		bus->stale[address] = (uint8_t)((bus->stale[address] + 1) %
						STALE_SHAPES);
	return bus_fail(bus, r);
}

int pm_bus_read_registers(struct pm_bus *bus, int address, double timeout,
			  unsigned first, unsigned count, uint16_t *regs)
{
	uint16_t tmp[PM_MODBUS_MAX_READ];
	int r;

	if (count > PM_MODBUS_MAX_READ)
		return bus_fail(bus, -EINVAL);
	r = bus_transact(bus, address, timeout, first, count, count, tmp);
	if (r == 0)
		memcpy(regs, tmp, count * sizeof(*regs));
	return r;
}

int pm_bus_write_register(struct pm_bus *bus, int address, double timeout,
			   uint16_t reg, uint16_t value)
{
	int r, e;

	r = bus_begin(bus, address, timeout);
	if (r < 0)
		return r;
	/* libmodbus checks the echo (Modbus application protocol v1.1b3,
	 * 6.6: the answer repeats the request): unit, function, register. */
	set_modbus_timeout(bus->ctx, (int64_t)(timeout * (double)NS_PER_SEC),
			   false);
	r = modbus_write_register(bus->ctx, reg, value);
	e = errno;
	bus->quiet_at_ns = pm_mono_ns() + bus->silence_ns;
	if (r == 1)
		return 0;
	r = r < 0 ? map_modbus_errno(e) : -PM_EFRAME;
	if (r == -PM_EEXCEPTION)
		bus->fault.exception = e - MODBUS_ENOBASE;
	return bus_fail(bus, r);
}

int pm_bus_read(struct pm_bus *bus, const struct pm_device *dev,
		size_t device_index, struct pm_sample *out)
{
	const struct pm_driver *drv = dev->driver ? dev->driver
						  : pm_driver_find(NULL);
	const struct pm_register_block *cur = &drv->current, *freq = &drv->frequency;
	uint16_t regs[PM_MODBUS_MAX_READ], fregs[PM_CHANNELS];
	unsigned count = cur->count, extra;
	bool together = dev->frequency && freq->first == cur->first + cur->count;
	struct pm_sample s;
	int r;

	memset(&bus->fault, 0, sizeof(bus->fault));
	r = bus_use_line(bus, &dev->line);
	if (r < 0)
		return bus_fail(bus, r);
	if (together)
		count += freq->count;
	extra = dev->address >= PM_ADDRESS_MIN && dev->address <= PM_ADDRESS_MAX
		? bus->stale[dev->address] : 0;
	if (cur->first + count + extra > drv->n_registers)
		extra = 0;
	r = bus_transact(bus, dev->address, dev->timeout, cur->first,
			 count + extra, count, regs);
	if (r < 0)
		return r;
	if (dev->frequency && !together) {
		r = bus_transact(bus, dev->address, dev->timeout, freq->first,
				 freq->count, freq->count, fregs);
		if (r < 0)
			return r;
	}
	memset(&s, 0, sizeof(s));
	s.device = device_index;
	s.time_ms = pm_now_ms();
	for (unsigned i = 0; i < drv->channels && i < PM_CHANNELS; i++) {
		s.current[i] = regs[i];
		if (together)
			s.frequency[i] = regs[cur->count + i];
		else if (dev->frequency)
			s.frequency[i] = fregs[i];
	}
	s.has_frequency = dev->frequency;
	if (dev->address >= PM_ADDRESS_MIN && dev->address <= PM_ADDRESS_MAX)
		bus->stale[dev->address] = 0;
	*out = s;
	return 0;
}
