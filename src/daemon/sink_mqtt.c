/* sink_mqtt.c — the daemon's output to an MQTT broker, with libmosquitto
 * (what is sent: mqttmsg.h). State, not history: each circuit keeps only
 * its newest state until the broker takes it, so memory stays bounded
 * however long the broker is away (history is InfluxDB's job); every
 * circuit's newest state goes out again after a reconnect.
 *
 * Pollers call emit(), which formats and stores under a lock and wakes the
 * sink's one thread through an eventfd. That thread owns the libmosquitto
 * client: it connects (non-blocking), drives the client with
 * mosquitto_loop() when its socket or the eventfd is ready, publishes what
 * is new while fewer than INFLIGHT_MAX messages are unconfirmed, and after
 * any failure drops the client and connects a fresh one with back-off.
 * No wait is unbounded, no broker answer reaches a poller. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <mosquitto.h>

#include "daemon/sink.h"
#include "output/mqttmsg.h"
#include "util/log.h"
#include "util/timeutil.h"

#define NS_PER_MS 1000000LL
#define INFLIGHT_MAX 100		/* messages sent, not yet confirmed */
#define CONNECT_TIMEOUT_MS 10000	/* TCP, TLS and CONNACK together */
#define BACKOFF_FIRST_MS 1000		/* doubling up to ... */
#define BACKOFF_MAX_MS 10000
#define GOODBYE_MS 2000			/* at stop: "offline" confirmed */
#define STATE_MAX 320			/* one state message */
#define REASON_MAX 1024

struct circuit {
	size_t device;			/* index into cfg->devices */
	const struct pm_input *in;
	char *topic;			/* P/D/L/state */
	/* under the lock */
	bool have;			/* a state was ever stored */
	bool dirty;			/* stored, not sent */
	bool config_dirty;		/* discovery config not sent */
	size_t len;
	char state[STATE_MAX];
};

struct module {
	char *topic;			/* P/D/availability */
	size_t first, n;		/* its circuits */
	/* under the lock */
	int up;				/* -1: not read yet, 0, 1 */
	bool up_dirty;
	char firmware[sizeof(((struct pm_device_state *)0)->firmware)];
};

enum link { LINK_IDLE, LINK_CONNECTING, LINK_CONNECTED };

struct sink_mqtt {
	const struct pm_config *cfg;
	const struct pm_mqtt *m;
	char *daemon_topic;		/* P/availability */
	char *filter;			/* H/sensor/N/+/config */
	size_t n_configs;
	char **configs;			/* our discovery topics, sorted */
	size_t n_modules;		/* = cfg->n_devices */
	struct module *modules;
	size_t n_circuits;
	struct circuit *circuits;
	pthread_t thread;
	bool started;
	int efd;
	atomic_uint_fast64_t progress;

	pthread_mutex_t lock;		/* guards what the structs say and: */
	bool stop, final;
	bool woken;			/* efd written, thread not yet up */
	bool connected;
	int64_t down_since_ms;		/* 0: connected or never tried */
	char reason[REASON_MAX];	/* why not connected */
	uint64_t published, superseded, removed;

	/* the thread's own */
	struct mosquitto *mosq;
	enum link link;
	int64_t next_attempt_ns, deadline_ns;
	unsigned backoff_ms;
	unsigned inflight;
	bool daemon_dirty;		/* "online" to publish */
	size_t n_stale;			/* discovery configs to empty */
	char **stale;
	bool was_connected;		/* ever, since open */
	bool failing;			/* a failure spell is under way */
	int refused;			/* CONNACK code, 0: none */
	char lib_error[256];		/* libmosquitto's last complaint */
	char logged[REASON_MAX];	/* the reason last logged */
	struct pm_buf scratch;
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init(void)
{
	(void)mosquitto_lib_init();
}

static bool mqtt_wanted(const struct pm_config *cfg)
{
	return cfg->mqtt != NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Topics and the circuits' table, from the config. */
static int build(struct sink_mqtt *s)
{
	const struct pm_config *cfg = s->cfg;
	struct pm_buf b;
	size_t c = 0, n = 0;
	int r = 0;

	pm_buf_init(&b, 4096);
	for (size_t i = 0; i < cfg->n_devices; i++)
		n += cfg->devices[i].n_inputs;
	s->n_modules = cfg->n_devices;
	s->modules = calloc(s->n_modules ? s->n_modules : 1,
			    sizeof(*s->modules));
	s->circuits = calloc(n ? n : 1, sizeof(*s->circuits));
	s->configs = calloc(n * PM_MQTT_KINDS + 1, sizeof(*s->configs));
	if (!s->modules || !s->circuits || !s->configs)
		r = -ENOMEM;
	if (r == 0 && pm_mqtt_topic_daemon(&b, s->m) == 0)
		s->daemon_topic = strdup(b.data);
	pm_buf_reset(&b);
	if (r == 0 && pm_mqtt_topic_discovery_filter(&b, s->m) == 0)
		s->filter = strdup(b.data);
	if (!s->daemon_topic || !s->filter)
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < cfg->n_devices; i++) {
		const struct pm_device *dev = &cfg->devices[i];
		struct module *mod = &s->modules[i];

		pm_buf_reset(&b);
		if (pm_mqtt_topic_module(&b, s->m, dev) < 0 ||
		    !(mod->topic = strdup(b.data)))
			r = -ENOMEM;
		mod->up = -1;
		mod->first = c;
		for (size_t j = 0; r == 0 && j < dev->n_inputs; j++) {
			const struct pm_input *in = &dev->inputs[j];
			struct circuit *ci;

			if (in->channel >= PM_CHANNELS)
				continue;
			ci = &s->circuits[c++];
			ci->device = i;
			ci->in = in;
			ci->config_dirty = s->m->discovery;
			pm_buf_reset(&b);
			if (pm_mqtt_topic_state(&b, s->m, dev, in) < 0 ||
			    !(ci->topic = strdup(b.data)))
				r = -ENOMEM;
			for (int k = 0; r == 0 && s->m->discovery &&
			     k < PM_MQTT_KINDS; k++) {
				if (!pm_mqtt_kind_wanted(cfg, dev, k))
					continue;
				pm_buf_reset(&b);
				if (pm_mqtt_topic_discovery(&b, s->m, dev, in,
							    k) < 0 ||
				    !(s->configs[s->n_configs++] =
					      strdup(b.data)))
					r = -ENOMEM;
			}
		}
		mod->n = c - mod->first;
	}
	s->n_circuits = c;
	if (r == 0)
		qsort(s->configs, s->n_configs, sizeof(*s->configs), cmp_str);
	pm_buf_free(&b);
	return r;
}

static bool is_ours(const struct sink_mqtt *s, const char *topic)
{
	return bsearch(&topic, s->configs, s->n_configs, sizeof(*s->configs),
		       cmp_str) != NULL;
}

/* ---- the thread: publishing ------------------------------------------ */

/* Room for one more message: fewer than INFLIGHT_MAX unconfirmed. */
static bool room(const struct sink_mqtt *s)
{
	return s->link == LINK_CONNECTED && s->inflight < INFLIGHT_MAX;
}

static int publish(struct sink_mqtt *s, const char *topic, const void *data,
		   size_t len, int qos, bool retain)
{
	int rc = mosquitto_publish(s->mosq, NULL, topic, (int)len, data, qos,
				   retain);

	if (rc != MOSQ_ERR_SUCCESS)
		return -1;	/* the loop finds the broken link */
	s->inflight++;		/* on_publish: written (QoS 0), acked (1) */
	return 0;
}

static void publish_modules(struct sink_mqtt *s)
{
	for (size_t i = 0; i < s->n_modules && room(s); i++) {
		struct module *mod = &s->modules[i];
		const char *text = NULL;

		pthread_mutex_lock(&s->lock);
		if (mod->up_dirty) {
			text = mod->up ? PM_MQTT_ONLINE : PM_MQTT_OFFLINE;
			mod->up_dirty = false;
		}
		pthread_mutex_unlock(&s->lock);
		if (text && publish(s, mod->topic, text, strlen(text), 1,
				    true) < 0)
			return;
	}
}

static void publish_configs(struct sink_mqtt *s)
{
	char firmware[sizeof(s->modules[0].firmware)];

	for (size_t i = 0; i < s->n_circuits && room(s); i++) {
		struct circuit *ci = &s->circuits[i];
		const struct pm_device *dev = &s->cfg->devices[ci->device];
		bool dirty;

		pthread_mutex_lock(&s->lock);
		dirty = ci->config_dirty;
		ci->config_dirty = false;
		memcpy(firmware, s->modules[ci->device].firmware,
		       sizeof(firmware));
		pthread_mutex_unlock(&s->lock);
		if (!dirty)
			continue;
		for (int k = 0; k < PM_MQTT_KINDS; k++) {
			char topic[512];

			if (!pm_mqtt_kind_wanted(s->cfg, dev, k))
				continue;
			pm_buf_reset(&s->scratch);
			if (pm_mqtt_topic_discovery(&s->scratch, s->m, dev,
						    ci->in, k) < 0 ||
			    s->scratch.len >= sizeof(topic))
				continue;
			memcpy(topic, s->scratch.data, s->scratch.len + 1);
			pm_buf_reset(&s->scratch);
			if (pm_mqtt_discovery(&s->scratch, s->cfg, dev, ci->in,
					      k, firmware) < 0)
				continue;
			if (publish(s, topic, s->scratch.data, s->scratch.len,
				    1, true) < 0)
				return;
		}
	}
}

static void publish_states(struct sink_mqtt *s)
{
	char state[STATE_MAX];

	for (size_t i = 0; i < s->n_circuits && room(s); i++) {
		struct circuit *ci = &s->circuits[i];
		size_t len = 0;

		pthread_mutex_lock(&s->lock);
		if (ci->dirty) {
			len = ci->len;
			memcpy(state, ci->state, len);
			ci->dirty = false;
		}
		pthread_mutex_unlock(&s->lock);
		if (len && publish(s, ci->topic, state, len, s->m->qos,
				   s->m->retain) < 0)
			return;
	}
}

/* The configs on_message() found that are not ours any more. */
static void publish_removals(struct sink_mqtt *s)
{
	while (s->n_stale > 0 && room(s)) {
		char *topic = s->stale[s->n_stale - 1];

		if (publish(s, topic, NULL, 0, 1, true) < 0)
			return;
		s->n_stale--;
		pthread_mutex_lock(&s->lock);
		s->removed++;
		pthread_mutex_unlock(&s->lock);
		log_info("mqtt: removed the Home Assistant sensor %s: %s",
			 topic, s->m->discovery ?
			 "its circuit is no longer configured" :
			 "discovery is off");
		free(topic);
	}
}

static void forget_removals(struct sink_mqtt *s)
{
	while (s->n_stale > 0)
		free(s->stale[--s->n_stale]);
	free(s->stale);
	s->stale = NULL;
}

/* What is new, in the order Home Assistant wants it: availability, then
 * the sensors' configs, then their states. */
static void publish_pending(struct sink_mqtt *s)
{
	if (s->daemon_dirty && room(s) &&
	    publish(s, s->daemon_topic, PM_MQTT_ONLINE,
		    strlen(PM_MQTT_ONLINE), 1, true) == 0)
		s->daemon_dirty = false;
	publish_modules(s);
	if (s->m->discovery)
		publish_configs(s);
	publish_removals(s);
	publish_states(s);
}

/* ---- the thread: the link -------------------------------------------- */

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
	struct sink_mqtt *s = obj;

	(void)mosq;
	if (rc == 0)
		s->link = LINK_CONNECTED;
	else
		s->refused = rc;
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid)
{
	struct sink_mqtt *s = obj;

	(void)mosq;
	(void)mid;
	if (s->inflight > 0)
		s->inflight--;
	pthread_mutex_lock(&s->lock);
	s->published++;
	pthread_mutex_unlock(&s->lock);
}

/* A retained discovery config under our node that is no longer ours: a
 * circuit removed from the config, or discovery turned off. It is emptied
 * (an empty retained message deletes it) by publish_pending(), not here:
 * libmosquitto holds its locks during callbacks. */
static void on_message(struct mosquitto *mosq, void *obj,
		       const struct mosquitto_message *msg)
{
	struct sink_mqtt *s = obj;
	char **more, *topic;

	(void)mosq;
	if (!msg->retain || msg->payloadlen == 0 || is_ours(s, msg->topic))
		return;
	more = realloc(s->stale, (s->n_stale + 1) * sizeof(*s->stale));
	topic = strdup(msg->topic);
	if (more)
		s->stale = more;
	if (!more || !topic) {
		free(topic);
		return;		/* found again at the next connect */
	}
	s->stale[s->n_stale++] = topic;
}

static void on_log(struct mosquitto *mosq, void *obj, int level,
		   const char *str)
{
	struct sink_mqtt *s = obj;

	(void)mosq;
	if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
		(void)snprintf(s->lib_error, sizeof(s->lib_error), "%s", str);
}

static void drop_client(struct sink_mqtt *s)
{
	if (s->mosq)
		mosquitto_destroy(s->mosq);
	s->mosq = NULL;
	s->link = LINK_IDLE;
	s->inflight = 0;
	forget_removals(s);	/* the next connection finds them again */
}

/* The link failed ('what' says how): drop the client, tell the log once
 * per spell (and when the reason changes), try again after the back-off. */
static void link_failed(struct sink_mqtt *s, const char *what)
{
	const struct pm_mqtt *m = s->m;
	bool was_up = s->link == LINK_CONNECTED;
	int64_t now = pm_mono_ns();

	drop_client(s);
	pthread_mutex_lock(&s->lock);
	s->connected = false;
	if (!s->down_since_ms)
		s->down_since_ms = pm_now_ms();
	(void)snprintf(s->reason, sizeof(s->reason), "%s", what);
	pthread_mutex_unlock(&s->lock);
	if (was_up)
		log_warning("mqtt: lost the broker at %s: %s (reconnecting; "
			    "polling goes on and the newest state of each "
			    "circuit is kept)", m->url, what);
	else if (!s->failing || strcmp(s->logged, what) != 0)
		log_warning("mqtt: cannot connect to the broker at %s: %s "
			    "(retrying every %d s at most; polling goes on and "
			    "the newest state of each circuit is kept)", m->url,
			    what, BACKOFF_MAX_MS / 1000);
	(void)snprintf(s->logged, sizeof(s->logged), "%s", what);
	s->failing = true;
	if (was_up)
		s->backoff_ms = BACKOFF_FIRST_MS;
	s->next_attempt_ns = now + (int64_t)s->backoff_ms * NS_PER_MS;
	s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
							     s->backoff_ms * 2;
}

/* Why the link failed, for the log and STATUS=, in an electrician's words. */
static void describe(struct sink_mqtt *s, int rc, int err, char *out,
		     size_t n)
{
	const struct pm_mqtt *m = s->m;

	if (s->refused) {
		const char *hint = "";

		if (s->refused == 4 || s->refused == 5)
			hint = m->username ?
				" (check mqtt.username and its password)" :
				" (the broker wants a user: set mqtt.username and mqtt.password_file)";
		(void)snprintf(out, n, "the broker refused the connection: %s%s",
			       mosquitto_connack_string(s->refused), hint);
	} else if (rc == MOSQ_ERR_TLS || (rc == MOSQ_ERR_ERRNO && err == EPROTO)) {
		(void)snprintf(out, n, "TLS failed%s%s: is %s the CA that signed "
			       "the broker's certificate, and is the certificate "
			       "issued for %s?",
			       s->lib_error[0] ? ": " : "", s->lib_error,
			       m->ca_file ? m->ca_file : "the system's CA store",
			       m->host);
	} else if (rc == MOSQ_ERR_ERRNO && err == ECONNREFUSED) {
		(void)snprintf(out, n, "connection refused: is the broker running "
			       "and listening on port %u?", m->port);
	} else if (rc == MOSQ_ERR_ERRNO && err) {
		(void)snprintf(out, n, "%s", strerror(err));
	} else if (rc == MOSQ_ERR_EAI) {
		(void)snprintf(out, n, "cannot resolve the host name %s", m->host);
	} else if (rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_NO_CONN) {
		(void)snprintf(out, n, "the broker closed the connection");
	} else {
		(void)snprintf(out, n, "%s", mosquitto_strerror(rc));
	}
}

static void fail_rc(struct sink_mqtt *s, int rc, int err)
{
	char why[REASON_MAX];

	describe(s, rc, err, why, sizeof(why));
	link_failed(s, why);
}

static void link_start(struct sink_mqtt *s)
{
	const struct pm_mqtt *m = s->m;
	int rc, err;

	s->refused = 0;
	s->lib_error[0] = '\0';
	s->mosq = mosquitto_new(m->client_id, true, s);
	if (!s->mosq) {
		link_failed(s, "out of memory");
		return;
	}
	(void)mosquitto_int_option(s->mosq, MOSQ_OPT_PROTOCOL_VERSION,
				   MQTT_PROTOCOL_V311);
	(void)mosquitto_int_option(s->mosq, MOSQ_OPT_SEND_MAXIMUM,
				   INFLIGHT_MAX + PM_MQTT_KINDS);
	/* A tick's states go out at once: with Nagle on, a QoS 0 burst
	 * after a ping waits for the broker's delayed ACK (~40 ms). */
	(void)mosquitto_int_option(s->mosq, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_connect_callback_set(s->mosq, on_connect);
	mosquitto_publish_callback_set(s->mosq, on_publish);
	mosquitto_message_callback_set(s->mosq, on_message);
	mosquitto_log_callback_set(s->mosq, on_log);
	rc = mosquitto_will_set(s->mosq, s->daemon_topic,
				(int)strlen(PM_MQTT_OFFLINE), PM_MQTT_OFFLINE,
				1, true);
	if (rc == MOSQ_ERR_SUCCESS && m->username)
		rc = mosquitto_username_pw_set(s->mosq, m->username,
					       m->password);
	if (rc == MOSQ_ERR_SUCCESS && m->tls)
		rc = mosquitto_tls_set(s->mosq, m->ca_file,
				       m->ca_file ? NULL : "/etc/ssl/certs",
				       NULL, NULL, NULL);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_connect_async(s->mosq, m->host, (int)m->port,
					     (int)m->keepalive);
	err = errno;
	if (rc != MOSQ_ERR_SUCCESS) {
		fail_rc(s, rc, err);
		return;
	}
	s->link = LINK_CONNECTING;
	s->deadline_ns = pm_mono_ns() + CONNECT_TIMEOUT_MS * NS_PER_MS;
}

/* CONNACK accepted: everything we know goes out again. */
static void link_up(struct sink_mqtt *s)
{
	const struct pm_mqtt *m = s->m;
	int64_t down_ms;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n_modules; i++)
		s->modules[i].up_dirty = s->modules[i].up >= 0;
	for (size_t i = 0; i < s->n_circuits; i++) {
		s->circuits[i].dirty = s->circuits[i].have;
		s->circuits[i].config_dirty = m->discovery;
	}
	down_ms = s->down_since_ms ? pm_now_ms() - s->down_since_ms : 0;
	s->connected = true;
	s->down_since_ms = 0;
	s->reason[0] = '\0';
	pthread_mutex_unlock(&s->lock);
	s->daemon_dirty = true;
	s->backoff_ms = BACKOFF_FIRST_MS;
	/* Even without discovery: then none of the configs found is ours,
	 * and turning discovery off removes the sensors it made. */
	(void)mosquitto_subscribe(s->mosq, NULL, s->filter, 1);
	if (s->failing)
		log_notice("mqtt: connected to the broker at %s again after "
			   "%lld s", m->url, (long long)(down_ms / 1000));
	else if (!s->was_connected)
		log_info("mqtt: connected to the broker at %s as %s", m->url,
			 m->client_id);
	s->failing = false;
	s->was_connected = true;
	s->logged[0] = '\0';
}

/* One turn of the client: what its socket has, keep-alive, timeouts. */
static void link_turn(struct sink_mqtt *s)
{
	enum link before = s->link;
	int rc, err;

	errno = 0;
	rc = mosquitto_loop(s->mosq, 0, 1);
	err = errno;
	if (s->refused) {
		fail_rc(s, MOSQ_ERR_CONN_REFUSED, 0);
		return;
	}
	if (rc != MOSQ_ERR_SUCCESS) {
		fail_rc(s, rc, err);
		return;
	}
	if (before == LINK_CONNECTING && s->link == LINK_CONNECTED)
		link_up(s);
	else if (s->link == LINK_CONNECTING && pm_mono_ns() >= s->deadline_ns)
		link_failed(s, "no answer from the broker within 10 s");
}

/* At stop: "offline" on a final stop (a reload reconnects at once), then
 * a clean disconnect, so the broker does not send the last will. */
static void link_goodbye(struct sink_mqtt *s, bool final)
{
	int64_t until = pm_mono_ns() + GOODBYE_MS * NS_PER_MS;

	if (s->link == LINK_CONNECTED) {
		if (final)
			(void)publish(s, s->daemon_topic, PM_MQTT_OFFLINE,
				      strlen(PM_MQTT_OFFLINE), 1, true);
		while (s->link == LINK_CONNECTED && s->inflight > 0 &&
		       pm_mono_ns() < until) {
			struct pollfd p = { mosquitto_socket(s->mosq),
					    POLLIN, 0 };

			if (mosquitto_want_write(s->mosq))
				p.events |= POLLOUT;
			(void)poll(&p, 1, 100);
			if (mosquitto_loop(s->mosq, 0, 1) != MOSQ_ERR_SUCCESS)
				break;
		}
		(void)mosquitto_disconnect(s->mosq);
		(void)mosquitto_loop(s->mosq, 0, 1);
	}
	drop_client(s);
}

static void *mqtt_main(void *arg)
{
	struct sink_mqtt *s = arg;
	bool stop, final;

	for (;;) {
		struct pollfd p[2] = { { s->efd, POLLIN, 0 } };
		int n = 1, timeout = 1000;
		int64_t now;

		pthread_mutex_lock(&s->lock);
		stop = s->stop;
		final = s->final;
		s->woken = false;
		pthread_mutex_unlock(&s->lock);
		if (stop)
			break;
		atomic_fetch_add(&s->progress, 1);
		now = pm_mono_ns();
		if (s->link == LINK_IDLE && now >= s->next_attempt_ns)
			link_start(s);
		if (s->link == LINK_CONNECTED)
			publish_pending(s);
		if (s->link == LINK_IDLE) {
			int64_t ms = (s->next_attempt_ns - now) / NS_PER_MS + 1;

			if (ms < timeout)
				timeout = ms < 0 ? 0 : (int)ms;
		}
		if (s->mosq && mosquitto_socket(s->mosq) >= 0) {
			p[1].fd = mosquitto_socket(s->mosq);
			p[1].events = POLLIN;
			if (mosquitto_want_write(s->mosq))
				p[1].events |= POLLOUT;
			n = 2;
		}
		if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR)
			log_debug("mqtt: poll: %s", strerror(errno));
		if (p[0].revents & POLLIN) {
			uint64_t v;

			if (read(s->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				log_debug("mqtt: eventfd: %s", strerror(errno));
		}
		if (s->mosq)
			link_turn(s);
	}
	link_goodbye(s, final);
	return NULL;
}

/* ---- the sink ------------------------------------------------------- */

static void mqtt_free(struct sink_mqtt *s)
{
	for (size_t i = 0; i < s->n_modules; i++)
		free(s->modules[i].topic);
	for (size_t i = 0; i < s->n_circuits; i++)
		free(s->circuits[i].topic);
	for (size_t i = 0; i < s->n_configs; i++)
		free(s->configs[i]);
	free(s->configs);
	free(s->modules);
	free(s->circuits);
	free(s->daemon_topic);
	free(s->filter);
	forget_removals(s);
	pm_buf_free(&s->scratch);
	if (s->efd >= 0)
		close(s->efd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static int mqtt_open(void **state, const struct pm_config *cfg)
{
	struct sink_mqtt *s;
	int r;

	(void)pthread_once(&lib_once, lib_init);
	s = calloc(1, sizeof(*s));
	if (!s) {
		log_err("mqtt: out of memory");
		return -ENOMEM;
	}
	s->cfg = cfg;
	s->m = cfg->mqtt;
	s->efd = -1;
	s->backoff_ms = BACKOFF_FIRST_MS;
	pm_buf_init(&s->scratch, 64 * 1024);
	pthread_mutex_init(&s->lock, NULL);
	(void)snprintf(s->reason, sizeof(s->reason), "connecting");
	r = build(s);
	if (r == 0) {
		s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (s->efd < 0)
			r = -errno;
	}
	if (r == 0) {
		r = -pthread_create(&s->thread, NULL, mqtt_main, s);
		s->started = r == 0;
	}
	if (r < 0) {
		log_err("mqtt: cannot start: %s", pm_strerror(r));
		mqtt_free(s);
		return r;
	}
	(void)pthread_setname_np(s->thread, "mqtt");
	*state = s;
	return 0;
}

static void mqtt_emit(void *state, const struct pm_config *cfg, size_t device,
		      const struct pm_sample *sample,
		      const struct pm_device_state *st)
{
	struct sink_mqtt *s = state;
	char text[PM_CHANNELS][STATE_MAX];
	size_t len[PM_CHANNELS] = { 0 };
	struct module *mod;
	struct pm_buf b;
	bool wake = false;

	if (device >= s->n_modules)
		return;
	mod = &s->modules[device];
	/* Formatted before the lock: pollers do not wait on each other. */
	for (size_t i = 0; sample && i < mod->n && i < PM_CHANNELS; i++) {
		const struct circuit *ci = &s->circuits[mod->first + i];

		pm_buf_init(&b, STATE_MAX - 1);
		if (pm_mqtt_state(&b, &cfg->devices[device], ci->in,
				  sample) == 0 && b.len < STATE_MAX) {
			memcpy(text[i], b.data, b.len);
			len[i] = b.len;
		}
		pm_buf_free(&b);
	}
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < mod->n && i < PM_CHANNELS; i++) {
		struct circuit *ci = &s->circuits[mod->first + i];

		if (!len[i])
			continue;
		if (ci->dirty)
			s->superseded++;	/* state, not history */
		memcpy(ci->state, text[i], len[i]);
		ci->len = len[i];
		ci->have = ci->dirty = true;
		wake = true;
	}
	if (st && mod->up != (int)st->up) {
		mod->up = st->up;
		mod->up_dirty = wake = true;
	}
	if (st && strcmp(mod->firmware, st->firmware) != 0) {
		memcpy(mod->firmware, st->firmware, sizeof(mod->firmware));
		for (size_t i = 0; i < mod->n; i++)
			s->circuits[mod->first + i].config_dirty =
				s->m->discovery;
		wake = wake || s->m->discovery;
	}
	/* Only a connected thread has anything to do with it. */
	wake = wake && s->connected && !s->woken;
	if (wake)
		s->woken = true;
	pthread_mutex_unlock(&s->lock);
	if (wake) {
		uint64_t one = 1;

		if (write(s->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_debug("mqtt: eventfd: %s", strerror(errno));
	}
}

static uint64_t mqtt_progress(void *state)
{
	struct sink_mqtt *s = state;

	return atomic_load(&s->progress);
}

static void mqtt_status(void *state, struct pm_buf *out)
{
	struct sink_mqtt *s = state;

	pthread_mutex_lock(&s->lock);
	if (s->connected)
		(void)pm_buf_printf(out, "mqtt connected, %llu messages",
				    (unsigned long long)s->published);
	else if (s->down_since_ms)
		(void)pm_buf_printf(out, "mqtt unreachable for %lld s: %s",
				    (long long)((pm_now_ms() - s->down_since_ms) /
						1000), s->reason);
	else
		(void)pm_buf_adds(out, "mqtt connecting");
	pthread_mutex_unlock(&s->lock);
}

static void mqtt_close(void *state, bool final)
{
	struct sink_mqtt *s = state;
	uint64_t one = 1;

	pthread_mutex_lock(&s->lock);
	s->stop = true;
	s->final = final;
	pthread_mutex_unlock(&s->lock);
	if (write(s->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("mqtt: eventfd: %s", strerror(errno));
	if (s->started)
		pthread_join(s->thread, NULL);
	if (final && s->superseded)
		log_debug("mqtt: %llu states replaced by newer ones before "
			  "they were sent", (unsigned long long)s->superseded);
	mqtt_free(s);
}

const struct pm_sink_ops pm_sink_mqtt = {
	.name = "mqtt",
	.wanted = mqtt_wanted,
	.open = mqtt_open,
	.emit = mqtt_emit,
	.progress = mqtt_progress,
	.status = mqtt_status,
	.close = mqtt_close,
};
