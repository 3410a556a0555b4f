/* spool.h — placeholder, being written. */
