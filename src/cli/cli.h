/* cli.h — the subcommands of powermeter(1), one file each. Each returns the
 * process exit status: 0, 1 (some device failed), 2 (usage), 78 (config). */
#ifndef PM_CLI_H
#define PM_CLI_H

int cmd_check(int argc, char **argv);
int cmd_read(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_json(int argc, char **argv);
int cmd_zabbix(int argc, char **argv);

#endif
