/* test_fileio.c — files read and written by the programs: only regular files
 * are read (a FIFO never waited on, /dev/zero never read, a socket or a
 * directory refused), files are replaced through temporaries of our own
 * (whatever sits at a temporary's name is skipped, never written through),
 * only the file we wrote is removed, and a directory others could swap our
 * files in is refused. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include <powermeter/powermeter.h>

#include "util/atomicfile.h"
#include "util/fileio.h"

#define NOBODY 65534

struct env {
	char dir[64];
};

static void on_alarm(int sig)
{
	static const char msg[] = "# timed out: blocked on a file that is not "
				  "a regular file\n";

	(void)sig;
	(void)!write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	_exit(1);
}

/* A call that blocks (on a FIFO) fails the test instead of hanging it. */
static void guard(unsigned seconds)
{
	(void)signal(SIGALRM, on_alarm);
	(void)alarm(seconds);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	if (!e)
		return -1;
	strcpy(e->dir, "/tmp/pm-test-fileio-XXXXXX");
	if (!mkdtemp(e->dir))
		return -1;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char cmd[128];

	(void)alarm(0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
	if (system(cmd) != 0)
		return -1;
	free(e);
	return 0;
}

static void path_in(const struct env *e, const char *name, char *out,
		    size_t size)
{
	snprintf(out, size, "%s/%s", e->dir, name);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static char *read_text(const char *path)
{
	char *data = NULL;
	size_t len;

	assert_int_equal(pm_read_file_capped(path, 1 << 20, &data, &len), 0);
	return data;
}

/* ---- reading ------------------------------------------------------------ */

/* A FIFO with no writer would block open(2) for ever; with a writer that
 * never writes, read(2): neither happens, whichever way it is reached. */
static void test_read_fifo(void **state)
{
	struct env *e = *state;
	char fifo[128], link[128];
	char *data = NULL;
	size_t len = 7;
	int keep;

	path_in(e, "fifo", fifo, sizeof(fifo));
	path_in(e, "link", link, sizeof(link));
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(symlink(fifo, link), 0);
	guard(5);
	assert_int_equal(pm_read_file_capped(fifo, 1024, &data, &len),
			 -PM_ENOTREG);
	assert_int_equal(pm_read_file_capped(link, 1024, &data, &len),
			 -PM_ENOTREG);
	/* held open by a writer that writes nothing */
	keep = open(fifo, O_RDWR | O_NONBLOCK);
	assert_true(keep >= 0);
	assert_int_equal(pm_read_file_capped(fifo, 1024, &data, &len),
			 -PM_ENOTREG);
	(void)close(keep);
	(void)alarm(0);
	assert_null(data);
	assert_int_equal(len, 7);
	assert_string_equal(pm_strerror(-PM_ENOTREG), "not a regular file");
}

/* /dev/zero never ends, /dev/null is not a file either. */
static void test_read_devices(void **state)
{
	char *data = NULL;
	size_t len = 7;

	(void)state;
	guard(5);
	assert_int_equal(pm_read_file_capped("/dev/zero", 1 << 30, &data, &len),
			 -PM_ENOTREG);
	assert_int_equal(pm_read_file_capped("/dev/null", 1024, &data, &len),
			 -PM_ENOTREG);
	(void)alarm(0);
	assert_null(data);
	assert_int_equal(len, 7);
}

static void test_read_socket_and_directory(void **state)
{
	struct env *e = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *data = NULL;
	size_t len;
	int fd;

	path_in(e, "sock", sa.sun_path, sizeof(sa.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	guard(5);
	assert_int_equal(pm_read_file_capped(sa.sun_path, 1024, &data, &len),
			 -PM_ENOTREG);
	(void)alarm(0);
	(void)close(fd);
	assert_int_equal(pm_read_file_capped(e->dir, 1024, &data, &len),
			 -EISDIR);
	assert_null(data);
}

/* A regular file, directly or through a symlink, reads as before. */
static void test_read_regular(void **state)
{
	struct env *e = *state;
	char file[128], link[128], *data;

	path_in(e, "file", file, sizeof(file));
	path_in(e, "link", link, sizeof(link));
	write_text(file, "{\"devices\": []}\n");
	assert_int_equal(symlink(file, link), 0);
	data = read_text(file);
	assert_string_equal(data, "{\"devices\": []}\n");
	free(data);
	data = read_text(link);
	assert_string_equal(data, "{\"devices\": []}\n");
	free(data);
}

/* ---- replacing ---------------------------------------------------------- */

/* The name of the n-th temporary of 'path' in this process. */
static void temporary(const char *dir, const char *name, unsigned n,
		      char *out, size_t size)
{
	snprintf(out, size, "%s/.%s.%ld.%u.tmp", dir, name, (long)getpid(), n);
}

/* Someone put a symlink to a victim, a FIFO, a directory and a file of
 * theirs at the first names: each is skipped, none written through or
 * waited on, and the file gets our text. */
static void test_replace_skips_taken_names(void **state)
{
	struct env *e = *state;
	struct pm_atomic_file f;
	char path[128], victim[128], trap[4][160], *data;
	struct stat st;

	path_in(e, "values.json", path, sizeof(path));
	path_in(e, "victim", victim, sizeof(victim));
	write_text(victim, "victim\n");
	for (unsigned i = 0; i < 4; i++)
		temporary(e->dir, "values.json", i, trap[i], sizeof(trap[i]));
	assert_int_equal(symlink(victim, trap[0]), 0);
	assert_int_equal(mkfifo(trap[1], 0666), 0);
	assert_int_equal(mkdir(trap[2], 0755), 0);
	write_text(trap[3], "{\"forged\": true}\n");

	assert_int_equal(pm_atomic_init(&f, path, 0644, 0), 0);
	guard(5);
	assert_int_equal(pm_atomic_write(&f, "ours\n", 5), 0);
	(void)alarm(0);
	data = read_text(path);
	assert_string_equal(data, "ours\n");
	free(data);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0644);
	data = read_text(victim);
	assert_string_equal(data, "victim\n");
	free(data);
	data = read_text(trap[3]);
	assert_string_equal(data, "{\"forged\": true}\n");
	free(data);
	assert_int_equal(lstat(trap[0], &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(lstat(trap[1], &st), 0);
	assert_true(S_ISFIFO(st.st_mode));

	/* again: later names, the same file replaced */
	assert_int_equal(pm_atomic_write(&f, "again\n", 6), 0);
	data = read_text(path);
	assert_string_equal(data, "again\n");
	free(data);
	pm_atomic_fini(&f);
}

/* Every name taken: the write fails, the file stays as it was, nothing is
 * left behind. */
static void test_replace_all_names_taken(void **state)
{
	struct env *e = *state;
	struct pm_atomic_file f;
	char path[128], trap[160], *data;

	path_in(e, "out.prom", path, sizeof(path));
	write_text(path, "old\n");
	for (unsigned i = 0; i < PM_ATOMIC_TRIES; i++) {
		temporary(e->dir, "out.prom", i, trap, sizeof(trap));
		assert_int_equal(mkfifo(trap, 0666), 0);
	}
	assert_int_equal(pm_atomic_init(&f, path, 0644, PM_ATOMIC_SYNC), 0);
	guard(5);
	assert_int_equal(pm_atomic_write(&f, "new\n", 4), -EEXIST);
	(void)alarm(0);
	data = read_text(path);
	assert_string_equal(data, "old\n");
	free(data);
	/* nothing was ours to remove */
	assert_int_equal(pm_atomic_remove(&f), 0);
	data = read_text(path);
	assert_string_equal(data, "old\n");
	free(data);
	pm_atomic_fini(&f);
}

/* Stage, then abort or commit: a staged temporary is never the file. */
static void test_stage_commit_abort(void **state)
{
	struct env *e = *state;
	struct pm_atomic_file f;
	char path[128], tmp[160], *data;
	struct stat st;

	path_in(e, "state", path, sizeof(path));
	assert_int_equal(pm_atomic_init(&f, path, 0640, PM_ATOMIC_SYNC), 0);
	assert_int_equal(pm_atomic_commit(&f), -EINVAL);
	assert_int_equal(pm_atomic_stage(&f, "one\n", 4), 0);
	temporary(e->dir, "state", 0, tmp, sizeof(tmp));
	assert_int_equal(stat(tmp, &st), 0);
	assert_int_equal(stat(path, &st), -1);
	pm_atomic_abort(&f);
	assert_int_equal(stat(tmp, &st), -1);
	assert_int_equal(pm_atomic_stage(&f, "two\n", 4), 0);
	assert_int_equal(pm_atomic_commit(&f), 0);
	data = read_text(path);
	assert_string_equal(data, "two\n");
	free(data);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	/* fini removes a temporary still staged, never the file */
	assert_int_equal(pm_atomic_stage(&f, "three\n", 6), 0);
	pm_atomic_fini(&f);
	data = read_text(path);
	assert_string_equal(data, "two\n");
	free(data);
}

/* Only the file we wrote is removed: one put in its place is left. */
static void test_remove_only_ours(void **state)
{
	struct env *e = *state;
	struct pm_atomic_file f;
	char path[128], other[128];
	struct stat st;

	path_in(e, "values.json", path, sizeof(path));
	path_in(e, "other", other, sizeof(other));
	assert_int_equal(pm_atomic_init(&f, path, 0644, 0), 0);
	assert_int_equal(pm_atomic_remove(&f), 0);	/* never written */
	assert_int_equal(pm_atomic_write(&f, "x\n", 2), 0);
	assert_int_equal(pm_atomic_remove(&f), 0);
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(pm_atomic_write(&f, "x\n", 2), 0);
	write_text(other, "another's\n");
	assert_int_equal(rename(other, path), 0);
	assert_int_equal(pm_atomic_remove(&f), 0);
	assert_int_equal(stat(path, &st), 0);
	pm_atomic_fini(&f);
}

/* ---- directories ---------------------------------------------------------- */

static void sub(const struct env *e, const char *name, mode_t mode,
		char *out, size_t size)
{
	path_in(e, name, out, size);
	assert_int_equal(mkdir(out, 0700), 0);
	assert_int_equal(chmod(out, mode), 0);	/* whatever the umask */
}

static void test_dir_check(void **state)
{
	struct env *e = *state;
	char d[128], file[160], why[1024];

	sub(e, "private", 0755, d, sizeof(d));
	assert_int_equal(pm_dir_check_private(d, "values.json", why,
					      sizeof(why)), 0);
	assert_int_equal(pm_dir_check_private(e->dir, NULL, why, sizeof(why)),
			 0);

	sub(e, "everybody", 0777, d, sizeof(d));
	why[0] = '\0';
	assert_int_equal(pm_dir_check_private(d, NULL, why, sizeof(why)),
			 -EPERM);
	assert_non_null(strstr(why, d));
	assert_non_null(strstr(why, "may be written by everybody and is not "
				    "sticky"));
	assert_non_null(strstr(why, "chmod go-w"));

	sub(e, "group", 0775, d, sizeof(d));
	assert_int_equal(pm_dir_check_private(d, NULL, why, sizeof(why)),
			 -EPERM);
	assert_non_null(strstr(why, "may be written by its group"));

	/* sticky like /tmp: what we create there stays ours */
	sub(e, "sticky", 01777, d, sizeof(d));
	assert_int_equal(pm_dir_check_private(d, "values.json", why,
					      sizeof(why)), 0);
	snprintf(file, sizeof(file), "%s/values.json", d);
	write_text(file, "ours\n");
	assert_int_equal(pm_dir_check_private(d, "values.json", why,
					      sizeof(why)), 0);
	assert_int_equal(unlink(file), 0);
	assert_int_equal(mkfifo(file, 0666), 0);
	assert_int_equal(pm_dir_check_private(d, "values.json", why,
					      sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "not a regular file"));
	assert_non_null(strstr(why, "remove it"));

	assert_int_equal(pm_dir_check_private("/nonexistent/pm", NULL, why,
					      sizeof(why)), -ENOENT);
	snprintf(file, sizeof(file), "%s/values.json", d);
	assert_int_equal(pm_dir_check_private(file, NULL, why, sizeof(why)),
			 -ENOTDIR);
}

/* Files and directories of another user: root can make them. In a sticky
 * directory a file of another user at our name is refused; a directory of
 * another user that nobody else may write is theirs to lend (node_exporter's
 * textfile directory). */
static void test_dir_check_other_users(void **state)
{
	struct env *e = *state;
	char d[128], file[160], why[1024];

	if (geteuid() != 0)
		skip();
	sub(e, "sticky", 01777, d, sizeof(d));
	snprintf(file, sizeof(file), "%s/values.json", d);
	write_text(file, "{\"forged\": true}\n");
	assert_int_equal(chown(file, NOBODY, NOBODY), 0);
	assert_int_equal(pm_dir_check_private(d, "values.json", why,
					      sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "a file of another user (uid 65534)"));

	sub(e, "theirs", 0755, d, sizeof(d));
	assert_int_equal(chown(d, NOBODY, NOBODY), 0);
	assert_int_equal(pm_dir_check_private(d, NULL, why, sizeof(why)), 0);
	/* their group may write it: sticky, or refused */
	assert_int_equal(chmod(d, 0775), 0);
	assert_int_equal(pm_dir_check_private(d, NULL, why, sizeof(why)),
			 -EPERM);
	assert_int_equal(chmod(d, 01775), 0);
	assert_int_equal(pm_dir_check_private(d, "pm.prom", why, sizeof(why)),
			 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_read_fifo),
		T(test_read_devices),
		T(test_read_socket_and_directory),
		T(test_read_regular),
		T(test_replace_skips_taken_names),
		T(test_replace_all_names_taken),
		T(test_stage_commit_abort),
		T(test_remove_only_ours),
		T(test_dir_check),
		T(test_dir_check_other_users),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
