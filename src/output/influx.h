/* influx.h — the InfluxDB write client over libcurl: builds the v1 or v2
 * write request, gzips the body, sends it on one kept-alive connection and
 * reports the server's answer (status, error text, Retry-After, a partial
 * write) for the caller to decide; and probes whether the server is back
 * (GET /ping). It never logs and never retries by itself.
 *
 * Threads: pm_influx_global_init() once before any thread starts; a client
 * then belongs to one thread (it holds one CURL easy handle). */
#ifndef PM_INFLUX_H
#define PM_INFLUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config/config.h"

/* The server's error text is kept up to this size (bytes of the body). */
#define PM_INFLUX_MESSAGE_MAX 512
/* Request bodies larger than this are refused (-PM_ETOOBIG) rather than
 * compressed: far above any configured batch. */
#define PM_INFLUX_BODY_MAX (64u * 1024 * 1024)

/* curl_global_init(): call once in main() before starting any thread (the
 * daemon does). Returns 0 or -EIO. */
int pm_influx_global_init(void);
void pm_influx_global_cleanup(void);

struct pm_influx_client;

/* What came back from one write. */
struct pm_influx_result {
	long status;		/* HTTP status, 0 when none came */
	int64_t retry_after_ms;	/* from Retry-After, -1 when absent */
	char message[PM_INFLUX_MESSAGE_MAX];	/* server's error text or
						   curl's error, never a
						   secret */
	/* A partial write (pm_influx_partial_write()): the server stored
	 * every line it could and refused the others; sending any of it
	 * again would store those twice where duplicates are kept. */
	bool partial;
	uint64_t refused;	/* lines it says it refused; 0: not said */
};

/* Creates a client for 'ix' (copied what it needs; 'ix' may go after).
 * Returns 0, -EINVAL (no url, v2 without org/bucket, v1 without database),
 * -ENOMEM or -EIO (curl could not be set up). */
int pm_influx_client_new(struct pm_influx_client **c,
			 const struct pm_influx *ix);
void pm_influx_client_free(struct pm_influx_client *c);
/* Gives back the buffers large batches grew (they grow again on demand). */
void pm_influx_client_trim(struct pm_influx_client *c);

/* Per-request total timeout in ms (the config's "timeout" by default); the
 * connect timeout is the smaller of it and 5 s. */
void pm_influx_client_set_timeout(struct pm_influx_client *c, long timeout_ms);

/* 'should_abort(arg)' is polled during each request; when it returns
 * non-zero the request is abandoned and pm_influx_write() returns
 * -ECANCELED (for a quick shutdown). Called on the writing thread. */
void pm_influx_client_set_abort(struct pm_influx_client *c,
				int (*should_abort)(void *), void *arg);

/* POSTs 'len' bytes of line protocol, gzipped. Returns 0 when the server
 * answered (any status: check res->status), or, with res->status 0 and
 * curl's error text in res->message: -ECONNREFUSED, -ETIMEDOUT,
 * -EHOSTUNREACH (name or host not reachable), -ECONNRESET (connection
 * dropped), -EPROTO (TLS failure), -ECANCELED (aborted), -PM_ETOOBIG, -ENOMEM
 * or -EIO. */
int pm_influx_write(struct pm_influx_client *c, const char *body, size_t len,
		    struct pm_influx_result *res);

/* GET <url>/ping, the cheap health probe: InfluxDB 1.x and 2.x and
 * VictoriaMetrics answer 204 while they can take writes. 'timeout_ms' (at
 * most the client's timeout; <= 0: that timeout) bounds it, connecting
 * included. Returns as pm_influx_write(); the next write goes to the write
 * URL again. */
int pm_influx_ping(struct pm_influx_client *c, long timeout_ms,
		   struct pm_influx_result *res);

/* Whether an error answer says the server stored part of the batch and
 * refused the rest: any 422 (InfluxDB 2.x), or a 400 whose body says
 * "partial write" (InfluxDB 1.x, which answers 400 too when it refused the
 * whole request: no line could be parsed). *refused: the lines it names as
 * refused ("dropped=N", plus each "unable to parse '...'"), 0 when it does
 * not say. InfluxDB 1.x reports either its storage's refusals or the lines
 * it could not parse, not both: with both, the count is short. */
bool pm_influx_partial_write(long status, const char *body, size_t len,
			     uint64_t *refused);

/* The write URL, without any secret (v1 credentials go as basic auth, v2's
 * token in a header), parameters URL-escaped. malloc'd into *url. Returns
 * 0, -EINVAL or -ENOMEM. */
int pm_influx_write_url(const struct pm_influx *ix, char **url);

/* 'url' with any user:password@ part replaced by "***@", for logs: at most
 * size-1 bytes into buf. */
void pm_influx_url_redact(const char *url, char *buf, size_t size);

/* A Retry-After value: delay-seconds or an HTTP-date (RFC 9110 10.2.3),
 * relative to 'now' (Unix seconds). Returns 0 with *ms (0 for a date in
 * the past), or -EINVAL. */
int pm_influx_parse_retry_after(const char *value, time_t now, int64_t *ms);

/* Extracts the error text from an error body: InfluxDB 1.x
 * {"error":"..."}, 2.x {"code":..,"message":"..."}, or the body itself
 * (first line, printable bytes only). */
void pm_influx_error_text(const char *body, size_t len, char *out,
			  size_t size);

/* The request headers the client sends, for tests: a malloc'd text, one
 * "Name: value\n" per header, secrets as they are sent. */
int pm_influx_request_headers(const struct pm_influx_client *c, char **out);

#endif
