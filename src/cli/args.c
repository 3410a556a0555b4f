/* args.c — the argument parsing the subcommands share: -c/--config and
 * -h/--help alone, the seed's config path given as an operand, device ids,
 * and a module named on the command line (address, baud, framing). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "cli.h"
#include "config/config.h"
#include "util/log.h"

int cli_config_options(int argc, char **argv, bool in_order,
		       void (*usage)(FILE *f), const char **path)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	/* 0, not 1: glibc then starts afresh (the ordering from this
	 * optstring, nothing left of an earlier parse); zabbix parses twice. */
	optind = 0;
	while ((c = getopt_long(argc, argv, in_order ? "+c:h" : "c:h",
				options, NULL)) != -1) {
		switch (c) {
		case 'c':
			*path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	return CLI_GO_ON;
}

int cli_config_operand(int argc, char **argv, const char **path)
{
	if (optind == argc)
		return 0;
	if (*path || optind + 1 < argc)
		return -EINVAL;
	*path = argv[optind++];
	return 0;
}

int cli_parse_device_id(const char *s, int *id)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > 0x7fffffff)
		return -EINVAL;
	*id = (int)v;
	return 0;
}

static int parse_long(const char *s, long min, long max, long *v)
{
	char *end;

	errno = 0;
	*v = strtol(s, &end, 10);
	if (errno || end == s || *end || *v < min || *v > max)
		return -EINVAL;
	return 0;
}

int cli_parse_address(const char *s, int *address)
{
	long v;

	if (parse_long(s, PM_ADDRESS_MIN, PM_ADDRESS_MAX, &v) < 0)
		return -EINVAL;
	*address = (int)v;
	return 0;
}

static int parse_baud(const char *s, int *baud)
{
	long v;

	if (parse_long(s, 1, 115200, &v) < 0 || !pm_line_baud_ok(v))
		return -EINVAL;
	*baud = (int)v;
	return 0;
}

int cli_parse_timeout(const char *s, double *timeout)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v > 0) || v > 60)
		return -EINVAL;
	*timeout = v;
	return 0;
}

void cli_module_init(struct pm_device *dev)
{
	*dev = (struct pm_device){
		.id = -1,
		.address = 1,
		.line = PM_LINE_DEFAULT,
		.timeout = PM_DEFAULT_TIMEOUT,
		.retries = PM_BUS_RETRIES_DEFAULT,
		.down_after = PM_DEFAULT_DOWN_AFTER,
	};
}

int cli_module_option(int opt, char *arg, struct pm_device *dev)
{
	switch (opt) {
	case 'p':
		dev->port = arg;
		return 1;
	case 'a':
		if (cli_parse_address(arg, &dev->address) < 0) {
			log_err("invalid address '%s' (%d..%d)", arg,
				PM_ADDRESS_MIN, PM_ADDRESS_MAX);
			return -EINVAL;
		}
		return 1;
	case 'b':
		if (parse_baud(arg, &dev->line.baud) < 0) {
			log_err("invalid baud rate '%s' (" PM_LINE_BAUD_LIST ")",
				arg);
			return -EINVAL;
		}
		return 1;
	case CLI_OPT_FRAMING:
		if (pm_line_parse_framing(arg, &dev->line) < 0) {
			log_err("invalid framing '%s' (" PM_LINE_FRAMING_LIST ")",
				arg);
			return -EINVAL;
		}
		return 1;
	case 't':
		if (cli_parse_timeout(arg, &dev->timeout) < 0) {
			log_err("invalid timeout '%s' (seconds)", arg);
			return -EINVAL;
		}
		return 1;
	default:
		return 0;
	}
}
