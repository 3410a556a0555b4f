/* test_influx.c — the InfluxDB write client: v1/v2 URLs with escaped
 * parameters, headers and credentials that never end up in a URL, the
 * answer (status, error text, Retry-After in both forms, a partial write
 * told from a whole refusal as InfluxDB 1.6 and 2.x word them), gzip
 * bodies and curl errors, the /ping probe, against a one-shot HTTP server
 * on a loopback socket. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include <powermeter/powermeter.h>

#include "output/influx.h"
#include "util/timeutil.h"

static struct pm_influx v2(void)
{
	struct pm_influx ix = {
		.url = "http://127.0.0.1:8086",
		.api = PM_INFLUX_V2,
		.org = "my org&co",
		.bucket = "power/meter",
		.token = "s3cr3t-t0ken==",
		.verify_ssl = true,
		.timeout = 5,
	};
	return ix;
}

static struct pm_influx v1(void)
{
	struct pm_influx ix = {
		.url = "http://127.0.0.1:8086/",
		.api = PM_INFLUX_V1,
		.database = "power meter",
		.retention_policy = "one week",
		.username = "writer",
		.password = "pa:ss@word",
		.verify_ssl = true,
		.timeout = 5,
	};
	return ix;
}

static void test_url_v2(void **state)
{
	struct pm_influx ix = v2();
	char *url;

	(void)state;
	assert_int_equal(pm_influx_write_url(&ix, &url), 0);
	assert_string_equal(url, "http://127.0.0.1:8086/api/v2/write?"
			    "org=my%20org%26co&bucket=power%2Fmeter&precision=ms");
	free(url);
	ix.org = NULL;
	url = (char *)"untouched";
	assert_int_equal(pm_influx_write_url(&ix, &url), -EINVAL);
	assert_string_equal(url, "untouched");
}

static void test_url_v1(void **state)
{
	struct pm_influx ix = v1();
	char *url;

	(void)state;
	assert_int_equal(pm_influx_write_url(&ix, &url), 0);
	/* the trailing slash of the base goes; no credentials in the URL */
	assert_string_equal(url, "http://127.0.0.1:8086/write?db=power%20meter"
			    "&rp=one%20week&precision=ms");
	free(url);
	ix.retention_policy = "";
	assert_int_equal(pm_influx_write_url(&ix, &url), 0);
	assert_string_equal(url, "http://127.0.0.1:8086/write?db=power%20meter"
			    "&precision=ms");
	free(url);
	ix.database = NULL;
	assert_int_equal(pm_influx_write_url(&ix, &url), -EINVAL);
	ix = v1();
	ix.url = NULL;
	assert_int_equal(pm_influx_write_url(&ix, &url), -EINVAL);
}

/* The headers a client of 'ix' sends with each request, to free(). */
static char *headers_of(struct pm_influx ix)
{
	struct pm_influx_client *c;
	char *h;

	assert_int_equal(pm_influx_client_new(&c, &ix), 0);
	assert_int_equal(pm_influx_request_headers(c, &h), 0);
	pm_influx_client_free(c);
	return h;
}

static void test_headers_v2(void **state)
{
	char *h;

	(void)state;
	h = headers_of(v2());
	assert_non_null(strstr(h, "Authorization: Token s3cr3t-t0ken==\n"));
	assert_non_null(strstr(h, "Content-Encoding: gzip\n"));
	assert_non_null(strstr(h, "Expect:\n"));	/* no 100-continue */
	/* the token appears once, in its header */
	assert_ptr_equal(strstr(h, "s3cr3t"), strstr(h, "Token ") + 6);
	assert_null(strstr(strstr(h, "s3cr3t") + 1, "s3cr3t"));
	free(h);
}

static void test_headers_v1_no_secret(void **state)
{
	struct pm_influx ix = v1();
	char *h;

	(void)state;
	h = headers_of(ix);
	/* basic auth is made by curl per request, never stored as text */
	assert_null(strstr(h, "Authorization"));
	assert_null(strstr(h, "pa:ss"));
	free(h);
	/* v1 ignores a token, v2 ignores a password */
	ix = v2();
	ix.password = "pw-v2";
	h = headers_of(ix);
	assert_null(strstr(h, "pw-v2"));
	free(h);
}

static void test_client_new_invalid(void **state)
{
	struct pm_influx ix = v2();
	struct pm_influx_client *c = NULL;

	(void)state;
	ix.bucket = NULL;
	assert_int_equal(pm_influx_client_new(&c, &ix), -EINVAL);
	assert_null(c);
}

static void test_redact(void **state)
{
	char buf[128];

	(void)state;
	pm_influx_url_redact("https://user:pw@db.example:8086/x?y=1", buf,
			     sizeof(buf));
	assert_string_equal(buf, "https://***@db.example:8086/x?y=1");
	pm_influx_url_redact("http://127.0.0.1:8086", buf, sizeof(buf));
	assert_string_equal(buf, "http://127.0.0.1:8086");
	/* an @ in the path is not userinfo */
	pm_influx_url_redact("http://h/a@b", buf, sizeof(buf));
	assert_string_equal(buf, "http://h/a@b");
	pm_influx_url_redact("http://u:p@h", buf, 8);
	assert_string_equal(buf, "http://");
}

static void test_retry_after(void **state)
{
	/* Wed, 21 Oct 2015 07:28:00 GMT */
	const time_t when = 1445412480;
	int64_t ms = 42;

	(void)state;
	assert_int_equal(pm_influx_parse_retry_after("120", 0, &ms), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(pm_influx_parse_retry_after(" 5 \r\n", 0, &ms), 0);
	assert_int_equal(ms, 5000);
	assert_int_equal(pm_influx_parse_retry_after("0", 0, &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(pm_influx_parse_retry_after(
		"Wed, 21 Oct 2015 07:28:00 GMT", when - 30, &ms), 0);
	assert_int_equal(ms, 30000);
	/* a date in the past: now */
	assert_int_equal(pm_influx_parse_retry_after(
		"Wed, 21 Oct 2015 07:28:00 GMT", when + 100, &ms), 0);
	assert_int_equal(ms, 0);
	/* absurd values are capped at a day */
	assert_int_equal(pm_influx_parse_retry_after("99999999999999999999",
						     0, &ms), 0);
	assert_int_equal(ms, 86400000);
	ms = 42;
	assert_int_equal(pm_influx_parse_retry_after("", 0, &ms), -EINVAL);
	assert_int_equal(pm_influx_parse_retry_after("-5", 0, &ms), -EINVAL);
	assert_int_equal(pm_influx_parse_retry_after("1.5", 0, &ms), -EINVAL);
	assert_int_equal(pm_influx_parse_retry_after("soon", 0, &ms), -EINVAL);
	assert_int_equal(ms, 42);
}

static void test_error_text(void **state)
{
	char out[64];
	const char *b;

	(void)state;
	b = "{\"error\":\"partial write: field type conflict\"}\n";
	pm_influx_error_text(b, strlen(b), out, sizeof(out));
	assert_string_equal(out, "partial write: field type conflict");
	b = "{\"code\":\"unauthorized\",\"message\":\"unauthorized access\"}";
	pm_influx_error_text(b, strlen(b), out, sizeof(out));
	assert_string_equal(out, "unauthorized access");
	b = "\n404 page not found\nmore";
	pm_influx_error_text(b, strlen(b), out, sizeof(out));
	assert_string_equal(out, "404 page not found");
	b = "bad\tthing\x01";
	pm_influx_error_text(b, strlen(b), out, sizeof(out));
	assert_string_equal(out, "bad thing ");
	pm_influx_error_text(NULL, 0, out, sizeof(out));
	assert_string_equal(out, "");
	b = "{\"error\":\"0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789\"}";
	pm_influx_error_text(b, strlen(b), out, 10);
	assert_string_equal(out, "012345678");
}

/* What InfluxDB 1.6 answers (verbatim, from influxd 1.6 in the tests),
 * and 2.x (its documented 422). */
static void test_partial_write(void **state)
{
	uint64_t n;
	const char *b;

	(void)state;
	/* one line of three unparsable: the other two stored */
	b = "{\"error\":\"partial write: unable to parse 'bad line here': "
	    "invalid field format dropped=0\"}\n";
	assert_true(pm_influx_partial_write(400, b, strlen(b), &n));
	assert_int_equal(n, 1);
	/* a field type conflict: the others stored */
	b = "{\"error\":\"partial write: field type conflict: input field "
	    "\\\"current\\\" on measurement \\\"powermeter\\\" is type "
	    "integer, already exists as type float dropped=1\"}\n";
	assert_true(pm_influx_partial_write(400, b, strlen(b), &n));
	assert_int_equal(n, 1);
	b = "{\"error\":\"partial write: points beyond retention policy "
	    "dropped=17\"}";
	assert_true(pm_influx_partial_write(400, b, strlen(b), &n));
	assert_int_equal(n, 17);
	/* nothing could be parsed: refused whole, nothing stored */
	b = "{\"error\":\"unable to parse 'bad1': missing fields\\n"
	    "unable to parse 'bad2': missing fields\"}\n";
	assert_false(pm_influx_partial_write(400, b, strlen(b), &n));
	assert_int_equal(n, 0);
	/* several lines named: each counted */
	b = "{\"error\":\"partial write: unable to parse 'a': x\\n"
	    "unable to parse 'b': y\\nunable to parse 'c': z dropped=0\"}";
	assert_true(pm_influx_partial_write(400, b, strlen(b), &n));
	assert_int_equal(n, 3);
	/* InfluxDB 2.x: 422 is a partial write whatever it says */
	b = "{\"code\":\"unprocessable entity\",\"message\":\"failure "
	    "writing points to database: partial write: points beyond "
	    "retention policy dropped=2\"}";
	assert_true(pm_influx_partial_write(422, b, strlen(b), &n));
	assert_int_equal(n, 2);
	assert_true(pm_influx_partial_write(422, NULL, 0, &n));
	assert_int_equal(n, 0);
	/* others are not */
	b = "{\"error\":\"partial write\"}";
	assert_false(pm_influx_partial_write(413, b, strlen(b), &n));
	assert_false(pm_influx_partial_write(500, b, strlen(b), &n));
	assert_false(pm_influx_partial_write(400, NULL, 0, &n));
}

/* ---- a one-shot HTTP server ------------------------------------------- */

struct server {
	int fd;
	int port;
	const char *answer;	/* the whole response */
	char request[64 * 1024];	/* headers as received */
	unsigned char body[64 * 1024];
	size_t body_len;
	pthread_t thread;
};

static void *serve_one(void *arg)
{
	struct server *s = arg;
	size_t got = 0, want = 0;
	char *end = NULL;
	int c = accept(s->fd, NULL, NULL);

	if (c < 0)
		return NULL;
	while (got < sizeof(s->request) - 1) {
		ssize_t n = read(c, s->request + got, sizeof(s->request) - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
		s->request[got] = '\0';
		end = strstr(s->request, "\r\n\r\n");
		if (end) {
			const char *cl = strcasestr(s->request, "Content-Length:");

			want = cl ? strtoul(cl + 15, NULL, 10) : 0;
			if (got - (size_t)(end + 4 - s->request) >= want)
				break;
		}
	}
	if (end) {
		s->body_len = got - (size_t)(end + 4 - s->request);
		memcpy(s->body, end + 4, s->body_len);
		end[2] = '\0';
	}
	(void)!write(c, s->answer, strlen(s->answer));
	close(c);
	return NULL;
}

/* A socket bound to a free loopback port; listening if 'backlog' >= 0. */
static int loopback_socket(int backlog, int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	if (backlog >= 0)
		assert_int_equal(listen(fd, backlog), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void server_start(struct server *s, const char *answer)
{
	memset(s, 0, sizeof(*s));
	s->answer = answer;
	s->fd = loopback_socket(1, &s->port);
	assert_int_equal(pthread_create(&s->thread, NULL, serve_one, s), 0);
}

static void server_join(struct server *s)
{
	assert_int_equal(pthread_join(s->thread, NULL), 0);
	close(s->fd);
}

static char *gunzip(const unsigned char *in, size_t len)
{
	z_stream z = {0};
	char *out = calloc(1, 65536);

	assert_non_null(out);
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out;
	z.avail_out = 65535;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	inflateEnd(&z);
	return out;
}

/* A client of 'ix' for whatever listens on loopback port 'port' (the
 * client copies what it needs of 'ix', the URL too). */
static struct pm_influx_client *client_for(struct pm_influx ix, int port)
{
	struct pm_influx_client *c;
	char url[64];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	ix.url = url;
	assert_int_equal(pm_influx_client_new(&c, &ix), 0);
	return c;
}

/* One write of 'body' by a client of 'ix' to a one-shot server that gives
 * 'answer': what the server received in *s, what the client made of the
 * answer in *res. */
static void write_once(struct server *s, struct pm_influx ix,
		       const char *answer, const char *body,
		       struct pm_influx_result *res)
{
	struct pm_influx_client *c;

	server_start(s, answer);
	c = client_for(ix, s->port);
	assert_int_equal(pm_influx_write(c, body, strlen(body), res), 0);
	server_join(s);
	pm_influx_client_free(c);
}

static void test_write_v2_request(void **state)
{
	static const char body[] = "m,t=a v=1 1700000000000\nm,t=b v=2 1700000000000\n";
	struct pm_influx_result res;
	struct server s;
	char *plain;

	(void)state;
	write_once(&s, v2(), "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
		   body, &res);
	assert_int_equal(res.status, 204);
	assert_int_equal(res.retry_after_ms, -1);
	assert_non_null(strstr(s.request, "POST /api/v2/write?org=my%20org%26co"
			       "&bucket=power%2Fmeter&precision=ms HTTP/1.1\r\n"));
	assert_non_null(strstr(s.request, "Authorization: Token s3cr3t-t0ken==\r\n"));
	assert_non_null(strstr(s.request, "Content-Encoding: gzip\r\n"));
	assert_null(strcasestr(s.request, "Expect:"));
	plain = gunzip(s.body, s.body_len);
	assert_string_equal(plain, body);
	free(plain);
}

static void test_write_v1_basic_auth(void **state)
{
	struct pm_influx_result res;
	struct server s;

	(void)state;
	write_once(&s, v1(), "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
		   "m v=1 1\n", &res);
	assert_int_equal(res.status, 204);
	assert_non_null(strstr(s.request, "POST /write?db=power%20meter&rp=one%20week"
			       "&precision=ms HTTP/1.1\r\n"));
	/* base64("writer:pa:ss@word") */
	assert_non_null(strstr(s.request,
			       "Authorization: Basic d3JpdGVyOnBhOnNzQHdvcmQ=\r\n"));
	assert_null(strstr(s.request, "pa:ss"));
}

static void test_write_answer_parsed(void **state)
{
	struct pm_influx_result res;
	struct server s;

	(void)state;
	write_once(&s, v2(), "HTTP/1.1 503 Service Unavailable\r\n"
		   "Retry-After: 7\r\nContent-Type: application/json\r\n"
		   "Content-Length: 26\r\nConnection: close\r\n\r\n"
		   "{\"error\":\"shutting down\"}\n", "m v=1 1\n", &res);
	assert_int_equal(res.status, 503);
	assert_int_equal(res.retry_after_ms, 7000);
	assert_string_equal(res.message, "shutting down");
}

/* A partial write through the client: flagged, and every line the answer
 * names counted, beyond what the kept error text holds. */
static void test_write_partial_answer(void **state)
{
	static char answer[16384];
	struct pm_influx_result res;
	struct server s;
	char body[8192];
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n,
				      "unable to parse 'line %02d with some more "
				      "text': invalid field format\\n", i);
	snprintf(answer, sizeof(answer), "HTTP/1.1 400 Bad Request\r\n"
		 "Content-Type: application/json\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n\r\n{\"error\":\"partial write: %s "
		 "dropped=0\"}\n", n + 38, body);
	write_once(&s, v1(), answer, "m v=1 1\n", &res);
	assert_int_equal(res.status, 400);
	assert_true(res.partial);
	assert_int_equal(res.refused, 100);
	assert_non_null(strstr(res.message, "partial write: unable to parse"));
}

/* Two one-shot answers in turn, the request line of each kept. */
struct server2 {
	struct server one;
	char line[2][256];
};

static void *serve_two(void *arg)
{
	struct server2 *s2 = arg;

	for (int i = 0; i < 2; i++) {
		char *eol;

		(void)serve_one(&s2->one);
		eol = strstr(s2->one.request, "\r\n");
		snprintf(s2->line[i], sizeof(s2->line[i]), "%.*s",
			 eol ? (int)(eol - s2->one.request) : 0,
			 s2->one.request);
	}
	return NULL;
}

/* The probe: GET <base>/ping without a body; the next write goes to the
 * write URL again, as a POST. */
static void test_ping_then_write(void **state)
{
	struct pm_influx_result res;
	struct pm_influx_client *c;
	struct pm_influx ix = v1();
	struct server2 s2;
	char url[64];
	int fd, port;

	(void)state;
	memset(&s2, 0, sizeof(s2));
	s2.one.answer = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n"
			"Connection: close\r\n\r\n";
	s2.one.fd = loopback_socket(2, &s2.one.port);
	assert_int_equal(pthread_create(&s2.one.thread, NULL, serve_two, &s2), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s2.one.port);
	ix.url = url;
	assert_int_equal(pm_influx_client_new(&c, &ix), 0);
	assert_int_equal(pm_influx_ping(c, 1000, &res), 0);
	assert_int_equal(res.status, 204);
	assert_int_equal(pm_influx_write(c, "m v=1 1\n", 8, &res), 0);
	assert_int_equal(res.status, 204);
	server_join(&s2.one);
	assert_string_equal(s2.line[0], "GET /ping HTTP/1.1");
	assert_string_equal(s2.line[1], "POST /write?db=power%20meter&rp=one%20week"
			    "&precision=ms HTTP/1.1");
	pm_influx_client_free(c);

	/* nobody there: refused, quickly */
	fd = loopback_socket(-1, &port);
	c = client_for(ix, port);
	assert_int_equal(pm_influx_ping(c, 1000, &res), -ECONNREFUSED);
	assert_int_equal(res.status, 0);
	pm_influx_client_free(c);
	close(fd);
}

static void test_write_connection_refused(void **state)
{
	struct pm_influx_result res;
	struct pm_influx_client *c;
	int fd, port;

	(void)state;
	/* bound but not listening: the connection is refused */
	fd = loopback_socket(-1, &port);
	c = client_for(v2(), port);
	assert_int_equal(pm_influx_write(c, "m v=1 1\n", 8, &res),
			 -ECONNREFUSED);
	assert_int_equal(res.status, 0);
	assert_true(res.message[0] != '\0');
	assert_null(strstr(res.message, "s3cr3t"));
	pm_influx_client_free(c);
	close(fd);
}

static int abort_now(void *arg)
{
	(void)arg;
	return 1;
}

static void test_write_abort(void **state)
{
	struct pm_influx_result res;
	struct pm_influx_client *c;
	int64_t t0;
	int fd, port;

	(void)state;
	/* the kernel accepts the connection, nobody ever answers: only the
	 * abort ends this before the 5 s timeout */
	fd = loopback_socket(4, &port);
	c = client_for(v2(), port);
	pm_influx_client_set_abort(c, abort_now, NULL);
	t0 = pm_mono_ns();
	assert_int_equal(pm_influx_write(c, "m v=1 1\n", 8, &res), -ECANCELED);
	assert_true(pm_mono_ns() - t0 < 4000000000LL);
	pm_influx_client_free(c);
	close(fd);
}

static void test_write_timeout(void **state)
{
	struct pm_influx_result res;
	struct pm_influx_client *c;
	int64_t t0, took;
	int fd, port;

	(void)state;
	fd = loopback_socket(4, &port);
	c = client_for(v2(), port);
	pm_influx_client_set_timeout(c, 300);
	t0 = pm_mono_ns();
	assert_int_equal(pm_influx_write(c, "m v=1 1\n", 8, &res), -ETIMEDOUT);
	took = pm_mono_ns() - t0;
	assert_true(took >= 250000000LL && took < 3000000000LL);
	pm_influx_client_free(c);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_v2),
		cmocka_unit_test(test_url_v1),
		cmocka_unit_test(test_headers_v2),
		cmocka_unit_test(test_headers_v1_no_secret),
		cmocka_unit_test(test_client_new_invalid),
		cmocka_unit_test(test_redact),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_error_text),
		cmocka_unit_test(test_partial_write),
		cmocka_unit_test(test_write_partial_answer),
		cmocka_unit_test(test_ping_then_write),
		cmocka_unit_test(test_write_v2_request),
		cmocka_unit_test(test_write_v1_basic_auth),
		cmocka_unit_test(test_write_answer_parsed),
		cmocka_unit_test(test_write_connection_refused),
		cmocka_unit_test(test_write_abort),
		cmocka_unit_test(test_write_timeout),
	};
	int r;

	assert_int_equal(pm_influx_global_init(), 0);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	pm_influx_global_cleanup();
	return r;
}
