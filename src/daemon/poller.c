/* poller.c — placeholder. */
