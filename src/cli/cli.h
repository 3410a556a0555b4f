/* cli.h — the subcommands of powermeter(1), one file each. Each returns the
 * process exit status: 0, 1 (some device failed), 2 (usage), 78 (config). */
#ifndef PM_CLI_H
#define PM_CLI_H

int cmd_check(int argc, char **argv);
int cmd_read(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_json(int argc, char **argv);
int cmd_zabbix(int argc, char **argv);

struct pm_config;
/* Shared by the subcommands (cmd_read.c): loads the config at 'path' (NULL:
 * the default), printing every problem; returns 0 or the exit status (78). */
int cli_load_config(const char *path, struct pm_config **cfg);
/* A non-negative device id from an option argument: 0 or -EINVAL. */
int cli_parse_device_id(const char *s, int *id);

#endif
