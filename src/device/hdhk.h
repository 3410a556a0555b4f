/* hdhk.h — what the HDHK driver tells beyond struct pm_driver: the codes of
 * register 3 (line settings), shared with hdhk-sim, which plays the module. */
#ifndef PM_DEVICE_HDHK_H
#define PM_DEVICE_HDHK_H

/* Register 3, high byte, low nibble: the baud rate code of 'baud' (9600 is
 * code 0, as the factory setting 0x0001 says), or -EINVAL. */
int pm_hdhk_baud_code(int baud);

/* The baud rate of code 'code' (0..8), or -EINVAL. The framing code (high
 * nibble) is the index into pm_line_framings (device/line.h). */
int pm_hdhk_baud_from_code(int code);

#endif
