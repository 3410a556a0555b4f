/* spool.c — the on-disk queue of undelivered batches (spool.h): segment
 * files of checksummed records, the read position in an atomically replaced
 * progress file, oldest segments dropped beyond the size bound. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include <powermeter/powermeter.h>

#include "output/spool.h"
#include "util/fileio.h"

#define SPOOL_RECORD_MAGIC 0x31534d50u		/* "PMS1" little-endian */
#define SPOOL_PROGRESS_MAGIC 0x50534d50u	/* "PMSP" */
#define SPOOL_PROGRESS_SIZE 24
#define SPOOL_DIR_MODE 0750
#define SPOOL_FILE_MODE 0640
/* Segments are a 64th of the bound (so dropping the oldest gives back a
 * small share), between these sizes. */
#define SPOOL_SEGMENTS 64
#define SPOOL_SEGMENT_MIN (4u * 1024)
#define SPOOL_SEGMENT_MAX (8u * 1024 * 1024)

struct spool_segment {
	uint64_t seq;
	uint64_t size;		/* bytes of whole records in the file */
	uint64_t records;	/* uncommitted */
	uint64_t lines;		/* uncommitted */
};

struct pm_spool {
	char *dir;
	int dir_fd;
	int lock_fd;
	unsigned flags;
	uint64_t max_bytes;
	uint64_t segment_size;
	struct spool_segment *seg;	/* oldest first */
	size_t n_seg, alloc_seg;
	int append_fd;			/* the last segment's, or -1 */
	int read_fd;			/* the first segment's, or -1 */
	uint64_t read_fd_seq;
	uint64_t rd_off;		/* in seg[0] */
	uint64_t next_seq;
	uint64_t bytes;
	struct pm_spool_stats st;	/* counters only */
};

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* CRC-32 of the line count (as stored) followed by the payload. */
static uint32_t record_crc(const unsigned char *lines_le, const void *payload,
			   size_t len)
{
	uLong crc = crc32(0L, Z_NULL, 0);

	crc = crc32(crc, lines_le, 4);
	while (len > 0) {
		uInt n = len > UINT_MAX ? UINT_MAX : (uInt)len;

		crc = crc32(crc, payload, n);
		payload = (const char *)payload + n;
		len -= n;
	}
	return (uint32_t)crc;
}

static void segment_name(char *buf, size_t size, uint64_t seq)
{
	(void)snprintf(buf, size, "%016" PRIx64 ".seg", seq);
}

static int parse_segment_name(const char *name, uint64_t *seq)
{
	uint64_t v = 0;

	for (int i = 0; i < 16; i++) {
		char c = name[i];

		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return -EINVAL;
	}
	if (strcmp(name + 16, ".seg") != 0)
		return -EINVAL;
	*seq = v;
	return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int sync_dir(struct pm_spool *sp)
{
	if (sp->flags & PM_SPOOL_NOSYNC)
		return 0;
	return fsync(sp->dir_fd) < 0 ? -errno : 0;
}

/* pread(2) of exactly 'len' bytes; -ENODATA when the file is shorter. */
static int read_at(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ENODATA;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Replaces the progress file: "read on from segment 'seq' at 'off'". */
static int progress_write(struct pm_spool *sp, uint64_t seq, uint64_t off)
{
	unsigned char rec[SPOOL_PROGRESS_SIZE];
	int fd, r;

	put32(rec, SPOOL_PROGRESS_MAGIC);
	put64(rec + 4, seq);
	put64(rec + 12, off);
	put32(rec + 20, (uint32_t)crc32(0L, rec, 20));
	fd = openat(sp->dir_fd, "progress.tmp",
		    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, SPOOL_FILE_MODE);
	if (fd < 0)
		return -errno;
	r = pm_write_all(fd, rec, sizeof(rec));
	if (r == 0 && !(sp->flags & PM_SPOOL_NOSYNC) && fdatasync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(sp->dir_fd, "progress.tmp", sp->dir_fd,
			       "progress") < 0)
		r = -errno;
	if (r == 0)
		r = sync_dir(sp);
	if (r < 0)
		(void)unlinkat(sp->dir_fd, "progress.tmp", 0);
	return r;
}

/* 0 with the position, -ENOENT when there is none, -EBADMSG when unreadable. */
static int progress_read(struct pm_spool *sp, uint64_t *seq, uint64_t *off)
{
	unsigned char rec[SPOOL_PROGRESS_SIZE + 1];
	ssize_t n;
	int fd;

	fd = openat(sp->dir_fd, "progress", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, rec, sizeof(rec));
	(void)close(fd);
	if (n != SPOOL_PROGRESS_SIZE || get32(rec) != SPOOL_PROGRESS_MAGIC ||
	    get32(rec + 20) != (uint32_t)crc32(0L, rec, 20))
		return -EBADMSG;
	*seq = get64(rec + 4);
	*off = get64(rec + 12);
	return 0;
}

static int segment_open(struct pm_spool *sp, uint64_t seq, int flags)
{
	char name[32];
	int fd;

	segment_name(name, sizeof(name), seq);
	fd = openat(sp->dir_fd, name, flags | O_CLOEXEC, SPOOL_FILE_MODE);
	return fd < 0 ? -errno : fd;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		(void)close(*fd);
	*fd = -1;
}

/* Where reading resumes, to be persisted: the first segment at rd_off, or
 * the next segment to be written when there is none. */
static void read_position(const struct pm_spool *sp, uint64_t *seq,
			  uint64_t *off)
{
	if (sp->n_seg > 0) {
		*seq = sp->seg[0].seq;
		*off = sp->rd_off;
	} else {
		*seq = sp->next_seq;
		*off = 0;
	}
}

/* Drops seg[0] from the list and from disk (the caller has accounted for
 * its records). The progress file is moved on first, so a crash in between
 * leaves a segment that the next open deletes as already read. */
static int segment_remove_first(struct pm_spool *sp)
{
	struct spool_segment first = sp->seg[0];
	uint64_t seq, off;
	char name[32];
	int r;

	if (sp->n_seg == 1)
		close_fd(&sp->append_fd);
	if (sp->read_fd >= 0 && sp->read_fd_seq == first.seq)
		close_fd(&sp->read_fd);
	memmove(sp->seg, sp->seg + 1, (sp->n_seg - 1) * sizeof(*sp->seg));
	sp->n_seg--;
	sp->rd_off = 0;
	sp->bytes -= first.size;
	read_position(sp, &seq, &off);
	r = progress_write(sp, seq, off);
	segment_name(name, sizeof(name), first.seq);
	if (unlinkat(sp->dir_fd, name, 0) < 0 && errno != ENOENT && r == 0)
		r = -errno;
	return r;
}

static int segment_push(struct pm_spool *sp, const struct spool_segment *s)
{
	if (sp->n_seg == sp->alloc_seg) {
		size_t n = sp->alloc_seg ? sp->alloc_seg * 2 : 16;
		struct spool_segment *p = realloc(sp->seg, n * sizeof(*p));

		if (!p)
			return -ENOMEM;
		sp->seg = p;
		sp->alloc_seg = n;
	}
	sp->seg[sp->n_seg++] = *s;
	return 0;
}

/* Walks one segment's record headers, counting the records at or after
 * *from (moved to the next record boundary if it falls inside one); cuts a
 * torn or unreadable tail off the file. */
static int segment_scan(struct pm_spool *sp, int fd, struct spool_segment *s,
			uint64_t *from)
{
	unsigned char h[PM_SPOOL_HEADER_SIZE];
	struct stat stbuf;
	uint64_t off = 0, file_size;
	int r;

	if (fstat(fd, &stbuf) < 0)
		return -errno;
	file_size = (uint64_t)stbuf.st_size;
	while (off < file_size) {
		uint32_t len;

		r = read_at(fd, h, sizeof(h), off);
		if (r == -ENODATA || (r == 0 && off + sizeof(h) > file_size)) {
			sp->st.torn_records++;	/* header cut short */
			break;
		}
		if (r < 0)
			return r;
		len = get32(h + 4);
		if (get32(h) != SPOOL_RECORD_MAGIC || len == 0 ||
		    len > PM_SPOOL_RECORD_MAX) {
			/* nothing after this can be framed again */
			sp->st.corrupt_records++;
			break;
		}
		if (off + sizeof(h) + len > file_size) {
			sp->st.torn_records++;	/* payload cut short */
			break;
		}
		if (off < *from && off + sizeof(h) + len > *from)
			*from = off + sizeof(h) + len;
		if (off >= *from) {
			s->records++;
			s->lines += get32(h + 8);
		}
		off += sizeof(h) + len;
	}
	if (off < file_size && ftruncate(fd, (off_t)off) < 0)
		return -errno;
	s->size = off;
	return 0;
}

static int seq_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The segment numbers in the directory, sorted; *n of them in *out. */
static int list_segments(struct pm_spool *sp, uint64_t **out, size_t *n)
{
	uint64_t *seqs = NULL, seq;
	size_t count = 0, alloc = 0;
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	fd = dup(sp->dir_fd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		(void)close(fd);
		return r;
	}
	while ((de = readdir(d)) != NULL) {
		if (parse_segment_name(de->d_name, &seq) < 0)
			continue;
		if (count == alloc) {
			size_t na = alloc ? alloc * 2 : 16;
			uint64_t *p = realloc(seqs, na * sizeof(*p));

			if (!p) {
				r = -ENOMEM;
				goto out;
			}
			seqs = p;
			alloc = na;
		}
		seqs[count++] = seq;
	}
	if (count > 0)
		qsort(seqs, count, sizeof(*seqs), seq_cmp);
	*out = seqs;
	*n = count;
	seqs = NULL;
out:
	free(seqs);
	(void)closedir(d);
	return r;
}

/* Rebuilds the segment list from the directory and the progress file. */
static int spool_load(struct pm_spool *sp)
{
	uint64_t *seqs = NULL, p_seq = 0, p_off = 0;
	size_t n = 0;
	char name[32];
	int r;

	r = progress_read(sp, &p_seq, &p_off);
	if (r == -EBADMSG) {
		sp->st.progress_lost = 1;	/* replay all rather than lose */
		p_seq = 0;
		p_off = 0;
	} else if (r < 0 && r != -ENOENT) {
		return r;
	}
	r = list_segments(sp, &seqs, &n);
	if (r < 0)
		return r;
	sp->next_seq = p_seq;
	for (size_t i = 0; i < n; i++) {
		struct spool_segment s = { .seq = seqs[i] };
		uint64_t from = 0;
		int fd;

		if (seqs[i] < p_seq) {
			/* read to its end before a crash; its removal was cut */
			segment_name(name, sizeof(name), seqs[i]);
			(void)unlinkat(sp->dir_fd, name, 0);
			continue;
		}
		if (seqs[i] == p_seq)
			from = p_off;
		fd = segment_open(sp, seqs[i], O_RDWR);
		if (fd < 0) {
			r = fd;
			goto out;
		}
		r = segment_scan(sp, fd, &s, &from);
		(void)close(fd);
		if (r < 0)
			goto out;
		if (sp->n_seg == 0)
			sp->rd_off = from > s.size ? s.size : from;
		r = segment_push(sp, &s);
		if (r < 0)
			goto out;
		sp->bytes += s.size;
		if (seqs[i] >= sp->next_seq)
			sp->next_seq = seqs[i] + 1;
	}
	/* a first segment already read to its end goes now */
	while (sp->n_seg > 0 && sp->seg[0].records == 0 &&
	       sp->rd_off >= sp->seg[0].size) {
		r = segment_remove_first(sp);
		if (r < 0)
			goto out;
	}
	r = 0;
out:
	free(seqs);
	return r;
}

int pm_spool_open(struct pm_spool **out, const char *dir, uint64_t max_bytes,
		  unsigned flags)
{
	struct pm_spool *sp;
	uint64_t seg;
	int r;

	if (!dir || !*dir || max_bytes < PM_SPOOL_MIN_BYTES)
		return -EINVAL;
	r = mkdir_p(dir, SPOOL_DIR_MODE);
	if (r < 0)
		return r;
	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	sp->dir_fd = sp->lock_fd = sp->append_fd = sp->read_fd = -1;
	sp->flags = flags;
	sp->max_bytes = max_bytes;
	seg = max_bytes / SPOOL_SEGMENTS;
	if (seg < SPOOL_SEGMENT_MIN)
		seg = SPOOL_SEGMENT_MIN;
	if (seg > SPOOL_SEGMENT_MAX)
		seg = SPOOL_SEGMENT_MAX;
	sp->segment_size = seg;
	sp->dir = strdup(dir);
	if (!sp->dir) {
		r = -ENOMEM;
		goto fail;
	}
	sp->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->dir_fd < 0) {
		r = -errno;
		goto fail;
	}
	sp->lock_fd = openat(sp->dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC,
			     SPOOL_FILE_MODE);
	if (sp->lock_fd < 0) {
		r = -errno;
		goto fail;
	}
	if (flock(sp->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto fail;
	}
	(void)unlinkat(sp->dir_fd, "progress.tmp", 0);
	r = spool_load(sp);
	if (r < 0)
		goto fail;
	*out = sp;
	return 0;
fail:
	pm_spool_close(sp);
	return r;
}

void pm_spool_close(struct pm_spool *sp)
{
	if (!sp)
		return;
	close_fd(&sp->append_fd);
	close_fd(&sp->read_fd);
	close_fd(&sp->lock_fd);	/* releases the flock */
	close_fd(&sp->dir_fd);
	free(sp->seg);
	free(sp->dir);
	free(sp);
}

/* Makes room for a record of 'need' bytes by removing oldest segments. */
static int spool_make_room(struct pm_spool *sp, uint64_t need,
			   uint64_t *dropped_lines)
{
	int r;

	while (sp->n_seg > 0 && sp->bytes + need > sp->max_bytes) {
		sp->st.dropped_records += sp->seg[0].records;
		sp->st.dropped_lines += sp->seg[0].lines;
		if (dropped_lines)
			*dropped_lines += sp->seg[0].lines;
		r = segment_remove_first(sp);
		if (r < 0)
			return r;
	}
	return 0;
}

int pm_spool_append(struct pm_spool *sp, const char *text, size_t len,
		    size_t lines, uint64_t *dropped_lines)
{
	unsigned char h[PM_SPOOL_HEADER_SIZE];
	struct iovec iov[2];
	struct spool_segment *last;
	uint64_t need = PM_SPOOL_HEADER_SIZE + (uint64_t)len;
	ssize_t n;
	int r;

	if (len == 0)
		return -EINVAL;
	if (len > PM_SPOOL_RECORD_MAX || need > sp->max_bytes ||
	    lines > UINT32_MAX)
		return -PM_ETOOBIG;
	last = sp->n_seg > 0 ? &sp->seg[sp->n_seg - 1] : NULL;
	if (sp->append_fd >= 0 && last->size > 0 &&
	    last->size + need > sp->segment_size)
		close_fd(&sp->append_fd);	/* rotate */
	r = spool_make_room(sp, need, dropped_lines);
	if (r < 0)
		return r;
	if (sp->append_fd < 0) {
		struct spool_segment s = { .seq = sp->next_seq };
		int fd;

		r = segment_open(sp, s.seq, O_WRONLY | O_CREAT | O_TRUNC);
		if (r < 0)
			return r;
		fd = r;
		r = segment_push(sp, &s);
		if (r == 0)
			r = sync_dir(sp);
		if (r < 0) {
			char name[32];

			if (sp->n_seg > 0 && sp->seg[sp->n_seg - 1].seq == s.seq)
				sp->n_seg--;
			(void)close(fd);
			segment_name(name, sizeof(name), s.seq);
			(void)unlinkat(sp->dir_fd, name, 0);
			return r;
		}
		sp->append_fd = fd;
		sp->next_seq++;
		if (sp->n_seg == 1)
			sp->rd_off = 0;
	}
	last = &sp->seg[sp->n_seg - 1];

	put32(h, SPOOL_RECORD_MAGIC);
	put32(h + 4, (uint32_t)len);
	put32(h + 8, (uint32_t)lines);
	put32(h + 12, record_crc(h + 8, text, len));
	iov[0].iov_base = h;
	iov[0].iov_len = sizeof(h);
	iov[1].iov_base = (void *)text;
	iov[1].iov_len = len;
	do {
		n = pwritev(sp->append_fd, iov, 2, (off_t)last->size);
	} while (n < 0 && errno == EINTR);
	if (n >= 0 && (uint64_t)n != need)
		errno = ENOSPC;	/* short write: the disk is full */
	if (n < 0 || (uint64_t)n != need ||
	    (!(sp->flags & PM_SPOOL_NOSYNC) && fdatasync(sp->append_fd) < 0)) {
		r = -errno;
		/* leave no half record behind */
		(void)ftruncate(sp->append_fd, (off_t)last->size);
		return r;
	}
	last->size += need;
	last->records++;
	last->lines += lines;
	sp->bytes += need;
	return 0;
}

static int spool_read_fd(struct pm_spool *sp)
{
	int fd;

	if (sp->read_fd >= 0 && sp->read_fd_seq == sp->seg[0].seq)
		return sp->read_fd;
	close_fd(&sp->read_fd);
	fd = segment_open(sp, sp->seg[0].seq, O_RDONLY);
	if (fd < 0)
		return fd;
	sp->read_fd = fd;
	sp->read_fd_seq = sp->seg[0].seq;
	return fd;
}

/* Moves the read position past 'len' bytes holding 'records' records and
 * 'lines' lines of seg[0], removing it once read to its end. */
static int spool_advance(struct pm_spool *sp, uint64_t end_off,
			 uint64_t records, uint64_t lines)
{
	struct spool_segment *s = &sp->seg[0];

	sp->rd_off = end_off;
	s->records -= records < s->records ? records : s->records;
	s->lines -= lines < s->lines ? lines : s->lines;
	if (sp->rd_off >= s->size) {
		s->records = s->lines = 0;
		return segment_remove_first(sp);
	}
	return progress_write(sp, s->seq, sp->rd_off);
}

int pm_spool_peek_oldest(struct pm_spool *sp, size_t max_bytes,
			 size_t max_lines, struct pm_spool_batch *b)
{
	unsigned char h[PM_SPOOL_HEADER_SIZE];
	char *text = NULL;
	size_t len = 0, lines = 0, records = 0;
	uint64_t off;
	int fd, r;

again:
	if (sp->n_seg == 0 || (sp->seg[0].records == 0 && sp->n_seg == 1))
		return -ENOENT;
	if (sp->rd_off >= sp->seg[0].size) {
		/* read to its end earlier (nothing left uncommitted) */
		r = segment_remove_first(sp);
		if (r < 0)
			return r;
		goto again;
	}
	fd = spool_read_fd(sp);
	if (fd == -ENOENT) {
		/* Deleted behind our back: its points are gone. Not passed
		 * on, -ENOENT would say "empty" while records are counted,
		 * and the writer would ask again at once, for ever. */
		sp->st.corrupt_records += sp->seg[0].records;
		sp->st.corrupt_lines += sp->seg[0].lines;
		r = spool_advance(sp, sp->seg[0].size, sp->seg[0].records,
				  sp->seg[0].lines);
		if (r < 0)
			return r;
		goto again;
	}
	if (fd < 0)
		return fd;
	off = sp->rd_off;
	while (off < sp->seg[0].size) {
		uint32_t rec_len, rec_lines;
		char *p;

		r = read_at(fd, h, sizeof(h), off);
		if (r < 0 && r != -ENODATA && r != -EIO)
			goto fail;
		/* Shorter than written (changed under us) or unreadable (a bad
		 * block): like a bad header, or replay would stop here for
		 * good and the spool only ever grow. */
		if (r < 0)
			memset(h, 0, sizeof(h));
		rec_len = get32(h + 4);
		rec_lines = get32(h + 8);
		if (get32(h) != SPOOL_RECORD_MAGIC || rec_len == 0 ||
		    rec_len > PM_SPOOL_RECORD_MAX ||
		    off + sizeof(h) + rec_len > sp->seg[0].size) {
			/* validated at open, so the file changed under us:
			 * nothing after this can be framed, skip the rest */
			if (records > 0)
				break;
			sp->st.corrupt_records++;
			sp->st.corrupt_lines += sp->seg[0].lines;
			r = spool_advance(sp, sp->seg[0].size,
					  sp->seg[0].records, sp->seg[0].lines);
			if (r < 0)
				goto fail;
			free(text);
			text = NULL;
			goto again;
		}
		if (records > 0 && (len + rec_len > max_bytes ||
				    lines + rec_lines > max_lines))
			break;
		p = realloc(text, len + rec_len + 1);
		if (!p) {
			r = -ENOMEM;
			goto fail;
		}
		text = p;
		r = read_at(fd, text + len, rec_len, off + sizeof(h));
		if (r < 0 && r != -ENODATA && r != -EIO)
			goto fail;
		/* an unreadable payload is skipped as a corrupt one */
		if (r < 0 ||
		    record_crc(h + 8, text + len, rec_len) != get32(h + 12)) {
			if (records > 0)
				break;	/* the next peek skips it */
			sp->st.corrupt_records++;
			sp->st.corrupt_lines += rec_lines;
			r = spool_advance(sp, off + sizeof(h) + rec_len, 1,
					  rec_lines);
			if (r < 0)
				goto fail;
			free(text);
			text = NULL;
			goto again;
		}
		len += rec_len;
		lines += rec_lines;
		records++;
		off += sizeof(h) + rec_len;
	}
	text[len] = '\0';
	b->text = text;
	b->len = len;
	b->lines = lines;
	b->records = records;
	b->seq = sp->seg[0].seq;
	b->off = sp->rd_off;
	b->end_off = off;
	return 0;
fail:
	free(text);
	return r;
}

int pm_spool_commit_oldest(struct pm_spool *sp, const struct pm_spool_batch *b)
{
	if (sp->n_seg == 0 || b->seq != sp->seg[0].seq || b->off != sp->rd_off ||
	    b->end_off > sp->seg[0].size || b->end_off <= b->off)
		return -ESTALE;
	return spool_advance(sp, b->end_off, b->records, b->lines);
}

void pm_spool_batch_free(struct pm_spool_batch *b)
{
	free(b->text);
	b->text = NULL;
	b->len = b->lines = b->records = 0;
}

void pm_spool_stats(const struct pm_spool *sp, struct pm_spool_stats *st)
{
	*st = sp->st;
	st->bytes = sp->bytes;
	st->segments = sp->n_seg;
	st->records = 0;
	st->lines = 0;
	for (size_t i = 0; i < sp->n_seg; i++) {
		st->records += sp->seg[i].records;
		st->lines += sp->seg[i].lines;
	}
}
