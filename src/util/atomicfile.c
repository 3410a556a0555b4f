/* atomicfile.c — files replaced whole through exclusive temporaries, and the
 * directories where that is safe (atomicfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/atomicfile.h"
#include "util/fileio.h"

int pm_atomic_init(struct pm_atomic_file *f, const char *path, mode_t mode,
		   unsigned flags)
{
	const char *name = strrchr(path, '/');

	memset(f, 0, sizeof(*f));
	f->mode = mode;
	f->flags = flags;
	f->path = strdup(path);
	name = name ? name + 1 : path;
	f->tmp_size = strlen(path) + 64;
	f->tmp_prefix = malloc(f->tmp_size);
	f->tmp = malloc(f->tmp_size);
	if (!f->path || !f->tmp_prefix || !f->tmp) {
		pm_atomic_fini(f);
		return -ENOMEM;
	}
	/* A dot file: readers that take every *.prom or *.json of the
	 * directory do not see it, nor does ls. */
	(void)snprintf(f->tmp_prefix, f->tmp_size, "%.*s.%s.%ld.",
		       (int)(name - path), path, name, (long)getpid());
	return 0;
}

void pm_atomic_fini(struct pm_atomic_file *f)
{
	if (f->staged)
		pm_atomic_abort(f);
	free(f->path);
	free(f->tmp_prefix);
	free(f->tmp);
	memset(f, 0, sizeof(*f));
}

/* A temporary of our own: an fd, its name in f->tmp, or -errno. A name
 * that is taken is never opened (O_EXCL): the next is tried. */
static int open_temporary(struct pm_atomic_file *f)
{
	int fd = -EEXIST;

	for (int i = 0; i < PM_ATOMIC_TRIES && fd == -EEXIST; i++) {
		(void)snprintf(f->tmp, f->tmp_size, "%s%u.tmp", f->tmp_prefix,
			       f->serial++);
		fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
			  O_CLOEXEC | O_NOCTTY | O_NONBLOCK, f->mode);
		if (fd < 0)
			fd = -errno;
	}
	return fd;
}

int pm_atomic_stage(struct pm_atomic_file *f, const void *data, size_t len)
{
	struct stat st;
	int fd, r = 0;

	if (f->staged)
		pm_atomic_abort(f);
	fd = open_temporary(f);
	if (fd < 0)
		return fd;
	/* the mode whatever the umask: other users' programs read it */
	if (fchmod(fd, f->mode) < 0 || fstat(fd, &st) < 0)
		r = -errno;
	if (r == 0)
		r = pm_write_all(fd, data, len);
	if (r == 0 && (f->flags & PM_ATOMIC_SYNC) && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0) {
		(void)unlink(f->tmp);
		return r;
	}
	f->staged = true;
	f->staged_dev = st.st_dev;
	f->staged_ino = st.st_ino;
	return 0;
}

int pm_atomic_commit(struct pm_atomic_file *f)
{
	if (!f->staged)
		return -EINVAL;
	f->staged = false;
	if (rename(f->tmp, f->path) < 0) {
		int r = -errno;

		(void)unlink(f->tmp);
		return r;
	}
	f->written = true;
	f->written_dev = f->staged_dev;
	f->written_ino = f->staged_ino;
	return 0;
}

void pm_atomic_abort(struct pm_atomic_file *f)
{
	if (!f->staged)
		return;
	f->staged = false;
	(void)unlink(f->tmp);
}

int pm_atomic_write(struct pm_atomic_file *f, const void *data, size_t len)
{
	int r = pm_atomic_stage(f, data, len);

	return r < 0 ? r : pm_atomic_commit(f);
}

int pm_atomic_remove(struct pm_atomic_file *f)
{
	struct stat st;

	if (!f->written)
		return 0;
	f->written = false;
	if (lstat(f->path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (st.st_dev != f->written_dev || st.st_ino != f->written_ino)
		return 0;
	if (unlink(f->path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int pm_dir_check_private(const char *dir, const char *file, char *why,
			 size_t size)
{
	char path[4096];
	struct stat st;
	uid_t me = geteuid();

	if (stat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	/* Its owner is trusted with it, as whoever gave us the path: a
	 * directory of node_exporter's holds its textfiles. */
	if (!(st.st_mode & (S_IWGRP | S_IWOTH)))
		return 0;
	if (!(st.st_mode & S_ISVTX)) {
		(void)snprintf(why, size, "%s may be written by %s and is not "
			       "sticky: another user could put other files "
			       "in the place of ours; chmod go-w it, or chmod "
			       "+t it as /tmp is", dir,
			       st.st_mode & S_IWOTH ? "everybody"
						    : "its group");
		return -EPERM;
	}
	/* Sticky: only a file's owner (and the directory's, and root) may
	 * rename or remove it, so what we create stays ours; one that is
	 * there already must be ours too. */
	if (!file)
		return 0;
	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (st.st_uid != me || !S_ISREG(st.st_mode)) {
		(void)snprintf(why, size, "%s is there already and is %s%s "
			       "(uid %ld) in a directory others may write: "
			       "another user may have put it there; remove "
			       "it", path, S_ISREG(st.st_mode) ? "a file" :
			       "not a regular file", st.st_uid != me ?
			       " of another user" : "", (long)st.st_uid);
		return -EPERM;
	}
	return 0;
}
