/* bus.c — Modbus transactions on one bus: building requests, keeping one
 * transaction at a time, and telling every kind of bad answer apart so that
 * none ever becomes a value. The frames travel over a transport (serial.c
 * for a tty); this file is the same for all of them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <powermeter/powermeter.h>

#include "bus/bus.h"
#include "bus/transport.h"
#include "util/timeutil.h"

/* Modbus application protocol v1.1b3, 6.3 (read holding registers), 6.6
 * (write single register) and 7 (exception responses). */
#define FC_READ_HOLDING		0x03
#define FC_WRITE_SINGLE		0x06
#define FC_EXCEPTION		0x80
#define MAX_READ		125	/* registers in one FC 0x03 answer */

/* A late answer to an unanswered request has that request's length. After
 * a request goes unanswered, the next ones to the same unit ask for up to
 * STALE_SHAPES - 1 extra registers, so an answer of the wrong length is
 * recognised as stale and discarded. */
#define STALE_SHAPES		8

#define NS_PER_SEC		1000000000LL

struct pm_bus {
	const struct pm_transport_ops *ops;
	void *t;		/* the transport's state */
	char *port;
	bool broken;
	unsigned retries;
	uint8_t stale[PM_ADDRESS_MAX + 1];	/* per unit: extra registers */
	struct pm_bus_fault fault;
	struct pm_bus_counters counters;
};

int pm_bus_fail(struct pm_bus *bus, int err)
{
	bus->fault.err = err;
	if (err == -EIO || err == -ENODEV)
		bus->broken = true;
	return err;
}

int pm_bus_key(const char *port, char *key, size_t size)
{
	const struct pm_transport_ops *ops = pm_transport_find(port);

	return ops ? ops->key(port, key, size) : -EINVAL;
}

pid_t pm_bus_holder(const char *port)
{
	const struct pm_transport_ops *ops = pm_transport_find(port);

	return ops ? ops->holder(port) : 0;
}

bool pm_bus_same(const char *a, const char *b)
{
	char ka[PM_BUS_KEY_MAX], kb[PM_BUS_KEY_MAX];

	if (pm_bus_key(a, ka, sizeof(ka)) < 0 ||
	    pm_bus_key(b, kb, sizeof(kb)) < 0)
		return !strcmp(a, b);
	return !strcmp(ka, kb);
}

int pm_bus_open_fault(struct pm_bus **busp, const char *port,
		      const struct pm_line *line, struct pm_bus_fault *fault)
{
	const struct pm_transport_ops *ops = pm_transport_find(port);
	struct pm_bus *bus = NULL;
	pid_t holder = 0;
	int r;

	if (!ops || !pm_line_valid(line)) {
		r = -EINVAL;
		goto fail;
	}
	bus = calloc(1, sizeof(*bus));
	if (!bus || !(bus->port = strdup(port))) {
		r = -ENOMEM;
		goto fail;
	}
	bus->ops = ops;
	bus->retries = PM_BUS_RETRIES_DEFAULT;
	r = ops->open(&bus->t, port, line, &holder);
	if (r < 0)
		goto fail;
	*busp = bus;
	return 0;

fail:
	if (bus)
		free(bus->port);
	free(bus);
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
	bus->ops->close(bus->t);
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

void pm_bus_set_retries(struct pm_bus *bus, unsigned retries)
{
	bus->retries = retries < PM_BUS_RETRIES_MAX ? retries
						    : PM_BUS_RETRIES_MAX;
}

const struct pm_bus_counters *pm_bus_counters(const struct pm_bus *bus)
{
	return &bus->counters;
}

int pm_bus_set_line(struct pm_bus *bus, const struct pm_line *line)
{
	int r = 0;

	memset(&bus->fault, 0, sizeof(bus->fault));
	if (bus->ops->set_line)
		r = bus->ops->set_line(bus->t, line);
	return r < 0 ? pm_bus_fail(bus, r) : 0;
}

/* What every request does first: clears the last fault, checks the unit id
 * and timeout. 0 or the failure (recorded). */
static int bus_begin(struct pm_bus *bus, int address, double timeout)
{
	memset(&bus->fault, 0, sizeof(bus->fault));
	if (bus->broken)
		return pm_bus_fail(bus, -EIO);
	if (address < PM_ADDRESS_MIN || address > PM_ADDRESS_MAX ||
	    !(timeout > 0))
		return pm_bus_fail(bus, -EINVAL);
	return 0;
}

/* Sends 'req' and waits up to 'timeout' seconds for its answer into 'rsp':
 * one from the unit addressed, with the request's function code, and
 * 'want' bytes long. An answer of our unit and function but another length
 * answers an earlier request: it is skipped and the wait goes on. Returns
 * the answer's length or the failure (not yet recorded). */
static int bus_exchange(struct pm_bus *bus, const uint8_t *req, size_t len,
			double timeout, size_t want, uint8_t *rsp)
{
	int64_t deadline, now;
	bool saw_stale = false;
	int r;

	bus->counters.requests++;
	r = bus->ops->send(bus->t, req, len);
	if (r < 0)
		return r;
	deadline = pm_mono_ns() + (int64_t)(timeout * (double)NS_PER_SEC);
	for (;;) {
		now = pm_mono_ns();
		if (now >= deadline)
			return saw_stale ? -PM_EFRAME : -ETIMEDOUT;
		r = bus->ops->receive(bus->t, rsp, deadline - now);
		if (r == -ETIMEDOUT && saw_stale)
			return -PM_EFRAME;	/* the rest of it never came */
		if (r < 0)
			return r;
		if (r < 2)
			return -PM_EFRAME;
		if (rsp[0] != req[0]) {
			bus->fault.from_address = rsp[0];
			return -PM_EUNIT;
		}
		if (rsp[1] == (req[1] | FC_EXCEPTION)) {
			bus->fault.exception = r > 2 ? rsp[2] : 0;
			return -PM_EEXCEPTION;
		}
		if (rsp[1] != req[1])
			return -PM_EFRAME;
		if ((size_t)r == want)
			return r;
		if (req[1] != FC_READ_HOLDING)
			return -PM_EFRAME;
		/* valid frame, our unit, another length: the answer to an
		 * earlier request; keep waiting for ours */
		saw_stale = true;
	}
}

/* The 6 bytes of a request of function 'fc' (0x03 and 0x06 alike): unit,
 * function, then two big-endian 16-bit words (Modbus application protocol
 * v1.1b3, 6.3 and 6.6). */
static void request(uint8_t req[6], int address, uint8_t fc, uint16_t a,
		    uint16_t b)
{
	req[0] = (uint8_t)address;
	req[1] = fc;
	req[2] = (uint8_t)(a >> 8);
	req[3] = (uint8_t)a;
	req[4] = (uint8_t)(b >> 8);
	req[5] = (uint8_t)b;
}

/* A bad answer that another try may cure: the module did not hear the
 * request or its answer was damaged on the way. */
static bool worth_retry(int err)
{
	return err == -ETIMEDOUT || err == -PM_ECRC || err == -PM_EFRAME ||
	       err == -PM_EUNIT;
}

/* Counts an attempt that failed with 'err'; true when the transaction is
 * to be sent again (the fault then cleared for the next attempt). */
static bool bus_retry(struct pm_bus *bus, int err, unsigned attempt)
{
	struct pm_bus_counters *c = &bus->counters;

	if (err == -ETIMEDOUT)
		c->timeouts++;
	else if (err == -PM_ECRC)
		c->crc_errors++;
	else if (err == -PM_EFRAME || err == -PM_EUNIT)
		c->frame_errors++;
	if (!worth_retry(err) || attempt >= bus->retries)
		return false;
	c->retries++;
	memset(&bus->fault, 0, sizeof(bus->fault));
	return true;
}

/* FC 0x03: 'count' registers from 'first' into regs, retried. With
 * 'map_size' (polling), each attempt asks for the unit's extra registers
 * too (see pm_bus_poll_registers) and a success clears them. */
static int bus_read(struct pm_bus *bus, int address, double timeout,
		    unsigned first, unsigned count, unsigned map_size,
		    uint16_t *regs)
{
	uint8_t req[6], rsp[PM_ADU_MAX];
	unsigned ask;
	int r;

	if (count < 1 || count > MAX_READ) {
		memset(&bus->fault, 0, sizeof(bus->fault));
		return pm_bus_fail(bus, -EINVAL);
	}
	r = bus_begin(bus, address, timeout);
	if (r < 0)
		return r;
	for (unsigned attempt = 0;; attempt++) {
		ask = count + (map_size ? bus->stale[address] : 0);
		if (first + ask > map_size || ask > MAX_READ)
			ask = count;
		request(req, address, FC_READ_HOLDING, (uint16_t)first,
			(uint16_t)ask);
		r = bus_exchange(bus, req, sizeof(req), timeout, 3 + 2 * ask,
				 rsp);
		if (r >= 0 && rsp[2] != 2 * ask)
			r = -PM_EFRAME;
		if (r >= 0)
			break;
		if (r == -ETIMEDOUT || r == -PM_EFRAME)
			bus->stale[address] = (uint8_t)((bus->stale[address] + 1) %
							STALE_SHAPES);
		if (!bus_retry(bus, r, attempt))
			return pm_bus_fail(bus, r);
	}
	if (map_size)
		bus->stale[address] = 0;
	for (unsigned i = 0; i < count; i++)
		regs[i] = (uint16_t)(rsp[3 + 2 * i] << 8 | rsp[4 + 2 * i]);
	return 0;
}

int pm_bus_read_registers(struct pm_bus *bus, int address, double timeout,
			  unsigned first, unsigned count, uint16_t *regs)
{
	return bus_read(bus, address, timeout, first, count, 0, regs);
}

int pm_bus_poll_registers(struct pm_bus *bus, int address, double timeout,
			  unsigned first, unsigned count, unsigned map_size,
			  uint16_t *regs)
{
	return bus_read(bus, address, timeout, first, count, map_size, regs);
}

int pm_bus_write_register(struct pm_bus *bus, int address, double timeout,
			  uint16_t reg, uint16_t value)
{
	uint8_t req[6], rsp[PM_ADU_MAX];
	int r;

	r = bus_begin(bus, address, timeout);
	if (r < 0)
		return r;
	request(req, address, FC_WRITE_SINGLE, reg, value);
	/* The answer repeats the request: unit, function, register, value. */
	for (unsigned attempt = 0;; attempt++) {
		r = bus_exchange(bus, req, sizeof(req), timeout, sizeof(req),
				 rsp);
		if (r >= 0 && memcmp(rsp, req, sizeof(req)))
			r = -PM_EFRAME;
		if (r >= 0)
			return 0;
		if (!bus_retry(bus, r, attempt))
			return pm_bus_fail(bus, r);
	}
}
