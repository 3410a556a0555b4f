/* fuzz_spool.c — the spool's reader (src/output/spool.c): a spool
 * directory made from the input is opened (its progress file and segment
 * headers scanned, torn tails cut), then read and committed batch by batch
 * as the InfluxDB writer replays it, then written to and read once more.
 *
 * The input: one flags byte, then the parts separated by "%%SEG%%": with
 * FLAG_PROGRESS the first part is the progress file, with FLAG_INDEX the
 * next one is the index (what the last close left), the others are
 * segments 1, 2, ... (FLAG_SEQ_GAP: 1, 3, 5, ...). The CRC-32s of the
 * records, the progress file and the index cannot be forged by the fuzzer,
 * so FLAG_FIX_CRC makes every record whose header frames it carry the right
 * one, FLAG_FIX_PROGRESS and FLAG_FIX_INDEX those files' last 4 bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include <powermeter/powermeter.h>

#include "fuzz.h"
#include "output/spool.h"

#define SEGMENT_SEPARATOR "%%SEG%%"
#define SEGMENTS_MAX 6

#define FLAG_PROGRESS		0x01
#define FLAG_FIX_CRC		0x02
#define FLAG_FIX_PROGRESS	0x04
#define FLAG_SEQ_GAP		0x08
#define FLAG_SMALL_BOUND	0x10	/* the smallest bound: appends drop */
#define FLAG_SMALL_BATCHES	0x20	/* a batch of one record at a time */
#define FLAG_INDEX		0x40
#define FLAG_FIX_INDEX		0x80

/* spool.c's layout (spool.h): "PMS1", length, lines, CRC-32 of (lines,
 * payload), all u32 little-endian; the progress file "PMSP", segment
 * (u64), offset (u64), CRC-32 of the 20 bytes before; the index "PMSI",
 * a count, (segment, records, lines) as u64 each, CRC-32 of all before. */
#define PROGRESS_SIZE 24

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void fix_records(uint8_t *seg, size_t len)
{
	size_t off = 0;

	while (off + PM_SPOOL_HEADER_SIZE <= len) {
		uint32_t n = get32(seg + off + 4);

		if (n > len - off - PM_SPOOL_HEADER_SIZE)
			break;
		put32(seg + off + 12,
		      (uint32_t)crc32(crc32(0L, seg + off + 8, 4),
				      seg + off + PM_SPOOL_HEADER_SIZE, (uInt)n));
		off += PM_SPOOL_HEADER_SIZE + n;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (mkdir(fuzz_path("spool"), 0700) < 0)
		abort();
	return 0;
}

static void replay(struct pm_spool *sp, size_t max_bytes, size_t max_lines)
{
	struct pm_spool_batch b;
	struct pm_spool_stats st;

	for (int i = 0; i < 64; i++) {
		memset(&b, 0, sizeof(b));
		if (pm_spool_peek_oldest(sp, max_bytes, max_lines, &b) < 0)
			break;
		if (b.text && strlen(b.text) > b.len)
			abort();	/* a batch's text is as long as it says */
		if (pm_spool_commit_oldest(sp, &b) < 0) {
			pm_spool_batch_free(&b);
			break;
		}
		pm_spool_batch_free(&b);
	}
	pm_spool_stats(sp, &st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char more[] = "m,device_id=1 current=1.5 1700000000000\n"
				   "m,device_id=2 current=2.5 1700000000000\n";
	struct fuzz_part part[SEGMENTS_MAX + 1];
	struct pm_spool *sp;
	size_t n, first = 0;
	unsigned flags;
	uint64_t dropped = 0;
	char name[32];

	if (size < 1)
		return 0;
	flags = data[0];
	n = fuzz_split(data + 1, size - 1, SEGMENT_SEPARATOR, part,
		       SEGMENTS_MAX + 1);
	fuzz_clear("spool");
	if (flags & FLAG_PROGRESS) {
		uint8_t prog[PROGRESS_SIZE + 8];
		size_t len = part[0].len < sizeof(prog) ? part[0].len : sizeof(prog);

		memcpy(prog, part[0].data, len);
		if ((flags & FLAG_FIX_PROGRESS) && len == PROGRESS_SIZE)
			put32(prog + 20, (uint32_t)crc32(0L, prog, 20));
		fuzz_write(fuzz_path("spool/progress"), prog, len);
		first = 1;
	}
	if ((flags & FLAG_INDEX) && first < n) {
		uint8_t *idx = malloc(part[first].len + 1);
		size_t len = part[first].len;

		if (!idx)
			abort();
		memcpy(idx, part[first].data, len);
		if ((flags & FLAG_FIX_INDEX) && len >= 8)
			put32(idx + len - 4, (uint32_t)crc32(0L, idx, (uInt)(len - 4)));
		fuzz_write(fuzz_path("spool/index"), idx, len);
		free(idx);
		first++;
	}
	for (size_t i = first; i < n; i++) {
		uint8_t *seg = malloc(part[i].len ? part[i].len : 1);
		size_t seq = i - first + 1;

		if (!seg)
			abort();
		memcpy(seg, part[i].data, part[i].len);
		if (flags & FLAG_FIX_CRC)
			fix_records(seg, part[i].len);
		if (flags & FLAG_SEQ_GAP)
			seq = 2 * seq - 1;
		(void)snprintf(name, sizeof(name), "spool/%016zx.seg", seq);
		fuzz_write(fuzz_path(name), seg, part[i].len);
		free(seg);
	}

	if (pm_spool_open(&sp, fuzz_path("spool"),
			  flags & FLAG_SMALL_BOUND ? PM_SPOOL_MIN_BYTES
						   : 1u << 20,
			  PM_SPOOL_NOSYNC) < 0)
		return 0;
	replay(sp, flags & FLAG_SMALL_BATCHES ? 1 : 64 * 1024, 5000);
	(void)pm_spool_append(sp, more, sizeof(more) - 1, 2, &dropped);
	replay(sp, 64 * 1024, 5000);
	pm_spool_close(sp);
	return 0;
}
