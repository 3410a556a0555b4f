/* test_spool.c — the on-disk spool: append and replay order across
 * segments, the read position surviving a reopen, a torn last record and a
 * corrupted one after a "crash", the size bound dropping the oldest, the
 * lock against a second owner; every lost point counted once under its
 * cause; a write failing where room was to be made, a damaged header
 * mid-segment, the bound reached during replay; files others put in the
 * spool's place never written through nor replayed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <powermeter/powermeter.h>

#include "output/spool.h"

#define SMALL (64u * 1024)	/* segments of 4 KiB */

static char *tmp_dir(void)
{
	char *d = strdup("/tmp/pm-spool-test-XXXXXX");

	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

static void rm_rf(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[512];

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			rm_rf(path);
		else
			(void)unlink(path);
	}
	closedir(d);
	(void)rmdir(dir);
}

static int setup(void **state)
{
	*state = tmp_dir();
	return 0;
}

static int teardown(void **state)
{
	rm_rf(*state);
	free(*state);
	return 0;
}

/* Record n: 'lines' lines "m v=<n>,i=<k> <n>\n". */
static char *record_text(unsigned n, size_t lines, size_t *len)
{
	size_t cap = lines * 64 + 1, off = 0;
	char *t = malloc(cap);

	assert_non_null(t);
	for (size_t k = 0; k < lines; k++)
		off += (size_t)snprintf(t + off, cap - off, "m v=%u,i=%zu %u\n",
					n, k, n);
	*len = off;
	return t;
}

static void append(struct pm_spool *sp, unsigned n, size_t lines)
{
	size_t len;
	char *t = record_text(n, lines, &len);

	assert_int_equal(pm_spool_append(sp, t, len, lines, NULL), 0);
	free(t);
}

/* The record number of the first line of a batch. */
static unsigned first_record(const struct pm_spool_batch *b)
{
	return (unsigned)strtoul(b->text + strlen("m v="), NULL, 10);
}

/* Peeks one record at a time and checks it is record 'n'. */
static void expect_next(struct pm_spool *sp, unsigned n, size_t lines,
			int commit)
{
	struct pm_spool_batch b;
	size_t len;
	char *t = record_text(n, lines, &len);

	assert_int_equal(pm_spool_peek_oldest(sp, 1, 1, &b), 0);
	assert_int_equal(b.records, 1);
	assert_int_equal(b.lines, lines);
	assert_int_equal(b.len, len);
	assert_memory_equal(b.text, t, len);
	if (commit)
		assert_int_equal(pm_spool_commit_oldest(sp, &b), 0);
	pm_spool_batch_free(&b);
	free(t);
}

static size_t count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0, sl = strlen(suffix);

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);

		if (l >= sl && strcmp(de->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* The path of the newest segment file. */
static void last_segment(const char *dir, char *path, size_t size)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char best[256] = "";

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".seg") && strcmp(de->d_name, best) > 0)
			snprintf(best, sizeof(best), "%s", de->d_name);
	closedir(d);
	assert_true(best[0] != '\0');
	snprintf(path, size, "%s/%s", dir, best);
}

/* A spool in 'dir' holding records 0..n-1 of 'lines' lines each, closed
 * again: what the daemon leaves when it stops, for a test to damage. */
static void write_records(const char *dir, unsigned n, size_t lines)
{
	struct pm_spool *sp;

	assert_int_equal(pm_spool_open(&sp, dir, SMALL, 0), 0);
	for (unsigned i = 0; i < n; i++)
		append(sp, i, lines);
	pm_spool_close(sp);
}

/* Opens the spool in 'dir' again, as the daemon does when it starts, and
 * takes its stats: what the open found. */
static void reopen(struct pm_spool **sp, const char *dir,
		   struct pm_spool_stats *st)
{
	assert_int_equal(pm_spool_open(sp, dir, SMALL, 0), 0);
	pm_spool_stats(*sp, st);
}

/* Where record 'n' of a segment written by append(sp, i, lines) for i =
 * 0, 1, ... starts. */
static off_t record_offset(unsigned n, size_t lines)
{
	off_t off = 0;

	for (unsigned i = 0; i < n; i++) {
		size_t len;

		free(record_text(i, lines, &len));
		off += (off_t)(PM_SPOOL_HEADER_SIZE + len);
	}
	return off;
}

static void overwrite(const char *path, off_t off, const void *data, size_t len)
{
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, len, off), (ssize_t)len);
	close(fd);
}

/* Adds 'len' bytes at the end of the file at 'path': what a crash in the
 * middle of an append leaves. */
static void append_bytes(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_APPEND);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* Takes the last 'n' bytes off the file at 'path'. */
static void cut_end(const char *path, off_t n)
{
	struct stat sb;

	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(truncate(path, sb.st_size - n), 0);
}

/* Peeks as much as merges, checks that it is 'records' records (0: any
 * number) from record 'first' on, and commits it. */
static void commit_merged(struct pm_spool *sp, size_t records, unsigned first)
{
	struct pm_spool_batch b;

	assert_int_equal(pm_spool_peek_oldest(sp, 1 << 20, 1 << 20, &b), 0);
	if (records)
		assert_int_equal(b.records, records);
	assert_int_equal(first_record(&b), first);
	assert_int_equal(pm_spool_commit_oldest(sp, &b), 0);
	pm_spool_batch_free(&b);
}

static void test_order_across_segments(void **state)
{
	const char *dir = *state;
	struct pm_spool_stats st;
	struct pm_spool *sp;

	assert_int_equal(pm_spool_open(&sp, dir, SMALL, PM_SPOOL_NOSYNC), 0);
	assert_int_equal(pm_spool_peek_oldest(sp, 1 << 20, 1 << 20,
					      &(struct pm_spool_batch){0}),
			 -ENOENT);
	/* about 1 KiB each: several 4 KiB segments */
	for (unsigned i = 0; i < 30; i++)
		append(sp, i, 40);
	pm_spool_stats(sp, &st);
	assert_int_equal(st.records, 30);
	assert_int_equal(st.lines, 1200);
	assert_true(st.segments > 3);
	assert_true(st.bytes <= SMALL);
	for (unsigned i = 0; i < 30; i++)
		expect_next(sp, i, 40, 1);
	pm_spool_stats(sp, &st);
	assert_int_equal(st.records, 0);
	assert_int_equal(st.lines, 0);
	assert_int_equal(pm_spool_peek_oldest(sp, 1 << 20, 1 << 20,
					      &(struct pm_spool_batch){0}),
			 -ENOENT);
	/* segments read to their end are gone */
	assert_int_equal(count_files(dir, ".seg"), 0);
	pm_spool_close(sp);
}

static void test_peek_merges_within_caps(void **state)
{
	const char *dir = *state;
	struct pm_spool_batch b;
	struct pm_spool *sp;

	assert_int_equal(pm_spool_open(&sp, dir, SMALL, PM_SPOOL_NOSYNC), 0);
	for (unsigned i = 0; i < 6; i++)
		append(sp, i, 3);
	/* up to 7 lines: two records of 3 */
	assert_int_equal(pm_spool_peek_oldest(sp, 1 << 20, 7, &b), 0);
	assert_int_equal(b.records, 2);
	assert_int_equal(b.lines, 6);
	assert_int_equal(first_record(&b), 0);
	assert_int_equal(pm_spool_commit_oldest(sp, &b), 0);
	/* a second commit of the same batch is refused */
	assert_int_equal(pm_spool_commit_oldest(sp, &b), -ESTALE);
	pm_spool_batch_free(&b);
	/* a cap smaller than one record still gives that record */
	assert_int_equal(pm_spool_peek_oldest(sp, 1, 1, &b), 0);
	assert_int_equal(b.records, 1);
	assert_int_equal(first_record(&b), 2);
	pm_spool_batch_free(&b);
	/* peek without commit: the same again */
	assert_int_equal(pm_spool_peek_oldest(sp, 1 << 20, 1 << 20, &b), 0);
	assert_int_equal(b.records, 4);
	assert_int_equal(first_record(&b), 2);
	assert_int_equal(b.text[b.len], '\0');
	pm_spool_batch_free(&b);
	pm_spool_close(sp);
}

static void test_reopen_keeps_position(void **state)
{
	const char *dir = *state;
	struct pm_spool_stats st;
	struct pm_spool *sp;

	assert_int_equal(pm_spool_open(&sp, dir, SMALL, 0), 0);
	for (unsigned i = 0; i < 12; i++)
		append(sp, i, 40);
	for (unsigned i = 0; i < 5; i++)
		expect_next(sp, i, 40, 1);
	expect_next(sp, 5, 40, 0);	/* sent, no answer yet: not committed */
	pm_spool_close(sp);

	reopen(&sp, dir, &st);
	assert_int_equal(st.records, 7);
	assert_int_equal(st.lines, 280);
	assert_int_equal(st.torn_records, 0);
	assert_int_equal(st.progress_lost, 0);
	for (unsigned i = 5; i < 9; i++)
		expect_next(sp, i, 40, 1);
	/* new records go after the old ones */
	append(sp, 100, 2);
	pm_spool_close(sp);

	assert_int_equal(pm_spool_open(&sp, dir, SMALL, 0), 0);
	for (unsigned i = 9; i < 12; i++)
		expect_next(sp, i, 40, 1);
	expect_next(sp, 100, 2, 1);
	pm_spool_stats(sp, &st);
	assert_int_equal(st.records, 0);
	pm_spool_close(sp);
}

static void test_torn_last_record(void **state)
{
	const char *dir = *state;
	struct pm_spool_stats st;
	struct pm_spool *sp;
	char path[512];

	write_records(dir, 3, 5);
	/* the crash came in the middle of writing record 2's payload */
	last_segment(dir, path, sizeof(path));
	cut_end(path, 7);

	reopen(&sp, dir, &st);
	assert_int_equal(st.torn_records, 1);
	assert_int_equal(st.records, 2);
	assert_int_equal(st.lines, 10);
	append(sp, 3, 5);
	expect_next(sp, 0, 5, 1);
	expect_next(sp, 1, 5, 1);
	expect_next(sp, 3, 5, 1);
	pm_spool_close(sp);
}

static void test_torn_header(void **state)
{
	const char *dir = *state;
	struct pm_spool_stats st;
	struct pm_spool *sp;
	char path[512];

	write_records(dir, 1, 5);
	/* only 5 bytes of the next header made it */
	last_segment(dir, path, sizeof(path));
	append_bytes(path, "PMS1\x10", 5);

	reopen(&sp, dir, &st);
	assert_int_equal(st.torn_records, 1);
	assert_int_equal(st.records, 1);
	append(sp, 1, 5);
	expect_next(sp, 0, 5, 1);
	expect_next(sp, 1, 5, 1);
	pm_spool_close(sp);
}

static void test_corrupt_record_skipped(void **state)
{
	const char *dir = *state;
	struct pm_spool_stats st;
	struct pm_spool *sp;
	char path[512];

	write_records(dir, 3, 4);
	/* flip a byte in the payload of record 1 (all in one segment) */
	last_segment(dir, path, sizeof(path));
	overwrite(path, record_offset(1, 4) + (off_t)PM_SPOOL_HEADER_SIZE + 3,
		  "X", 1);

	assert_int_equal(pm_spool_open(&sp, dir, SMALL, 0), 0);
	/* a merged peek stops before the bad record */
	commit_merged(sp, 1, 0);
	/* the next one skips it, counted */
	commit_merged(sp, 0, 2);
	pm_spool_stats(sp, &st);
	assert_int_equal(st.corrupt_records, 1);
	assert_int_equal(st.corrupt_lines, 4);
	assert_int_equal(st.records, 0);
	pm_spool_close(sp);
}

/* A segment cut short while open (or unreadable): what comes before the
 * cut is replayed, the rest of that segment skipped and counted, and the
 * replay goes on with the next segment instead of failing for good. */
static void test_segment_cut_under_us(void **state)
{
	const char *dir = *state;
	struct pm_spool_stats st;
	struct pm_spool *sp;
	char path[512];

	write_records(dir, 3, 4);
	assert_int_equal(pm_spool_open(&sp, dir, SMALL, 0), 0);
	append(sp, 3, 4);	/* a second segment */
	assert_int_equal(count_files(dir, ".seg"), 2);
	/* the first segment loses its end, in the middle of record 1 */
	snprintf(path, sizeof(path), "%s/%016x.seg", dir, 0u);
	assert_int_equal(truncate(path, record_offset(1, 4) +
				  (off_t)PM_SPOOL_HEADER_SIZE + 3), 0);

	commit_merged(sp, 1, 0);
	commit_merged(sp, 0, 3);
	pm_spool_stats(sp, &st);
	/* the cut record, then the rest of its segment */
	assert_int_equal(st.corrupt_records, 2);
	assert_int_equal(st.corrupt_lines, 8);
	assert_int_equal(st.records, 0);
	pm_spool_close(sp);
}

/* A segment deleted while open: its points are counted as lost and the
 * replay goes on with the next one (not "empty" while points remain). */
static void test_segment_deleted_under_us(void **state)
{
	const char *dir = *state;
	struct pm_spool_stats st;
	struct pm_spool *sp;
	char path[512];

	write_records(dir, 2, 3);
	assert_int_equal(pm_spool_open(&sp, dir, SMALL, 0), 0);
	append(sp, 2, 3);	/* a second segment */
	snprintf(path, sizeof(path), "%s/%016x.seg", dir, 0u);
	assert_int_equal(unlink(path), 0);
	expect_next(sp, 2, 3, 1);
	pm_spool_stats(sp, &st);
	/* counted as what it was, not as damage */
	assert_int_equal(st.deleted_segments, 1);
	assert_int_equal(st.deleted_records, 2);
	assert_int_equal(st.deleted_lines, 6);
	assert_int_equal(st.corrupt_records, 0);
	assert_int_equal(st.records, 0);
	pm_spool_close(sp);
}

static void test_bad_magic_truncated(void **state)
{
	const char *dir = *state;
	struct pm_spool_stats st;
	struct pm_spool *sp;
	char path[512];

	write_records(dir, 1, 2);
	last_segment(dir, path, sizeof(path));
	append_bytes(path, "garbage garbage garbage\n", 24);
	reopen(&sp, dir, &st);
	assert_int_equal(st.corrupt_records, 1);
	assert_int_equal(st.records, 1);
	expect_next(sp, 0, 2, 1);
	pm_spool_close(sp);
}

static void test_size_bound_drops_oldest(void **state)
{
	const char *dir = *state;
	struct pm_spool_stats st;
	struct pm_spool_batch b;
	struct pm_spool *sp;
	uint64_t dropped = 0;
	unsigned first;

	assert_int_equal(pm_spool_open(&sp, dir, PM_SPOOL_MIN_BYTES,
				       PM_SPOOL_NOSYNC), 0);
	for (unsigned i = 0; i < 100; i++) {
		size_t len;
		char *t = record_text(i, 30, &len);

		assert_int_equal(pm_spool_append(sp, t, len, 30, &dropped), 0);
		free(t);
		pm_spool_stats(sp, &st);
		assert_true(st.bytes <= PM_SPOOL_MIN_BYTES);
	}
	pm_spool_stats(sp, &st);
	assert_true(dropped > 0);
	assert_int_equal(st.dropped_lines, dropped);
	/* every line is either still there or counted as dropped */
	assert_int_equal(st.lines + dropped, 3000);
	assert_int_equal(st.records + st.dropped_records, 100);
	/* what is left is the newest, oldest first */
	assert_int_equal(pm_spool_peek_oldest(sp, 1, 1, &b), 0);
	first = first_record(&b);
	assert_int_equal(first, 100 - st.records);
	pm_spool_batch_free(&b);
	for (unsigned i = first; i < 100; i++)
		expect_next(sp, i, 30, 1);
	/* one record larger than the bound is refused */
	{
		char *big = calloc(1, PM_SPOOL_MIN_BYTES);

		assert_non_null(big);
		memset(big, 'x', PM_SPOOL_MIN_BYTES - 1);
		big[PM_SPOOL_MIN_BYTES - 1] = '\n';
		assert_int_equal(pm_spool_append(sp, big, PM_SPOOL_MIN_BYTES, 1,
						 NULL), -PM_ETOOBIG);
		free(big);
	}
	assert_int_equal(pm_spool_append(sp, "x", 0, 0, NULL), -EINVAL);
	pm_spool_close(sp);
}

static void test_bound_drop_persists_position(void **state)
{
	const char *dir = *state;
	struct pm_spool_stats st, st2;
	struct pm_spool_batch b;
	struct pm_spool *sp;
	unsigned first;

	assert_int_equal(pm_spool_open(&sp, dir, PM_SPOOL_MIN_BYTES, 0), 0);
	for (unsigned i = 0; i < 60; i++)
		append(sp, i, 30);
	pm_spool_stats(sp, &st);
	assert_true(st.dropped_records > 0);
	assert_int_equal(pm_spool_peek_oldest(sp, 1, 1, &b), 0);
	first = first_record(&b);
	pm_spool_batch_free(&b);
	pm_spool_close(sp);
	assert_int_equal(pm_spool_open(&sp, dir, PM_SPOOL_MIN_BYTES, 0), 0);
	pm_spool_stats(sp, &st2);
	assert_int_equal(st2.records, st.records);
	expect_next(sp, first, 30, 1);
	pm_spool_close(sp);
}

static void test_lock(void **state)
{
	const char *dir = *state;
	struct pm_spool *sp, *sp2 = NULL;

	assert_int_equal(pm_spool_open(&sp, dir, SMALL, 0), 0);
	assert_int_equal(pm_spool_open(&sp2, dir, SMALL, 0), -EBUSY);
	assert_null(sp2);
	pm_spool_close(sp);
	assert_int_equal(pm_spool_open(&sp2, dir, SMALL, 0), 0);
	pm_spool_close(sp2);
	assert_int_equal(pm_spool_open(&sp2, dir, 100, 0), -EINVAL);
}

static void test_creates_directory(void **state)
{
	const char *dir = *state;
	struct pm_spool *sp;
	char sub[512];
	struct stat sb;

	snprintf(sub, sizeof(sub), "%s/state/spool", dir);
	assert_int_equal(pm_spool_open(&sp, sub, SMALL, 0), 0);
	assert_int_equal(stat(sub, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 0027, 0);	/* 0750 under any umask */
	append(sp, 7, 1);
	pm_spool_close(sp);
}

static void test_lost_progress_replays_all(void **state)
{
	const char *dir = *state;
	struct pm_spool_stats st;
	struct pm_spool *sp;
	char path[512];
	FILE *f;

	assert_int_equal(pm_spool_open(&sp, dir, SMALL, 0), 0);
	for (unsigned i = 0; i < 4; i++)
		append(sp, i, 2);
	expect_next(sp, 0, 2, 1);
	expect_next(sp, 1, 2, 1);
	pm_spool_close(sp);
	snprintf(path, sizeof(path), "%s/progress", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("garbage", f);
	fclose(f);
	/* better twice than never: everything not deleted is replayed */
	reopen(&sp, dir, &st);
	assert_int_equal(st.progress_lost, 1);
	assert_int_equal(st.records, 4);
	expect_next(sp, 0, 2, 1);
	pm_spool_close(sp);
}


/* The segment being appended to deleted from outside: what it held is
 * lost (counted when reading reaches it), later records are not written
 * into the deleted file but into a new one. */
static void test_append_segment_deleted(void **state)
{
	const char *dir = *state;
	struct pm_spool_stats st;
	struct pm_spool *sp;
	char path[512];

	assert_int_equal(pm_spool_open(&sp, dir, SMALL, 0), 0);
	append(sp, 0, 3);
	append(sp, 1, 3);
	last_segment(dir, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	append(sp, 2, 3);
	append(sp, 3, 3);
	expect_next(sp, 2, 3, 1);
	expect_next(sp, 3, 3, 1);
	pm_spool_stats(sp, &st);
	assert_int_equal(st.deleted_segments, 1);
	assert_int_equal(st.deleted_lines, 6);
	assert_int_equal(st.records, 0);
	pm_spool_close(sp);
}

/* ---- losses, each counted once under its cause ------------------------ */

static uint64_t lost_lines(const struct pm_spool_stats *st)
{
	return st->dropped_lines + st->corrupt_lines + st->torn_lines +
	       st->deleted_lines;
}

/* Reads everything left, one record at a time: the record numbers into
 * seen[] (up to 'max'), how many into *n, their lines into *lines. */
static void drain(struct pm_spool *sp, unsigned *seen, size_t max, size_t *n,
		  uint64_t *lines)
{
	struct pm_spool_batch b;

	*n = 0;
	*lines = 0;
	while (pm_spool_peek_oldest(sp, 1, 1, &b) == 0) {
		if (*n < max)
			seen[*n] = first_record(&b);
		(*n)++;
		*lines += b.lines;
		assert_int_equal(pm_spool_commit_oldest(sp, &b), 0);
		pm_spool_batch_free(&b);
	}
}

/* Item 12: a damaged header in the middle of a segment costs its record
 * only, whether it was damaged before the spool was opened (the magic, or
 * a length reaching past the end) or while it is open. */
static void test_damaged_header_mid_segment(void **state)
{
	const char *dir = *state;
	static const unsigned want[] = { 0, 1, 3, 4, 5 };
	struct pm_spool_stats st;
	struct pm_spool *sp;
	unsigned seen[16];
	uint64_t lines;
	char path[512];
	size_t n;

	for (int when = 0; when < 3; when++) {
		unsigned char bad_len[4] = { 0, 0, 0x10, 0 };	/* 1 MiB */

		assert_int_equal(pm_spool_open(&sp, dir, SMALL, 0), 0);
		for (unsigned i = 0; i < 6; i++)
			append(sp, i, 4);
		last_segment(dir, path, sizeof(path));
		if (when == 0)		/* closed: its magic */
			overwrite(path, record_offset(2, 4), "XXXX", 4);
		else if (when == 1)	/* closed: its length */
			overwrite(path, record_offset(2, 4) + 4, bad_len, 4);
		if (when < 2) {
			pm_spool_close(sp);
			reopen(&sp, dir, &st);
			assert_int_equal(st.records, 5);
			assert_int_equal(st.lines, 20);
			/* not lost until read past */
			assert_int_equal(lost_lines(&st), 0);
		} else {		/* open: its magic, under us */
			overwrite(path, record_offset(2, 4), "XXXX", 4);
		}
		drain(sp, seen, 16, &n, &lines);
		assert_int_equal(n, 5);
		assert_memory_equal(seen, want, sizeof(want));
		pm_spool_stats(sp, &st);
		assert_int_equal(st.corrupt_records, 1);
		assert_int_equal(st.corrupt_lines, 4);
		assert_int_equal(lost_lines(&st), 4);
		assert_int_equal(st.torn_records, 0);
		assert_int_equal(st.records, 0);
		pm_spool_close(sp);
		/* counted once: not again after a reopen */
		reopen(&sp, dir, &st);
		assert_int_equal(lost_lines(&st), 0);
		assert_int_equal(st.records, 0);
		pm_spool_close(sp);
	}
}

/* A damaged tail with no whole record after it is cut off at open, its
 * newlines counted as the lines lost; a torn record counts its header's. */
static void test_tails_counted(void **state)
{
	const char *dir = *state;
	struct pm_spool_stats st;
	struct pm_spool *sp;
	char path[512];

	write_records(dir, 4, 3);
	last_segment(dir, path, sizeof(path));
	/* record 2's magic gone, record 3 cut short: nothing whole after 1 */
	overwrite(path, record_offset(2, 3), "XXXX", 4);
	cut_end(path, 5);
	reopen(&sp, dir, &st);
	assert_int_equal(st.records, 2);
	assert_int_equal(st.corrupt_records, 1);
	/* records 2 and 3 as one damaged stretch: 3 + 2 newlines left */
	assert_int_equal(st.corrupt_lines, 5);
	pm_spool_close(sp);
}

/* Item 12: a write that fails where the bound needs room costs nothing: the
 * oldest points stay (they were dropped first, and lost for nothing). */
static void test_failed_write_drops_nothing(void **state)
{
	const char *dir = *state;
	struct pm_spool_stats before, st;
	struct pm_spool_batch b;
	struct rlimit saved, lim;
	struct pm_spool *sp;
	unsigned first, i;
	size_t len;
	char *t;
	int r;

	assert_int_equal(pm_spool_open(&sp, dir, PM_SPOOL_MIN_BYTES,
				       PM_SPOOL_NOSYNC), 0);
	/* full: the next record does not fit */
	for (i = 0;; i++) {
		t = record_text(i, 30, &len);
		pm_spool_stats(sp, &st);
		if (st.bytes + PM_SPOOL_HEADER_SIZE + len > PM_SPOOL_MIN_BYTES) {
			free(t);
			break;
		}
		assert_int_equal(pm_spool_append(sp, t, len, 30, NULL), 0);
		free(t);
	}
	pm_spool_stats(sp, &before);
	assert_int_equal(before.dropped_lines, 0);
	assert_int_equal(pm_spool_peek_oldest(sp, 1, 1, &b), 0);
	first = first_record(&b);
	pm_spool_batch_free(&b);

	/* the disk is full (here: no file may grow) */
	(void)signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
	lim = saved;
	lim.rlim_cur = 1;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	t = record_text(i, 30, &len);
	r = pm_spool_append(sp, t, len, 30, NULL);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
	assert_true(r == -ENOSPC || r == -EFBIG);
	pm_spool_stats(sp, &st);
	assert_int_equal(st.records, before.records);
	assert_int_equal(st.lines, before.lines);
	assert_int_equal(st.dropped_lines, 0);
	assert_int_equal(pm_spool_peek_oldest(sp, 1, 1, &b), 0);
	assert_int_equal(first_record(&b), first);
	pm_spool_batch_free(&b);

	/* the disk has room again: now the oldest go, counted */
	assert_int_equal(pm_spool_append(sp, t, len, 30, NULL), 0);
	free(t);
	pm_spool_stats(sp, &st);
	assert_true(st.dropped_lines > 0);
	assert_true(st.bytes <= PM_SPOOL_MIN_BYTES);
	assert_int_equal(st.lines + st.dropped_lines, before.lines + 30);
	pm_spool_close(sp);
}

/* Item 12: the bound reached during replay, while the writer holds a batch
 * it peeked: the segment holding it may go, but the batch is not counted
 * as dropped (it is being delivered) and its commit succeeds; a batch
 * given up is the spool's again, and dropped with its segment. */
static void test_bound_during_replay(void **state)
{
	const char *dir = *state;
	struct pm_spool_stats before, st;
	struct pm_spool_batch b;
	struct pm_spool *sp;
	uint64_t appended = 0;
	unsigned next = 0;

	for (int hold = 1; hold >= 0; hold--) {
		assert_int_equal(pm_spool_open(&sp, dir, PM_SPOOL_MIN_BYTES,
					       PM_SPOOL_NOSYNC), 0);
		for (; next < 20; next++, appended += 30)
			append(sp, next, 30);
		pm_spool_stats(sp, &before);
		assert_int_equal(pm_spool_peek_oldest(sp, 1 << 20, 60, &b), 0);
		assert_int_equal(b.records, 2);
		if (!hold)
			pm_spool_batch_free(&b);
		/* what could not be delivered goes back, and more comes,
		 * until the bound takes the oldest segment */
		do {
			append(sp, next++, 30);
			appended += 30;
			pm_spool_stats(sp, &st);
		} while (st.dropped_records == before.dropped_records &&
			 next < 100);
		assert_true(st.dropped_lines > before.dropped_lines);
		if (hold) {
			/* delivered: the batch's lines are neither dropped
			 * nor in the spool */
			assert_int_equal(pm_spool_commit_oldest(sp, &b), 0);
			pm_spool_batch_free(&b);
			pm_spool_stats(sp, &st);
			assert_int_equal(st.lines + st.dropped_lines + 60,
					 appended);
		} else {
			assert_int_equal(st.lines + st.dropped_lines, appended);
		}
		/* and the next peek is not the batch again */
		assert_int_equal(pm_spool_peek_oldest(sp, 1, 1, &b), 0);
		assert_true(first_record(&b) > 1);
		pm_spool_batch_free(&b);
		pm_spool_close(sp);
		rm_rf(dir);
		assert_int_equal(mkdir(dir, 0700), 0);
		next = 0;
		appended = 0;
	}
}

/* Deleted while the daemon was stopped: after a clean close the index says
 * what the segment held; after a crash (no index) it is only missing. */
static void test_deleted_while_closed(void **state)
{
	const char *dir = *state;
	struct pm_spool_stats st;
	struct pm_spool *sp;
	char path[512];

	for (int crash = 0; crash < 2; crash++) {
		uint64_t total;

		assert_int_equal(pm_spool_open(&sp, dir, SMALL, 0), 0);
		for (unsigned i = 0; i < 32; i++)
			append(sp, i, 40);
		pm_spool_stats(sp, &st);
		assert_true(st.segments >= 4);
		total = st.lines;
		pm_spool_close(sp);
		if (crash) {
			snprintf(path, sizeof(path), "%s/index", dir);
			assert_int_equal(unlink(path), 0);
		}
		/* the oldest and one in the middle */
		snprintf(path, sizeof(path), "%s/%016x.seg", dir, 0u);
		assert_int_equal(unlink(path), 0);
		snprintf(path, sizeof(path), "%s/%016x.seg", dir, 2u);
		assert_int_equal(unlink(path), 0);
		reopen(&sp, dir, &st);
		if (!crash) {
			assert_int_equal(st.deleted_segments, 2);
			assert_int_equal(st.lines + st.deleted_lines, total);
			assert_int_equal(st.missing_segments, 0);
		} else {
			/* the oldest cannot be told from one read to its end */
			assert_int_equal(st.missing_segments, 1);
			assert_int_equal(st.deleted_lines, 0);
		}
		pm_spool_close(sp);
		rm_rf(dir);
		assert_int_equal(mkdir(dir, 0700), 0);
	}
}

/* ---- files others put in the spool's place ---------------------------- */

static void test_refuses_unsafe_directory(void **state)
{
	const char *dir = *state;
	struct pm_spool *sp = NULL;

	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(pm_spool_open(&sp, dir, SMALL, 0), -EPERM);
	assert_null(sp);
	assert_int_equal(chmod(dir, 0770), 0);
	assert_int_equal(pm_spool_open(&sp, dir, SMALL, 0), -EPERM);
	/* sticky, as /tmp: others may add files, not replace ours */
	assert_int_equal(chmod(dir, 01777), 0);
	assert_int_equal(pm_spool_open(&sp, dir, SMALL, 0), 0);
	pm_spool_close(sp);
	assert_int_equal(chmod(dir, 0750), 0);
	if (geteuid() == 0) {
		/* its owner could replace anything in it */
		assert_int_equal(chown(dir, 4321, 4321), 0);
		assert_int_equal(pm_spool_open(&sp, dir, SMALL, 0), -EPERM);
		assert_int_equal(chown(dir, 0, 0), 0);
	}
	assert_int_equal(pm_spool_open(&sp, dir, SMALL, 0), 0);
	pm_spool_close(sp);
}

static void read_whole(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static void test_planted_files_not_followed(void **state)
{
	const char *dir = *state;
	struct pm_spool_stats st;
	struct pm_spool_batch b;
	struct pm_spool *sp;
	char victim[512], path[512], buf[64];
	struct stat sb;
	FILE *f;

	snprintf(victim, sizeof(victim), "%s.victim", dir);
	f = fopen(victim, "w");
	assert_non_null(f);
	fputs("precious\n", f);
	fclose(f);
	/* a symlink as the lock: not opened, not created through */
	snprintf(path, sizeof(path), "%s/lock", dir);
	assert_int_equal(symlink(victim, path), 0);
	assert_int_equal(pm_spool_open(&sp, dir, SMALL, 0), -EPERM);
	assert_int_equal(unlink(path), 0);
	/* a symlink as the progress file's temporary: replaced, the
	 * victim untouched */
	snprintf(path, sizeof(path), "%s/progress.tmp", dir);
	assert_int_equal(pm_spool_open(&sp, dir, SMALL, 0), 0);
	assert_int_equal(symlink(victim, path), 0);
	append(sp, 0, 2);
	append(sp, 1, 2);
	expect_next(sp, 0, 2, 1);	/* writes the progress file */
	read_whole(victim, buf, sizeof(buf));
	assert_string_equal(buf, "precious\n");
	snprintf(path, sizeof(path), "%s/progress", dir);
	assert_int_equal(lstat(path, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	/* a symlink as the next segment's name: skipped, not written through */
	snprintf(path, sizeof(path), "%s/%016x.seg", dir, 1u);
	assert_int_equal(symlink(victim, path), 0);
	pm_spool_close(sp);
	reopen(&sp, dir, &st);
	assert_int_equal(st.foreign_files, 1);
	append(sp, 2, 2);	/* a new segment: not number 1 */
	expect_next(sp, 1, 2, 1);
	expect_next(sp, 2, 2, 1);
	assert_int_equal(pm_spool_peek_oldest(sp, 1, 1, &b), -ENOENT);
	read_whole(victim, buf, sizeof(buf));
	assert_string_equal(buf, "precious\n");
	pm_spool_close(sp);
	(void)unlink(victim);
}

/* A FIFO where the next segment goes: never opened (the write would wait
 * for a reader for ever), the segment goes elsewhere. */
static void test_planted_fifo_skipped(void **state)
{
	const char *dir = *state;
	struct pm_spool *sp;
	char path[512];

	assert_int_equal(pm_spool_open(&sp, dir, SMALL, 0), 0);
	snprintf(path, sizeof(path), "%s/%016x.seg", dir, 0u);
	assert_int_equal(mkfifo(path, 0666), 0);
	alarm(20);	/* unfixed, this would block */
	append(sp, 0, 2);
	alarm(0);
	expect_next(sp, 0, 2, 1);
	pm_spool_close(sp);
	/* and not read as a segment at the next open either */
	alarm(20);
	assert_int_equal(pm_spool_open(&sp, dir, SMALL, 0), 0);
	alarm(0);
	pm_spool_close(sp);
}

/* A segment another user put there is not replayed. */
static void test_foreign_segment_ignored(void **state)
{
	const char *dir = *state;
	struct pm_spool_stats st;
	struct pm_spool *sp;
	char path[512], planted[512];

	if (geteuid() != 0)
		skip();	/* needs chown */
	write_records(dir, 1, 2);
	/* a copy of a real segment, owned by someone else */
	snprintf(path, sizeof(path), "%s/%016x.seg", dir, 0u);
	snprintf(planted, sizeof(planted), "%s/%016x.seg", dir, 5u);
	assert_int_equal(link(path, planted), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(chown(planted, 4321, 4321), 0);
	reopen(&sp, dir, &st);
	assert_int_equal(st.records, 0);
	assert_int_equal(st.foreign_files, 1);
	pm_spool_close(sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order_across_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peek_merges_within_caps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_position, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_last_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_record_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_cut_under_us, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_deleted_under_us, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_magic_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_bound_drops_oldest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound_drop_persists_position, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_creates_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_progress_replays_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_segment_deleted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_header_mid_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tails_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_write_drops_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound_during_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deleted_while_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_unsafe_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_planted_files_not_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_planted_fifo_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_segment_ignored, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
