/* test_config.c — the config loader: the seed's file, the object form, the
 * seed's influx.conf, secrets, and every golden malformed config under
 * tests/data/config giving exactly its expected messages. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "config/influxconf.h"
#include "config/parse.h"
#include "device/driver.h"
#include "util/fileio.h"

#include "golden.h"

#define SEED_DIR PM_SOURCE_DIR "/tests/data/seed"
#define DATA_DIR PM_SOURCE_DIR "/tests/data/config"

static char tmp[64];

static void clear_env(void)
{
	unsetenv("STATE_DIRECTORY");
	unsetenv("RUNTIME_DIRECTORY");
	unsetenv("CREDENTIALS_DIRECTORY");
}

static int setup(void **state)
{
	(void)state;
	strcpy(tmp, "/tmp/pm-test-config-XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	clear_env();
	return 0;
}

static int teardown(void **state)
{
	struct dirent *e;
	DIR *d;

	(void)state;
	clear_env();
	d = opendir(tmp);
	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		char path[512];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmp, e->d_name);
		unlink(path);
	}
	closedir(d);
	return rmdir(tmp);
}

/* Writes tmp/name; returns its path (static buffer rotation of 4). */
static const char *write_file(const char *name, const char *text)
{
	static char paths[4][512];
	static int next;
	char *path = paths[next++ % 4];
	FILE *f;

	snprintf(path, 512, "%s/%s", tmp, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return path;
}

static int load(const char *json, struct pm_config **cfg, char **errors)
{
	return pm_config_load_flags(cfg, write_file("powermeter.json", json), 0, errors);
}

/* Loads text that must be valid. */
static struct pm_config *load_ok(const char *json)
{
	struct pm_config *cfg = NULL;
	char *errors = NULL;
	int r = load(json, &cfg, &errors);

	if (r != 0)
		print_error("unexpected failure %d:\n%s", r, errors ? errors : "");
	free(errors);
	assert_int_equal(r, 0);
	assert_non_null(cfg);
	return cfg;
}

/* Loads text that must be invalid; returns the error text. */
static char *load_bad(const char *json)
{
	struct pm_config *cfg = NULL;
	char *errors = NULL;
	int r = load(json, &cfg, &errors);

	assert_int_equal(r, -PM_ECONFIG);
	assert_null(cfg);
	assert_non_null(errors);
	return errors;
}

static unsigned count_lines(const char *s)
{
	unsigned n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

#define ONE_DEVICE "\"devices\": [{\"id\": 1, \"port\": \"/dev/ttyUSB0\", \"inputs\": [{\"input\": \"a\"}]}]"

/* ---- the seed's file, unchanged ---------------------------------------- */

static void test_seed_sample(void **state)
{
	struct pm_config *cfg = NULL;
	char *errors = NULL;

	(void)state;
	assert_int_equal(pm_config_load_flags(&cfg, SEED_DIR "/powermeter.json",
					0, &errors), 0);
	assert_null(errors);
	assert_string_equal(cfg->path, SEED_DIR "/powermeter.json");
	assert_int_equal(cfg->n_devices, 2);
	assert_int_equal(pm_config_device_count(cfg), 2);
	assert_int_equal(cfg->n_inputs, 32);
	assert_true(cfg->interval == 1.0);
	assert_null(cfg->influx);
	assert_null(cfg->influx_conf);
	for (size_t d = 0; d < 2; d++) {
		const struct pm_device *dev = &cfg->devices[d];

		assert_int_equal(dev->id, (int)d + 1);
		assert_int_equal(pm_config_device_id(cfg, d), (int)d + 1);
		assert_ptr_equal(pm_config_device(cfg, (int)d + 1), dev);
		assert_string_equal(dev->port, d ? "/dev/ttyUSB1" : "/dev/ttyUSB0");
		assert_int_equal(dev->address, 1);
		assert_int_equal(dev->line.baud, 9600);
		assert_int_equal(dev->line.parity, 'N');
		assert_int_equal(dev->line.data_bits, 8);
		assert_int_equal(dev->line.stop_bits, 1);
		assert_true(dev->timeout == 1.0);
		assert_false(dev->frequency);
		assert_ptr_equal(dev->driver, pm_driver_find("hdhk"));
		assert_int_equal(dev->n_inputs, 16);
		for (unsigned k = 0; k < 16; k++) {
			const struct pm_input *in = &dev->inputs[k];
			char name[16];

			snprintf(name, sizeof(name), "Input %c", 'a' + k);
			assert_int_equal(in->channel, k);
			assert_true(in->ratio == 0.01);
			assert_string_equal(in->name, name);
			assert_int_equal(in->id, (int)(d * 16 + k));
		}
	}
	assert_null(pm_config_device(cfg, 3));
	assert_int_equal(pm_config_device_id(cfg, 2), -EINVAL);
	assert_string_equal(cfg->state_dir, "/var/lib/powermeter");
	assert_string_equal(cfg->runtime_dir, "/run/powermeter");
	assert_string_equal(cfg->spool_dir, "/var/lib/powermeter/spool");
	assert_string_equal(cfg->snapshot, "/run/powermeter/values.json");
	assert_int_equal(cfg->spool_max_bytes, 100ull * 1024 * 1024);
	pm_config_free(cfg);
}

static void test_repo_sample(void **state)
{
	struct pm_config *cfg = NULL;
	char *errors = NULL;
	int r;

	(void)state;
	r = pm_config_load_flags(&cfg, PM_SOURCE_DIR "/config/powermeter.json", 0, &errors);
	if (r)
		print_error("%s", errors ? errors : "");
	assert_int_equal(r, 0);
	assert_int_equal(cfg->n_devices, 2);
	assert_int_equal(cfg->n_inputs, 20);
	assert_non_null(cfg->influx);
	assert_int_equal(cfg->influx->api, PM_INFLUX_V1);
	assert_string_equal(cfg->influx->database, "powermeter");
	assert_true(cfg->devices[1].inputs[3].ratio == 0.0245);
	assert_int_equal(cfg->devices[1].inputs[3].channel, 4);
	pm_config_free(cfg);
}

/* The seed's timeout may be fractional, its baudrate a string or number. */
static void test_seed_variants(void **state)
{
	struct pm_config *cfg;

	(void)state;
	cfg = load_ok("[{\"id\": 7, \"port\": \"/dev/ttyUSB0\", \"timeout\": 0.35, "
		      "\"baudrate\": 19200, \"inputs\": [{\"input\": \"b\", \"ratio\": 1}]},"
		      "{\"id\": 0, \"port\": \"/dev/ttyUSB1\", \"baudrate\": \"115200\", "
		      "\"inputs\": [{\"input\": \"a\"}]}]");
	assert_true(cfg->devices[0].timeout == 0.35);
	assert_int_equal(cfg->devices[0].line.baud, 19200);
	assert_true(cfg->devices[0].inputs[0].ratio == 1.0);
	assert_int_equal(cfg->devices[1].id, 0);
	assert_int_equal(cfg->devices[1].line.baud, 115200);
	pm_config_free(cfg);
}

/* ---- the object form --------------------------------------------------- */

static void test_object_form(void **state)
{
	struct pm_config *cfg = NULL;
	const struct pm_device *d;
	char *errors = NULL;
	int r;

	(void)state;
	r = pm_config_load_flags(&cfg, DATA_DIR "/good-shared-bus.json", 0, &errors);
	if (r)
		print_error("%s", errors ? errors : "");
	assert_int_equal(r, 0);
	assert_true(cfg->interval == 0.5);
	assert_int_equal(cfg->n_devices, 3);
	assert_int_equal(cfg->n_inputs, 6);

	d = pm_config_device(cfg, 10);
	assert_non_null(d);
	assert_string_equal(d->port, "/dev/ttyUSBPWR1");
	assert_int_equal(d->address, 1);
	assert_int_equal(d->line.baud, 19200);
	assert_int_equal(d->line.parity, 'E');
	assert_int_equal(d->n_inputs, 3);
	assert_string_equal(d->inputs[2].name, "L3");

	d = pm_config_device(cfg, 11);
	assert_int_equal(d->address, 2);
	assert_int_equal(d->line.baud, 19200);	/* the string "19200" */
	assert_int_equal(d->line.parity, 'E');	/* "e" */
	assert_true(d->timeout == 0.3);
	assert_false(d->frequency);
	/* Out of order, by number and by capital letter. */
	assert_int_equal(d->inputs[0].channel, 15);
	assert_string_equal(d->inputs[0].name, "Pump");
	assert_int_equal(d->inputs[1].channel, 0);
	assert_string_equal(d->inputs[1].name, "Input a");
	assert_true(d->inputs[1].ratio == 0.0245);
	assert_int_equal(d->inputs[0].id, 3);
	assert_int_equal(d->inputs[1].id, 4);

	d = pm_config_device(cfg, 12);
	assert_int_equal(d->line.baud, 115200);
	assert_int_equal(d->line.stop_bits, 2);
	assert_true(d->frequency);
	assert_ptr_equal(d->driver, pm_driver_find(NULL));
	assert_int_equal(d->inputs[0].channel, 15);
	assert_int_equal(d->inputs[0].id, 5);
	pm_config_free(cfg);
}

static void test_defaults(void **state)
{
	struct pm_config *cfg;
	const struct pm_device *d;

	(void)state;
	cfg = load_ok("{" ONE_DEVICE "}");
	d = &cfg->devices[0];
	assert_true(cfg->interval == PM_DEFAULT_INTERVAL);
	assert_int_equal(d->address, 1);
	assert_int_equal(d->line.baud, 9600);
	assert_int_equal(d->line.parity, 'N');
	assert_int_equal(d->line.data_bits, 8);
	assert_int_equal(d->line.stop_bits, 1);
	assert_true(d->timeout == PM_DEFAULT_TIMEOUT);
	assert_false(d->frequency);
	assert_ptr_equal(d->driver, &pm_driver_hdhk);
	assert_true(d->inputs[0].ratio == 0.01);
	assert_string_equal(d->inputs[0].name, "Input a");
	assert_int_equal(d->inputs[0].id, 0);
	assert_null(cfg->influx);
	assert_int_equal(cfg->spool_max_bytes, PM_DEFAULT_SPOOL_MAX);
	pm_config_free(cfg);
}

/* Voltage and power factor resolved input, device, file, default; point
 * tags merged (the input's win) and sorted; energy defaults. */
static void test_circuits(void **state)
{
	struct pm_config *cfg;
	const struct pm_input *in;

	(void)state;
	cfg = load_ok("{\"interval\": 2, \"voltage\": 120, \"tags\": {\"site\": \"dc-prague-1\", \"zone\": \"A\"},"
		      " \"devices\": ["
		      " {\"id\": 1, \"port\": \"/dev/ttyUSB0\", \"power_factor\": 0.9, \"inputs\": ["
		      "  {\"input\": \"a\", \"phase\": \"L2\", \"breaker\": 16, \"voltage\": 400,"
		      "   \"tags\": {\"customer\": \"ACME\", \"zone\": \"B\"}},"
		      "  {\"input\": \"b\", \"power_factor\": 0.8}]},"
		      " {\"id\": 2, \"port\": \"/dev/ttyUSB1\", \"voltage\": 240, \"inputs\": ["
		      "  {\"input\": \"c\"}]}]}");
	in = &cfg->devices[0].inputs[0];
	assert_true(in->voltage == 400 && in->power_factor == 0.9);
	assert_string_equal(in->phase, "L2");
	assert_true(in->breaker == 16);
	assert_int_equal(in->n_point_tags, 4);
	assert_string_equal(in->point_tags[0].key, "customer");
	assert_string_equal(in->point_tags[1].key, "phase");
	assert_string_equal(in->point_tags[1].value, "L2");
	assert_string_equal(in->point_tags[2].key, "site");
	assert_string_equal(in->point_tags[3].key, "zone");
	assert_string_equal(in->point_tags[3].value, "B");
	in = &cfg->devices[0].inputs[1];
	assert_true(in->voltage == 120 && in->power_factor == 0.8);
	assert_null(in->phase);
	assert_true(in->breaker == 0);
	assert_int_equal(in->n_point_tags, 2);	/* site, zone=A */
	assert_string_equal(in->point_tags[1].value, "A");
	in = &cfg->devices[1].inputs[0];
	assert_true(in->voltage == 240 && in->power_factor == 1);
	assert_true(cfg->energy.enabled);
	assert_true(cfg->energy.max_gap == 20);		/* 10 intervals */
	assert_true(cfg->energy.persist_interval == 60);
	pm_config_free(cfg);

	/* the seed's array form takes the same keys per device and input,
	 * and its points carry no tag it did not have */
	cfg = load_ok("[{\"id\": 1, \"port\": \"/dev/ttyUSB0\", \"voltage\": 110, \"inputs\": ["
		      " {\"input\": \"a\", \"power_factor\": 0.5, \"phase\": \"L3\"},"
		      " {\"input\": \"b\"}]}]");
	assert_true(cfg->devices[0].inputs[0].voltage == 110);
	assert_true(cfg->devices[0].inputs[0].power_factor == 0.5);
	assert_int_equal(cfg->devices[0].inputs[0].n_point_tags, 1);
	assert_true(cfg->devices[0].inputs[1].voltage == 110);
	assert_int_equal(cfg->devices[0].inputs[1].n_point_tags, 0);
	assert_true(cfg->voltage == PM_DEFAULT_VOLTAGE);
	pm_config_free(cfg);

	cfg = load_ok("{\"energy\": {\"enabled\": false, \"max_gap\": 2.5, \"persist_interval\": 300},"
		      " \"devices\": [{\"id\": 1, \"port\": \"/dev/ttyUSB0\", \"inputs\": [{\"input\": \"a\"}]}]}");
	assert_false(cfg->energy.enabled);
	assert_true(cfg->energy.max_gap == 2.5);
	assert_true(cfg->energy.persist_interval == 300);
	pm_config_free(cfg);
}

static void test_paths_from_environment(void **state)
{
	struct pm_config *cfg;

	(void)state;
	setenv("STATE_DIRECTORY", "/var/lib/pm-a:/var/lib/pm-b", 1);
	setenv("RUNTIME_DIRECTORY", "/run/pm-x", 1);
	cfg = load_ok("{" ONE_DEVICE "}");
	assert_string_equal(cfg->state_dir, "/var/lib/pm-a");
	assert_string_equal(cfg->runtime_dir, "/run/pm-x");
	assert_string_equal(cfg->spool_dir, "/var/lib/pm-a/spool");
	assert_string_equal(cfg->snapshot, "/run/pm-x/values.json");
	pm_config_free(cfg);

	/* The config wins over the environment. */
	cfg = load_ok("{" ONE_DEVICE ", \"state_directory\": \"/srv/pm\", "
		      "\"runtime_directory\": \"/run/other\", "
		      "\"spool\": {\"max_mb\": 7}}");
	assert_string_equal(cfg->state_dir, "/srv/pm");
	assert_string_equal(cfg->spool_dir, "/srv/pm/spool");
	assert_string_equal(cfg->snapshot, "/run/other/values.json");
	assert_int_equal(cfg->spool_max_bytes, 7ull * 1024 * 1024);
	pm_config_free(cfg);

	cfg = load_ok("{" ONE_DEVICE ", \"snapshot\": \"/tmp/v.json\", "
		      "\"spool\": {\"dir\": \"/data/spool\"}}");
	assert_string_equal(cfg->snapshot, "/tmp/v.json");
	assert_string_equal(cfg->spool_dir, "/data/spool");
	pm_config_free(cfg);
}

/* ---- InfluxDB ---------------------------------------------------------- */

static void test_influx_v1_full(void **state)
{
	struct pm_config *cfg = NULL;
	const struct pm_influx *in;
	char *errors = NULL;

	(void)state;
	assert_int_equal(pm_config_load_flags(&cfg, DATA_DIR "/good-influx-v1.json",
					0, &errors), 0);
	in = cfg->influx;
	assert_int_equal(in->api, PM_INFLUX_V1);
	assert_string_equal(in->url, "http://127.0.0.1:8086");
	assert_string_equal(in->database, "power");
	assert_string_equal(in->retention_policy, "autogen");
	assert_string_equal(in->username, "pm");
	assert_string_equal(in->password, "inline-password");
	assert_null(in->token);
	assert_null(in->org);
	assert_string_equal(in->measurement, "amps");
	assert_false(in->verify_ssl);
	assert_int_equal(in->batch_lines, 100000);
	assert_int_equal(in->batch_bytes, 16 * 1024 * 1024);
	assert_true(in->flush_interval == 0.1);
	assert_true(in->timeout == 300);
	assert_string_equal(cfg->spool_dir, "/var/spool/powermeter");
	assert_int_equal(cfg->spool_max_bytes, 100000ull * 1024 * 1024);
	assert_string_equal(cfg->snapshot, "/run/pm/values.json");
	assert_string_equal(cfg->state_dir, "/var/lib/pm");
	pm_config_free(cfg);
}

static void test_influx_detection(void **state)
{
	struct pm_config *cfg;
	const struct pm_influx *in;

	(void)state;
	/* Only a URL: an open InfluxDB 1.x, database "powermeter". */
	cfg = load_ok("{" ONE_DEVICE ", \"influx\": {\"url\": \"https://db.example.com:8086/\"}}");
	in = cfg->influx;
	assert_int_equal(in->api, PM_INFLUX_V1);
	assert_string_equal(in->url, "https://db.example.com:8086");
	assert_string_equal(in->database, "powermeter");
	assert_string_equal(in->measurement, "powermeter");
	assert_true(in->verify_ssl);
	assert_int_equal(in->batch_lines, 5000);
	assert_int_equal(in->batch_bytes, 1024 * 1024);
	assert_true(in->flush_interval == 1.0);
	assert_true(in->timeout == 10.0);
	assert_null(in->username);
	pm_config_free(cfg);

	cfg = load_ok("{" ONE_DEVICE ", \"influx\": {\"url\": \"http://h:8086\", "
		      "\"org\": \"home\", \"bucket\": \"power\", \"token\": \"tok-123\"}}");
	in = cfg->influx;
	assert_int_equal(in->api, PM_INFLUX_V2);
	assert_string_equal(in->org, "home");
	assert_string_equal(in->bucket, "power");
	assert_string_equal(in->token, "tok-123");
	assert_null(in->database);
	pm_config_free(cfg);

	/* v2 without a token is allowed (VictoriaMetrics, a proxy). */
	cfg = load_ok("{" ONE_DEVICE ", \"influx\": {\"url\": \"http://h:8428\", "
		      "\"org\": \"o\", \"bucket\": \"b\"}}");
	assert_int_equal(cfg->influx->api, PM_INFLUX_V2);
	assert_null(cfg->influx->token);
	pm_config_free(cfg);

	/* A path prefix survives (a reverse proxy). */
	cfg = load_ok("{" ONE_DEVICE ", \"influx\": {\"url\": \"http://h/influx//\", "
		      "\"database\": \"x\"}}");
	assert_string_equal(cfg->influx->url, "http://h/influx");
	pm_config_free(cfg);
}

static void test_influx_mixed_is_error(void **state)
{
	char *errors;

	(void)state;
	errors = load_bad("{" ONE_DEVICE ", \"influx\": {\"url\": \"http://h\", "
			  "\"bucket\": \"b\", \"username\": \"u\"}}");
	assert_non_null(strstr(errors, "influx: \"bucket\" is an InfluxDB v2 setting and \"username\" a v1 setting"));
	assert_int_equal(count_lines(errors), 1);
	free(errors);
}

static void test_token_file(void **state)
{
	struct pm_config *cfg;

	(void)state;
	/* Relative to the config's directory; the newline is dropped. */
	write_file("token", "file-token-42\n");
	cfg = load_ok("{" ONE_DEVICE ", \"influx\": {\"url\": \"http://h\", "
		      "\"org\": \"o\", \"bucket\": \"b\", \"token_file\": \"token\"}}");
	assert_string_equal(cfg->influx->token, "file-token-42");
	pm_config_free(cfg);

	write_file("password", "pw-from-file\r\n");
	cfg = load_ok("{" ONE_DEVICE ", \"influx\": {\"url\": \"http://h\", "
		      "\"username\": \"u\", \"password_file\": \"password\"}}");
	assert_string_equal(cfg->influx->password, "pw-from-file");
	pm_config_free(cfg);
}

static void test_credentials_directory(void **state)
{
	struct pm_config *cfg;

	(void)state;
	write_file("influx-token", "cred-token-77\n");
	write_file("influx-password", "cred-password-88\n");
	setenv("CREDENTIALS_DIRECTORY", tmp, 1);

	cfg = load_ok("{" ONE_DEVICE ", \"influx\": {\"url\": \"http://h\", "
		      "\"org\": \"o\", \"bucket\": \"b\"}}");
	assert_string_equal(cfg->influx->token, "cred-token-77");
	pm_config_free(cfg);

	/* A token in the config wins over the credential. */
	cfg = load_ok("{" ONE_DEVICE ", \"influx\": {\"url\": \"http://h\", "
		      "\"org\": \"o\", \"bucket\": \"b\", \"token\": \"inline\"}}");
	assert_string_equal(cfg->influx->token, "inline");
	pm_config_free(cfg);

	cfg = load_ok("{" ONE_DEVICE ", \"influx\": {\"url\": \"http://h\", "
		      "\"username\": \"u\"}}");
	assert_int_equal(cfg->influx->api, PM_INFLUX_V1);
	assert_string_equal(cfg->influx->password, "cred-password-88");
	pm_config_free(cfg);

	/* Programs that never write to InfluxDB skip the secrets. */
	{
		struct pm_config *c = NULL;
		char *errors = NULL;

		assert_int_equal(pm_config_load_flags(&c,
			write_file("powermeter.json", "{" ONE_DEVICE ", \"influx\": "
				   "{\"url\": \"http://h\", \"org\": \"o\", \"bucket\": \"b\", "
				   "\"token_file\": \"/nonexistent/token\"}}"),
			PM_CONFIG_NO_SECRETS, &errors), 0);
		assert_null(c->influx->token);
		pm_config_free(c);
	}
}

/* No secret ever shows in an error, however it is misplaced. */
static void test_secrets_never_in_errors(void **state)
{
	char *errors;

	(void)state;
	errors = load_bad("{" ONE_DEVICE ", \"influx\": {\"url\": \"http://h\", "
			  "\"token\": \"S3CRET-inline\", \"database\": \"d\", \"timeout\": 0}}");
	assert_null(strstr(errors, "S3CRET"));
	assert_int_equal(count_lines(errors), 2);
	free(errors);

	errors = load_bad("{" ONE_DEVICE ", \"influx\": {\"url\": \"http://h\", "
			  "\"username\": \"u\", \"password\": 987654321}}");
	assert_null(strstr(errors, "987654321"));
	assert_non_null(strstr(errors, "influx.password: expected a string, got a number"));
	free(errors);

	write_file("token", "S3CRET-line-one\nS3CRET-line-two\n");
	errors = load_bad("{" ONE_DEVICE ", \"influx\": {\"url\": \"http://h\", "
			  "\"org\": \"o\", \"bucket\": \"b\", \"token_file\": \"token\"}}");
	assert_null(strstr(errors, "S3CRET"));
	assert_non_null(strstr(errors, "/token must hold the secret on one line"));
	free(errors);

	errors = load_bad("{" ONE_DEVICE ", \"influx\": {\"url\": \"http://u:S3CRET@h\", "
			  "\"database\": \"d\"}}");
	assert_null(strstr(errors, "S3CRET"));
	free(errors);

	write_file("influx.conf", "[influx]\nurl = http://h\ntoken = S3CRET-ic\n"
		   "org = o\nverify_ssl = perhaps\n");
	errors = load_bad("{" ONE_DEVICE ", \"influx\": {\"database\": \"d\"}}");
	assert_null(strstr(errors, "S3CRET"));
	assert_int_equal(count_lines(errors), 2);	/* verify_ssl, mixed */
	free(errors);

	/* An unreadable credential is named, its contents never shown. */
	write_file("influx-token", "");
	setenv("CREDENTIALS_DIRECTORY", tmp, 1);
	unlink(write_file("influx.conf", ""));
	errors = load_bad("{" ONE_DEVICE ", \"influx\": {\"url\": \"http://h\", "
			  "\"org\": \"o\", \"bucket\": \"b\"}}");
	assert_non_null(strstr(errors, "/influx-token: is empty (credential influx-token)"));
	free(errors);
}

/* ---- the seed's influx.conf -------------------------------------------- */

static void test_influxconf_seed(void **state)
{
	struct pm_config *cfg = NULL;
	const struct pm_influx *in;
	char *errors = NULL;

	(void)state;
	assert_int_equal(pm_config_load_flags(&cfg, DATA_DIR "/good-influxconf/powermeter.json",
					0, &errors), 0);
	in = cfg->influx;
	assert_non_null(in);
	assert_string_equal(cfg->influx_conf, DATA_DIR "/good-influxconf/influx.conf");
	assert_int_equal(in->api, PM_INFLUX_V2);
	assert_string_equal(in->url, "https://influx.example.com");
	assert_false(in->verify_ssl);
	assert_string_equal(in->token, "your_influx_api_token_here");
	assert_string_equal(in->org, "Default");
	assert_string_equal(in->bucket, "powermeter");
	assert_string_equal(in->measurement, "powermeter");
	assert_true(cfg->interval == 1.0);
	assert_int_equal(cfg->n_inputs, 32);
	pm_config_free(cfg);
}

static void test_influxconf_json_wins(void **state)
{
	struct pm_config *cfg = NULL;
	const struct pm_influx *in;
	char *errors = NULL;

	(void)state;
	assert_int_equal(pm_config_load_flags(&cfg, DATA_DIR "/good-influxconf-json-wins/powermeter.json",
					0, &errors), 0);
	in = cfg->influx;
	assert_string_equal(in->url, "http://127.0.0.1:8086");	/* JSON */
	assert_string_equal(in->bucket, "circuits");		/* JSON */
	assert_true(in->verify_ssl);				/* JSON */
	assert_int_equal(in->batch_lines, 100);			/* JSON */
	assert_string_equal(in->token, "seed-token");		/* influx.conf */
	assert_string_equal(in->org, "Default");		/* influx.conf */
	assert_string_equal(in->measurement, "power");		/* "key : value" */
	assert_true(cfg->interval == 5.0);			/* JSON */
	pm_config_free(cfg);
}

static void test_influxconf_alone(void **state)
{
	struct pm_config *cfg;

	(void)state;
	/* The seed's defaults for what it leaves out; its interval applies. */
	write_file("influx.conf", "# comment\n; another\n\n[influx]\n"
		   "  URL   =   http://10.0.0.5:8086  \ntoken=t\norg = o\n"
		   "interval = 2.5\n");
	cfg = load_ok("[{\"id\": 1, \"port\": \"/dev/ttyUSB0\", \"inputs\": [{\"input\": \"a\"}]}]");
	assert_int_equal(cfg->influx->api, PM_INFLUX_V2);
	assert_string_equal(cfg->influx->url, "http://10.0.0.5:8086");
	assert_string_equal(cfg->influx->bucket, "powermeter");
	assert_false(cfg->influx->verify_ssl);
	assert_string_equal(cfg->influx->measurement, "powermeter");
	assert_true(cfg->interval == 2.5);
	pm_config_free(cfg);

	/* configparser's booleans. */
	write_file("influx.conf", "[influx]\nurl = http://h\norg = o\nverify_ssl = on\n");
	cfg = load_ok("[{\"id\": 1, \"port\": \"/dev/ttyUSB0\", \"inputs\": [{\"input\": \"a\"}]}]");
	assert_true(cfg->influx->verify_ssl);
	pm_config_free(cfg);
	write_file("influx.conf", "[influx]\nurl = http://h\norg = o\nverify_ssl = 0\n");
	cfg = load_ok("[{\"id\": 1, \"port\": \"/dev/ttyUSB0\", \"inputs\": [{\"input\": \"a\"}]}]");
	assert_false(cfg->influx->verify_ssl);
	pm_config_free(cfg);
}

/* ---- errors -------------------------------------------------------------- */

static void test_missing_file(void **state)
{
	struct pm_config *cfg = (struct pm_config *)0x1;
	char *errors = (char *)0x1;

	(void)state;
	assert_int_equal(pm_config_load_flags(&cfg, "/nonexistent/powermeter.json", 0, &errors),
			 -ENOENT);
	assert_ptr_equal(cfg, (struct pm_config *)0x1);	/* untouched */
	assert_ptr_equal(errors, (char *)0x1);
	assert_int_equal(pm_config_load_flags(&cfg, tmp, 0, &errors), -EISDIR);
	assert_ptr_equal(cfg, (struct pm_config *)0x1);
}

static void test_all_errors_reported(void **state)
{
	char *errors;

	(void)state;
	/* Problems in every part of the file, all reported. */
	errors = load_bad("{\"interval\": 0,\n \"devices\": [\n"
			  " {\"id\": 1, \"port\": \"/dev/ttyUSB0\", \"baudrate\": 14400, "
			  "\"inputs\": [{\"input\": \"z\"}, {\"input\": \"a\", \"ratio\": \"x\"}]},\n"
			  " {\"id\": 1, \"port\": \"/dev/ttyUSB0\", \"inputs\": [{\"input\": \"a\"}]}],\n"
			  " \"influx\": {\"url\": \"udp://h\"},\n \"spool\": {\"max_mb\": -1}}");
	assert_int_equal(count_lines(errors), 8);
	assert_non_null(strstr(errors, ": interval: 0 is out of range (0.1..3600 seconds)\n"));
	assert_non_null(strstr(errors, ": devices[0].baudrate: 14400 is not a baud rate"));
	assert_non_null(strstr(errors, ": devices[0].inputs[0].input: \"z\" is not a channel (a..p or 1..16)\n"));
	assert_non_null(strstr(errors, ": devices[0].inputs[1].ratio: expected a number, got \"x\"\n"));
	assert_non_null(strstr(errors, ": devices[1].id: 1 is already the id of the device at devices[0]\n"));
	assert_non_null(strstr(errors, ": devices[1].address: 1 is already used by device 1 on /dev/ttyUSB0 (the default"));
	assert_non_null(strstr(errors, ": influx.url: expected a URL starting with http:// or https://"));
	assert_non_null(strstr(errors, ": spool.max_mb: -1 is out of range (1..100000)\n"));
	free(errors);
}

static void test_error_text_capped(void **state)
{
	struct pm_errlist e;
	char *text;

	(void)state;
	pm_errlist_init(&e);
	for (int i = 0; i < 5000; i++)
		pm_errlist_add(&e, "file: devices[%d].baudrate: 14400 is not a baud rate the module supports", i);
	assert_int_equal(e.count, 5000);
	assert_true(e.omitted > 0);
	text = pm_errlist_take(&e);
	assert_true(strlen(text) < 40 * 1024);
	assert_non_null(strstr(text, "more errors not shown)\n"));
	assert_non_null(strstr(text, "file: devices[0].baudrate"));
	free(text);
	pm_errlist_free(&e);
}

static void test_file_too_large(void **state)
{
	struct pm_config *cfg = NULL;
	char *errors = NULL, path[512];
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/huge.json", tmp);
	f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < 5 * 1024; i++)
		fprintf(f, "%1023s\n", "");
	fclose(f);
	assert_int_equal(pm_config_load_flags(&cfg, path, 0, &errors), -PM_ECONFIG);
	assert_non_null(strstr(errors, "huge.json: larger than 4 MiB"));
	free(errors);
}

/* A long key is cut before a character, never inside one. */
static void test_show_key_cut(void **state)
{
	char key[200], buf[DESC_CAP];

	(void)state;
	memset(buf, 'x', sizeof(buf));
	memset(key, 'k', sizeof(key));
	/* "é" (2 bytes) straddling the cut at DESC_CAP - 4 */
	key[DESC_CAP - 5] = (char)0xc3;
	key[DESC_CAP - 4] = (char)0xa9;
	key[sizeof(key) - 1] = '\0';
	cfg_show_key(key, buf);
	assert_int_equal(strlen(buf), DESC_CAP - 5 + 3);
	assert_string_equal(buf + DESC_CAP - 5, "...");
	/* short keys as they are, control characters as '?' */
	assert_string_equal(cfg_show_key("a\tb", buf), "a?b");
}

static void test_suggest(void **state)
{
	static const char *const keys[] = { "id", "port", "address", "baudrate",
					    "stopbits", "inputs", NULL };

	(void)state;
	assert_string_equal(pm_config_suggest("baud", keys), "baudrate");
	assert_string_equal(pm_config_suggest("Baudrate", keys), "baudrate");
	assert_string_equal(pm_config_suggest("adress", keys), "address");
	assert_string_equal(pm_config_suggest("stop_bits", keys), "stopbits");
	assert_string_equal(pm_config_suggest("prot", keys), "port");
	assert_string_equal(pm_config_suggest("slave", keys), "address");
	assert_null(pm_config_suggest("colour", keys));
	assert_null(pm_config_suggest("x", keys));
	assert_null(pm_config_suggest("", keys));
}

static void test_influxconf_parser(void **state)
{
	struct pm_influxconf ic;
	struct pm_errlist e;
	char *text;

	(void)state;
	pm_errlist_init(&e);
	assert_int_equal(pm_influxconf_load(&ic, "/nonexistent/influx.conf", &e), -ENOENT);
	assert_int_equal(pm_influxconf_load(&ic, SEED_DIR "/influx-v2.conf", &e), 0);
	assert_int_equal(e.count, 0);
	assert_string_equal(ic.value[PM_IC_URL], "https://influx.example.com");
	assert_int_equal(ic.line[PM_IC_URL], 7);
	assert_false(ic.verify_ssl);
	assert_true(ic.interval == 1.0);
	pm_influxconf_free(&ic);

	write_file("influx.conf", "[influx]\ntoken = S3CRET\ntoken = S3CRET2\n");
	assert_int_equal(pm_influxconf_load(&ic, write_file("influx.conf",
		"[influx]\ntoken = S3CRET\ntoken = S3CRET2\n"), &e), -PM_ECONFIG);
	pm_influxconf_free(&ic);
	text = pm_errlist_take(&e);
	assert_non_null(strstr(text, "influx.conf:3: token given twice (first on line 2)\n"));
	assert_null(strstr(text, "S3CRET"));
	free(text);
	pm_errlist_free(&e);

	text = pm_influxconf_path_beside("/etc/powermeter/powermeter.json");
	assert_string_equal(text, "/etc/powermeter/influx.conf");
	free(text);
	text = pm_influxconf_path_beside("powermeter.json");
	assert_string_equal(text, "influx.conf");
	free(text);
}

/* ---- the goldens ----------------------------------------------------------- */

static int load_config(const char *path, char **errors)
{
	struct pm_config *cfg = NULL;
	int r = pm_config_load_flags(&cfg, path, 0, errors);

	if (r == 0)
		pm_config_free(cfg);
	return r;
}

static void test_golden_bad(void **state)
{
	static char names[200][GOLDEN_NAME_MAX];
	size_t n = golden_list(DATA_DIR, "bad-", true, names, 200);
	unsigned failed = 0;

	(void)state;
	assert_true(n >= 30);
	for (size_t i = 0; i < n; i++) {
		char json[1024], expected_path[1024], dir[512];
		size_t len = strlen(names[i]);

		if (len > 5 && !strcmp(names[i] + len - 5, ".json")) {
			snprintf(dir, sizeof(dir), "%s", DATA_DIR);
			snprintf(json, sizeof(json), "%s/%s", DATA_DIR, names[i]);
			snprintf(expected_path, sizeof(expected_path), "%s/%.*s.expected",
				 DATA_DIR, (int)(len - 5), names[i]);
		} else {
			snprintf(dir, sizeof(dir), "%s/%s", DATA_DIR, names[i]);
			snprintf(json, sizeof(json), "%s/powermeter.json", dir);
			snprintf(expected_path, sizeof(expected_path), "%s/expected", dir);
		}
		if (!golden_bad_case(load_config, names[i], json, expected_path,
				     dir))
			failed++;
	}
	assert_int_equal(failed, 0);
}

static void test_golden_good(void **state)
{
	static char names[64][GOLDEN_NAME_MAX];
	size_t n = golden_list(DATA_DIR, "good-", true, names, 64);
	unsigned failed = 0;

	(void)state;
	assert_true(n >= 4);
	for (size_t i = 0; i < n; i++) {
		struct pm_config *cfg = NULL;
		char json[512], *errors = NULL;
		size_t len = strlen(names[i]);
		int r;

		if (len > 5 && !strcmp(names[i] + len - 5, ".json"))
			snprintf(json, sizeof(json), "%s/%s", DATA_DIR, names[i]);
		else
			snprintf(json, sizeof(json), "%s/%s/powermeter.json", DATA_DIR,
				 names[i]);
		r = pm_config_load_flags(&cfg, json, 0, &errors);
		if (r) {
			print_error("%s: %d\n%s", names[i], r, errors ? errors : "");
			failed++;
		}
		pm_config_free(cfg);
		free(errors);
	}
	assert_int_equal(failed, 0);
}

/* The public loader leaves the InfluxDB secrets alone: a user who may not
 * read them (the Zabbix agent's, an integrator's script) still reads modules,
 * while the daemon's loader insists on them. */
static void test_public_load_skips_secrets(void **state)
{
	const char *json = "{\"influx\": {\"url\": \"http://127.0.0.1:1\", "
		"\"org\": \"o\", \"bucket\": \"b\", "
		"\"token_file\": \"/nonexistent/influx-token\"}, "
		"\"devices\": [{\"id\": 1, \"port\": \"/dev/ttyUSB0\", "
		"\"inputs\": [{\"input\": \"a\"}]}]}";
	const char *path = write_file("powermeter.json", json);
	struct pm_config *cfg = NULL;
	char *errors = NULL;

	(void)state;
	assert_int_equal(pm_config_load(&cfg, path, &errors), 0);
	assert_non_null(cfg->influx);
	assert_null(cfg->influx->token);
	pm_config_free(cfg);
	cfg = NULL;
	assert_int_equal(pm_config_load_flags(&cfg, path, 0, &errors), -PM_ECONFIG);
	assert_null(cfg);
	assert_non_null(strstr(errors, "influx-token"));
	free(errors);
}

/* "ca_file" is resolved against the config's directory and read by the
 * loaders that write to InfluxDB (a PEM certificate, or an error naming the
 * file and the key); the public loader keeps the path unread. */
static void test_influx_ca_file(void **state)
{
	const char *missing = "{" ONE_DEVICE ", \"influx\": {\"url\": \"https://h\", "
		"\"ca_file\": \"/nonexistent/ca.pem\"}}";
	struct pm_config *cfg = NULL;
	char *errors = NULL, want[600];
	const char *path;

	(void)state;
	write_file("ca.pem", "# the site's CA\n-----BEGIN CERTIFICATE-----\n"
		   "MIIB\n-----END CERTIFICATE-----\n");
	cfg = load_ok("{" ONE_DEVICE ", \"influx\": {\"url\": \"https://h\", "
		      "\"ca_file\": \"ca.pem\"}}");
	snprintf(want, sizeof(want), "%s/ca.pem", tmp);
	assert_string_equal(cfg->influx->ca_file, want);
	assert_true(cfg->influx->verify_ssl);
	pm_config_free(cfg);

	cfg = load_ok("{" ONE_DEVICE ", \"influx\": {\"url\": \"https://h\"}}");
	assert_null(cfg->influx->ca_file);
	pm_config_free(cfg);

	/* a key, not a certificate: caught here, not at every connection */
	write_file("key.pem", "-----BEGIN PRIVATE KEY-----\nMIGH\n"
		   "-----END PRIVATE KEY-----\n");
	errors = load_bad("{" ONE_DEVICE ", \"influx\": {\"url\": \"https://h\", "
			  "\"ca_file\": \"key.pem\"}}");
	snprintf(want, sizeof(want), "%s/powermeter.json: influx.ca_file: "
		 "%s/key.pem holds no PEM certificate", tmp, tmp);
	assert_non_null(strstr(errors, want));
	assert_int_equal(count_lines(errors), 1);
	free(errors);

	path = write_file("powermeter.json", missing);
	cfg = NULL;
	errors = NULL;
	assert_int_equal(pm_config_load_flags(&cfg, path, 0, &errors), -PM_ECONFIG);
	assert_null(cfg);
	assert_non_null(strstr(errors, "influx.ca_file: cannot read "
			       "/nonexistent/ca.pem: No such file or directory"));
	free(errors);
	errors = NULL;
	assert_int_equal(pm_config_load_flags(&cfg, path, PM_CONFIG_NO_SECRETS,
					      &errors), 0);
	assert_string_equal(cfg->influx->ca_file, "/nonexistent/ca.pem");
	pm_config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_seed_sample),
		T(test_repo_sample),
		T(test_seed_variants),
		T(test_object_form),
		T(test_defaults),
		T(test_paths_from_environment),
		T(test_influx_v1_full),
		T(test_influx_detection),
		T(test_influx_mixed_is_error),
		T(test_token_file),
		T(test_credentials_directory),
		T(test_secrets_never_in_errors),
		T(test_influxconf_seed),
		T(test_influxconf_json_wins),
		T(test_influxconf_alone),
		T(test_missing_file),
		T(test_all_errors_reported),
		T(test_error_text_capped),
		T(test_file_too_large),
		T(test_show_key_cut),
		T(test_circuits),
		T(test_suggest),
		T(test_influxconf_parser),
		T(test_golden_bad),
		T(test_golden_good),
		T(test_public_load_skips_secrets),
		T(test_influx_ca_file),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
