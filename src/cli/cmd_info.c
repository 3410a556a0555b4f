/* cmd_info.c — placeholder, being written. */
#include <stdio.h>

#include "cli.h"

int cmd_info(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "powermeter: 'info' is not implemented yet\n");
	return 2;
}
