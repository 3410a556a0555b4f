/* portlock.c — one owner per serial port: flock(2) on the tty node plus
 * TIOCEXCL, and finding who holds a port in /proc/locks. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "bus/portlock.h"

#define PROC_LOCKS "/proc/locks"

int pm_portlock_acquire(const char *path, int *lock_fd, pid_t *holder)
{
	int fd, err;

	if (holder)
		*holder = 0;
	/* O_NONBLOCK: a modem-control line must not make open() wait for
	 * carrier; the fd is only for the lock. */
	fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		err = -errno;
		/* An unprivileged open() of a tty in TIOCEXCL mode fails with
		 * EBUSY before we get to flock(). */
		if (err == -EBUSY && holder)
			*holder = pm_portlock_holder(path);
		return err;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		err = -errno;
		if (err == -EWOULDBLOCK) {
			err = -EBUSY;
			if (holder)
				*holder = pm_portlock_holder(path);
		}
		close(fd);
		return err;
	}
	*lock_fd = fd;
	return 0;
}

int pm_portlock_exclusive(int tty_fd)
{
	if (ioctl(tty_fd, TIOCEXCL) < 0)
		return -errno;
	return 0;
}

int pm_portlock_shared(int tty_fd)
{
	if (ioctl(tty_fd, TIOCNXCL) < 0)
		return -errno;
	return 0;
}

/* A /proc/locks line: "1: FLOCK  ADVISORY  WRITE 1234 00:05:87 0 EOF";
 * a waiter's line has "->" after the number. The device is that of the
 * file system holding the inode (major:minor in hex), not the tty's rdev. */
static pid_t locks_line_pid(const char *line, unsigned major_, unsigned minor_,
			    unsigned long ino)
{
	char type[16], mode[16], access[16];
	unsigned maj, min;
	unsigned long i;
	long pid;

	if (strstr(line, "->"))
		return 0;
	if (sscanf(line, "%*d: %15s %15s %15s %ld %x:%x:%lu", type, mode,
		   access, &pid, &maj, &min, &i) != 7)
		return 0;
	if (maj != major_ || min != minor_ || i != ino || pid <= 0)
		return 0;
	return (pid_t)pid;
}

pid_t pm_portlock_holder(const char *path)
{
	char line[256];
	struct stat st;
	pid_t pid = 0;
	FILE *f;

	if (stat(path, &st) < 0)
		return 0;
	f = fopen(PROC_LOCKS, "re");
	if (!f)
		return 0;
	while (!pid && fgets(line, sizeof(line), f))
		pid = locks_line_pid(line, major(st.st_dev), minor(st.st_dev),
				     (unsigned long)st.st_ino);
	fclose(f);
	return pid;
}

void pm_portlock_release(int lock_fd)
{
	if (lock_fd < 0)
		return;
	(void)flock(lock_fd, LOCK_UN);
	close(lock_fd);
}
