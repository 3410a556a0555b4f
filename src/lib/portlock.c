/* portlock.c — placeholder, being written. */
