/* replay.c — main() for a fuzz target built without libFuzzer (the normal
 * build, any compiler): runs LLVMFuzzerTestOneInput() once on each file
 * named, and on each file in each directory named, as libFuzzer does when
 * given files. A crash is the test's failure; the sanitizer build reports
 * what libFuzzer would. Prints one line per input. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* libFuzzer's own default -max_len is 4096 for new inputs, but it runs
 * given files whole; so do we, up to a cap no corpus file comes near. */
#define REPLAY_MAX (16u * 1024 * 1024)

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data;
	size_t n;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	data = malloc(REPLAY_MAX);
	if (!data) {
		(void)fclose(f);
		return -1;
	}
	n = fread(data, 1, REPLAY_MAX, f);
	(void)fclose(f);
	/* a buffer of exactly its size: reading past it is caught */
	data = realloc(data, n ? n : 1);
	printf("running %s (%zu bytes)\n", path, n);
	fflush(stdout);
	(void)LLVMFuzzerTestOneInput(data, n);
	free(data);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, size_t *count)
{
	char **names = NULL, path[PATH_MAX];
	size_t n = 0, cap = 0;
	struct dirent *de;
	int r = 0;
	DIR *d = opendir(dir);

	if (!d) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, "README"))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			if (!names)
				abort();
		}
		names[n++] = strdup(de->d_name);
	}
	(void)closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		(void)snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		free(names[i]);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (run_file(path) < 0)
			r = -1;
		(*count)++;
	}
	free(names);
	return r;
}

int main(int argc, char **argv)
{
	size_t count = 0;
	int status = 0;

	(void)LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (argv[i][0] == '-')
			continue;	/* libFuzzer's flags mean nothing here */
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			status = 1;
		} else if (S_ISDIR(st.st_mode)) {
			if (run_dir(argv[i], &count) < 0)
				status = 1;
		} else {
			if (run_file(argv[i]) < 0)
				status = 1;
			count++;
		}
	}
	printf("%zu input(s) run\n", count);
	return status;
}
