/* crc32.h — CRC-32 (IEEE 802.3, as zlib's crc32()), for files that must
 * tell a damaged copy from a good one without zlib. */
#ifndef PM_UTIL_CRC32_H
#define PM_UTIL_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues 'crc' (0 to start) over 'len' bytes of 'data'. */
uint32_t pm_crc32(uint32_t crc, const void *data, size_t len);

#endif
