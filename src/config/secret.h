/* secret.h — the files a section reads besides the config itself: secrets
 * (one line, from a file or a systemd credential) and CA bundles, for
 * "influx" and "mqtt" alike (secret.c). Messages never hold a secret. */
#ifndef PM_CONFIG_SECRET_H
#define PM_CONFIG_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#include "config/parse.h"

#define CFG_MSG_CAP 4200	/* a message naming a file (PATH_MAX + text) */

/* 'file' resolved against the config's directory (an absolute name is
 * kept), malloc'd; NULL and p->nomem on ENOMEM. */
char *cfg_config_relative(struct parse *p, const char *file);

/* $CREDENTIALS_DIRECTORY/name exists (systemd's LoadCredential=). */
bool cfg_credential_exists(const char *name);

/* Reads the secret in 'file' (resolved against the config's directory):
 * one line, its newline dropped. 0 with *out malloc'd, or a negative error
 * with what went wrong in msg ("FILE is empty", "cannot read FILE: ...");
 * the caller reports msg at its JSON path. */
int cfg_secret_file(struct parse *p, const char *file, char **out, char *msg,
		    size_t n);

/* The secret in credential 'name' into *out; errors are reported (they
 * name the credential's file, not a JSON path). */
void cfg_secret_credential(struct parse *p, const char *name, char **out);

/* "ca_file": resolves 'file' into *resolved and, unless the load leaves
 * secrets unread (PM_CONFIG_NO_SECRETS), checks it is a PEM bundle. 0, or a
 * negative error with msg as for cfg_secret_file. */
int cfg_ca_file(struct parse *p, const char *file, char **resolved, char *msg,
		size_t n);

#endif
