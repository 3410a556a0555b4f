/* portlock.h — one owner per serial port: every process that opens a
 * converter holds an exclusive flock(2) on it, and the tty is put in
 * exclusive mode (TIOCEXCL) once libmodbus has opened it, so a second process
 * fails at once instead of interleaving frames on the RS-485 line. */
#ifndef PM_PORTLOCK_H
#define PM_PORTLOCK_H

#include <sys/types.h>

/* Opens 'path' (O_RDWR|O_NOCTTY|O_CLOEXEC|O_NONBLOCK) and takes
 * flock(LOCK_EX|LOCK_NB) on it. Returns 0 with *lock_fd set, or
 * -ENOENT (no such port), -EACCES (permission), -EBUSY (another process
 * holds it — *holder gets its pid, 0 when it cannot be found; this includes
 * open() failing with EBUSY because the tty is in TIOCEXCL mode), or another
 * -errno. 'holder' may be NULL. */
int pm_portlock_acquire(const char *path, int *lock_fd, pid_t *holder);

/* Puts the tty behind 'tty_fd' in exclusive mode (TIOCEXCL): further open()s
 * by unprivileged processes fail with EBUSY. 0 or -errno. */
int pm_portlock_exclusive(int tty_fd);

/* Leaves exclusive mode (TIOCNXCL), so that the owner itself may reopen
 * the port. 0 or -errno. */
int pm_portlock_shared(int tty_fd);

/* The pid holding the flock on 'path', found in /proc/locks by the device
 * node's major:minor:inode; 0 when none or unknown. */
pid_t pm_portlock_holder(const char *path);

/* Drops the lock and closes the fd (-1 is ignored). */
void pm_portlock_release(int lock_fd);

#endif
