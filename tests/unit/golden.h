/* golden.h — for the unit tests of file formats (test_config.c,
 * test_tariff.c): the golden cases in a folder of tests/data, each a file
 * and the exact error lines it must give, with "DIR" standing for the
 * folder. Include after <cmocka.h>. */
#ifndef PM_TEST_GOLDEN_H
#define PM_TEST_GOLDEN_H

#include <dirent.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <powermeter/powermeter.h>

#include "util/fileio.h"

#define GOLDEN_NAME_MAX 128

/* The whole file at 'path' (at most 1 MiB), or NULL. */
static inline char *golden_slurp(const char *path)
{
	char *data = NULL;
	size_t len;

	if (pm_read_file_capped(path, 1024 * 1024, &data, &len) < 0)
		return NULL;
	return data;
}

/* 'text' with every "DIR" replaced by 'dir', malloc'd. */
static inline char *golden_expand_dir(const char *text, const char *dir)
{
	size_t n = strlen(text) + 1, dl = strlen(dir);
	char *out, *o;

	for (const char *s = text; (s = strstr(s, "DIR")) != NULL; s += 3)
		n += dl;
	out = o = malloc(n);
	assert_non_null(out);
	while (*text) {
		if (!strncmp(text, "DIR", 3)) {
			memcpy(o, dir, dl);
			o += dl;
			text += 3;
		} else {
			*o++ = *text++;
		}
	}
	*o = '\0';
	return out;
}

static inline int golden_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The cases in folder 'dir' whose names start with 'prefix', sorted: every
 * *.json file and, with 'folders', every folder (a case with files beside
 * it). Names as they are, at most 'max'. */
static inline size_t golden_list(const char *dir, const char *prefix,
				 bool folders, char names[][GOLDEN_NAME_MAX],
				 size_t max)
{
	char *ptrs[256];
	struct dirent *e;
	size_t n = 0;
	DIR *d = opendir(dir);

	assert_non_null(d);
	while ((e = readdir(d)) != NULL && n < max && n < 256) {
		size_t len = strlen(e->d_name);
		bool json = len >= 5 && !strcmp(e->d_name + len - 5, ".json");

		if (strncmp(e->d_name, prefix, strlen(prefix)) ||
		    len >= GOLDEN_NAME_MAX)
			continue;
		if (!(json && e->d_type == DT_REG) &&
		    !(folders && e->d_type == DT_DIR))
			continue;
		ptrs[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(ptrs, n, sizeof(ptrs[0]), golden_cmp);
	for (size_t i = 0; i < n; i++) {
		strcpy(names[i], ptrs[i]);
		free(ptrs[i]);
	}
	return n;
}

/* A loader of the format under test: 0 or a negative error, its messages
 * in *errors (malloc'd); it frees what it loaded itself. */
typedef int golden_load_fn(const char *path, char **errors);

/* Loads 'json' and compares its messages with the file 'expected_path',
 * "DIR" there standing for 'dir'. True when the load failed with exactly
 * those lines; otherwise says what came instead. */
static inline bool golden_bad_case(golden_load_fn *load, const char *name,
				   const char *json, const char *expected_path,
				   const char *dir)
{
	char *errors = NULL, *raw, *expected;
	bool ok;
	int r;

	raw = golden_slurp(expected_path);
	if (!raw) {
		print_error("%s: no expected messages (%s)\n", name,
			    expected_path);
		return false;
	}
	expected = golden_expand_dir(raw, dir);
	r = load(json, &errors);
	ok = r == -PM_ECONFIG && errors && !strcmp(errors, expected);
	if (!ok)
		print_error("%s: got %d:\n%s--- expected:\n%s", name, r,
			    errors ? errors : "(none)\n", expected);
	free(errors);
	free(expected);
	free(raw);
	return ok;
}

#endif
