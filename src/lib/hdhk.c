/* hdhk.c — placeholder, being written. */
