/* snapshot.h — placeholder, being written. */
