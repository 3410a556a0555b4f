/* sinks.c — placeholder, being written. */
