/* format.c — placeholder, being written. */
