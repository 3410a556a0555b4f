/* outdirs.h — the directories powermeterd writes its files into: created
 * when missing, and refused when another user could put files in the place
 * of ours there. */
#ifndef PM_OUTDIRS_H
#define PM_OUTDIRS_H

#include "config/config.h"

/* mkdir -p of the state, spool and snapshot directories the config uses;
 * one that cannot be made is logged, and left to the part that needs it
 * to fail on. */
void pm_outdirs_prepare(const struct pm_config *cfg);

/* Every directory the daemon would write into under 'cfg' (snapshot,
 * Prometheus textfile, state, ledger, spool), checked with
 * pm_dir_check_private(): 0 when all are safe (or missing: their writers
 * report that), else -EPERM after logging each problem with what to do. */
int pm_outdirs_check(const struct pm_config *cfg);

#endif
