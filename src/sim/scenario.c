/* scenario.c — what the simulator serves: SIM.json (buses, modules, channel
 * generators) or the quick command-line form, parsed strictly. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <powermeter/powermeter.h>

#include "util/fileio.h"
#include "util/log.h"
#include "sim.h"

#define SIM_CONFIG_MAX		(1024 * 1024)	/* bytes of SIM.json */
#define SIM_MAX_BUSES		64
#define SIM_MAX_MODULES		247		/* Modbus unit ids on one bus */
#define JPATH_MAX		128

struct parse {
	const char *file;
	int errors;
	char *err;		/* if set: the first error goes here, not to the log */
	size_t errlen;
};

static void perr(struct parse *p, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void jpath(char dst[JPATH_MAX], const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A JSON path for messages; a very deep one is cut short, harmlessly. */
static void jpath(char dst[JPATH_MAX], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, JPATH_MAX, fmt, ap);
	va_end(ap);
}

static void perr(struct parse *p, const char *path, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->err) {
		if (p->errors == 0)
			snprintf(p->err, p->errlen, "%s: %s", path, msg);
	} else {
		log_err("%s: %s: %s", p->file, path, msg);
	}
	p->errors++;
}

static const char *jtype(json_object *o)
{
	return json_type_to_name(json_object_get_type(o));
}

/* An integral JSON number within [min, max]. */
static int get_int(struct parse *p, json_object *o, const char *path, long min, long max,
		   int *out)
{
	double d;

	if (!json_object_is_type(o, json_type_int) && !json_object_is_type(o, json_type_double)) {
		perr(p, path, "expected an integer, got %s", jtype(o));
		return -EINVAL;
	}
	d = json_object_get_double(o);
	if (d != floor(d) || d < (double)min || d > (double)max) {
		perr(p, path, "expected an integer in %ld..%ld, got %s", min, max,
		     json_object_to_json_string(o));
		return -EINVAL;
	}
	*out = (int)d;
	return 0;
}

static int get_double(struct parse *p, json_object *o, const char *path, double *out)
{
	if (!json_object_is_type(o, json_type_int) && !json_object_is_type(o, json_type_double)) {
		perr(p, path, "expected a number, got %s", jtype(o));
		return -EINVAL;
	}
	*out = json_object_get_double(o);
	return 0;
}

static int get_string(struct parse *p, json_object *o, const char *path, char **out)
{
	char *s;

	if (!json_object_is_type(o, json_type_string)) {
		perr(p, path, "expected a string, got %s", jtype(o));
		return -EINVAL;
	}
	s = strdup(json_object_get_string(o));
	if (!s)
		return -ENOMEM;
	free(*out);
	*out = s;
	return 0;
}

static bool expect_type(struct parse *p, json_object *o, const char *path, json_type t)
{
	if (json_object_is_type(o, t))
		return true;
	perr(p, path, "expected %s, got %s", json_type_to_name(t), jtype(o));
	return false;
}

/* {"mean", "amplitude", "period"} */
static void parse_sine(struct parse *p, json_object *o, const char *path, struct sim_gen *g)
{
	char sub[JPATH_MAX];
	bool have_period = false;

	memset(g, 0, sizeof(*g));
	g->kind = SIM_GEN_SINE;
	if (!expect_type(p, o, path, json_type_object))
		return;
	json_object_object_foreach(o, key, val) {
		jpath(sub, "%s.%s", path, key);
		if (strcmp(key, "mean") == 0) {
			(void)get_double(p, val, sub, &g->mean);
		} else if (strcmp(key, "amplitude") == 0) {
			(void)get_double(p, val, sub, &g->amplitude);
		} else if (strcmp(key, "period") == 0) {
			if (get_double(p, val, sub, &g->period) == 0) {
				have_period = true;
				if (!(g->period > 0))
					perr(p, sub, "must be > 0 seconds");
			}
		} else {
			perr(p, sub, "unknown key");
		}
	}
	if (!have_period)
		perr(p, path, "missing \"period\"");
}

/* {"start", "step", "min", "max", "seed"} */
static void parse_walk(struct parse *p, json_object *o, const char *path, struct sim_gen *g)
{
	char sub[JPATH_MAX];
	int seed = 1;

	memset(g, 0, sizeof(*g));
	g->kind = SIM_GEN_WALK;
	g->max = 0xFFFF;
	g->step = 1;
	if (!expect_type(p, o, path, json_type_object))
		return;
	json_object_object_foreach(o, key, val) {
		jpath(sub, "%s.%s", path, key);
		if (strcmp(key, "start") == 0)
			(void)get_int(p, val, sub, 0, 0xFFFF, &g->value);
		else if (strcmp(key, "step") == 0)
			(void)get_int(p, val, sub, 0, 0xFFFF, &g->step);
		else if (strcmp(key, "min") == 0)
			(void)get_int(p, val, sub, 0, 0xFFFF, &g->min);
		else if (strcmp(key, "max") == 0)
			(void)get_int(p, val, sub, 0, 0xFFFF, &g->max);
		else if (strcmp(key, "seed") == 0)
			(void)get_int(p, val, sub, 0, INT_MAX, &seed);
		else
			perr(p, sub, "unknown key");
	}
	if (g->min > g->max || g->value < g->min || g->value > g->max)
		perr(p, path, "needs min <= start <= max");
	g->rng = (uint64_t)seed;
}

static double unix_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* [seconds, raw] */
static int parse_point(struct parse *p, json_object *o, const char *path, struct sim_point *pt)
{
	char sub[JPATH_MAX];
	int raw;

	if (!expect_type(p, o, path, json_type_array))
		return -EINVAL;
	if (json_object_array_length(o) != 2) {
		perr(p, path, "expected [seconds, raw]");
		return -EINVAL;
	}
	jpath(sub, "%s[0]", path);
	if (get_double(p, json_object_array_get_idx(o, 0), sub, &pt->t) < 0)
		return -EINVAL;
	if (!(pt->t >= 0 && pt->t <= SIM_PROFILE_MAX_SECONDS)) {
		perr(p, sub, "expected seconds in 0..%.0f", SIM_PROFILE_MAX_SECONDS);
		return -EINVAL;
	}
	jpath(sub, "%s[1]", path);
	if (get_int(p, json_object_array_get_idx(o, 1), sub, 0, 0xFFFF, &raw) < 0)
		return -EINVAL;
	pt->raw = raw;
	return 0;
}

/* {"start", "points", "repeat"}; g becomes a profile generator only when
 * all of it is right. Returns -ENOMEM or 0 (errors counted in p). */
static int parse_profile(struct parse *p, json_object *o, const char *path, struct sim_gen *g)
{
	char sub[JPATH_MAX];
	json_object *points = NULL;
	struct sim_profile *prof;
	double start = unix_now();
	bool repeat = false;
	int errors = p->errors;
	size_t n;

	if (!expect_type(p, o, path, json_type_object))
		return 0;
	json_object_object_foreach(o, key, val) {
		jpath(sub, "%s.%s", path, key);
		if (strcmp(key, "start") == 0) {
			if (get_double(p, val, sub, &start) == 0 && !(start >= 0 && isfinite(start)))
				perr(p, sub, "expected a Unix time in seconds");
		} else if (strcmp(key, "points") == 0) {
			points = val;
		} else if (strcmp(key, "repeat") == 0) {
			if (expect_type(p, val, sub, json_type_boolean))
				repeat = json_object_get_boolean(val);
		} else {
			perr(p, sub, "unknown key");
		}
	}
	if (!points) {
		perr(p, path, "missing \"points\"");
		return 0;
	}
	jpath(sub, "%s.points", path);
	if (!expect_type(p, points, sub, json_type_array))
		return 0;
	n = json_object_array_length(points);
	if (n < 1 || n > SIM_PROFILE_MAX_POINTS) {
		perr(p, sub, "expected 1..%d points", SIM_PROFILE_MAX_POINTS);
		return 0;
	}
	prof = malloc(sizeof(*prof) + n * sizeof(prof->points[0]));
	if (!prof)
		return -ENOMEM;
	prof->start = start;
	prof->repeat = repeat;
	prof->n = n;
	for (size_t i = 0; i < n; i++) {
		jpath(sub, "%s.points[%zu]", path, i);
		if (parse_point(p, json_object_array_get_idx(points, i), sub, &prof->points[i]) < 0) {
			/* reported; the next point is compared with its predecessor */
			prof->points[i] = i ? prof->points[i - 1] : (struct sim_point){ 0, 0 };
			continue;
		}
		if (i > 0 && prof->points[i].t < prof->points[i - 1].t)
			perr(p, sub, "seconds must not decrease (%g after %g)",
			     prof->points[i].t, prof->points[i - 1].t);
	}
	if (p->errors == errors && repeat && prof->points[n - 1].t <= prof->points[0].t) {
		jpath(sub, "%s.repeat", path);
		perr(p, sub, "needs the last point later than the first (the period)");
	}
	if (p->errors != errors) {
		free(prof);
		return 0;
	}
	sim_gen_clear(g);
	g->kind = SIM_GEN_PROFILE;
	g->profile = prof;
	return 0;
}

/* A number (constant) or {"const": N} | {"sine": {...}} | {"walk": {...}} |
 * {"profile": {...}}. What g held is released. Returns 0 or -ENOMEM. */
static int parse_gen(struct parse *p, json_object *o, const char *path, struct sim_gen *g)
{
	char sub[JPATH_MAX];
	int v, r = 0;

	sim_gen_clear(g);
	if (!json_object_is_type(o, json_type_object)) {
		if (get_int(p, o, path, 0, 0xFFFF, &v) == 0)
			sim_gen_const(g, v);
		return 0;
	}
	if (json_object_object_length(o) != 1) {
		perr(p, path, "expected one of \"const\", \"sine\", \"walk\", \"profile\"");
		return 0;
	}
	json_object_object_foreach(o, key, val) {
		jpath(sub, "%s.%s", path, key);
		if (strcmp(key, "const") == 0) {
			if (get_int(p, val, sub, 0, 0xFFFF, &v) == 0)
				sim_gen_const(g, v);
		} else if (strcmp(key, "sine") == 0) {
			parse_sine(p, val, sub, g);
		} else if (strcmp(key, "walk") == 0) {
			parse_walk(p, val, sub, g);
		} else if (strcmp(key, "profile") == 0) {
			r = parse_profile(p, val, sub, g);
		} else {
			perr(p, sub, "unknown generator (const, sine, walk, profile)");
		}
	}
	return r;
}

static int parse_gen_array(struct parse *p, json_object *o, const char *path,
			   struct sim_gen *gens)
{
	char sub[JPATH_MAX];
	size_t n;
	int r;

	if (!expect_type(p, o, path, json_type_array))
		return 0;
	n = json_object_array_length(o);
	if (n > HDHK_NCHANNELS) {
		perr(p, path, "at most %d channels", HDHK_NCHANNELS);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		jpath(sub, "%s[%zu]", path, i);
		r = parse_gen(p, json_object_array_get_idx(o, i), sub, &gens[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* [a, b]: two integers 0..255 packed as a<<8|b, or two registers. */
static int parse_pair(struct parse *p, json_object *o, const char *path, int max, int *a, int *b)
{
	char sub[JPATH_MAX];

	if (!expect_type(p, o, path, json_type_array))
		return -EINVAL;
	if (json_object_array_length(o) != 2) {
		perr(p, path, "expected 2 numbers");
		return -EINVAL;
	}
	jpath(sub, "%s[0]", path);
	if (get_int(p, json_object_array_get_idx(o, 0), sub, 0, max, a) < 0)
		return -EINVAL;
	jpath(sub, "%s[1]", path);
	return get_int(p, json_object_array_get_idx(o, 1), sub, 0, max, b);
}

/* Returns 0 or -ENOMEM (other errors are counted in p). */
static int parse_module(struct parse *p, json_object *o, const char *path,
			struct sim_module *m, const struct sim_line *line)
{
	char sub[JPATH_MAX];
	json_object *val;
	int address = 1, v, a, b, r = 0;

	if (!expect_type(p, o, path, json_type_object))
		return 0;
	/* the address first: the default channel values depend on it */
	if (json_object_object_get_ex(o, "address", &val)) {
		jpath(sub, "%s.address", path);
		(void)get_int(p, val, sub, 1, 255, &address);
	}
	sim_module_init(m, address, line);
	json_object_object_foreach(o, key, jv) {
		jpath(sub, "%s.%s", path, key);
		if (strcmp(key, "address") == 0) {
			continue;
		} else if (strcmp(key, "version") == 0) {
			if (get_int(p, jv, sub, 0, 0xFFFF, &v) == 0)
				m->version = (uint16_t)v;
		} else if (strcmp(key, "ranges") == 0) {
			if (parse_pair(p, jv, sub, 0xFFFF, &a, &b) == 0) {
				m->range_ah = (uint16_t)a;
				m->range_ip = (uint16_t)b;
			}
		} else if (strcmp(key, "date") == 0) {
			if (parse_pair(p, jv, sub, 0xFF, &a, &b) == 0)
				m->date = (uint16_t)(a << 8 | b);
		} else if (strcmp(key, "division") == 0) {
			if (get_int(p, jv, sub, 1, 5, &v) == 0)
				m->division = (uint16_t)v;
		} else if (strcmp(key, "selection") == 0) {
			if (get_int(p, jv, sub, 0, 0xFF, &v) == 0)
				m->selection = (uint16_t)((m->selection & 0xFF00) | v);
		} else if (strcmp(key, "threshold") == 0) {
			if (get_int(p, jv, sub, 0, 0xFF, &v) == 0)
				m->selection = (uint16_t)((m->selection & 0x00FF) | v << 8);
		} else if (strcmp(key, "channels") == 0) {
			r = parse_gen_array(p, jv, sub, m->current);
		} else if (strcmp(key, "frequency") == 0) {
			struct sim_gen g;

			sim_gen_const(&g, HDHK_DEFAULT_FREQUENCY);
			r = parse_gen(p, jv, sub, &g);
			for (int i = 0; r == 0 && i < HDHK_NCHANNELS; i++) {
				sim_gen_clear(&m->frequency[i]);
				r = sim_gen_copy(&m->frequency[i], &g);
			}
			sim_gen_clear(&g);
		} else if (strcmp(key, "frequencies") == 0) {
			r = parse_gen_array(p, jv, sub, m->frequency);
		} else if (strcmp(key, "ratios") == 0) {
			if (!expect_type(p, jv, sub, json_type_array))
				continue;
			if (json_object_array_length(jv) > HDHK_NCHANNELS) {
				perr(p, sub, "at most %d channels", HDHK_NCHANNELS);
				continue;
			}
			for (size_t i = 0; i < json_object_array_length(jv); i++) {
				char el[JPATH_MAX];

				jpath(el, "%s[%zu]", sub, i);
				json_object *ratio = json_object_array_get_idx(jv, i);

				if (get_int(p, ratio, el, 0, 0xFFFF, &v) == 0)
					m->ratio[i] = (uint16_t)v;
			}
		} else {
			perr(p, sub, "unknown key");
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * A gateway's address: "tcp://HOST:PORT" (Modbus TCP) or
 * "rtu+tcp://HOST:PORT" (RTU over TCP), HOST an IPv4 address or an IPv6
 * one in brackets, PORT 0..65535 (0: any free one). Returns 0 with the
 * parts set, or -EINVAL.
 */
int sim_listen_parse(const char *url, enum sim_bus_kind *kind, char *host, size_t hostlen,
		     int *port)
{
	const char *p, *end;
	char *e;
	size_t n;
	long v;

	if (strncmp(url, "tcp://", 6) == 0) {
		*kind = SIM_BUS_TCP;
		p = url + 6;
	} else if (strncmp(url, "rtu+tcp://", 10) == 0) {
		*kind = SIM_BUS_RTU_TCP;
		p = url + 10;
	} else {
		return -EINVAL;
	}
	if (*p == '[') {
		end = strchr(p, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		p++;
	} else {
		end = strrchr(p, ':');
		if (!end || memchr(p, ':', (size_t)(end - p)))
			return -EINVAL;
	}
	n = (size_t)(end - p);
	if (n == 0 || n >= hostlen)
		return -EINVAL;
	memcpy(host, p, n);
	host[n] = '\0';
	p = end + (*end == ']' ? 2 : 1);
	errno = 0;
	v = strtol(p, &e, 10);
	if (!*p || *e || errno || v < 0 || v > 65535 || strspn(p, "0123456789") != strlen(p))
		return -EINVAL;
	*port = (int)v;
	return 0;
}

static int parse_bus(struct parse *p, json_object *o, const char *path, struct sim_bus *b)
{
	char sub[JPATH_MAX], host[64];
	json_object *mods = NULL;
	bool listen = false;
	int v;

	b->line.baud = 9600;
	b->line.framing = SIM_N81;
	b->wire_time = true;
	if (!expect_type(p, o, path, json_type_object))
		return 0;
	json_object_object_foreach(o, key, val) {
		jpath(sub, "%s.%s", path, key);
		if (strcmp(key, "path") == 0 || strcmp(key, "listen") == 0) {
			if (b->path) {
				perr(p, sub, "a bus has either \"path\" (a pty) or \"listen\" "
				     "(a gateway), not both");
				continue;
			}
			if (get_string(p, val, sub, &b->path) == -ENOMEM)
				return -ENOMEM;
			listen = strcmp(key, "listen") == 0;
			if (listen && b->path &&
			    sim_listen_parse(b->path, &b->kind, host, sizeof(host), &v) < 0)
				perr(p, sub, "expected tcp://HOST:PORT or rtu+tcp://HOST:PORT "
				     "(HOST an IP address, PORT 0..65535, 0: any free port)");
		} else if (strcmp(key, "seed") == 0) {
			if (get_int(p, val, sub, 0, INT_MAX, &v) == 0)
				b->rng = (uint64_t)v;
		} else if (strcmp(key, "baud") == 0) {
			if (get_int(p, val, sub, 1, 115200, &v) == 0) {
				if (sim_baud_code(v) < 0)
					perr(p, sub, "not a baud rate of the datasheet: %d", v);
				else
					b->line.baud = v;
			}
		} else if (strcmp(key, "framing") == 0) {
			if (!expect_type(p, val, sub, json_type_string))
				continue;
			v = sim_framing_parse(json_object_get_string(val));
			if (v < 0)
				perr(p, sub, "expected N81, E81, O81 or N82");
			else
				b->line.framing = (enum sim_framing)v;
		} else if (strcmp(key, "wire_time") == 0) {
			if (expect_type(p, val, sub, json_type_boolean))
				b->wire_time = json_object_get_boolean(val);
		} else if (strcmp(key, "modules") == 0) {
			mods = val;
		} else {
			perr(p, sub, "unknown key");
		}
	}
	if (!b->path)
		perr(p, path, "missing \"path\" (or \"listen\")");
	if (!mods) {
		perr(p, path, "missing \"modules\"");
		return 0;
	}
	jpath(sub, "%s.modules", path);
	if (!expect_type(p, mods, sub, json_type_array))
		return 0;
	b->nmodules = json_object_array_length(mods);
	if (b->nmodules < 1 || b->nmodules > SIM_MAX_MODULES) {
		b->nmodules = 0;
		perr(p, sub, "expected 1..%d modules", SIM_MAX_MODULES);
		return 0;
	}
	b->modules = calloc(b->nmodules, sizeof(*b->modules));
	if (!b->modules)
		return -ENOMEM;
	for (size_t i = 0; i < b->nmodules; i++) {
		jpath(sub, "%s.modules[%zu]", path, i);
		int r = parse_module(p, json_object_array_get_idx(mods, i), sub, &b->modules[i],
				     &b->line);

		if (r < 0)
			return r;
		for (size_t j = 0; j < i; j++)
			if (sim_module_address(&b->modules[j]) ==
			    sim_module_address(&b->modules[i]))
				perr(p, sub, "address %d is already used on this bus",
				     sim_module_address(&b->modules[i]));
	}
	return 0;
}

static int sim_alloc_buses(struct sim *sim, size_t n)
{
	sim->buses = calloc(n, sizeof(*sim->buses));
	if (!sim->buses)
		return -ENOMEM;
	sim->nbuses = n;
	for (size_t i = 0; i < n; i++) {
		sim->buses[i].index = (int)i;
		sim->buses[i].sim = sim;
		sim->buses[i].master_fd = -1;
		sim->buses[i].slave_fd = -1;
		sim->buses[i].inotify_fd = -1;
		sim->buses[i].wake_fd = -1;
		sim->buses[i].listen_fd = -1;
		sim->buses[i].client_fd = -1;
		sim->buses[i].rng = 0x5EED0000u + i;
	}
	return 0;
}

/* Two buses on one pty link or one TCP port (gateways on port 0 each get
 * a port of their own). */
static bool same_place(const struct sim_bus *a, const struct sim_bus *b)
{
	enum sim_bus_kind kind;
	char host[64];
	int port;

	if (!a->path || !b->path || strcmp(a->path, b->path) != 0)
		return false;
	return a->kind == SIM_BUS_PTY ||
	       sim_listen_parse(a->path, &kind, host, sizeof(host), &port) < 0 || port != 0;
}

static int parse_top(struct parse *p, json_object *root, struct sim *sim)
{
	json_object *buses = NULL;
	char sub[JPATH_MAX];
	int r;

	if (!expect_type(p, root, "$", json_type_object))
		return 0;
	json_object_object_foreach(root, key, val) {
		if (strcmp(key, "log") == 0) {
			if (get_string(p, val, key, &sim->log_path) == -ENOMEM)
				return -ENOMEM;
		} else if (strcmp(key, "control") == 0) {
			if (get_string(p, val, key, &sim->control_path) == -ENOMEM)
				return -ENOMEM;
		} else if (strcmp(key, "buses") == 0) {
			buses = val;
		} else {
			perr(p, key, "unknown key");
		}
	}
	if (!buses) {
		perr(p, "$", "missing \"buses\"");
		return 0;
	}
	if (!expect_type(p, buses, "buses", json_type_array))
		return 0;
	if (json_object_array_length(buses) < 1 ||
	    json_object_array_length(buses) > SIM_MAX_BUSES) {
		perr(p, "buses", "expected 1..%d buses", SIM_MAX_BUSES);
		return 0;
	}
	r = sim_alloc_buses(sim, json_object_array_length(buses));
	if (r < 0)
		return r;
	for (size_t i = 0; i < sim->nbuses; i++) {
		jpath(sub, "buses[%zu]", i);
		r = parse_bus(p, json_object_array_get_idx(buses, i), sub, &sim->buses[i]);
		if (r < 0)
			return r;
		for (size_t j = 0; j < i; j++)
			if (same_place(&sim->buses[i], &sim->buses[j]))
				perr(p, sub, "path %s is already used", sim->buses[i].path);
	}
	return 0;
}

/* Returns 0, -EINVAL (errors logged) or another -errno. */
int sim_config_load(struct sim *sim, const char *file)
{
	struct parse p = { .file = file };
	enum json_tokener_error jerr;
	json_object *root;
	char *text = NULL;
	int r;

	/* a regular file only: never a FIFO waited on, nor /dev/zero */
	r = pm_read_file_capped(file, SIM_CONFIG_MAX, &text, NULL);
	if (r < 0) {
		log_err("%s: %s", file, pm_strerror(r));
		return r;
	}
	root = json_tokener_parse_verbose(text, &jerr);
	free(text);
	if (!root) {
		log_err("%s: invalid JSON: %s", file, json_tokener_error_desc(jerr));
		return -EINVAL;
	}
	r = parse_top(&p, root, sim);
	json_object_put(root);
	if (r < 0)
		return r;
	return p.errors ? -EINVAL : 0;
}

/*
 * The control socket's profile: text is the generator's inner object,
 * {"start": ..., "points": [...], "repeat": ...}. On success g (whatever it
 * held is released) is the profile and 0 is returned; otherwise -EINVAL
 * with the first error in err, or -ENOMEM.
 */
int sim_profile_from_json(const char *text, struct sim_gen *g, char *err, size_t errlen)
{
	struct parse p = { .file = "profile", .err = err, .errlen = errlen };
	struct json_tokener *tok;
	enum json_tokener_error jerr;
	json_object *root;
	size_t len = strlen(text), end;
	int r;

	err[0] = '\0';
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	/* the terminating NUL included: a bare "null" or number ends there */
	root = json_tokener_parse_ex(tok, text, (int)len + 1);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (jerr != json_tokener_success) {
		json_object_put(root);
		snprintf(err, errlen, "invalid JSON: %s",
			 json_tokener_error_desc(jerr == json_tokener_continue ?
						 json_tokener_error_parse_eof : jerr));
		return -EINVAL;
	}
	while (end < len && strchr(" \t\r\n", text[end]))
		end++;
	if (end < len) {
		json_object_put(root);
		snprintf(err, errlen, "invalid JSON: text after the object");
		return -EINVAL;
	}
	r = parse_profile(&p, root, "profile", g);
	json_object_put(root);
	if (r < 0)
		return r;
	return p.errors ? -EINVAL : 0;
}

/* hdhk-sim --pty PATH | --listen URL [--baud B] [--framing F] [--address 1,2,...] */
int sim_config_quick(struct sim *sim, const char *path, bool listen, int baud,
		     const char *framing, const char *addresses, bool wire_time)
{
	enum sim_bus_kind kind = SIM_BUS_PTY;
	struct sim_bus *b;
	int addrs[SIM_MAX_MODULES];
	char host[64];
	size_t n = 0;
	const char *s;
	int f, r, port;

	if (listen && sim_listen_parse(path, &kind, host, sizeof(host), &port) < 0) {
		log_err("--listen: expected tcp://HOST:PORT or rtu+tcp://HOST:PORT (HOST an IP "
			"address, PORT 0..65535), got %s", path);
		return -EINVAL;
	}
	if (sim_baud_code(baud) < 0) {
		log_err("--baud: not a baud rate of the datasheet: %d", baud);
		return -EINVAL;
	}
	f = sim_framing_parse(framing);
	if (f < 0) {
		log_err("--framing: expected N81, E81, O81 or N82, got %s", framing);
		return -EINVAL;
	}
	for (s = addresses; *s; ) {
		char *end;
		long a = strtol(s, &end, 10);

		if (end == s || a < 1 || a > 255 || (*end && *end != ',') || n == SIM_MAX_MODULES) {
			log_err("--address: expected addresses 1..255, got %s", addresses);
			return -EINVAL;
		}
		for (size_t i = 0; i < n; i++)
			if (addrs[i] == a) {
				log_err("--address: %ld is listed twice", a);
				return -EINVAL;
			}
		addrs[n++] = (int)a;
		s = *end ? end + 1 : end;
	}
	if (n == 0) {
		log_err("--address: no address given");
		return -EINVAL;
	}
	r = sim_alloc_buses(sim, 1);
	if (r < 0)
		return r;
	b = &sim->buses[0];
	b->path = strdup(path);
	b->modules = calloc(n, sizeof(*b->modules));
	if (!b->path || !b->modules)
		return -ENOMEM;
	b->nmodules = n;
	b->kind = kind;
	b->line.baud = baud;
	b->line.framing = (enum sim_framing)f;
	b->wire_time = wire_time;
	for (size_t i = 0; i < n; i++)
		sim_module_init(&b->modules[i], addrs[i], &b->line);
	return 0;
}

void sim_config_free(struct sim *sim)
{
	for (size_t i = 0; i < sim->nbuses; i++) {
		for (size_t j = 0; sim->buses[i].modules && j < sim->buses[i].nmodules; j++)
			sim_module_free(&sim->buses[i].modules[j]);
		free(sim->buses[i].path);
		free(sim->buses[i].modules);
	}
	free(sim->buses);
	free(sim->log_path);
	free(sim->control_path);
	sim->buses = NULL;
	sim->nbuses = 0;
	sim->log_path = NULL;
	sim->control_path = NULL;
}
