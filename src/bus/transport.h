/* transport.h — how Modbus frames reach modules: one implementation per kind
 * of endpoint. serial.c is the RS-485 converter on a tty (Modbus RTU); a
 * network gateway is one more file with a 'struct pm_transport_ops' and one
 * line in transports.c. bus.c builds requests and checks answers the same way
 * over every transport. */
#ifndef PM_BUS_TRANSPORT_H
#define PM_BUS_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "device/line.h"

/* A request or answer as the transports carry it: unit id, function code,
 * data — no CRC, no TCP header. Modbus over serial line v1.02, 2.5.1.1: an
 * RTU frame is at most 256 bytes, 2 of them the CRC. */
#define PM_ADU_MAX 254

struct pm_transport_ops {
	const char *name;	/* "serial" */
	/* Does 'endpoint' (a config "port") name one of this transport's? */
	bool (*handles)(const char *endpoint);
	/* Writes what the endpoint names into key (size bytes): two config
	 * ports with the same key are one bus, read by one poller, checked
	 * for duplicate addresses as one. 0 or -ENAMETOOLONG. */
	int (*key)(const char *endpoint, char *key, size_t size);
	/* The pid of the process holding the endpoint's lock, looked up
	 * without opening it; 0 when none or unknown. */
	pid_t (*holder)(const char *endpoint);
	/* Opens 'endpoint' with line settings 'line'. 0 with *state set, or
	 * -ENOENT, -EACCES, -EBUSY (*holder: the pid holding it, 0 unknown),
	 * -EINVAL or -errno. */
	int (*open)(void **state, const char *endpoint,
		    const struct pm_line *line, pid_t *holder);
	/* Switches the line settings for the next requests (optional: NULL
	 * where the transport has no serial line of its own). 0 or -errno. */
	int (*set_line)(void *state, const struct pm_line *line);
	/* Sends one request after the required silence, first dropping any
	 * input that arrived since the last answer (a late answer to an earlier
	 * request is never taken for this one). 0 or -errno. */
	int (*send)(void *state, const uint8_t *adu, size_t len);
	/* Receives one answer frame that passed the transport's integrity
	 * check into adu (PM_ADU_MAX bytes), waiting up to timeout_ns. Returns
	 * its length, or -ETIMEDOUT (nothing came), -PM_EFRAME (an answer cut
	 * short or malformed), -PM_ECRC, -EIO / -ENODEV (the endpoint went
	 * away: reopen it). */
	int (*receive)(void *state, uint8_t *adu, int64_t timeout_ns);
	/* Appends a short description ("9600 baud N81") to buf. */
	int (*describe)(void *state, char *buf, size_t size);
	void (*close)(void *state);
};

/* The registered transports, NULL-terminated (transports.c). */
extern const struct pm_transport_ops *const pm_transports[];

/* The serial RTU port (serial.c). */
extern const struct pm_transport_ops pm_transport_serial;

/* The transport for 'endpoint', or NULL when none handles it. */
const struct pm_transport_ops *pm_transport_find(const char *endpoint);

#endif
