/* bus.h — one serial port (an RS-485 converter) and the Modbus RTU
 * transactions on it. A pm_bus holds the port's lock and a libmodbus RTU
 * context; it has one owner thread and no locking inside. Devices sharing
 * a port are read in turn over one pm_bus. */
#ifndef PM_BUS_H
#define PM_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "sample.h"

struct pm_bus;

/* Details of the last failure, for the electrician's message
 * (pm_describe_failure). */
struct pm_bus_fault {
	int err;		/* the negative code returned */
	int exception;		/* Modbus exception code, for -PM_EEXCEPTION */
	int from_address;	/* who answered instead, for -PM_EUNIT */
	pid_t holder;		/* who holds the port, for -EBUSY (0: unknown) */
};

/* Opens and locks 'port' with the line settings 'line'. Returns 0 with
 * *bus set, or -ENOENT (no such port), -EACCES (permission denied), -EBUSY
 * (another process holds the port), -EINVAL (bad settings) or -errno. When
 * 'fault' is not NULL it is filled on failure (holder pid for -EBUSY). */
int pm_bus_open(struct pm_bus **bus, const char *port,
		const struct pm_line *line);
int pm_bus_open_fault(struct pm_bus **bus, const char *port,
		      const struct pm_line *line, struct pm_bus_fault *fault);

/* Reads one module: the driver's current registers (8..23 on an HDHK) and,
 * when dev->frequency, its frequency registers — in one FC 0x03 request when
 * they are adjacent (8..39). Sets the unit id and dev->timeout, discards
 * stale input first so a late answer to an earlier request is never taken
 * for this one, and stamps out->time_ms when the answer arrived. After a
 * request to a unit went unanswered, the following ones ask for 1..7 more
 * registers (one more each time) until one is answered: a late answer to
 * the earlier request then has the wrong length and is discarded.
 * Returns 0, or -ETIMEDOUT (no answer), -PM_ECRC, -PM_EFRAME (short or
 * malformed answer), -PM_EUNIT (answer from another unit id),
 * -PM_EEXCEPTION, -EIO/-ENODEV (the port went away: see pm_bus_broken).
 * On failure *out is untouched. 'device_index' is stored in out->device. */
int pm_bus_read(struct pm_bus *bus, const struct pm_device *dev,
		size_t device_index, struct pm_sample *out);

/* One FC 0x03 request for 'count' registers from 'first' of unit 'address',
 * waiting up to 'timeout' seconds. Same errors as pm_bus_read; 'regs' is
 * untouched on failure. */
int pm_bus_read_registers(struct pm_bus *bus, int address, double timeout,
			  unsigned first, unsigned count, uint16_t *regs);

/* One FC 0x06 request (write single register): 'value' into register
 * 'reg' of unit 'address', waiting up to 'timeout' seconds for the echo.
 * Same errors as pm_bus_read_registers; 0 once the module confirmed. */
int pm_bus_write_register(struct pm_bus *bus, int address, double timeout,
			  uint16_t reg, uint16_t value);

/* The last failure's details (err 0 after a success). */
const struct pm_bus_fault *pm_bus_last_fault(const struct pm_bus *bus);

/* True after the port failed in a way only reopening can fix (-EIO,
 * -ENODEV: unplugged converter, simulator gone). Close and reopen it. */
bool pm_bus_broken(const struct pm_bus *bus);

const char *pm_bus_port(const struct pm_bus *bus);

/* Releases the lock and closes the port; NULL is ignored. */
void pm_bus_close(struct pm_bus *bus);

/* The sentence for an electrician (errors.c): "device 1 on /dev/ttyUSB0
 * address 1: no answer within 1.0 s (timeout) — check wiring A/B, 12 V
 * supply, address and baud rate". 'fault' may be NULL. Always
 * NUL-terminates 'buf'; returns the length it wanted (as snprintf). */
int pm_describe_failure(char *buf, size_t size, const struct pm_device *dev,
			int err, const struct pm_bus_fault *fault);

#endif
