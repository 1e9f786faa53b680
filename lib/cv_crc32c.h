/*  cv_crc32c — CRC-32C (Castagnoli), the checksum of the spool's records.

    CRC-32C detects torn and flipped bytes far better than a sum and is the
    checksum of iSCSI, ext4 and SCTP. Uses the SSE4.2 crc32 instruction when
    the CPU has it (x86-64), else a portable slice-by-8 table. Both give the
    same values; the portable one is exported so tests can compare them.

    Chainable: cv_crc32c(cv_crc32c(0, a, n), b, m) == crc of a then b.
        cv_crc32c(0, "123456789", 9) == 0xE3069283 */
#ifndef CV_CRC32C_H
#define CV_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* crc is 0 to start, or the result over the preceding bytes. */
uint32_t cv_crc32c(uint32_t crc, const void *data, size_t len);

/* Same result, without the hardware instruction. */
uint32_t cv_crc32c_portable(uint32_t crc, const void *data, size_t len);

#endif
