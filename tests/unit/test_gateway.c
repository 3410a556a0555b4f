/* test_gateway.c — the network transports (bus/tcp.c, bus/rtutcp.c over
 * bus/netconn.c) against a scripted gateway on a loopback TCP port: the
 * "tcp://" and "rtu+tcp://" endpoints and their bus keys, MBAP framing and
 * transaction ids (a late answer is never taken for the current request),
 * RTU framing and CRC over TCP, a half-open connection given up after 3
 * silent requests, the gateway's lock file, and the electrician's
 * messages. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <powermeter/powermeter.h>

#include "../../src/bus/netconn.c"
#include "../../src/bus/rtutcp.c"
#include "../../src/bus/tcp.c"
#include "bus/bus.h"
#include "meter/failure.h"
#include "util/timeutil.h"

static const struct pm_line line9600 = { 9600, 'N', 8, 1 };

/* ---- a scripted gateway on 127.0.0.1 ------------------------------------- */

struct gstep {
	size_t read;		/* read this many request bytes first */
	int delay_ms;		/* then wait */
	uint8_t out[300];	/* then write this */
	size_t out_len;
	bool hang_up;		/* or close the connection */
};

struct gateway {
	int lfd, port;
	pthread_t thread;
	struct gstep steps[8];
	size_t n_steps;
	uint8_t got[8][300];	/* the requests read, by step */
	char url[64];
};

static bool read_all(int fd, uint8_t *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);

		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

static void *gateway_run(void *arg)
{
	struct gateway *g = arg;
	uint8_t sink[256];
	int fd = accept(g->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	for (size_t i = 0; i < g->n_steps; i++) {
		struct gstep *s = &g->steps[i];

		if (s->read && !read_all(fd, g->got[i], s->read))
			goto out;
		if (s->delay_ms)
			usleep((useconds_t)s->delay_ms * 1000);
		if (s->hang_up)
			goto out;
		if (s->out_len && write(fd, s->out, s->out_len) != (ssize_t)s->out_len)
			goto out;
	}
	/* then silent, reading, until the client goes */
	while (read(fd, sink, sizeof(sink)) > 0)
		;
out:
	close(fd);
	return NULL;
}

/* Listens (nothing runs yet); 'scheme' is "tcp" or "rtu+tcp". */
static void gateway_open(struct gateway *g, const char *scheme)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);

	memset(g, 0, sizeof(*g));
	g->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(g->lfd >= 0);
	assert_int_equal(bind(g->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(g->lfd, 4), 0);
	assert_int_equal(getsockname(g->lfd, (struct sockaddr *)&sa, &len), 0);
	g->port = ntohs(sa.sin_port);
	snprintf(g->url, sizeof(g->url), "%s://127.0.0.1:%d", scheme, g->port);
}

static void gateway_start(struct gateway *g)
{
	assert_int_equal(pthread_create(&g->thread, NULL, gateway_run, g), 0);
}

/* After the client closed its side. */
static void gateway_finish(struct gateway *g)
{
	pthread_join(g->thread, NULL);
	close(g->lfd);
}

static struct gstep *step(struct gateway *g, size_t read_n, int delay_ms)
{
	struct gstep *s = &g->steps[g->n_steps++];

	s->read = read_n;
	s->delay_ms = delay_ms;
	return s;
}

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* A Modbus TCP answer of unit 'addr', transaction 'tid': 'count'
 * registers valued base + i. */
static size_t mbap_answer(uint8_t *out, unsigned tid, int addr, unsigned count,
			  unsigned base)
{
	put16(out, tid);
	put16(out + 2, 0);
	put16(out + 4, 3 + 2 * count);
	out[6] = (uint8_t)addr;
	out[7] = 0x03;
	out[8] = (uint8_t)(2 * count);
	for (unsigned i = 0; i < count; i++)
		put16(out + 9 + 2 * i, base + i);
	return 9 + 2 * count;
}

/* The same answer as an RTU frame, CRC appended. */
static size_t rtu_answer(uint8_t *out, int addr, unsigned count, unsigned base)
{
	uint16_t crc;
	size_t n = 3 + 2 * count;

	out[0] = (uint8_t)addr;
	out[1] = 0x03;
	out[2] = (uint8_t)(2 * count);
	for (unsigned i = 0; i < count; i++)
		put16(out + 3 + 2 * i, base + i);
	crc = pm_rtu_crc16(out, n);
	out[n] = (uint8_t)(crc & 0xff);
	out[n + 1] = (uint8_t)(crc >> 8);
	return n + 2;
}

/* A lock directory of the test's own (removed by the caller). */
static void lock_dir_setup(char *dir, size_t size)
{
	snprintf(dir, size, "/tmp/pm-test-gw-XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(setenv("RUNTIME_DIRECTORY", dir, 1), 0);
}

static void lock_dir_remove(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
	static char dir[64];

	lock_dir_setup(dir, sizeof(dir));
	*state = dir;
	return 0;
}

static int teardown(void **state)
{
	lock_dir_remove(*state);
	return 0;
}

/* ---- endpoints ------------------------------------------------------------- */

static void check_parse(const char *url, int kind, const char *host, unsigned port)
{
	struct pm_net_endpoint ep;
	char why[256];

	assert_int_equal(pm_net_parse(url, &ep, why, sizeof(why)), 0);
	assert_int_equal(ep.kind, kind);
	assert_string_equal(ep.host, host);
	assert_int_equal(ep.port, port);
	assert_int_equal(pm_net_check(url, why, sizeof(why)), 0);
}

static void check_bad(const char *url, const char *reason)
{
	struct pm_net_endpoint ep = { .port = 7 };
	char why[256];

	assert_int_equal(pm_net_parse(url, &ep, why, sizeof(why)), -EINVAL);
	assert_int_equal(ep.port, 7);	/* untouched */
	if (!strstr(why, reason))
		fail_msg("%s: \"%s\" does not say \"%s\"", url, why, reason);
}

static void test_parse(void **state)
{
	char why[256];

	(void)state;
	check_parse("tcp://10.0.0.5", PM_NET_TCP, "10.0.0.5", 502);
	check_parse("tcp://10.0.0.5:1502", PM_NET_TCP, "10.0.0.5", 1502);
	check_parse("tcp://GW-Hall.Example.com:502", PM_NET_TCP,
		    "gw-hall.example.com", 502);
	check_parse("tcp://[::1]", PM_NET_TCP, "::1", 502);
	check_parse("tcp://[FE80:0:0::1]:4001", PM_NET_TCP, "fe80::1", 4001);
	check_parse("rtu+tcp://10.0.0.5:4001", PM_NET_RTU_TCP, "10.0.0.5", 4001);
	check_parse("rtu+tcp://[::1]:65535", PM_NET_RTU_TCP, "::1", 65535);
	check_bad("tcp://", "no host");
	check_bad("tcp://host:99999", "port 99999 is not in 1..65535");
	check_bad("tcp://host:0", "not in 1..65535");
	check_bad("tcp://host:", "no port number");
	check_bad("tcp://host:50x", "not a port number");
	check_bad("udp://x", "not a kind of port");
	check_bad("rtu+tcp://host", "needs the converter's TCP port");
	check_bad("tcp://fe80::1", "goes in brackets");
	check_bad("tcp://[fe80::1", "closing ']'");
	check_bad("tcp://[nonsense]:502", "not an IPv6 address");
	check_bad("tcp://10.0.0.300", "not an IPv4 address");
	check_bad("tcp://user@host", "unexpected \"@host\"");
	check_bad("tcp://host/path", "unexpected \"/path\"");
	/* a tty path is no URL: the config check leaves it to the serial port */
	assert_int_equal(pm_net_check("/dev/ttyUSB0", why, sizeof(why)), 0);
	assert_false(pm_net_is_url("/dev/ttyUSB0"));
}

static void test_keys(void **state)
{
	char key[PM_BUS_KEY_MAX];

	(void)state;
	assert_int_equal(pm_bus_key("tcp://GW.example:502", key, sizeof(key)), 0);
	assert_string_equal(key, "tcp gw.example:502");
	assert_int_equal(pm_bus_key("rtu+tcp://[0:0::1]:4001", key, sizeof(key)), 0);
	assert_string_equal(key, "rtu+tcp [::1]:4001");
	assert_int_equal(pm_bus_key("udp://x", key, sizeof(key)), -EINVAL);
	assert_int_equal(pm_bus_key("tcp://gw", key, 8), -ENAMETOOLONG);
	/* two devices on one gateway are one bus, however it is written */
	assert_true(pm_bus_same("tcp://gw", "tcp://GW:502"));
	assert_true(pm_bus_same("tcp://[::1]", "tcp://[0::1]:502"));
	assert_false(pm_bus_same("tcp://gw", "tcp://gw:503"));
	assert_false(pm_bus_same("tcp://gw:4001", "rtu+tcp://gw:4001"));
	assert_false(pm_bus_same("tcp://gw", "/dev/ttyUSB0"));
	assert_ptr_equal(pm_transport_find("tcp://gw"), &pm_transport_tcp);
	assert_ptr_equal(pm_transport_find("rtu+tcp://gw:1"), &pm_transport_rtu_tcp);
	assert_ptr_equal(pm_transport_find("/dev/ttyUSB0"), &pm_transport_serial);
	assert_null(pm_transport_find("udp://x"));
}

/* ---- Modbus TCP -------------------------------------------------------------- */

/* A scripted Modbus TCP gateway that answers with the transaction id it
 * read, in the way 'mode' says (see tidgw_run). */
struct tidgw {
	int lfd;
	pthread_t thread;
	char url[64];
	int mode;
	uint8_t req1[12];	/* the first request as it came */
};

static void *tidgw_run(void *arg)
{
	struct tidgw *g = arg;
	uint8_t req1[12], req2[12], out[300], sink[64];
	unsigned tid1, tid2;
	size_t n;
	int fd = accept(g->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	if (!read_all(fd, req1, sizeof(req1)))
		goto out;
	memcpy(g->req1, req1, sizeof(req1));
	tid1 = (unsigned)req1[0] << 8 | req1[1];
	switch (g->mode) {
	case 4:		/* a good answer */
		n = mbap_answer(out, tid1, req1[6], 16, 3000);
		(void)!write(fd, out, n);
		break;
	case 0:		/* late: the first request is answered after the second */
		if (!read_all(fd, req2, sizeof(req2)))
			goto out;
		tid2 = (unsigned)req2[0] << 8 | req2[1];
		n = mbap_answer(out, tid1, 1, 16, 1000);	/* stale values */
		n += mbap_answer(out + n, tid2, 1, 16, 2000);
		(void)!write(fd, out, n);
		break;
	case 1:		/* not Modbus: protocol id 1 */
		n = mbap_answer(out, tid1, 1, 16, 1000);
		out[3] = 1;
		(void)!write(fd, out, n);
		break;
	case 2:		/* an exception, split over two segments */
		put16(out, tid1);
		put16(out + 2, 0);
		put16(out + 4, 3);
		out[6] = 1;
		out[7] = 0x83;
		out[8] = 0x02;
		(void)!write(fd, out, 4);
		usleep(20000);
		(void)!write(fd, out + 4, 5);
		break;
	case 3:		/* hangs up */
		goto out;
	}
	while (read(fd, sink, sizeof(sink)) > 0)
		;
out:
	close(fd);
	return NULL;
}

static void tidgw_start(struct tidgw *g, int mode)
{
	struct gateway tmp;

	gateway_open(&tmp, "tcp");
	g->lfd = tmp.lfd;
	g->mode = mode;
	snprintf(g->url, sizeof(g->url), "%s", tmp.url);
	assert_int_equal(pthread_create(&g->thread, NULL, tidgw_run, g), 0);
}

static void tidgw_finish(struct tidgw *g)
{
	pthread_join(g->thread, NULL);
	close(g->lfd);
}

static void test_tcp_read(void **state)
{
	static const uint8_t pdu[] = { 0x03, 0x00, 0x08, 0x00, 0x10 };
	struct pm_bus *bus;
	uint16_t regs[16];
	struct tidgw g;

	(void)state;
	tidgw_start(&g, 4);
	assert_int_equal(pm_bus_open(&bus, g.url, &line9600), 0);
	assert_int_equal(pm_bus_read_registers(bus, 7, 1.0, 8, 16, regs), 0);
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(regs[i], 3000 + i);
	pm_bus_close(bus);
	tidgw_finish(&g);
	/* the request as sent: MBAP header (protocol 0, 6 bytes follow),
	 * unit 7, the PDU */
	assert_int_equal(g.req1[2] << 8 | g.req1[3], 0);
	assert_int_equal(g.req1[4] << 8 | g.req1[5], 6);
	assert_int_equal(g.req1[6], 7);
	assert_memory_equal(g.req1 + 7, pdu, sizeof(pdu));
}

static void test_tcp_late_answer_skipped(void **state)
{
	uint8_t req[6] = { 1, 0x03, 0x00, 0x08, 0x00, 0x10 }, rsp[PM_ADU_MAX];
	struct tidgw g;
	char text[64];
	pid_t holder;
	void *t;

	(void)state;
	tidgw_start(&g, 0);
	assert_int_equal(pm_transport_tcp.open(&t, g.url, &line9600, &holder), 0);
	assert_true(pm_transport_tcp.describe(t, text, sizeof(text)) > 0);
	assert_string_equal(text + strlen("Modbus TCP "), g.url + strlen("tcp://"));
	assert_memory_equal(text, "Modbus TCP ", strlen("Modbus TCP "));
	assert_int_equal(pm_transport_tcp.send(t, req, sizeof(req)), 0);
	assert_int_equal(pm_transport_tcp.receive(t, rsp, 30000000), -ETIMEDOUT);
	assert_int_equal(pm_transport_tcp.send(t, req, sizeof(req)), 0);
	/* the first answer comes first, with the old transaction id: skipped */
	assert_int_equal(pm_transport_tcp.receive(t, rsp, 2000000000), 3 + 32);
	assert_int_equal(rsp[0], 1);
	assert_int_equal(rsp[3] << 8 | rsp[4], 2000);
	pm_transport_tcp.close(t);
	tidgw_finish(&g);
}

static void test_tcp_bad_answers(void **state)
{
	const struct pm_bus_fault *f;
	struct pm_bus *bus;
	uint16_t regs[16] = { 0 };
	struct tidgw g;

	(void)state;
	tidgw_start(&g, 1);
	assert_int_equal(pm_bus_open(&bus, g.url, &line9600), 0);
	pm_bus_set_retries(bus, 0);
	assert_int_equal(pm_bus_read_registers(bus, 1, 0.5, 8, 16, regs), -PM_EFRAME);
	assert_int_equal(regs[0], 0);
	pm_bus_close(bus);
	tidgw_finish(&g);

	tidgw_start(&g, 2);
	assert_int_equal(pm_bus_open(&bus, g.url, &line9600), 0);
	assert_int_equal(pm_bus_read_registers(bus, 1, 0.5, 8, 16, regs), -PM_EEXCEPTION);
	f = pm_bus_last_fault(bus);
	assert_int_equal(f->exception, 2);
	assert_false(pm_bus_broken(bus));
	pm_bus_close(bus);
	tidgw_finish(&g);

	/* the gateway closes the connection: -EIO, reopen */
	tidgw_start(&g, 3);
	assert_int_equal(pm_bus_open(&bus, g.url, &line9600), 0);
	assert_int_equal(pm_bus_read_registers(bus, 1, 0.5, 8, 16, regs), -EIO);
	assert_true(pm_bus_broken(bus));
	pm_bus_close(bus);
	tidgw_finish(&g);
}

/* A gateway that accepted and reads, but never answers: each request is
 * bounded by its timeout, and after 3 without a byte the 4th send goes out
 * on a new connection. */
static void test_half_open(void **state)
{
	uint8_t req[6] = { 1, 0x03, 0x00, 0x08, 0x00, 0x10 }, rsp[PM_ADU_MAX];
	struct gateway g;
	int64_t t0;
	pid_t holder;
	void *t;

	(void)state;
	gateway_open(&g, "tcp");
	gateway_start(&g);
	assert_int_equal(pm_transport_tcp.open(&t, g.url, &line9600, &holder), 0);
	t0 = pm_mono_ns();
	for (int i = 0; i < PM_NET_SILENT_REQUESTS_MAX; i++) {
		assert_int_equal(pm_transport_tcp.send(t, req, sizeof(req)), 0);
		assert_int_equal(pm_transport_tcp.receive(t, rsp, 40000000), -ETIMEDOUT);
	}
	assert_int_equal(pm_transport_tcp.send(t, req, sizeof(req)), 0);
	assert_int_equal(((struct tcp *)t)->conn.silent, 0);
	assert_true(pm_mono_ns() - t0 < 1000000000);
	pm_transport_tcp.close(t);
	gateway_finish(&g);

	/* any byte back keeps the connection: 2 silent, 1 answered, 2 silent */
	gateway_open(&g, "rtu+tcp");
	step(&g, 8, 0);
	step(&g, 8, 0);
	step(&g, 8, 0)->out_len = rtu_answer(g.steps[2].out, 1, 16, 1);
	gateway_start(&g);
	assert_int_equal(pm_transport_rtu_tcp.open(&t, g.url, &line9600, &holder), 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(pm_transport_rtu_tcp.send(t, req, sizeof(req)), 0);
		assert_int_equal(pm_transport_rtu_tcp.receive(t, rsp, 40000000),
				 i == 2 ? 3 + 32 : -ETIMEDOUT);
	}
	assert_int_equal(pm_transport_rtu_tcp.send(t, req, sizeof(req)), 0);
	pm_transport_rtu_tcp.close(t);
	gateway_finish(&g);
}

/* ---- RTU over TCP -------------------------------------------------------------- */

static void test_rtu_tcp(void **state)
{
	uint8_t req[6] = { 1, 0x03, 0x00, 0x08, 0x00, 0x10 }, rsp[PM_ADU_MAX];
	struct gateway g;
	struct gstep *s;
	char text[64];
	uint16_t crc;
	pid_t holder;
	void *t;

	(void)state;
	gateway_open(&g, "rtu+tcp");
	/* 1: a good answer in two segments */
	s = step(&g, 8, 0);
	s->out_len = 10;
	rtu_answer(s->out, 1, 16, 500);
	s = step(&g, 0, 30);
	s->out_len = rtu_answer(s->out, 1, 16, 500) - 10;
	memmove(s->out, s->out + 10, s->out_len);
	/* 2: a bad CRC */
	s = step(&g, 8, 0);
	s->out_len = rtu_answer(s->out, 1, 16, 500);
	s->out[s->out_len - 1] ^= 0xff;
	/* 3: cut short */
	s = step(&g, 8, 0);
	s->out_len = rtu_answer(s->out, 1, 16, 500) - 5;
	/* 4: noise, then (dropped before the next request) */
	s = step(&g, 8, 0);
	s->out[0] = 0x01;
	s->out[1] = 0x42;
	s->out[2] = 0x42;
	s->out_len = 3;
	/* 5: another unit's answer */
	s = step(&g, 8, 0);
	s->out_len = rtu_answer(s->out, 9, 16, 500);
	gateway_start(&g);

	assert_int_equal(pm_transport_rtu_tcp.open(&t, g.url, &line9600, &holder), 0);
	assert_true(pm_transport_rtu_tcp.describe(t, text, sizeof(text)) > 0);
	assert_string_equal(text + strlen("RTU over TCP "), g.url + strlen("rtu+tcp://"));
	assert_memory_equal(text, "RTU over TCP ", strlen("RTU over TCP "));
	assert_int_equal(pm_transport_rtu_tcp.send(t, req, sizeof(req)), 0);
	assert_int_equal(pm_transport_rtu_tcp.receive(t, rsp, 1000000000), 3 + 32);
	assert_int_equal(rsp[3] << 8 | rsp[4], 500);
	assert_int_equal(pm_transport_rtu_tcp.send(t, req, sizeof(req)), 0);
	assert_int_equal(pm_transport_rtu_tcp.receive(t, rsp, 1000000000), -PM_ECRC);
	assert_int_equal(pm_transport_rtu_tcp.send(t, req, sizeof(req)), 0);
	assert_int_equal(pm_transport_rtu_tcp.receive(t, rsp, 100000000), -PM_EFRAME);
	assert_int_equal(pm_transport_rtu_tcp.send(t, req, sizeof(req)), 0);
	assert_int_equal(pm_transport_rtu_tcp.receive(t, rsp, 1000000000), -PM_EFRAME);
	usleep(20000);
	assert_int_equal(pm_transport_rtu_tcp.send(t, req, sizeof(req)), 0);
	assert_int_equal(pm_transport_rtu_tcp.receive(t, rsp, 1000000000), 3 + 32);
	assert_int_equal(rsp[0], 9);
	pm_transport_rtu_tcp.close(t);
	gateway_finish(&g);
	/* each request went out as an RTU frame with its CRC */
	crc = pm_rtu_crc16(req, sizeof(req));
	assert_memory_equal(g.got[0], req, sizeof(req));
	assert_int_equal(g.got[0][6], crc & 0xff);
	assert_int_equal(g.got[0][7], crc >> 8);
}

/* ---- open, lock, messages ------------------------------------------------------ */

static void test_lock(void **state)
{
	const char *dir = *state;
	struct pm_bus *a, *b = NULL;
	struct pm_bus_fault fault;
	char path[256], url[64];
	struct gateway g;
	struct stat st;
	mode_t old_mask;

	gateway_open(&g, "rtu+tcp");
	gateway_start(&g);
	assert_int_equal(pm_bus_open(&a, g.url, &line9600), 0);
	/* the same gateway under another name is the same lock */
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", g.port);
	assert_int_equal(pm_bus_open_fault(&b, url, &line9600, &fault), -EBUSY);
	assert_null(b);
	assert_int_equal(fault.holder, getpid());
	assert_int_equal(pm_net_lock_holder(g.url), getpid());
	snprintf(path, sizeof(path), "%s/gateway-127.0.0.1:%d.lock", dir, g.port);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0644);
	pm_bus_close(a);
	assert_int_equal(pm_net_lock_holder(g.url), 0);
	gateway_finish(&g);

	/* a symbolic link in its place is never followed */
	gateway_open(&g, "rtu+tcp");
	snprintf(path, sizeof(path), "%s/gateway-127.0.0.1:%d.lock", dir, g.port);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_int_equal(pm_bus_open(&a, g.url, &line9600), -ELOOP);
	close(g.lfd);

	/* a missing directory is made, readable by all under the daemon's
	 * UMask=0027, and so is the file */
	gateway_open(&g, "rtu+tcp");
	gateway_start(&g);
	snprintf(path, sizeof(path), "%s/run", dir);
	assert_int_equal(setenv("RUNTIME_DIRECTORY", path, 1), 0);
	old_mask = umask(0027);
	assert_int_equal(pm_bus_open(&a, g.url, &line9600), 0);
	(void)umask(old_mask);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0755);
	snprintf(path, sizeof(path), "%s/run/gateway-127.0.0.1:%d.lock", dir, g.port);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	pm_bus_close(a);
	gateway_finish(&g);
	assert_int_equal(setenv("RUNTIME_DIRECTORY", dir, 1), 0);
}

static void test_connect_errors(void **state)
{
	struct pm_bus *bus = NULL;
	struct gateway g;
	char url[64];

	(void)state;
	/* a port nobody listens on */
	gateway_open(&g, "tcp");
	close(g.lfd);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", g.port);
	assert_int_equal(pm_bus_open(&bus, url, &line9600), -ECONNREFUSED);
	assert_int_equal(pm_bus_open(&bus, "rtu+tcp://127.0.0.1", &line9600), -EINVAL);
	assert_null(bus);
}

static void check_message(const char *port, int err, const char *want)
{
	struct pm_device dev = {
		.id = 1, .port = (char *)port, .address = 1, .line = line9600,
		.timeout = 1.0,
	};
	struct pm_bus_fault f = { .err = err, .holder = 4321 };
	char buf[512];

	pm_describe_failure(buf, sizeof(buf), &dev, err, &f);
	assert_string_equal(buf, want);
}

static void test_messages(void **state)
{
	(void)state;
	check_message("tcp://10.0.0.5", -ECONNREFUSED,
		"device 1 on tcp://10.0.0.5 address 1: connection refused by gateway "
		"10.0.0.5:502: is the gateway powered and is its TCP server enabled on "
		"that port?");
	check_message("rtu+tcp://10.0.0.5:4001", -ETIMEDOUT,
		"device 1 on rtu+tcp://10.0.0.5:4001 address 1: no answer within 1.0 s "
		"through gateway 10.0.0.5:4001 (timeout) \u2014 is the gateway reachable? "
		"Behind it: wiring A/B, 12 V supply, address, and the baud rate set in "
		"the gateway");
	check_message("tcp://10.0.0.5", -EIO,
		"device 1 on tcp://10.0.0.5 address 1: the connection to gateway "
		"10.0.0.5:502 failed (closed, reset, or silent for 3 requests) \u2014 was "
		"the gateway restarted or the network interrupted?");
	check_message("tcp://10.0.0.5", -EHOSTUNREACH,
		"device 1 on tcp://10.0.0.5 address 1: gateway 10.0.0.5:502 cannot be "
		"reached (No route to host) \u2014 is it powered and on this network?");
	check_message("tcp://10.0.0.5", -EBUSY,
		"device 1 on tcp://10.0.0.5 address 1: port tcp://10.0.0.5 busy (held "
		"by pid 4321)");
	/* the RS-485 advice still holds behind a transparent converter */
	check_message("rtu+tcp://10.0.0.5:4001", -PM_ECRC,
		"device 1 on rtu+tcp://10.0.0.5:4001 address 1: answer failed CRC "
		"check (noise on the RS-485 line? termination, cable length)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_keys),
		cmocka_unit_test_setup_teardown(test_tcp_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_late_answer_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_bad_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_half_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rtu_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_errors, setup, teardown),
		cmocka_unit_test(test_messages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
