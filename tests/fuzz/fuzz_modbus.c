/* fuzz_modbus.c — whatever parses bytes from the wire: a module's answers
 * as the transports frame them (serial.c on a tty through libmodbus, tcp.c's
 * MBAP header, rtutcp.c's framing by header) and as bus.c checks them
 * (unit, function, exception, length, stale answers, retries), up to the
 * registers decoded by the driver (meter/module.c, device/hdhk.c).
 *
 * The real transports run over a real endpoint: a pseudo-terminal for the
 * serial one, a socket pair for the network ones. Between bus.c and the
 * transport sits the module: at each request the transport sends, it reads
 * the request off its end and writes the input's next answer chunk back.
 *
 * The input: a flags byte (transport, which operations), a byte of
 * retries, then answer chunks: [chunk flags][length][length bytes] each,
 * one per request sent; when they run out a network module hangs up and
 * a serial one stays silent.
 * CHUNK_FIX makes the chunk an answer to this very request where the
 * fuzzer could not guess it: the CRC-16 is appended (RTU) or the
 * transaction id put in front (TCP). The transports and bus.c are included
 * here so their state can be set up without opening a real port. */
#include "bus/bus.c"
#include "bus/serial.c"
#include "bus/tcp.c"
#include "bus/rtutcp.c"

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sys/socket.h>

#include "config/config.h"
#include "device/driver.h"
#include "fuzz.h"
#include "meter/module.h"
#include "meter/sample.h"
#include "util/buf.h"

enum link_kind { LINK_SERIAL, LINK_TCP, LINK_RTU_TCP };

#define CHUNK_FIX	0x01	/* append the CRC / put the tid in front */
#define CHUNK_MBAP_LEN	0x02	/* TCP: the MBAP length made to fit */
#define CHUNK_HANGUP	0x04	/* network: the module hangs up after it */

/* Waits for an answer this long per attempt: a socket pair's bytes are
 * there at once, a pseudo-terminal's take a few microseconds (its buffer
 * is pushed by a kernel worker), more on a loaded machine. */
#define TIMEOUT_NET	0.0005
#define TIMEOUT_SERIAL	0.0015

struct fuzz_link {
	enum link_kind kind;
	const struct pm_transport_ops *real;
	void *state;			/* the real transport's */
	int peer;			/* the module's end */
	const uint8_t *data;		/* answer chunks left */
	size_t size;
};

static struct pm_config *cfg;
static bool verbose;			/* $PM_FUZZ_VERBOSE: each result */
static struct serial *pty_serial;	/* opened once, kept */
static int pty_master = -1;

/* ---- the module's end ---------------------------------------------------- */

/* Reads what the module's end has (the request), waiting a little for the
 * first byte; returns how many bytes. */
static size_t peer_read(int fd, uint8_t *buf, size_t size, int wait_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t got = 0;

	while (got < size && poll(&p, 1, got ? 0 : wait_ms) > 0) {
		ssize_t n = read(fd, buf + got, size - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

static void peer_write(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n <= 0)
			return;	/* a full buffer: the rest is lost, as on a wire */
		buf += n;
		len -= (size_t)n;
	}
}

/* The module's answer to the request just sent: the input's next chunk. */
static void module_answer(struct fuzz_link *l)
{
	uint8_t req[512], answer[300];
	size_t n, len;
	unsigned flags;

	n = peer_read(l->peer, req, sizeof(req),
		      l->kind == LINK_SERIAL ? 20 : 0);
	if (l->size < 2) {
		/* The input has run out: a network module hangs up, so that
		 * what follows fails at once rather than after a timeout each
		 * (an empty chunk is the fuzzer's way to a timeout); a serial
		 * one falls silent. */
		if (l->kind != LINK_SERIAL)
			(void)shutdown(l->peer, SHUT_WR);
		return;
	}
	flags = l->data[0];
	len = l->data[1];
	l->data += 2;
	l->size -= 2;
	if (len > l->size)
		len = l->size;
	memcpy(answer, l->data, len);
	l->data += len;
	l->size -= len;
	if (flags & CHUNK_FIX) {
		if (l->kind == LINK_TCP && len >= 2 && n >= 2) {
			answer[0] = req[0];	/* the transaction id */
			answer[1] = req[1];
		} else if (l->kind != LINK_TCP) {
			len = pm_rtu_append_crc(answer, len);
		}
	}
	if ((flags & CHUNK_MBAP_LEN) && l->kind == LINK_TCP && len >= 6) {
		answer[4] = (uint8_t)((len - 6) >> 8);
		answer[5] = (uint8_t)(len - 6);
	}
	peer_write(l->peer, answer, len);
	if ((flags & CHUNK_HANGUP) && l->kind != LINK_SERIAL)
		(void)shutdown(l->peer, SHUT_WR);
}

/* ---- the transport bus.c sees ------------------------------------------- */

static int link_send(void *state, const uint8_t *adu, size_t len)
{
	struct fuzz_link *l = state;
	int r;

	/* the silence between frames costs time and finds nothing */
	if (l->kind == LINK_SERIAL)
		((struct serial *)l->state)->quiet_at_ns = 0;
	else if (l->kind == LINK_RTU_TCP)
		((struct rtutcp *)l->state)->quiet_at_ns = 0;
	r = l->real->send(l->state, adu, len);
	if (r == 0)
		module_answer(l);
	return r;
}

static int link_receive(void *state, uint8_t *adu, int64_t timeout_ns)
{
	struct fuzz_link *l = state;
	int r = l->real->receive(l->state, adu, timeout_ns);

	if (r > PM_ADU_MAX)
		abort();	/* bus.c's buffer holds PM_ADU_MAX bytes */
	return r;
}

static int link_set_line(void *state, const struct pm_line *line)
{
	struct fuzz_link *l = state;

	return l->real->set_line ? l->real->set_line(l->state, line) : 0;
}

static void link_close(void *state)
{
	(void)state;
}

static const struct pm_transport_ops link_ops = {
	.name = "fuzz",
	.set_line = link_set_line,
	.send = link_send,
	.receive = link_receive,
	.close = link_close,
};

/* ---- set-up -------------------------------------------------------------- */

static void open_pty(void)
{
	struct pm_line line = { 115200, 'N', 8, 1 };
	void *state = NULL;
	pid_t holder;

	pty_master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (pty_master < 0 || grantpt(pty_master) < 0 ||
	    unlockpt(pty_master) < 0 ||
	    serial_open(&state, ptsname(pty_master), &line, &holder) < 0) {
		perror("fuzz_modbus: pseudo-terminal");
		abort();
	}
	pty_serial = state;
	/* A chunk is written whole: 2 ms between its bytes is plenty. */
	(void)modbus_set_byte_timeout(pty_serial->ctx, 0, 2000);
	(void)fcntl(pty_master, F_SETFL, O_NONBLOCK);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char json[] =
		"{\"devices\": [{\"id\": 1, \"port\": \"/dev/ttyUSB0\", \"address\": 7,"
		" \"baudrate\": 115200, \"frequency\": true, \"inputs\": ["
		"{\"input\": \"a\", \"ratio\": 0.01, \"name\": \"a\"},"
		"{\"input\": \"p\", \"ratio\": 0.01, \"name\": \"p\"}]},"
		"{\"id\": 2, \"port\": \"/dev/ttyUSB1\", \"address\": 7,"
		" \"baudrate\": 115200, \"inputs\": ["
		"{\"input\": \"b\", \"ratio\": 0.01, \"name\": \"b\"}]}]}";
	char *errors = NULL;

	(void)argc;
	(void)argv;
	fuzz_clean_environment();
	verbose = getenv("PM_FUZZ_VERBOSE") != NULL;
	fuzz_write(fuzz_path("powermeter.json"), json, sizeof(json) - 1);
	if (pm_config_load_flags(&cfg, fuzz_path("powermeter.json"), 0,
				 &errors) < 0) {
		fprintf(stderr, "fuzz_modbus: its config: %s\n", errors);
		abort();
	}
	open_pty();
	return 0;
}

/* A network transport's state on one end of a socket pair. A reconnect
 * (after silent requests, netconn.c) goes to a closed local port. */
static int open_net(struct fuzz_link *l, const struct pm_line *line)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	(void)fcntl(sv[1], F_SETFL, O_NONBLOCK);
	l->peer = sv[1];
	if (l->kind == LINK_TCP) {
		struct tcp *t = calloc(1, sizeof(*t));

		if (!t || pm_net_parse("tcp://127.0.0.1:1", &t->ep, NULL, 0) < 0)
			abort();
		t->conn.ep = t->ep;
		t->conn.fd = sv[0];
		t->conn.lock_fd = -1;
		t->tid = 0x7ffe;	/* wraps at the second request */
		l->real = &pm_transport_tcp;
		l->state = t;
	} else {
		struct rtutcp *s = calloc(1, sizeof(*s));

		if (!s || pm_net_parse("rtu+tcp://127.0.0.1:1", &s->ep, NULL, 0) < 0)
			abort();
		s->conn.ep = s->ep;
		s->conn.fd = sv[0];
		s->conn.lock_fd = -1;
		rtutcp_set_timing(s, line);
		l->real = &pm_transport_rtu_tcp;
		l->state = s;
	}
	return 0;
}

/* ---- what is done on the bus -------------------------------------------- */

static volatile uint64_t sink;

/* `powermeter info`: each block of the driver's info registers read and
 * its fields decoded; then the module's address written. */
static void read_info(struct pm_bus *bus, const struct pm_device *dev)
{
	const struct pm_driver *drv = dev->driver ? dev->driver
						  : pm_driver_find(NULL);
	uint16_t regs[PM_MODBUS_MAX_READ];
	struct pm_buf b;

	pm_buf_init(&b, 4096);
	for (size_t i = 0; i < drv->n_info_blocks; i++) {
		const struct pm_register_block *blk = &drv->info_blocks[i];

		if (pm_bus_read_registers(bus, dev->address, dev->timeout,
					  blk->first, blk->count, regs) < 0)
			continue;
		for (size_t k = 0; k < drv->n_info_fields; k++) {
			const struct pm_info_field *f = &drv->info_fields[k];

			if (f->first < blk->first ||
			    f->first + f->count > blk->first + blk->count)
				continue;
			pm_buf_reset(&b);
			(void)f->decode(regs + (f->first - blk->first), &b);
			sink += b.len;
		}
	}
	pm_buf_free(&b);
	if (drv->address_mask)
		(void)pm_bus_write_register(bus, dev->address, dev->timeout,
					    drv->address_register, 0x0101);
}

static void operate(struct pm_bus *bus, unsigned op, unsigned retries,
		    double timeout)
{
	struct pm_device dev = cfg->devices[op == 1];
	struct pm_sample s;
	char version[32];
	int r = 0;

	dev.timeout = timeout;
	switch (op) {
	case 0:
	case 1:
		r = pm_module_read(bus, &dev, op, retries, &s);
		if (r == 0)
			for (unsigned c = 0; c < PM_CHANNELS; c++)
				sink += s.current[c] + s.frequency[c];
		break;
	case 2:
		r = pm_module_read_version(bus, &dev, retries, version,
					   sizeof(version));
		if (r == 0)
			sink += strlen(version);
		break;
	default:
		pm_bus_set_retries(bus, retries);
		read_info(bus, &dev);
		r = bus->fault.err;
		break;
	}
	if (verbose)
		fprintf(stderr, "fuzz_modbus: operation %u: %s (requests %" PRIu64
			", timeouts %" PRIu64 ", crc %" PRIu64 ", frame %" PRIu64 ")\n",
			op, r ? pm_strerror(r) : "ok", bus->counters.requests,
			bus->counters.timeouts, bus->counters.crc_errors,
			bus->counters.frame_errors);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_link l = { 0 };
	struct pm_bus bus = { 0 };
	unsigned ops, n_ops, retries;
	uint8_t junk[1024];

	if (size < 2)
		return 0;
	switch (data[0] & 3) {
	case 0:
		l.kind = LINK_SERIAL;
		break;
	case 1:
		l.kind = LINK_TCP;
		break;
	default:
		l.kind = LINK_RTU_TCP;
		break;
	}
	ops = data[0] >> 2;		/* 3 x 2 bits */
	n_ops = 1 + data[1] % 3;
	retries = (data[1] >> 2) % 4;
	l.data = data + 2;
	l.size = size - 2;

	if (l.kind == LINK_SERIAL) {
		/* nothing left over from the last input on either side */
		while (peer_read(pty_master, junk, sizeof(junk), 0) > 0)
			;
		(void)modbus_flush(pty_serial->ctx);
		l.real = &pm_transport_serial;
		l.state = pty_serial;
		l.peer = pty_master;
	} else if (open_net(&l, &cfg->devices[0].line) < 0) {
		return 0;
	}
	bus.ops = &link_ops;
	bus.t = &l;
	bus.port = (char *)"fuzz";
	bus.retries = PM_BUS_RETRIES_DEFAULT;

	for (unsigned i = 0; i < n_ops; i++)
		operate(&bus, (ops >> (2 * i)) & 3, retries,
			l.kind == LINK_SERIAL ? TIMEOUT_SERIAL : TIMEOUT_NET);

	if (l.kind != LINK_SERIAL) {
		l.real->close(l.state);
		(void)close(l.peer);
	}
	return 0;
}
