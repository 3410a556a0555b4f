/* sim.h — hdhk-sim's shared types: simulated HDHK modules (the datasheet's
 * register map), the buses (pseudo-terminals, or Ethernet gateways on a
 * TCP port) that carry them, and faults. */
#ifndef HDHK_SIM_H
#define HDHK_SIM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Datasheet register map: 56 16-bit registers, 0x00..0x37. */
#define HDHK_NREGS		56
#define HDHK_NCHANNELS		16
#define HDHK_REG_VERSION	0	/* 628 = V6.2.8 */
#define HDHK_REG_RANGE_AH	1	/* range of channels A..H, 40 = 40 A */
#define HDHK_REG_RANGE_IP	2	/* range of channels I..P */
#define HDHK_REG_LINE		3	/* framing<<12 | baud<<8 | address */
#define HDHK_REG_DATE		4	/* year<<8 | month */
#define HDHK_REG_RESERVED	5
#define HDHK_REG_DIVISION	6	/* frequency division coefficient 1..5 */
#define HDHK_REG_SELECTION	7	/* threshold<<8 | frequency selection */
#define HDHK_REG_CURRENT	8	/* 8..23: channel A..P, 0.01 A */
#define HDHK_REG_FREQUENCY	24	/* 24..39: channel A..P, 0.1 Hz */
#define HDHK_REG_RATIO		40	/* 40..55: channel A..P CT ratio */

/* Defaults of a fresh module (datasheet), and the simulator's own choices. */
#define HDHK_DEFAULT_VERSION	628
#define HDHK_DEFAULT_RANGE	40
#define HDHK_DEFAULT_DATE	((20 << 8) | 6)
#define HDHK_DEFAULT_DIVISION	5
#define HDHK_DEFAULT_SELECTION	30
#define HDHK_DEFAULT_FREQUENCY	500	/* 50.0 Hz */
#define HDHK_DEFAULT_RATIO	1000	/* not in the datasheet; plausible */

/* Modbus RTU limits (Modbus over serial line spec). */
#define RTU_MAX_ADU		256
#define RTU_MIN_FRAME		4	/* address, function, CRC */
#define MB_MAX_READ		125
#define MB_MAX_WRITE		123
#define MB_FC_READ_HOLDING	0x03
#define MB_FC_WRITE_SINGLE	0x06
#define MB_FC_WRITE_MULTIPLE	0x10
#define MB_EX_ILLEGAL_FUNCTION	1
#define MB_EX_ILLEGAL_ADDRESS	2
#define MB_EX_ILLEGAL_VALUE	3
#define MB_EX_DEVICE_FAILURE	4
#define MB_BROADCAST		0

/* Framing codes, as register 3's high nibble encodes them. */
enum sim_framing {
	SIM_N81 = 0,
	SIM_E81 = 1,
	SIM_O81 = 2,
	SIM_N82 = 3,
};

struct sim_line {
	int baud;
	enum sim_framing framing;
};

enum sim_gen_kind {
	SIM_GEN_CONST,
	SIM_GEN_SINE,
	SIM_GEN_WALK,
	SIM_GEN_PROFILE,
};

#define SIM_PROFILE_MAX_POINTS	1024
#define SIM_PROFILE_MAX_SECONDS	1e9	/* a point's time since the start */

struct sim_point {
	double t;		/* seconds since the profile's start, non-decreasing */
	double raw;		/* 0..65535 */
};

/* Steps and ramps through points; owned by the one generator holding it. */
struct sim_profile {
	double start;		/* Unix time (CLOCK_REALTIME) of second 0 */
	bool repeat;		/* with period points[n-1].t - points[0].t */
	size_t n;		/* 1..SIM_PROFILE_MAX_POINTS */
	struct sim_point points[];
};

/* Where one channel's register value comes from. A profile generator owns
 * its profile: copy it with sim_gen_copy, release it with sim_gen_clear. */
struct sim_gen {
	enum sim_gen_kind kind;
	int value;			/* const; walk: current position */
	double mean, amplitude, period;	/* sine: seconds per cycle */
	int step, min, max;		/* walk */
	uint64_t rng;			/* walk */
	struct sim_profile *profile;	/* profile */
};

enum sim_fault_kind {
	SIM_FAULT_NONE,
	SIM_FAULT_NOANSWER,
	SIM_FAULT_BADCRC,
	SIM_FAULT_TRUNCATE,
	SIM_FAULT_GARBAGE,
	SIM_FAULT_WRONGADDR,
	SIM_FAULT_EXCEPTION,
	SIM_FAULT_STALL,
	SIM_FAULT_NOISY,	/* each answer, with some probability, one of: */
};

/* What a noisy line does to an answer it spoils, drawn at random. */
#define SIM_NOISE_KINDS		4
extern const enum sim_fault_kind sim_noise_kinds[SIM_NOISE_KINDS];

struct sim_fault {
	enum sim_fault_kind kind;
	long remaining;		/* answers still affected; -1 = until cleared */
	int64_t until_ns;	/* stall: silent until this monotonic time */
	double probability;	/* noisy: of spoiling an answer, (0, 1] */
};

struct sim_module {
	uint16_t line_reg;	/* register 3; the address is its low byte */
	int pending_line;	/* register 3 written, applied after the answer; -1 none */
	uint16_t version, range_ah, range_ip, date, reserved;
	uint16_t division, selection;
	struct sim_gen current[HDHK_NCHANNELS];
	struct sim_gen frequency[HDHK_NCHANNELS];
	uint16_t ratio[HDHK_NCHANNELS];
	struct sim_fault fault;
	uint64_t requests, answers, faults, mismatches;
	uint64_t noise[SIM_NOISE_KINDS];	/* noisy: answers spoiled, by kind */
};

struct sim;

/* What a bus is to its clients. */
enum sim_bus_kind {
	SIM_BUS_PTY,		/* an RS-485 converter on a pseudo-terminal */
	SIM_BUS_TCP,		/* a Modbus TCP gateway (MBAP) on a TCP port */
	SIM_BUS_RTU_TCP,	/* a transparent converter: RTU frames over TCP */
};

struct sim_bus {
	/* configuration */
	int index;
	/* the pty's link; a gateway's URL, "tcp://127.0.0.1:PORT" (port 0 in
	 * the configuration is replaced by the one chosen at start) */
	char *path;
	enum sim_bus_kind kind;
	struct sim_line line;
	bool wire_time;
	struct sim_module *modules;
	size_t nmodules;
	struct sim *sim;

	/* run time; 'lock' guards the modules and every field below */
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	int64_t disconnect_ns;	/* requested outage; 0 = none */
	bool disconnected;
	uint64_t outages;	/* disconnects so far */
	uint64_t requests, discarded;	/* discarded: garbage bytes */
	uint64_t connections, refused;	/* gateway: clients served, turned away */
	bool connected;		/* gateway: a client is connected */
	uint64_t rng;		/* garbage bytes, noise (reseeded by "fault ... noisy P SEED") */
	int wake_fd;		/* eventfd: stop or disconnect requested */
	/* owned by the bus thread once it runs */
	char slave_name[64];	/* /dev/pts/N */
	int master_fd;
	int slave_fd;		/* kept open: the master never sees EIO */
	int inotify_fd;		/* the clients' opens and closes of the slave */
	int clients;		/* how many have it open */
	/* gateway, owned by the bus thread */
	int listen_fd;
	int client_fd;
	unsigned tid;		/* Modbus TCP: the request being answered */
};

struct sim {
	char *log_path;
	char *control_path;
	struct sim_bus *buses;
	size_t nbuses;
	int64_t start_ns;	/* CLOCK_MONOTONIC at start: sine phase 0 */
	FILE *log;
	pthread_mutex_t log_lock;
};

/* rtu.c */
uint16_t rtu_crc16(const uint8_t *p, size_t n);
bool rtu_crc_ok(const uint8_t *p, size_t n);
size_t rtu_append_crc(uint8_t *frame, size_t n);
int rtu_request_len(const uint8_t *p, size_t n);
size_t rtu_exception(uint8_t *frame, int addr, int fc, int code);

/* module.c */
int sim_baud_code(int baud);
int sim_baud_from_code(int code);
int sim_framing_parse(const char *s);
const char *sim_framing_name(enum sim_framing f);
int64_t sim_char_ns(const struct sim_line *line);
void sim_module_init(struct sim_module *m, int address, const struct sim_line *line);
int sim_module_address(const struct sim_module *m);
void sim_module_line(const struct sim_module *m, struct sim_line *line);
uint16_t sim_gen_value(struct sim_gen *g, double t_s, double unix_s, bool advance);
void sim_gen_const(struct sim_gen *g, int value);
void sim_gen_clear(struct sim_gen *g);
int sim_gen_copy(struct sim_gen *dst, const struct sim_gen *src);
double sim_profile_value(const struct sim_profile *p, double unix_s);
int sim_default_raw(int address, int channel);
void sim_module_free(struct sim_module *m);
int sim_module_read(struct sim_module *m, int start, int count, uint16_t *out, double t_s,
		    double unix_s);
int sim_module_write(struct sim_module *m, int start, int count, const uint16_t *values,
		     bool defer_line);
void sim_module_apply_pending(struct sim_module *m);
int sim_module_setreg(struct sim_module *m, int reg, int value);

/* fault.c */
int sim_fault_parse(const char *s);
const char *sim_fault_name(enum sim_fault_kind k);
size_t sim_fault_mangle(enum sim_fault_kind k, uint8_t *frame, size_t len, int addr,
			uint64_t *rng);
uint64_t sim_rand(uint64_t *state);
int sim_noise_draw(double p, uint64_t *rng);

/* scenario.c */
int sim_config_load(struct sim *sim, const char *file);
int sim_profile_from_json(const char *text, struct sim_gen *g, char *err, size_t errlen);
int sim_config_quick(struct sim *sim, const char *path, bool listen, int baud,
		     const char *framing, const char *addresses, bool wire_time);
int sim_listen_parse(const char *url, enum sim_bus_kind *kind, char *host, size_t hostlen,
		     int *port);
void sim_config_free(struct sim *sim);

/* txlog.c */
struct txlog_entry {
	const char *bus;
	int addr, fc, start, count;
	const char *result;
	int exception;		/* 0 when none */
	const uint16_t *values;
	int nvalues;
};
int txlog_open(struct sim *sim);
void txlog_close(struct sim *sim);
void txlog_write(struct sim *sim, const struct txlog_entry *e);

/* bus.c */
int bus_start(struct sim_bus *b);
void bus_stop(struct sim_bus *b);
int bus_disconnect(struct sim_bus *b, double seconds);

/* control.c */
int control_run(struct sim *sim, int signal_fd);

#endif
