/* sink_influx.c — placeholder, being written. */
