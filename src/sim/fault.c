/* fault.c — the faults a simulated module can show on demand, how each
 * one spoils an otherwise correct answer frame, and the noisy line that
 * spoils answers at random. */
#include <errno.h>
#include <string.h>

#include "sim.h"

static const char *const fault_names[] = {
	[SIM_FAULT_NONE] = "none",
	[SIM_FAULT_NOANSWER] = "noanswer",
	[SIM_FAULT_BADCRC] = "badcrc",
	[SIM_FAULT_TRUNCATE] = "truncate",
	[SIM_FAULT_GARBAGE] = "garbage",
	[SIM_FAULT_WRONGADDR] = "wrongaddr",
	[SIM_FAULT_EXCEPTION] = "exception",
	[SIM_FAULT_STALL] = "stall",
	[SIM_FAULT_NOISY] = "noisy",
};

const enum sim_fault_kind sim_noise_kinds[SIM_NOISE_KINDS] = {
	SIM_FAULT_BADCRC, SIM_FAULT_TRUNCATE, SIM_FAULT_GARBAGE, SIM_FAULT_WRONGADDR,
};

#define GARBAGE_BYTES 3

int sim_fault_parse(const char *s)
{
	for (size_t i = 1; i < sizeof(fault_names) / sizeof(fault_names[0]); i++)
		if (strcmp(s, fault_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

const char *sim_fault_name(enum sim_fault_kind k)
{
	return fault_names[k];
}

/* splitmix64: small, seedable, good enough for noise and walks. */
uint64_t sim_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/*
 * A noisy line: with probability p, the index in sim_noise_kinds of how
 * this answer is spoiled; -1 when it goes through intact. Both draws come
 * from the bus's rng, so a seeded bus repeats its noise.
 */
int sim_noise_draw(double p, uint64_t *rng)
{
	/* 53 random bits: a uniform double in [0, 1) */
	double u = (double)(sim_rand(rng) >> 11) / 9007199254740992.0;

	if (!(u < p))
		return -1;
	return (int)(sim_rand(rng) % SIM_NOISE_KINDS);
}

/*
 * Spoils the correct answer frame[0..len) in place (the buffer holds at
 * least RTU_MAX_ADU + GARBAGE_BYTES bytes) and returns its new length.
 * Exceptions and silence are decided before a frame is built.
 */
size_t sim_fault_mangle(enum sim_fault_kind k, uint8_t *frame, size_t len, int addr,
			uint64_t *rng)
{
	switch (k) {
	case SIM_FAULT_BADCRC:
		frame[len - 2] ^= 0xFF;
		frame[len - 1] ^= 0xFF;
		return len;
	case SIM_FAULT_TRUNCATE:
		return len / 2;
	case SIM_FAULT_GARBAGE:
		memmove(frame + GARBAGE_BYTES, frame, len);
		for (int i = 0; i < GARBAGE_BYTES; i++)
			frame[i] = (uint8_t)sim_rand(rng);
		/* the first byte must not pass for the module's address */
		if (frame[0] == (uint8_t)addr)
			frame[0] ^= 0x80;
		return len + GARBAGE_BYTES;
	case SIM_FAULT_WRONGADDR:
		frame[0] = (uint8_t)((addr + 1) & 0xFF);
		if (frame[0] == MB_BROADCAST)
			frame[0] = 1;
		return rtu_append_crc(frame, len - 2);
	default:
		return len;
	}
}
