/* fileio.c — whole-file and whole-buffer I/O on file descriptors: the loops
 * around read(2) and write(2) that short counts and EINTR call for. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

int pm_read_file_capped(const char *path, size_t cap, char **data,
			size_t *len)
{
	struct pm_buf b;
	char chunk[8192];
	struct stat st;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		(void)close(fd);
		return r;
	}
	if (S_ISDIR(st.st_mode)) {
		(void)close(fd);
		return -EISDIR;
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
