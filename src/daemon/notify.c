/* notify.c — placeholder. */
