/* spool.c — placeholder, being written. */
