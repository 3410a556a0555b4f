/* portlock.h — placeholder, being written. */
