/* txlog.c — the transaction log: one JSON object per line for every request
 * a bus handled, flushed per line so tests can read it while we run. */
#include <errno.h>
#include <json-c/json.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "sim.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

int txlog_open(struct sim *sim)
{
	if (!sim->log_path)
		return 0;
	sim->log = fopen(sim->log_path, "ae");
	if (!sim->log)
		return -errno;
	return 0;
}

void txlog_close(struct sim *sim)
{
	if (sim->log)
		(void)fclose(sim->log);
	sim->log = NULL;
}

static double now_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Called right after the answer was written (or withheld). */
void txlog_write(struct sim *sim, const struct txlog_entry *e)
{
	json_object *o, *values;

	if (!sim->log)
		return;
	o = json_object_new_object();
	if (!o)
		return;
	json_object_object_add(o, "t_ms", json_object_new_double(now_unix_ms()));
	json_object_object_add(o, "bus", json_object_new_string(e->bus));
	json_object_object_add(o, "addr", json_object_new_int(e->addr));
	json_object_object_add(o, "fc", json_object_new_int(e->fc));
	json_object_object_add(o, "start", json_object_new_int(e->start));
	json_object_object_add(o, "count", json_object_new_int(e->count));
	json_object_object_add(o, "result", json_object_new_string(e->result));
	if (e->exception)
		json_object_object_add(o, "exception", json_object_new_int(e->exception));
	values = json_object_new_array_ext(e->nvalues);
	for (int i = 0; values && i < e->nvalues; i++)
		json_object_array_add(values, json_object_new_int(e->values[i]));
	json_object_object_add(o, "values", values);

	pthread_mutex_lock(&sim->log_lock);
	if (fprintf(sim->log, "%s\n", json_object_to_json_string_ext(o, JSON_FLAGS)) < 0 ||
	    fflush(sim->log) != 0)
		log_warning("%s: cannot write the transaction log: %s, ignoring",
			    sim->log_path, strerror(errno));
	pthread_mutex_unlock(&sim->log_lock);
	json_object_put(o);
}
