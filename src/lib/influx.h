/* influx.h — placeholder, being written. */
