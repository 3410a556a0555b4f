/* cmd_check.c — placeholder, being written. */
#include <stdio.h>

#include "cli.h"

int cmd_check(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "powermeter: 'check' is not implemented yet\n");
	return 2;
}
