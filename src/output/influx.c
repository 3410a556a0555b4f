/* influx.c — one InfluxDB write over libcurl (influx.h): the request (URL,
 * headers, credentials, gzip body), the answer (status, error text,
 * Retry-After, whether and how much of a partial write was refused) and
 * curl's errors as negative errno codes; and the health probe (GET /ping).
 * No policy here: what to do with an answer is the sink's business
 * (sink_influx.c). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <zlib.h>

#include <powermeter/powermeter.h>

#include "output/influx.h"
#include "util/buf.h"
#include "pm-build.h"

/* What is kept of an answer's body: enough for InfluxDB's error JSON. */
#define INFLUX_ANSWER_MAX 4096
#define INFLUX_CONNECT_TIMEOUT_MS 5000L
#define INFLUX_DEFAULT_TIMEOUT_MS 10000L
/* A Retry-After beyond a day is taken as a day. */
#define INFLUX_RETRY_AFTER_MAX_S 86400
/* How InfluxDB 1.x names each line it could not parse in an error (models.
 * ParsePointsWithPrecision(): "unable to parse '<line>': <why>", one per
 * line, joined by newlines), and how a partial write ends ("... dropped=N",
 * tsdb.PartialWriteError: the points the storage refused). */
#define INFLUX_UNPARSED "unable to parse '"
#define INFLUX_DROPPED "dropped="

struct pm_influx_client {
	CURL *curl;
	struct curl_slist *headers;
	char *url;
	char *ping_url;			/* <base>/ping */
	char *username, *password;	/* v1 basic auth, or NULL */
	char errbuf[CURL_ERROR_SIZE];
	z_stream z;
	bool z_ready;
	unsigned char *gz;		/* compressed body */
	size_t gz_alloc;
	struct pm_buf answer;		/* body of the last answer, capped */
	uint64_t unparsed;		/* INFLUX_UNPARSED in all of it */
	size_t unparsed_match;		/* of INFLUX_UNPARSED, matched so far */
	int64_t retry_after_ms;
	long timeout_ms;
	int (*should_abort)(void *);
	void *abort_arg;
};

int pm_influx_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

void pm_influx_global_cleanup(void)
{
	curl_global_cleanup();
}

/* Percent-encodes all but RFC 3986 unreserved characters. */
static int url_escape(struct pm_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	int r = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p && r == 0; p++) {
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' ||
		    *p == '~')
			r = pm_buf_addc(b, (char)*p);
		else
			r = pm_buf_printf(b, "%%%c%c", hex[*p >> 4],
					  hex[*p & 15]);
	}
	return r;
}

int pm_influx_write_url(const struct pm_influx *ix, char **url)
{
	struct pm_buf b;
	size_t base;
	int r;

	if (!ix->url || !*ix->url)
		return -EINVAL;
	if (ix->api == PM_INFLUX_V2 ? !ix->org || !ix->bucket : !ix->database)
		return -EINVAL;
	pm_buf_init(&b, 8192);
	base = strlen(ix->url);
	while (base > 0 && ix->url[base - 1] == '/')
		base--;
	r = pm_buf_add(&b, ix->url, base);
	if (r == 0 && ix->api == PM_INFLUX_V2) {
		r = pm_buf_adds(&b, "/api/v2/write?org=");
		if (r == 0)
			r = url_escape(&b, ix->org);
		if (r == 0)
			r = pm_buf_adds(&b, "&bucket=");
		if (r == 0)
			r = url_escape(&b, ix->bucket);
	} else if (r == 0) {
		r = pm_buf_adds(&b, "/write?db=");
		if (r == 0)
			r = url_escape(&b, ix->database);
		if (r == 0 && ix->retention_policy && *ix->retention_policy) {
			r = pm_buf_adds(&b, "&rp=");
			if (r == 0)
				r = url_escape(&b, ix->retention_policy);
		}
	}
	if (r == 0)
		r = pm_buf_adds(&b, "&precision=ms");
	if (r < 0) {
		pm_buf_free(&b);
		return r == -PM_ETOOBIG ? -EINVAL : r;
	}
	*url = pm_buf_take(&b, NULL);
	return *url ? 0 : -ENOMEM;
}

/* The health probe's URL: the server's base and "/ping", which InfluxDB 1.x
 * and 2.x and VictoriaMetrics answer with 204 without credentials. */
static int ping_url(const struct pm_influx *ix, char **url)
{
	size_t base = strlen(ix->url);

	while (base > 0 && ix->url[base - 1] == '/')
		base--;
	*url = malloc(base + sizeof("/ping"));
	if (!*url)
		return -ENOMEM;
	memcpy(*url, ix->url, base);
	memcpy(*url + base, "/ping", sizeof("/ping"));
	return 0;
}

void pm_influx_url_redact(const char *url, char *buf, size_t size)
{
	const char *scheme = strstr(url, "://");
	const char *host = scheme ? scheme + 3 : url;
	const char *end = host + strcspn(host, "/?#");
	const char *at = NULL;

	if (size == 0)
		return;
	for (const char *p = host; p < end; p++)
		if (*p == '@')
			at = p;
	if (!at) {
		(void)snprintf(buf, size, "%s", url);
		return;
	}
	(void)snprintf(buf, size, "%.*s***%s", (int)(host - url), url, at);
}

int pm_influx_parse_retry_after(const char *value, time_t now, int64_t *ms)
{
	char tmp[128];
	size_t len;
	time_t when;

	while (*value == ' ' || *value == '\t')
		value++;
	len = strlen(value);
	while (len > 0 && isspace((unsigned char)value[len - 1]))
		len--;
	if (len == 0 || len >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, value, len);
	tmp[len] = '\0';
	if (strspn(tmp, "0123456789") == len) {
		long long s = 0;

		for (size_t i = 0; i < len && s <= INFLUX_RETRY_AFTER_MAX_S; i++)
			s = s * 10 + (tmp[i] - '0');
		if (s > INFLUX_RETRY_AFTER_MAX_S)
			s = INFLUX_RETRY_AFTER_MAX_S;
		*ms = s * 1000;
		return 0;
	}
	/* an HTTP-date; curl_getdate() takes RFC 1123, 850 and asctime */
	if (!isalpha((unsigned char)tmp[0]))
		return -EINVAL;
	when = curl_getdate(tmp, NULL);
	if (when == (time_t)-1)
		return -EINVAL;
	if (when <= now)
		*ms = 0;
	else if (when - now > INFLUX_RETRY_AFTER_MAX_S)
		*ms = (int64_t)INFLUX_RETRY_AFTER_MAX_S * 1000;
	else
		*ms = (int64_t)(when - now) * 1000;
	return 0;
}

/* Copies printable bytes of the first line, at most size-1 of them. */
static void copy_printable(const char *s, size_t len, char *out, size_t size)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 1 < size; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '\n' || ch == '\r') {
			if (n > 0)
				break;
			continue;
		}
		out[n++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	out[n] = '\0';
}

void pm_influx_error_text(const char *body, size_t len, char *out, size_t size)
{
	struct json_tokener *tok;
	struct json_object *doc, *v;

	if (size == 0)
		return;
	out[0] = '\0';
	if (!body || len == 0)
		return;
	tok = json_tokener_new();
	if (tok) {
		doc = json_tokener_parse_ex(tok, body,
					    len > INT_MAX ? INT_MAX : (int)len);
		if (doc && json_object_is_type(doc, json_type_object) &&
		    ((json_object_object_get_ex(doc, "error", &v) &&
		      json_object_is_type(v, json_type_string)) ||
		     (json_object_object_get_ex(doc, "message", &v) &&
		      json_object_is_type(v, json_type_string)))) {
			const char *s = json_object_get_string(v);

			copy_printable(s, strlen(s), out, size);
			json_object_put(doc);
			json_tokener_free(tok);
			return;
		}
		json_object_put(doc);
		json_tokener_free(tok);
	}
	copy_printable(body, len, out, size);
}

/* Occurrences of INFLUX_UNPARSED in 'len' bytes, 'match' carrying a partial
 * match across pieces (its first letter occurs once in it, so a mismatch
 * can only restart at the current byte). */
static uint64_t count_unparsed(const char *data, size_t len, size_t *match)
{
	static const char pat[] = INFLUX_UNPARSED;
	uint64_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (data[i] != pat[*match])
			*match = data[i] == pat[0] ? 1 : 0;
		else if (++*match == sizeof(pat) - 1) {
			n++;
			*match = 0;
		}
	}
	return n;
}

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
	struct pm_influx_client *c = user;
	size_t len = size * n, room = c->answer.cap - c->answer.len;

	/* past the cap the rest is read and ignored (but for counting the
	 * lines named as unparsable): never an error */
	(void)pm_buf_add(&c->answer, data, len < room ? len : room);
	c->unparsed += count_unparsed(data, len, &c->unparsed_match);
	return len;
}

bool pm_influx_partial_write(long status, const char *body, size_t len,
			     uint64_t *refused)
{
	const char *p, *end = body ? body + len : NULL, *last = NULL;
	size_t match = 0;
	uint64_t dropped = 0;

	*refused = 0;
	/* InfluxDB 2.x: "Some or all of the data has been rejected. Data
	 * that has not been rejected is ingested" (and says "partial write"
	 * in its message too). InfluxDB 1.x: 400 for a partial write as for
	 * a request it refused whole, which only the text tells apart. */
	if (status != 422 && (status != 400 || !body ||
			      !memmem(body, len, "partial write", 13)))
		return false;
	if (!body)
		return true;
	for (p = body; p < end &&
	     (p = memmem(p, (size_t)(end - p), INFLUX_DROPPED,
			 sizeof(INFLUX_DROPPED) - 1)) != NULL; p++)
		last = p + sizeof(INFLUX_DROPPED) - 1;
	for (p = last; p && p < end && *p >= '0' && *p <= '9' &&
	     dropped < UINT32_MAX; p++)
		dropped = dropped * 10 + (uint64_t)(*p - '0');
	*refused = dropped + count_unparsed(body, len, &match);
	return true;
}

static size_t on_header(char *data, size_t size, size_t n, void *user)
{
	static const char name[] = "retry-after:";
	struct pm_influx_client *c = user;
	size_t len = size * n;
	char value[128];
	int64_t ms;

	if (len > sizeof(name) - 1 && len - (sizeof(name) - 1) < sizeof(value) &&
	    strncasecmp(data, name, sizeof(name) - 1) == 0) {
		memcpy(value, data + sizeof(name) - 1, len - (sizeof(name) - 1));
		value[len - (sizeof(name) - 1)] = '\0';
		if (pm_influx_parse_retry_after(value, time(NULL), &ms) == 0)
			c->retry_after_ms = ms;
	} else if (len > 5 && strncmp(data, "HTTP/", 5) == 0) {
		c->retry_after_ms = -1;	/* a new answer (after a 1xx) */
	}
	return len;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	struct pm_influx_client *c = user;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return c->should_abort && c->should_abort(c->abort_arg) ? 1 : 0;
}

static char *strdup_or_null(const char *s, int *r)
{
	char *p;

	if (!s)
		return NULL;
	p = strdup(s);
	if (!p)
		*r = -ENOMEM;
	return p;
}

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static int client_headers(struct pm_influx_client *c, const struct pm_influx *ix)
{
	static const char *const fixed[] = {
		"Content-Type: text/plain; charset=utf-8",
		"Content-Encoding: gzip",
		"Accept: application/json",
		/* no 100-continue round trip before each batch */
		"Expect:",
		("User-Agent: powermeterd/" PM_VERSION),
	};
	struct curl_slist *l;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		l = curl_slist_append(c->headers, fixed[i]);
		if (!l)
			return -ENOMEM;
		c->headers = l;
	}
	if (ix->api == PM_INFLUX_V2 && ix->token && *ix->token) {
		struct pm_buf b;
		char *h;

		pm_buf_init(&b, 64 * 1024);
		if (pm_buf_printf(&b, "Authorization: Token %s", ix->token) < 0) {
			pm_buf_free(&b);
			return -EINVAL;
		}
		l = curl_slist_append(c->headers, b.data);
		h = pm_buf_take(&b, NULL);
		free_secret(h);
		if (!l)
			return -ENOMEM;
		c->headers = l;
	}
	return 0;
}

static int client_setup(struct pm_influx_client *c, const struct pm_influx *ix)
{
	CURL *h = c->curl;
	long verify = ix->verify_ssl ? 1L : 0L;
	CURLcode e = CURLE_OK;

#define SET(opt, val) do { if (e == CURLE_OK) e = curl_easy_setopt(h, opt, val); } while (0)
	SET(CURLOPT_URL, c->url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_ERRORBUFFER, c->errbuf);
	SET(CURLOPT_HTTPHEADER, c->headers);
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, c);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, c);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_XFERINFODATA, c);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_SSL_VERIFYPEER, verify);
	SET(CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
	if (ix->ca_file) {
		/* Only these CAs, not the system's store as well: Debian's
		 * libcurl also searches /etc/ssl/certs (its default CAPATH)
		 * unless that is unset. */
		SET(CURLOPT_CAINFO, ix->ca_file);
		SET(CURLOPT_CAPATH, NULL);
	}
	if (c->username) {
		SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		SET(CURLOPT_USERNAME, c->username);
		SET(CURLOPT_PASSWORD, c->password ? c->password : "");
	}
#undef SET
	return e == CURLE_OK ? 0 : (e == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EIO);
}

int pm_influx_client_new(struct pm_influx_client **out,
			 const struct pm_influx *ix)
{
	struct pm_influx_client *c;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pm_buf_init(&c->answer, INFLUX_ANSWER_MAX);
	c->retry_after_ms = -1;
	c->timeout_ms = ix->timeout > 0 ? (long)(ix->timeout * 1000.0) :
		INFLUX_DEFAULT_TIMEOUT_MS;
	r = pm_influx_write_url(ix, &c->url);
	if (r == 0)
		r = ping_url(ix, &c->ping_url);
	if (r < 0)
		goto fail;
	if (ix->api != PM_INFLUX_V2 && ix->username && *ix->username) {
		c->username = strdup_or_null(ix->username, &r);
		c->password = strdup_or_null(ix->password, &r);
		if (r < 0)
			goto fail;
	}
	r = client_headers(c, ix);
	if (r < 0)
		goto fail;
	if (deflateInit2(&c->z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK) {
		r = -ENOMEM;
		goto fail;
	}
	c->z_ready = true;
	c->curl = curl_easy_init();
	if (!c->curl) {
		r = -EIO;
		goto fail;
	}
	r = client_setup(c, ix);
	if (r < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	pm_influx_client_free(c);
	return r;
}

void pm_influx_client_trim(struct pm_influx_client *c)
{
	if (!c)
		return;
	free(c->gz);
	c->gz = NULL;
	c->gz_alloc = 0;
	pm_buf_free(&c->answer);
}

void pm_influx_client_free(struct pm_influx_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	for (struct curl_slist *l = c->headers; l; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(c->headers);
	if (c->z_ready)
		(void)deflateEnd(&c->z);
	free(c->gz);
	pm_buf_free(&c->answer);
	free(c->url);
	free(c->ping_url);
	free(c->username);
	free_secret(c->password);
	free(c);
}

void pm_influx_client_set_abort(struct pm_influx_client *c,
				int (*should_abort)(void *), void *arg)
{
	c->should_abort = should_abort;
	c->abort_arg = arg;
}

void pm_influx_client_set_timeout(struct pm_influx_client *c, long timeout_ms)
{
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : INFLUX_DEFAULT_TIMEOUT_MS;
}

/* Gzips body into c->gz; returns the compressed length or an error. */
static long long gzip_body(struct pm_influx_client *c, const char *body,
			   size_t len)
{
	uLong bound;

	if (len > PM_INFLUX_BODY_MAX)
		return -PM_ETOOBIG;
	bound = deflateBound(&c->z, (uLong)len);
	if (bound > c->gz_alloc) {
		unsigned char *p = realloc(c->gz, bound);

		if (!p)
			return -ENOMEM;
		c->gz = p;
		c->gz_alloc = bound;
	}
	if (deflateReset(&c->z) != Z_OK)
		return -EIO;
	c->z.next_in = (Bytef *)(uintptr_t)body;
	c->z.avail_in = (uInt)len;
	c->z.next_out = c->gz;
	c->z.avail_out = (uInt)c->gz_alloc;
	if (deflate(&c->z, Z_FINISH) != Z_STREAM_END)
		return -EIO;
	return (long long)(c->gz_alloc - c->z.avail_out);
}

static int curl_error_code(CURLcode e)
{
	switch (e) {
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return -ECONNRESET;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
		return -EPROTO;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* What the user can do about a refused certificate: curl's text says what
 * failed (an unknown issuer, a host name the certificate does not list)
 * but not which setting fixes it. */
static const char *curl_error_hint(CURLcode e)
{
	if (e == CURLE_PEER_FAILED_VERIFICATION)
		return " (if a private CA signed the server's certificate, "
		       "give that CA's PEM file as \"ca_file\")";
	return "";
}

static void result_clear(struct pm_influx_result *res)
{
	res->status = 0;
	res->retry_after_ms = -1;
	res->message[0] = '\0';
	res->partial = false;
	res->refused = 0;
}

/* Runs the request set up on c->curl ('e': how that went) within the
 * timeouts: 0 with res->status, or -errno with res->message saying why. */
static int perform(struct pm_influx_client *c, CURLcode e, long timeout_ms,
		   long connect_ms, struct pm_influx_result *res)
{
	long status = 0;

	if (e == CURLE_OK)
		e = curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	if (e == CURLE_OK)
		e = curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS,
				     connect_ms);
	if (e == CURLE_OK)
		e = curl_easy_perform(c->curl);
	if (e != CURLE_OK) {
		(void)snprintf(res->message, sizeof(res->message), "%s%s",
			       c->errbuf[0] ? c->errbuf : curl_easy_strerror(e),
			       curl_error_hint(e));
		return curl_error_code(e);
	}
	(void)curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	res->status = status;
	return 0;
}

int pm_influx_write(struct pm_influx_client *c, const char *body, size_t len,
		    struct pm_influx_result *res)
{
	long long gz_len;
	long status, connect_ms;
	CURLcode e;
	int r;

	result_clear(res);
	gz_len = gzip_body(c, body, len);
	if (gz_len < 0)
		return (int)gz_len;
	connect_ms = c->timeout_ms < INFLUX_CONNECT_TIMEOUT_MS ?
		c->timeout_ms : INFLUX_CONNECT_TIMEOUT_MS;
	pm_buf_reset(&c->answer);
	c->unparsed = 0;
	c->unparsed_match = 0;
	c->retry_after_ms = -1;
	c->errbuf[0] = '\0';
	/* the probe may have used the handle for a GET of its own URL */
	e = curl_easy_setopt(c->curl, CURLOPT_URL, c->url);
	if (e == CURLE_OK)
		e = curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
	if (e == CURLE_OK)
		e = curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, c->gz);
	if (e == CURLE_OK)
		e = curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE,
				     (curl_off_t)gz_len);
	r = perform(c, e, c->timeout_ms, connect_ms, res);
	if (r < 0)
		return r;
	status = res->status;
	res->retry_after_ms = c->retry_after_ms;
	if (status < 200 || status > 299) {
		pm_influx_error_text(c->answer.data, c->answer.len,
				     res->message, sizeof(res->message));
		res->partial = pm_influx_partial_write(status, c->answer.data,
						       c->answer.len,
						       &res->refused);
		/* the lines named beyond what the answer buffer kept */
		if (res->partial && c->unparsed > res->refused)
			res->refused = c->unparsed;
	}
	return 0;
}

int pm_influx_ping(struct pm_influx_client *c, long timeout_ms,
		   struct pm_influx_result *res)
{
	CURLcode e;

	result_clear(res);
	if (timeout_ms <= 0 || timeout_ms > c->timeout_ms)
		timeout_ms = c->timeout_ms;
	pm_buf_reset(&c->answer);
	c->errbuf[0] = '\0';
	e = curl_easy_setopt(c->curl, CURLOPT_URL, c->ping_url);
	if (e == CURLE_OK)
		e = curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
	return perform(c, e, timeout_ms, timeout_ms, res);
}

int pm_influx_request_headers(const struct pm_influx_client *c, char **out)
{
	struct pm_buf b;
	int r = 0;

	pm_buf_init(&b, 64 * 1024);
	for (const struct curl_slist *l = c->headers; l && r == 0; l = l->next)
		r = pm_buf_printf(&b, "%s\n", l->data);
	if (r < 0) {
		pm_buf_free(&b);
		return r;
	}
	*out = pm_buf_take(&b, NULL);
	return *out ? 0 : -ENOMEM;
}
