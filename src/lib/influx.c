/* influx.c — placeholder, being written. */
