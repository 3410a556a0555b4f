/* cmd_json.c — placeholder, being written. */
#include <stdio.h>

#include "cli.h"

int cmd_json(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "powermeter: 'json' is not implemented yet\n");
	return 2;
}
