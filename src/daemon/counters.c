/* counters.c — keeping the energy counters in the daemon: where they come
 * from at start, when they are saved, and what the log says about it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <powermeter/powermeter.h>

#include "daemon/counters.h"
#include "util/log.h"
#include "util/timeutil.h"

static void log_opened(const char *dir, const struct pm_energy_open_report *rep)
{
	switch (rep->origin) {
	case PM_ENERGY_LOADED:
		log_info("energy counters: %zu loaded from %s/%s", rep->counters,
			 dir, rep->newest_err ? PM_ENERGY_PREVIOUS : PM_ENERGY_FILE);
		break;
	case PM_ENERGY_NEW:
		log_info("energy counters: none saved in %s yet, counting from 0",
			 dir);
		break;
	case PM_ENERGY_FALLBACK:
		log_warning("energy counters: %s/%s was damaged (%s; kept as %s): "
			    "continuing from the save before it, %zu counters; "
			    "up to two save intervals of energy are missing "
			    "and counted as unmetered", dir, PM_ENERGY_FILE,
			    pm_strerror(rep->newest_err), rep->newest_aside,
			    rep->counters);
		break;
	case PM_ENERGY_HELD_BACK: {
		char found[9000];

		if (rep->newest_aside[0] || rep->previous_aside[0])
			snprintf(found, sizeof(found), "damaged saves kept as %s%s%s",
				 rep->newest_aside,
				 rep->newest_aside[0] && rep->previous_aside[0]
				 ? " and " : "", rep->previous_aside);
		else
			snprintf(found, sizeof(found), "found at an earlier start; "
				 "see %s/%s*", dir, PM_ENERGY_DAMAGED);
		log_err("energy counters: no usable save in %s (%s): counting "
			"from 0 but showing no energy, so that InfluxDB, Zabbix "
			"and Home Assistant never see a counter fall. Restore a "
			"good %s and remove %s/%s, or remove that file alone to "
			"accept counting from 0; then restart powermeterd", dir,
			found, PM_ENERGY_FILE, dir, PM_ENERGY_WITHHELD);
		break;
	}
	}
}

static void counters_save(struct pm_counters *c)
{
	int r = pm_energy_save(c->energy, pm_now_ms());

	if (r < 0 && r != c->save_err)
		log_err("energy counters: cannot save in %s: %s; keeping them "
			"in memory and trying again every %.0f s (a crash now "
			"loses what was counted since the last save)", c->dir,
			pm_strerror(r), (double)c->every_ns / 1e9);
	else if (r == 0 && c->save_err)
		log_notice("energy counters: saved in %s again", c->dir);
	c->save_err = r;
}

static void counters_drop(struct pm_counters *c)
{
	if (c->energy) {
		counters_save(c);
		pm_energy_free(c->energy);
	}
	c->energy = NULL;
	free(c->dir);
	c->dir = NULL;
}

void pm_counters_configure(struct pm_counters *c, const struct pm_config *cfg)
{
	struct pm_energy_open_report rep;
	int64_t every = (int64_t)(cfg->energy.persist_interval * 1e9);
	int r;

	if (c->energy && (!cfg->energy.enabled || !cfg->state_dir ||
			  strcmp(c->dir, cfg->state_dir)))
		counters_drop(c);
	if (!cfg->energy.enabled || !cfg->state_dir)
		return;
	if (!c->energy) {
		r = pm_energy_open(&c->energy, cfg->state_dir, &rep);
		if (r < 0) {
			log_err("energy counters: cannot read %s/%s: %s; "
				"metering power only, and leaving the files "
				"as they are (check the directory's owner and "
				"permissions, and what is at that name)",
				cfg->state_dir, rep.previous_err
				? PM_ENERGY_PREVIOUS : PM_ENERGY_FILE,
				pm_strerror(r));
			return;
		}
		c->dir = strdup(cfg->state_dir);
		if (!c->dir) {
			pm_energy_free(c->energy);
			c->energy = NULL;
			log_err("energy counters: out of memory");
			return;
		}
		log_opened(c->dir, &rep);
		c->save_err = 0;
		c->every_ns = 0;
	}
	/* A reload keeps the schedule: reloading often never delays a save. */
	if (every != c->every_ns) {
		c->every_ns = every;
		c->next_ns = pm_mono_ns() + every;
	}
	if (pm_energy_configure(c->energy, cfg) < 0) {
		log_err("energy counters: out of memory");
		counters_drop(c);
	}
}

int64_t pm_counters_run(struct pm_counters *c, int64_t now_ns)
{
	if (!c->energy)
		return INT64_MAX;
	if (now_ns >= c->next_ns) {
		counters_save(c);
		c->next_ns += c->every_ns;
		if (c->next_ns <= now_ns)	/* a save took longer */
			c->next_ns = now_ns + c->every_ns;
	}
	return c->next_ns - now_ns;
}

void pm_counters_close(struct pm_counters *c)
{
	counters_drop(c);
}
