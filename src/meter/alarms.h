/* alarms.h — what an alarm is and how one is judged: the kinds with their
 * names and journal MESSAGE_IDs, the state of one alarm (its level and the
 * hold timers), the step that raises it after its hold time and lowers it
 * past its clear margin, and the state file that carries active alarms
 * across a restart (<state_dir>/alarms.state). No threads, no logging: the
 * daemon's watch.c decides what to observe and what to tell. */
#ifndef PM_ALARMS_H
#define PM_ALARMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "util/buf.h"

enum pm_alarm_kind {
	PM_ALARM_CIRCUIT_LOAD,		/* % of the breaker */
	PM_ALARM_FEED_LOAD,		/* % of capacity, per phase */
	PM_ALARM_IMBALANCE,		/* % (NEMA), per feed */
	PM_ALARM_REDUNDANCY,		/* % of the smaller capacity, per phase */
	PM_ALARM_LOAD_LOST,		/* amperes: a loaded circuit at zero */
	PM_ALARM_MODULE_OFFLINE,	/* seconds without an answer */
	PM_ALARM_STALE,			/* seconds without a read attempt */
	PM_ALARM_SPOOL_BACKLOG,		/* MB waiting for the database */
	PM_ALARM_KINDS
};

enum pm_severity {
	PM_SEVERITY_OK = 0,
	PM_SEVERITY_WARNING = 1,
	PM_SEVERITY_CRITICAL = 2,
};

/* "circuit_load", ...; NULL past the last. */
const char *pm_alarm_kind_name(enum pm_alarm_kind kind);
/* The kind called 'name', or -1. */
int pm_alarm_kind_find(const char *name);
/* The journal MESSAGE_ID of a kind: 32 lowercase hex digits, fixed. */
const char *pm_alarm_message_id(enum pm_alarm_kind kind);
/* "ok", "warning", "critical". */
const char *pm_severity_name(enum pm_severity s);

/* ---- subjects: how the daemon names what an alarm is about, and how every
 * reader (Zabbix, status) finds it again ---------------------------------- */

#define PM_ALARM_SUBJECT_MAX 320
#define PM_ALARM_SUBJECT_SPOOL "spool"
/* A circuit's subject is its input's 'subject' (config), a feed's its name. */

/* "module 3". */
const char *pm_alarm_subject_module(char *buf, size_t size, int device_id);
/* "UPS A L1": phase p (an index into its phases) of feed f. */
const char *pm_alarm_subject_phase(char *buf, size_t size,
				   const struct pm_feed *f, unsigned p);
/* "UPS A+UPS B L1": the redundancy of phase p of cfg->feeds[f] and its
 * partner, named from the pair's feed that comes first in the config;
 * NULL when f has no partner or the partner lacks that phase. */
const char *pm_alarm_subject_pair(char *buf, size_t size,
				  const struct pm_config *cfg, size_t f,
				  unsigned p);

/* One alarm: a kind and a subject ("rack 12", "UPS A L1", "module 3"). */
struct pm_alarm {
	enum pm_alarm_kind kind;
	char *subject;
	enum pm_severity level;		/* raised at this level, or OK */
	/* since when (Unix ms) the condition of each level has held; 0: it
	 * does not */
	int64_t since_ms[3];
	int64_t changed_ms;		/* when the level last changed */
	double value, threshold;	/* as last judged */
	bool armed;			/* load_lost: the circuit carried load */
	bool judged;			/* observed since it was made */
};

/* A change of one alarm's level, as every output tells it. */
#define PM_ALARM_MESSAGE_MAX 384
struct pm_alarm_event {
	enum pm_alarm_kind kind;
	const char *subject;		/* the alarm's; valid for the tick */
	enum pm_severity severity;	/* raised: the new level; cleared: the
					   level it had */
	enum pm_severity previous;	/* the level before */
	bool active;			/* raised (or changed level) vs cleared */
	double value, threshold;	/* NaN when there is none */
	int64_t time_ms;
	char message[PM_ALARM_MESSAGE_MAX];	/* for a person, one line */
};

/* One threshold observation: 'value' at 'time_ms' against 'rule', raised
 * once it has stayed at or above a threshold for the rule's hold time,
 * lowered (without waiting) once it is 'clear' below it. A lower bound (a
 * sum that misses a module) may raise but never lowers. Returns the level
 * the alarm should now have; the caller sets a->level when it differs.
 * a->threshold becomes the threshold of that level (or of the level left,
 * when it clears). */
enum pm_severity pm_alarm_judge(struct pm_alarm *a,
				const struct pm_alarm_rule *rule, double value,
				bool lower_bound, int64_t time_ms);

/* A condition that raises at 'severity' once it has held 'hold' seconds
 * and clears as soon as it no longer holds. */
enum pm_severity pm_alarm_judge_condition(struct pm_alarm *a, bool holds,
					  enum pm_severity severity,
					  double hold, int64_t time_ms);

/* The members of an alarm's JSON object, as the state file and the
 * snapshot write it: "alarm", "subject", "severity", "since" (Unix ms, null
 * when never changed), "value" and "threshold" (null when NaN); no braces.
 * 0 or -ENOMEM. */
int pm_alarm_json_members(struct pm_buf *b, const struct pm_alarm *a);

/* ---- the state file ---------------------------------------------------- */

/* What a restart keeps: the raised alarms and the armed load_lost
 * circuits. */
struct pm_alarm_saved {
	enum pm_alarm_kind kind;
	char *subject;
	enum pm_severity level;		/* OK: only 'armed' */
	int64_t changed_ms;
	double value, threshold;
	bool armed;
};

struct pm_alarm_file {
	size_t n;
	struct pm_alarm_saved *alarms;
};

#define PM_ALARM_STATE_FILE "alarms.state"

/* Reads <dir>/alarms.state into *out. 0 (an absent file is an empty
 * state), -PM_EFRAME when it is damaged (the caller moves it aside with
 * pm_alarm_file_set_aside), -ENOMEM or -errno. */
int pm_alarm_file_load(const char *dir, struct pm_alarm_file *out);
/* Replaces <dir>/alarms.state atomically with the raised or armed alarms
 * among a[0..n). 0 or -errno. */
int pm_alarm_file_save(const char *dir, const struct pm_alarm *const *a,
		       size_t n, int64_t now_ms);
/* Renames a damaged <dir>/alarms.state to alarms.state.damaged-<ms>; the
 * new name in 'name' (size bytes). 0 or -errno. */
int pm_alarm_file_set_aside(const char *dir, int64_t now_ms, char *name,
			    size_t size);
void pm_alarm_file_free(struct pm_alarm_file *f);

#endif
