/* serial.c — the serial RTU transport: an RS-485 converter on a tty. Owns
 * the port lock, a libmodbus RTU context, the inter-frame silence and the
 * frame's CRC; bus.c does the rest. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <modbus.h>

#include <powermeter/powermeter.h>

#include "bus/portlock.h"
#include "bus/rtuframe.h"
#include "bus/transport.h"
#include "util/timeutil.h"

/* Modbus application protocol v1.1b3, 6.3, 6.6 and 7: the function codes
 * whose answers serial_receive() can frame itself; RTU adds the address in
 * front and CRC-16 after (at most 256 bytes). */
#define FC_READ_HOLDING		0x03
#define FC_WRITE_SINGLE		0x06
#define FC_EXCEPTION		0x80
#define RTU_ADU_MAX		256

/* How long libmodbus waits between two chunks of one answer before calling
 * it short: USB converters hand bytes over in bursts every 1..16 ms. */
#define BYTE_TIMEOUT_NS		100000000
#define BYTE_TIMEOUT_CHARS	16

#define NS_PER_SEC		1000000000LL

struct serial {
	int lock_fd;
	modbus_t *ctx;
	struct pm_line line;
	int64_t char_ns;	/* one character on the wire */
	int64_t silence_ns;	/* the gap required between frames */
	int64_t quiet_at_ns;	/* no frame may start before this instant */
};

static void serial_set_timing(struct serial *s, const struct pm_line *line)
{
	s->line = *line;
	s->char_ns = pm_rtu_char_ns(line);
	s->silence_ns = pm_rtu_silence_ns(line);
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

/* A tty path: whatever is not a URL ("scheme://"). */
static bool serial_handles(const char *endpoint)
{
	return !strstr(endpoint, "://");
}

/* 'path' with "//", "/./" and a trailing '/' folded away: what it names
 * when it cannot be resolved (a converter not plugged in yet). */
static void fold_path(const char *path, char *out, size_t size)
{
	size_t n = 0;

	for (const char *p = path; *p && n + 1 < size; p++) {
		if (*p == '/' && n > 0 && out[n - 1] == '/')
			continue;
		if (*p == '.' && n > 0 && out[n - 1] == '/' &&
		    (p[1] == '/' || p[1] == '\0'))
			continue;
		out[n++] = *p;
	}
	while (n > 1 && out[n - 1] == '/')
		n--;
	out[n] = '\0';
}

/* The tty the path leads to: its device number when it exists (a udev
 * symlink, the node's own name and a second node of the same tty are one
 * bus), else the path as it reads. */
static int serial_key(const char *endpoint, char *key, size_t size)
{
	struct stat st;
	int n;

	if (stat(endpoint, &st) == 0 && S_ISCHR(st.st_mode))
		n = snprintf(key, size, "tty %u:%u", major(st.st_rdev),
			     minor(st.st_rdev));
	else if (strlen(endpoint) < size) {
		fold_path(endpoint, key, size);
		return 0;
	} else
		return -ENAMETOOLONG;
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int serial_open(void **state, const char *port,
		       const struct pm_line *line, pid_t *holder)
{
	struct serial *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->lock_fd = -1;
	serial_set_timing(s, line);
	r = pm_portlock_acquire(port, &s->lock_fd, holder);
	if (r < 0)
		goto fail;
	s->ctx = modbus_new_rtu(port, line->baud, line->parity,
				line->data_bits, line->stop_bits);
	if (!s->ctx) {
		r = errno ? -errno : -ENOMEM;
		goto fail;
	}
	(void)modbus_set_debug(s->ctx, 0);	/* debug prints to stdout */
	(void)modbus_set_error_recovery(s->ctx, MODBUS_ERROR_RECOVERY_NONE);
	set_modbus_timeout(s->ctx, BYTE_TIMEOUT_NS + BYTE_TIMEOUT_CHARS * s->char_ns,
			   true);
	if (modbus_connect(s->ctx) < 0) {
		r = errno ? -errno : -EIO;
		modbus_free(s->ctx);
		s->ctx = NULL;
		goto fail;
	}
	/* Only now: libmodbus has opened its own fd, which TIOCEXCL would
	 * have refused (for an unprivileged user). Best effort — the flock
	 * already keeps every powermeter process out. */
	(void)pm_portlock_exclusive(modbus_get_socket(s->ctx));
	*state = s;
	return 0;

fail:
	pm_portlock_release(s->lock_fd);
	free(s);
	return r;
}

static void serial_close(void *state)
{
	struct serial *s = state;

	if (s->ctx) {
		int fd = modbus_get_socket(s->ctx);

		if (fd >= 0)
			(void)pm_portlock_shared(fd);
		modbus_close(s->ctx);
		modbus_free(s->ctx);
	}
	pm_portlock_release(s->lock_fd);
	free(s);
}

/* Devices sharing a port normally share its settings; if one does not,
 * the line is switched for it (the other devices then ignore the frames). */
static int serial_set_line(void *state, const struct pm_line *line)
{
	static const struct { int baud; speed_t speed; } speeds[] = {
		{ 1200, B1200 }, { 2400, B2400 }, { 4800, B4800 },
		{ 9600, B9600 }, { 19200, B19200 }, { 38400, B38400 },
		{ 57600, B57600 }, { 115200, B115200 },
	};
	struct serial *s = state;
	struct termios tio;
	speed_t speed = 0;
	int fd = modbus_get_socket(s->ctx);

	if (line->baud == s->line.baud && line->parity == s->line.parity &&
	    line->data_bits == s->line.data_bits &&
	    line->stop_bits == s->line.stop_bits)
		return 0;
	if (!pm_line_valid(line))
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
	serial_set_timing(s, line);
	return 0;
}

/* The length of an answer libmodbus did not check because it names another
 * unit, from its own header; 0 for anything that is no answer we know. */
static size_t foreign_length(const uint8_t *rsp)
{
	if (rsp[1] == FC_READ_HOLDING)
		return 3 + (size_t)rsp[2] + 2;
	if (rsp[1] == FC_WRITE_SINGLE)
		return 8;
	if (rsp[1] & FC_EXCEPTION)
		return 5;
	return 0;
}

static int serial_send(void *state, const uint8_t *adu, size_t len)
{
	struct serial *s = state;

	if (modbus_set_slave(s->ctx, adu[0]) < 0)
		return -EINVAL;
	/* A late answer that arrived since is not for this request. */
	(void)modbus_flush(s->ctx);
	if (pm_mono_ns() < s->quiet_at_ns)
		pm_sleep_until_ns(s->quiet_at_ns);
	if (modbus_send_raw_request(s->ctx, adu, (int)len) < 0)
		return map_modbus_errno(errno);
	return 0;
}

static int serial_receive(void *state, uint8_t *adu, int64_t timeout_ns)
{
	struct serial *s = state;
	uint8_t rsp[RTU_ADU_MAX];
	size_t len;
	int r;

	set_modbus_timeout(s->ctx, timeout_ns, false);
	/* A zero first byte is never a unit's answer: bytes that came in
	 * show up as nonzero address or function. */
	rsp[0] = rsp[1] = 0;
	r = modbus_receive_confirmation(s->ctx, rsp);
	s->quiet_at_ns = pm_mono_ns() + s->silence_ns;
	if (r < 0) {
		int e = errno;

		if (e == ETIMEDOUT && (rsp[0] || rsp[1]))
			return -PM_EFRAME;	/* an answer cut short */
		return map_modbus_errno(e);
	}
	if (r == 0) {
		/* Another unit's answer: libmodbus skipped its CRC. A frame
		 * that passes names the unit that really answered; anything
		 * else is noise. */
		len = foreign_length(rsp);
		if (!len || len > RTU_ADU_MAX || !pm_rtu_crc_ok(rsp, len))
			return -PM_EFRAME;
	} else {
		len = (size_t)r;
	}
	if (len < 4 || len - 2 > PM_ADU_MAX)
		return -PM_EFRAME;
	memcpy(adu, rsp, len - 2);
	return (int)(len - 2);
}

static int serial_describe(void *state, char *buf, size_t size)
{
	const struct serial *s = state;
	const char *framing = pm_line_framing(&s->line);

	return snprintf(buf, size, "%d baud %s", s->line.baud,
			framing ? framing : "?");
}

const struct pm_transport_ops pm_transport_serial = {
	.name = "serial",
	.handles = serial_handles,
	.key = serial_key,
	.holder = pm_portlock_holder,
	.open = serial_open,
	.set_line = serial_set_line,
	.send = serial_send,
	.receive = serial_receive,
	.describe = serial_describe,
	.close = serial_close,
};
