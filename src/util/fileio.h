/* fileio.h — whole-file and whole-buffer I/O on file descriptors: the loops
 * around read(2) and write(2) that short counts and EINTR call for. */
#ifndef PM_FILEIO_H
#define PM_FILEIO_H

#include <stddef.h>

/* Writes all 'len' bytes of 'data' to 'fd', retrying after EINTR and short
 * writes. Returns 0 or -errno (some bytes may have been written). */
int pm_write_all(int fd, const void *data, size_t len);

/* Reads a whole regular file of at most 'cap' bytes into a malloc'd,
 * NUL-terminated *data (*len bytes, not counting the NUL). Returns 0,
 * -PM_ETOOBIG, -EISDIR for a directory, -PM_ENOTREG for anything else that
 * is not a regular file (a FIFO, a device, a socket: never waited on, never
 * read), or -errno. */
int pm_read_file_capped(const char *path, size_t cap, char **data,
			size_t *len);

#endif
