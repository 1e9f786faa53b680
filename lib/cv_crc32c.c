/*  cv_crc32c — see cv_crc32c.h.

    Reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF.
    The portable path processes 8 bytes per step with eight 256-entry tables
    (table k gives the CRC of a byte followed by k zero bytes), so the eight
    lookups of a step are independent. Tables are built once, on first use,
    under pthread_once; the same once-call picks the hardware path. */
#include "cv_crc32c.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define POLY 0x82F63B78u

static uint32_t s_table[8][256];
static bool s_have_hw;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void s_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        s_table[0][n] = c;
    }
    for (int k = 1; k < 8; k++)
        for (int n = 0; n < 256; n++)
            s_table[k][n] = (s_table[k - 1][n] >> 8) ^ s_table[0][s_table[k - 1][n] & 0xff];
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    s_have_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t s_le32(const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static uint32_t s_portable(uint32_t crc, const unsigned char *p, size_t len)
{
    uint32_t c = ~crc;
    while (len >= 8) {
        uint32_t lo = c ^ s_le32(p);
        uint32_t hi = s_le32(p + 4);
        c = s_table[7][lo & 0xff] ^ s_table[6][(lo >> 8) & 0xff]
          ^ s_table[5][(lo >> 16) & 0xff] ^ s_table[4][lo >> 24]
          ^ s_table[3][hi & 0xff] ^ s_table[2][(hi >> 8) & 0xff]
          ^ s_table[1][(hi >> 16) & 0xff] ^ s_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        c = (c >> 8) ^ s_table[0][(c ^ *p++) & 0xff];
    return ~c;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2")))
static uint32_t s_hardware(uint32_t crc, const unsigned char *p, size_t len)
{
    uint64_t c = (uint32_t) ~crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);              /* x86 is little-endian, as the CRC wants */
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t) c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#endif

uint32_t cv_crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&s_once, s_init);
#if defined(__x86_64__) && defined(__GNUC__)
    if (s_have_hw)
        return s_hardware(crc, data, len);
#endif
    return s_portable(crc, data, len);
}

uint32_t cv_crc32c_portable(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&s_once, s_init);
    return s_portable(crc, data, len);
}
