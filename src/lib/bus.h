/* bus.h — placeholder, being written. */
