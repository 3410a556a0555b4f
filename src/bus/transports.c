/* transports.c — the registry of transports: one line per kind of
 * endpoint, tried in order. */
#include <stddef.h>

#include "bus/netconn.h"
#include "bus/transport.h"

const struct pm_transport_ops *const pm_transports[] = {
	&pm_transport_tcp,	/* tcp://HOST[:PORT] */
	&pm_transport_rtu_tcp,	/* rtu+tcp://HOST:PORT */
	&pm_transport_serial,	/* a tty path: the catch-all, last */
	NULL,
};

const struct pm_transport_ops *pm_transport_find(const char *endpoint)
{
	if (!endpoint || !*endpoint)
		return NULL;
	for (size_t i = 0; pm_transports[i]; i++)
		if (pm_transports[i]->handles(endpoint))
			return pm_transports[i];
	return NULL;
}
