/* main.c — powermeter(1): dispatches to the subcommands in cmd_*.c. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "util/log.h"
#include "pm-build.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
} commands[] = {
	{ "check", cmd_check, "validate the config and print a summary" },
	{ "read", cmd_read, "read the modules (--format json|seed|table|influx)" },
	{ "info", cmd_info, "show a module's version, ranges, line settings, CT ratios" },
	{ "address", cmd_address, "give a module on a shared bus its own Modbus address" },
	{ "json", cmd_json, "the seed's JSON for Zabbix, from the daemon's snapshot" },
	{ "zabbix", cmd_zabbix, "Zabbix: discovery, feeds, status, circuits (estimated power, energy)" },
	{ "energy", cmd_energy, "the energy counters powermeterd keeps, orphans included" },
	{ "status", cmd_status, "modules, feeds and alarms from the daemon (a Nagios/Icinga check)" },
	{ "report", cmd_report, "energy, peak and cost per circuit, phase, feed or tag from the ledger" },
	{ "scan", cmd_scan, "find the modules on a bus: addresses, baud rates, framings" },
	{ "set", cmd_set, "write a module's address, line settings, CT ratios, threshold" },
	{ "watch", cmd_watch, "a live view of every circuit: current, estimated power, load, changes" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: powermeter COMMAND [-c CONFIG] [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nSee powermeter(1).\n");
}

int main(int argc, char **argv)
{
	pm_log_init("powermeter", 0);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("powermeter %s\n", PM_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "powermeter: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
