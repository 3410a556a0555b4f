/* main.c — hdhk-sim: reads the options or SIM.json, starts one thread per
 * bus (pty or gateway), serves the control socket until SIGTERM/SIGINT,
 * then tears down. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "util/log.h"
#include "pm-build.h"
#include "sim.h"
#include "util/timeutil.h"

#define EXIT_USAGE 64
#define EXIT_CONFIG 78

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hdhk-sim -c SIM.json [-v]\n"
		"       hdhk-sim --pty PATH | --listen URL [--baud 9600] [--framing N81]\n"
		"                [--address 1[,2,...]] [--no-wire-time] [--log FILE]\n"
		"                [--control SOCKET] [-v]\n"
		"Simulates HDHK 16-channel current modules on pseudo-terminals or behind\n"
		"Ethernet gateways (URL: tcp://HOST:PORT or rtu+tcp://HOST:PORT).\n"
		"See hdhk-sim(1).\n");
}

static int replace_string(char **dst, const char *src)
{
	char *s = strdup(src);

	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "pty", required_argument, NULL, 'p' },
		{ "listen", required_argument, NULL, 'L' },
		{ "baud", required_argument, NULL, 'b' },
		{ "framing", required_argument, NULL, 'f' },
		{ "address", required_argument, NULL, 'a' },
		{ "no-wire-time", no_argument, NULL, 'W' },
		{ "log", required_argument, NULL, 'l' },
		{ "control", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *pty = NULL, *listen_url = NULL, *framing = "N81";
	const char *addresses = "1";
	const char *log_path = NULL, *control_path = NULL;
	struct sim sim = { .log = NULL };
	size_t started = 0;
	int baud = 9600, c, r, sfd = -1, status = EXIT_FAILURE;
	bool wire_time = true, verbose = false;
	sigset_t mask;
	char *end;

	pm_log_init("hdhk-sim", 0);
	while ((c = getopt_long(argc, argv, "c:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'p': pty = optarg; break;
		case 'L': listen_url = optarg; break;
		case 'b':
			baud = (int)strtol(optarg, &end, 10);
			if (*end || !*optarg) {
				log_err("--baud: not a number: %s", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'f': framing = optarg; break;
		case 'a': addresses = optarg; break;
		case 'W': wire_time = false; break;
		case 'l': log_path = optarg; break;
		case 's': control_path = optarg; break;
		case 'v': verbose = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("hdhk-sim %s\n", PM_VERSION); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc || !!config + !!pty + !!listen_url != 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	pm_log_set_level(verbose ? LOG_DEBUG : LOG_NOTICE);

	r = config ? sim_config_load(&sim, config) :
		     sim_config_quick(&sim, pty ? pty : listen_url, !pty, baud, framing, addresses,
				      wire_time);
	/* the options override the file's log and control socket */
	if (r == 0 && log_path)
		r = replace_string(&sim.log_path, log_path);
	if (r == 0 && control_path)
		r = replace_string(&sim.control_path, control_path);
	if (r == 0 && config && !wire_time)
		for (size_t i = 0; i < sim.nbuses; i++)
			sim.buses[i].wire_time = false;
	if (r < 0) {
		if (r == -ENOMEM)
			log_err("out of memory");
		sim_config_free(&sim);
		return r == -EINVAL ? EXIT_CONFIG : EXIT_FAILURE;
	}

	/* signals arrive on the signalfd only; the bus threads inherit the mask */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		log_err("signalfd: %s", strerror(errno));
		goto out;
	}
	pthread_mutex_init(&sim.log_lock, NULL);
	r = txlog_open(&sim);
	if (r < 0) {
		log_err("%s: %s", sim.log_path, strerror(-r));
		goto out_log;
	}
	sim.start_ns = pm_mono_ns();
	for (started = 0; started < sim.nbuses; started++) {
		r = bus_start(&sim.buses[started]);
		if (r < 0) {
			started++;	/* its lock exists: bus_stop cleans up */
			goto out_buses;
		}
	}
	if (control_run(&sim, sfd) == 0)
		status = EXIT_SUCCESS;
out_buses:
	while (started > 0) {
		bus_stop(&sim.buses[--started]);
		pthread_mutex_destroy(&sim.buses[started].lock);
		pthread_cond_destroy(&sim.buses[started].cond);
	}
	txlog_close(&sim);
out_log:
	pthread_mutex_destroy(&sim.log_lock);
out:
	if (sfd >= 0)
		close(sfd);
	sim_config_free(&sim);
	return status;
}
