/* bus.h — one bus (an RS-485 line behind a converter or, later, a gateway)
 * and the Modbus transactions on it: requests built and answers checked here,
 * frames carried by a transport (transport.h). A pm_bus has one owner thread
 * and no locking inside. Devices sharing a bus are read in turn over one
 * pm_bus. */
#ifndef PM_BUS_H
#define PM_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "device/line.h"

struct pm_bus;

/* Details of the last failure, for the electrician's message
 * (meter/failure.h). */
struct pm_bus_fault {
	int err;		/* the negative code returned */
	int exception;		/* Modbus exception code, for -PM_EEXCEPTION */
	int from_address;	/* who answered instead, for -PM_EUNIT */
	pid_t holder;		/* who holds the port, for -EBUSY (0: unknown) */
};

/* What a bus's transactions met, attempt by attempt, since it was opened:
 * one request per attempt, retries included. A read that needed one retry
 * after a CRC error counts requests 2, retries 1, crc_errors 1. */
struct pm_bus_counters {
	uint64_t requests;	/* frames sent */
	uint64_t retries;	/* of them, sent again after a bad answer */
	uint64_t timeouts;	/* no answer in time */
	uint64_t crc_errors;	/* an answer whose CRC failed */
	uint64_t frame_errors;	/* cut short, malformed, another unit's */
};

/* Retries of a transaction unless pm_bus_set_retries() says otherwise. */
#define PM_BUS_RETRIES_DEFAULT 2
#define PM_BUS_RETRIES_MAX 10

/* Longest pm_bus_key() text, NUL included. */
#define PM_BUS_KEY_MAX 4096

/* Opens and locks the endpoint 'port' (a config "port": a tty path) with
 * the line settings 'line'. Returns 0 with *bus set, or -ENOENT (no such
 * port), -EACCES (permission denied), -EBUSY (another process holds the
 * port), -EINVAL (bad settings, or no transport for 'port') or -errno. When
 * 'fault' is not NULL it is filled on failure (holder pid for -EBUSY). */
int pm_bus_open(struct pm_bus **bus, const char *port,
		const struct pm_line *line);
int pm_bus_open_fault(struct pm_bus **bus, const char *port,
		      const struct pm_line *line, struct pm_bus_fault *fault);

/* The bus that config port 'port' names, as text: two ports with equal
 * keys are one bus (one poller, one lock). 0 or -EINVAL / -ENAMETOOLONG. */
int pm_bus_key(const char *port, char *key, size_t size);
bool pm_bus_same(const char *a, const char *b);

/* The pid holding config port 'port' (a daemon, another powermeter), found
 * without opening it; 0 when none or unknown. */
pid_t pm_bus_holder(const char *port);

/* Uses line settings 'line' from the next request on (devices on one bus
 * normally share them; if one does not, the line is switched for it).
 * 0, or -EINVAL and the errors of the transport. */
int pm_bus_set_line(struct pm_bus *bus, const struct pm_line *line);

/* How often a transaction is sent again when its answer timed out, failed
 * its CRC, was cut short or malformed, or came from another unit: each
 * retry goes out after the inter-frame silence, up to 'retries' (at most
 * PM_BUS_RETRIES_MAX) times. An exception, a port error or a stale answer
 * skipped is final. A new bus has PM_BUS_RETRIES_DEFAULT. */
void pm_bus_set_retries(struct pm_bus *bus, unsigned retries);

/* The bus's counters since it was opened. */
const struct pm_bus_counters *pm_bus_counters(const struct pm_bus *bus);

/* One FC 0x03 request for 'count' registers from 'first' of unit 'address',
 * waiting up to 'timeout' seconds per attempt, retried as
 * pm_bus_set_retries() says. Returns 0, or -ETIMEDOUT (no answer),
 * -PM_ECRC, -PM_EFRAME (short or malformed answer), -PM_EUNIT (answer from
 * another unit id), -PM_EEXCEPTION, -EIO/-ENODEV (the port went away: see
 * pm_bus_broken) — the last attempt's failure. 'regs' is untouched on
 * failure; a bad answer never reaches it. */
int pm_bus_read_registers(struct pm_bus *bus, int address, double timeout,
			  unsigned first, unsigned count, uint16_t *regs);

/* pm_bus_read_registers(), for polling: after a request to a unit went
 * unanswered, the following ones (retries included) ask for 1..7 more
 * registers (one more each time, never past register map_size - 1) until
 * one is answered, so a late answer to the earlier request has the wrong
 * length and is discarded. */
int pm_bus_poll_registers(struct pm_bus *bus, int address, double timeout,
			  unsigned first, unsigned count, unsigned map_size,
			  uint16_t *regs);

/* One FC 0x06 request (write single register): 'value' into register
 * 'reg' of unit 'address', waiting up to 'timeout' seconds for the echo,
 * retried like a read (writing the same value twice is harmless). Same
 * errors as pm_bus_read_registers; 0 once the module confirmed. */
int pm_bus_write_register(struct pm_bus *bus, int address, double timeout,
			  uint16_t reg, uint16_t value);

/* The last failure's details (err 0 after a success). */
const struct pm_bus_fault *pm_bus_last_fault(const struct pm_bus *bus);

/* Records 'err' as the bus's failure, as the bus's own calls do; returns
 * it. For callers that fail a transaction the bus could not see (a bad
 * register map). */
int pm_bus_fail(struct pm_bus *bus, int err);

/* True after the port failed in a way only reopening can fix (-EIO,
 * -ENODEV: unplugged converter, simulator gone). Close and reopen it. */
bool pm_bus_broken(const struct pm_bus *bus);

const char *pm_bus_port(const struct pm_bus *bus);

/* Releases the lock and closes the port; NULL is ignored. */
void pm_bus_close(struct pm_bus *bus);

#endif
