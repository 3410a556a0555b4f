/* lineproto.c — placeholder, being written. */
