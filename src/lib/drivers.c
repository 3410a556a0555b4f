/* drivers.c — placeholder, being written. */
