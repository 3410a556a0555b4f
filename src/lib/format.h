/* format.h — placeholder, being written. */
