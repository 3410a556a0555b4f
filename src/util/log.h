/* log.h — the one place messages leave the programs: stderr, with sd-daemon
 * "<N>" priority prefixes when running under systemd (JOURNAL_STREAM set) or
 * when asked. Library code never logs; it returns errors to its caller. */
#ifndef PM_LOG_H
#define PM_LOG_H

#include <stdarg.h>
#include <syslog.h>

/* Prefix every line with "<N>" (systemd) — default: when JOURNAL_STREAM is
 * set. Set 'prog' to prefix "prog: " instead (command-line tools). */
void pm_log_init(const char *prog, int prefix_priority);
/* Messages above this priority (LOG_DEBUG > LOG_INFO) are dropped. */
void pm_log_set_level(int max_priority);

void pm_log(int priority, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void pm_logv(int priority, const char *fmt, va_list ap);

#define log_err(...) pm_log(LOG_ERR, __VA_ARGS__)
#define log_warning(...) pm_log(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) pm_log(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) pm_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) pm_log(LOG_DEBUG, __VA_ARGS__)

#endif
