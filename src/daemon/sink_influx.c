/* sink_influx.c — the InfluxDB output: pollers format samples into the ring;
 * one writer thread batches them, sends them (influx.c), decides what each
 * answer means, keeps what could not be delivered in the spool (spool.c)
 * and replays it, probes a database that is away, and keeps the counters:
 * every point lost counted once, under its cause, and logged. */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <powermeter/powermeter.h>

#include "daemon/complain.h"
#include "daemon/sink_influx.h"
#include "daemon/testfault.h"
#include "daemon/watch.h"
#include "output/influx.h"
#include "output/lineproto.h"
#include "output/lineproto_feeds.h"
#include "output/ring.h"
#include "output/spool.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/timeutil.h"

#define MS 1000000LL	/* ns */
/* One sample of 16 inputs is about 2 KiB of line protocol. */
#define SAMPLE_TEXT_MAX (64u * 1024)
#define DEFAULT_BATCH_LINES 5000
#define DEFAULT_BATCH_BYTES (1024u * 1024)
/* A failing database: a line at most every 5 minutes after the first. */
#define COMPLAIN_QUIET_NS (300 * 1000 * MS)
#define REJECT_LOG_EVERY_NS (60 * 1000 * MS)
#define LOSS_LOG_EVERY_NS (60 * 1000 * MS)
#define FINAL_ATTEMPT_MS 3000L
/* close(final=false) may try to deliver what it cannot spool for this long */
#define RELOAD_BUDGET_MS 1000L
/* The writer loops at least this often, so that the watchdog sees it alive
 * while it waits for a long flush interval. */
#define WRITER_WAIT_MAX_NS (1000 * MS)
/* The health probe (GET /ping) waits at most this long for its answer. */
#define PROBE_TIMEOUT_MS 2000L

static const struct pm_influx_tuning tuning_default = {
	.backoff_min_ms = 1000,
	.backoff_max_ms = 60000,
	.auth_retry_ms = 60000,
	.retry_after_max_ms = 15 * 60 * 1000,
	.final_budget_ms = 5000,
	.ring_chunks = 65536,
	.ring_bytes = 16u * 1024 * 1024,
	.spool_flags = 0,
	.probe_ms = 5000,
};
static struct pm_influx_tuning tuning = {0};

/* What one answer means for the data sent. */
enum verdict {
	V_DONE,		/* stored */
	V_PARTIAL,	/* stored but for the lines it refused: nothing of it
			   goes again (a duplicate would be kept where
			   duplicates are, as in VictoriaMetrics) */
	V_SPLIT,	/* refused as a whole: send the halves (a single
			   line is refused for good) */
	V_KEEP,		/* not now: keep it and try again later */
};

struct influx_sink {
	/* fixed after open */
	struct pm_influx_tuning tune;
	const char *measurement;
	char url_log[256];	/* the server, for logs (no secrets) */
	char *what_log;		/* "database x" / "bucket y in org z" */
	char *spool_dir;
	size_t batch_lines, batch_bytes;
	int64_t flush_ns;
	long timeout_ms;
	struct pm_ring *ring;
	pthread_t writer;
	bool writer_started;

	/* writer thread only */
	struct pm_influx_client *client;
	struct pm_spool *spool;
	struct pm_buf batch;
	size_t batch_n;
	int64_t batch_due;	/* flush when reached (batch not empty) */
	int64_t batch_started;
	int64_t last_tick;	/* when the last tick_done() was seen */
	int64_t tick_period;	/* between the last two, or flush_ns */
	struct pm_buf leftover;	/* parts of one delivery kept for later */
	size_t leftover_n;
	/* points neither the database nor the spool took (no spool, or it
	 * cannot be written): kept in memory, at most ring_bytes of them
	 * (then the oldest go), and retried with either */
	struct pm_buf held;
	size_t held_n;
	int64_t spool_retry_at;	/* 0: the spool may be written */
	int spool_err;		/* why the spool failed; 0 while it works */
	int commit_err;		/* why the last read position was not saved */
	int64_t retry_at;	/* 0: may send; else not before this */
	unsigned failures;	/* consecutive */
	int fail_class;		/* status or error last logged */
	/* while backing off from a database that is away (no answer, or a
	 * proxy's 502/503/504): GET /ping at probe_at, and send at once when
	 * it answers; not again in this spell if a write then fails */
	bool probe_allowed;
	bool probe_said_ok;
	bool probe_distrusted;
	int64_t probe_at;
	/* a backlog (failures, the spool, memory) since the buffers it grew
	 * were last given back */
	bool backlog_seen;
	/* the batch replay_one() is sending, and whether all of it failed */
	const char *replay_text;
	size_t replay_len;
	bool replay_untouched;
	struct pm_complaint complaint;	/* when a failure is worth a line */
	int64_t reject_logged;
	uint64_t reject_unlogged;	/* points refused since, not logged */
	uint64_t ring_dropped_seen;
	struct pm_spool_stats spool_seen;	/* losses already counted */
	int64_t loss_logged;		/* losses are logged once a minute */
	/* lost since the last loss line, by cause */
	uint64_t ring_lost_unlogged, held_lost_unlogged;
	uint64_t bound_lost_unlogged;
	uint64_t damaged_lost_unlogged, damaged_records_unlogged;
	uint64_t torn_lost_unlogged, torn_records_unlogged;
	uint64_t deleted_lost_unlogged, deleted_segments_unlogged;
	uint64_t missing_unlogged, foreign_unlogged;
	unsigned rand_state;
	bool final_flush;	/* in writer_finish() */

	/* shared */
	pthread_mutex_t lock;
	bool stop, final;
	struct pm_influx_stats st;	/* under lock */
	atomic_uint_fast64_t progress;
	atomic_int_fast64_t abort_at;	/* mono ns; 0: let requests run */
};

void pm_sink_influx_tune(const struct pm_influx_tuning *t)
{
	if (t)
		tuning = *t;
	else
		memset(&tuning, 0, sizeof(tuning));
}

static struct pm_influx_tuning tuning_effective(void)
{
	struct pm_influx_tuning t = tuning_default;

#define PICK(m) do { if (tuning.m) t.m = tuning.m; } while (0)
	PICK(backoff_min_ms);
	PICK(backoff_max_ms);
	PICK(auth_retry_ms);
	PICK(retry_after_max_ms);
	PICK(final_budget_ms);
	PICK(ring_chunks);
	PICK(ring_bytes);
	PICK(spool_flags);
	PICK(probe_ms);
#undef PICK
	return t;
}

static size_t count_lines(const char *text, size_t len)
{
	size_t n = 0;
	const char *p = text, *end = text + len;

	while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n++;
		p++;
	}
	/* a last line without its newline still counts */
	if (len > 0 && text[len - 1] != '\n')
		n++;
	return n;
}

#define STAT_ADD(s, m, v) do { \
	(void)pthread_mutex_lock(&(s)->lock); \
	(s)->st.m += (v); \
	(void)pthread_mutex_unlock(&(s)->lock); \
} while (0)

/* ---- answers ------------------------------------------------------------ */

static long backoff_ms(struct influx_sink *s)
{
	long d = s->tune.backoff_min_ms;

	for (unsigned i = 1; i < s->failures && d < s->tune.backoff_max_ms; i++)
		d *= 2;
	if (d > s->tune.backoff_max_ms)
		d = s->tune.backoff_max_ms;
	/* full jitter over the upper half: many daemons restarted together
	 * do not hit the database in step */
	return d / 2 + (long)(rand_r(&s->rand_state) % (unsigned)(d / 2 + 1));
}

static const char *failure_hint(struct influx_sink *s, long status)
{
	switch (status) {
	case 401:
		return "the credentials were refused: check the token (v2) or "
		       "username and password (v1)";
	case 403:
		return "no permission to write: give the token or user write "
		       "access";
	case 404:
		return "not found: check that the url is right and that the "
		       "database, or the org and bucket, exist";
	default:
		(void)s;
		return NULL;
	}
}

/* Logs a failure as the daemon's complaints go (complain.h: the first,
 * then backing off, here never more than once in COMPLAIN_QUIET_NS), and at
 * once when its kind changes. */
static void complain(struct influx_sink *s, int cls, const char *what,
		     const char *message, long delay_ms)
{
	const char *hint = failure_hint(s, cls);
	bool due = pm_complain_failure(&s->complaint, pm_mono_ns());

	if (s->failures == 1 || cls != s->fail_class) {
		due = true;
		s->fail_class = cls;
	}
	if (!due)
		return;
	if (hint)
		log_err("InfluxDB %s (%s): %s (%s): %s; keeping the data, "
			"retrying every %ld s", s->url_log, s->what_log, what,
			message[0] ? message : "no details", hint,
			(delay_ms + 999) / 1000);
	else
		log_warning("InfluxDB %s: %s%s%s; keeping the data, retrying "
			    "in %.1f s", s->url_log, what, message[0] ? ": " : "",
			    message, (double)delay_ms / 1000.0);
}

/* Whether a failure says "the database is away" (no answer at all, or a
 * proxy's for a server behind it that is down), so that a probe can tell
 * when it is back; not when it answers but refuses (credentials, its own
 * errors) nor when it said when to come back (Retry-After). */
static bool failure_is_absence(int cls, int64_t retry_after_ms)
{
	switch (cls) {
	case -ECONNREFUSED:
	case -ETIMEDOUT:
	case -EHOSTUNREACH:
	case -ECONNRESET:
	case -EIO:
		return true;
	case 502:
	case 503:
	case 504:
		return retry_after_ms < 0;
	default:
		return false;
	}
}

static void mark_failure(struct influx_sink *s, int cls, const char *what,
			 const char *message, int64_t retry_after_ms)
{
	long delay;

	s->failures++;
	s->backlog_seen = true;
	/* the probe said it was back and it is not: the probe cannot tell
	 * for this database, back off as before until a write goes through */
	if (s->probe_said_ok)
		s->probe_distrusted = true;
	s->probe_said_ok = false;
	s->probe_allowed = !s->probe_distrusted &&
		failure_is_absence(cls, retry_after_ms);
	if (cls == 401 || cls == 403 || cls == 404)
		delay = s->tune.auth_retry_ms;
	else if (retry_after_ms >= 0)
		delay = retry_after_ms > s->tune.retry_after_max_ms ?
			s->tune.retry_after_max_ms : (long)retry_after_ms;
	else
		delay = backoff_ms(s);
	s->retry_at = pm_mono_ns() + (int64_t)delay * MS;
	if (s->retry_at == 0)
		s->retry_at = 1;
	s->probe_at = pm_mono_ns() + (int64_t)s->tune.probe_ms * MS;
	complain(s, cls, what, message, delay);
	(void)pthread_mutex_lock(&s->lock);
	s->st.retries++;
	s->st.failing = true;
	s->st.last_status = cls;
	(void)pthread_mutex_unlock(&s->lock);
}

static void mark_success(struct influx_sink *s, long status)
{
	int64_t spell_ns;

	if (pm_complain_success(&s->complaint, pm_mono_ns(), NULL, &spell_ns)) {
		struct pm_spool_stats sst = {0};
		char dur[32];

		if (s->spool)
			pm_spool_stats(s->spool, &sst);
		pm_complain_duration(dur, sizeof(dur), spell_ns);
		log_notice("InfluxDB %s answers again after %s; %" PRIu64
			   " points in the spool to replay", s->url_log, dur,
			   sst.lines);
	}
	s->failures = 0;
	s->retry_at = 0;
	s->probe_allowed = s->probe_said_ok = s->probe_distrusted = false;
	(void)pthread_mutex_lock(&s->lock);
	s->st.failing = false;
	s->st.last_status = (int)status;
	(void)pthread_mutex_unlock(&s->lock);
}

static void note_rejected(struct influx_sink *s, long status,
			  const char *message, const char *line, size_t len)
{
	int64_t now = pm_mono_ns();

	STAT_ADD(s, rejected, 1);
	if (s->reject_logged && now - s->reject_logged < REJECT_LOG_EVERY_NS) {
		s->reject_unlogged++;
		return;
	}
	while (len > 0 && line[len - 1] == '\n')
		len--;
	log_warning("InfluxDB refused a point (HTTP %ld: %s), dropping it: "
		    "%.*s%s", status, message[0] ? message : "no details",
		    len > 200 ? 200 : (int)len, line, len > 200 ? "..." : "");
	if (s->reject_unlogged)
		log_warning("InfluxDB refused %" PRIu64 " more points before "
			    "that (not shown)", s->reject_unlogged);
	s->reject_logged = now;
	s->reject_unlogged = 0;
}

/* A partial write: the server stored what it could and says so (InfluxDB
 * 1.x: 400 "partial write: ... dropped=N", 2.x: 422). The lines it refused
 * are counted and logged, nothing is sent again. */
static void note_partial(struct influx_sink *s, const struct pm_influx_result *res,
			 size_t lines, bool from_spool)
{
	size_t refused = res->refused == 0 ? 1 :
		res->refused > lines ? lines : (size_t)res->refused;
	int64_t now = pm_mono_ns();

	(void)pthread_mutex_lock(&s->lock);
	s->st.written += lines - refused;
	if (from_spool)
		s->st.replayed += lines - refused;
	s->st.rejected += refused;
	(void)pthread_mutex_unlock(&s->lock);
	if (s->reject_logged && now - s->reject_logged < REJECT_LOG_EVERY_NS) {
		s->reject_unlogged += refused;
		return;
	}
	log_warning("InfluxDB stored %zu of %zu points and refused %s%zu (HTTP "
		    "%ld: %s); dropping %s, the rest is not sent again",
		    lines - refused, lines, res->refused ? "" : "at least ",
		    refused, res->status, res->message[0] ? res->message :
		    "no details", refused == 1 ? "it" : "them");
	if (s->reject_unlogged)
		log_warning("InfluxDB refused %" PRIu64 " more points before "
			    "that (not shown)", s->reject_unlogged);
	s->reject_logged = now;
	s->reject_unlogged = 0;
}

static enum verdict judge(const struct pm_influx_result *res)
{
	if (res->status >= 200 && res->status <= 299)
		return V_DONE;
	if (res->partial)
		return V_PARTIAL;
	/* 400: no line could be taken (InfluxDB 1.x), or one line protocol
	 * error refuses all (2.x); 413: too large. Resending the same body
	 * cannot help: halve it to keep the good lines. */
	if (res->status == 400 || res->status == 413)
		return V_SPLIT;
	/* 401/403/404 (config), 429/503 (Retry-After), other 4xx and 5xx */
	return V_KEEP;
}

/* Called by libcurl about once a second during a request, so it also tells
 * the watchdog that the writer is alive while it waits for an answer (the
 * request's own timeout bounds the wait). */
static int abort_cb(void *arg)
{
	struct influx_sink *s = arg;
	int64_t at = atomic_load(&s->abort_at);

	atomic_fetch_add(&s->progress, 1);
	return at != 0 && pm_mono_ns() >= at;
}

static void keep(struct influx_sink *s, const char *text, size_t len,
		 size_t lines)
{
	/* a batch read back from the spool that went nowhere stays there:
	 * no copy (it may be 1 MiB, once per retry all through an outage) */
	if (text == s->replay_text && len == s->replay_len) {
		s->replay_untouched = true;
		return;
	}
	if (pm_buf_add(&s->leftover, text, len) == 0) {
		s->leftover_n += lines;
		return;
	}
	/* cannot happen: leftover is as large as any delivery */
	(void)pthread_mutex_lock(&s->lock);
	s->st.dropped += lines;
	s->st.dropped_memory += lines;
	(void)pthread_mutex_unlock(&s->lock);
	s->held_lost_unlogged += lines;
}

/* Sends 'text' (whole lines); what is refused for good is counted, what
 * could not be delivered now is added to s->leftover. */
static void deliver(struct influx_sink *s, const char *text, size_t len,
		    bool from_spool)
{
	struct pm_influx_result res;
	size_t lines = count_lines(text, len);
	const char *mid;
	char what[64];
	int r;

	if (len == 0)
		return;
	if (s->retry_at && pm_mono_ns() < s->retry_at) {
		keep(s, text, len, lines);
		return;
	}
	r = pm_influx_write(s->client, text, len, &res);
	STAT_ADD(s, requests, 1);
	atomic_fetch_add(&s->progress, 1);
	if (r == -ECANCELED) {
		/* cut short by close(): not the database's fault */
		keep(s, text, len, lines);
		return;
	}
	if (r < 0) {
		(void)snprintf(what, sizeof(what), "%s", pm_strerror(r));
		mark_failure(s, r, what, res.message, -1);
		keep(s, text, len, lines);
		return;
	}
	switch (judge(&res)) {
	case V_DONE:
		mark_success(s, res.status);
		(void)pthread_mutex_lock(&s->lock);
		s->st.written += lines;
		if (from_spool)
			s->st.replayed += lines;
		(void)pthread_mutex_unlock(&s->lock);
		return;
	case V_PARTIAL:
		/* the server answers, so it is not failing */
		mark_success(s, res.status);
		note_partial(s, &res, lines, from_spool);
		return;
	case V_SPLIT:
		/* the server answers, so it is not failing */
		mark_success(s, res.status);
		if (lines <= 1) {
			note_rejected(s, res.status, res.message, text, len);
			return;
		}
		mid = text;
		for (size_t i = 0; i < lines / 2; i++)
			mid = (const char *)memchr(mid, '\n',
						   (size_t)(text + len - mid)) + 1;
		deliver(s, text, (size_t)(mid - text), from_spool);
		deliver(s, mid, (size_t)(text + len - mid), from_spool);
		return;
	case V_KEEP:
		break;
	}
	(void)snprintf(what, sizeof(what), "HTTP %ld", res.status);
	mark_failure(s, (int)res.status, what, res.message, res.retry_after_ms);
	keep(s, text, len, lines);
}

/* Counts points lost in memory (held beyond its bound, or at stop). */
static void lost_in_memory(struct influx_sink *s, uint64_t lines)
{
	(void)pthread_mutex_lock(&s->lock);
	s->st.dropped += lines;
	s->st.dropped_memory += lines;
	(void)pthread_mutex_unlock(&s->lock);
	s->held_lost_unlogged += lines;
}

/* Keeps points in memory (s->held): beyond its bound the oldest whole lines
 * go, counted as dropped and logged with the other losses. */
static void hold(struct influx_sink *s, const char *text, size_t len,
		 size_t lines)
{
	size_t max = s->held.cap, lost = 0;

	/* the newest part of 'text' when it alone exceeds the bound */
	while (len > max) {
		const char *nl = memchr(text, '\n', len);
		size_t cut = nl ? (size_t)(nl - text) + 1 : len;

		text += cut;
		len -= cut;
		lost++;
	}
	if (lost)
		lines = count_lines(text, len);
	if (s->held.len + len > max) {
		size_t need = s->held.len + len - max, cut = 0;

		while (cut < need) {
			const char *nl = memchr(s->held.data + cut, '\n',
						s->held.len - cut);

			cut = nl ? (size_t)(nl - s->held.data) + 1 : s->held.len;
			lost++;
			if (s->held_n > 0)
				s->held_n--;
		}
		memmove(s->held.data, s->held.data + cut, s->held.len - cut);
		s->held.len -= cut;
		s->held.data[s->held.len] = '\0';
	}
	if (len > 0 && pm_buf_add(&s->held, text, len) == 0)
		s->held_n += lines;
	else if (len > 0)
		lost += lines;	/* out of memory */
	if (lost)
		lost_in_memory(s, lost);
}

/* Puts what s->leftover holds into the spool: 0, or why not (no spool, or
 * it cannot be written: a full disk), leftover then untouched. A failing
 * spool is tried again after backoff_max_ms, and its failure logged once. */
static int spool_try(struct influx_sink *s)
{
	int64_t now = pm_mono_ns();
	int r;

	if (s->leftover.len == 0)
		return 0;
	if (!s->spool)
		r = -ENOENT;
	else if (s->spool_err && now < s->spool_retry_at)
		r = s->spool_err;	/* still failing: not every flush */
	else
		r = pm_spool_append(s->spool, s->leftover.data, s->leftover.len,
				    s->leftover_n, NULL);
	if (r == 0)
		STAT_ADD(s, spooled, s->leftover_n);
	if (r == 0 && s->spool_err) {
		log_notice("spool %s writable again; the points kept in memory "
			   "go there", s->spool_dir);
		s->spool_err = 0;
		s->spool_retry_at = 0;
	} else if (r < 0 && s->spool && !s->spool_err) {
		log_err("cannot write to the spool %s: %s; keeping the points in "
			"memory (at most %.1f MiB, then the oldest are dropped) "
			"until the database or the spool takes them: free space "
			"on that disk", s->spool_dir, pm_strerror(r),
			(double)s->held.cap / (1024 * 1024));
		s->spool_err = r;
	}
	if (r < 0 && s->spool && now >= s->spool_retry_at)
		s->spool_retry_at = now + (int64_t)s->tune.backoff_max_ms * MS;
	if (r == 0) {
		pm_buf_reset(&s->leftover);
		s->leftover_n = 0;
	}
	return r;
}

/* Puts what s->leftover holds into the spool or, when there is none or it
 * cannot be written, into memory. */
static void spool_leftover(struct influx_sink *s)
{
	if (spool_try(s) < 0) {
		hold(s, s->leftover.data, s->leftover.len, s->leftover_n);
		pm_buf_reset(&s->leftover);
		s->leftover_n = 0;
	}
}

/* What s->held keeps goes to the database, batch by batch, when it may be
 * tried, else to the spool when that may be tried. The first part neither
 * takes goes back in its place, in front of the rest: done in place, so
 * that memory never holds more than its bound (and a batch). */
static void retry_held(struct influx_sink *s)
{
	int64_t now = pm_mono_ns();
	size_t done = 0;

	if (s->held.len == 0 ||
	    ((s->retry_at && now < s->retry_at) &&
	     (!s->spool || (s->spool_err && now < s->spool_retry_at))))
		return;
	while (done < s->held.len) {
		const char *p = s->held.data + done, *q = p;
		const char *end = s->held.data + s->held.len;
		size_t lines = 0;

		while (q < end && lines < s->batch_lines) {
			const char *nl = memchr(q, '\n', (size_t)(end - q));
			const char *next = nl ? nl + 1 : end;

			if (lines > 0 && (size_t)(next - p) > s->batch_bytes)
				break;
			q = next;
			lines++;
		}
		deliver(s, p, (size_t)(q - p), false);
		done = (size_t)(q - s->held.data);
		if (spool_try(s) < 0) {
			/* what is left of this batch, in order: its end */
			done -= s->leftover.len;
			memcpy(s->held.data + done, s->leftover.data,
			       s->leftover.len);
			pm_buf_reset(&s->leftover);
			s->leftover_n = 0;
			break;
		}
	}
	memmove(s->held.data, s->held.data + done, s->held.len - done);
	s->held.len -= done;
	if (s->held.data)
		s->held.data[s->held.len] = '\0';
	s->held_n = count_lines(s->held.data, s->held.len);
}

/* Sends the batch being built, or spools it when the database is failing. */
static void flush_batch(struct influx_sink *s)
{
	if (s->batch.len == 0)
		return;
	if (s->final_flush && !s->final)
		keep(s, s->batch.data, s->batch.len, s->batch_n);
	else
		deliver(s, s->batch.data, s->batch.len, false);
	spool_leftover(s);
	pm_buf_reset(&s->batch);
	s->batch_n = 0;
}

/* Sends the oldest spooled points; true when there may be more to do. */
static bool replay_one(struct influx_sink *s)
{
	struct pm_spool_batch b;
	int r;

	if (!s->spool || (s->retry_at && pm_mono_ns() < s->retry_at))
		return false;
	r = pm_spool_peek_oldest(s->spool, s->batch_bytes, s->batch_lines, &b);
	if (r == -ENOENT)
		return false;
	if (r < 0) {
		log_err("cannot read the spool: %s; will retry", pm_strerror(r));
		s->retry_at = pm_mono_ns() + (int64_t)s->tune.backoff_max_ms * MS;
		return false;
	}
	s->backlog_seen = true;
	s->replay_text = b.text;
	s->replay_len = b.len;
	s->replay_untouched = false;
	deliver(s, b.text, b.len, true);
	s->replay_text = NULL;
	if (!s->replay_untouched && s->leftover.len == b.len) {
		/* its halves both failed: as untouched */
		pm_buf_reset(&s->leftover);
		s->leftover_n = 0;
		s->replay_untouched = true;
	}
	if (!s->replay_untouched) {
		/* some or all of it went through (or was refused for good) */
		spool_leftover(s);	/* the parts still to send, at the end */
		r = pm_spool_commit_oldest(s->spool, &b);
		/* once, not at every batch replayed */
		if (r < 0 && r != s->commit_err)
			log_err("cannot update the read position of the spool "
				"%s: %s; points replayed now may be sent again "
				"after a restart", s->spool_dir, pm_strerror(r));
		else if (r == 0 && s->commit_err)
			log_notice("spool %s: read position saved again",
				   s->spool_dir);
		s->commit_err = r;
	}
	pm_spool_batch_free(&b);
	return true;
}

/* Adds a chunk to the batch, flushing first when it would not fit. */
static void batch_add(struct influx_sink *s, struct pm_chunk *c)
{
	size_t lines = c->lines ? c->lines : count_lines(c->text, c->len);

	if (s->batch_n > 0 && (s->batch.len + c->len > s->batch_bytes ||
			       s->batch_n + lines > s->batch_lines))
		flush_batch(s);
	if (s->batch_n == 0) {
		s->batch_started = pm_mono_ns();
		s->batch_due = s->batch_started + s->flush_ns;
	}
	if (pm_buf_add(&s->batch, c->text, c->len) == 0) {
		s->batch_n += lines;
	} else {
		/* a chunk larger than a batch goes on its own */
		deliver(s, c->text, c->len, false);
		spool_leftover(s);
	}
	free(c->text);
	c->text = NULL;
	if (s->batch.len >= s->batch_bytes || s->batch_n >= s->batch_lines)
		flush_batch(s);
}

/* All pollers finished a tick (tick_done()): the batch holds whole ticks
 * now. It goes if waiting for the next tick would overrun the flush
 * interval, so that a poll interval of at least the flush interval gives
 * one request per tick, and shorter ones one per flush interval. */
static void tick_seen(struct influx_sink *s)
{
	int64_t now = pm_mono_ns();

	if (s->last_tick)
		s->tick_period = now - s->last_tick;
	s->last_tick = now;
	if (s->batch_n > 0 &&
	    now - s->batch_started + s->tick_period > s->flush_ns * 9 / 10)
		flush_batch(s);
}

/* Says what was lost since the last time, by cause, at most once a minute
 * (the first loss at once): each point lost is in one line. */
static void log_losses(struct influx_sink *s, bool now)
{
	int64_t t = pm_mono_ns();

	if (!s->ring_lost_unlogged && !s->held_lost_unlogged &&
	    !s->bound_lost_unlogged && !s->damaged_records_unlogged &&
	    !s->torn_records_unlogged && !s->deleted_segments_unlogged &&
	    !s->missing_unlogged && !s->foreign_unlogged)
		return;
	if (!now && s->loss_logged && t - s->loss_logged < LOSS_LOG_EVERY_NS)
		return;
	if (s->ring_lost_unlogged)
		log_warning("InfluxDB writer fell behind: dropped the oldest %"
			    PRIu64 " points in memory", s->ring_lost_unlogged);
	if (s->bound_lost_unlogged)
		log_warning("spool %s full: dropped its oldest %" PRIu64
			    " points to make room", s->spool_dir,
			    s->bound_lost_unlogged);
	if (s->held_lost_unlogged)
		log_warning("neither the database nor the spool takes points and "
			    "the memory for them is full: dropped the oldest %"
			    PRIu64 " points", s->held_lost_unlogged);
	if (s->damaged_records_unlogged)
		log_warning("spool %s: %" PRIu64 " points lost in damaged "
			    "records (%" PRIu64 " skipped)", s->spool_dir,
			    s->damaged_lost_unlogged,
			    s->damaged_records_unlogged);
	if (s->torn_records_unlogged)
		log_warning("spool %s: %" PRIu64 " points lost in records a "
			    "crash tore while they were written (%" PRIu64
			    " cut off)", s->spool_dir, s->torn_lost_unlogged,
			    s->torn_records_unlogged);
	if (s->deleted_segments_unlogged)
		log_warning("spool %s: %" PRIu64 " points lost with segment "
			    "files deleted from outside (%" PRIu64 ")",
			    s->spool_dir, s->deleted_lost_unlogged,
			    s->deleted_segments_unlogged);
	if (s->missing_unlogged)
		log_warning("spool %s: %" PRIu64 " segment files are missing "
			    "(deleted while the daemon was stopped, after a "
			    "crash): the points in them are lost, how many is "
			    "not known", s->spool_dir, s->missing_unlogged);
	if (s->foreign_unlogged)
		log_warning("spool %s: ignoring %" PRIu64 " files named as its "
			    "segments that are not this user's regular files",
			    s->spool_dir, s->foreign_unlogged);
	s->ring_lost_unlogged = s->held_lost_unlogged = 0;
	s->bound_lost_unlogged = 0;
	s->damaged_records_unlogged = s->damaged_lost_unlogged = 0;
	s->torn_records_unlogged = s->torn_lost_unlogged = 0;
	s->deleted_segments_unlogged = s->deleted_lost_unlogged = 0;
	s->missing_unlogged = s->foreign_unlogged = 0;
	s->loss_logged = t;
}

/* Counts what the ring and the spool lost since last time, by cause, and
 * logs it (log_losses()). */
static void note_drops(struct influx_sink *s)
{
	struct pm_spool_stats sst = {0}, *seen = &s->spool_seen;
	uint64_t ring_dropped, ring_new, bound, damaged, torn, deleted;

	pm_ring_stats(s->ring, NULL, &ring_dropped);
	if (s->spool)
		pm_spool_stats(s->spool, &sst);
	else
		sst = *seen;
	ring_new = ring_dropped - s->ring_dropped_seen;
	bound = sst.dropped_lines - seen->dropped_lines;
	damaged = sst.corrupt_lines - seen->corrupt_lines;
	torn = sst.torn_lines - seen->torn_lines;
	deleted = sst.deleted_lines - seen->deleted_lines;
	(void)pthread_mutex_lock(&s->lock);
	s->st.dropped += ring_new + bound + damaged + torn + deleted;
	s->st.dropped_queue += ring_new;
	s->st.dropped_bound += bound;
	s->st.dropped_damaged += damaged;
	s->st.dropped_torn += torn;
	s->st.dropped_deleted += deleted;
	s->ring_dropped_seen = ring_dropped;
	s->st.queued = s->batch_n + s->held_n;	/* stats() adds the ring's */
	s->st.spool_points = sst.lines;
	s->st.spool_bytes = sst.bytes;
	(void)pthread_mutex_unlock(&s->lock);
	s->ring_lost_unlogged += ring_new;
	s->bound_lost_unlogged += bound;
	s->damaged_lost_unlogged += damaged;
	s->damaged_records_unlogged += sst.corrupt_records - seen->corrupt_records;
	s->torn_lost_unlogged += torn;
	s->torn_records_unlogged += sst.torn_records - seen->torn_records;
	s->deleted_lost_unlogged += deleted;
	s->deleted_segments_unlogged += sst.deleted_segments -
		seen->deleted_segments;
	s->missing_unlogged += sst.missing_segments - seen->missing_segments;
	s->foreign_unlogged += sst.foreign_files - seen->foreign_files;
	*seen = sst;
	log_losses(s, false);
}

static bool spool_pending(struct influx_sink *s)
{
	struct pm_spool_stats sst;

	if (!s->spool)
		return false;
	pm_spool_stats(s->spool, &sst);
	return sst.records > 0;
}

/* After a backlog is cleared: the buffers it grew (a replayed batch held
 * again, gzip's output) go back, and so does the heap's free space (to the
 * system, malloc_trim), so that an outage costs memory only while it lasts. */
static void release_backlog_memory(struct influx_sink *s)
{
	if (!s->backlog_seen || s->failures > 0 || s->leftover.len > 0 ||
	    s->held.len > 0 || spool_pending(s))
		return;
	s->backlog_seen = false;
	pm_buf_free(&s->leftover);
	pm_buf_free(&s->held);
	pm_influx_client_trim(s->client);
	(void)malloc_trim(0);
}

static bool should_stop(struct influx_sink *s)
{
	bool stop;

	(void)pthread_mutex_lock(&s->lock);
	stop = s->stop;
	(void)pthread_mutex_unlock(&s->lock);
	return stop;
}

/* close(): what is in memory goes to the database (final, one short
 * attempt per batch within the budget) or to the spool. */
static void writer_finish(struct influx_sink *s)
{
	long budget_ms = s->final ? s->tune.final_budget_ms : RELOAD_BUDGET_MS;
	int64_t deadline = pm_mono_ns() + (int64_t)budget_ms * MS;
	struct pm_chunk c;

	s->final_flush = true;
	/* No request outlives the budget, whatever the configured timeout:
	 * what it carried is kept (spooled) when it is cut short. */
	atomic_store(&s->abort_at, deadline);
	pm_influx_client_set_timeout(s->client, budget_ms < FINAL_ATTEMPT_MS ?
				     budget_ms : FINAL_ATTEMPT_MS);
	/* the spool gets one more try too */
	s->spool_retry_at = 0;
	if (s->final) {
		/* one attempt now, whatever the backoff said */
		s->retry_at = 0;
		s->failures = 0;
	}
	for (;;) {
		int64_t left;
		int r = pm_ring_take(s->ring, &c, 0);

		if (r == -EINTR)
			continue;	/* a tick mark: nothing to take */
		if (r < 0)
			break;
		left = deadline - pm_mono_ns();

		if (s->final && left > 0)
			pm_influx_client_set_timeout(s->client,
				left / MS < FINAL_ATTEMPT_MS ? (long)(left / MS) + 1 :
				FINAL_ATTEMPT_MS);
		else if (s->final)
			s->retry_at = INT64_MAX;	/* out of time: spool */
		batch_add(s, &c);
	}
	if (s->final && pm_mono_ns() >= deadline)
		s->retry_at = INT64_MAX;
	flush_batch(s);
	/* what only memory held: one try, or it is lost with this process */
	retry_held(s);
	if (s->held_n > 0) {
		log_err("%zu points that neither the database nor the spool "
			"took are lost with this process", s->held_n);
		(void)pthread_mutex_lock(&s->lock);
		s->st.dropped += s->held_n;
		s->st.dropped_memory += s->held_n;
		(void)pthread_mutex_unlock(&s->lock);
		pm_buf_reset(&s->held);
		s->held_n = 0;
	}
	note_drops(s);
	log_losses(s, true);
}

/* Whether the health probe is due or, in *wait_ns, how soon it will be. */
static bool probe_due(const struct influx_sink *s, int64_t now, int64_t *wait_ns)
{
	if (!s->probe_allowed || !s->retry_at || now >= s->retry_at ||
	    s->retry_at - s->probe_at <= 0)
		return false;
	if (now >= s->probe_at)
		return true;
	if (wait_ns && s->probe_at - now < *wait_ns)
		*wait_ns = s->probe_at - now;
	return false;
}

/* While backing off from a database that is away: a GET /ping, cheap for
 * both sides, and when it answers the backoff ends, so that live data
 * flows within probe_ms of its return (and the spool's backlog follows)
 * rather than after up to backoff_max_ms. */
static void probe(struct influx_sink *s)
{
	struct pm_influx_result res;
	int64_t now = pm_mono_ns();
	int r;

	if (!probe_due(s, now, NULL))
		return;
	s->probe_at = now + (int64_t)s->tune.probe_ms * MS;
	r = pm_influx_ping(s->client, PROBE_TIMEOUT_MS, &res);
	atomic_fetch_add(&s->progress, 1);
	if (r < 0 || res.status < 200 || res.status > 299)
		return;
	log_info("InfluxDB %s answers its health probe again: sending now "
		 "rather than in %.0f s", s->url_log,
		 (double)(s->retry_at - pm_mono_ns()) / 1e9);
	s->retry_at = 0;
	s->probe_said_ok = true;
}

static void *writer_main(void *arg)
{
	struct influx_sink *s = arg;
	struct pm_chunk c;
	int r;

	while (!should_stop(s)) {
		int64_t now = pm_mono_ns(), wait_ns;
		bool spool_work = spool_pending(s) &&
			(!s->retry_at || now >= s->retry_at);

		atomic_fetch_add(&s->progress, 1);
		pm_testfault_hang("writer");
		if (s->batch_n > 0)
			wait_ns = s->batch_due - now;
		else
			wait_ns = s->flush_ns;
		if (spool_work)
			wait_ns = 0;
		else if (s->retry_at && s->retry_at - now < wait_ns)
			wait_ns = s->retry_at - now;
		if (s->held.len > 0 && s->spool && s->spool_err &&
		    s->spool_retry_at - now < wait_ns)
			wait_ns = s->spool_retry_at - now;
		(void)probe_due(s, now, &wait_ns);
		if (wait_ns > WRITER_WAIT_MAX_NS)
			wait_ns = WRITER_WAIT_MAX_NS;
		if (wait_ns < 0)
			wait_ns = 0;
		r = pm_ring_take(s->ring, &c, (int)((wait_ns + MS - 1) / MS));
		/* take what is there without waiting */
		for (int i = 0; r == 0; i++) {
			batch_add(s, &c);
			r = i < 256 ? pm_ring_take(s->ring, &c, 0) : -EAGAIN;
		}
		if (r == -EINTR)
			tick_seen(s);
		probe(s);
		retry_held(s);
		if (s->batch_n > 0 && pm_mono_ns() >= s->batch_due)
			flush_batch(s);
		if (spool_work)
			(void)replay_one(s);
		note_drops(s);
		release_backlog_memory(s);
	}
	writer_finish(s);
	return NULL;
}

/* ---- sink interface ----------------------------------------------------- */

static bool influx_wanted(const struct pm_config *cfg)
{
	return cfg->influx != NULL && cfg->influx->url != NULL;
}

static void influx_free(struct influx_sink *s)
{
	pm_influx_client_free(s->client);
	pm_spool_close(s->spool);
	pm_ring_free(s->ring);
	pm_buf_free(&s->batch);
	pm_buf_free(&s->leftover);
	pm_buf_free(&s->held);
	free(s->what_log);
	free(s->spool_dir);
	(void)pthread_mutex_destroy(&s->lock);
	free(s);
}

static int describe_target(struct influx_sink *s, const struct pm_influx *ix)
{
	int n;

	if (ix->api == PM_INFLUX_V2)
		n = asprintf(&s->what_log, "bucket \"%s\" in org \"%s\"",
			     ix->bucket ? ix->bucket : "",
			     ix->org ? ix->org : "");
	else
		n = asprintf(&s->what_log, "database \"%s\"",
			     ix->database ? ix->database : "");
	if (n < 0) {
		s->what_log = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void open_spool(struct influx_sink *s, const struct pm_config *cfg)
{
	struct pm_spool_stats sst;
	uint64_t max = cfg->spool_max_bytes ? cfg->spool_max_bytes :
		PM_DEFAULT_SPOOL_MAX;
	int r;

	if (!cfg->spool_dir || !*cfg->spool_dir) {
		log_warning("no spool directory: points the database does not "
			    "take are kept in memory only (at most %.1f MiB)",
			    (double)s->tune.ring_bytes / (1024 * 1024));
		return;
	}
	if (max < PM_SPOOL_MIN_BYTES)
		max = PM_SPOOL_MIN_BYTES;
	r = pm_spool_open(&s->spool, cfg->spool_dir, max, s->tune.spool_flags);
	if (r < 0) {
		log_err("cannot open the spool %s: %s; points the database does "
			"not take are kept in memory only (at most %.1f MiB)",
			cfg->spool_dir, r == -EBUSY ? "in use by another process" :
			r == -EPERM ? "another user could put files in the place "
			"of its own (it or its lock file belongs to another user, "
			"or others may write it and it is not sticky)" :
			pm_strerror(r), (double)s->tune.ring_bytes / (1024 * 1024));
		s->spool = NULL;
		return;
	}
	s->spool_dir = strdup(cfg->spool_dir);
	if (!s->spool_dir) {
		pm_spool_close(s->spool);
		s->spool = NULL;
		log_err("out of memory");
		return;
	}
	pm_spool_stats(s->spool, &sst);
	if (sst.progress_lost)
		log_warning("spool %s: read position lost, replaying all of it",
			    cfg->spool_dir);
	if (sst.lines)
		log_info("spool %s holds %" PRIu64 " points to replay",
			 cfg->spool_dir, sst.lines);
	/* what opening found lost (torn, damaged, deleted), by cause */
	note_drops(s);
}

static int influx_open(void **state, const struct pm_config *cfg)
{
	const struct pm_influx *ix = cfg->influx;
	struct influx_sink *s;
	sigset_t all, old;
	char *url;
	int r;

	if (!ix)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	(void)pthread_mutex_init(&s->lock, NULL);
	s->tune = tuning_effective();
	s->measurement = ix->measurement;
	s->batch_lines = ix->batch_lines ? ix->batch_lines : DEFAULT_BATCH_LINES;
	s->batch_bytes = ix->batch_bytes ? ix->batch_bytes : DEFAULT_BATCH_BYTES;
	s->flush_ns = (int64_t)((ix->flush_interval > 0 ?
				 ix->flush_interval : 1.0) * 1e9);
	s->rand_state = (unsigned)pm_mono_ns() ^ (unsigned)getpid();
	s->complaint.min_quiet_ns = COMPLAIN_QUIET_NS;
	s->tick_period = s->flush_ns;
	pm_buf_init(&s->batch, s->batch_bytes);
	/* grows only as needed; a spooled record may be larger than a batch
	 * of this config */
	pm_buf_init(&s->leftover, PM_SPOOL_RECORD_MAX);
	pm_buf_init(&s->held, s->tune.ring_bytes);
	pm_influx_url_redact(ix->url ? ix->url : "", s->url_log,
			     sizeof(s->url_log));
	r = describe_target(s, ix);
	if (r < 0)
		goto fail;
	r = pm_ring_new(&s->ring, s->tune.ring_chunks, s->tune.ring_bytes);
	if (r < 0)
		goto fail;
	r = pm_influx_client_new(&s->client, ix);
	if (r < 0) {
		log_err("InfluxDB %s: cannot set up the client: %s",
			s->url_log, pm_strerror(r));
		goto fail;
	}
	pm_influx_client_set_abort(s->client, abort_cb, s);
	if (pm_influx_write_url(ix, &url) == 0) {
		char shown[512];

		pm_influx_url_redact(url, shown, sizeof(shown));
		log_info("writing to %s", shown);
		free(url);
	}
	if (!ix->verify_ssl && ix->url && strncasecmp(ix->url, "https:", 6) == 0)
		log_warning("InfluxDB %s: TLS certificate and host name "
			    "checks are off (verify_ssl false)", s->url_log);
	open_spool(s, cfg);

	/* the writer takes no signals: the main thread handles them */
	(void)sigfillset(&all);
	(void)pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&s->writer, NULL, writer_main, s);
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		log_err("cannot start the InfluxDB writer: %s", pm_strerror(r));
		goto fail;
	}
	s->writer_started = true;
	*state = s;
	return 0;
fail:
	influx_free(s);
	return r;
}

static void influx_emit(void *state, const struct pm_config *cfg,
			size_t device, const struct pm_sample *sample,
			const struct pm_device_state *st)
{
	struct influx_sink *s = state;
	struct pm_chunk c;
	struct pm_buf b;

	pm_buf_init(&b, SAMPLE_TEXT_MAX);
	if (pm_lp_append_read(&b, cfg, s->measurement, device, sample,
			      st) < 0 || b.len == 0) {
		pm_buf_free(&b);
		return;
	}
	c.text = pm_buf_take(&b, &c.len);
	c.lines = count_lines(c.text, c.len);
	(void)pm_ring_put(s->ring, &c);
}

/* Feeds and alarm changes go the way of the samples: ring, batch, spool. */
static void influx_watch(void *state, const struct pm_config *cfg,
			 const struct pm_watch_tick *t)
{
	struct influx_sink *s = state;
	struct pm_chunk c;
	struct pm_buf b;

	if (t->n_feeds == 0 && t->n_events == 0)
		return;
	pm_buf_init(&b, SAMPLE_TEXT_MAX);
	if (pm_lp_append_watch(&b, cfg, s->measurement, t->feeds, t->time_ms,
			       t->events, t->n_events) < 0 || b.len == 0) {
		pm_buf_free(&b);
		return;
	}
	c.text = pm_buf_take(&b, &c.len);
	c.lines = count_lines(c.text, c.len);
	(void)pm_ring_put(s->ring, &c);
}

/* What waits in the spool for the database. */
static uint64_t influx_backlog(void *state)
{
	struct influx_sink *s = state;
	uint64_t bytes;

	pthread_mutex_lock(&s->lock);
	bytes = s->st.spool_bytes;
	pthread_mutex_unlock(&s->lock);
	return bytes;
}

static void influx_tick_done(void *state, const struct pm_config *cfg)
{
	struct influx_sink *s = state;

	(void)cfg;
	pm_ring_kick(s->ring);
}

void pm_sink_influx_tick(void *state)
{
	influx_tick_done(state, NULL);
}

int pm_sink_influx_put(void *state, char *text, size_t len)
{
	struct influx_sink *s = state;
	struct pm_chunk c = {
		.text = text,
		.len = len,
		.lines = count_lines(text, len),
	};

	return pm_ring_put(s->ring, &c);
}

static uint64_t influx_progress(void *state)
{
	struct influx_sink *s = state;

	return atomic_load(&s->progress);
}

void pm_sink_influx_stats(void *state, struct pm_influx_stats *out)
{
	struct influx_sink *s = state;
	uint64_t ring_dropped;
	size_t queued;

	pm_ring_stats(s->ring, &queued, &ring_dropped);
	(void)pthread_mutex_lock(&s->lock);
	*out = s->st;
	/* the writer adds ring drops to 'dropped' as it notices them */
	out->dropped += ring_dropped - s->ring_dropped_seen;
	out->dropped_queue += ring_dropped - s->ring_dropped_seen;
	out->queued += queued;
	(void)pthread_mutex_unlock(&s->lock);
}

static void influx_status(void *state, struct pm_buf *out)
{
	struct pm_influx_stats st;

	pm_sink_influx_stats(state, &st);
	if (st.failing && st.last_status > 0)
		(void)pm_buf_printf(out, "influx failing (HTTP %d)",
				    st.last_status);
	else if (st.failing)
		(void)pm_buf_printf(out, "influx failing (%s)",
				    pm_strerror(st.last_status));
	else
		(void)pm_buf_adds(out, "influx ok");
	(void)pm_buf_printf(out, ", %" PRIu64 " written", st.written);
	if (st.spool_points)
		(void)pm_buf_printf(out, ", %" PRIu64 " in spool",
				    st.spool_points);
	if (st.rejected)
		(void)pm_buf_printf(out, ", %" PRIu64 " rejected", st.rejected);
	if (st.dropped)
		(void)pm_buf_printf(out, ", %" PRIu64 " dropped", st.dropped);
}

void pm_sink_influx_close(void *state, bool final, struct pm_influx_stats *out)
{
	struct influx_sink *s = state;
	struct pm_influx_stats st;

	if (!s)
		return;
	(void)pthread_mutex_lock(&s->lock);
	s->stop = true;
	s->final = final;
	(void)pthread_mutex_unlock(&s->lock);
	/* a request under way may finish (its points would be sent twice if
	 * cut off after the server took them), but not for long */
	atomic_store(&s->abort_at, pm_mono_ns() + (final ?
		(int64_t)s->tune.final_budget_ms * MS / 2 : 1000 * MS));
	pm_ring_close(s->ring);
	if (s->writer_started)
		(void)pthread_join(s->writer, NULL);
	pm_sink_influx_stats(s, &st);
	if (st.dropped)
		log_info("InfluxDB writer stopped: %" PRIu64 " points written, %"
			 PRIu64 " in the spool, %" PRIu64 " rejected, %" PRIu64
			 " dropped (%" PRIu64 " queue overflow, %" PRIu64
			 " memory bound or unsaved at stop, %" PRIu64 " spool "
			 "bound, %" PRIu64 " damaged, %" PRIu64 " torn and %"
			 PRIu64 " deleted spool records)", st.written,
			 st.spool_points, st.rejected, st.dropped,
			 st.dropped_queue, st.dropped_memory, st.dropped_bound,
			 st.dropped_damaged, st.dropped_torn,
			 st.dropped_deleted);
	else
		log_info("InfluxDB writer stopped: %" PRIu64 " points written, %"
			 PRIu64 " in the spool, %" PRIu64 " rejected, 0 dropped",
			 st.written, st.spool_points, st.rejected);
	if (out)
		*out = st;
	influx_free(s);
}

static void influx_close(void *state, bool final)
{
	pm_sink_influx_close(state, final, NULL);
}

const struct pm_sink_ops pm_sink_influx = {
	.name = "influx",
	.wanted = influx_wanted,
	.open = influx_open,
	.emit = influx_emit,
	.tick_done = influx_tick_done,
	.watch = influx_watch,
	.backlog = influx_backlog,
	.progress = influx_progress,
	.status = influx_status,
	.close = influx_close,
};
