/* args.c — the argument parsing the subcommands share: -c/--config and
 * -h/--help alone, the seed's config path given as an operand, device ids. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>

#include "cli.h"

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
