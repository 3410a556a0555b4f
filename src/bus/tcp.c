/* tcp.c — the Modbus TCP transport ("tcp://HOST[:PORT]"): a Modbus TCP to
 * RTU gateway in front of the RS-485 line. Owns the MBAP header and the
 * matching of answers to requests by transaction id; the connection, its
 * lock and its deadlines are netconn.c's, the rest is bus.c's.
 *
 * An answer carrying an earlier transaction id is a late answer to a
 * request that timed out: it is skipped and the wait goes on, never taken
 * for the current request. The gateway speaks to the modules at the baud
 * rate set in its own configuration; the device's "baudrate" is not used
 * here.
 *
 * Half-open connections: a gateway that was power-cycled, or whose TCP
 * server hangs, may keep a connection that accepts requests and never
 * answers. Each request waits at most the timeout bus.c passes; after
 * PM_NET_SILENT_REQUESTS_MAX (3) requests in a row on one connection
 * without a single byte back, the next send connects again first; when
 * that fails it returns -EIO, so the owner closes the bus and reopens it
 * (the daemon with its back-off). Dead
 * peers are also noticed by TCP itself: keepalive while idle,
 * TCP_USER_TIMEOUT while a request is unacknowledged (netconn.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <powermeter/powermeter.h>

#include "bus/netconn.h"
#include "bus/transport.h"
#include "util/timeutil.h"

/* Modbus messaging on TCP/IP implementation guide v1.0b, 3.1.3: the MBAP
 * header is transaction id, protocol id (0 = Modbus), length (of what
 * follows: unit id and PDU), unit id; all 16-bit fields big-endian. */
#define MBAP_LEN		7
#define MBAP_PROTOCOL		0
#define MBAP_LENGTH_MIN		2	/* unit id and function code */

struct tcp {
	struct pm_netconn conn;
	struct pm_net_endpoint ep;
	uint16_t tid;		/* the current request's transaction id */
};

static bool tcp_handles(const char *endpoint)
{
	return !strncmp(endpoint, PM_NET_SCHEME_TCP, strlen(PM_NET_SCHEME_TCP));
}

static int tcp_open(void **state, const char *endpoint,
		    const struct pm_line *line, pid_t *holder)
{
	struct tcp *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return -ENOMEM;
	r = pm_net_parse(endpoint, &t->ep, NULL, 0);
	if (r == 0)
		r = pm_netconn_open(&t->conn, &t->ep, holder);
	if (r < 0) {
		free(t);
		return r;
	}
	/* A new connection carries no old answers; a start that differs from
	 * one connection to the next still keeps a gateway's own late
	 * answers from matching. */
	t->tid = (uint16_t)pm_mono_ns();
	*state = t;
	return 0;
}

static void tcp_close(void *state)
{
	struct tcp *t = state;

	pm_netconn_close(&t->conn);
	free(t);
}

static int tcp_send(void *state, const uint8_t *adu, size_t len)
{
	struct tcp *t = state;
	uint8_t frame[MBAP_LEN - 1 + PM_ADU_MAX];

	if (len < 2 || len > PM_ADU_MAX)
		return -EINVAL;
	t->tid++;
	frame[0] = (uint8_t)(t->tid >> 8);
	frame[1] = (uint8_t)t->tid;
	frame[2] = 0;
	frame[3] = MBAP_PROTOCOL;
	frame[4] = (uint8_t)(len >> 8);
	frame[5] = (uint8_t)len;
	memcpy(frame + 6, adu, len);	/* the unit id ends the header */
	return pm_netconn_send(&t->conn, frame, MBAP_LEN - 1 + len);
}

static int tcp_receive(void *state, uint8_t *adu, int64_t timeout_ns)
{
	struct tcp *t = state;
	int64_t deadline = pm_mono_ns() + timeout_ns;
	uint8_t head[MBAP_LEN];
	unsigned length, tid;
	int n;

	for (;;) {
		n = pm_netconn_read(&t->conn, head, sizeof(head), deadline);
		if (n <= 0)
			return n < 0 ? n : -ETIMEDOUT;
		if (n < MBAP_LEN)
			return -PM_EFRAME;
		length = (unsigned)head[4] << 8 | head[5];
		if (((unsigned)head[2] << 8 | head[3]) != MBAP_PROTOCOL ||
		    length < MBAP_LENGTH_MIN || length > PM_ADU_MAX)
			return -PM_EFRAME;	/* the rest is dropped at the next send */
		adu[0] = head[6];
		n = pm_netconn_read(&t->conn, adu + 1, length - 1, deadline);
		if (n < 0)
			return n;
		if ((unsigned)n < length - 1)
			return -PM_EFRAME;
		tid = (unsigned)head[0] << 8 | head[1];
		if (tid == t->tid)
			return (int)length;
		/* a late answer to an earlier request: not ours, wait on */
	}
}

static int tcp_describe(void *state, char *buf, size_t size)
{
	const struct tcp *t = state;
	char hp[PM_NET_HOST_MAX + 16];
	int n;

	if (pm_net_hostport(&t->ep, hp, sizeof(hp)) < 0)
		return -ENAMETOOLONG;
	n = snprintf(buf, size, "Modbus TCP %s", hp);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : n;
}

const struct pm_transport_ops pm_transport_tcp = {
	.name = "tcp",
	.handles = tcp_handles,
	.key = pm_net_key,
	.holder = pm_net_lock_holder,
	.open = tcp_open,
	.set_line = NULL,	/* the gateway owns the serial line */
	.send = tcp_send,
	.receive = tcp_receive,
	.describe = tcp_describe,
	.close = tcp_close,
};
