/* cli.h — the subcommands of powermeter(1), one file each. Each returns the
 * process exit status: 0, 1 (some device failed), 2 (usage), 78 (config). */
#ifndef PM_CLI_H
#define PM_CLI_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include <powermeter/powermeter.h>

int cmd_check(int argc, char **argv);
int cmd_read(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_address(int argc, char **argv);
int cmd_json(int argc, char **argv);
int cmd_zabbix(int argc, char **argv);
int cmd_energy(int argc, char **argv);
/* Exits with the monitoring-plugin statuses 0-3 instead (78: config). */
int cmd_status(int argc, char **argv);
/* Exits with sysexits(3) statuses instead (64 usage, 65 data, 66 no
 * ledger, 78 config or tariff). */
int cmd_report(int argc, char **argv);
/* Exit 0 (found something / done), 1 (found nothing / the module did not
 * confirm), or sysexits(3): 64 usage, 69 port unavailable, 74 port failed. */
int cmd_scan(int argc, char **argv);
int cmd_set(int argc, char **argv);
/* Exit 0 (q, Ctrl-C), 1 (--once with a module failing), 2 usage, 78
 * config, 128 + the signal for SIGTERM and SIGHUP. */
int cmd_watch(int argc, char **argv);

/* ---- args.c: argument parsing ---------------------------------------------- */

/* What cli_config_options() returns when the command goes on. */
#define CLI_GO_ON (-1)

/* The options of a command that has no others: -c/--config PATH (into
 * *path) and -h/--help, from argv[1] on (argv[0] is the command's name).
 * With 'in_order' the options end at the first operand (getopt's "+"),
 * else options and operands may mix. Returns CLI_GO_ON with optind at the
 * first operand, or the exit status once usage() has been printed: 0 for
 * --help (to stdout), 2 for a bad option (to stderr). */
int cli_config_options(int argc, char **argv, bool in_order,
		       void (*usage)(FILE *f), const char **path);
/* The seed's scripts took the config path as their one argument: takes the
 * operand at argv[optind], if any, into *path. -EINVAL when that makes
 * more than one config (two operands, or one besides -c). */
int cli_config_operand(int argc, char **argv, const char **path);
/* A non-negative device id from an option argument: 0 or -EINVAL. */
int cli_parse_device_id(const char *s, int *id);
/* A Modbus address 1..247: 0 or -EINVAL, *address untouched on error. */
int cli_parse_address(const char *s, int *address);
/* Seconds, more than 0, at most 60: 0 or -EINVAL. */
int cli_parse_timeout(const char *s, double *timeout);

/* A module named on the command line instead of by the config: -p/--port,
 * -a/--address, -b/--baud, --framing, -t/--timeout (info, address). Their
 * getopt_long entries, for the command's own option table: */
#define CLI_OPT_FRAMING 0x100
#define CLI_MODULE_OPTIONS \
	{ "port", required_argument, NULL, 'p' }, \
	{ "address", required_argument, NULL, 'a' }, \
	{ "baud", required_argument, NULL, 'b' }, \
	{ "framing", required_argument, NULL, CLI_OPT_FRAMING }, \
	{ "timeout", required_argument, NULL, 't' }
#define CLI_MODULE_SHORTOPTS "p:a:b:t:"
struct pm_device;
/* The datasheet's defaults: address 1, 9600 8N1, the default timeout. */
void cli_module_init(struct pm_device *dev);
/* Applies option 'opt' with 'arg' to 'dev': 1 when it was a module option,
 * 0 when it is not one, -EINVAL after saying what is invalid (addresses
 * 1..247, the baud rates of the datasheet's register 3, framings "N81" or
 * "8N1", 0 < timeout <= 60 s). */
int cli_module_option(int opt, char *arg, struct pm_device *dev);

/* ---- shared.c: what several subcommands do alike ---------------------------- */

struct pm_buf;
struct pm_config;
/* The name of process 'pid' (its /proc comm) into name (size bytes; ""
 * when it has none): 0, or -errno when /proc does not show it. */
int cli_process_name(pid_t pid, char *name, size_t size);
/* Loads the config at 'path' (NULL: the default) without its secrets,
 * printing every problem; returns 0 or the exit status (78). */
int cli_load_config(const char *path, struct pm_config **cfg);
/* One warning on stderr for each device of 'cfg' that failed in 'r', saying
 * why and what to check, and for each input left out on its own (-ERANGE:
 * its current not a finite number). */
void cli_warn_failed_devices(const struct pm_config *cfg,
			     const pm_readings *r);
/* Writes 'out' to stdout and flushes it: 0, or 1 (the exit status) after
 * saying why it failed. */
int cli_print_buf(const struct pm_buf *out);
/* The argument of -d/--device ID into *id (cli_parse_device_id): 0, or
 * -EINVAL after saying it is invalid. */
int cli_device_option(const char *arg, int *id);

#endif
