#include "crc32c.h"

// Message checksums: every gradient and parameter message (megabytes, several per step) is
// checksummed on both ends, and zlib's table CRC-32 ran at ~1.4 GB/s here, several ms per step.

static uint32_t table[256];
static int table_ready = 0;

static void build_table(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  table_ready = 1;
}

static uint32_t crc32c_table(uint32_t crc, const uint8_t *p, size_t n) {
  if (!table_ready) build_table();
  uint32_t c = ~crc;
  while (n--) c = table[(c ^ *p++) & 0xFF] ^ (c >> 8);
  return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p, size_t n) {
  uint64_t c = ~crc;
  while (n > 0 && ((uintptr_t)p & 7) != 0) {
    c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    n--;
  }
  while (n >= 8) {
    uint64_t v;
    __builtin_memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    n -= 8;
  }
  while (n--) c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
  return ~(uint32_t)c;
}
#endif

uint32_t igpt_crc32c_portable(uint32_t crc, const void *data, size_t n) {
  return crc32c_table(crc, (const uint8_t *)data, n);
}

uint32_t igpt_crc32c(uint32_t crc, const void *data, size_t n) {
  const uint8_t *p = (const uint8_t *)data;
#if defined(__x86_64__)
  if (__builtin_cpu_supports("sse4.2")) return crc32c_sse42(crc, p, n);
#endif
  return crc32c_table(crc, p, n);
}
