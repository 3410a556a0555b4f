/* read.c — placeholder, being written. */
