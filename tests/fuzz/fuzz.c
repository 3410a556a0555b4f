/* fuzz.c — the fuzz targets' scratch directory and input helpers (fuzz.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

static char scratch[PATH_MAX];
static pid_t scratch_owner;

static int remove_one(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	(void)remove(path);
	return 0;
}

static void scratch_remove(void)
{
	/* a child (none today) must not take the parent's directory away */
	if (scratch[0] && getpid() == scratch_owner)
		(void)nftw(scratch, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_dir(void)
{
	const char *tmp;

	if (scratch[0])
		return scratch;
	tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = "/tmp";
	if (snprintf(scratch, sizeof(scratch), "%s/pm-fuzz-XXXXXX", tmp) >=
	    (int)sizeof(scratch) || !mkdtemp(scratch)) {
		perror("fuzz: mkdtemp");
		abort();
	}
	scratch_owner = getpid();
	(void)atexit(scratch_remove);
	return scratch;
}

const char *fuzz_path(const char *name)
{
	static char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s", fuzz_dir(), name) >=
	    (int)sizeof(path))
		abort();
	return path;
}

void fuzz_write(const char *path, const void *data, size_t len)
{
	const char *p = data;
	int fd;

	(void)unlink(path);	/* a previous input may have left anything */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0) {
		perror(path);
		abort();
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			perror(path);
			abort();
		}
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) < 0)
		abort();
}

void fuzz_clear(const char *sub)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *de;
	DIR *d;

	if (snprintf(dir, sizeof(dir), "%s/%s", fuzz_dir(), sub) >=
	    (int)sizeof(dir))
		abort();
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >=
		    (int)sizeof(path))
			abort();
		if (unlink(path) < 0 && errno == EISDIR)
			(void)nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	(void)closedir(d);
}

size_t fuzz_split(const uint8_t *data, size_t size, const char *sep,
		  struct fuzz_part *parts, size_t max)
{
	size_t n = 0, seplen = strlen(sep);
	const uint8_t *p = data, *end = data + size;

	if (max == 0)
		return 0;
	while (n + 1 < max) {
		const uint8_t *hit = memmem(p, (size_t)(end - p), sep, seplen);

		if (!hit)
			break;
		parts[n].data = p;
		parts[n].len = (size_t)(hit - p);
		n++;
		p = hit + seplen;
	}
	parts[n].data = p;
	parts[n].len = (size_t)(end - p);
	return n + 1;
}

void fuzz_clean_environment(void)
{
	(void)unsetenv("STATE_DIRECTORY");
	(void)unsetenv("RUNTIME_DIRECTORY");
	(void)unsetenv("CREDENTIALS_DIRECTORY");
}
