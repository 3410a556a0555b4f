/* influxconf.h — placeholder, being written. */
