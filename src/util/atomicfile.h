/* atomicfile.h — files that others read, replaced whole: a temporary of our
 * own beside the file, then rename(2); and whether a directory is one where
 * nobody else can put something in our files' place. */
#ifndef PM_ATOMICFILE_H
#define PM_ATOMICFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Names tried for a temporary before giving up: others may be in the way
 * (a leftover of a crash, someone's symlink, FIFO or file). */
#define PM_ATOMIC_TRIES 16

/* Flags of pm_atomic_init(). */
#define PM_ATOMIC_SYNC 1u	/* fsync the temporary before it replaces
				   the file (state that must survive a
				   power cut); without it, a tick's output */

/* One file at 'path', replaced whole by each pm_atomic_write(). Its
 * temporaries are "<dir>/.<name>.<pid>.<n>.tmp": created here (O_EXCL,
 * O_NOFOLLOW), so whatever already has that name — a symlink, a FIFO,
 * another's file — is never written through nor waited on, but skipped.
 * Not thread-safe: one writer at a time. */
struct pm_atomic_file {
	char *path;
	char *tmp_prefix;	/* "<dir>/.<name>.<pid>." */
	char *tmp;		/* the temporary's name, room for a serial */
	size_t tmp_size;
	unsigned serial;	/* the next temporary's <n> */
	mode_t mode;		/* whatever the umask: others read it */
	unsigned flags;
	bool staged;		/* tmp holds a complete temporary */
	dev_t staged_dev;
	ino_t staged_ino;
	bool written;		/* the file at path is the one we wrote: */
	dev_t written_dev;
	ino_t written_ino;
};

/* 0, or -ENOMEM. 'path' is copied. */
int pm_atomic_init(struct pm_atomic_file *f, const char *path, mode_t mode,
		   unsigned flags);

/* Frees what init allocated; a temporary still staged is removed. The file
 * stays. */
void pm_atomic_fini(struct pm_atomic_file *f);

/* Writes 'data' into a new temporary (pm_atomic_commit() puts it in the
 * file's place, pm_atomic_abort() removes it). 0 or -errno; on failure no
 * temporary is left. */
int pm_atomic_stage(struct pm_atomic_file *f, const void *data, size_t len);

/* Renames the staged temporary over the file. 0 or -errno (-EINVAL when
 * nothing is staged); on failure the temporary is removed, the file is as
 * it was. */
int pm_atomic_commit(struct pm_atomic_file *f);

/* Removes a staged temporary. */
void pm_atomic_abort(struct pm_atomic_file *f);

/* pm_atomic_stage() and pm_atomic_commit(). 0 or -errno; on failure the
 * file is as it was and no temporary is left. */
int pm_atomic_write(struct pm_atomic_file *f, const void *data, size_t len);

/* Removes the file if it is still the one the last write put there (not
 * one another program has put in its place since). 0 or -errno. */
int pm_atomic_remove(struct pm_atomic_file *f);

/* Whether users other than the directory's owner can replace what we write
 * into 'dir': 0 when they cannot (writable by its owner alone, or sticky
 * like /tmp: only a file's owner may rename or remove it there); -EPERM
 * when they can, with a sentence in 'why' saying who and what to do;
 * -errno when it cannot be looked at (-ENOENT, -ENOTDIR). In a sticky
 * directory that others may write, 'file' (a name in it, or NULL) must be
 * absent or a regular file of ours: -EPERM otherwise. */
int pm_dir_check_private(const char *dir, const char *file, char *why,
			 size_t size);

#endif
