/* secret.c — secrets from files and systemd credentials, and CA bundles,
 * for every section that connects somewhere (secret.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/secret.h"
#include "util/fileio.h"

#define SECRET_MAX (64 * 1024)
#define CA_FILE_MAX (8 * 1024 * 1024)	/* Debian's whole CA store is ~0.2 MiB */

char *cfg_config_relative(struct parse *p, const char *file)
{
	char *path;

	if (file[0] == '/' || !p->dir[0])
		return cfg_strdup(p, file);
	if (asprintf(&path, "%s/%s", p->dir, file) < 0) {
		p->nomem = true;
		return NULL;
	}
	return path;
}

static char *credential_path(const char *name)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char *path;

	if (!dir || !*dir)
		return NULL;
	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return NULL;
	return path;
}

bool cfg_credential_exists(const char *name)
{
	char *path = credential_path(name);
	bool r = path && access(path, F_OK) == 0;

	free(path);
	return r;
}

/* Reads a secret: one line, trailing newline dropped. 0, or an error with
 * *why describing it (never the contents), or -errno with *why NULL. */
static int read_secret(const char *file, char **out, const char **why)
{
	char *data = NULL;
	size_t len;
	int r;

	*why = NULL;
	r = pm_read_file_capped(file, SECRET_MAX, &data, &len);
	if (r == -PM_ETOOBIG)
		*why = "is larger than 64 KiB, not a secret";
	if (r < 0)
		return r;
	while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		data[--len] = '\0';
	if (!len)
		*why = "is empty";
	else if (strlen(data) != len || cfg_has_control(data))
		*why = "must hold the secret on one line, without control characters";
	if (*why) {
		explicit_bzero(data, len);
		free(data);
		return -EINVAL;
	}
	*out = data;
	return 0;
}

int cfg_secret_file(struct parse *p, const char *file, char **out, char *msg,
		    size_t n)
{
	char *path = cfg_config_relative(p, file);
	const char *why;
	int r;

	if (!path)
		return -ENOMEM;
	r = read_secret(path, out, &why);
	if (r < 0 && why)
		(void)snprintf(msg, n, "%s %s", path, why);
	else if (r < 0)
		(void)snprintf(msg, n, "cannot read %s: %s", path,
			       pm_strerror(r));
	free(path);
	return r;
}

void cfg_secret_credential(struct parse *p, const char *name, char **out)
{
	char *path = credential_path(name);
	const char *why;
	int r;

	if (!path) {
		p->nomem = true;
		return;
	}
	r = read_secret(path, out, &why);
	if (r < 0 && why)
		pm_errlist_add(p->errs, "%s: %s (credential %s)", path, why, name);
	else if (r < 0)
		pm_errlist_add(p->errs, "%s: cannot read credential %s: %s", path,
			       name, pm_strerror(r));
	free(path);
}

/* Read here, so a wrong path is a config error at start rather than a
 * failed connection at every attempt. Not a secret, but only the programs
 * that connect use it: with PM_CONFIG_NO_SECRETS (read, json, zabbix) it
 * is kept unread, like the secret files. */
int cfg_ca_file(struct parse *p, const char *file, char **resolved, char *msg,
		size_t n)
{
	char *data = NULL;
	size_t len;
	int r;

	*resolved = cfg_config_relative(p, file);
	if (!*resolved)
		return -ENOMEM;
	if (p->flags & PM_CONFIG_NO_SECRETS)
		return 0;
	r = pm_read_file_capped(*resolved, CA_FILE_MAX, &data, &len);
	if (r == -PM_ETOOBIG)
		(void)snprintf(msg, n, "%s is larger than 8 MiB, not a CA bundle",
			       *resolved);
	else if (r < 0)
		(void)snprintf(msg, n, "cannot read %s: %s", *resolved,
			       pm_strerror(r));
	/* OpenSSL (libcurl's and libmosquitto's) loads PEM only; a DER file
	 * (.cer, .der) would fail every connection. */
	else if (!strstr(data, "-----BEGIN CERTIFICATE-----") &&
		 !strstr(data, "-----BEGIN TRUSTED CERTIFICATE-----")) {
		(void)snprintf(msg, n, "%s holds no PEM certificate (-----BEGIN CERTIFICATE-----); convert a DER file with: openssl x509 -inform der -in FILE -out FILE.pem",
			       *resolved);
		r = -EINVAL;
	}
	free(data);
	return r;
}
