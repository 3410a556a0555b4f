/* sink_snapshot.c — placeholder, being written. */
