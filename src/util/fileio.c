/* fileio.c — whole-file and whole-buffer I/O on file descriptors: the loops
 * around read(2) and write(2) that short counts and EINTR call for. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <powermeter/powermeter.h>

#include "util/buf.h"
#include "util/fileio.h"

int pm_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Only a regular file is read: a FIFO would block the reader (a daemon
 * whose signals wait for it), a device like /dev/zero never ends, and
 * opening some devices has effects of its own. stat() keeps most of them
 * from being opened at all; O_NONBLOCK keeps one put there in the meantime
 * from blocking the open, and fstat() on what was opened decides. */
static int regular_or_error(const struct stat *st)
{
	if (S_ISREG(st->st_mode))
		return 0;
	return S_ISDIR(st->st_mode) ? -EISDIR : -PM_ENOTREG;
}

int pm_read_file_capped(const char *path, size_t cap, char **data,
			size_t *len)
{
	struct pm_buf b;
	char chunk[8192];
	struct stat st;
	int fd, r = 0;

	if (stat(path, &st) < 0)
		return -errno;
	r = regular_or_error(&st);
	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else
		r = regular_or_error(&st);
	if (r < 0) {
		(void)close(fd);
		return r;
	}
	pm_buf_init(&b, cap);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		r = pm_buf_add(&b, chunk, (size_t)n);
		if (r < 0)
			break;
	}
	(void)close(fd);
	if (r < 0) {
		pm_buf_free(&b);
		return r;
	}
	*data = pm_buf_take(&b, len);
	return *data ? 0 : -ENOMEM;
}
