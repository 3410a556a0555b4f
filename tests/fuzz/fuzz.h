/* fuzz.h — what the fuzz targets share: a scratch directory of their own,
 * files written into it, an input cut into parts at a separator. Each
 * target is one fuzz_NAME.c with LLVMFuzzerTestOneInput(); built with
 * libFuzzer (-Dfuzz=true, clang) it fuzzes, built with replay.c (any
 * compiler, the normal test suite) it runs the inputs named on its command
 * line once each. Parsers that only read a file are given the input through
 * a file here: none of them has a buffer entry point. */
#ifndef PM_FUZZ_H
#define PM_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The target's scratch directory (made on first use under $TMPDIR, removed
 * at exit with everything in it). Aborts when it cannot be made. */
const char *fuzz_dir(void);

/* fuzz_dir()/name, in a static buffer per call site's use: copy it if it
 * must outlive the next call. */
const char *fuzz_path(const char *name);

/* Writes 'len' bytes to 'path' (replacing it); aborts on failure, which is
 * the harness's, never the code under test's. */
void fuzz_write(const char *path, const void *data, size_t len);

/* Removes every file in fuzz_dir()/sub ("" for fuzz_dir() itself); the
 * directory stays. */
void fuzz_clear(const char *sub);

/* One part of an input cut at a separator. */
struct fuzz_part {
	const uint8_t *data;
	size_t len;
};

/* Cuts data[0..size) at each occurrence of 'sep' into at most 'max' parts
 * (the last one keeps the rest, separators and all). Returns how many. */
size_t fuzz_split(const uint8_t *data, size_t size, const char *sep,
		  struct fuzz_part *parts, size_t max);

/* Unsets the environment the config loader reads (STATE_DIRECTORY,
 * RUNTIME_DIRECTORY, CREDENTIALS_DIRECTORY), so a run does not depend on
 * who started it. */
void fuzz_clean_environment(void);

#endif
