/* cmd_read.c — placeholder, being written. */
#include <stdio.h>

#include "cli.h"

int cmd_read(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "powermeter: 'read' is not implemented yet\n");
	return 2;
}
