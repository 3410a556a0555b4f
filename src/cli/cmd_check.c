/* cmd_check.c — `powermeter check [-c PATH | PATH]`: validates the config
 * (with its secrets and the seed's influx.conf) and prints a one-line
 * summary, or every problem found. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <powermeter/powermeter.h>

#include "bus/bus.h"
#include "cli.h"
#include "config/config.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: powermeter check [-c CONFIG | CONFIG]\n"
		"\n"
		"Validates the configuration (default %s) and prints a summary.\n"
		"Exit status 0 when valid, 78 when not, 2 on a usage error.\n",
		PM_DEFAULT_CONFIG);
}

static size_t count_ports(const struct pm_config *cfg)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->n_devices; i++) {
		size_t j;

		for (j = 0; j < i; j++)
			if (pm_bus_same(cfg->devices[i].port, cfg->devices[j].port))
				break;
		if (j == i)
			n++;
	}
	return n;
}

/* The end of the summary line: where energy is counted, and how power is
 * estimated when every circuit has the same voltage and power factor. */
static void print_energy(const struct pm_config *cfg)
{
	double v = -1, pf = -1;
	bool same = true;

	for (size_t d = 0; d < cfg->n_devices; d++)
		for (size_t k = 0; k < cfg->devices[d].n_inputs; k++) {
			const struct pm_input *in = &cfg->devices[d].inputs[k];

			if (v < 0) {
				v = in->voltage;
				pf = in->power_factor;
			}
			same &= in->voltage == v && in->power_factor == pf;
		}
	if (same && v > 0)
		printf(", power estimated at %g V x pf %g", v, pf);
	else
		printf(", power estimated at each circuit's voltage and power factor");
	if (cfg->n_feeds)
		printf(", %zu feed%s", cfg->n_feeds, cfg->n_feeds == 1 ? "" : "s");
	if (!cfg->alarms.enabled)
		printf(", alarms off");
	else if (cfg->alarms.n_command)
		printf(", alarms run %s", cfg->alarms.command[0]);
	if (cfg->energy.enabled)
		printf(", energy counters in %s (saved every %g s)",
		       cfg->state_dir, cfg->energy.persist_interval);
	else
		printf(", no energy counters");
	if (cfg->ledger.enabled)
		printf(", ledger %s (every %u s)\n", cfg->ledger.path,
		       cfg->ledger.interval);
	else
		printf("\n");
}

/* The outputs besides InfluxDB; never a password, only the user. */
static void print_outputs(const struct pm_config *cfg)
{
	const struct pm_mqtt *m = cfg->mqtt;

	if (m)
		printf(", MQTT %s (%s%s, topics %s/..., QoS %d%s%s%s)", m->url,
		       m->username ? "user " : "anonymous",
		       m->username ? m->username : "", m->topic_prefix, m->qos,
		       m->retain ? ", retained" : "",
		       m->discovery ? ", Home Assistant discovery under " : "",
		       m->discovery ? m->discovery_prefix : "");
	if (cfg->prometheus)
		printf(", Prometheus textfile %s", cfg->prometheus->textfile);
}

static void print_summary(const struct pm_config *cfg)
{
	const struct pm_influx *in = cfg->influx;
	size_t ports = count_ports(cfg);

	printf("%s: OK \xe2\x80\x94 %zu device%s on %zu port%s, %zu input%s, interval %g s",
	       cfg->path, cfg->n_devices, cfg->n_devices == 1 ? "" : "s",
	       ports, ports == 1 ? "" : "s", cfg->n_inputs,
	       cfg->n_inputs == 1 ? "" : "s", cfg->interval);
	if (!in) {
		printf(", no InfluxDB");
		print_outputs(cfg);
		print_energy(cfg);
		return;
	}
	/* Never the token or the password: only whether there is one. */
	if (in->api == PM_INFLUX_V2)
		printf(", InfluxDB v2 %s (bucket %s%s", in->url, in->bucket,
		       in->token ? "" : ", no token");
	else
		printf(", InfluxDB v1 %s (database %s%s%s", in->url,
		       in->database, in->username ? ", user " : "",
		       in->username ? in->username : "");
	if (cfg->influx_conf)
		printf(", with %s", cfg->influx_conf);
	printf("), spool %s (%llu MB)", cfg->spool_dir,
	       (unsigned long long)(cfg->spool_max_bytes / (1024 * 1024)));
	print_outputs(cfg);
	print_energy(cfg);
}

int cmd_check(int argc, char **argv)
{
	const char *path = NULL;
	struct pm_config *cfg = NULL;
	char *errors = NULL;
	int r;

	r = cli_config_options(argc, argv, true, usage, &path);
	if (r != CLI_GO_ON)
		return r;
	/* The seed's scripts took the config as their first argument. */
	if (cli_config_operand(argc, argv, &path) < 0) {
		fprintf(stderr, "powermeter check: give one config file\n");
		usage(stderr);
		return 2;
	}

	/* check also proves the secret files are readable, as the daemon needs */
	r = pm_config_load_flags(&cfg, path, 0, &errors);
	if (r == -PM_ECONFIG) {
		fputs(errors ? errors : "invalid configuration\n", stderr);
		free(errors);
		return PM_EXIT_CONFIG;
	}
	if (r == -ENOENT && !path) {
		fprintf(stderr, "powermeter: cannot open %s (nor %s): %s\n",
			PM_DEFAULT_CONFIG, PM_SEED_CONFIG, strerror(ENOENT));
		return PM_EXIT_CONFIG;
	}
	if (r < 0) {
		fprintf(stderr, "powermeter: cannot open %s: %s\n",
			path ? path : PM_DEFAULT_CONFIG, pm_strerror(r));
		return r == -ENOMEM ? 1 : PM_EXIT_CONFIG;
	}
	print_summary(cfg);
	pm_config_free(cfg);
	return 0;
}
