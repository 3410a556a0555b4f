/* spool.h — the on-disk queue of line-protocol batches the database has not
 * taken yet: append-only segment files of checksummed records under one
 * directory, read oldest first, with the read position kept in a file that
 * is replaced atomically. Single owner (the InfluxDB writer thread); a lock
 * file keeps a second process or sink off the same directory.
 *
 * Layout of <dir> (which only root or this user may own, and only its owner
 * write unless it is sticky; every file in it is created O_EXCL|O_NOFOLLOW
 * and only regular files of this user are read, so nothing put there by
 * another user is written through or replayed):
 *   lock                   flock(2)ed while open
 *   progress               where reading resumes: segment number, offset
 *   index                  written at close: each segment's records and
 *                          lines, to count what one deleted meanwhile held
 *   <16 hex digits>.seg    segments, numbered in write order, no gaps
 * A record is a 16-byte header and the payload (the batch's text as it was
 * formatted, original timestamps included):
 *   magic "PMS1" | payload length | line count | CRC-32 of (line count,
 *   payload)     — all u32 little-endian.
 *
 * Durability: each append is fdatasync(2)ed before it returns (one small
 * write per flush interval, about 1/s, is cheap even on an SD card), and the
 * progress file is written to a temporary name, synced and renamed. After a
 * crash a torn last record is cut off, a record whose checksum fails is
 * skipped; both are counted. A damaged header in the middle of a segment
 * costs only its record: reading goes on at the next intact one (found by
 * its magic, framing and checksum). A crash between the database's answer
 * and the commit resends that batch once (InfluxDB overwrites identical
 * points).
 *
 * Losses: every point lost is counted once, under its cause (the *_lines
 * counters of pm_spool_stats), when it is lost: a damaged stretch when
 * reading passes it (or its segment goes), a torn or damaged tail when it
 * is cut off at open, a deleted segment when reading reaches it (or at open
 * when the index says what it held), the oldest segments when the bound
 * removes them. */
#ifndef PM_SPOOL_H
#define PM_SPOOL_H

#include <stddef.h>
#include <stdint.h>

/* A record's payload is never larger than this (a batch is 1 MiB by
 * default); a larger length in a header means the header is garbage. */
#define PM_SPOOL_RECORD_MAX (64u * 1024 * 1024)
#define PM_SPOOL_HEADER_SIZE 16
/* Smallest accepted size bound. */
#define PM_SPOOL_MIN_BYTES (16u * 1024)

/* pm_spool_open() flags */
#define PM_SPOOL_NOSYNC 0x1	/* no fsync: for benchmarks and tests only */

struct pm_spool;

struct pm_spool_stats {
	uint64_t bytes;		/* on disk, all segments */
	uint64_t segments;
	uint64_t records;	/* not yet committed */
	uint64_t lines;		/* not yet committed */
	/* lost since open, by cause (the *_lines sum to the points lost) */
	uint64_t dropped_records;	/* size bound: oldest segments removed */
	uint64_t dropped_lines;
	uint64_t corrupt_records;	/* damaged (magic, framing, CRC, an
					   unreadable block, a file cut short
					   under us) and skipped, or a damaged
					   tail cut off at open */
	uint64_t corrupt_lines;		/* as far as their headers (or, for
					   a damaged header, the newlines of
					   the stretch) tell */
	uint64_t torn_records;		/* cut off at open (crash mid-append) */
	uint64_t torn_lines;		/* as their headers said */
	uint64_t deleted_segments;	/* deleted from outside, contents known */
	uint64_t deleted_records;
	uint64_t deleted_lines;
	uint64_t missing_segments;	/* deleted while closed, after a crash
					   (no index): contents unknown */
	uint64_t foreign_files;		/* named as ours, not ours: ignored */
	int progress_lost;	/* progress file unreadable: replaying all */
};

/* Consecutive records from the oldest, as one text. */
struct pm_spool_batch {
	char *text;		/* malloc'd, NUL-terminated, lines end in \n */
	size_t len;
	size_t lines;
	size_t records;
	uint64_t seq, off;	/* where it starts */
	uint64_t end_off;	/* where it ends, in the same segment */
	struct pm_spool *spool;	/* whose peek it is */
};

/* Opens (creating 'dir' 0750 as needed) the spool, bounded to 'max_bytes'
 * on disk. Returns 0, -EBUSY (another process has it open), -EINVAL
 * (max_bytes below PM_SPOOL_MIN_BYTES), -EPERM ('dir' belongs to another
 * user than root or ours, or others may write it and it is not sticky; or
 * its lock file is not ours) or -errno. Scans the segment headers (not the
 * payloads): torn tails are truncated here. */
int pm_spool_open(struct pm_spool **sp, const char *dir, uint64_t max_bytes,
		  unsigned flags);
/* Closes; everything not committed stays for the next open. NULL ignored. */
void pm_spool_close(struct pm_spool *sp);

/* Appends one record of 'lines' lines. When the bound is then exceeded, the
 * oldest segments are removed (after the record is written: for that long
 * the spool may exceed its bound by one record) and their uncommitted lines
 * added to *dropped_lines (may be NULL); the records of a peek the caller
 * holds (not yet committed nor freed) are not counted: they are the
 * caller's, and their commit then succeeds with nothing left to do.
 * Returns 0, -PM_ETOOBIG (the record alone exceeds the bound or
 * PM_SPOOL_RECORD_MAX), -EINVAL (empty) or -errno (the spool is unchanged
 * then: nothing was removed). */
int pm_spool_append(struct pm_spool *sp, const char *text, size_t len,
		    size_t lines, uint64_t *dropped_lines);

/* Reads the oldest uncommitted records, as many as fit in max_bytes and
 * max_lines (at least one), into *b, which the caller holds until it
 * commits or frees it (free it before closing the spool). Damaged records
 * met first are skipped and counted, and so are unreadable ones (EIO, a
 * file cut short under us) and deleted segments. Returns 0, -ENOENT
 * (nothing to read), or -errno. */
int pm_spool_peek_oldest(struct pm_spool *sp, size_t max_bytes,
			 size_t max_lines, struct pm_spool_batch *b);
/* Marks what 'b' (the latest peek) holds as delivered; persists the read
 * position and removes segments read to their end. Returns 0 (also when
 * the bound removed its segment meanwhile), -ESTALE ('b' does not start at
 * the read position) or -errno. */
int pm_spool_commit_oldest(struct pm_spool *sp, const struct pm_spool_batch *b);
void pm_spool_batch_free(struct pm_spool_batch *b);

void pm_spool_stats(const struct pm_spool *sp, struct pm_spool_stats *st);

#endif
