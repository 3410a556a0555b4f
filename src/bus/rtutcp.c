/* rtutcp.c — the RTU-over-TCP transport ("rtu+tcp://HOST:PORT"): a
 * transparent serial server that copies bytes between a TCP connection
 * and the RS-485 line, so requests and answers are RTU frames, CRC and
 * all. Owns the framing of answers by their header and the CRC; the
 * connection, its lock and its deadlines are netconn.c's, the rest is
 * bus.c's.
 *
 * TCP keeps no frame boundaries, so an answer is framed by its header
 * (function 0x03: 5 + N bytes, 0x06: 8, an exception: 5), and whatever
 * arrived since the last answer is dropped before each request. The
 * converter puts bytes on the wire as they come, so the inter-frame
 * silence (3.5 characters at the device's "baudrate", 1.75 ms above 19200
 * baud) is still kept between the end of an answer and the next request:
 * without it a request sent the instant an answer arrived may reach the
 * modules before they see the line idle. It costs at most 4 ms at 9600
 * baud and nothing when the poller waits between reads anyway.
 *
 * Half-open connections are made again after PM_NET_SILENT_REQUESTS_MAX
 * requests in a row without a byte back, as in tcp.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <powermeter/powermeter.h>

#include "bus/netconn.h"
#include "bus/rtuframe.h"
#include "bus/transport.h"
#include "util/timeutil.h"

/* Modbus application protocol v1.1b3, 6.3, 6.6 and 7: the answers this
 * transport frames. RTU adds the address in front and CRC-16 after (at
 * most 256 bytes). */
#define FC_READ_HOLDING		0x03
#define FC_WRITE_SINGLE		0x06
#define FC_EXCEPTION		0x80
#define RTU_ADU_MAX		256
#define RTU_HEAD		3	/* address, function, byte count */

struct rtutcp {
	struct pm_netconn conn;
	struct pm_net_endpoint ep;
	int64_t silence_ns;	/* the gap the modules need between frames */
	int64_t quiet_at_ns;	/* no request may start before this instant */
};

static void rtutcp_set_timing(struct rtutcp *s, const struct pm_line *line)
{
	s->silence_ns = pm_rtu_silence_ns(line);
}

static bool rtutcp_handles(const char *endpoint)
{
	return !strncmp(endpoint, PM_NET_SCHEME_RTU_TCP,
			strlen(PM_NET_SCHEME_RTU_TCP));
}

static int rtutcp_open(void **state, const char *endpoint,
		       const struct pm_line *line, pid_t *holder)
{
	struct rtutcp *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	rtutcp_set_timing(s, line);
	r = pm_net_parse(endpoint, &s->ep, NULL, 0);
	if (r == 0)
		r = pm_netconn_open(&s->conn, &s->ep, holder);
	if (r < 0) {
		free(s);
		return r;
	}
	*state = s;
	return 0;
}

static void rtutcp_close(void *state)
{
	struct rtutcp *s = state;

	pm_netconn_close(&s->conn);
	free(s);
}

/* The converter's serial settings are its own (set in its web page); the
 * device's only tell the silence to keep. */
static int rtutcp_set_line(void *state, const struct pm_line *line)
{
	if (!pm_line_valid(line))
		return -EINVAL;
	rtutcp_set_timing(state, line);
	return 0;
}

static int rtutcp_send(void *state, const uint8_t *adu, size_t len)
{
	struct rtutcp *s = state;
	uint8_t frame[RTU_ADU_MAX];

	if (len < 2 || len + 2 > RTU_ADU_MAX)
		return -EINVAL;
	memcpy(frame, adu, len);
	(void)pm_rtu_append_crc(frame, len);
	if (pm_mono_ns() < s->quiet_at_ns)
		pm_sleep_until_ns(s->quiet_at_ns);
	return pm_netconn_send(&s->conn, frame, len + 2);
}

/* An answer's full length from its first RTU_HEAD bytes (n of them
 * there); 0 when it is no answer this transport knows. */
static size_t answer_length(const uint8_t *head, size_t n)
{
	if (n < 2)
		return 0;
	if (head[1] & FC_EXCEPTION)
		return 5;
	if (head[1] == FC_WRITE_SINGLE)
		return 8;
	if (head[1] == FC_READ_HOLDING && n >= RTU_HEAD)
		return RTU_HEAD + (size_t)head[2] + 2;
	return 0;
}

static int rtutcp_receive(void *state, uint8_t *adu, int64_t timeout_ns)
{
	struct rtutcp *s = state;
	int64_t deadline = pm_mono_ns() + timeout_ns;
	uint8_t frame[RTU_ADU_MAX + RTU_HEAD];
	size_t have, len;
	int n;

	/* address and function code first: they tell how much follows */
	n = pm_netconn_read(&s->conn, frame, 2, deadline);
	if (n <= 0)
		return n < 0 ? n : -ETIMEDOUT;
	if (n < 2)
		return -PM_EFRAME;
	have = 2;
	if (frame[1] == FC_READ_HOLDING) {
		n = pm_netconn_read(&s->conn, frame + 2, 1, deadline);
		if (n < 0)
			return n;
		if (n < 1)
			return -PM_EFRAME;
		have = 3;
	}
	len = answer_length(frame, have);
	if (!len || len > RTU_ADU_MAX)
		return -PM_EFRAME;	/* noise: dropped at the next send */
	n = pm_netconn_read(&s->conn, frame + have, len - have, deadline);
	if (n < 0)
		return n;
	s->quiet_at_ns = pm_mono_ns() + s->silence_ns;
	if ((size_t)n < len - have)
		return -PM_EFRAME;	/* an answer cut short */
	if (!pm_rtu_crc_ok(frame, len))
		return -PM_ECRC;
	memcpy(adu, frame, len - 2);
	return (int)(len - 2);
}

static int rtutcp_describe(void *state, char *buf, size_t size)
{
	const struct rtutcp *s = state;
	char hp[PM_NET_HOST_MAX + 16];
	int n;

	if (pm_net_hostport(&s->ep, hp, sizeof(hp)) < 0)
		return -ENAMETOOLONG;
	n = snprintf(buf, size, "RTU over TCP %s", hp);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : n;
}

const struct pm_transport_ops pm_transport_rtu_tcp = {
	.name = "rtu+tcp",
	.handles = rtutcp_handles,
	.key = pm_net_key,
	.holder = pm_net_lock_holder,
	.open = rtutcp_open,
	.set_line = rtutcp_set_line,
	.send = rtutcp_send,
	.receive = rtutcp_receive,
	.describe = rtutcp_describe,
	.close = rtutcp_close,
};
