/* test_ledger.c — the billing ledger (output/ledger.c): creating and
 * checking the file, a boundary per transaction read back through the
 * documented schema, descriptions per identity, pruning, readers beside a
 * writer and on a copy, and the failures a daemon meets: foreign, garbage,
 * newer and damaged files, a lock, a full disk. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include <powermeter/powermeter.h>

#include "output/ledger.h"

#define T0 1717200000LL		/* 2024-06-01T00:00:00Z */
#define IV 900

static char dir[64];
static char path[512];
static char err[512];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/pm-ledger-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/ledger.sqlite", dir);
	err[0] = '\0';
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- helpers -------------------------------------------------------------- */

static struct pm_ledger *open_mode(int mode)
{
	struct pm_ledger *l = NULL;
	int r = pm_ledger_open(&l, path, mode, err, sizeof(err));

	if (r != 0)
		print_error("pm_ledger_open: %d %s\n", r, err);
	assert_int_equal(r, 0);
	assert_non_null(l);
	return l;
}

/* Circuit i: device 10 + i / 16, channel a + i % 16. */
static struct pm_ledger_row row(int i, double wh)
{
	static char names[64][32];
	struct pm_ledger_row w;

	snprintf(names[i % 64], sizeof(names[0]), "circuit %d", i);
	memset(&w, 0, sizeof(w));
	w.c = (struct pm_ledger_circuit){
		.device_id = 10 + i / 16, .channel = (char)('a' + i % 16),
		.name = names[i % 64], .phase = i % 2 ? "L2" : NULL,
		.feed = "A", .voltage = 230, .power_factor = 0.93,
		.breaker = i % 3 ? 16 : 0, .tags = "{\"customer\":\"ACME\"}",
	};
	w.energy_wh = wh;
	w.charge_ah = wh / 200;
	w.peak_a = 1.5 + i;
	w.unmetered_s = 0;
	return w;
}

static void rows_at(struct pm_ledger_row *rows, int n, double wh)
{
	for (int i = 0; i < n; i++)
		rows[i] = row(i, wh + i);
}

static void append_ok(struct pm_ledger *l, int64_t t,
		      const struct pm_ledger_row *rows, size_t n)
{
	int r = pm_ledger_append(l, t, IV, rows, n, err, sizeof(err));

	if (r != 0)
		print_error("pm_ledger_append: %d %s\n", r, err);
	assert_int_equal(r, 0);
}

static int64_t sql_int(sqlite3 *db, const char *fmt, ...)
{
	char sql[512];
	sqlite3_stmt *st;
	int64_t v = -1;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		print_error("%s: %s\n", sql, sqlite3_errmsg(db));
		fail();
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -2
			: sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The first column of the first row as text into 'out' ("" when NULL). */
static const char *sql_text(sqlite3 *db, char *out, size_t size,
			    const char *fmt, ...)
{
	char sql[512];
	sqlite3_stmt *st;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	out[0] = '\0';
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(out, size, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return out;
}

static double sql_real(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	double v = NAN;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_double(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The query plan of 'sql', its lines joined by ';'. */
static void plan(sqlite3 *db, char *out, size_t size, const char *sql)
{
	char q[512];
	sqlite3_stmt *st;
	size_t len = 0;

	snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
	out[0] = '\0';
	assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW && len < size)
		len += (size_t)snprintf(out + len, size - len, "%s;",
					(const char *)sqlite3_column_text(st, 3));
	sqlite3_finalize(st);
}

/* A second connection of our own, as another program would have. */
static sqlite3 *raw_open(const char *p)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	return db;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		print_error("%s: %s\n", sql, msg);
		sqlite3_free(msg);
		fail();
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- creating and reopening ------------------------------------------------ */

static void test_create_reopen(void **state)
{
	struct pm_ledger *l;
	struct stat st;
	char buf[64];
	sqlite3 *db;

	(void)state;
	umask(077);	/* the mode is the ledger's, whatever the umask */
	l = open_mode(PM_LEDGER_WRITE);
	umask(022);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	db = pm_ledger_db(l);
	assert_int_equal(sql_int(db, "PRAGMA application_id"), 0x504d4c47);
	assert_int_equal(sql_int(db, "PRAGMA user_version"), 1);
	assert_string_equal(sql_text(db, buf, sizeof(buf), "PRAGMA journal_mode"),
			    "wal");
	assert_int_equal(sql_int(db, "PRAGMA synchronous"), 2);	/* FULL */
	assert_int_equal(sql_int(db, "PRAGMA foreign_keys"), 0);
	assert_int_equal(sql_int(db, "PRAGMA busy_timeout"), 1000);
	assert_string_equal(sql_text(db, buf, sizeof(buf),
		"SELECT value FROM ledger_meta WHERE key = 'schema'"), "1");
	assert_true(sql_int(db, "SELECT value FROM ledger_meta WHERE "
			    "key = 'created'") > 1700000000);
	assert_non_null(strstr(sql_text(db, buf, sizeof(buf),
		"SELECT value FROM ledger_meta WHERE key = 'writer'"),
		"powermeterd "));
	assert_int_equal(sql_int(db, "SELECT count(*) FROM sqlite_master WHERE "
		"name IN ('circuits', 'boundaries', 'readings', 'ledger')"), 4);
	pm_ledger_close(l);

	/* a second open finds it as it was, for writing and for reading */
	l = open_mode(PM_LEDGER_WRITE);
	assert_int_equal(sql_int(pm_ledger_db(l), "SELECT count(*) FROM "
				 "ledger_meta"), 3);
	pm_ledger_close(l);
	l = open_mode(PM_LEDGER_READ);
	assert_int_equal(sql_int(pm_ledger_db(l), "SELECT count(*) FROM ledger"), 0);
	pm_ledger_close(l);
}

/* ---- a boundary, read back ------------------------------------------------ */

static void test_append_view(void **state)
{
	struct pm_ledger_row rows[3];
	struct pm_ledger *l, *rd;
	char buf[512];
	sqlite3 *db;

	(void)state;
	rows_at(rows, 3, 1000.0004);
	rows[1].peak_a = NAN;
	rows[2].unmetered_s = 12.4;
	rows[2].charge_ah = 7.0006;
	l = open_mode(PM_LEDGER_WRITE);
	append_ok(l, T0, rows, 3);
	/* a boundary without rows is a boundary all the same */
	append_ok(l, T0 + IV, NULL, 0);
	pm_ledger_close(l);

	rd = open_mode(PM_LEDGER_READ);
	db = pm_ledger_db(rd);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM ledger"), 3);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM boundaries"), 2);
	/* the key: time * 2^16 + the circuit's id */
	assert_int_equal(sql_int(db, "SELECT count(*) FROM readings AS r JOIN "
		"circuits AS c ON r.key = %lld * 65536 + c.id", T0), 3);
	/* units: mWh, mAh, cA, s; the view in Wh, Ah, A */
	assert_int_equal(sql_int(db, "SELECT energy_mwh FROM readings AS r JOIN "
		"circuits AS c ON c.id = r.key & 65535 WHERE c.channel = 'a'"),
		1000000);
	assert_int_equal(sql_int(db, "SELECT charge_mah FROM readings AS r JOIN "
		"circuits AS c ON c.id = r.key & 65535 WHERE c.channel = 'c'"),
		7001);
	assert_int_equal(sql_int(db, "SELECT peak_ca FROM readings AS r JOIN "
		"circuits AS c ON c.id = r.key & 65535 WHERE c.channel = 'a'"),
		150);
	assert_true(sql_real(db, "SELECT energy_wh FROM ledger WHERE channel = 'c'")
		    == 1002.0);
	assert_true(sql_real(db, "SELECT charge_ah FROM ledger WHERE channel = 'c'")
		    == 7.001);
	assert_true(sql_real(db, "SELECT peak_a FROM ledger WHERE channel = 'c'")
		    == 3.5);
	assert_true(isnan(sql_real(db, "SELECT peak_a FROM ledger WHERE "
				       "channel = 'b'")));
	assert_int_equal(sql_int(db, "SELECT unmetered_s FROM ledger WHERE "
				 "channel = 'c'"), 12);
	assert_int_equal(sql_int(db, "SELECT interval FROM ledger WHERE "
				 "channel = 'a'"), IV);
	assert_int_equal(sql_int(db, "SELECT time FROM ledger WHERE "
				 "channel = 'a'"), T0);
	assert_int_equal(sql_int(db, "SELECT device_id FROM ledger WHERE "
				 "channel = 'b'"), 10);
	assert_string_equal(sql_text(db, buf, sizeof(buf), "SELECT name || '/' || "
		"ifnull(phase, '-') || '/' || feed || '/' || tags FROM ledger "
		"WHERE channel = 'b'"), "circuit 1/L2/A/{\"customer\":\"ACME\"}");
	assert_int_equal(sql_int(db, "SELECT phase FROM ledger WHERE "
				 "channel = 'a'"), -2);	/* NULL */
	/* breaker 0 is none: NULL */
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits WHERE "
				 "breaker IS NULL"), 1);
	assert_true(sql_real(db, "SELECT voltage * power_factor FROM circuits "
			     "WHERE channel = 'a'") == 230 * 0.93);
	assert_int_equal(sql_int(db, "SELECT since FROM circuits WHERE "
				 "channel = 'a'"), T0);
	/* json1 reads the tags */
	assert_string_equal(sql_text(db, buf, sizeof(buf), "SELECT "
		"json_extract(tags, '$.customer') FROM ledger LIMIT 1"), "ACME");
	/* a condition on time reaches the readings by their key */
	plan(db, buf, sizeof(buf), "SELECT * FROM ledger WHERE time > 1");
	assert_non_null(strstr(buf, "SEARCH r USING INTEGER PRIMARY KEY"));
	assert_null(strstr(buf, "SCAN r"));
	pm_ledger_close(rd);
}

static void test_idempotent_boundary(void **state)
{
	struct pm_ledger_row rows[4];
	struct pm_ledger *l;

	(void)state;
	l = open_mode(PM_LEDGER_WRITE);
	rows_at(rows, 4, 50);
	append_ok(l, T0, rows, 4);
	rows_at(rows, 4, 99);
	rows[0].c.name = "renamed";
	append_ok(l, T0, rows, 4);	/* there already: left as it is */
	assert_int_equal(sql_int(pm_ledger_db(l), "SELECT count(*) FROM readings"), 4);
	assert_int_equal(sql_int(pm_ledger_db(l), "SELECT count(*) FROM circuits"), 4);
	assert_int_equal(sql_int(pm_ledger_db(l), "SELECT sum(energy_mwh) FROM "
				 "readings"), (50 + 51 + 52 + 53) * 1000);
	pm_ledger_close(l);
}

/* ---- descriptions ---------------------------------------------------------- */

static void test_description_change(void **state)
{
	struct pm_ledger_row rows[3];
	struct pm_ledger *l;
	char buf[64];
	sqlite3 *db;

	(void)state;
	l = open_mode(PM_LEDGER_WRITE);
	db = pm_ledger_db(l);
	rows_at(rows, 3, 10);
	append_ok(l, T0, rows, 3);
	rows_at(rows, 3, 20);
	append_ok(l, T0 + IV, rows, 3);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits"), 3);

	/* renamed: a new description of the same identity */
	rows_at(rows, 3, 30);
	rows[1].c.name = "pitch 7";
	append_ok(l, T0 + 2 * IV, rows, 3);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits"), 4);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits WHERE "
				 "device_id = 10 AND channel = 'b'"), 2);
	assert_int_equal(sql_int(db, "SELECT since FROM circuits WHERE "
				 "name = 'pitch 7'"), T0 + 2 * IV);
	assert_string_equal(sql_text(db, buf, sizeof(buf), "SELECT name FROM "
		"ledger WHERE channel = 'b' AND time = %lld", T0 + IV),
		"circuit 1");
	assert_string_equal(sql_text(db, buf, sizeof(buf), "SELECT name FROM "
		"ledger WHERE channel = 'b' AND time = %lld", T0 + 2 * IV),
		"pitch 7");
	/* the others kept their rows */
	assert_int_equal(sql_int(db, "SELECT count(DISTINCT circuit) FROM ledger "
				 "WHERE channel = 'a'"), 1);

	/* any part of the description: tags, voltage, breaker, phase */
	rows_at(rows, 3, 40);
	rows[1].c.name = "pitch 7";
	rows[0].c.tags = "{\"customer\":\"Bob\"}";
	rows[2].c.voltage = 231;
	append_ok(l, T0 + 3 * IV, rows, 3);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits"), 6);
	rows[2].c.breaker = 32;
	rows[0].c.phase = "L3";
	append_ok(l, T0 + 4 * IV, rows, 3);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits"), 8);
	pm_ledger_close(l);

	/* the cache comes back from the file: the same descriptions write no
	 * new circuit row; going back to an old one writes a new row */
	l = open_mode(PM_LEDGER_WRITE);
	db = pm_ledger_db(l);
	append_ok(l, T0 + 5 * IV, rows, 3);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits"), 8);
	rows[1].c.name = "circuit 1";
	append_ok(l, T0 + 6 * IV, rows, 3);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits"), 9);
	assert_int_equal(sql_int(db, "SELECT since FROM circuits WHERE "
		"channel = 'b' ORDER BY id DESC LIMIT 1"), T0 + 6 * IV);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM ledger"), 21);
	pm_ledger_close(l);
}

static void test_last(void **state)
{
	struct pm_ledger_row rows[3];
	struct pm_ledger *l;
	double wh = -1, ah = -1;

	(void)state;
	l = open_mode(PM_LEDGER_WRITE);
	assert_int_equal(pm_ledger_last(l, 10, 'a', &wh, &ah), -ENOENT);
	rows_at(rows, 3, 100);
	append_ok(l, T0, rows, 3);
	rows_at(rows, 3, 200);
	rows[0].c.name = "new name";
	append_ok(l, T0 + IV, rows, 3);
	/* circuit c stops at T0 + IV: its newest row stays that one */
	rows_at(rows, 2, 300);
	rows[0].c.name = "newer name";
	append_ok(l, T0 + 2 * IV, rows, 2);
	pm_ledger_close(l);

	l = open_mode(PM_LEDGER_WRITE);
	assert_int_equal(pm_ledger_last(l, 10, 'a', &wh, &ah), 0);
	assert_true(wh == 300.0);
	assert_true(ah == 1.5);
	assert_int_equal(pm_ledger_last(l, 10, 'b', &wh, &ah), 0);
	assert_true(wh == 301.0);
	assert_int_equal(pm_ledger_last(l, 10, 'c', &wh, &ah), 0);
	assert_true(wh == 202.0);
	wh = -1;
	assert_int_equal(pm_ledger_last(l, 10, 'd', &wh, &ah), -ENOENT);
	assert_int_equal(pm_ledger_last(l, 11, 'a', &wh, &ah), -ENOENT);
	assert_true(wh == -1);		/* untouched on failure */
	pm_ledger_close(l);
}

/* ---- pruning ----------------------------------------------------------------- */

static void test_prune(void **state)
{
	struct pm_ledger_row rows[3];
	struct pm_ledger *l;
	sqlite3 *db;

	(void)state;
	l = open_mode(PM_LEDGER_WRITE);
	db = pm_ledger_db(l);
	for (int k = 0; k < 6; k++) {
		rows_at(rows, 3, 10 * k);
		if (k >= 2)
			rows[0].c.name = "renamed at 2";
		if (k >= 4)
			rows[1].c.name = "renamed at 4";
		/* circuit c is removed after boundary 1 */
		append_ok(l, T0 + k * IV, rows, k < 2 ? 3 : 2);
	}
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits"), 5);
	assert_int_equal(pm_ledger_prune(l, 0, err, sizeof(err)), 0);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM readings"), 14);

	/* before boundary 3: the old description of a goes (superseded, no
	 * reading left); that of b stays (its readings at 3 are kept); c's
	 * only description stays though no reading uses it */
	assert_int_equal(pm_ledger_prune(l, T0 + 3 * IV, err, sizeof(err)), 0);
	assert_int_equal(sql_int(db, "SELECT min(time) FROM boundaries"), T0 + 3 * IV);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM boundaries"), 3);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM readings"), 6);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM ledger"), 6);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits"), 4);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits WHERE "
				 "name = 'circuit 0'"), 0);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits WHERE "
				 "name = 'circuit 1'"), 1);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits WHERE "
				 "name = 'circuit 2'"), 1);

	/* before boundary 5: b's old description goes too */
	assert_int_equal(pm_ledger_prune(l, T0 + 5 * IV, err, sizeof(err)), 0);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits"), 3);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM ledger"), 2);

	/* the writer goes on with the same descriptions */
	rows_at(rows, 3, 100);
	rows[0].c.name = "renamed at 2";
	rows[1].c.name = "renamed at 4";
	append_ok(l, T0 + 6 * IV, rows, 3);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits"), 3);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM ledger"), 5);
	pm_ledger_close(l);

	/* a reader cannot prune */
	l = open_mode(PM_LEDGER_READ);
	assert_int_equal(pm_ledger_prune(l, T0 + 9 * IV, err, sizeof(err)), -EBADF);
	pm_ledger_close(l);
}

/* ---- files that are not ours ------------------------------------------------ */

static void expect_open_fails(int mode, int code, const char *words)
{
	struct pm_ledger *l = (struct pm_ledger *)&l;	/* must stay as is */
	int r;

	err[0] = '\0';
	r = pm_ledger_open(&l, path, mode, err, sizeof(err));
	assert_int_equal(r, code);
	assert_ptr_equal(l, (struct pm_ledger *)&l);
	assert_non_null(strstr(err, path));
	if (!strstr(err, words)) {
		print_error("'%s' not in '%s'\n", words, err);
		fail();
	}
}

static void test_foreign_file(void **state)
{
	char buf[16];
	sqlite3 *db;

	(void)state;
	db = raw_open(path);
	raw_exec(db, "PRAGMA application_id = 42; CREATE TABLE t (x); "
		 "INSERT INTO t VALUES (1)");
	sqlite3_close(db);
	expect_open_fails(PM_LEDGER_WRITE, -PM_EFRAME, "not a powermeter ledger");
	expect_open_fails(PM_LEDGER_READ, -PM_EFRAME, "another program");
	/* and it was left as it was, in its own journal mode */
	db = raw_open(path);
	assert_string_equal(sql_text(db, buf, sizeof(buf), "PRAGMA journal_mode"),
			    "delete");
	assert_int_equal(sql_int(db, "SELECT count(*) FROM sqlite_master"), 1);
	sqlite3_close(db);

	/* another program's with no application id but tables */
	assert_int_equal(unlink(path), 0);
	db = raw_open(path);
	raw_exec(db, "CREATE TABLE readings (x)");
	sqlite3_close(db);
	expect_open_fails(PM_LEDGER_WRITE, -PM_EFRAME, "another program");
}

static void test_garbage_file(void **state)
{
	FILE *f;

	(void)state;
	f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < 300; i++)
		fputs("time,energy\n", f);
	fclose(f);
	expect_open_fails(PM_LEDGER_WRITE, -PM_EFRAME, "not a powermeter ledger");
	expect_open_fails(PM_LEDGER_READ, -PM_EFRAME, "not a SQLite file");

	/* an empty file: new for a writer, nothing for a reader */
	f = fopen(path, "w");
	fclose(f);
	expect_open_fails(PM_LEDGER_READ, -PM_EFRAME, "empty");
	pm_ledger_close(open_mode(PM_LEDGER_WRITE));
	pm_ledger_close(open_mode(PM_LEDGER_READ));
}

static void test_newer_schema(void **state)
{
	sqlite3 *db;

	(void)state;
	pm_ledger_close(open_mode(PM_LEDGER_WRITE));
	db = raw_open(path);
	raw_exec(db, "PRAGMA user_version = 2");
	sqlite3_close(db);
	expect_open_fails(PM_LEDGER_WRITE, -EPROTO, "newer powermeter (schema 2)");
	expect_open_fails(PM_LEDGER_READ, -EPROTO, "this one reads 1");
}

static void test_damaged(void **state)
{
	sqlite3 *db;
	FILE *f;
	char junk[4096];

	(void)state;
	pm_ledger_close(open_mode(PM_LEDGER_WRITE));
	db = raw_open(path);
	raw_exec(db, "DROP TABLE readings");
	sqlite3_close(db);
	expect_open_fails(PM_LEDGER_WRITE, -PM_EFRAME, "without readings");
	expect_open_fails(PM_LEDGER_READ, -PM_EFRAME, "move it aside");

	/* a ledger whose pages are overwritten (its header intact) */
	assert_int_equal(unlink(path), 0);
	{
		struct pm_ledger *l = open_mode(PM_LEDGER_WRITE);
		struct pm_ledger_row rows[64];

		for (int k = 0; k < 40; k++) {
			rows_at(rows, 64, k * 10);
			append_ok(l, T0 + k * IV, rows, 64);
		}
		pm_ledger_close(l);
	}
	memset(junk, 0x5a, sizeof(junk));
	f = fopen(path, "r+");
	assert_non_null(f);
	fseek(f, 4096, SEEK_SET);	/* page 2 onwards: the schema's tables */
	for (int i = 0; i < 8; i++)
		fwrite(junk, 1, sizeof(junk), f);
	fclose(f);
	{
		struct pm_ledger *l = NULL;
		int r = pm_ledger_open(&l, path, PM_LEDGER_WRITE, err, sizeof(err));

		if (r == 0) {
			/* the damage may show only when written */
			struct pm_ledger_row rows[64];

			rows_at(rows, 64, 1e6);
			r = pm_ledger_append(l, T0 + 100 * IV, IV, rows, 64, err,
					     sizeof(err));
			pm_ledger_close(l);
		}
		assert_int_equal(r, -PM_EFRAME);
		assert_non_null(strstr(err, path));
		assert_non_null(strstr(err, "damaged"));
	}
}

/* ---- readers ----------------------------------------------------------------- */

static void test_read_missing(void **state)
{
	struct pm_ledger *l = NULL;

	(void)state;
	assert_int_equal(pm_ledger_open(&l, path, PM_LEDGER_READ, err, sizeof(err)),
			 -ENOENT);
	assert_null(l);
	assert_non_null(strstr(err, path));
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(errno, ENOENT);
	/* nor a directory of that name */
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(pm_ledger_open(&l, path, PM_LEDGER_READ, err, sizeof(err)),
			 -EISDIR);
	/* a writer cannot make a file where there is no directory */
	snprintf(path, sizeof(path), "%s/no/such/dir/ledger.sqlite", dir);
	assert_int_equal(pm_ledger_open(&l, path, PM_LEDGER_WRITE, err,
					sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "directory"));
}

static void test_read_while_writing(void **state)
{
	struct pm_ledger_row rows[8];
	struct pm_ledger *w, *rd;
	char wal[600];
	struct stat st;
	double wh;

	(void)state;
	w = open_mode(PM_LEDGER_WRITE);
	rows_at(rows, 8, 1);
	append_ok(w, T0, rows, 8);
	/* committed to the WAL, not checkpointed yet */
	snprintf(wal, sizeof(wal), "%s-wal", path);
	assert_int_equal(stat(wal, &st), 0);
	assert_true(st.st_size > 0);

	rd = open_mode(PM_LEDGER_READ);
	assert_int_equal(sql_int(pm_ledger_db(rd), "SELECT count(*) FROM ledger"), 8);
	/* the writer goes on while the reader is open; the reader's next
	 * query sees the new boundary */
	rows_at(rows, 8, 2);
	append_ok(w, T0 + IV, rows, 8);
	assert_int_equal(sql_int(pm_ledger_db(rd), "SELECT count(*) FROM ledger"), 16);
	assert_int_equal(pm_ledger_last(rd, 10, 'h', &wh, NULL), 0);
	assert_true(wh == 9.0);
	/* a reader in the middle of a query does not stop the writer */
	{
		sqlite3_stmt *st2;

		assert_int_equal(sqlite3_prepare_v2(pm_ledger_db(rd),
			"SELECT time FROM ledger", -1, &st2, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st2), SQLITE_ROW);
		rows_at(rows, 8, 3);
		append_ok(w, T0 + 2 * IV, rows, 8);
		sqlite3_finalize(st2);
	}
	/* and it cannot write */
	assert_int_equal(pm_ledger_append(rd, T0 + 3 * IV, IV, rows, 8, err,
					  sizeof(err)), -EBADF);
	assert_int_not_equal(sqlite3_exec(pm_ledger_db(rd), "DELETE FROM readings",
					  NULL, NULL, NULL), SQLITE_OK);
	pm_ledger_close(rd);
	pm_ledger_close(w);
}

static void test_read_copy(void **state)
{
	struct pm_ledger_row rows[8];
	struct pm_ledger *l;
	char copy[300], cmd[1400];

	(void)state;
	l = open_mode(PM_LEDGER_WRITE);
	for (int k = 0; k < 10; k++) {
		rows_at(rows, 8, k);
		append_ok(l, T0 + k * IV, rows, 8);
	}
	pm_ledger_close(l);
	/* the writer closed: its WAL went into the file */
	snprintf(cmd, sizeof(cmd), "%s-wal", path);
	assert_int_equal(access(cmd, F_OK), -1);

	/* a plain cp to another directory, the copy read-only */
	snprintf(copy, sizeof(copy), "%s/elsewhere", dir);
	assert_int_equal(mkdir(copy, 0755), 0);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s/copy.sqlite' && chmod 0444 "
		 "'%s/copy.sqlite'", path, copy, copy);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/copy.sqlite", copy);
	l = open_mode(PM_LEDGER_READ);
	assert_int_equal(sql_int(pm_ledger_db(l), "SELECT count(*) FROM ledger"), 80);
	assert_int_equal(sql_int(pm_ledger_db(l), "SELECT max(time) FROM ledger"),
			 T0 + 9 * IV);
	pm_ledger_close(l);
}

/* Opens 'path' for reading as a user who may not write its directory
 * (nobody, when we are root); the exit status: 0 when it read 'rows'
 * rows, else 10 + the error. */
static int read_as_reader(int64_t rows)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct pm_ledger *l = NULL;
		int r;

		if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
			_exit(2);
		r = pm_ledger_open(&l, path, PM_LEDGER_READ, err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "# %s\n", err);
			_exit(10 + (-r & 0x7f));
		}
		r = sql_int(pm_ledger_db(l), "SELECT count(*) FROM ledger") == rows
			? 0 : 3;
		pm_ledger_close(l);
		_exit(r);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* A copy where its reader may create no -shm file (read-only media,
 * another user's directory). */
static void test_read_copy_unwritable(void **state)
{
	struct pm_ledger_row rows[8];
	struct pm_ledger *l;
	char ro[300], cmd[2400];

	(void)state;
	l = open_mode(PM_LEDGER_WRITE);
	for (int k = 0; k < 5; k++) {
		rows_at(rows, 8, k);
		append_ok(l, T0 + k * IV, rows, 8);
	}
	pm_ledger_close(l);
	snprintf(ro, sizeof(ro), "%s/read only", dir);	/* a space: a URI */
	assert_int_equal(mkdir(ro, 0755), 0);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s/copy?#%%.sqlite' && chmod 0444 "
		 "'%s/copy?#%%.sqlite' && chmod 0555 '%s' && chmod 0755 '%s'",
		 path, ro, ro, ro, dir);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/copy?#%%.sqlite", ro);
	assert_int_equal(read_as_reader(40), 0);
	/* nothing was created beside it */
	snprintf(cmd, sizeof(cmd), "%s-shm", path);
	assert_int_equal(access(cmd, F_OK), -1);

	/* a -wal beside it: a writer may be at work, so no shortcut; the
	 * reader is told what is wrong */
	snprintf(cmd, sizeof(cmd), "chmod 0755 '%s' && touch '%s-wal' && "
		 "chmod 0444 '%s-wal' && chmod 0555 '%s'", ro, path, path, ro);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(read_as_reader(40), 10 + EACCES);
	snprintf(cmd, sizeof(cmd), "chmod -R u+w '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- a lock, a full disk, bad rows ------------------------------------------- */

static void test_locked(void **state)
{
	struct pm_ledger_row rows[4];
	struct pm_ledger *l;
	int64_t t;
	sqlite3 *other;
	sqlite3 *db;
	int r;

	(void)state;
	l = open_mode(PM_LEDGER_WRITE);
	db = pm_ledger_db(l);
	rows_at(rows, 4, 1);
	append_ok(l, T0, rows, 4);

	other = raw_open(path);
	raw_exec(other, "BEGIN EXCLUSIVE");
	rows_at(rows, 4, 2);
	rows[2].c.name = "renamed while locked";
	t = now_ms();
	r = pm_ledger_append(l, T0 + IV, IV, rows, 4, err, sizeof(err));
	t = now_ms() - t;
	assert_int_equal(r, -EBUSY);
	assert_true(t >= 900 && t < 3000);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "locked"));
	raw_exec(other, "COMMIT");
	sqlite3_close(other);

	/* nothing of it written; the next one goes through */
	assert_int_equal(sql_int(db, "SELECT count(*) FROM boundaries"), 1);
	append_ok(l, T0 + IV, rows, 4);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits"), 5);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM ledger WHERE "
				 "time = %lld", T0 + IV), 4);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM ledger WHERE name = "
				 "'renamed while locked'"), 1);
	pm_ledger_close(l);
}

static void test_full_disk(void **state)
{
	enum { N = 300 };
	struct pm_ledger_row rows[N];
	struct pm_ledger *l;
	int64_t pages, circuits, readings;
	sqlite3 *db;
	int r;

	(void)state;
	l = open_mode(PM_LEDGER_WRITE);
	db = pm_ledger_db(l);
	rows_at(rows, N, 1);
	append_ok(l, T0, rows, N);
	circuits = sql_int(db, "SELECT count(*) FROM circuits");
	readings = sql_int(db, "SELECT count(*) FROM readings");

	/* one page to spare: room for the new description, not the rows */
	pages = sql_int(db, "PRAGMA page_count");
	assert_int_equal(sql_int(db, "PRAGMA max_page_count = %lld", pages + 1),
			 pages + 1);
	rows_at(rows, N, 2);
	rows[7].c.name = "renamed on a full disk";
	r = pm_ledger_append(l, T0 + IV, IV, rows, N, err, sizeof(err));
	assert_int_equal(r, -ENOSPC);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "full"));
	/* nothing partial */
	assert_int_equal(sql_int(db, "SELECT count(*) FROM boundaries"), 1);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits"), circuits);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM readings"), readings);

	/* space again: the same boundary, its new description written once
	 * and every row found through the view (the cache forgot the id of
	 * the description rolled back) */
	sql_int(db, "PRAGMA max_page_count = 1000000");
	append_ok(l, T0 + IV, rows, N);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits"), circuits + 1);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM ledger WHERE "
				 "time = %lld", T0 + IV), N);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM ledger WHERE name = "
				 "'renamed on a full disk'"), 1);
	rows_at(rows, N, 3);
	rows[7].c.name = "renamed on a full disk";
	append_ok(l, T0 + 2 * IV, rows, N);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits"), circuits + 1);
	pm_ledger_close(l);
}

static void test_bad_rows(void **state)
{
	struct pm_ledger_row rows[3];
	struct pm_ledger *l;
	sqlite3 *db;

	(void)state;
	l = open_mode(PM_LEDGER_WRITE);
	db = pm_ledger_db(l);
	rows_at(rows, 3, 1);
	rows[2].c.channel = 'a';	/* device 10 channel a twice */
	assert_int_equal(pm_ledger_append(l, T0, IV, rows, 3, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "twice"));
	rows_at(rows, 3, 1);
	rows[1].energy_wh = NAN;
	assert_int_equal(pm_ledger_append(l, T0, IV, rows, 3, err, sizeof(err)),
			 -EINVAL);
	rows_at(rows, 3, 1);
	rows[1].c.channel = 'q';
	assert_int_equal(pm_ledger_append(l, T0, IV, rows, 3, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(pm_ledger_append(l, -5, IV, rows, 0, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(pm_ledger_append(l, T0, 0, rows, 0, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM boundaries"), 0);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits"), 0);
	/* NULL tags are "{}" */
	rows_at(rows, 3, 1);
	rows[0].c.tags = NULL;
	append_ok(l, T0, rows, 3);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits WHERE "
				 "tags = '{}'"), 1);
	pm_ledger_close(l);
}

/* A statement failing inside the transaction (a reading another program
 * put where the boundary's would go): all of it rolled back, the new
 * description with it, and the ledger goes on. */
static void test_conflict(void **state)
{
	struct pm_ledger_row rows[4];
	struct pm_ledger *l;
	sqlite3 *db;
	int64_t id_d;

	(void)state;
	l = open_mode(PM_LEDGER_WRITE);
	db = pm_ledger_db(l);
	rows_at(rows, 4, 1);
	append_ok(l, T0, rows, 4);
	id_d = sql_int(db, "SELECT id FROM circuits WHERE channel = 'd'");
	raw_exec(db, "BEGIN");
	{
		char sql[128];

		snprintf(sql, sizeof(sql), "INSERT INTO readings VALUES "
			 "(%lld, 1, 1, NULL, 0)",
			 (long long)((T0 + IV) << 16 | id_d));
		raw_exec(db, sql);
	}
	raw_exec(db, "COMMIT");

	rows_at(rows, 4, 2);
	rows[1].c.name = "renamed, rolled back";
	assert_int_equal(pm_ledger_append(l, T0 + IV, IV, rows, 4, err,
					  sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, path));
	assert_int_equal(sqlite3_get_autocommit(db), 1);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM boundaries"), 1);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits"), 4);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM readings"), 5);

	/* the next boundary, with the same new name: one new description */
	rows_at(rows, 4, 3);
	rows[1].c.name = "renamed, rolled back";
	append_ok(l, T0 + 2 * IV, rows, 4);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM circuits"), 5);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM ledger WHERE "
				 "time = %lld", T0 + 2 * IV), 4);
	pm_ledger_close(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_view, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idempotent_boundary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_description_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_last, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_while_writing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_copy_unwritable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conflict, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
