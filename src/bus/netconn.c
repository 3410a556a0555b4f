/* netconn.c — the network transports' common part: parsing
 * "scheme://HOST:PORT", the gateway's lock file, connecting with a
 * deadline, and sending and receiving on a socket where no wait is
 * unbounded (see netconn.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus/netconn.h"
#include "bus/portlock.h"
#include "util/timeutil.h"

#define PORT_MAX		65535
#define DRAIN_CHUNK		256

static int bad_endpoint(char *why, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad_endpoint(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (why && size) {
		va_start(ap, fmt);
		(void)vsnprintf(why, size, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

bool pm_net_is_url(const char *endpoint)
{
	return endpoint && strstr(endpoint, "://") != NULL;
}

static bool host_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

/* "[v6]" at p: the address (canonical) into e; *next after the ']'. */
static int parse_ipv6(const char *p, struct pm_net_endpoint *e,
		      const char **next, char *why, size_t size)
{
	const char *end = strchr(p, ']');
	char text[INET6_ADDRSTRLEN];
	struct in6_addr a;
	size_t n;

	if (!end)
		return bad_endpoint(why, size, "an IPv6 address in brackets needs "
			    "its closing ']'");
	n = (size_t)(end - p - 1);
	if (n == 0 || n >= sizeof(text))
		return bad_endpoint(why, size, "no IPv6 address between the brackets");
	memcpy(text, p + 1, n);
	text[n] = '\0';
	if (inet_pton(AF_INET6, text, &a) != 1)
		return bad_endpoint(why, size, "\"%s\" is not an IPv6 address (a zone "
			    "such as %%eth0 is not supported)", text);
	if (!inet_ntop(AF_INET6, &a, e->host, sizeof(e->host)))
		return bad_endpoint(why, size, "\"%s\" is not an IPv6 address", text);
	e->ipv6 = true;
	*next = end + 1;
	return 0;
}

/* A host name or IPv4 address at p, lowercased into e. */
static int parse_host(const char *p, struct pm_net_endpoint *e,
		      const char **next, char *why, size_t size)
{
	struct in_addr a;
	size_t n = 0;
	bool numeric = true;

	while (host_char(p[n])) {
		numeric &= isdigit((unsigned char)p[n]) || p[n] == '.';
		n++;
	}
	if (n == 0)
		return bad_endpoint(why, size, "no host name or address before \"%s\"",
			    p);
	if (n > PM_NET_HOST_MAX)
		return bad_endpoint(why, size, "the host name is longer than %d "
			    "characters", PM_NET_HOST_MAX);
	for (size_t i = 0; i < n; i++)
		e->host[i] = (char)tolower((unsigned char)p[i]);
	e->host[n] = '\0';
	if (numeric && inet_pton(AF_INET, e->host, &a) != 1)
		return bad_endpoint(why, size, "\"%s\" is not an IPv4 address",
			    e->host);
	if (p[n] == ':' && strchr(p + n + 1, ':'))
		return bad_endpoint(why, size, "an IPv6 address goes in brackets, "
			    "e.g. tcp://[fe80::1]:502");
	*next = p + n;
	return 0;
}

int pm_net_parse(const char *endpoint, struct pm_net_endpoint *ep, char *why,
		 size_t size)
{
	struct pm_net_endpoint e = { .kind = PM_NET_TCP };
	const char *p, *scheme;
	unsigned long port;
	unsigned default_port;
	size_t digits;
	int r;

	if (!strncmp(endpoint, PM_NET_SCHEME_TCP, strlen(PM_NET_SCHEME_TCP))) {
		scheme = PM_NET_SCHEME_TCP;
		default_port = PM_NET_MODBUS_TCP_PORT;
	} else if (!strncmp(endpoint, PM_NET_SCHEME_RTU_TCP,
			    strlen(PM_NET_SCHEME_RTU_TCP))) {
		scheme = PM_NET_SCHEME_RTU_TCP;
		e.kind = PM_NET_RTU_TCP;
		default_port = 0;
	} else {
		return bad_endpoint(why, size, "not a kind of port powermeter knows: "
			    "expected a serial port such as /dev/ttyUSB0, "
			    "tcp://HOST[:PORT] (Modbus TCP) or rtu+tcp://HOST:PORT "
			    "(RTU over TCP)");
	}
	p = endpoint + strlen(scheme);
	if (!*p)
		return bad_endpoint(why, size, "no host: expected %sHOST%s", scheme,
			    default_port ? "[:PORT]" : ":PORT");
	r = *p == '[' ? parse_ipv6(p, &e, &p, why, size)
		      : parse_host(p, &e, &p, why, size);
	if (r < 0)
		return r;
	if (*p == ':') {
		p++;
		digits = strspn(p, "0123456789");
		if (!*p)
			return bad_endpoint(why, size, "no port number after ':'");
		if (digits != strlen(p))
			return bad_endpoint(why, size, "\"%s\" is not a port number "
				    "(1..%d)", p, PORT_MAX);
		port = digits > 5 ? PORT_MAX + 1UL : strtoul(p, NULL, 10);
		if (port < 1 || port > PORT_MAX)
			return bad_endpoint(why, size, "port %s is not in 1..%d", p,
				    PORT_MAX);
		e.port = (unsigned)port;
	} else if (*p) {
		return bad_endpoint(why, size, "unexpected \"%s\" after the host: "
			    "expected :PORT or nothing", p);
	} else if (!default_port) {
		return bad_endpoint(why, size, "rtu+tcp:// needs the converter's TCP "
			    "port, e.g. rtu+tcp://10.0.0.5:4001 (there is no "
			    "standard one)");
	} else {
		e.port = default_port;
	}
	*ep = e;
	return 0;
}

int pm_net_check(const char *endpoint, char *why, size_t size)
{
	struct pm_net_endpoint e;

	if (!pm_net_is_url(endpoint))
		return 0;
	return pm_net_parse(endpoint, &e, why, size);
}

int pm_net_hostport(const struct pm_net_endpoint *ep, char *buf, size_t size)
{
	int n = snprintf(buf, size, ep->ipv6 ? "[%s]:%u" : "%s:%u", ep->host,
			 ep->port);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* ---- the gateway's lock ------------------------------------------------- */

/* $RUNTIME_DIRECTORY's first path (systemd may list several), else the
 * default: what the daemon and the command line both find. */
static int lock_dir(char *buf, size_t size)
{
	const char *env = getenv("RUNTIME_DIRECTORY");
	size_t n;

	if (!env || env[0] != '/')
		env = PM_NET_LOCK_DIR;
	n = strcspn(env, ":");
	if (n >= size)
		return -ENAMETOOLONG;
	memcpy(buf, env, n);
	buf[n] = '\0';
	return 0;
}

static int lock_name(const struct pm_net_endpoint *ep, char *buf, size_t size)
{
	char hp[PM_NET_HOST_MAX + 16];
	int n;

	if (pm_net_hostport(ep, hp, sizeof(hp)) < 0)
		return -ENAMETOOLONG;
	n = snprintf(buf, size, "gateway-%s.lock", hp);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int lock_path(const struct pm_net_endpoint *ep, char *buf, size_t size)
{
	char dir[PATH_MAX], name[NAME_MAX + 1];
	int n;

	if (lock_dir(dir, sizeof(dir)) < 0 ||
	    lock_name(ep, name, sizeof(name)) < 0)
		return -ENAMETOOLONG;
	n = snprintf(buf, size, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

pid_t pm_net_lock_holder(const char *endpoint)
{
	struct pm_net_endpoint ep;
	char path[PATH_MAX];

	if (!pm_net_is_url(endpoint) || pm_net_parse(endpoint, &ep, NULL, 0) < 0 ||
	    lock_path(&ep, path, sizeof(path)) < 0)
		return 0;
	return pm_portlock_holder(path);
}

/* The lock directory, opened without following a symbolic link; created
 * 0755 when missing (and we may). -errno when it cannot be had. */
static int lock_dir_open(const char *dir)
{
	bool made = mkdir(dir, 0755) == 0;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	/* the daemon runs with UMask=0027: others must still find the files */
	if (made)
		(void)fchmod(fd, 0755);
	return fd;
}

/* Opens the lock file in dfd: created 0644 where we may, else an existing
 * one read-only (flock works on it as well). -ENOENT when there is none
 * and none can be made. */
static int lock_file_open(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
			0644);
	struct stat st;

	if (fd < 0 && (errno == EACCES || errno == EPERM || errno == EROFS))
		fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EEXIST;	/* something else sits under that name */
	}
	if (st.st_uid == geteuid() && (st.st_mode & 0777) != 0644)
		(void)fchmod(fd, 0644);
	return fd;
}

static int net_lock(const struct pm_net_endpoint *ep, int *lock_fd,
		    pid_t *holder)
{
	char dir[PATH_MAX], name[NAME_MAX + 1], path[PATH_MAX];
	int dfd, fd, r;

	*lock_fd = -1;
	if (lock_dir(dir, sizeof(dir)) < 0 || lock_name(ep, name, sizeof(name)) < 0 ||
	    lock_path(ep, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	dfd = lock_dir_open(dir);
	if (dfd == -ENOENT || dfd == -EACCES || dfd == -EPERM || dfd == -EROFS)
		return 0;	/* no directory: nobody holds a lock in it */
	if (dfd < 0)
		return dfd;
	fd = lock_file_open(dfd, name);
	close(dfd);
	if (fd == -ENOENT)
		return 0;	/* none, and we may not make one: unlocked */
	if (fd == -EACCES) {
		/* there, but not ours to open: busy if someone holds it */
		*holder = pm_portlock_holder(path);
		return *holder > 0 ? -EBUSY : 0;
	}
	if (fd < 0)
		return fd;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		if (r == -EBUSY)
			*holder = pm_portlock_holder(path);
		close(fd);
		return r;
	}
	*lock_fd = fd;
	return 0;
}

/* ---- connecting ---------------------------------------------------------- */

static int gai_errno(int e)
{
	switch (e) {
	case EAI_NONAME:
	case EAI_NODATA:
	case EAI_ADDRFAMILY:
		return -ENOENT;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return errno ? -errno : -EIO;
	default:
		return -EINVAL;
	}
}

/* Waits for 'events' on fd until deadline_ns: > 0 ready, 0 timed out,
 * -errno. */
static int wait_fd(int fd, short events, int64_t deadline_ns, short *revents)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = events };
		int64_t left = deadline_ns - pm_mono_ns();
		struct timespec ts;
		int r;

		if (left <= 0)
			return 0;
		ts = pm_mono_timespec(left);
		r = ppoll(&pfd, 1, &ts, NULL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r > 0) {
			*revents = pfd.revents;
			return 1;
		}
	}
}

static void set_options(int fd)
{
	int one = 1, idle = PM_NET_KEEPIDLE_S, intvl = PM_NET_KEEPINTVL_S,
	    cnt = PM_NET_KEEPCNT;
	unsigned user_timeout = PM_NET_USER_TIMEOUT_MS;

	/* best effort: a request is one small segment, sent at once */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout,
			 sizeof(user_timeout));
}

/* One address: a connected non-blocking socket, or -errno. */
static int connect_one(const struct addrinfo *ai, int64_t deadline_ns)
{
	int fd, r, err = 0;
	socklen_t len = sizeof(err);
	short revents = 0;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    ai->ai_protocol);
	if (fd < 0)
		return -errno;
	set_options(fd);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		r = -errno;
		goto fail;
	}
	r = wait_fd(fd, POLLOUT, deadline_ns, &revents);
	if (r == 0)
		r = -ETIMEDOUT;
	if (r < 0)
		goto fail;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
		r = -errno;
		goto fail;
	}
	if (err) {
		r = -err;
		goto fail;
	}
	return fd;

fail:
	close(fd);
	return r;
}

/* Tries the host's addresses in turn, all within one deadline. */
static int net_connect(const struct pm_net_endpoint *ep)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV | (ep->ipv6 ? AI_NUMERICHOST : 0),
	};
	struct addrinfo *res = NULL;
	int64_t deadline;
	char port[8];
	int r, fd = -ETIMEDOUT;

	(void)snprintf(port, sizeof(port), "%u", ep->port);
	errno = 0;
	r = getaddrinfo(ep->host, port, &hints, &res);
	if (r != 0)
		return gai_errno(r);
	deadline = pm_mono_ns() + PM_NET_CONNECT_TIMEOUT_NS;
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = connect_one(ai, deadline);
		if (fd >= 0 || fd == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	return fd;
}

int pm_netconn_open(struct pm_netconn *c, const struct pm_net_endpoint *ep,
		    pid_t *holder)
{
	int lock_fd, fd, r;

	memset(c, 0, sizeof(*c));
	c->fd = c->lock_fd = -1;
	*holder = 0;
	r = net_lock(ep, &lock_fd, holder);
	if (r < 0)
		return r;
	fd = net_connect(ep);
	if (fd < 0) {
		pm_portlock_release(lock_fd);
		return fd;
	}
	c->ep = *ep;
	c->fd = fd;
	c->lock_fd = lock_fd;
	return 0;
}

/* The half-open rule: a new connection in place of a silent one, under
 * the same lock. 0 or -EIO. */
static int reconnect(struct pm_netconn *c)
{
	int fd;

	close(c->fd);
	c->fd = -1;
	c->silent = 0;
	c->pending = c->heard = false;
	fd = net_connect(&c->ep);
	if (fd < 0)
		return -EIO;
	c->fd = fd;
	return 0;
}

void pm_netconn_close(struct pm_netconn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	pm_portlock_release(c->lock_fd);
	c->fd = c->lock_fd = -1;
}

/* ---- requests and answers ------------------------------------------------ */

/* Errors of a connected socket: all of them mean "reconnect" (a reset, the
 * peer's TCP_USER_TIMEOUT or keepalive expiring as ETIMEDOUT, a route
 * gone), which bus.c knows as -EIO. */
static int conn_error(int e)
{
	return e == ENOMEM || e == ENOBUFS ? -e : -EIO;
}

/* Drops what arrived since the last answer; -EIO when the peer closed. */
static int drain(struct pm_netconn *c)
{
	uint8_t scratch[DRAIN_CHUNK];

	for (;;) {
		ssize_t n = recv(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT);

		if (n > 0) {
			c->heard = true;
			continue;
		}
		if (n == 0)
			return -EIO;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return conn_error(errno);
	}
}

int pm_netconn_send(struct pm_netconn *c, const uint8_t *buf, size_t len)
{
	int64_t deadline;
	size_t done = 0;
	short revents;
	int r;

	if (c->fd < 0)
		return -EIO;
	r = drain(c);
	if (r < 0)
		return r;
	if (c->pending)
		c->silent = c->heard ? 0 : c->silent + 1;
	if (c->silent >= PM_NET_SILENT_REQUESTS_MAX) {
		r = reconnect(c);
		if (r < 0)
			return r;
	}
	c->pending = true;
	c->heard = false;
	deadline = pm_mono_ns() + PM_NET_SEND_TIMEOUT_NS;
	while (done < len) {
		ssize_t n = send(c->fd, buf + done, len - done,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return conn_error(errno);
		r = wait_fd(c->fd, POLLOUT, deadline, &revents);
		if (r <= 0)
			return r < 0 ? conn_error(-r) : -EIO;
	}
	return 0;
}

int pm_netconn_read(struct pm_netconn *c, uint8_t *buf, size_t len,
		    int64_t deadline_ns)
{
	size_t got = 0;
	short revents;
	int r;

	if (c->fd < 0)
		return -EIO;
	while (got < len) {
		ssize_t n = recv(c->fd, buf + got, len - got, MSG_DONTWAIT);

		if (n > 0) {
			got += (size_t)n;
			c->heard = true;
			continue;
		}
		if (n == 0)
			return -EIO;	/* the gateway closed the connection */
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return conn_error(errno);
		r = wait_fd(c->fd, POLLIN, deadline_ns, &revents);
		if (r < 0)
			return conn_error(-r);
		if (r == 0)
			break;
	}
	return (int)got;
}

int pm_net_key(const char *endpoint, char *key, size_t size)
{
	struct pm_net_endpoint ep;
	char hp[PM_NET_HOST_MAX + 16];
	int n;

	if (pm_net_parse(endpoint, &ep, NULL, 0) < 0)
		return -EINVAL;
	if (pm_net_hostport(&ep, hp, sizeof(hp)) < 0)
		return -ENAMETOOLONG;
	n = snprintf(key, size, "%s %s",
		     ep.kind == PM_NET_TCP ? "tcp" : "rtu+tcp", hp);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}
