/* strerror.c — error codes into text: pm_strerror() for errno and the
 * library's PM_E* codes. */
#include <errno.h>
#include <string.h>

#include <powermeter/powermeter.h>

const char *pm_strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return "success";
	case PM_ECONFIG:
		return "invalid configuration";
	case PM_ECRC:
		return "CRC error in the answer";
	case PM_EFRAME:
		return "malformed or short answer";
	case PM_EUNIT:
		return "answer from another Modbus unit";
	case PM_EEXCEPTION:
		return "Modbus exception";
	case PM_ESTALE:
		return "the daemon's snapshot is stale";
	case PM_ENOSNAPSHOT:
		return "no daemon snapshot";
	case PM_ETOOBIG:
		return "too large";
	case PM_ENOTREG:
		return "not a regular file";
	default:
		/* glibc's strerror() returns a static table entry for every
		 * known errno, "Unknown error N" in a thread-local buffer */
		return strerror(err);
	}
}
