/* cmd_report.c — `powermeter report`: energy, peak demand, coverage and cost
 * per circuit, phase, feed or tag from the ledger (output/report.h), as a
 * table, CSV or JSON. Exits with sysexits(3) statuses. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include <powermeter/powermeter.h>

#include "cli.h"
#include "config/config.h"
#include "config/tariff.h"
#include "output/ledger.h"
#include "output/report.h"
#include "util/buf.h"
#include "util/jsonstr.h"
#include "util/log.h"

#define OUT_MAX (64u * 1024 * 1024)
#define ESTIMATE "estimates: current x configured voltage x power factor " \
		 "(the modules measure current only)"

enum format { TABLE, CSV, JSON };

struct opts {
	const char *config, *ledger, *month, *from, *to, *by, *tariff;
	enum format format;
	struct pm_report_query q;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: powermeter report [-c CONFIG] [--ledger PATH]\n"
		"         (--month YYYY-MM | --from T --to T)\n"
		"         [--by circuit|phase|feed|tag:NAME] [--tariff FILE]\n"
		"         [--format table|csv|json]\n"
		"Energy, peak demand (15 minutes), coverage and cost per group from\n"
		"the ledger powermeterd keeps. T is local YYYY-MM-DD or\n"
		"YYYY-MM-DDTHH:MM[:SS]; the period is [from, to). The figures are\n"
		"estimates: current x configured voltage x power factor.\n"
		"  -c, --config PATH   config file, for its ledger (default %s)\n"
		"      --ledger PATH   the ledger file; no config is read\n"
		"      --month YYYY-MM a calendar month of local time\n"
		"      --from T, --to T  the period [from, to)\n"
		"      --by GROUP      circuit (default), phase, feed or tag:NAME\n"
		"      --tariff FILE   prices: cost, standing charge and VAT\n"
		"  -f, --format FMT    table (default), csv or json\n",
		PM_DEFAULT_CONFIG);
}

/* One line saying what is wrong with the command line: EX_USAGE. */
__attribute__((format(printf, 1, 2)))
static int bad_usage(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_err("%s (see powermeter report --help)", line);
	return EX_USAGE;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	/* long options only, but -c, -f and -h: other commands give -b and
	 * -t other meanings */
	enum { OPT_FROM = 0x100, OPT_TO, OPT_LEDGER, OPT_MONTH, OPT_BY, OPT_TARIFF };
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "ledger", required_argument, NULL, OPT_LEDGER },
		{ "month", required_argument, NULL, OPT_MONTH },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "to", required_argument, NULL, OPT_TO },
		{ "by", required_argument, NULL, OPT_BY },
		{ "tariff", required_argument, NULL, OPT_TARIFF },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *format = "table";
	int opt;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":c:f:h", options, NULL)) != -1) {
		switch (opt) {
		case 'c': o->config = optarg; break;
		case OPT_LEDGER: o->ledger = optarg; break;
		case OPT_MONTH: o->month = optarg; break;
		case OPT_FROM: o->from = optarg; break;
		case OPT_TO: o->to = optarg; break;
		case OPT_BY: o->by = optarg; break;
		case OPT_TARIFF: o->tariff = optarg; break;
		case 'f': format = optarg; break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			return bad_usage("option %s needs a value", argv[optind - 1]);
		default:
			if (optopt)
				return bad_usage("unknown option -%c", optopt);
			return bad_usage("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument '%s'", argv[optind]);
	if (!strcmp(format, "table"))
		o->format = TABLE;
	else if (!strcmp(format, "csv"))
		o->format = CSV;
	else if (!strcmp(format, "json"))
		o->format = JSON;
	else
		return bad_usage("--format must be table, csv or json, not '%s'", format);

	if (!o->by || !strcmp(o->by, "circuit")) {
		o->q.by = PM_REPORT_BY_CIRCUIT;
	} else if (!strcmp(o->by, "phase")) {
		o->q.by = PM_REPORT_BY_PHASE;
	} else if (!strcmp(o->by, "feed")) {
		o->q.by = PM_REPORT_BY_FEED;
	} else if (!strncmp(o->by, "tag:", 4) && o->by[4]) {
		o->q.by = PM_REPORT_BY_TAG;
		o->q.tag = o->by + 4;
	} else {
		return bad_usage("--by must be circuit, phase, feed or tag:NAME, not '%s'",
				 o->by);
	}

	if (o->month && (o->from || o->to))
		return bad_usage("give either --month or --from and --to, not both");
	if (o->month) {
		if (pm_report_parse_month(o->month, &o->q.from, &o->q.to) < 0)
			return bad_usage("--month '%s': expected YYYY-MM, e.g. 2025-03",
					 o->month);
		return CLI_GO_ON;
	}
	if (!o->from || !o->to)
		return bad_usage("give the period: --month YYYY-MM, or --from and --to");
	for (int i = 0; i < 2; i++) {
		const char *s = i ? o->to : o->from;
		int r = pm_report_parse_time(s, i ? &o->q.to : &o->q.from);

		if (r == -ERANGE)
			return bad_usage("--%s '%s': that local time does not exist "
					 "(daylight saving skips it)", i ? "to" : "from", s);
		if (r < 0)
			return bad_usage("--%s '%s': expected a local date YYYY-MM-DD "
					 "or YYYY-MM-DDTHH:MM[:SS], e.g. 2025-03-01T07:00",
					 i ? "to" : "from", s);
	}
	if (o->q.from >= o->q.to)
		return bad_usage("--from %s is not before --to %s", o->from, o->to);
	return CLI_GO_ON;
}

/* ---- output ------------------------------------------------------------------ */

static void fmt_local(int64_t t, bool iso, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char off[8];

	if (!localtime_r(&tt, &tm)) {
		snprintf(buf, size, "-");
		return;
	}
	if (!iso) {
		strftime(buf, size, "%Y-%m-%d %H:%M", &tm);
		return;
	}
	/* ISO 8601 with the offset as +01:00 */
	strftime(off, sizeof(off), "%z", &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + strlen(buf), size - strlen(buf), "%.3s:%.2s", off, off + 3);
}

static void fmt_period(const struct pm_report *rep, char *buf, size_t size)
{
	char a[40], b[40], za[16] = "", zb[16] = "";
	time_t ta = (time_t)rep->from, tb = (time_t)rep->to;
	struct tm tm;

	fmt_local(rep->from, false, a, sizeof(a));
	fmt_local(rep->to, false, b, sizeof(b));
	if (localtime_r(&ta, &tm))
		strftime(za, sizeof(za), " %Z", &tm);
	if (localtime_r(&tb, &tm))
		strftime(zb, sizeof(zb), " %Z", &tm);
	snprintf(buf, size, "%s%s .. %s%s (%g h)", a, za, b, zb,
		 (double)(rep->to - rep->from) / 3600);
}

static const char *by_name(const struct opts *o)
{
	static const char *const names[] = { "circuit", "phase", "feed", "tag" };

	return names[o->q.by];
}

/* Coverage in %, never rounded up to 100 while something is unmetered. */
static double coverage(const struct pm_report_group *g)
{
	if (g->expected_s <= 0)
		return 0;
	return floor(g->metered_s / g->expected_s * 10000) / 100;
}

static double unmetered_h(const struct pm_report_group *g)
{
	double u = (g->expected_s - g->metered_s) / 3600;

	return u > 0 ? u : 0;
}

static const char *label_of(const struct pm_report_group *g)
{
	return g->label ? g->label : "(none)";
}

/* Display width of UTF-8 text: its code points. */
static int width(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static int pad(struct pm_buf *b, const char *s, int w)
{
	int r = pm_buf_adds(b, s);

	for (int i = width(s); r == 0 && i < w; i++)
		r = pm_buf_addc(b, ' ');
	return r;
}

/* 'v' with 'digits' decimals, right-aligned in 'width' (0: as it comes),
 * or 'none' when it is not a finite number: never "inf" or "nan", which no
 * spreadsheet or JSON parser takes. Its figures come from the ledger's
 * integers and a tariff whose prices are bounded, so none is expected. */
static int add_fixed(struct pm_buf *b, int width, int digits, double v,
		     const char *none)
{
	if (!isfinite(v))
		return pm_buf_printf(b, "%*s", width, none);
	return pm_buf_printf(b, "%*.*f", width, digits, v);
}

/* lw, iw: the widths of the label and ID columns */
static int table_row(struct pm_buf *b, const struct opts *o,
		     const struct pm_report *rep, const struct pm_report_group *g,
		     const char *label, int lw, int iw)
{
	char when[40] = "-", id[16] = "";
	int r = pad(b, label, lw);

	if (!isnan(g->peak_kw))
		fmt_local(g->peak_start, false, when, sizeof(when));
	if (o->q.by == PM_REPORT_BY_CIRCUIT) {
		if (g != &rep->total)
			snprintf(id, sizeof(id), "%d.%c", g->device_id, g->channel);
		if (r == 0)
			r = pm_buf_printf(b, "  %-*s", iw, id);
	} else if (r == 0) {
		r = pm_buf_printf(b, "  %8zu", g->n_circuits);
	}
	if (r == 0)
		r = pm_buf_adds(b, "  ");
	if (r == 0)
		r = add_fixed(b, 11, 3, g->energy_kwh, "-");
	if (r == 0)
		r = pm_buf_adds(b, "  ");
	if (r == 0)
		r = add_fixed(b, 9, 3, g->peak_kw, "-");
	if (r == 0)
		r = pm_buf_printf(b, "  %-16s  ", when);
	if (r == 0)
		r = add_fixed(b, 7, 2, coverage(g), "-");
	if (r == 0)
		r = pm_buf_adds(b, " %  ");
	if (r == 0)
		r = add_fixed(b, 11, 2, unmetered_h(g), "-");
	if (r == 0 && o->q.tariff) {
		r = pm_buf_adds(b, "  ");
		if (r == 0)
			r = add_fixed(b, 12, 2, g->cost.net, "-");
		if (r == 0)
			r = pm_buf_adds(b, "  ");
		if (r == 0)
			r = add_fixed(b, 10, 2, g->cost.vat, "-");
		if (r == 0)
			r = pm_buf_adds(b, "  ");
		if (r == 0)
			r = add_fixed(b, 12, 2, g->cost.total, "-");
	}
	return r ? r : pm_buf_addc(b, '\n');
}

static int print_table(struct pm_buf *b, const struct opts *o,
		       const struct pm_report *rep)
{
	const char *cur = o->q.tariff && *o->q.tariff->currency
			  ? o->q.tariff->currency : "";
	char period[160], head[64], total[48], net[32], vat[32], tot[32];
	int lw, iw = 2, r;

	fmt_period(rep, period, sizeof(period));
	if (o->q.by == PM_REPORT_BY_TAG)
		snprintf(head, sizeof(head), "%s", o->q.tag);
	else
		snprintf(head, sizeof(head), "%s", by_name(o));
	for (char *p = head; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	snprintf(total, sizeof(total), "TOTAL");
	lw = width(head) > width(total) ? width(head) : width(total);
	for (size_t i = 0; i < rep->n_groups; i++) {
		const struct pm_report_group *g = &rep->groups[i];
		int n = snprintf(NULL, 0, "%d.%c", g->device_id, g->channel);

		if (width(label_of(g)) > lw)
			lw = width(label_of(g));
		if (n > iw)
			iw = n;
	}

	r = pm_buf_printf(b, "Energy report %s, by %s%s%s\n"
			  "* %s\n", period, by_name(o),
			  o->q.by == PM_REPORT_BY_TAG ? ":" : "",
			  o->q.by == PM_REPORT_BY_TAG ? o->q.tag : "", ESTIMATE);
	if (r == 0)
		r = pad(b, head, lw);
	if (r == 0)
		r = o->q.by == PM_REPORT_BY_CIRCUIT ? pm_buf_printf(b, "  %-*s", iw, "ID")
						    : pm_buf_printf(b, "  %8s", "CIRCUITS");
	if (r == 0)
		r = pm_buf_printf(b, "  %11s  %9s  %-16s  %9s  %11s", "KWH*",
				  "PEAK KW*", "PEAK AT", "COVERAGE", "UNMETERED H");
	if (r == 0 && o->q.tariff) {
		snprintf(net, sizeof(net), "NET%s%s*", *cur ? " " : "", cur);
		snprintf(vat, sizeof(vat), "VAT%s%s*", *cur ? " " : "", cur);
		snprintf(tot, sizeof(tot), "TOTAL%s%s*", *cur ? " " : "", cur);
		r = pm_buf_printf(b, "  %12s  %10s  %12s", net, vat, tot);
	}
	if (r == 0)
		r = pm_buf_addc(b, '\n');
	for (size_t i = 0; r == 0 && i < rep->n_groups; i++)
		r = table_row(b, o, rep, &rep->groups[i], label_of(&rep->groups[i]),
			      lw, iw);
	if (r == 0)
		r = table_row(b, o, rep, &rep->total, total, lw, iw);
	if (r == 0)
		r = pm_buf_printf(b, "* %s\n* peak: the highest 15-minute average "
				  "power, from PEAK AT (the total's: all circuits "
				  "together); unmetered hours are circuit-hours\n",
				  ESTIMATE);
	if (r == 0 && rep->peak_resolution_s > PM_REPORT_PEAK_WINDOW)
		r = pm_buf_printf(b, "* the ledger's interval is %u minutes: peaks are "
				  "averages over %u minutes, not 15\n",
				  rep->peak_resolution_s / 60, rep->peak_resolution_s / 60);
	if (r == 0 && o->q.tariff)
		r = pm_buf_printf(b, "* tariff %s: VAT %g %%, standing charge for %.4g "
				  "days per %s\n", o->q.tariff->path, o->q.tariff->vat,
				  rep->total.standing_days,
				  o->q.by == PM_REPORT_BY_TAG ? "group" : by_name(o));
	return r;
}

/* A CSV field (RFC 4180): quoted when it holds a comma, quote or newline. */
static int csv_field(struct pm_buf *b, const char *s)
{
	int r;

	if (!strpbrk(s, ",\"\r\n"))
		return pm_buf_adds(b, s);
	r = pm_buf_addc(b, '"');
	for (; r == 0 && *s; s++)
		r = *s == '"' ? pm_buf_adds(b, "\"\"") : pm_buf_addc(b, *s);
	return r ? r : pm_buf_addc(b, '"');
}

static int csv_row(struct pm_buf *b, const struct opts *o,
		   const struct pm_report_group *g, const char *label, bool total)
{
	char when[40] = "";
	int r = csv_field(b, label);

	if (!isnan(g->peak_kw))
		fmt_local(g->peak_start, true, when, sizeof(when));
	if (r == 0 && (total || o->q.by != PM_REPORT_BY_CIRCUIT))
		r = pm_buf_adds(b, ",,");
	else if (r == 0)
		r = pm_buf_printf(b, ",%d,%c", g->device_id, g->channel);
	if (r == 0)
		r = pm_buf_printf(b, ",%zu,", g->n_circuits);
	if (r == 0)
		r = add_fixed(b, 0, 3, g->energy_kwh, "");
	if (r == 0)
		r = pm_buf_addc(b, ',');
	if (r == 0)
		r = add_fixed(b, 0, 3, g->peak_kw, "");
	if (r == 0)
		r = pm_buf_printf(b, ",%s,", when);
	if (r == 0)
		r = add_fixed(b, 0, 2, coverage(g), "");
	if (r == 0)
		r = pm_buf_addc(b, ',');
	if (r == 0)
		r = add_fixed(b, 0, 2, unmetered_h(g), "");
	if (r == 0 && o->q.tariff) {
		const double cost[] = {
			g->cost.energy, g->cost.standing, g->cost.net,
			g->cost.vat, g->cost.total,
		};

		for (size_t i = 0; r == 0 && i < 5; i++) {
			r = pm_buf_addc(b, ',');
			if (r == 0)
				r = add_fixed(b, 0, 2, cost[i], "");
		}
		if (r == 0)
			r = pm_buf_addc(b, ',');
		if (r == 0)
			r = csv_field(b, o->q.tariff->currency);
	}
	return r ? r : pm_buf_addc(b, '\n');
}

static int print_csv(struct pm_buf *b, const struct opts *o,
		     const struct pm_report *rep)
{
	char from[40], to[40];
	int r;

	fmt_local(rep->from, true, from, sizeof(from));
	fmt_local(rep->to, true, to, sizeof(to));
	r = pm_buf_printf(b, "# %s; period %s .. %s (%g h), by %s%s%s\n", ESTIMATE,
			  from, to, (double)(rep->to - rep->from) / 3600, by_name(o),
			  o->q.by == PM_REPORT_BY_TAG ? ":" : "",
			  o->q.by == PM_REPORT_BY_TAG ? o->q.tag : "");
	if (r == 0 && rep->peak_resolution_s > PM_REPORT_PEAK_WINDOW)
		r = pm_buf_printf(b, "# the ledger's interval is %u minutes: peaks are "
				  "averages over %u minutes, not 15\n",
				  rep->peak_resolution_s / 60, rep->peak_resolution_s / 60);
	if (r == 0)
		r = pm_buf_adds(b, "group,device_id,input,circuits,energy_kwh,peak_kw,"
				"peak_start,coverage_percent,unmetered_h");
	if (r == 0 && o->q.tariff)
		r = pm_buf_adds(b, ",energy_cost,standing_charge,net,vat,total,currency");
	if (r == 0)
		r = pm_buf_addc(b, '\n');
	for (size_t i = 0; r == 0 && i < rep->n_groups; i++)
		r = csv_row(b, o, &rep->groups[i], label_of(&rep->groups[i]), false);
	if (r == 0)
		r = csv_row(b, o, &rep->total, "(total)", true);
	return r;
}

static int json_group(struct pm_buf *b, const struct opts *o,
		      const struct pm_report_group *g, bool total)
{
	char when[40];
	int r = 0;

	if (!total) {
		r = pm_buf_adds(b, "{\"group\": ");
		if (r == 0)
			r = g->label ? pm_json_string(b, g->label) : pm_buf_adds(b, "null");
		if (r == 0 && o->q.by == PM_REPORT_BY_CIRCUIT)
			r = pm_buf_printf(b, ", \"device_id\": %d, \"input\": \"%c\"",
					  g->device_id, g->channel);
		if (r == 0)
			r = pm_buf_adds(b, ", ");
	} else {
		r = pm_buf_addc(b, '{');
	}
	if (r == 0)
		r = pm_buf_printf(b, "\"circuits\": %zu, \"energy_kwh\": ",
				  g->n_circuits);
	if (r == 0)
		r = add_fixed(b, 0, 6, g->energy_kwh, "null");
	if (r == 0)
		r = pm_buf_adds(b, ", \"peak_kw\": ");
	if (r == 0 && !isfinite(g->peak_kw)) {
		r = pm_buf_adds(b, "null, \"peak_start\": null");
	} else if (r == 0) {
		fmt_local(g->peak_start, true, when, sizeof(when));
		r = pm_buf_printf(b, "%.3f, \"peak_start\": \"%s\"", g->peak_kw, when);
	}
	if (r == 0)
		r = pm_buf_adds(b, ", \"coverage_percent\": ");
	if (r == 0)
		r = add_fixed(b, 0, 2, coverage(g), "null");
	if (r == 0)
		r = pm_buf_adds(b, ", \"unmetered_h\": ");
	if (r == 0)
		r = add_fixed(b, 0, 2, unmetered_h(g), "null");
	if (r == 0 && o->q.tariff) {
		static const char *const key[] = {
			"energy", "standing_charge", "net", "vat", "total",
		};
		const double cost[] = {
			g->cost.energy, g->cost.standing, g->cost.net,
			g->cost.vat, g->cost.total,
		};

		for (size_t i = 0; r == 0 && i < 5; i++) {
			r = pm_buf_printf(b, "%s\"%s\": ", i ? ", " : ", \"cost\": {",
					  key[i]);
			if (r == 0)
				r = add_fixed(b, 0, 2, cost[i], "null");
		}
		if (r == 0)
			r = pm_buf_addc(b, '}');
	}
	return r ? r : pm_buf_addc(b, '}');
}

static int print_json(struct pm_buf *b, const struct opts *o,
		      const struct pm_report *rep)
{
	char from[40], to[40];
	int r;

	fmt_local(rep->from, true, from, sizeof(from));
	fmt_local(rep->to, true, to, sizeof(to));
	r = pm_buf_printf(b, "{\"estimate\": {\"basis\": \"current x configured "
			  "voltage x power factor\", \"fields\": [\"energy_kwh\", "
			  "\"peak_kw\"%s]},\n \"from\": \"%s\", \"to\": \"%s\", "
			  "\"hours\": %g, \"by\": \"%s\", \"tag\": ",
			  o->q.tariff ? ", \"cost\"" : "", from, to,
			  (double)(rep->to - rep->from) / 3600, by_name(o));
	if (r == 0)
		r = o->q.tag ? pm_json_string(b, o->q.tag) : pm_buf_adds(b, "null");
	if (r == 0)
		r = pm_buf_printf(b, ", \"peak_window_s\": %d, \"peak_resolution_s\": %u, "
				  "\"rows\": %zu, \"counter_resets\": %zu",
				  PM_REPORT_PEAK_WINDOW, rep->peak_resolution_s,
				  rep->n_rows, rep->n_resets);
	if (r == 0 && o->q.tariff) {
		r = pm_buf_adds(b, ",\n \"tariff\": {\"file\": ");
		if (r == 0)
			r = pm_json_string(b, o->q.tariff->path);
		if (r == 0)
			r = pm_buf_adds(b, ", \"currency\": ");
		if (r == 0)
			r = pm_json_string(b, o->q.tariff->currency);
		if (r == 0)
			r = pm_buf_printf(b, ", \"vat_percent\": %g, \"standing_days\": %.6f}",
					  o->q.tariff->vat, rep->total.standing_days);
	}
	if (r == 0)
		r = pm_buf_adds(b, ",\n \"groups\": [");
	for (size_t i = 0; r == 0 && i < rep->n_groups; i++) {
		r = pm_buf_adds(b, i ? ",\n  " : "\n  ");
		if (r == 0)
			r = json_group(b, o, &rep->groups[i], false);
	}
	if (r == 0)
		r = pm_buf_adds(b, "],\n \"total\": ");
	if (r == 0)
		r = json_group(b, o, &rep->total, true);
	return r ? r : pm_buf_adds(b, "}\n");
}

/* ---- the command -------------------------------------------------------------- */

static int load_tariff(const char *path, struct pm_tariff **t)
{
	char *errors = NULL;
	int r = pm_tariff_load(t, path, &errors);

	if (r == 0)
		return 0;
	if (errors && *errors) {
		fputs(errors, stderr);
		if (errors[strlen(errors) - 1] != '\n')
			fputc('\n', stderr);
	} else {
		log_err("%s: %s", path, pm_strerror(r));
	}
	free(errors);
	return EX_CONFIG;
}

/* The ledger's path: --ledger, else the configuration's. */
static int ledger_path(const struct opts *o, struct pm_config **cfg,
		       char **path)
{
	int status;

	if (o->ledger)
		return (*path = strdup(o->ledger)) ? 0 : EX_OSERR;
	status = cli_load_config(o->config, cfg);
	if (status)
		return status;
	if ((*cfg)->ledger.path)
		*path = strdup((*cfg)->ledger.path);
	else if ((*cfg)->state_dir)
		(void)!asprintf(path, "%s/%s", (*cfg)->state_dir, PM_LEDGER_FILE);
	if (!*path) {
		log_err("the configuration names no ledger; give --ledger PATH");
		return EX_NOINPUT;
	}
	return 0;
}

static int open_ledger(const char *path, struct pm_ledger **l)
{
	char err[512] = "";
	int r = pm_ledger_open(l, path, PM_LEDGER_READ, err, sizeof(err));

	switch (r) {
	case 0:
		return 0;
	case -ENOENT:
		log_err("%s: no ledger there - is powermeterd running with a "
			"ledger? see powermeter.json(5), ledger", path);
		return EX_NOINPUT;
	case -PM_EFRAME:
	case -EPROTO:
		break;
	case -EBUSY:
		if (!*err)
			snprintf(err, sizeof(err), "%s: locked, try again", path);
		log_err("%s", err);
		return EX_TEMPFAIL;
	default:
		if (!*err)
			snprintf(err, sizeof(err), "%s: %s", path, pm_strerror(r));
		log_err("%s", err);
		return EX_NOINPUT;
	}
	if (!*err)
		snprintf(err, sizeof(err), "%s: %s", path, r == -EPROTO
			 ? "written by a newer powermeter" : "not a powermeter ledger");
	log_err("%s", err);
	return EX_DATAERR;
}

static int run_report(const char *path, struct pm_ledger *l,
		      const struct opts *o, struct pm_report **rep)
{
	char err[512] = "";
	int r = pm_report_run(l, &o->q, rep, err, sizeof(err));

	if (r == 0)
		return 0;
	if (!*err)
		snprintf(err, sizeof(err), "%s", pm_strerror(r));
	switch (r) {
	case -ENODATA:
	case -ENOKEY:
		log_err("%s", err);
		return EX_DATAERR;
	case -PM_EFRAME:
		log_err("%s: %s", path, err);
		return EX_DATAERR;
	case -EBUSY:
		log_err("%s: %s", path, err);
		return EX_TEMPFAIL;
	default:
		log_err("%s: %s", path, err);
		return EX_SOFTWARE;
	}
}

int cmd_report(int argc, char **argv)
{
	struct opts o = { 0 };
	struct pm_config *cfg = NULL;
	struct pm_tariff *tariff = NULL;
	struct pm_ledger *l = NULL;
	struct pm_report *rep = NULL;
	char *path = NULL;
	struct pm_buf b;
	int status, r;

	status = parse_args(argc, argv, &o);
	if (status != CLI_GO_ON)
		return status;
	if (o.tariff) {
		status = load_tariff(o.tariff, &tariff);
		if (status)
			goto out;
		o.q.tariff = tariff;
	}
	status = ledger_path(&o, &cfg, &path);
	if (status == 0)
		status = open_ledger(path, &l);
	if (status == 0)
		status = run_report(path, l, &o, &rep);
	if (status)
		goto out;
	if (rep->n_resets)
		log_warning("%zu ledger row%s with a counter lower than the row "
			    "before (a lost energy state?): each starts a new "
			    "baseline, its interval's energy unknown",
			    rep->n_resets, rep->n_resets == 1 ? "" : "s");
	pm_buf_init(&b, OUT_MAX);
	r = o.format == JSON ? print_json(&b, &o, rep)
	  : o.format == CSV ? print_csv(&b, &o, rep) : print_table(&b, &o, rep);
	if (r < 0)
		log_err("formatting the report: %s", pm_strerror(r));
	status = r < 0 ? EX_SOFTWARE : cli_print_buf(&b) ? EX_IOERR : 0;
	pm_buf_free(&b);
out:
	pm_report_free(rep);
	pm_ledger_close(l);
	pm_tariff_free(tariff);
	pm_config_free(cfg);
	free(path);
	return status;
}
