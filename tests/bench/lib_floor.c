/* lib-floor: the memory a daemon built on powermeterd's libraries costs
 * before it does anything of its own. Linked against the same libraries as
 * powermeterd (one call into each keeps it linked), it initialises libcurl
 * as the daemon does at start (libmosquitto only when MQTT is configured),
 * then prints its peak RSS and anonymous memory in kB (tests/bench/daemon_resources.py compares the
 * daemon with it). */
#include <curl/curl.h>
#include <json-c/json.h>
#include <modbus.h>
#include <mosquitto.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <zlib.h>

static long status_kb(const char *key)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0)
			(void)sscanf(line + strlen(key), " %ld", &kb);
	(void)fclose(f);
	return kb;
}

int main(void)
{
	json_object *o = json_object_new_object();
	modbus_t *m = modbus_new_rtu("/dev/null", 9600, 'N', 8, 1);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	(void)mosquitto_lib_version(NULL, NULL, NULL);
	(void)sd_booted();
	(void)sqlite3_libversion_number();
	(void)zlibVersion();
	printf("VmHWM %ld\nRssAnon %ld\n", status_kb("VmHWM:"), status_kb("RssAnon:"));
	modbus_free(m);
	json_object_put(o);
	curl_global_cleanup();
	return 0;
}
