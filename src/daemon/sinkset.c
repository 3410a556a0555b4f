/* sinkset.c — opening, feeding and closing the wanted sinks of one
 * configuration, in registry order (sinks.c). */
#include <errno.h>

#include "daemon/sinkset.h"
#include "util/log.h"

int pm_sinkset_open(struct pm_sinkset *set, const struct pm_config *cfg)
{
	struct pm_sinkset s = { .cfg = cfg };
	int r;

	for (size_t i = 0; pm_sinks[i]; i++) {
		const struct pm_sink_ops *ops = pm_sinks[i];

		if (!ops->wanted(cfg))
			continue;
		if (s.n == PM_SINKS_MAX) {
			log_err("too many sinks (at most %d)", PM_SINKS_MAX);
			r = -E2BIG;
			goto fail;
		}
		r = ops->open(&s.state[s.n], cfg);
		if (r < 0) {
			log_err("cannot start the %s output", ops->name);
			goto fail;
		}
		s.ops[s.n++] = ops;
		log_debug("%s output started", ops->name);
	}
	*set = s;
	return 0;
fail:
	pm_sinkset_close(&s, true);
	return r;
}

void pm_sinkset_close(struct pm_sinkset *set, bool final)
{
	while (set->n > 0) {
		set->n--;
		set->ops[set->n]->close(set->state[set->n], final);
		set->state[set->n] = NULL;
		set->ops[set->n] = NULL;
	}
}

void pm_sinkset_emit(const struct pm_sinkset *set, size_t device,
		     const struct pm_sample *s,
		     const struct pm_device_state *st)
{
	for (size_t i = 0; i < set->n; i++)
		set->ops[i]->emit(set->state[i], set->cfg, device, s, st);
}

void pm_sinkset_tick_done(const struct pm_sinkset *set)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->ops[i]->tick_done)
			set->ops[i]->tick_done(set->state[i], set->cfg);
}

void pm_sinkset_watch(const struct pm_sinkset *set,
		      const struct pm_watch_tick *t)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->ops[i]->watch)
			set->ops[i]->watch(set->state[i], set->cfg, t);
}

uint64_t pm_sinkset_backlog(const struct pm_sinkset *set, bool *has)
{
	uint64_t sum = 0;

	*has = false;
	for (size_t i = 0; i < set->n; i++)
		if (set->ops[i]->backlog) {
			sum += set->ops[i]->backlog(set->state[i]);
			*has = true;
		}
	return sum;
}

void pm_sinkset_status(const struct pm_sinkset *set, struct pm_buf *out)
{
	for (size_t i = 0; i < set->n; i++) {
		size_t before = out->len;

		if (!set->ops[i]->status)
			continue;
		if (out->len > 0 && pm_buf_adds(out, "; ") < 0)
			return;
		set->ops[i]->status(set->state[i], out);
		if (out->len == before + 2 && before > 0)
			pm_buf_truncate(out, 2);	/* it had nothing to say */
	}
}

uint64_t pm_sinkset_progress(const struct pm_sinkset *set, size_t i,
			     bool *has)
{
	*has = set->ops[i]->progress != NULL;
	return *has ? set->ops[i]->progress(set->state[i]) : 0;
}
