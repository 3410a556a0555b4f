/* sink_stdout.c — placeholder, being written. */
