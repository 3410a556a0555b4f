/* spool.c — the on-disk queue of undelivered batches (spool.h): segment
 * files of checksummed records, the read position in an atomically replaced
 * progress file, oldest segments dropped beyond the size bound, and every
 * point lost on the way counted once with its cause. */
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
#define SPOOL_INDEX_MAGIC 0x49534d50u		/* "PMSI" */
#define SPOOL_INDEX_ENTRY 24
/* An index of more segments than this is not written (nor read). */
#define SPOOL_INDEX_MAX 65536u
/* Looking for the next whole record after a damaged one: candidates (the
 * magic found) checked at most, and the read size. A damaged stretch with
 * more false starts than that is taken as reaching the segment's end. */
#define SPOOL_RESYNC_TRIES 64
#define SPOOL_READ_CHUNK (64u * 1024)
/* Names tried for a new segment whose name is taken by a file not ours. */
#define SPOOL_CREATE_TRIES 8
#define SPOOL_DIR_MODE 0750
#define SPOOL_FILE_MODE 0640
/* Segments are a 64th of the bound (so dropping the oldest gives back a
 * small share), between these sizes. */
#define SPOOL_SEGMENTS 64
#define SPOOL_SEGMENT_MIN (4u * 1024)
#define SPOOL_SEGMENT_MAX (8u * 1024 * 1024)

struct spool_segment {
	uint64_t seq;
	uint64_t size;		/* bytes of the file up to its last whole record */
	uint64_t records;	/* uncommitted */
	uint64_t lines;		/* uncommitted */
	/* damaged stretches between whole records, not read past yet: their
	 * points are counted as lost when they are (or the segment goes) */
	uint64_t bad_records;
	uint64_t bad_lines;	/* the newlines in them */
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
	bool loaded;			/* open went through: close writes the index */
	/* the last peek, while the caller holds it (until commit or free) */
	struct {
		bool active;
		bool released;	/* its segment went to the bound meanwhile */
		uint64_t seq, off, end_off, records, lines;
	} peek;
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

/* Whether users other than ours and root could put files in the place of
 * ours in the spool directory: its owner could (sticky or not), and so
 * could anyone else who may write it, unless it is sticky as /tmp is. The
 * rule of pm_dir_check_private() (atomicfile.h), on the open directory. */
static int dir_check(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return -EPERM;
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
		return -EPERM;
	return 0;
}

/* Opens a file of the spool without following a symlink or waiting on a
 * FIFO, and only if it is a regular file of this process's user: in a
 * sticky directory that others may write, a name may be taken by theirs.
 * The fd, -EPERM for a file that is not ours, or -errno. */
static int open_ours(struct pm_spool *sp, const char *name, int flags)
{
	struct stat st;
	int fd;

	fd = openat(sp->dir_fd, name, flags | O_CLOEXEC | O_NOCTTY |
		    O_NOFOLLOW | O_NONBLOCK, SPOOL_FILE_MODE);
	if (fd < 0)
		return errno == ELOOP || errno == ENXIO ? -EPERM : -errno;
	if (fstat(fd, &st) < 0) {
		int r = -errno;

		(void)close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		(void)close(fd);
		return -EPERM;
	}
	return fd;
}

/* Creates 'name', which must not exist yet: whatever has that name (a
 * symlink, a FIFO, anyone's file) is never written through. */
static int create_new(struct pm_spool *sp, const char *name)
{
	int fd = openat(sp->dir_fd, name, O_WRONLY | O_CREAT | O_EXCL |
			O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, SPOOL_FILE_MODE);

	return fd < 0 ? -errno : fd;
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

/* pread(2) of up to 'len' bytes: how many (0 at the end), or -errno. */
static ssize_t read_some(int fd, void *buf, size_t len, uint64_t off)
{
	ssize_t n;

	do {
		n = pread(fd, buf, len, (off_t)off);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Replaces 'name' with 'len' bytes of 'data': written to 'tmp' (made anew:
 * whatever had that name is removed first), synced, renamed over it. */
static int replace_file(struct pm_spool *sp, const char *name, const char *tmp,
			const void *data, size_t len)
{
	int fd, r;

	fd = create_new(sp, tmp);
	if (fd == -EEXIST) {
		/* a leftover of a crash, or put there: not ours to write */
		(void)unlinkat(sp->dir_fd, tmp, 0);
		fd = create_new(sp, tmp);
	}
	if (fd < 0)
		return fd;
	r = pm_write_all(fd, data, len);
	if (r == 0 && !(sp->flags & PM_SPOOL_NOSYNC) && fdatasync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(sp->dir_fd, tmp, sp->dir_fd, name) < 0)
		r = -errno;
	if (r == 0)
		r = sync_dir(sp);
	if (r < 0)
		(void)unlinkat(sp->dir_fd, tmp, 0);
	return r;
}

/* Replaces the progress file: "read on from segment 'seq' at 'off'". */
static int progress_write(struct pm_spool *sp, uint64_t seq, uint64_t off)
{
	unsigned char rec[SPOOL_PROGRESS_SIZE];

	put32(rec, SPOOL_PROGRESS_MAGIC);
	put64(rec + 4, seq);
	put64(rec + 12, off);
	put32(rec + 20, (uint32_t)crc32(0L, rec, 20));
	return replace_file(sp, "progress", "progress.tmp", rec, sizeof(rec));
}

/* 0 with the position, -ENOENT when there is none, -EBADMSG when unreadable
 * (or not ours). */
static int progress_read(struct pm_spool *sp, uint64_t *seq, uint64_t *off)
{
	unsigned char rec[SPOOL_PROGRESS_SIZE + 1];
	ssize_t n;
	int fd;

	fd = open_ours(sp, "progress", O_RDONLY);
	if (fd == -EPERM)
		return -EBADMSG;
	if (fd < 0)
		return fd;
	n = read_some(fd, rec, sizeof(rec), 0);
	(void)close(fd);
	if (n != SPOOL_PROGRESS_SIZE || get32(rec) != SPOOL_PROGRESS_MAGIC ||
	    get32(rec + 20) != (uint32_t)crc32(0L, rec, 20))
		return -EBADMSG;
	*seq = get64(rec + 4);
	*off = get64(rec + 12);
	return 0;
}

/* One segment as the index (written at close) lists it. */
struct index_entry {
	uint64_t seq, records, lines;
};

/* The segments as the last close left them, to tell how many points one
 * deleted while the daemon was stopped held: "PMSI", their number, then
 * (segment, records, lines) each, then a CRC-32 of all that; u32 and u64
 * little-endian. Best effort: none when absent, damaged or not ours. */
static void index_read(struct pm_spool *sp, struct index_entry **out,
		       size_t *n_out)
{
	struct index_entry *e = NULL;
	unsigned char *buf = NULL;
	struct stat st;
	uint32_t n;
	size_t size;
	int fd;

	*out = NULL;
	*n_out = 0;
	fd = open_ours(sp, "index", O_RDONLY);
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || st.st_size < 12 ||
	    (uint64_t)st.st_size > 12 + (uint64_t)SPOOL_INDEX_MAX * SPOOL_INDEX_ENTRY)
		goto out;
	size = (size_t)st.st_size;
	buf = malloc(size);
	if (!buf || read_at(fd, buf, size, 0) < 0)
		goto out;
	n = get32(buf + 4);
	if (get32(buf) != SPOOL_INDEX_MAGIC || n > SPOOL_INDEX_MAX ||
	    size != 12 + (size_t)n * SPOOL_INDEX_ENTRY ||
	    get32(buf + size - 4) != (uint32_t)crc32(0L, buf, (uInt)(size - 4)))
		goto out;
	e = calloc(n ? n : 1, sizeof(*e));
	if (!e)
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		const unsigned char *p = buf + 8 + (size_t)i * SPOOL_INDEX_ENTRY;

		e[i].seq = get64(p);
		e[i].records = get64(p + 8);
		e[i].lines = get64(p + 16);
	}
	*out = e;
	*n_out = n;
out:
	free(buf);
	(void)close(fd);
}

static void index_write(struct pm_spool *sp)
{
	unsigned char *buf;
	size_t size;

	if (sp->n_seg == 0 || sp->n_seg > SPOOL_INDEX_MAX) {
		(void)unlinkat(sp->dir_fd, "index", 0);
		return;
	}
	size = 12 + sp->n_seg * SPOOL_INDEX_ENTRY;
	buf = malloc(size);
	if (!buf)
		return;
	put32(buf, SPOOL_INDEX_MAGIC);
	put32(buf + 4, (uint32_t)sp->n_seg);
	for (size_t i = 0; i < sp->n_seg; i++) {
		unsigned char *p = buf + 8 + i * SPOOL_INDEX_ENTRY;

		put64(p, sp->seg[i].seq);
		put64(p + 8, sp->seg[i].records);
		put64(p + 16, sp->seg[i].lines);
	}
	put32(buf + size - 4, (uint32_t)crc32(0L, buf, (uInt)(size - 4)));
	/* without it a deletion while stopped is still seen, not counted */
	(void)replace_file(sp, "index", "index.tmp", buf, size);
	free(buf);
}

static int segment_open(struct pm_spool *sp, uint64_t seq, int flags)
{
	char name[32];

	segment_name(name, sizeof(name), seq);
	return open_ours(sp, name, flags);
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

/* A header that frames a record within the first 'size' bytes. */
static bool header_sane(const unsigned char *h, uint64_t off, uint64_t size)
{
	uint32_t len = get32(h + 4);

	return get32(h) == SPOOL_RECORD_MAGIC && len > 0 &&
	       len <= PM_SPOOL_RECORD_MAX && get32(h + 8) <= len &&
	       off + PM_SPOOL_HEADER_SIZE + len <= size;
}

/* 1 when the payload of the record whose header 'h' is at 'off' reads back
 * with its checksum, 0 when not, or -errno; read in pieces into 'buf'
 * (SPOOL_READ_CHUNK bytes), as a record may be 64 MiB. */
static int record_intact(int fd, const unsigned char *h, uint64_t off,
			 unsigned char *buf)
{
	uLong crc = crc32(0L, Z_NULL, 0);
	uint64_t left = get32(h + 4), pos = off + PM_SPOOL_HEADER_SIZE;

	crc = crc32(crc, h + 8, 4);
	while (left > 0) {
		size_t n = left > SPOOL_READ_CHUNK ? SPOOL_READ_CHUNK :
			(size_t)left;
		int r = read_at(fd, buf, n, pos);

		if (r == -ENODATA || r == -EIO)
			return 0;
		if (r < 0)
			return r;
		crc = crc32(crc, buf, (uInt)n);
		left -= n;
		pos += n;
	}
	return (uint32_t)crc == get32(h + 12) ? 1 : 0;
}

/* Where the next intact record (its magic, a header that frames it within
 * 'size', its checksum) starts at or after 'from': into *next, 'size' when
 * none does. How the end of a damaged stretch is found. */
static int find_record(int fd, uint64_t from, uint64_t size, uint64_t *next)
{
	static const unsigned char magic[4] = { 'P', 'M', 'S', '1' };
	unsigned char *buf = malloc(SPOOL_READ_CHUNK);
	unsigned char *payload = malloc(SPOOL_READ_CHUNK);
	unsigned tries = 0;
	uint64_t pos = from;
	int r = 0;

	*next = size;
	if (!buf || !payload) {
		r = -ENOMEM;
		goto out;
	}
	while (pos + PM_SPOOL_HEADER_SIZE <= size && tries < SPOOL_RESYNC_TRIES) {
		size_t want = size - pos > SPOOL_READ_CHUNK ? SPOOL_READ_CHUNK :
			(size_t)(size - pos);
		ssize_t n = read_some(fd, buf, want, pos);
		const unsigned char *p = buf, *end;

		if (n == -EIO)
			break;	/* unreadable from here: taken as damaged */
		if (n < 0) {
			r = (int)n;
			goto out;
		}
		if (n < 4)
			break;
		end = buf + n;
		while (tries < SPOOL_RESYNC_TRIES &&
		       (p = memmem(p, (size_t)(end - p), magic, 4)) != NULL) {
			uint64_t at = pos + (uint64_t)(p - buf);
			unsigned char h[PM_SPOOL_HEADER_SIZE];

			if (read_at(fd, h, sizeof(h), at) == 0 &&
			    header_sane(h, at, size)) {
				tries++;
				r = record_intact(fd, h, at, payload);
				if (r < 0)
					goto out;
				if (r == 1) {
					*next = at;
					r = 0;
					goto out;
				}
			}
			p++;
		}
		if ((size_t)n < want)
			break;	/* the file ends here */
		pos += (uint64_t)n - 3;	/* a magic across the edge is seen next */
	}
	r = 0;
out:
	free(buf);
	free(payload);
	return r;
}

/* The newlines in bytes [from, to) of a file: the lines a damaged stretch
 * held, as far as can be told. */
static uint64_t count_newlines(int fd, uint64_t from, uint64_t to)
{
	unsigned char *buf = malloc(SPOOL_READ_CHUNK);
	uint64_t n = 0;

	if (!buf)
		return 0;
	while (from < to) {
		size_t want = to - from > SPOOL_READ_CHUNK ? SPOOL_READ_CHUNK :
			(size_t)(to - from);
		ssize_t got = read_some(fd, buf, want, from);
		const unsigned char *p = buf, *end = buf + (got > 0 ? got : 0);

		if (got <= 0)
			break;
		while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
			n++;
			p++;
		}
		from += (uint64_t)got;
	}
	free(buf);
	return n;
}

/* What walking a segment's records found. */
struct seg_walk {
	uint64_t records, lines;	/* whole records at or after *from */
	uint64_t bad_records, bad_lines;	/* damaged stretches among them */
	uint64_t end;		/* where records can be framed no further */
	bool tail;		/* something after 'end', at or after *from: */
	bool torn;		/* a record cut short (a crash while appending) */
	uint64_t tail_lines;	/* its lines (the header's, or the newlines) */
};

/* Walks the records of the first 'size' bytes of a segment from 'start', a
 * record boundary. A header that frames nothing starts a damaged stretch,
 * which ends where the next intact record starts; with none after it, it is
 * the tail. *from (where reading resumes) moves to the next boundary when
 * it falls inside a record or a stretch; what lies before it is not
 * counted. */
static int segment_walk(int fd, uint64_t start, uint64_t size, uint64_t *from,
			struct seg_walk *w)
{
	unsigned char h[PM_SPOOL_HEADER_SIZE];
	uint64_t off = start, next;
	int r, rh;

	memset(w, 0, sizeof(*w));
	while (off < size) {
		rh = read_at(fd, h, sizeof(h), off);
		if (rh < 0 && rh != -ENODATA && rh != -EIO)
			return rh;
		if (rh == 0 && header_sane(h, off, size)) {
			uint64_t end = off + sizeof(h) + get32(h + 4);

			if (off < *from && end > *from)
				*from = end;
			if (off >= *from) {
				w->records++;
				w->lines += get32(h + 8);
			}
			off = end;
			continue;
		}
		r = find_record(fd, off + 1, size, &next);
		if (r < 0)
			return r;
		if (next >= size) {
			w->end = off;
			if (off < *from)
				return 0;
			w->tail = true;
			if (rh == -ENODATA) {
				w->torn = true;	/* the header itself cut short */
			} else if (rh == 0 && get32(h) == SPOOL_RECORD_MAGIC &&
				   get32(h + 4) > 0 &&
				   get32(h + 4) <= PM_SPOOL_RECORD_MAX &&
				   get32(h + 8) <= get32(h + 4)) {
				w->torn = true;	/* a whole header, its payload cut */
				w->tail_lines = get32(h + 8);
			} else {
				w->tail_lines = count_newlines(fd,
					off + PM_SPOOL_HEADER_SIZE, size);
			}
			return 0;
		}
		if (off >= *from) {
			w->bad_records++;
			w->bad_lines += count_newlines(fd,
				off + PM_SPOOL_HEADER_SIZE, next);
		} else if (next > *from) {
			*from = next;
		}
		off = next;
	}
	w->end = size;
	return 0;
}

/* Opening: counts one segment's records at or after *from, remembers its
 * damaged stretches (skipped when read), and cuts off a tail that cannot be
 * framed (a torn last record, or damage up to the end): lost, and counted. */
static int segment_scan(struct pm_spool *sp, int fd, struct spool_segment *s,
			uint64_t *from)
{
	struct seg_walk w;
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;
	r = segment_walk(fd, 0, (uint64_t)st.st_size, from, &w);
	if (r < 0)
		return r;
	if (w.tail && w.torn) {
		sp->st.torn_records++;
		sp->st.torn_lines += w.tail_lines;
	} else if (w.tail) {
		sp->st.corrupt_records++;
		sp->st.corrupt_lines += w.tail_lines;
	}
	if (w.end < (uint64_t)st.st_size && ftruncate(fd, (off_t)w.end) < 0)
		return -errno;
	s->size = w.end;
	s->records = w.records;
	s->lines = w.lines;
	s->bad_records = w.bad_records;
	s->bad_lines = w.bad_lines;
	return 0;
}

static int seq_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The segment numbers in the directory, sorted: *n of ours in *out, and
 * *n_other of names taken by files that are not ours (not a regular file
 * of this user) in *other. */
static int list_segments(struct pm_spool *sp, uint64_t **out, size_t *n,
			 uint64_t **other, size_t *n_other)
{
	uint64_t *list[2] = { NULL, NULL }, seq;
	size_t count[2] = { 0, 0 }, alloc[2] = { 0, 0 };
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
		struct stat st;
		int k;

		if (parse_segment_name(de->d_name, &seq) < 0)
			continue;
		k = fstatat(sp->dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && st.st_uid == geteuid() ? 0 : 1;
		if (count[k] == alloc[k]) {
			size_t na = alloc[k] ? alloc[k] * 2 : 16;
			uint64_t *p = realloc(list[k], na * sizeof(*p));

			if (!p) {
				r = -ENOMEM;
				goto out;
			}
			list[k] = p;
			alloc[k] = na;
		}
		list[k][count[k]++] = seq;
	}
	for (int k = 0; k < 2; k++)
		if (count[k] > 0)
			qsort(list[k], count[k], sizeof(*list[k]), seq_cmp);
	*out = list[0];
	*n = count[0];
	*other = list[1];
	*n_other = count[1];
	list[0] = list[1] = NULL;
out:
	free(list[0]);
	free(list[1]);
	(void)closedir(d);
	return r;
}

static bool seq_listed(const uint64_t *seqs, size_t n, uint64_t seq)
{
	return n > 0 && bsearch(&seq, seqs, n, sizeof(*seqs), seq_cmp) != NULL;
}

/* Segments are numbered without gaps from the read position on: one that is
 * missing was deleted from outside. Those the index (the last close) lists
 * are counted with their points; others (after a crash) only as missing. */
static void count_missing(struct pm_spool *sp, uint64_t p_seq,
			  const uint64_t *seqs, size_t n,
			  const uint64_t *other, size_t n_other,
			  const struct index_entry *idx, size_t n_idx)
{
	uint64_t first, last, present = 0, in_range_known = 0;

	for (size_t i = 0; i < n_idx; i++) {
		if (idx[i].seq < p_seq || seq_listed(seqs, n, idx[i].seq) ||
		    seq_listed(other, n_other, idx[i].seq))
			continue;
		sp->st.deleted_segments++;
		sp->st.deleted_records += idx[i].records;
		sp->st.deleted_lines += idx[i].lines;
		if (sp->n_seg > 0 && idx[i].seq > sp->seg[0].seq &&
		    idx[i].seq < sp->seg[sp->n_seg - 1].seq)
			in_range_known++;
	}
	if (sp->n_seg < 2)
		return;
	first = sp->seg[0].seq;
	last = sp->seg[sp->n_seg - 1].seq;
	for (size_t i = 0; i < n; i++)
		present += seqs[i] >= first && seqs[i] <= last;
	for (size_t i = 0; i < n_other; i++)
		present += other[i] >= first && other[i] <= last;
	if (last - first + 1 > present + in_range_known)
		sp->st.missing_segments += last - first + 1 - present -
			in_range_known;
}

/* Rebuilds the segment list from the directory and the progress file. */
static int spool_load(struct pm_spool *sp)
{
	uint64_t *seqs = NULL, *other = NULL, p_seq = 0, p_off = 0;
	struct index_entry *idx = NULL;
	size_t n = 0, n_other = 0, n_idx = 0;
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
	index_read(sp, &idx, &n_idx);
	/* from now on it would be stale */
	(void)unlinkat(sp->dir_fd, "index", 0);
	r = list_segments(sp, &seqs, &n, &other, &n_other);
	if (r < 0)
		goto out;
	sp->st.foreign_files = n_other;
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
		if (fd == -EPERM || fd == -ENOENT) {
			sp->st.foreign_files += fd == -EPERM;
			continue;	/* changed since it was listed */
		}
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
	for (size_t i = 0; i < n_other; i++)
		if (other[i] >= sp->next_seq)
			sp->next_seq = other[i] + 1;
	count_missing(sp, p_seq, seqs, n, other, n_other, idx, n_idx);
	/* a first segment already read to its end goes now */
	while (sp->n_seg > 0 && sp->seg[0].records == 0 &&
	       sp->seg[0].bad_records == 0 && sp->rd_off >= sp->seg[0].size) {
		r = segment_remove_first(sp);
		if (r < 0)
			goto out;
	}
	r = 0;
out:
	free(seqs);
	free(other);
	free(idx);
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
	r = dir_check(sp->dir_fd);
	if (r < 0)
		goto fail;
	sp->lock_fd = open_ours(sp, "lock", O_RDWR | O_CREAT);
	if (sp->lock_fd < 0) {
		r = sp->lock_fd;
		goto fail;
	}
	if (flock(sp->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto fail;
	}
	(void)unlinkat(sp->dir_fd, "progress.tmp", 0);
	(void)unlinkat(sp->dir_fd, "index.tmp", 0);
	r = spool_load(sp);
	if (r < 0)
		goto fail;
	sp->loaded = true;
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
	if (sp->loaded)
		index_write(sp);
	close_fd(&sp->lock_fd);	/* releases the flock */
	close_fd(&sp->dir_fd);
	free(sp->seg);
	free(sp->dir);
	free(sp);
}

/* Whether the peek the caller holds is seg[0] from the read position. */
static bool peek_in_first(const struct pm_spool *sp)
{
	return sp->peek.active && sp->n_seg > 0 &&
	       sp->peek.seq == sp->seg[0].seq && sp->peek.off == sp->rd_off;
}

/* Removes the oldest segments while the spool is over its bound, never the
 * last (it holds the record just written). Their points are lost: to the
 * bound, or to whoever deleted the file first; the records of a peek the
 * caller holds are the caller's, not lost. */
static void spool_trim(struct pm_spool *sp, uint64_t *dropped_lines)
{
	while (sp->n_seg > 1 && sp->bytes > sp->max_bytes) {
		struct spool_segment *s = &sp->seg[0];
		uint64_t records = s->records, lines = s->lines;
		char name[32];
		struct stat st;

		if (peek_in_first(sp)) {
			records -= sp->peek.records < records ?
				sp->peek.records : records;
			lines -= sp->peek.lines < lines ? sp->peek.lines : lines;
			sp->peek.released = true;
		}
		segment_name(name, sizeof(name), s->seq);
		if (fstatat(sp->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 &&
		    errno == ENOENT) {
			sp->st.deleted_segments++;
			sp->st.deleted_records += records;
			sp->st.deleted_lines += lines;
		} else {
			sp->st.dropped_records += records;
			sp->st.dropped_lines += lines;
			if (dropped_lines)
				*dropped_lines += lines;
		}
		sp->st.corrupt_records += s->bad_records;
		sp->st.corrupt_lines += s->bad_lines;
		/* the record is in; a read position not saved replays more
		 * after a restart, it loses nothing */
		(void)segment_remove_first(sp);
	}
}

/* A new segment, numbered next_seq or, when a file not ours has that name,
 * the next free number. */
static int segment_create(struct pm_spool *sp)
{
	char name[32];

	for (int i = 0; i < SPOOL_CREATE_TRIES; i++) {
		int fd;

		segment_name(name, sizeof(name), sp->next_seq);
		fd = create_new(sp, name);
		if (fd != -EEXIST)
			return fd;
		sp->next_seq++;
	}
	return -EEXIST;
}

int pm_spool_append(struct pm_spool *sp, const char *text, size_t len,
		    size_t lines, uint64_t *dropped_lines)
{
	unsigned char h[PM_SPOOL_HEADER_SIZE];
	struct iovec iov[2];
	struct spool_segment *last;
	uint64_t need = PM_SPOOL_HEADER_SIZE + (uint64_t)len;
	struct stat st;
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
	if (sp->append_fd >= 0 && fstat(sp->append_fd, &st) == 0 &&
	    st.st_nlink == 0)
		close_fd(&sp->append_fd);	/* deleted from outside: what
						   it held is counted when
						   reading reaches it */
	if (sp->append_fd < 0) {
		struct spool_segment s = {0};
		int fd;

		r = segment_create(sp);
		if (r < 0)
			return r;
		fd = r;
		s.seq = sp->next_seq;
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
		int t;

		r = -errno;
		/* leave no half record behind; if even that fails, the
		 * reader finds a torn record there, skips and counts it */
		t = ftruncate(sp->append_fd, (off_t)last->size);
		(void)t;
		return r;
	}
	last->size += need;
	last->records++;
	last->lines += lines;
	sp->bytes += need;
	/* Written first, made room for after: a write that fails has cost
	 * nothing (the bound is exceeded by one record for that long). */
	spool_trim(sp, dropped_lines);
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

/* Moves the read position of seg[0] to 'end_off' past 'records' records and
 * 'lines' lines, removing the segment once read to its end. */
static int spool_advance(struct pm_spool *sp, uint64_t end_off,
			 uint64_t records, uint64_t lines)
{
	struct spool_segment *s = &sp->seg[0];

	sp->rd_off = end_off;
	s->records -= records < s->records ? records : s->records;
	s->lines -= lines < s->lines ? lines : s->lines;
	if (sp->rd_off >= s->size) {
		s->records = s->lines = 0;
		s->bad_records = s->bad_lines = 0;
		return segment_remove_first(sp);
	}
	return progress_write(sp, s->seq, sp->rd_off);
}

static uint64_t sub_floor0(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/* Reads past the damaged stretch at 'off' of seg[0] (the read position): to
 * the next intact record, or the segment's end. What the segment held
 * before and holds no longer is lost: counted as damaged. */
static int skip_damaged(struct pm_spool *sp, int fd, uint64_t off)
{
	struct spool_segment *s = &sp->seg[0];
	struct seg_walk w = {0};
	uint64_t next, from, lost;
	int r;

	r = find_record(fd, off + 1, s->size, &next);
	if (r < 0)
		return r;
	from = next;
	if (next < s->size) {
		/* counted again: the file may have changed under us */
		r = segment_walk(fd, next, s->size, &from, &w);
		if (r < 0)
			return r;
		if (w.tail) {
			/* left to be skipped in turn */
			w.bad_records++;
			w.bad_lines += w.tail_lines;
		}
	}
	lost = sub_floor0(s->records, w.records) +
		sub_floor0(s->bad_records, w.bad_records);
	sp->st.corrupt_records += lost > 0 ? lost : 1;
	sp->st.corrupt_lines += sub_floor0(s->lines, w.lines) +
		sub_floor0(s->bad_lines, w.bad_lines);
	s->records = w.records;
	s->lines = w.lines;
	s->bad_records = w.bad_records;
	s->bad_lines = w.bad_lines;
	return spool_advance(sp, next, 0, 0);
}

int pm_spool_peek_oldest(struct pm_spool *sp, size_t max_bytes,
			 size_t max_lines, struct pm_spool_batch *b)
{
	unsigned char h[PM_SPOOL_HEADER_SIZE];
	char *text = NULL;
	size_t len = 0, lines = 0, records = 0, alloc = 0;
	uint64_t off;
	int fd, r;

	sp->peek.active = false;
again:
	if (sp->n_seg == 0 || (sp->seg[0].records == 0 && sp->n_seg == 1))
		return -ENOENT;
	if (sp->rd_off >= sp->seg[0].size ||
	    (sp->seg[0].records == 0 && sp->seg[0].bad_records == 0)) {
		/* read to its end earlier (nothing left uncommitted) */
		r = segment_remove_first(sp);
		if (r < 0)
			return r;
		goto again;
	}
	fd = spool_read_fd(sp);
	if (fd == -ENOENT || fd == -EPERM) {
		/* Deleted behind our back (or another's file put in its
		 * place): its points are gone. Not passed on, -ENOENT would
		 * say "empty" while records are counted, and the writer would
		 * ask again at once, for ever. */
		struct spool_segment *s = &sp->seg[0];

		sp->st.deleted_segments++;
		sp->st.deleted_records += s->records;
		sp->st.deleted_lines += s->lines;
		sp->st.corrupt_records += s->bad_records;
		sp->st.corrupt_lines += s->bad_lines;
		r = spool_advance(sp, s->size, s->records, s->lines);
		if (r < 0)
			return r;
		goto again;
	}
	if (fd < 0)
		return fd;
	off = sp->rd_off;
	while (off < sp->seg[0].size) {
		uint32_t rec_len, rec_lines;
		bool intact;
		char *p;

		/* Shorter than written (changed under us) or unreadable (a bad
		 * block): damaged, or replay would stop here for good and the
		 * spool only ever grow. */
		r = read_at(fd, h, sizeof(h), off);
		if (r < 0 && r != -ENODATA && r != -EIO)
			goto fail;
		intact = r == 0 && header_sane(h, off, sp->seg[0].size);
		rec_len = intact ? get32(h + 4) : 0;
		rec_lines = intact ? get32(h + 8) : 0;
		if (intact && records > 0 && (len + rec_len > max_bytes ||
					      lines + rec_lines > max_lines))
			break;
		if (intact && len + rec_len + 1 > alloc) {
			/* doubling: a few reallocations per batch, not one
			 * per record (each a copy, and holes in the heap) */
			size_t n = alloc ? alloc : 64 * 1024;

			while (n < len + rec_len + 1)
				n *= 2;
			p = realloc(text, n);
			if (!p) {
				r = -ENOMEM;
				goto fail;
			}
			text = p;
			alloc = n;
		}
		if (intact) {
			r = read_at(fd, text + len, rec_len, off + sizeof(h));
			if (r < 0 && r != -ENODATA && r != -EIO)
				goto fail;
			intact = r == 0 && record_crc(h + 8, text + len, rec_len) ==
				get32(h + 12);
		}
		if (!intact) {
			if (records > 0)
				break;	/* the next peek skips it */
			r = skip_damaged(sp, fd, off);
			if (r < 0)
				goto fail;
			free(text);
			text = NULL;
			alloc = 0;
			goto again;
		}
		len += rec_len;
		lines += rec_lines;
		records++;
		off += sizeof(h) + rec_len;
	}
	if (records == 0) {
		free(text);
		return -ENOENT;	/* cannot happen: rd_off < size above */
	}
	text[len] = '\0';
	b->text = text;
	b->len = len;
	b->lines = lines;
	b->records = records;
	b->seq = sp->seg[0].seq;
	b->off = sp->rd_off;
	b->end_off = off;
	b->spool = sp;
	sp->peek.active = true;
	sp->peek.released = false;
	sp->peek.seq = b->seq;
	sp->peek.off = b->off;
	sp->peek.end_off = b->end_off;
	sp->peek.records = records;
	sp->peek.lines = lines;
	return 0;
fail:
	free(text);
	return r;
}

static bool peek_is(const struct pm_spool *sp, const struct pm_spool_batch *b)
{
	return sp->peek.active && b->seq == sp->peek.seq &&
	       b->off == sp->peek.off && b->end_off == sp->peek.end_off;
}

int pm_spool_commit_oldest(struct pm_spool *sp, const struct pm_spool_batch *b)
{
	if (peek_is(sp, b) && sp->peek.released) {
		/* its segment went to the bound while the caller held it */
		sp->peek.active = false;
		return 0;
	}
	if (sp->n_seg == 0 || b->seq != sp->seg[0].seq || b->off != sp->rd_off ||
	    b->end_off > sp->seg[0].size || b->end_off <= b->off)
		return -ESTALE;
	sp->peek.active = false;
	return spool_advance(sp, b->end_off, b->records, b->lines);
}

void pm_spool_batch_free(struct pm_spool_batch *b)
{
	/* given up: the records are the spool's again */
	if (b->spool && peek_is(b->spool, b))
		b->spool->peek.active = false;
	free(b->text);
	b->text = NULL;
	b->spool = NULL;
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
