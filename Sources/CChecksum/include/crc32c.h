#ifndef IGPT_CRC32C_H
#define IGPT_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli) of n bytes, continuing from crc (0 to start). Uses the SSE4.2 crc32
/// instruction when the CPU has it (about 6x zlib's CRC-32 here), a table otherwise; both give
/// the same value.
uint32_t igpt_crc32c(uint32_t crc, const void *data, size_t n);

/// The same by table only (what CPUs without SSE4.2 run); for tests.
uint32_t igpt_crc32c_portable(uint32_t crc, const void *data, size_t n);

#endif
