/* influxconf.c — placeholder, being written. */
