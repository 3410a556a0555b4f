/* cmd_zabbix.c — placeholder, being written. */
#include <stdio.h>

#include "cli.h"

int cmd_zabbix(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "powermeter: 'zabbix' is not implemented yet\n");
	return 2;
}
