/* control.c — the control socket (AF_UNIX stream, one command per line,
 * one answer line each) and the main thread's wait for SIGTERM/SIGINT. */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/log.h"
#include "sim.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#include "util/timeutil.h"

#define CONTROL_MAX_CLIENTS	16
#define CONTROL_LINE_MAX	512	/* an answer line (stats aside) */
#define CONTROL_REQUEST_MAX	(64 * 1024)	/* a command line: profiles are long */
#define CONTROL_ERROR_MAX	256
#define CONTROL_ANSWER_MAX	(1024 * 1024)
#define CONTROL_MAX_ARGS	8

struct client {
	int fd;
	char *line;		/* CONTROL_REQUEST_MAX bytes */
	size_t len;
};

static int control_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* a socket left behind by a killed simulator is replaced */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		(void)unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static int answer(struct pm_buf *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int answer(struct pm_buf *out, const char *fmt, ...)
{
	char text[CONTROL_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	pm_buf_reset(out);
	return pm_buf_adds(out, text);
}

static struct sim_bus *bus_arg(struct sim *sim, const char *s)
{
	char *end;
	long i = strtol(s, &end, 10);

	if (*s && !*end)
		return i >= 0 && (size_t)i < sim->nbuses ? &sim->buses[i] : NULL;
	for (size_t j = 0; j < sim->nbuses; j++)
		if (strcmp(sim->buses[j].path, s) == 0)
			return &sim->buses[j];
	return NULL;
}

/* A number within [min, max]; false otherwise. */
static bool long_arg(const char *s, long min, long max, long *v)
{
	char *end;

	errno = 0;
	*v = strtol(s, &end, 0);
	return *s && !*end && errno == 0 && *v >= min && *v <= max;
}

/* 0..15 or a letter a..p (datasheet channel names A..P). */
static int channel_arg(const char *s)
{
	long v;

	if (s[0] && !s[1] && ((s[0] >= 'a' && s[0] <= 'p') || (s[0] >= 'A' && s[0] <= 'P')))
		return (s[0] | 0x20) - 'a';
	if (long_arg(s, 0, HDHK_NCHANNELS - 1, &v))
		return (int)v;
	return -1;
}

/* Calls fn for module ADDR on bus b ("*" = every module) under the bus lock;
 * returns how many modules matched. */
static int for_modules(struct sim_bus *b, const char *addr,
		       int (*fn)(struct sim_module *m, void *ctx), void *ctx, int *err)
{
	long a = -1;
	int n = 0;

	*err = 0;
	if (strcmp(addr, "*") != 0 && !long_arg(addr, 1, 255, &a))
		return 0;
	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < b->nmodules; i++) {
		if (a >= 0 && sim_module_address(&b->modules[i]) != a)
			continue;
		n++;
		if (*err == 0)
			*err = fn(&b->modules[i], ctx);
	}
	pthread_mutex_unlock(&b->lock);
	return n;
}

static int fault_set(struct sim_module *m, void *ctx)
{
	m->fault = *(struct sim_fault *)ctx;
	return 0;
}

static int fault_clear(struct sim_module *m, void *ctx)
{
	m->fault.kind = SIM_FAULT_NONE;
	return 0;
}

struct setreg {
	int reg, value;
};

static int reg_set(struct sim_module *m, void *ctx)
{
	struct setreg *s = ctx;

	return sim_module_setreg(m, s->reg, s->value);
}

static int cmd_fault(struct sim *sim, char **argv, int argc, struct pm_buf *out)
{
	struct sim_fault f = { .remaining = -1 };
	struct sim_bus *b;
	int kind, n, err;
	double secs;
	long count, seed = -1;
	char *end;

	if (argc < 4 || argc > 6)
		return answer(out, "error usage: fault BUS ADDR KIND [N]");
	b = bus_arg(sim, argv[1]);
	kind = sim_fault_parse(argv[3]);
	if (!b)
		return answer(out, "error no bus %s", argv[1]);
	if (kind < 0)
		return answer(out, "error unknown fault %s (noanswer, badcrc, truncate, garbage, "
			      "wrongaddr, exception, stall, noisy)", argv[3]);
	f.kind = (enum sim_fault_kind)kind;
	if (argc == 6 && f.kind != SIM_FAULT_NOISY)
		return answer(out, "error usage: fault BUS ADDR KIND [N]");
	if (f.kind == SIM_FAULT_NOISY) {
		if (argc < 5)
			return answer(out, "error usage: fault BUS ADDR noisy P [SEED] (0 < P <= 1)");
		f.probability = strtod(argv[4], &end);
		if (*end || !(f.probability > 0 && f.probability <= 1))
			return answer(out, "error bad probability %s (0 < P <= 1)", argv[4]);
		if (argc == 6 && !long_arg(argv[5], 0, LONG_MAX, &seed))
			return answer(out, "error bad seed %s", argv[5]);
	} else if (f.kind == SIM_FAULT_STALL) {
		if (argc != 5)
			return answer(out, "error stall needs SECONDS");
		secs = strtod(argv[4], &end);
		if (*end || !(secs > 0) || secs > 86400)
			return answer(out, "error bad seconds %s", argv[4]);
		f.until_ns = pm_mono_ns() + (int64_t)(secs * 1e9);
	} else if (argc == 5) {
		if (!long_arg(argv[4], 1, 1000000000, &count))
			return answer(out, "error bad count %s", argv[4]);
		f.remaining = count;
	}
	n = for_modules(b, argv[2], fault_set, &f, &err);
	if (n == 0)
		return answer(out, "error no module %s on bus %d", argv[2], b->index);
	if (seed >= 0) {
		/* the bus's noise repeats from here for a given seed */
		pthread_mutex_lock(&b->lock);
		b->rng = (uint64_t)seed;
		pthread_mutex_unlock(&b->lock);
	}
	return answer(out, "ok %s on %d module(s)", argv[3], n);
}

static int cmd_clear(struct sim *sim, char **argv, int argc, struct pm_buf *out)
{
	struct sim_bus *b = NULL;
	int n = 0, err;

	if (argc > 3)
		return answer(out, "error usage: clear [BUS [ADDR]]");
	if (argc >= 2 && !(b = bus_arg(sim, argv[1])))
		return answer(out, "error no bus %s", argv[1]);
	for (size_t i = 0; i < sim->nbuses; i++) {
		if (b && b != &sim->buses[i])
			continue;
		n += for_modules(&sim->buses[i], argc == 3 ? argv[2] : "*", fault_clear, NULL,
				 &err);
	}
	if (argc == 3 && n == 0)
		return answer(out, "error no module %s on bus %d", argv[2], b->index);
	return answer(out, "ok cleared %d module(s)", n);
}

static int cmd_disconnect(struct sim *sim, char **argv, int argc, struct pm_buf *out)
{
	struct sim_bus *b;
	double secs;
	char *end;
	int r;

	if (argc != 3)
		return answer(out, "error usage: disconnect BUS SECONDS");
	if (!(b = bus_arg(sim, argv[1])))
		return answer(out, "error no bus %s", argv[1]);
	secs = strtod(argv[2], &end);
	if (*end || !(secs > 0) || secs > 86400)
		return answer(out, "error bad seconds %s", argv[2]);
	r = bus_disconnect(b, secs);
	if (r < 0)
		return answer(out, "error %s", strerror(-r));
	return answer(out, "ok %s disconnected for %g s", b->path, secs);
}

/* set/setfreq BUS ADDR CHANNEL RAW, setreg BUS ADDR REG VALUE */
static int cmd_set(struct sim *sim, char **argv, int argc, struct pm_buf *out)
{
	struct setreg s;
	struct sim_bus *b;
	long v;
	int n, err, ch;

	if (argc != 5)
		return answer(out, "error usage: %s BUS ADDR %s VALUE", argv[0],
			      strcmp(argv[0], "setreg") == 0 ? "REGISTER" : "CHANNEL");
	if (!(b = bus_arg(sim, argv[1])))
		return answer(out, "error no bus %s", argv[1]);
	if (!long_arg(argv[4], 0, 0xFFFF, &v))
		return answer(out, "error bad value %s (0..65535)", argv[4]);
	s.value = (int)v;
	if (strcmp(argv[0], "setreg") == 0) {
		if (!long_arg(argv[3], 0, HDHK_NREGS - 1, &v))
			return answer(out, "error bad register %s (0..%d)", argv[3],
				      HDHK_NREGS - 1);
		s.reg = (int)v;
	} else {
		ch = channel_arg(argv[3]);
		if (ch < 0)
			return answer(out, "error bad channel %s (0..15 or a..p)", argv[3]);
		s.reg = ch + (strcmp(argv[0], "set") == 0 ? HDHK_REG_CURRENT : HDHK_REG_FREQUENCY);
	}
	n = for_modules(b, argv[2], reg_set, &s, &err);
	if (n == 0)
		return answer(out, "error no module %s on bus %d", argv[2], b->index);
	if (err)
		return answer(out, "error bad value for register %d", s.reg);
	return answer(out, "ok register %d = %d on %d module(s)", s.reg, s.value, n);
}

struct setprofile {
	int reg;
	const struct sim_gen *gen;
};

static int profile_set(struct sim_module *m, void *ctx)
{
	struct setprofile *s = ctx;
	struct sim_gen *g = s->reg < HDHK_REG_FREQUENCY ? &m->current[s->reg - HDHK_REG_CURRENT] :
			    &m->frequency[s->reg - HDHK_REG_FREQUENCY];
	struct sim_gen copy;
	int r = sim_gen_copy(&copy, s->gen);

	if (r < 0)
		return r;
	sim_gen_clear(g);
	*g = copy;
	return 0;
}

/* profile/profilefreq BUS ADDR CHANNEL JSON */
static int cmd_profile(struct sim *sim, char **argv, int argc, const char *json,
		       struct pm_buf *out)
{
	char err[CONTROL_ERROR_MAX];
	struct setprofile s;
	struct sim_gen g;
	struct sim_bus *b;
	double start;
	int n, r, ch;

	if (argc != 4 || !*json)
		return answer(out, "error usage: %s BUS ADDR CHANNEL {\"start\": UNIX_SECONDS, "
			      "\"points\": [[SECONDS, RAW], ...], \"repeat\": false}", argv[0]);
	if (!(b = bus_arg(sim, argv[1])))
		return answer(out, "error no bus %s", argv[1]);
	ch = channel_arg(argv[3]);
	if (ch < 0)
		return answer(out, "error bad channel %s (0..15 or a..p)", argv[3]);
	s.reg = ch + (strcmp(argv[0], "profile") == 0 ? HDHK_REG_CURRENT : HDHK_REG_FREQUENCY);
	sim_gen_const(&g, 0);
	r = sim_profile_from_json(json, &g, err, sizeof(err));
	if (r == -EINVAL)
		return answer(out, "error %s", err);
	if (r < 0)
		return answer(out, "error %s", strerror(-r));
	start = g.profile->start;
	s.gen = &g;
	n = for_modules(b, argv[2], profile_set, &s, &r);
	sim_gen_clear(&g);
	if (n == 0)
		return answer(out, "error no module %s on bus %d", argv[2], b->index);
	if (r < 0)
		return answer(out, "error %s", strerror(-r));
	return answer(out, "ok register %d profile on %d module(s), start %.6f", s.reg, n, start);
}

static void add_count(json_object *o, const char *key, uint64_t n)
{
	json_object_object_add(o, key, json_object_new_int64((int64_t)n));
}

static int cmd_stats(struct sim *sim, struct pm_buf *out)
{
	json_object *root = json_object_new_object(), *buses = json_object_new_array();
	int r;

	for (size_t i = 0; root && buses && i < sim->nbuses; i++) {
		struct sim_bus *b = &sim->buses[i];
		json_object *bo = json_object_new_object(), *mods = json_object_new_array();

		pthread_mutex_lock(&b->lock);
		json_object_object_add(bo, "bus", json_object_new_int((int)i));
		json_object_object_add(bo, "path", json_object_new_string(b->path));
		add_count(bo, "requests", b->requests);
		add_count(bo, "discarded_bytes", b->discarded);
		add_count(bo, "outages", b->outages);
		json_object_object_add(bo, "disconnected",
				       json_object_new_boolean(b->disconnected));
		json_object_object_add(bo, "kind", json_object_new_string(
				       b->kind == SIM_BUS_PTY ? "pty" :
				       b->kind == SIM_BUS_TCP ? "tcp" : "rtu+tcp"));
		if (b->kind != SIM_BUS_PTY) {
			add_count(bo, "connections", b->connections);
			add_count(bo, "refused", b->refused);
			json_object_object_add(bo, "connected",
					       json_object_new_boolean(b->connected));
		}
		for (size_t j = 0; j < b->nmodules; j++) {
			struct sim_module *m = &b->modules[j];
			json_object *mo = json_object_new_object(), *noise;

			json_object_object_add(mo, "address",
					       json_object_new_int(sim_module_address(m)));
			add_count(mo, "requests", m->requests);
			add_count(mo, "answers", m->answers);
			add_count(mo, "faults", m->faults);
			add_count(mo, "mismatches", m->mismatches);
			json_object_object_add(mo, "fault", json_object_new_string(
					       sim_fault_name(m->fault.kind)));
			noise = json_object_new_object();
			for (int k = 0; k < SIM_NOISE_KINDS; k++)
				add_count(noise, sim_fault_name(sim_noise_kinds[k]), m->noise[k]);
			json_object_object_add(mo, "noise", noise);
			json_object_array_add(mods, mo);
		}
		pthread_mutex_unlock(&b->lock);
		json_object_object_add(bo, "modules", mods);
		json_object_array_add(buses, bo);
	}
	json_object_object_add(root, "buses", buses);
	pm_buf_reset(out);
	r = pm_buf_adds(out, "ok ");
	if (r == 0)
		r = pm_buf_adds(out, json_object_to_json_string_ext(root, JSON_FLAGS));
	json_object_put(root);
	if (r < 0)
		return answer(out, "error %s", strerror(-r));
	return 0;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* The next blank-separated word of *s, terminated in place; NULL at the end. */
static char *next_word(char **s)
{
	char *w;

	while (is_blank(**s))
		(*s)++;
	if (!**s)
		return NULL;
	w = *s;
	while (**s && !is_blank(**s))
		(*s)++;
	if (**s)
		*(*s)++ = '\0';
	return w;
}

/* Runs one command line; the answer (without newline) is left in out. */
static int control_command(struct sim *sim, char *line, struct pm_buf *out)
{
	char *argv[CONTROL_MAX_ARGS + 1], *rest = line, *tok;
	int argc = 0;

	while ((tok = next_word(&rest))) {
		if (argc == CONTROL_MAX_ARGS)
			return answer(out, "error too many arguments");
		argv[argc++] = tok;
		/* profile's last argument is JSON, blanks and all */
		if (argc == 4 && (strcmp(argv[0], "profile") == 0 ||
				  strcmp(argv[0], "profilefreq") == 0)) {
			while (is_blank(*rest))
				rest++;
			return cmd_profile(sim, argv, argc, rest, out);
		}
	}
	if (argc == 0)
		return answer(out, "error empty command");
	if (strcmp(argv[0], "profile") == 0 || strcmp(argv[0], "profilefreq") == 0)
		return cmd_profile(sim, argv, argc, "", out);
	if (strcmp(argv[0], "fault") == 0)
		return cmd_fault(sim, argv, argc, out);
	if (strcmp(argv[0], "clear") == 0)
		return cmd_clear(sim, argv, argc, out);
	if (strcmp(argv[0], "disconnect") == 0)
		return cmd_disconnect(sim, argv, argc, out);
	if (strcmp(argv[0], "set") == 0 || strcmp(argv[0], "setfreq") == 0 ||
	    strcmp(argv[0], "setreg") == 0)
		return cmd_set(sim, argv, argc, out);
	if (strcmp(argv[0], "stats") == 0)
		return cmd_stats(sim, out);
	if (strcmp(argv[0], "ping") == 0)
		return answer(out, "ok pong");
	return answer(out, "error unknown command %s", argv[0]);
}

static void client_close(struct client *c)
{
	close(c->fd);
	c->fd = -1;
	c->len = 0;
}

/* Reads what the client sent and answers each complete line. */
static void client_serve(struct sim *sim, struct client *c, struct pm_buf *out)
{
	ssize_t n = read(c->fd, c->line + c->len, CONTROL_REQUEST_MAX - c->len);
	char *nl;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(c);
		return;
	}
	c->len += (size_t)n;
	while ((nl = memchr(c->line, '\n', c->len))) {
		size_t used = (size_t)(nl - c->line) + 1;

		*nl = '\0';
		(void)control_command(sim, c->line, out);
		if (pm_buf_addc(out, '\n') < 0 ||
		    send(c->fd, out->data, out->len, MSG_NOSIGNAL | MSG_DONTWAIT) !=
		    (ssize_t)out->len) {
			client_close(c);
			return;
		}
		memmove(c->line, c->line + used, c->len - used);
		c->len -= used;
	}
	if (c->len == CONTROL_REQUEST_MAX) {
		static const char too_long[] = "error line too long\n";

		(void)!send(c->fd, too_long, sizeof(too_long) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		client_close(c);
	}
}

/* Serves the control socket (if any) until SIGTERM or SIGINT arrives on
 * signal_fd. Returns 0, or a negative errno if the socket cannot be made. */
int control_run(struct sim *sim, int signal_fd)
{
	struct client clients[CONTROL_MAX_CLIENTS];
	struct pollfd pfd[2 + CONTROL_MAX_CLIENTS];
	struct pm_buf out;
	int lfd = -1, r = 0;

	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		clients[i].fd = -1;
		clients[i].line = NULL;
	}
	pm_buf_init(&out, CONTROL_ANSWER_MAX);
	if (sim->control_path) {
		lfd = control_listen(sim->control_path);
		if (lfd < 0) {
			log_err("%s: cannot listen: %s", sim->control_path, strerror(-lfd));
			return lfd;
		}
	}
	for (int i = 0; lfd >= 0 && i < CONTROL_MAX_CLIENTS; i++) {
		clients[i].line = malloc(CONTROL_REQUEST_MAX);
		if (!clients[i].line) {
			log_err("out of memory");
			r = -ENOMEM;
			goto out;
		}
	}
	/* every bus and the socket are in place */
	printf("ready\n");
	fflush(stdout);

	for (;;) {
		int n = 2;

		pfd[0] = (struct pollfd){ .fd = signal_fd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
			pfd[n++] = (struct pollfd){ .fd = clients[i].fd, .events = POLLIN };
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			log_err("poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(signal_fd, &si, sizeof(si)) == sizeof(si))
				log_info("signal %u, stopping", si.ssi_signo);
			break;
		}
		for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
			if (pfd[2 + i].revents & (POLLIN | POLLHUP | POLLERR))
				client_serve(sim, &clients[i], &out);
		if (pfd[1].revents & POLLIN) {
			int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			int i;

			for (i = 0; cfd >= 0 && i < CONTROL_MAX_CLIENTS; i++)
				if (clients[i].fd < 0) {
					clients[i].fd = cfd;
					clients[i].len = 0;
					break;
				}
			if (cfd >= 0 && i == CONTROL_MAX_CLIENTS) {
				log_warning("control: too many clients, refusing one");
				close(cfd);
			}
		}
	}
out:
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		if (clients[i].fd >= 0)
			client_close(&clients[i]);
		free(clients[i].line);
	}
	if (lfd >= 0) {
		close(lfd);
		(void)unlink(sim->control_path);
	}
	pm_buf_free(&out);
	return r;
}
