/* ring.h — the bounded queue between poller threads and the InfluxDB writer.
 * Each entry is a chunk of line protocol whose ownership passes through the
 * ring: the producer mallocs it, the consumer frees it. */
#ifndef PM_RING_H
#define PM_RING_H

#include <stddef.h>
#include <stdint.h>

struct pm_chunk {
	char *text;	/* line protocol, '\n'-terminated lines */
	size_t len;
	size_t lines;
};

struct pm_ring;

/* At most 'max_chunks' entries and 'max_bytes' of text. */
int pm_ring_new(struct pm_ring **r, size_t max_chunks, size_t max_bytes);
/* Frees the ring and any chunks still in it. */
void pm_ring_free(struct pm_ring *r);
/* Takes ownership of c->text. Never blocks: when full, the oldest chunk is
 * dropped and counted (returns 1), else returns 0. */
int pm_ring_put(struct pm_ring *r, struct pm_chunk *c);
/* Waits up to timeout_ms (-1: forever) for a chunk. Returns 0 with *c
 * filled, -EINTR once after pm_ring_kick() when the ring is empty (so
 * everything put before the kick has been taken), -ETIMEDOUT, or
 * -ECANCELED once closed and empty. */
int pm_ring_take(struct pm_ring *r, struct pm_chunk *c, int timeout_ms);
/* Tells the consumer "a complete set is in" (e.g. the end of a poll tick)
 * without queuing anything; never drops a chunk. */
void pm_ring_kick(struct pm_ring *r);
/* Wakes the consumer; later puts are still accepted until freed. */
void pm_ring_close(struct pm_ring *r);
void pm_ring_stats(struct pm_ring *r, size_t *queued_lines,
		   uint64_t *dropped_lines);
/* Chunks and bytes queued now (for memory accounting and tests). */
void pm_ring_usage(struct pm_ring *r, size_t *chunks, size_t *bytes);

#endif
