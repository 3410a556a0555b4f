/* netconn.h — what the network transports share (tcp.c: Modbus TCP,
 * rtutcp.c: RTU frames over TCP): the "scheme://HOST:PORT" endpoints, a TCP
 * connection whose every wait is bounded, the rule that gives up on a
 * gateway that accepted and then fell silent, and the lock that keeps a
 * second powermeter process off a gateway the daemon is using. */
#ifndef PM_BUS_NETCONN_H
#define PM_BUS_NETCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bus/transport.h"

#define PM_NET_SCHEME_TCP	"tcp://"
#define PM_NET_SCHEME_RTU_TCP	"rtu+tcp://"

/* Modbus messaging on TCP/IP implementation guide v1.0b, 4.1: the
 * registered port. Transparent RTU converters have no standard port
 * (4001, 8234, 20108 are all common), so rtu+tcp:// must name one. */
#define PM_NET_MODBUS_TCP_PORT	502

/* A host name or address as written in "port": DNS names are at most 253
 * characters (RFC 1035); the cap keeps the lock file's name under
 * NAME_MAX. */
#define PM_NET_HOST_MAX		200

/* Longest wait for a TCP connection (name lookup aside): a gateway on the
 * LAN answers a SYN within milliseconds, a powered-off one never. 3 s is
 * TCP's first SYN retransmission (RFC 6298, 2.1 and 5.7): one lost SYN is
 * retried before we give up. */
#define PM_NET_CONNECT_TIMEOUT_NS	(3 * 1000000000LL)

/* Longest wait for room in the socket's send buffer: a request is a few
 * bytes, so a full buffer means a peer that stopped reading. */
#define PM_NET_SEND_TIMEOUT_NS		(1 * 1000000000LL)

/* Half-open connection: after this many requests in a row on one
 * connection without a single byte coming back, the next send connects
 * again first (a gateway power-cycled behind our back never says so; a
 * module that is merely dead costs a cheap reconnect every few polls). */
#define PM_NET_SILENT_REQUESTS_MAX	3

/* Keepalive on an idle connection (between polls): first probe after 10 s,
 * then every 5 s, 3 unanswered probes drop it. Data left unacknowledged
 * for 10 s (TCP_USER_TIMEOUT, RFC 5482) drops it too: a gateway that was
 * power-cycled or unplugged is noticed even while requests are pending. */
#define PM_NET_KEEPIDLE_S	10
#define PM_NET_KEEPINTVL_S	5
#define PM_NET_KEEPCNT		3
#define PM_NET_USER_TIMEOUT_MS	10000

/* Where the gateways' lock files are (see pm_netconn_open): the daemon's
 * RuntimeDirectory= ($RUNTIME_DIRECTORY under systemd), as
 * PM_DEFAULT_RUNTIME_DIR in config/config.h. */
#define PM_NET_LOCK_DIR		"/run/powermeter"

enum pm_net_kind {
	PM_NET_TCP,		/* tcp://: Modbus TCP (MBAP header) */
	PM_NET_RTU_TCP,		/* rtu+tcp://: RTU frames, CRC and all */
};

struct pm_net_endpoint {
	enum pm_net_kind kind;
	/* lowercase; an IPv6 address without its brackets, in the
	 * canonical form of RFC 5952 */
	char host[PM_NET_HOST_MAX + 1];
	bool ipv6;
	unsigned port;		/* 1..65535 */
};

/* Is 'endpoint' a URL ("scheme://...") rather than a tty path? */
bool pm_net_is_url(const char *endpoint);

/* Parses a network endpoint: "tcp://HOST[:PORT]" (port 502 by default) or
 * "rtu+tcp://HOST:PORT", HOST a name, an IPv4 address or an IPv6 address
 * in brackets. 0 with *ep set, or -EINVAL with the reason (a sentence
 * without the endpoint) in why (size bytes, may be NULL). */
int pm_net_parse(const char *endpoint, struct pm_net_endpoint *ep, char *why,
		 size_t size);

/* For the config check: 0 when 'endpoint' is a tty path (not a URL) or a
 * valid network endpoint; -EINVAL with the reason in why otherwise,
 * unknown schemes included. */
int pm_net_check(const char *endpoint, char *why, size_t size);

/* The bus key of a network endpoint (transport.h, key): "tcp HOST:PORT"
 * or "rtu+tcp HOST:PORT", the host lowercased, the default port filled
 * in. Names are not resolved: "gw" and its address are two buses. 0,
 * -EINVAL or -ENAMETOOLONG. */
int pm_net_key(const char *endpoint, char *key, size_t size);

/* "10.0.0.5:502", "[fe80::1]:4001". 0 or -ENAMETOOLONG. */
int pm_net_hostport(const struct pm_net_endpoint *ep, char *buf, size_t size);

/* The pid holding the lock of the gateway 'endpoint' names (0: none,
 * unknown, or not a network endpoint). */
pid_t pm_net_lock_holder(const char *endpoint);

/* One TCP connection to a gateway; one owner, no locking. */
struct pm_netconn {
	struct pm_net_endpoint ep;	/* for connecting again */
	int fd;
	int lock_fd;		/* -1: no lock file could be made (see open) */
	unsigned silent;	/* requests in a row that got no byte back */
	bool pending;		/* a request was sent ... */
	bool heard;		/* ... and a byte came since */
};

/*
 * Takes the gateway's lock and connects to it, waiting at most
 * PM_NET_CONNECT_TIMEOUT_NS (plus the name lookup, which the resolver
 * bounds: resolv.conf's "timeout" and "attempts"). Returns 0, or -EBUSY
 * (*holder: the pid holding the gateway, 0 unknown), -ECONNREFUSED,
 * -EHOSTUNREACH, -ENETUNREACH, -ETIMEDOUT (no answer to connect), -ENOENT
 * (no such host name), -EAGAIN (name lookup failed for now) or -errno.
 *
 * The lock: flock(2) on "gateway-HOST:PORT.lock" in $RUNTIME_DIRECTORY
 * (its first path) or PM_NET_LOCK_DIR, created 0644 (the directory 0755
 * if missing) and never followed through a symbolic link. Where neither
 * can be created (an unprivileged user without the daemon running) a lock
 * file that exists is still honoured; when there is none, nobody holds the
 * gateway through it and the connection goes ahead unlocked.
 */
int pm_netconn_open(struct pm_netconn *c, const struct pm_net_endpoint *ep,
		    pid_t *holder);

/* Sends one request: first drops whatever arrived since the last answer
 * (a late answer is never taken for this request's), then applies the
 * half-open rule (PM_NET_SILENT_REQUESTS_MAX: connects again, keeping the
 * lock), then writes all of buf[0..len). 0, or -EIO (the connection is
 * gone, or could not be made again: reopen, with back-off). */
int pm_netconn_send(struct pm_netconn *c, const uint8_t *buf, size_t len);

/* Reads up to 'len' bytes into buf, waiting until they are all there or
 * until the CLOCK_MONOTONIC instant deadline_ns. Returns how many came
 * (0..len), or -EIO when the connection was closed, reset or timed out. */
int pm_netconn_read(struct pm_netconn *c, uint8_t *buf, size_t len,
		    int64_t deadline_ns);

/* Closes the connection and releases the lock. */
void pm_netconn_close(struct pm_netconn *c);

/* The network transports (tcp.c, rtutcp.c). */
extern const struct pm_transport_ops pm_transport_tcp;
extern const struct pm_transport_ops pm_transport_rtu_tcp;

#endif
