/* lineproto.h — placeholder, being written. */
