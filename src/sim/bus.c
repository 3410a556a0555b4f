/* bus.c — one simulated RS-485 bus: a pseudo-terminal linked at the bus's
 * path, or an Ethernet gateway in front of it listening on a TCP port; the
 * thread that frames requests and answers for the modules on it at the
 * pace of the wire, and outages (disconnect and return). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "util/log.h"
#include "sim.h"
#include "util/timeutil.h"

#define SILENCE_MIN_NS	1750000	/* Modbus RTU: fixed 1.75 ms above 19200 baud */
#define RETRY_NS	1000000000LL
#define GARBAGE_ROOM	8

/* Modbus messaging on TCP/IP implementation guide v1.0b, 3.1.3: transaction
 * id, protocol id (0), length of what follows (unit id and PDU), unit id. */
#define MBAP_LEN	7
#define MBAP_LENGTH_MAX	254	/* unit id and a PDU of 253 bytes */
#define GW_BACKLOG	4
#define GW_SEND_TIMEOUT_S 1	/* a client that stopped reading loses answers */

struct rx {
	uint8_t buf[RTU_MAX_ADU + GARBAGE_ROOM];	/* an MBAP frame is 260 */
	size_t len;
	bool bad;		/* not a frame: dropped at the next silence */
	int64_t t0;		/* when the first byte arrived */
};

static speed_t speed_of(int baud)
{
	switch (baud) {
	case 1200:	return B1200;
	case 2400:	return B2400;
	case 4800:	return B4800;
	case 9600:	return B9600;
	case 19200:	return B19200;
	case 38400:	return B38400;
	case 57600:	return B57600;
	case 115200:	return B115200;
	default:	return B0;
	}
}

static void termios_for_line(struct termios *t, const struct sim_line *l)
{
	cfmakeraw(t);
	t->c_cflag &= ~(tcflag_t)(CSIZE | PARENB | PARODD | CSTOPB);
	t->c_cflag |= CS8 | CLOCAL | CREAD;
	if (l->framing == SIM_E81 || l->framing == SIM_O81) {
		t->c_cflag |= PARENB;
		t->c_iflag |= INPCK;	/* what remains of PARENB on a pty */
	}
	if (l->framing == SIM_O81)
		t->c_cflag |= PARODD;
	if (l->framing == SIM_N82)
		t->c_cflag |= CSTOPB;
	(void)cfsetispeed(t, speed_of(l->baud));
	(void)cfsetospeed(t, speed_of(l->baud));
}

/*
 * Does the client's port (its termios, shared by every fd of the pty
 * slave) run the module's line settings? If not, a real module would only
 * see garbage. Linux keeps a pty's speed, CSTOPB and PARODD but clears
 * PARENB (and forces CS8), so parity is also told by INPCK, which
 * libmodbus sets exactly when parity is on.
 */
static bool line_matches(int slave_fd, const struct sim_line *l)
{
	struct termios t;
	bool parity = l->framing == SIM_E81 || l->framing == SIM_O81;
	bool client_parity;

	if (tcgetattr(slave_fd, &t) < 0)
		return false;
	client_parity = (t.c_cflag & (PARENB | PARODD)) || (t.c_iflag & INPCK);
	log_debug("client line: cflag %#o, iflag %#o", (unsigned)t.c_cflag,
		  (unsigned)t.c_iflag);
	if (cfgetospeed(&t) != speed_of(l->baud))
		return false;
	if ((t.c_cflag & CSIZE) != CS8)
		return false;
	if (client_parity != parity)
		return false;
	if (!!(t.c_cflag & PARODD) != (l->framing == SIM_O81))
		return false;
	return !!(t.c_cflag & CSTOPB) == (l->framing == SIM_N82);
}

/* Does the module with line settings 'l' hear the requests? Behind a
 * gateway the serial side runs the bus's settings, whatever the client's. */
static bool bus_hears(struct sim_bus *b, const struct sim_line *l)
{
	if (b->kind == SIM_BUS_PTY)
		return line_matches(b->slave_fd, l);
	return l->baud == b->line.baud && l->framing == b->line.framing;
}

/* Points 'path' at 'target' atomically; refuses to replace anything but
 * a symbolic link. */
static int link_replace(const char *path, const char *target)
{
	char tmp[PATH_MAX];
	struct stat st;
	int r;

	if (lstat(path, &st) == 0 && !S_ISLNK(st.st_mode))
		return -EEXIST;
	r = snprintf(tmp, sizeof(tmp), "%s.%ld.new", path, (long)getpid());
	if (r < 0 || (size_t)r >= sizeof(tmp))
		return -ENAMETOOLONG;
	(void)unlink(tmp);
	if (symlink(target, tmp) < 0)
		return -errno;
	if (rename(tmp, path) < 0) {
		r = -errno;
		(void)unlink(tmp);
		return r;
	}
	return 0;
}

/* Removes the link if it still points at our slave. */
static void link_remove(const char *path, const char *target)
{
	char cur[PATH_MAX];
	ssize_t n = readlink(path, cur, sizeof(cur) - 1);

	if (n < 0)
		return;
	cur[n] = '\0';
	if (strcmp(cur, target) == 0)
		(void)unlink(path);
}

static void pty_close(struct sim_bus *b)
{
	if (b->master_fd >= 0)
		link_remove(b->path, b->slave_name);
	if (b->inotify_fd >= 0)
		close(b->inotify_fd);
	if (b->slave_fd >= 0)
		close(b->slave_fd);
	if (b->master_fd >= 0)
		close(b->master_fd);
	b->inotify_fd = b->slave_fd = b->master_fd = -1;
}

static int pty_open(struct sim_bus *b)
{
	struct termios t;
	int r;

	b->master_fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (b->master_fd < 0)
		return -errno;
	if (grantpt(b->master_fd) < 0 || unlockpt(b->master_fd) < 0) {
		r = -errno;
		goto fail;
	}
	r = ptsname_r(b->master_fd, b->slave_name, sizeof(b->slave_name));
	if (r != 0) {
		r = -r;
		goto fail;
	}
	b->slave_fd = open(b->slave_name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (b->slave_fd < 0) {
		r = -errno;
		goto fail;
	}
	if (tcgetattr(b->slave_fd, &t) < 0) {
		r = -errno;
		goto fail;
	}
	termios_for_line(&t, &b->line);
	if (tcsetattr(b->slave_fd, TCSANOW, &t) < 0) {
		r = -errno;
		goto fail;
	}
	/* see inotify_drain */
	b->clients = 0;
	b->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (b->inotify_fd < 0 || inotify_add_watch(b->inotify_fd, b->slave_name,
						 IN_OPEN | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE) < 0) {
		r = -errno;
		goto fail;
	}
	r = link_replace(b->path, b->slave_name);
	if (r < 0)
		goto fail;
	return 0;
fail:
	/* pty_close removes the link only if it already points at our slave */
	pty_close(b);
	b->slave_name[0] = '\0';
	return r;
}

static int be16(const uint8_t *p)
{
	return p[0] << 8 | p[1];
}

static void put_be16(uint8_t *p, int v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static struct sim_module *module_at(struct sim_bus *b, int addr)
{
	for (size_t i = 0; i < b->nmodules; i++)
		if (sim_module_address(&b->modules[i]) == addr)
			return &b->modules[i];
	return NULL;
}

/* Decoded request: what FC 0x03/0x06/0x10 carry. */
struct request {
	int addr, fc, start, count;
	uint16_t values[MB_MAX_WRITE];
	int nvalues;
	bool malformed;
};

static void request_decode(const uint8_t *f, size_t len, struct request *q)
{
	memset(q, 0, sizeof(*q));
	q->addr = f[0];
	q->fc = f[1];
	if (len < 8)
		return;
	q->start = be16(f + 2);
	q->count = be16(f + 4);
	if (q->fc == MB_FC_WRITE_SINGLE) {
		q->values[0] = (uint16_t)q->count;
		q->nvalues = 1;
		q->count = 1;
	} else if (q->fc == MB_FC_WRITE_MULTIPLE) {
		if (q->count < 1 || q->count > MB_MAX_WRITE || f[6] != 2 * q->count ||
		    len != 9 + (size_t)f[6]) {
			q->malformed = true;
			return;
		}
		for (int i = 0; i < q->count; i++)
			q->values[i] = (uint16_t)be16(f + 7 + 2 * i);
		q->nvalues = q->count;
	}
}

static bool is_write(int fc)
{
	return fc == MB_FC_WRITE_SINGLE || fc == MB_FC_WRITE_MULTIPLE;
}

/* Builds the correct answer of module m into 'resp'. Returns its length;
 * *ex is the Modbus exception code or 0. */
static size_t answer_build(struct sim_module *m, const struct request *q, uint8_t *resp,
			   uint16_t *values, int *nvalues, int *ex, double t_s, double unix_s,
			   int addr)
{
	size_t n;

	*nvalues = 0;
	switch (q->fc) {
	case MB_FC_READ_HOLDING:
		*ex = sim_module_read(m, q->start, q->count, values, t_s, unix_s);
		if (*ex)
			break;
		resp[0] = (uint8_t)addr;
		resp[1] = MB_FC_READ_HOLDING;
		resp[2] = (uint8_t)(2 * q->count);
		for (int i = 0; i < q->count; i++)
			put_be16(resp + 3 + 2 * i, values[i]);
		*nvalues = q->count;
		return rtu_append_crc(resp, 3 + 2 * (size_t)q->count);
	case MB_FC_WRITE_SINGLE:
	case MB_FC_WRITE_MULTIPLE:
		*ex = q->malformed ? MB_EX_ILLEGAL_VALUE :
		      sim_module_write(m, q->start, q->count, q->values, true);
		if (*ex)
			break;
		memcpy(values, q->values, sizeof(uint16_t) * (size_t)q->nvalues);
		*nvalues = q->nvalues;
		resp[0] = (uint8_t)addr;
		resp[1] = (uint8_t)q->fc;
		put_be16(resp + 2, q->start);
		put_be16(resp + 4, q->fc == MB_FC_WRITE_SINGLE ? q->values[0] : q->count);
		return rtu_append_crc(resp, 6);
	default:
		*ex = MB_EX_ILLEGAL_FUNCTION;
		break;
	}
	n = rtu_exception(resp, addr, q->fc, *ex);
	return n;
}

/*
 * What a gateway passes on to its client: a transparent converter the
 * bytes as they are; a Modbus TCP gateway the answer under an MBAP header
 * with the request's transaction id, but only an answer whose CRC holds —
 * one spoiled on the line (bad CRC, cut short, garbage) is dropped, as
 * cheap gateways do, and the client times out.
 */
static void gw_write(struct sim_bus *b, const uint8_t *frame, size_t len)
{
	uint8_t out[MBAP_LEN + RTU_MAX_ADU + GARBAGE_ROOM];
	const uint8_t *p = frame;
	size_t n = len, done = 0;

	if (b->client_fd < 0)
		return;
	if (b->kind == SIM_BUS_TCP) {
		if (!rtu_crc_ok(frame, len)) {
			log_debug("%s: the answer fails its CRC, the gateway drops it", b->path);
			return;
		}
		put_be16(out, (int)b->tid);
		put_be16(out + 2, 0);
		put_be16(out + 4, (int)len - 2);
		memcpy(out + 6, frame, len - 2);
		p = out;
		n = len - 2 + 6;
	}
	while (done < n) {
		ssize_t w = send(b->client_fd, p + done, n - done, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			log_warning("%s: answer not delivered (%s), dropping %zu bytes", b->path,
				    strerror(errno), n - done);
			return;
		}
		done += (size_t)w;
	}
}

/* Writes the whole frame; a client that stopped reading loses the rest. */
static void frame_write(struct sim_bus *b, const uint8_t *frame, size_t len)
{
	size_t done = 0;

	if (b->kind != SIM_BUS_PTY) {
		gw_write(b, frame, len);
		return;
	}
	while (done < len) {
		ssize_t n = write(b->master_fd, frame + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_warning("%s: answer not delivered (%s), dropping %zu bytes",
				    b->path, strerror(errno), len - done);
			return;
		}
		done += (size_t)n;
	}
}

/*
 * The Unix time at which the answer to q goes out (profiles are read at
 * it): with wire time the instant the whole correct answer is written (see
 * request_handle), otherwise now, the request being complete.
 */
static double answer_unix_s(const struct sim_bus *b, const struct sim_line *line,
			    const struct request *q, size_t len, int64_t t0, int64_t now)
{
	struct timespec ts;
	int64_t at = now;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (b->wire_time && q->fc == MB_FC_READ_HOLDING) {
		int64_t char_ns = sim_char_ns(line);
		int64_t due = t0 + (int64_t)(len + 5 + 2 * (size_t)q->count) * char_ns +
			      char_ns * 7 / 2;

		if (due > now)
			at = due;
	}
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + (double)(at - pm_mono_ns()) / 1e9;
}

static void request_handle(struct sim_bus *b, const uint8_t *frame, size_t len, int64_t t0)
{
	uint8_t resp[RTU_MAX_ADU + GARBAGE_ROOM];
	uint16_t values[MB_MAX_READ];
	struct txlog_entry e = { .bus = b->path };
	struct sim_module *m;
	struct sim_line line;
	struct request q;
	enum sim_fault_kind fault;
	size_t rlen = 0;
	int64_t char_ns, now = pm_mono_ns();
	double t_s = (double)(now - b->sim->start_ns) / 1e9;
	int ex = 0, nvalues = 0;

	request_decode(frame, len, &q);
	e.addr = q.addr;
	e.fc = q.fc;
	e.start = q.start;
	e.count = q.count;

	pthread_mutex_lock(&b->lock);
	b->requests++;
	if (q.addr == MB_BROADCAST) {
		/* applied by every module that hears it, never answered */
		e.result = "broadcast";
		for (size_t i = 0; i < b->nmodules; i++) {
			sim_module_line(&b->modules[i], &line);
			if (is_write(q.fc) && !q.malformed && bus_hears(b, &line))
				(void)sim_module_write(&b->modules[i], q.start, q.count,
						       q.values, false);
		}
		pthread_mutex_unlock(&b->lock);
		txlog_write(b->sim, &e);
		return;
	}
	m = module_at(b, q.addr);
	if (!m) {
		pthread_mutex_unlock(&b->lock);
		e.result = "absent";
		txlog_write(b->sim, &e);
		return;
	}
	m->requests++;
	sim_module_line(m, &line);
	if (!bus_hears(b, &line)) {
		m->mismatches++;
		pthread_mutex_unlock(&b->lock);
		e.result = "line-mismatch";
		txlog_write(b->sim, &e);
		return;
	}

	fault = m->fault.kind;
	if (fault == SIM_FAULT_STALL && now >= m->fault.until_ns) {
		m->fault.kind = fault = SIM_FAULT_NONE;
	}
	if (fault == SIM_FAULT_NOISY) {
		int noise = sim_noise_draw(m->fault.probability, &b->rng);

		fault = noise < 0 ? SIM_FAULT_NONE : sim_noise_kinds[noise];
		if (noise >= 0)
			m->noise[noise]++;
	}
	if (fault != SIM_FAULT_NONE) {
		m->faults++;
		if (fault != SIM_FAULT_STALL && m->fault.remaining > 0 && --m->fault.remaining == 0)
			m->fault.kind = SIM_FAULT_NONE;
	}
	if (fault == SIM_FAULT_STALL || fault == SIM_FAULT_NOANSWER) {
		/* the module did not hear it: nothing is applied */
		pthread_mutex_unlock(&b->lock);
		e.result = sim_fault_name(fault);
		txlog_write(b->sim, &e);
		return;
	}
	if (fault == SIM_FAULT_EXCEPTION) {
		ex = MB_EX_DEVICE_FAILURE;
		rlen = rtu_exception(resp, q.addr, q.fc, ex);
		e.result = "exception";
	} else {
		rlen = answer_build(m, &q, resp, values, &nvalues, &ex, t_s,
				    answer_unix_s(b, &line, &q, len, t0, now), q.addr);
		e.result = ex ? "exception" : "ok";
		if (fault != SIM_FAULT_NONE) {
			rlen = sim_fault_mangle(fault, resp, rlen, q.addr, &b->rng);
			e.result = sim_fault_name(fault);
		}
	}
	m->answers++;
	char_ns = sim_char_ns(&line);
	pthread_mutex_unlock(&b->lock);

	/* t0 + (request + answer) characters + the 3.5-character turnaround */
	if (b->wire_time) {
		int64_t due = t0 + (int64_t)(len + rlen) * char_ns + char_ns * 7 / 2;

		pm_sleep_until_ns(due);
		frame_write(b, resp, rlen);
		log_debug("%s: answer written %lld us after its wire-time instant", b->path,
			  (long long)((pm_mono_ns() - due) / 1000));
	} else {
		frame_write(b, resp, rlen);
	}
	e.exception = ex;
	e.values = values;
	e.nvalues = nvalues;
	txlog_write(b->sim, &e);

	pthread_mutex_lock(&b->lock);
	sim_module_apply_pending(m);	/* register 3: after the answer */
	pthread_mutex_unlock(&b->lock);
}

/* Hands every complete, valid frame at the head of rx to request_handle. */
static void rx_frames(struct sim_bus *b, struct rx *rx)
{
	while (rx->len > 0 && !rx->bad) {
		int need = rtu_request_len(rx->buf, rx->len);

		if (need <= 0 || rx->len < (size_t)need)
			break;	/* more bytes, or a silence, will tell */
		if (need > RTU_MAX_ADU || !rtu_crc_ok(rx->buf, (size_t)need)) {
			rx->bad = true;
			break;
		}
		request_handle(b, rx->buf, (size_t)need, rx->t0);
		memmove(rx->buf, rx->buf + need, rx->len - (size_t)need);
		rx->len -= (size_t)need;
		rx->t0 = pm_mono_ns();
	}
}

/* 3.5 characters without a byte end a frame. */
static void rx_silence(struct sim_bus *b, struct rx *rx)
{
	/* a function code we cannot size is a frame if its CRC holds */
	if (!rx->bad && rtu_request_len(rx->buf, rx->len) < 0 && rtu_crc_ok(rx->buf, rx->len)) {
		request_handle(b, rx->buf, rx->len, rx->t0);
	} else {
		log_debug("%s: %zu bytes that are no frame, dropped", b->path, rx->len);
		pthread_mutex_lock(&b->lock);
		b->discarded += rx->len;
		pthread_mutex_unlock(&b->lock);
	}
	rx->len = 0;
	rx->bad = false;
}

static void rx_read(struct sim_bus *b, struct rx *rx)
{
	uint8_t scratch[RTU_MAX_ADU];
	ssize_t n;

	if (rx->len == 0)
		rx->t0 = pm_mono_ns();
	if (rx->len < sizeof(rx->buf)) {
		n = read(b->master_fd, rx->buf + rx->len, sizeof(rx->buf) - rx->len);
		if (n > 0)
			rx->len += (size_t)n;
	} else {
		/* longer than any RTU frame: garbage until the next silence */
		n = read(b->master_fd, scratch, sizeof(scratch));
		rx->bad = true;
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		log_warning("%s: read: %s", b->path, strerror(errno));
}

/*
 * A real port starts empty when it is opened, and its last close drops
 * what nobody read. Our own slave fd keeps the pty's queue alive, so we
 * count the clients' opens and closes and flush at the edges: an answer
 * a client timed out on never reaches the next client.
 */
static void inotify_drain(struct sim_bus *b)
{
	char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool flush = false;
	ssize_t n;

	while ((n = read(b->inotify_fd, ev, sizeof(ev))) > 0) {
		for (char *p = ev; p < ev + n; ) {
			const struct inotify_event *e = (const struct inotify_event *)p;

			if (e->mask & IN_OPEN) {
				flush |= b->clients == 0;
				b->clients++;
			}
			if ((e->mask & (IN_CLOSE_WRITE | IN_CLOSE_NOWRITE)) && b->clients > 0) {
				b->clients--;
				flush |= b->clients == 0;
			}
			if (e->mask & IN_Q_OVERFLOW) {
				b->clients = 0;
				flush = true;
			}
			p += sizeof(*e) + e->len;
		}
	}
	if (flush) {
		int pending = 0;

		if (ioctl(b->slave_fd, FIONREAD, &pending) == 0 && pending > 0)
			log_debug("%s: %d bytes nobody read, dropped", b->path, pending);
		(void)tcflush(b->slave_fd, TCIFLUSH);
	}
}

static void wake_drain(struct sim_bus *b)
{
	uint64_t v;

	(void)!read(b->wake_fd, &v, sizeof(v));
}

/* ---- the gateway: a TCP port in front of the bus ------------------------ */

static const char *gw_scheme(enum sim_bus_kind kind)
{
	return kind == SIM_BUS_TCP ? "tcp" : "rtu+tcp";
}

static void gw_client_close(struct sim_bus *b, struct rx *rx)
{
	if (b->client_fd < 0)
		return;
	close(b->client_fd);
	b->client_fd = -1;
	rx->len = 0;
	rx->bad = false;
	pthread_mutex_lock(&b->lock);
	b->connected = false;
	pthread_mutex_unlock(&b->lock);
}

static void gw_close(struct sim_bus *b, struct rx *rx)
{
	gw_client_close(b, rx);
	if (b->listen_fd >= 0)
		close(b->listen_fd);
	b->listen_fd = -1;
}

/*
 * Listens on the gateway's address. SO_REUSEADDR: a simulator restarted
 * on the port of one that was killed gets it at once. With port 0 the
 * port the kernel chose goes into b->path, where the control socket's
 * stats and the log show it (only before the thread starts: later calls
 * find the port in the path).
 */
static int gw_listen(struct sim_bus *b)
{
	struct addrinfo hints = {
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
	};
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	struct addrinfo *res = NULL;
	enum sim_bus_kind kind;
	char host[64], service[8], *path;
	int fd, port, one = 1, r;

	if (sim_listen_parse(b->path, &kind, host, sizeof(host), &port) < 0)
		return -EINVAL;
	snprintf(service, sizeof(service), "%d", port);
	if (getaddrinfo(host, service, &hints, &res) != 0)
		return -EINVAL;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, GW_BACKLOG) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &salen) < 0) {
		r = -errno;
		close(fd);
		goto out;
	}
	if (port == 0) {
		port = ntohs(sa.ss_family == AF_INET6 ?
			     ((struct sockaddr_in6 *)&sa)->sin6_port :
			     ((struct sockaddr_in *)&sa)->sin_port);
		if (asprintf(&path, res->ai_family == AF_INET6 ? "%s://[%s]:%d" : "%s://%s:%d",
			     gw_scheme(kind), host, port) < 0) {
			r = -ENOMEM;
			close(fd);
			goto out;
		}
		free(b->path);
		b->path = path;
	}
	b->listen_fd = fd;
	r = 0;
out:
	freeaddrinfo(res);
	return r;
}

/*
 * A new client. The gateway serves one at a time, as cheap converters do:
 * while one is connected, a second connection is accepted and reset at
 * once (the newcomer sees ECONNRESET or EOF), never queued.
 */
static void gw_accept(struct sim_bus *b, struct rx *rx)
{
	struct timeval tv = { .tv_sec = GW_SEND_TIMEOUT_S };
	struct linger reset = { .l_onoff = 1, .l_linger = 0 };
	int fd = accept4(b->listen_fd, NULL, NULL, SOCK_CLOEXEC), one = 1;

	if (fd < 0)
		return;
	if (b->client_fd >= 0) {
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
		close(fd);
		pthread_mutex_lock(&b->lock);
		b->refused++;
		pthread_mutex_unlock(&b->lock);
		log_info("%s: a second client, turned away", b->path);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	b->client_fd = fd;
	rx->len = 0;
	rx->bad = false;
	pthread_mutex_lock(&b->lock);
	b->connections++;
	b->connected = true;
	pthread_mutex_unlock(&b->lock);
	log_debug("%s: client connected", b->path);
}

/* Reads what the client sent; false when it is gone. */
static bool gw_read(struct sim_bus *b, struct rx *rx)
{
	uint8_t scratch[RTU_MAX_ADU];
	ssize_t n;

	if (rx->len == 0)
		rx->t0 = pm_mono_ns();
	if (rx->len < sizeof(rx->buf)) {
		n = recv(b->client_fd, rx->buf + rx->len, sizeof(rx->buf) - rx->len,
			 MSG_DONTWAIT);
		if (n > 0)
			rx->len += (size_t)n;
	} else {
		/* longer than any frame: garbage until the next silence */
		n = recv(b->client_fd, scratch, sizeof(scratch), MSG_DONTWAIT);
		rx->bad = true;
	}
	if (n == 0)
		return false;
	return n > 0 || errno == EAGAIN || errno == EINTR;
}

/*
 * Modbus TCP requests at the head of rx, each turned into the RTU frame
 * the gateway puts on the line (timed as such) and answered with its
 * transaction id. A header that is no Modbus TCP makes the gateway drop
 * the connection, as the implementation guide (4.3.1) allows.
 */
static bool mbap_frames(struct sim_bus *b, struct rx *rx)
{
	uint8_t frame[RTU_MAX_ADU];

	while (rx->len >= MBAP_LEN) {
		int length = be16(rx->buf + 4);
		size_t total = 6 + (size_t)length;

		if (be16(rx->buf + 2) != 0 || length < 2 || length > MBAP_LENGTH_MAX) {
			log_info("%s: not a Modbus TCP request, closing the connection", b->path);
			return false;
		}
		if (rx->len < total)
			break;
		memcpy(frame, rx->buf + 6, (size_t)length);
		b->tid = (unsigned)be16(rx->buf);
		request_handle(b, frame, rtu_append_crc(frame, (size_t)length), rx->t0);
		memmove(rx->buf, rx->buf + total, rx->len - total);
		rx->len -= total;
		rx->t0 = pm_mono_ns();
	}
	return true;
}

/* ---- the bus's endpoint, whichever kind --------------------------------- */

static int endpoint_open(struct sim_bus *b)
{
	return b->kind == SIM_BUS_PTY ? pty_open(b) : gw_listen(b);
}

static void endpoint_close(struct sim_bus *b, struct rx *rx)
{
	if (b->kind == SIM_BUS_PTY)
		pty_close(b);
	else
		gw_close(b, rx);
}

/* The converter is unplugged (a pty: link gone, clients see EIO) or the
 * gateway is off (connection dropped, connects refused) for 'ns'. */
static void bus_outage(struct sim_bus *b, struct rx *rx, int64_t ns)
{
	int64_t deadline = pm_mono_ns() + ns;
	int r;

	endpoint_close(b, rx);
	pthread_mutex_lock(&b->lock);
	b->disconnected = true;
	b->outages++;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	log_info("%s: disconnected for %.1f s", b->path, (double)ns / 1e9);
	for (;;) {
		struct pollfd pfd = { .fd = b->wake_fd, .events = POLLIN };
		int64_t left = deadline - pm_mono_ns();
		struct timespec ts = pm_mono_timespec(left > 0 ? left : 0);

		if (left <= 0) {
			r = endpoint_open(b);
			if (r == 0)
				break;
			log_err("%s: cannot come back: %s, retrying", b->path, strerror(-r));
			deadline = pm_mono_ns() + RETRY_NS;
			continue;
		}
		if (ppoll(&pfd, 1, &ts, NULL) > 0)
			wake_drain(b);
		pthread_mutex_lock(&b->lock);
		if (b->stop) {
			pthread_mutex_unlock(&b->lock);
			return;
		}
		if (b->disconnect_ns) {
			/* asked again while out: the new length counts from now */
			deadline = pm_mono_ns() + b->disconnect_ns;
			b->disconnect_ns = 0;
		}
		pthread_mutex_unlock(&b->lock);
	}
	pthread_mutex_lock(&b->lock);
	b->disconnected = false;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	log_info("%s: connected again", b->path);
}

/* Bytes came from the client (the pty's master, or the gateway's
 * connection): frame and answer them. */
static void bus_input(struct sim_bus *b, struct rx *rx, short revents)
{
	if (b->kind == SIM_BUS_PTY) {
		if (revents & POLLIN) {
			rx_read(b, rx);
			rx_frames(b, rx);
		}
		return;
	}
	if (!gw_read(b, rx)) {
		log_debug("%s: client gone", b->path);
		gw_client_close(b, rx);
		return;
	}
	if (b->kind == SIM_BUS_RTU_TCP)
		rx_frames(b, rx);
	else if (!mbap_frames(b, rx))
		gw_client_close(b, rx);
}

static void *bus_thread(void *arg)
{
	struct sim_bus *b = arg;
	int64_t silence_ns = sim_char_ns(&b->line) * 7 / 2;
	struct rx rx = { .len = 0 };
	/* Modbus TCP frames by its header, never by silence */
	bool by_silence = b->kind != SIM_BUS_TCP;

	if (silence_ns < SILENCE_MIN_NS)
		silence_ns = SILENCE_MIN_NS;
	/* answers leave at their wire-time instant, not 50 us later */
	(void)prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
	for (;;) {
		bool pty = b->kind == SIM_BUS_PTY;
		struct pollfd pfd[3] = {
			{ .fd = b->wake_fd, .events = POLLIN },
			{ .fd = pty ? b->inotify_fd : b->listen_fd, .events = POLLIN },
			{ .fd = pty ? b->master_fd : b->client_fd, .events = POLLIN },
		};
		struct timespec ts = pm_mono_timespec(silence_ns);
		int64_t outage;
		int r;

		pthread_mutex_lock(&b->lock);
		outage = b->disconnect_ns;
		b->disconnect_ns = 0;
		if (b->stop) {
			pthread_mutex_unlock(&b->lock);
			break;
		}
		pthread_mutex_unlock(&b->lock);
		if (outage) {
			rx.len = 0;
			rx.bad = false;
			bus_outage(b, &rx, outage);
			continue;
		}

		r = ppoll(pfd, 3, rx.len && by_silence ? &ts : NULL, NULL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			log_err("%s: poll: %s", b->path, strerror(errno));
			break;
		}
		if (pfd[0].revents & POLLIN) {
			wake_drain(b);
			continue;
		}
		if ((pfd[1].revents & POLLIN) && pty)
			inotify_drain(b);
		else if (pfd[1].revents & POLLIN)
			gw_accept(b, &rx);
		if (r == 0) {
			rx_silence(b, &rx);
			continue;
		}
		if (pfd[2].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (pty && !(pfd[2].revents & POLLIN)) {
				/* cannot happen while we hold the slave open */
				log_err("%s: the pseudo-terminal hung up", b->path);
				break;
			}
			bus_input(b, &rx, pfd[2].revents);
		}
	}
	if (!(b->kind == SIM_BUS_PTY))
		gw_client_close(b, &rx);
	return NULL;
}

int bus_start(struct sim_bus *b)
{
	pthread_condattr_t ca;
	int r;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&b->lock, NULL);
	b->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->wake_fd < 0)
		return -errno;
	r = endpoint_open(b);
	if (r < 0) {
		log_err("%s: cannot %s: %s", b->path, b->kind == SIM_BUS_PTY ?
			"create the pseudo-terminal" : "listen", strerror(-r));
		return r;
	}
	r = -pthread_create(&b->thread, NULL, bus_thread, b);
	if (r < 0) {
		log_err("%s: cannot start its thread: %s", b->path, strerror(-r));
		return r;
	}
	b->thread_started = true;
	if (b->kind == SIM_BUS_PTY)
		log_info("%s: serving %zu module(s) at %d %s on %s", b->path, b->nmodules,
			 b->line.baud, sim_framing_name(b->line.framing), b->slave_name);
	else	/* the port chosen for port 0: tests read it here or in stats */
		log_notice("bus %d: listening on %s, %zu module(s) at %d %s behind a %s",
			   b->index, b->path, b->nmodules, b->line.baud,
			   sim_framing_name(b->line.framing),
			   b->kind == SIM_BUS_TCP ? "Modbus TCP gateway" : "transparent converter");
	return 0;
}

static void wake(struct sim_bus *b)
{
	uint64_t one = 1;

	(void)!write(b->wake_fd, &one, sizeof(one));
}

/* Safe on a bus whose bus_start failed or never ran, once the lock exists. */
void bus_stop(struct sim_bus *b)
{
	struct rx rx = { .len = 0 };

	if (b->thread_started) {
		pthread_mutex_lock(&b->lock);
		b->stop = true;
		pthread_mutex_unlock(&b->lock);
		wake(b);
		pthread_join(b->thread, NULL);
		b->thread_started = false;
	}
	endpoint_close(b, &rx);
	if (b->wake_fd >= 0)
		close(b->wake_fd);
	b->wake_fd = -1;
}

/* Waits (a few seconds at most) until the link is gone. */
int bus_disconnect(struct sim_bus *b, double seconds)
{
	struct timespec ts = pm_mono_timespec(pm_mono_ns() + 5 * 1000000000LL);
	uint64_t outages;
	int r = 0;

	if (!(seconds > 0) || seconds > 86400)
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	if (b->disconnected) {
		b->disconnect_ns = (int64_t)(seconds * 1e9);
		pthread_mutex_unlock(&b->lock);
		wake(b);
		return 0;
	}
	b->disconnect_ns = (int64_t)(seconds * 1e9);
	outages = b->outages;
	wake(b);
	while (b->outages == outages && r == 0)
		r = -pthread_cond_timedwait(&b->cond, &b->lock, &ts);
	pthread_mutex_unlock(&b->lock);
	return r;
}
