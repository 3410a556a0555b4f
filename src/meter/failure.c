/* failure.c — the sentence an electrician needs when a module cannot be
 * read: which device, which port and address, and what to check — on a
 * serial converter or behind an Ethernet gateway. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <powermeter/powermeter.h>

#include "bus/netconn.h"
#include "bus/bus.h"
#include "meter/failure.h"
#include "util/numfmt.h"

/* Modbus application protocol v1.1b3, 7: exception codes. */
static const char *modbus_exception_text(int code)
{
	switch (code) {
	case 1:
		return "illegal function";
	case 2:
		return "illegal data address";
	case 3:
		return "illegal data value";
	case 4:
		return "server device failure";
	case 5:
		return "acknowledge";
	case 6:
		return "server device busy";
	case 8:
		return "memory parity error";
	case 10:
		return "gateway path unavailable";
	case 11:
		return "gateway target device failed to respond";
	default:
		return "unknown exception";
	}
}

/* The sentence for a module behind a gateway (dev->port a URL), or -1
 * when the serial one fits as well. 'gw' is "gateway 10.0.0.5:502". */
static int describe_gateway(char *buf, size_t size, const char *who,
			    const char *gw, const char *timeout, int err)
{
	switch (err) {
	case -ETIMEDOUT:
		return snprintf(buf, size, "%sno answer within %s s through %s "
				"(timeout) \u2014 is the gateway reachable? Behind "
				"it: wiring A/B, 12 V supply, address, and the "
				"baud rate set in the gateway", who, timeout, gw);
	case -ECONNREFUSED:
		return snprintf(buf, size, "%sconnection refused by %s: is the "
				"gateway powered and is its TCP server enabled "
				"on that port?", who, gw);
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -EHOSTDOWN:
	case -ENETDOWN:
		return snprintf(buf, size, "%s%s cannot be reached (%s) \u2014 "
				"is it powered and on this network?", who, gw,
				pm_strerror(err));
	case -ENOENT:
		return snprintf(buf, size, "%sthe host of %s is not known "
				"(name lookup failed) \u2014 check the name in "
				"\"port\" or give the gateway's address", who, gw);
	case -EAGAIN:
		return snprintf(buf, size, "%sthe host of %s could not be "
				"looked up now (DNS not answering?)", who, gw);
	case -EACCES:
	case -EPERM:
		return snprintf(buf, size, "%spermission denied connecting to "
				"%s (%s) \u2014 a firewall rule?", who, gw,
				pm_strerror(err));
	case -EIO:
	case -ENODEV:
	case -ENXIO:
		return snprintf(buf, size, "%sthe connection to %s failed "
				"(closed, reset, or silent for %d requests) "
				"\u2014 was the gateway restarted or the network "
				"interrupted?", who, gw, PM_NET_SILENT_REQUESTS_MAX);
	default:
		return -1;
	}
}

int pm_describe_failure(char *buf, size_t size, const struct pm_device *dev,
			int err, const struct pm_bus_fault *fault)
{
	char timeout[PM_DOUBLE_LEN], who[300], gw[PM_NET_HOST_MAX + 32];
	struct pm_net_endpoint ep;
	pid_t holder;
	int n;

	if (err > 0)
		err = -err;
	/* A module given on the command line has no config id (id < 0). */
	if (dev->id >= 0)
		snprintf(who, sizeof(who), "device %d on %s address %d: ",
			 dev->id, dev->port, dev->address);
	else
		snprintf(who, sizeof(who), "%s address %d: ", dev->port,
			 dev->address);
	(void)pm_fmt_double(timeout, dev->timeout);
	if (pm_net_is_url(dev->port) &&
	    pm_net_parse(dev->port, &ep, NULL, 0) == 0) {
		n = (int)strlen(strcpy(gw, "gateway "));
		(void)pm_net_hostport(&ep, gw + n, sizeof(gw) - (size_t)n);
		n = describe_gateway(buf, size, who, gw, timeout, err);
		if (n >= 0)
			return n;
	}
	switch (err) {
	case -ETIMEDOUT:
		return snprintf(buf, size, "%sno answer within %s s (timeout) "
				"\u2014 check wiring A/B, 12 V supply, address "
				"and baud rate", who, timeout);
	case -PM_ECRC:
		return snprintf(buf, size, "%sanswer failed CRC check (noise on "
				"the RS-485 line? termination, cable length)",
				who);
	case -PM_EFRAME:
		return snprintf(buf, size, "%sshort or malformed answer (noise "
				"on the RS-485 line? termination, cable length, "
				"two modules answering at once?)", who);
	case -PM_EUNIT:
		if (fault && fault->from_address)
			return snprintf(buf, size, "%sanswer came from address "
					"%d, not %d \u2014 two modules share an "
					"address?", who, fault->from_address,
					dev->address);
		return snprintf(buf, size, "%sanswer came from another address "
				"\u2014 two modules share an address?", who);
	case -PM_EEXCEPTION:
		if (fault && fault->exception)
			return snprintf(buf, size, "%smodule answered Modbus "
					"exception %d (%s)", who,
					fault->exception,
					modbus_exception_text(fault->exception));
		return snprintf(buf, size, "%smodule answered a Modbus "
				"exception", who);
	case -ENOENT:
		return snprintf(buf, size, "%sport %s does not exist \u2014 is "
				"the USB\u2013RS-485 converter plugged in?", who,
				dev->port);
	case -EACCES:
	case -EPERM:
		return snprintf(buf, size, "%spermission denied on %s \u2014 add "
				"the user to group dialout", who, dev->port);
	case -EBUSY:
		holder = fault && fault->holder ? fault->holder
						: pm_bus_holder(dev->port);
		if (holder > 0)
			return snprintf(buf, size, "%sport %s busy (held by pid "
					"%ld)", who, dev->port, (long)holder);
		return snprintf(buf, size, "%sport %s busy (held by another "
				"process)", who, dev->port);
	case -EIO:
	case -ENODEV:
	case -ENXIO:
		return snprintf(buf, size, "%sthe port failed (%s) \u2014 was the "
				"converter unplugged?", who, pm_strerror(err));
	case -ENOTTY:
		return snprintf(buf, size, "%s%s is not a serial port", who,
				dev->port);
	default:
		return snprintf(buf, size, "%s%s", who, pm_strerror(err));
	}
}
