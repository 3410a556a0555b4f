/* test_bus.c — Modbus RTU transactions of bus.c over the serial transport
 * (serial.c), and a module read (meter/module.c), against a scripted module
 * on a pseudo-terminal: every kind of bad answer is told apart and none
 * becomes a value, a late answer to an earlier request is never taken for
 * the current one, the port lock, and the electrician's messages. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <powermeter/powermeter.h>

#include "../../src/bus/bus.c"
#include "../../src/bus/serial.c"
#include "meter/failure.h"
#include "meter/module.h"

/* ---- a scripted module on the master side of a pty ---------------------- */

struct step {
	bool wait_request;	/* read one 8-byte request first */
	int delay_ms;		/* then wait */
	uint8_t out[300];	/* then write this */
	size_t out_len;
	bool hang_up;		/* or close the master */
};

struct module {
	int master;
	char slave[64];
	pthread_t thread;
	struct step steps[8];
	size_t n_steps;
	uint8_t requests[8][8];	/* what the client sent */
	size_t n_requests;
};

static void *module_run(void *arg)
{
	struct module *m = arg;

	for (size_t i = 0; i < m->n_steps; i++) {
		struct step *s = &m->steps[i];

		if (s->wait_request) {
			size_t got = 0;

			while (got < 8) {
				ssize_t n = read(m->master,
						 m->requests[m->n_requests] + got,
						 8 - got);
				if (n <= 0)
					return NULL;
				got += (size_t)n;
			}
			m->n_requests++;
		}
		if (s->delay_ms)
			usleep((useconds_t)s->delay_ms * 1000);
		if (s->hang_up) {
			close(m->master);
			m->master = -1;
			return NULL;
		}
		if (s->out_len && write(m->master, s->out, s->out_len) !=
				  (ssize_t)s->out_len)
			return NULL;
	}
	return NULL;
}

static void module_open(struct module *m)
{
	memset(m, 0, sizeof(*m));
	m->master = posix_openpt(O_RDWR | O_NOCTTY);
	assert_true(m->master >= 0);
	assert_int_equal(grantpt(m->master), 0);
	assert_int_equal(unlockpt(m->master), 0);
	snprintf(m->slave, sizeof(m->slave), "%s", ptsname(m->master));
}

static void module_start(struct module *m)
{
	assert_int_equal(pthread_create(&m->thread, NULL, module_run, m), 0);
}

static void module_finish(struct module *m)
{
	pthread_join(m->thread, NULL);
	if (m->master >= 0)
		close(m->master);
}

/* A frame with its CRC appended. */
static size_t frame(uint8_t *out, const uint8_t *pdu, size_t n)
{
	uint16_t crc = pm_rtu_crc16(pdu, n);

	memcpy(out, pdu, n);
	out[n] = (uint8_t)(crc & 0xff);
	out[n + 1] = (uint8_t)(crc >> 8);
	return n + 2;
}

/* The answer of unit 'addr' with 'count' registers valued base + i. */
static size_t answer(uint8_t *out, int addr, unsigned count, unsigned base)
{
	uint8_t pdu[300];

	pdu[0] = (uint8_t)addr;
	pdu[1] = 0x03;
	pdu[2] = (uint8_t)(2 * count);
	for (unsigned i = 0; i < count; i++) {
		pdu[3 + 2 * i] = (uint8_t)((base + i) >> 8);
		pdu[4 + 2 * i] = (uint8_t)(base + i);
	}
	return frame(out, pdu, 3 + 2 * count);
}

static void step_answer(struct module *m, int addr, unsigned count,
			unsigned base)
{
	struct step *s = &m->steps[m->n_steps++];

	s->wait_request = true;
	s->out_len = answer(s->out, addr, count, base);
}

static struct pm_device device(const char *port, int address)
{
	struct pm_device d = {
		.id = 3,
		.port = (char *)port,
		.address = address,
		.line = { 9600, 'N', 8, 1 },
		.timeout = 0.3,
		.driver = &pm_driver_hdhk,
	};
	return d;
}

static const struct pm_sample untouched = { .device = 99, .time_ms = -1 };

/* Opens the bus on m's slave, reads once, returns the result. */
static int read_once(struct module *m, struct pm_device *dev,
		     struct pm_sample *s, struct pm_bus_fault *fault)
{
	struct pm_bus *bus;
	int r;

	dev->port = m->slave;
	assert_int_equal(pm_bus_open(&bus, m->slave, &dev->line), 0);
	module_start(m);
	*s = untouched;
	r = pm_module_read(bus, dev, 0, 0, s);
	*fault = *pm_bus_last_fault(bus);
	pm_bus_close(bus);
	module_finish(m);
	return r;
}

static void assert_untouched(const struct pm_sample *s)
{
	assert_memory_equal(s, &untouched, sizeof(*s));
}

/* ---- tests ----------------------------------------------------------------- */

static void test_read_ok(void **state)
{
	struct pm_device dev = device(NULL, 7);
	struct pm_bus_fault fault;
	struct module m;
	struct pm_sample s;
	uint8_t want[8];

	(void)state;
	module_open(&m);
	step_answer(&m, 7, 16, 100);
	assert_int_equal(read_once(&m, &dev, &s, &fault), 0);
	/* FC 0x03, registers 8..23 of unit 7 */
	assert_int_equal(m.n_requests, 1);
	frame(want, (const uint8_t[]){ 7, 0x03, 0, 8, 0, 16 }, 6);
	assert_memory_equal(m.requests[0], want, 8);
	assert_int_equal(s.device, 0);
	assert_false(s.has_frequency);
	for (int i = 0; i < 16; i++)
		assert_int_equal(s.current[i], 100 + i);
	assert_true(s.time_ms > 1600000000000);
	assert_int_equal(fault.err, 0);
}

static void test_read_with_frequency(void **state)
{
	struct pm_device dev = device(NULL, 1);
	struct pm_bus_fault fault;
	struct module m;
	struct pm_sample s;
	uint8_t want[8];

	(void)state;
	dev.frequency = true;
	module_open(&m);
	step_answer(&m, 1, 32, 500);
	assert_int_equal(read_once(&m, &dev, &s, &fault), 0);
	/* one request: registers 8..39 */
	frame(want, (const uint8_t[]){ 1, 0x03, 0, 8, 0, 32 }, 6);
	assert_memory_equal(m.requests[0], want, 8);
	assert_true(s.has_frequency);
	assert_int_equal(s.current[15], 515);
	assert_int_equal(s.frequency[0], 516);
	assert_int_equal(s.frequency[15], 531);
}

/* A device whose line settings differ from the port's switches the line. */
static void test_line_switch(void **state)
{
	struct pm_device dev = device(NULL, 1);
	struct termios tio;
	struct module m;
	struct pm_bus *bus;
	struct pm_sample s;

	(void)state;
	module_open(&m);
	step_answer(&m, 1, 16, 100);
	dev.port = m.slave;
	assert_int_equal(pm_bus_open(&bus, m.slave, &dev.line), 0);
	dev.line = (struct pm_line){ 19200, 'E', 8, 1 };
	module_start(&m);
	assert_int_equal(pm_module_read(bus, &dev, 0, 0, &s), 0);
	pthread_join(m.thread, NULL);
	assert_int_equal(tcgetattr(modbus_get_socket(((struct serial *)bus->t)->ctx), &tio), 0);
	assert_int_equal(cfgetospeed(&tio), B19200);	/* (a pty keeps 8N1) */
	/* 11 bits per character now: 3.5 characters are 2005 us */
	assert_int_equal(((struct serial *)bus->t)->char_ns, 572916);
	pm_bus_close(bus);
	close(m.master);
}

static void test_timeout(void **state)
{
	struct pm_device dev = device(NULL, 1);
	struct pm_bus_fault fault;
	struct module m;
	struct pm_sample s;

	(void)state;
	module_open(&m);
	m.steps[m.n_steps++] = (struct step){ .wait_request = true };
	assert_int_equal(read_once(&m, &dev, &s, &fault), -ETIMEDOUT);
	assert_untouched(&s);
	assert_int_equal(fault.err, -ETIMEDOUT);
}

static void test_bad_crc(void **state)
{
	struct pm_device dev = device(NULL, 1);
	struct pm_bus_fault fault;
	struct module m;
	struct pm_sample s;

	(void)state;
	module_open(&m);
	step_answer(&m, 1, 16, 100);
	m.steps[0].out[20] ^= 0x01;	/* one bit flipped in a value */
	assert_int_equal(read_once(&m, &dev, &s, &fault), -PM_ECRC);
	assert_untouched(&s);
}

static void test_short_answer(void **state)
{
	struct pm_device dev = device(NULL, 1);
	struct pm_bus_fault fault;
	struct module m;
	struct pm_sample s;

	(void)state;
	module_open(&m);
	step_answer(&m, 1, 16, 100);
	m.steps[0].out_len = 20;	/* cut short */
	assert_int_equal(read_once(&m, &dev, &s, &fault), -PM_EFRAME);
	assert_untouched(&s);
}

static void test_wrong_unit(void **state)
{
	struct pm_device dev = device(NULL, 1);
	struct pm_bus_fault fault;
	struct module m;
	struct pm_sample s;

	(void)state;
	module_open(&m);
	step_answer(&m, 2, 16, 100);	/* a valid frame, from unit 2 */
	assert_int_equal(read_once(&m, &dev, &s, &fault), -PM_EUNIT);
	assert_untouched(&s);
	assert_int_equal(fault.from_address, 2);
}

static void test_garbage(void **state)
{
	struct pm_device dev = device(NULL, 1);
	struct pm_bus_fault fault;
	struct module m;
	struct pm_sample s;
	int r;

	(void)state;
	module_open(&m);
	step_answer(&m, 1, 16, 100);
	/* leading noise, then the real answer */
	memmove(m.steps[0].out + 3, m.steps[0].out, m.steps[0].out_len);
	memcpy(m.steps[0].out, "\x55\xaa\x13", 3);
	m.steps[0].out_len += 3;
	r = read_once(&m, &dev, &s, &fault);
	assert_true(r == -PM_EFRAME || r == -PM_ECRC);
	assert_untouched(&s);
}

static void test_exception(void **state)
{
	struct pm_device dev = device(NULL, 1);
	struct pm_bus_fault fault;
	struct module m;
	struct pm_sample s;
	struct step *st;

	(void)state;
	module_open(&m);
	st = &m.steps[m.n_steps++];
	st->wait_request = true;
	st->out_len = frame(st->out, (const uint8_t[]){ 1, 0x83, 0x02 }, 3);
	assert_int_equal(read_once(&m, &dev, &s, &fault), -PM_EEXCEPTION);
	assert_untouched(&s);
	assert_int_equal(fault.exception, 2);
}

/* The module answers the first request only after its timeout, right after
 * the second request: the late answer has the first request's length and is
 * discarded; the second request's own answer is taken. */
static void test_late_answer_never_taken(void **state)
{
	struct pm_device dev = device(NULL, 1);
	struct module m;
	struct pm_bus *bus;
	struct pm_sample s;
	struct step *st;

	(void)state;
	module_open(&m);
	m.steps[m.n_steps++] = (struct step){ .wait_request = true };
	st = &m.steps[m.n_steps++];
	st->wait_request = true;
	st->out_len = answer(st->out, 1, 16, 900);	/* the late one */
	st = &m.steps[m.n_steps++];
	st->delay_ms = 20;
	st->out_len = answer(st->out, 1, 17, 100);	/* the right one */
	dev.port = m.slave;
	assert_int_equal(pm_bus_open(&bus, m.slave, &dev.line), 0);
	module_start(&m);
	s = untouched;
	assert_int_equal(pm_module_read(bus, &dev, 0, 0, &s), -ETIMEDOUT);
	assert_untouched(&s);
	assert_int_equal(pm_module_read(bus, &dev, 0, 0, &s), 0);
	assert_int_equal(s.current[0], 100);
	assert_int_equal(s.current[15], 115);
	/* back to the plain request once answered */
	assert_int_equal(bus->stale[1], 0);
	pm_bus_close(bus);
	module_finish(&m);
	assert_int_equal(m.n_requests, 2);
	assert_int_equal(m.requests[0][5], 16);
	assert_int_equal(m.requests[1][5], 17);
}

static void test_hang_up(void **state)
{
	struct pm_device dev = device(NULL, 1);
	struct module m;
	struct pm_bus *bus;
	struct pm_sample s;
	int r;

	(void)state;
	module_open(&m);
	m.steps[m.n_steps++] = (struct step){ .wait_request = true, .hang_up = true };
	dev.port = m.slave;
	assert_int_equal(pm_bus_open(&bus, m.slave, &dev.line), 0);
	module_start(&m);
	s = untouched;
	r = pm_module_read(bus, &dev, 0, 0, &s);
	module_finish(&m);
	assert_int_equal(r, -EIO);
	assert_true(pm_bus_broken(bus));
	assert_untouched(&s);
	/* and it stays so until reopened */
	assert_int_equal(pm_module_read(bus, &dev, 0, 0, &s), -EIO);
	pm_bus_close(bus);
}

/* A noisy line: a bad CRC, another unit's answer, silence, then the right
 * answer — read on the fourth attempt, each bad one counted, the values
 * only from the good one. The retry after the silence asks for one more
 * register, so a late answer could not be taken for it. */
static void test_retries_cure_a_noisy_line(void **state)
{
	struct pm_device dev = device(NULL, 1);
	const struct pm_bus_counters *c;
	struct module m;
	struct pm_bus *bus;
	struct pm_sample s;

	(void)state;
	module_open(&m);
	step_answer(&m, 1, 16, 900);
	m.steps[0].out[20] ^= 0x01;			/* bad CRC */
	step_answer(&m, 2, 16, 800);			/* another unit */
	m.steps[m.n_steps++] = (struct step){ .wait_request = true };
	step_answer(&m, 1, 17, 100);
	dev.port = m.slave;
	assert_int_equal(pm_bus_open(&bus, m.slave, &dev.line), 0);
	module_start(&m);
	s = untouched;
	assert_int_equal(pm_module_read(bus, &dev, 0, 3, &s), 0);
	assert_int_equal(s.current[0], 100);
	assert_int_equal(s.current[15], 115);
	c = pm_bus_counters(bus);
	assert_int_equal(c->requests, 4);
	assert_int_equal(c->retries, 3);
	assert_int_equal(c->crc_errors, 1);
	assert_int_equal(c->frame_errors, 1);
	assert_int_equal(c->timeouts, 1);
	assert_int_equal(pm_bus_last_fault(bus)->err, 0);
	pm_bus_close(bus);
	module_finish(&m);
	assert_int_equal(m.n_requests, 4);
	assert_int_equal(m.requests[2][5], 16);
	assert_int_equal(m.requests[3][5], 17);
}

/* Retries run out: the last attempt's failure, no value; with none
 * allowed, one request. An exception is never retried. */
static void test_retries_run_out(void **state)
{
	struct pm_device dev = device(NULL, 1);
	uint8_t pdu[3] = { 1, 0x83, 2 };
	struct module m;
	struct pm_bus *bus;
	struct pm_sample s;

	(void)state;
	module_open(&m);
	step_answer(&m, 1, 16, 900);
	m.steps[0].out[20] ^= 0x01;
	step_answer(&m, 1, 16, 900);
	m.steps[1].out_len = 20;			/* cut short */
	step_answer(&m, 1, 16, 900);
	m.steps[2].out[7] ^= 0x10;			/* bad CRC again */
	m.steps[m.n_steps].wait_request = true;		/* an exception */
	m.steps[m.n_steps].out_len = frame(m.steps[m.n_steps].out, pdu, 3);
	m.n_steps++;
	dev.port = m.slave;
	assert_int_equal(pm_bus_open(&bus, m.slave, &dev.line), 0);
	module_start(&m);
	s = untouched;
	assert_int_equal(pm_module_read(bus, &dev, 0, 1, &s), -PM_EFRAME);
	assert_untouched(&s);
	assert_int_equal(pm_module_read(bus, &dev, 0, 0, &s), -PM_ECRC);
	assert_untouched(&s);
	assert_int_equal(pm_bus_counters(bus)->requests, 3);
	assert_int_equal(pm_bus_counters(bus)->retries, 1);
	assert_int_equal(pm_module_read(bus, &dev, 0, 5, &s), -PM_EEXCEPTION);
	assert_int_equal(pm_bus_counters(bus)->requests, 4);
	assert_int_equal(pm_bus_counters(bus)->retries, 1);
	pm_bus_close(bus);
	module_finish(&m);
}

/* A write whose echo was damaged is sent again (the same value twice is
 * harmless) and confirmed by the second echo. */
static void test_write_retried(void **state)
{
	struct pm_device dev = device(NULL, 7);
	uint8_t echo[6] = { 7, 0x06, 0x00, 0x28, 0x03, 0xe8 };
	struct module m;
	struct pm_bus *bus;

	(void)state;
	module_open(&m);
	for (int i = 0; i < 2; i++) {
		m.steps[i].wait_request = true;
		m.steps[i].out_len = frame(m.steps[i].out, echo, sizeof(echo));
	}
	m.steps[0].out[4] ^= 0x01;
	m.n_steps = 2;
	assert_int_equal(pm_bus_open(&bus, m.slave, &dev.line), 0);
	module_start(&m);
	assert_int_equal(pm_bus_write_register(bus, 7, 0.3, 40, 1000), 0);
	assert_int_equal(pm_bus_counters(bus)->retries, 1);
	assert_int_equal(pm_bus_counters(bus)->crc_errors, 1);
	pm_bus_close(bus);
	module_finish(&m);
	assert_int_equal(m.n_requests, 2);
	assert_memory_equal(m.requests[0], m.requests[1], 8);
}

static void test_port_lock(void **state)
{
	struct pm_line line = { 9600, 'N', 8, 1 };
	struct pm_bus *a, *b = NULL;
	struct pm_bus_fault fault;
	struct module m;

	(void)state;
	module_open(&m);
	assert_int_equal(pm_bus_open(&a, m.slave, &line), 0);
	assert_string_equal(pm_bus_port(a), m.slave);
	/* flock() excludes a second open file description, even ours */
	assert_int_equal(pm_bus_open_fault(&b, m.slave, &line, &fault), -EBUSY);
	assert_null(b);
	assert_int_equal(fault.err, -EBUSY);
	assert_int_equal(fault.holder, getpid());
	assert_int_equal(pm_portlock_holder(m.slave), getpid());
	pm_bus_close(a);
	assert_int_equal(pm_portlock_holder(m.slave), 0);
	assert_int_equal(pm_bus_open(&b, m.slave, &line), 0);
	pm_bus_close(b);
	close(m.master);
}

static void test_open_errors(void **state)
{
	struct pm_line line = { 9600, 'N', 8, 1 }, bad = line;
	struct pm_bus *bus = NULL;

	(void)state;
	assert_int_equal(pm_bus_open(&bus, "/nonexistent/ttyUSB9", &line), -ENOENT);
	assert_int_equal(pm_bus_open(&bus, "", &line), -EINVAL);
	bad.baud = 12345;
	assert_int_equal(pm_bus_open(&bus, "/dev/null", &bad), -EINVAL);
	/* not a tty: libmodbus's tcsetattr fails */
	assert_int_equal(pm_bus_open(&bus, "/dev/null", &line), -ENOTTY);
	assert_null(bus);
}

static void check_message(int err, const struct pm_bus_fault *fault,
			  const char *want)
{
	struct pm_device dev = device("/dev/ttyUSB0", 1);
	char buf[512];

	dev.id = 1;
	dev.timeout = 1.0;
	pm_describe_failure(buf, sizeof(buf), &dev, err, fault);
	assert_string_equal(buf, want);
}

static void test_messages(void **state)
{
	struct pm_bus_fault f = { 0 };

	(void)state;
	check_message(-ETIMEDOUT, NULL,
		"device 1 on /dev/ttyUSB0 address 1: no answer within 1.0 s "
		"(timeout) \u2014 check wiring A/B, 12 V supply, address and baud rate");
	check_message(-PM_ECRC, NULL,
		"device 1 on /dev/ttyUSB0 address 1: answer failed CRC check "
		"(noise on the RS-485 line? termination, cable length)");
	check_message(-ENOENT, NULL,
		"device 1 on /dev/ttyUSB0 address 1: port /dev/ttyUSB0 does not "
		"exist \u2014 is the USB\u2013RS-485 converter plugged in?");
	check_message(-EACCES, NULL,
		"device 1 on /dev/ttyUSB0 address 1: permission denied on "
		"/dev/ttyUSB0 \u2014 add the user to group dialout");
	f.exception = 2;
	check_message(-PM_EEXCEPTION, &f,
		"device 1 on /dev/ttyUSB0 address 1: module answered Modbus "
		"exception 2 (illegal data address)");
	f.from_address = 2;
	check_message(-PM_EUNIT, &f,
		"device 1 on /dev/ttyUSB0 address 1: answer came from address 2, "
		"not 1 \u2014 two modules share an address?");
	f.holder = 1234;
	check_message(-EBUSY, &f,
		"device 1 on /dev/ttyUSB0 address 1: port /dev/ttyUSB0 busy "
		"(held by pid 1234)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_ok),
		cmocka_unit_test(test_read_with_frequency),
		cmocka_unit_test(test_line_switch),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_bad_crc),
		cmocka_unit_test(test_short_answer),
		cmocka_unit_test(test_wrong_unit),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_exception),
		cmocka_unit_test(test_late_answer_never_taken),
		cmocka_unit_test(test_hang_up),
		cmocka_unit_test(test_retries_cure_a_noisy_line),
		cmocka_unit_test(test_retries_run_out),
		cmocka_unit_test(test_write_retried),
		cmocka_unit_test(test_port_lock),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_messages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
