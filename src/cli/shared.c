/* shared.c — what several subcommands do alike: load the config, take a
 * device id (-d), report the devices that failed, write the output. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <powermeter/powermeter.h>

#include "util/buf.h"
#include "cli.h"
#include "config/config.h"
#include "util/log.h"

/* Reading never writes to InfluxDB: its secrets are not needed (nor
 * readable by the Zabbix agent's user). */
int cli_load_config(const char *path, struct pm_config **cfg)
{
	char *errors = NULL;
	int r = pm_config_load_flags(cfg, path, PM_CONFIG_NO_SECRETS, &errors);

	if (r == -PM_ECONFIG) {
		fputs(errors ? errors : "invalid configuration\n", stderr);
		if (errors && *errors && errors[strlen(errors) - 1] != '\n')
			fputc('\n', stderr);
		free(errors);
		return PM_EXIT_CONFIG;
	}
	if (r < 0) {
		log_err("%s: %s", path ? path : PM_DEFAULT_CONFIG, pm_strerror(r));
		return PM_EXIT_CONFIG;
	}
	return 0;
}

void cli_warn_failed_devices(const struct pm_config *cfg,
			     const pm_readings *r)
{
	for (size_t d = 0; d < cfg->n_devices; d++) {
		const char *why = pm_readings_error(r, cfg->devices[d].id);

		if (why)
			log_warning("%s", why);
	}
	/* an input of a device that was read, failed on its own */
	for (size_t i = 0; i < pm_readings_count(r); i++) {
		const struct pm_value *v = pm_readings_get(r, i);

		if (v->status == -ERANGE)
			log_warning("device %d on %s address %d, input %c: the "
				    "current is not a finite number (check the "
				    "input's \"ratio\"); left out",
				    v->device_id, v->port, v->address,
				    v->input);
	}
}

int cli_print_buf(const struct pm_buf *out)
{
	if (fwrite(out->data, 1, out->len, stdout) != out->len ||
	    fflush(stdout) != 0) {
		log_err("writing the output: %s", strerror(errno));
		return 1;
	}
	return 0;
}

int cli_device_option(const char *arg, int *id)
{
	if (cli_parse_device_id(arg, id) < 0) {
		log_err("invalid device id '%s'", arg);
		return -EINVAL;
	}
	return 0;
}

int cli_process_name(pid_t pid, char *name, size_t size)
{
	char path[64];
	FILE *f;

	name[0] = '\0';
	(void)snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	if (fgets(name, (int)size, f))
		name[strcspn(name, "\n")] = '\0';
	(void)fclose(f);
	return 0;
}
