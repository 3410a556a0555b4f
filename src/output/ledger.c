/* ledger.c — the billing ledger's SQLite file (ledger.h): its schema,
 * opening and checking it, one transaction per boundary, pruning. Returns
 * errors with a line for a person in 'err'; never logs. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include <powermeter/powermeter.h>

#include "output/ledger.h"
#include "pm-build.h"

/* The daemon's main thread writes: a lock held longer than this is
 * reported rather than waited for. */
#define BUSY_TIMEOUT_MS 1000
#define FILE_MODE 0640
#define KEY_MASK ((int64_t)PM_LEDGER_CIRCUIT_MAX)
/* The largest boundary time whose key still fits in 63 bits. */
#define TIME_MAX (INT64_MAX >> PM_LEDGER_CIRCUIT_BITS)
/* |value| that llround() and an SQLite INTEGER hold. */
#define INT_LIMIT 9.0e18

/* The schema, version 1 (powermeter-ledger(5)). The view joins each
 * reading to its boundary by a key range, so that a condition on 'time'
 * reaches the readings through their primary key. */
static const char schema_sql[] =
	"CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
	"CREATE TABLE circuits (id INTEGER PRIMARY KEY,\n"
	"  device_id INTEGER NOT NULL, channel TEXT NOT NULL,\n"
	"  name TEXT NOT NULL, phase TEXT, feed TEXT,\n"
	"  voltage REAL NOT NULL, power_factor REAL NOT NULL,\n"
	"  breaker REAL, tags TEXT NOT NULL, since INTEGER NOT NULL);\n"
	"CREATE TABLE boundaries (time INTEGER PRIMARY KEY,\n"
	"  interval INTEGER NOT NULL);\n"
	"CREATE TABLE readings (key INTEGER PRIMARY KEY,\n"
	"  energy_mwh INTEGER NOT NULL, charge_mah INTEGER NOT NULL,\n"
	"  peak_ca INTEGER, unmetered_s INTEGER NOT NULL);\n"
	"CREATE VIEW ledger AS SELECT\n"
	"  b.time AS time, c.id AS circuit, c.device_id AS device_id,\n"
	"  c.channel AS channel, c.name AS name, c.phase AS phase,\n"
	"  c.feed AS feed, c.tags AS tags,\n"
	"  r.energy_mwh / 1000.0 AS energy_wh,\n"
	"  r.charge_mah / 1000.0 AS charge_ah,\n"
	"  r.peak_ca / 100.0 AS peak_a,\n"
	"  r.unmetered_s AS unmetered_s, b.interval AS interval\n"
	"FROM boundaries AS b\n"
	"JOIN readings AS r ON r.key >= (b.time << 16)\n"
	"  AND r.key < ((b.time + 1) << 16)\n"
	"JOIN circuits AS c ON c.id = (r.key & 65535);\n";

static const char *const schema_names[] = {
	"ledger_meta", "circuits", "boundaries", "readings", "ledger",
};

/* A circuit's newest description, by identity (device id, channel). */
struct desc {
	int64_t ident;			/* desc_ident() */
	int64_t id;			/* circuits.id; -1: a free slot */
	int64_t since;
	char *name, *phase, *feed, *tags;
	double voltage, power_factor, breaker;
};

/* A row's place while a boundary is written: sorted by identity to find
 * repeats, then by circuit id to append keys in order (full pages). */
struct row_ref {
	int64_t key;
	size_t row;
};

struct pm_ledger {
	sqlite3 *db;
	char *path;
	int mode;
	sqlite3_stmt *begin, *commit, *rollback;
	sqlite3_stmt *ins_boundary, *ins_circuit, *ins_reading, *last;
	/* the description cache: open addressing, cap a power of two */
	struct desc *tab;
	size_t cap, used;
	/* scratch for pm_ledger_append, grown to the largest boundary */
	struct row_ref *refs;
	int64_t *ids;
	struct desc *pending;
	size_t scratch;
};

/* ---- messages ----------------------------------------------------------- */

static void say(char *err, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *err, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (!err || !size)
		return;
	va_start(ap, fmt);
	vsnprintf(err, size, fmt, ap);
	va_end(ap);
}

/* A failed SQLite call as -errno, with 'err' = "PATH: WHAT: why; what to
 * do". Reads the message before anything else touches the handle. */
static int sql_fail(const struct pm_ledger *l, int rc, const char *what,
		    char *err, size_t size)
{
	const char *msg = l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc);
	int sys = l->db ? sqlite3_system_errno(l->db) : 0;
	const char *advice;
	int r;

	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		r = -EBUSY;
		advice = "another program holds it locked for over a second "
			 "(find it with fuser)";
		break;
	case SQLITE_FULL:
		r = -ENOSPC;
		advice = "its file system is full: free some space";
		break;
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		r = -PM_EFRAME;
		advice = "the file is damaged: move it aside (powermeterd then "
			 "starts a new ledger) or restore a copy";
		break;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		r = -EACCES;
		advice = "check the permissions of the file, its -wal and -shm "
			 "files and its directory";
		break;
	case SQLITE_CANTOPEN:
		r = sys > 0 ? -sys : -EACCES;
		advice = "check that the directory exists and may be written";
		break;
	case SQLITE_IOERR:
		r = sys > 0 ? -sys : -EIO;
		advice = "check the disk (the kernel log says more)";
		break;
	case SQLITE_NOMEM:
		r = -ENOMEM;
		advice = "out of memory";
		break;
	case SQLITE_CONSTRAINT:
		r = -EINVAL;
		advice = "a row breaks the ledger's schema";
		break;
	default:
		r = -EIO;
		advice = "see powermeter-ledger(5)";
		break;
	}
	if (sys > 0 && ((rc & 0xff) == SQLITE_IOERR ||
			(rc & 0xff) == SQLITE_CANTOPEN))
		say(err, size, "%s: %s: %s (%s); %s", l->path, what, msg,
		    strerror(sys), advice);
	else
		say(err, size, "%s: %s: %s; %s", l->path, what, msg, advice);
	return r;
}

static void utc_text(int64_t t, char *out, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) ||
	    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, size, "%lld", (long long)t);
}

/* ---- statements ----------------------------------------------------------- */

/* Steps a statement that returns no row, and resets it. */
static int run(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	(void)sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int prepare(struct pm_ledger *l, sqlite3_stmt **st, const char *sql)
{
	return sqlite3_prepare_v3(l->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
				  st, NULL);
}

static void rollback(struct pm_ledger *l)
{
	if (!sqlite3_get_autocommit(l->db))
		(void)run(l->rollback);
}

/* An integer from a one-value query (a pragma). */
static int query_int(struct pm_ledger *l, const char *sql, int64_t *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(l->db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		*out = 0;
		rc = SQLITE_OK;
	}
	(void)sqlite3_finalize(st);
	return rc;
}

/* ---- the description cache ------------------------------------------------ */

static int64_t desc_ident(int device_id, char channel)
{
	return (int64_t)device_id * 16 + (channel - 'a');
}

static void desc_free(struct desc *d)
{
	free(d->name);
	free(d->phase);
	free(d->feed);
	free(d->tags);
	memset(d, 0, sizeof(*d));
	d->id = -1;
}

static size_t desc_slot(const struct desc *tab, size_t cap, int64_t ident)
{
	size_t i = (size_t)(((uint64_t)ident * 0x9e3779b97f4a7c15ULL) >> 32) &
		   (cap - 1);

	while (tab[i].id >= 0 && tab[i].ident != ident)
		i = (i + 1) & (cap - 1);
	return i;
}

static struct desc *desc_find(struct pm_ledger *l, int64_t ident)
{
	struct desc *d;

	if (!l->cap)
		return NULL;
	d = &l->tab[desc_slot(l->tab, l->cap, ident)];
	return d->id >= 0 ? d : NULL;
}

/* Room for 'more' identities at a load of at most a half, so that
 * desc_put() cannot fail. */
static int desc_reserve(struct pm_ledger *l, size_t more)
{
	size_t cap = l->cap ? l->cap : 64;
	struct desc *tab;

	if (more > SIZE_MAX / 4 - l->used)
		return -ENOMEM;
	while (cap < 2 * (l->used + more))
		cap *= 2;
	if (cap == l->cap)
		return 0;
	tab = malloc(cap * sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		tab[i].id = -1;
	for (size_t i = 0; i < l->cap; i++)
		if (l->tab[i].id >= 0)
			tab[desc_slot(tab, cap, l->tab[i].ident)] = l->tab[i];
	free(l->tab);
	l->tab = tab;
	l->cap = cap;
	return 0;
}

/* Takes over 'd' (its strings) as its identity's description when it is
 * the newest by (since, id) — the order a reload sees — else frees it. */
static void desc_put(struct pm_ledger *l, struct desc *d)
{
	struct desc *slot = &l->tab[desc_slot(l->tab, l->cap, d->ident)];

	if (slot->id >= 0) {
		if (d->since < slot->since ||
		    (d->since == slot->since && d->id < slot->id)) {
			desc_free(d);
			return;
		}
		desc_free(slot);
	} else {
		l->used++;
	}
	*slot = *d;
	memset(d, 0, sizeof(*d));
	d->id = -1;
}

static bool same_text(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static const char *row_tags(const struct pm_ledger_circuit *c)
{
	return c->tags ? c->tags : "{}";
}

static bool desc_matches(const struct desc *d,
			 const struct pm_ledger_circuit *c)
{
	return same_text(d->name, c->name) && same_text(d->phase, c->phase) &&
	       same_text(d->feed, c->feed) &&
	       same_text(d->tags, row_tags(c)) && d->voltage == c->voltage &&
	       d->power_factor == c->power_factor && d->breaker == c->breaker;
}

static char *dup_or_null(const char *s, bool *nomem)
{
	char *p;

	if (!s)
		return NULL;
	p = strdup(s);
	if (!p)
		*nomem = true;
	return p;
}

static int desc_fill(struct desc *d, const struct pm_ledger_circuit *c,
		     int64_t id, int64_t since)
{
	bool nomem = false;

	memset(d, 0, sizeof(*d));
	d->ident = desc_ident(c->device_id, c->channel);
	d->id = id;
	d->since = since;
	d->name = dup_or_null(c->name, &nomem);
	d->phase = dup_or_null(c->phase, &nomem);
	d->feed = dup_or_null(c->feed, &nomem);
	d->tags = dup_or_null(row_tags(c), &nomem);
	d->voltage = c->voltage;
	d->power_factor = c->power_factor;
	d->breaker = c->breaker;
	if (nomem) {
		desc_free(d);
		return -ENOMEM;
	}
	return 0;
}

static void cache_free(struct pm_ledger *l)
{
	for (size_t i = 0; i < l->cap; i++)
		if (l->tab[i].id >= 0)
			desc_free(&l->tab[i]);
	free(l->tab);
	l->tab = NULL;
	l->cap = l->used = 0;
}

/* Loads every identity's newest description. */
static int cache_load(struct pm_ledger *l, char *err, size_t size)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(l->db,
		"SELECT id, device_id, channel, name, phase, feed, voltage, "
		"power_factor, breaker, tags, since FROM circuits "
		"ORDER BY since, id", -1, &st, NULL);
	int r = 0;

	if (rc != SQLITE_OK)
		return sql_fail(l, rc, "cannot read its circuits", err, size);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *ch = (const char *)sqlite3_column_text(st, 2);
		struct pm_ledger_circuit c = {
			.device_id = sqlite3_column_int(st, 1),
			.name = (const char *)sqlite3_column_text(st, 3),
			.phase = (const char *)sqlite3_column_text(st, 4),
			.feed = (const char *)sqlite3_column_text(st, 5),
			.voltage = sqlite3_column_double(st, 6),
			.power_factor = sqlite3_column_double(st, 7),
			.breaker = sqlite3_column_double(st, 8),
			.tags = (const char *)sqlite3_column_text(st, 9),
		};
		int64_t id = sqlite3_column_int64(st, 0);
		struct desc d;

		if (!ch || strlen(ch) != 1 || ch[0] < 'a' || ch[0] > 'p' ||
		    !c.name || id < 0 || id > PM_LEDGER_CIRCUIT_MAX) {
			say(err, size, "%s: damaged: circuit row %lld is not "
			    "one powermeterd writes; move the file aside "
			    "(powermeterd then starts a new ledger) or "
			    "restore a copy", l->path, (long long)id);
			r = -PM_EFRAME;
			break;
		}
		c.channel = ch[0];
		r = desc_reserve(l, 1);
		if (r == 0)
			r = desc_fill(&d, &c, id, sqlite3_column_int64(st, 10));
		if (r < 0) {
			say(err, size, "%s: out of memory", l->path);
			break;
		}
		desc_put(l, &d);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sql_fail(l, rc, "cannot read its circuits", err, size);
	(void)sqlite3_finalize(st);
	return r;
}

/* ---- open and close ------------------------------------------------------- */

void pm_ledger_close(struct pm_ledger *l)
{
	if (!l)
		return;
	sqlite3_stmt *sts[] = {
		l->begin, l->commit, l->rollback, l->ins_boundary,
		l->ins_circuit, l->ins_reading, l->last,
	};
	for (size_t i = 0; i < sizeof(sts) / sizeof(sts[0]); i++)
		(void)sqlite3_finalize(sts[i]);
	(void)sqlite3_close_v2(l->db);
	cache_free(l);
	for (size_t i = 0; i < l->scratch; i++)
		desc_free(&l->pending[i]);
	free(l->refs);
	free(l->ids);
	free(l->pending);
	free(l->path);
	free(l);
}

/* Creates the schema in one transaction, unless another writer did it
 * since we looked. */
static int create_schema(struct pm_ledger *l, char *err, size_t size)
{
	char *sql = NULL;
	int64_t n = 0;
	int rc;

	rc = sqlite3_exec(l->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = query_int(l, "SELECT count(*) FROM sqlite_master", &n);
	if (rc == SQLITE_OK && n == 0) {
		sql = sqlite3_mprintf(
			"%s"
			"INSERT INTO ledger_meta VALUES ('schema', '%d'), "
			"('created', '%lld'), ('writer', 'powermeterd %q');\n"
			"PRAGMA application_id = %d;\n"
			"PRAGMA user_version = %d;\n",
			schema_sql, PM_LEDGER_SCHEMA, (long long)time(NULL),
			PM_VERSION, PM_LEDGER_APPLICATION_ID, PM_LEDGER_SCHEMA);
		rc = sql ? sqlite3_exec(l->db, sql, NULL, NULL, NULL)
			 : SQLITE_NOMEM;
		sqlite3_free(sql);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		int r = sql_fail(l, rc, "cannot create the ledger", err, size);

		if (!sqlite3_get_autocommit(l->db))
			(void)sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	return 0;
}

/* Whether the file is a ledger we can use: 1 when it is new (an empty
 * database), 0 when it is one, else a negative error. */
static int check_file(struct pm_ledger *l, char *err, size_t size)
{
	int64_t app = 0, version = 0, objects = 0, found = 0;
	char names[128] = "";
	int rc;

	rc = query_int(l, "PRAGMA application_id", &app);
	if (rc == SQLITE_OK)
		rc = query_int(l, "PRAGMA user_version", &version);
	if (rc == SQLITE_OK)
		rc = query_int(l, "SELECT count(*) FROM sqlite_master", &objects);
	if ((rc & 0xff) == SQLITE_NOTADB) {
		say(err, size, "%s: not a powermeter ledger (not a SQLite "
		    "file, or damaged beyond reading); if it is the ledger, "
		    "move it aside (powermeterd then starts a new one) or "
		    "restore a copy", l->path);
		return -PM_EFRAME;
	}
	if (rc != SQLITE_OK)
		return sql_fail(l, rc, "cannot read it", err, size);
	if (app == 0 && version == 0 && objects == 0) {
		if (l->mode == PM_LEDGER_WRITE)
			return 1;
		say(err, size, "%s: not a powermeter ledger (an empty file: "
		    "powermeterd has not written to it yet)", l->path);
		return -PM_EFRAME;
	}
	if (app != PM_LEDGER_APPLICATION_ID) {
		say(err, size, "%s: not a powermeter ledger (a SQLite file of "
		    "another program); check the path", l->path);
		return -PM_EFRAME;
	}
	if (version > PM_LEDGER_SCHEMA) {
		say(err, size, "%s: written by a newer powermeter (schema "
		    "%lld); this one reads %d: update powermeter here",
		    l->path, (long long)version, PM_LEDGER_SCHEMA);
		return -EPROTO;
	}
	if (version < 1) {
		say(err, size, "%s: damaged: a powermeter ledger without a "
		    "schema version; move it aside (powermeterd then starts a "
		    "new ledger) or restore a copy", l->path);
		return -PM_EFRAME;
	}
	for (size_t i = 0; i < sizeof(schema_names) / sizeof(schema_names[0]);
	     i++) {
		char *sql = sqlite3_mprintf(
			"SELECT count(*) FROM sqlite_master WHERE name = '%q' "
			"AND type = '%s'", schema_names[i],
			i == 4 ? "view" : "table");

		rc = sql ? query_int(l, sql, &found) : SQLITE_NOMEM;
		sqlite3_free(sql);
		if (rc != SQLITE_OK)
			return sql_fail(l, rc, "cannot read its schema", err,
					size);
		if (!found) {
			size_t len = strlen(names);

			snprintf(names + len, sizeof(names) - len, "%s%s",
				 len ? ", " : "", schema_names[i]);
		}
	}
	if (names[0]) {
		say(err, size, "%s: damaged: a powermeter ledger without %s; "
		    "move it aside (powermeterd then starts a new ledger) or "
		    "restore a copy", l->path, names);
		return -PM_EFRAME;
	}
	return 0;
}

static int prepare_all(struct pm_ledger *l)
{
	int rc = prepare(l, &l->last,
		/* the identity's descriptions, then boundaries newest first,
		 * each looked up by key: no scan, no sort */
		"WITH c(id, since) AS MATERIALIZED ("
		"  SELECT id, since FROM circuits"
		"  WHERE device_id = ?1 AND channel = ?2) "
		"SELECT r.energy_mwh, r.charge_mah FROM boundaries AS b "
		"CROSS JOIN c CROSS JOIN readings AS r "
		"WHERE b.time >= (SELECT min(since) FROM c) "
		"AND b.time >= c.since AND r.key = ((b.time << 16) | c.id) "
		"ORDER BY b.time DESC LIMIT 1");

	if (rc != SQLITE_OK || l->mode != PM_LEDGER_WRITE)
		return rc;
	if ((rc = prepare(l, &l->begin, "BEGIN IMMEDIATE")) != SQLITE_OK ||
	    (rc = prepare(l, &l->commit, "COMMIT")) != SQLITE_OK ||
	    (rc = prepare(l, &l->rollback, "ROLLBACK")) != SQLITE_OK ||
	    (rc = prepare(l, &l->ins_boundary,
			  "INSERT OR IGNORE INTO boundaries (time, interval) "
			  "VALUES (?1, ?2)")) != SQLITE_OK ||
	    (rc = prepare(l, &l->ins_circuit,
			  "INSERT INTO circuits (device_id, channel, name, "
			  "phase, feed, voltage, power_factor, breaker, tags, "
			  "since) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
			  "?10)")) != SQLITE_OK)
		return rc;
	return prepare(l, &l->ins_reading,
		       "INSERT INTO readings (key, energy_mwh, charge_mah, "
		       "peak_ca, unmetered_s) VALUES (?1, ?2, ?3, ?4, ?5)");
}

/* The writer's settings: durable commits, short waits, WAL. */
static int setup_writer(struct pm_ledger *l, char *err, size_t size)
{
	sqlite3_stmt *st;
	const char *jm;
	bool wal;
	int rc;

	rc = sqlite3_exec(l->db, "PRAGMA foreign_keys = OFF; "
			  "PRAGMA synchronous = FULL", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sql_fail(l, rc, "cannot set it up", err, size);
	rc = sqlite3_prepare_v2(l->db, "PRAGMA journal_mode = WAL", -1, &st,
				NULL);
	if (rc != SQLITE_OK)
		return sql_fail(l, rc, "cannot switch it to WAL", err, size);
	rc = sqlite3_step(st);
	jm = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	wal = jm && strcmp(jm, "wal") == 0;
	(void)sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return sql_fail(l, rc, "cannot switch it to WAL", err, size);
	if (!wal) {
		say(err, size, "%s: SQLite cannot use a write-ahead log here "
		    "(a network file system?); put the ledger on a local disk "
		    "(\"ledger\": {\"path\": ...})", l->path);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* For a writer: creates the file with our mode when missing. */
static int create_file(const char *path, char *err, size_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY,
		      FILE_MODE);
	int r;

	if (fd < 0) {
		if (errno == EEXIST)
			return 0;
		r = -errno;
		say(err, size, "%s: cannot create the ledger: %s; check that "
		    "its directory exists and may be written", path,
		    strerror(errno));
		return r;
	}
	/* the mode, whatever the umask: its group may read the bills */
	(void)fchmod(fd, FILE_MODE);
	(void)close(fd);
	return 0;
}

/* "file:PATH?immutable=1", PATH percent-encoded. */
static char *immutable_uri(const char *path)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = strlen(path);
	char *uri = malloc(len * 3 + 32), *p;

	if (!uri)
		return NULL;
	p = uri + sprintf(uri, "file:");
	for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9') || strchr("/-._~", *c)) {
			*p++ = (char)*c;
		} else {
			*p++ = '%';
			*p++ = hex[*c >> 4];
			*p++ = hex[*c & 15];
		}
	}
	strcpy(p, "?immutable=1");
	return uri;
}

/* A reader that may not create the -shm file beside a ledger in WAL mode
 * (a copy on read-only media, another user's directory) cannot open it as
 * usual. With no -wal file, no writer has it open and everything is in the
 * file: SQLite may then read it as immutable, without -shm. */
static int reopen_immutable(struct pm_ledger *l, char *err, size_t size)
{
	char *wal = sqlite3_mprintf("%s-wal", l->path);
	char *uri;
	bool no_wal;
	int64_t v;
	int rc;

	if (!wal)
		return sql_fail(l, SQLITE_NOMEM, "cannot open it", err, size);
	no_wal = access(wal, F_OK) < 0 && errno == ENOENT;
	sqlite3_free(wal);
	rc = query_int(l, "PRAGMA schema_version", &v);
	if ((rc & 0xff) != SQLITE_READONLY && (rc & 0xff) != SQLITE_CANTOPEN)
		return 0;	/* opened as usual, or check_file says */
	if (!no_wal) {
		say(err, size, "%s: cannot be read while its -wal file is there "
		    "by a user who may not write its directory; read it as "
		    "the daemon's user or root (or when the daemon has "
		    "stopped, which removes the -wal file)", l->path);
		return -EACCES;
	}
	uri = immutable_uri(l->path);
	if (!uri)
		return sql_fail(l, SQLITE_NOMEM, "cannot open it", err, size);
	(void)sqlite3_close_v2(l->db);
	l->db = NULL;
	rc = sqlite3_open_v2(uri, &l->db, SQLITE_OPEN_READONLY |
			     SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, NULL);
	free(uri);
	if (rc != SQLITE_OK)
		return sql_fail(l, rc, "cannot open it", err, size);
	(void)sqlite3_extended_result_codes(l->db, 1);
	return 0;
}

int pm_ledger_open(struct pm_ledger **out, const char *path, int mode,
		   char *err, size_t size)
{
	struct pm_ledger *l;
	struct stat st;
	int flags, rc, r;

	if (!out || !path || !*path ||
	    (mode != PM_LEDGER_WRITE && mode != PM_LEDGER_READ)) {
		say(err, size, "ledger: invalid arguments");
		return -EINVAL;
	}
	if (mode == PM_LEDGER_READ) {
		if (stat(path, &st) < 0) {
			r = -errno;
			if (r == -ENOENT)
				say(err, size, "%s: no ledger here (powermeterd "
				    "writes it while \"ledger\" is enabled; "
				    "check the path)", path);
			else
				say(err, size, "%s: %s", path, strerror(-r));
			return r;
		}
	} else if ((r = create_file(path, err, size)) < 0) {
		return r;
	} else if (stat(path, &st) < 0) {
		r = -errno;
		say(err, size, "%s: %s", path, strerror(-r));
		return r;
	}
	/* SQLite would wait for ever on a FIFO and read a device as if it
	 * were a database. */
	if (S_ISDIR(st.st_mode)) {
		say(err, size, "%s: a directory, not a ledger", path);
		return -EISDIR;
	}
	if (!S_ISREG(st.st_mode)) {
		say(err, size, "%s: not a regular file, not a ledger", path);
		return -PM_ENOTREG;
	}

	l = calloc(1, sizeof(*l));
	if (!l || !(l->path = strdup(path))) {
		free(l);
		say(err, size, "%s: out of memory", path);
		return -ENOMEM;
	}
	l->mode = mode;
	flags = SQLITE_OPEN_NOMUTEX |
		(mode == PM_LEDGER_WRITE ? SQLITE_OPEN_READWRITE
					 : SQLITE_OPEN_READONLY);
	{
		/* a relative "file:..." would be taken for a URI */
		char *name = sqlite3_mprintf("%s%s",
			strncmp(path, "file:", 5) == 0 ? "./" : "", path);

		rc = name ? sqlite3_open_v2(name, &l->db, flags, NULL)
			  : SQLITE_NOMEM;
		sqlite3_free(name);
	}
	if (rc != SQLITE_OK) {
		r = sql_fail(l, rc, "cannot open it", err, size);
		goto fail;
	}
	(void)sqlite3_extended_result_codes(l->db, 1);
	(void)sqlite3_busy_timeout(l->db, BUSY_TIMEOUT_MS);
	if (mode == PM_LEDGER_READ && (r = reopen_immutable(l, err, size)) < 0)
		goto fail;

	r = check_file(l, err, size);
	if (r < 0)
		goto fail;
	if (mode == PM_LEDGER_WRITE) {
		bool fresh = r == 1;

		/* only now, so that another program's file stays untouched */
		if ((r = setup_writer(l, err, size)) < 0)
			goto fail;
		if (fresh) {
			if ((r = create_schema(l, err, size)) < 0)
				goto fail;
			/* another writer may have raced us: check again */
			if ((r = check_file(l, err, size)) < 0)
				goto fail;
		}
	}
	rc = prepare_all(l);
	if (rc != SQLITE_OK) {
		r = sql_fail(l, rc, "cannot prepare its statements", err, size);
		goto fail;
	}
	if (mode == PM_LEDGER_WRITE && (r = cache_load(l, err, size)) < 0)
		goto fail;
	*out = l;
	return 0;

fail:
	pm_ledger_close(l);
	return r;
}

struct sqlite3 *pm_ledger_db(struct pm_ledger *l)
{
	return l ? l->db : NULL;
}

/* ---- append ----------------------------------------------------------------- */

static int cmp_ref(const void *a, const void *b)
{
	const struct row_ref *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

static int scratch_grow(struct pm_ledger *l, size_t n)
{
	struct row_ref *refs;
	int64_t *ids;
	struct desc *pending;

	if (n <= l->scratch)
		return 0;
	refs = realloc(l->refs, n * sizeof(*refs));
	if (refs)
		l->refs = refs;
	ids = realloc(l->ids, n * sizeof(*ids));
	if (ids)
		l->ids = ids;
	pending = realloc(l->pending, n * sizeof(*pending));
	if (pending)
		l->pending = pending;
	if (!refs || !ids || !pending)
		return -ENOMEM;
	for (size_t i = l->scratch; i < n; i++) {
		memset(&pending[i], 0, sizeof(pending[i]));
		pending[i].id = -1;
	}
	l->scratch = n;
	return 0;
}

static bool fits(double x, double scale)
{
	return isfinite(x) && fabs(x * scale) < INT_LIMIT;
}

static int check_rows(const struct pm_ledger *l, int64_t time,
		      unsigned interval, const struct pm_ledger_row *rows,
		      size_t n, char *err, size_t size)
{
	if (time < 0 || time > TIME_MAX || interval == 0 ||
	    (n && !rows) || n > (size_t)PM_LEDGER_CIRCUIT_MAX + 1) {
		say(err, size, "%s: a boundary at %lld of %u s with %zu rows "
		    "cannot be written (a program error)", l->path,
		    (long long)time, interval, n);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct pm_ledger_row *w = &rows[i];
		const struct pm_ledger_circuit *c = &w->c;

		if (c->channel < 'a' || c->channel > 'p' || !c->name ||
		    !isfinite(c->voltage) || !isfinite(c->power_factor) ||
		    !isfinite(c->breaker) || !fits(w->energy_wh, 1000) ||
		    !fits(w->charge_ah, 1000) || !fits(w->unmetered_s, 1) ||
		    (!isnan(w->peak_a) && !fits(w->peak_a, 100))) {
			say(err, size, "%s: the row of device %d channel %c "
			    "cannot be written: a value out of range (a "
			    "program error)", l->path, c->device_id,
			    c->channel >= 'a' && c->channel <= 'p' ?
			    c->channel : '?');
			return -EINVAL;
		}
	}
	return 0;
}

static int insert_circuit(struct pm_ledger *l, const struct pm_ledger_circuit *c,
			  int64_t time, int64_t *id)
{
	sqlite3_stmt *st = l->ins_circuit;
	char ch[2] = { c->channel, '\0' };
	int rc;

	(void)sqlite3_bind_int(st, 1, c->device_id);
	(void)sqlite3_bind_text(st, 2, ch, 1, SQLITE_TRANSIENT);
	(void)sqlite3_bind_text(st, 3, c->name, -1, SQLITE_STATIC);
	(void)sqlite3_bind_text(st, 4, c->phase, -1, SQLITE_STATIC);
	(void)sqlite3_bind_text(st, 5, c->feed, -1, SQLITE_STATIC);
	(void)sqlite3_bind_double(st, 6, c->voltage);
	(void)sqlite3_bind_double(st, 7, c->power_factor);
	if (c->breaker != 0)
		(void)sqlite3_bind_double(st, 8, c->breaker);
	else
		(void)sqlite3_bind_null(st, 8);
	(void)sqlite3_bind_text(st, 9, row_tags(c), -1, SQLITE_STATIC);
	(void)sqlite3_bind_int64(st, 10, time);
	rc = run(st);
	(void)sqlite3_clear_bindings(st);
	if (rc == SQLITE_OK)
		*id = sqlite3_last_insert_rowid(l->db);
	return rc;
}

static int insert_reading(struct pm_ledger *l, int64_t key,
			  const struct pm_ledger_row *w)
{
	sqlite3_stmt *st = l->ins_reading;

	(void)sqlite3_bind_int64(st, 1, key);
	(void)sqlite3_bind_int64(st, 2, llround(w->energy_wh * 1000));
	(void)sqlite3_bind_int64(st, 3, llround(w->charge_ah * 1000));
	if (isnan(w->peak_a))
		(void)sqlite3_bind_null(st, 4);
	else
		(void)sqlite3_bind_int64(st, 4, llround(w->peak_a * 100));
	(void)sqlite3_bind_int64(st, 5, llround(w->unmetered_s));
	return run(st);
}

/* write_rows()'s own failures, beside SQLite's (non-negative) codes. */
#define RC_TOO_MANY (-1)
#define RC_NOMEM (-2)

/* Finds each row's circuit id (a new description gets a new row, its
 * cache entry kept aside in l->pending) and writes the readings in key
 * order. Within the caller's transaction: SQLite's result code or RC_*. */
static int write_rows(struct pm_ledger *l, int64_t time,
		      const struct pm_ledger_row *rows, size_t n,
		      size_t *n_pending)
{
	int rc;

	for (size_t i = 0; i < n; i++) {
		const struct pm_ledger_circuit *c = &rows[i].c;
		struct desc *d = desc_find(l, desc_ident(c->device_id,
							  c->channel));

		/* a description's readings are never older than it
		 * (powermeter-ledger(5); pruning relies on it) */
		if (d && d->since <= time && desc_matches(d, c)) {
			l->ids[i] = d->id;
			continue;
		}
		rc = insert_circuit(l, c, time, &l->ids[i]);
		if (rc != SQLITE_OK)
			return rc;
		if (l->ids[i] > PM_LEDGER_CIRCUIT_MAX)
			return RC_TOO_MANY;
		if (desc_fill(&l->pending[*n_pending], c, l->ids[i], time) < 0)
			return RC_NOMEM;
		(*n_pending)++;
	}

	/* keys in ascending order: SQLite then fills each page */
	for (size_t i = 0; i < n; i++)
		l->refs[i] = (struct row_ref){ l->ids[i], i };
	if (n > 1)
		qsort(l->refs, n, sizeof(*l->refs), cmp_ref);
	for (size_t i = 0; i < n; i++) {
		size_t k = l->refs[i].row;

		rc = insert_reading(l, time << PM_LEDGER_CIRCUIT_BITS | l->ids[k],
				    &rows[k]);
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

int pm_ledger_append(struct pm_ledger *l, int64_t time, unsigned interval,
		     const struct pm_ledger_row *rows, size_t n, char *err,
		     size_t size)
{
	size_t n_pending = 0;
	char when[32], what[64];
	int rc, r;

	if (!l || l->mode != PM_LEDGER_WRITE) {
		say(err, size, "%s: opened for reading only",
		    l ? l->path : "ledger");
		return -EBADF;
	}
	if ((r = check_rows(l, time, interval, rows, n, err, size)) < 0)
		return r;
	if (scratch_grow(l, n) < 0 || desc_reserve(l, n) < 0) {
		say(err, size, "%s: out of memory", l->path);
		return -ENOMEM;
	}
	utc_text(time, when, sizeof(when));
	snprintf(what, sizeof(what), "cannot write the boundary of %s", when);

	/* each identity once */
	for (size_t i = 0; i < n; i++)
		l->refs[i] = (struct row_ref){
			desc_ident(rows[i].c.device_id, rows[i].c.channel), i };
	if (n > 1)
		qsort(l->refs, n, sizeof(*l->refs), cmp_ref);
	for (size_t i = 1; i < n; i++)
		if (l->refs[i].key == l->refs[i - 1].key) {
			const struct pm_ledger_circuit *c =
				&rows[l->refs[i].row].c;

			say(err, size, "%s: device %d channel %c is twice in the "
			    "boundary of %s (a program error)", l->path,
			    c->device_id, c->channel, when);
			return -EINVAL;
		}

	rc = run(l->begin);
	if (rc == SQLITE_OK) {
		(void)sqlite3_bind_int64(l->ins_boundary, 1, time);
		(void)sqlite3_bind_int64(l->ins_boundary, 2, interval);
		rc = run(l->ins_boundary);
	}
	if (rc == SQLITE_OK && sqlite3_changes(l->db) == 0) {
		/* written before (a retry after a lost answer) */
		rollback(l);
		return 0;
	}
	if (rc == SQLITE_OK)
		rc = write_rows(l, time, rows, n, &n_pending);
	if (rc == SQLITE_OK)
		rc = run(l->commit);
	if (rc != SQLITE_OK)
		goto fail;

	/* committed: the new descriptions join the cache (room reserved) */
	for (size_t i = 0; i < n_pending; i++)
		desc_put(l, &l->pending[i]);
	return 0;

fail:
	if (rc == RC_TOO_MANY) {
		say(err, size, "%s: %s: more than %d circuit descriptions; "
		    "start a new ledger (move this one aside)", l->path, what,
		    PM_LEDGER_CIRCUIT_MAX + 1);
		r = -E2BIG;
	} else if (rc == RC_NOMEM) {
		say(err, size, "%s: out of memory", l->path);
		r = -ENOMEM;
	} else {
		r = sql_fail(l, rc, what, err, size);
	}
	rollback(l);
	for (size_t i = 0; i < n_pending; i++)
		desc_free(&l->pending[i]);
	return r;
}

/* ---- read back, prune ---------------------------------------------------------- */

int pm_ledger_last(struct pm_ledger *l, int device_id, char channel,
		   double *energy_wh, double *charge_ah)
{
	sqlite3_stmt *st;
	char ch[2] = { channel, '\0' };
	int rc, r;

	if (!l || !l->last)
		return -EINVAL;
	st = l->last;
	(void)sqlite3_bind_int(st, 1, device_id);
	(void)sqlite3_bind_text(st, 2, ch, 1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (energy_wh)
			*energy_wh = sqlite3_column_int64(st, 0) / 1000.0;
		if (charge_ah)
			*charge_ah = sqlite3_column_int64(st, 1) / 1000.0;
		r = 0;
	} else if (rc == SQLITE_DONE) {
		r = -ENOENT;
	} else {
		r = sql_fail(l, rc, "cannot read", NULL, 0);
	}
	(void)sqlite3_reset(st);
	(void)sqlite3_clear_bindings(st);
	return r;
}

int pm_ledger_prune(struct pm_ledger *l, int64_t before, char *err,
		    size_t size)
{
	char sql[1024];
	int rc;

	if (!l || l->mode != PM_LEDGER_WRITE) {
		say(err, size, "%s: opened for reading only",
		    l ? l->path : "ledger");
		return -EBADF;
	}
	if (before <= 0)
		return 0;
	if (before > TIME_MAX)
		before = TIME_MAX;
	/* A description goes when a newer one of its identity exists and no
	 * reading uses it any more. Its readings are never older than its
	 * 'since' (pm_ledger_append), so the search starts there: at the
	 * first boundary kept for a description in use. */
	snprintf(sql, sizeof(sql),
		 "DELETE FROM readings WHERE key < %lld;\n"
		 "DELETE FROM boundaries WHERE time < %lld;\n"
		 "DELETE FROM circuits WHERE id IN (\n"
		 "  SELECT c.id FROM circuits AS c\n"
		 "  WHERE EXISTS (SELECT 1 FROM circuits AS n\n"
		 "    WHERE n.device_id = c.device_id AND n.channel = c.channel\n"
		 "    AND (n.since > c.since OR (n.since = c.since AND n.id > c.id)))\n"
		 "  AND NOT EXISTS (SELECT 1 FROM boundaries AS b\n"
		 "    CROSS JOIN readings AS r\n"
		 "    WHERE b.time >= max(c.since, %lld)\n"
		 "    AND r.key = ((b.time << 16) | c.id)));\n",
		 (long long)(before << PM_LEDGER_CIRCUIT_BITS),
		 (long long)before, (long long)before);
	rc = run(l->begin);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(l->db, sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = run(l->commit);
	if (rc != SQLITE_OK) {
		char when[32], what[96];
		int r;

		utc_text(before, when, sizeof(when));
		snprintf(what, sizeof(what), "cannot remove the rows before %s",
			 when);
		r = sql_fail(l, rc, what, err, size);
		rollback(l);
		return r;
	}
	/* the cache holds the newest descriptions only, and those stay */
	return 0;
}
