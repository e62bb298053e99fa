#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
// Images igpt reads are small (resized to 14..256 per side): a header claiming more than
// 8192 per side is refused before stb allocates for it (found by make fuzz: a PNG header's
// size alone made stb ask for gigabytes).
#define STBI_MAX_DIMENSIONS 8192
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include "CImage.h"

// Files larger than this are refused before reading: the largest image stb accepts here
// (8192 x 8192 x 4 bytes) is 256 MiB uncompressed.
#define CIMAGE_MAX_FILE (256L << 20)

static const char *cimage_reason = NULL;

// stb trusts a PNG chunk's declared length and grows its buffer to it before reading the
// chunk (found by make fuzz: an 80-byte file declaring a 1 GB IDAT made it allocate 2 GiB).
// Every chunk must fit in the bytes that are really there, which bounds what stb allocates
// by the file's size.
static int cimage_png_chunks_fit(const unsigned char *b, long n) {
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
  if (n < 8 || memcmp(b, sig, 8) != 0) return 1;  // not a PNG: nothing to check here
  long at = 8;
  while (at + 8 <= n) {
    unsigned long length = ((unsigned long)b[at] << 24) | ((unsigned long)b[at + 1] << 16) |
                           ((unsigned long)b[at + 2] << 8) | (unsigned long)b[at + 3];
    if (length > (unsigned long)(n - at - 8)) return 0;
    at += 8 + (long)length + 4;  // length, type, data, CRC
  }
  return 1;
}

unsigned char *cimage_load_memory(const unsigned char *b, int n, int *w, int *h, int *c, int wanted) {
  cimage_reason = NULL;
  if (!cimage_png_chunks_fit(b, n)) { cimage_reason = "PNG chunk longer than the file"; return NULL; }
  return stbi_load_from_memory(b, n, w, h, c, wanted);
}

unsigned char *cimage_load(const char *path, int *w, int *h, int *c, int wanted) {
  cimage_reason = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) { cimage_reason = "cannot open file"; return NULL; }
  long n = -1;
  if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
  if (n < 0 || fseek(f, 0, SEEK_SET) != 0) { fclose(f); cimage_reason = "cannot read file"; return NULL; }
  if (n > CIMAGE_MAX_FILE) { fclose(f); cimage_reason = "file larger than 256 MiB"; return NULL; }
  unsigned char *bytes = malloc(n > 0 ? (size_t)n : 1);
  if (!bytes) { fclose(f); cimage_reason = "out of memory"; return NULL; }
  size_t got = fread(bytes, 1, (size_t)n, f);
  fclose(f);
  unsigned char *pixels = NULL;
  if (got != (size_t)n) cimage_reason = "cannot read file";
  else pixels = cimage_load_memory(bytes, (int)n, w, h, c, wanted);
  free(bytes);
  return pixels;
}

void cimage_free(void *p) { stbi_image_free(p); }
int cimage_write_png(const char *path, int w, int h, int c, const unsigned char *p) {
  return stbi_write_png(path, w, h, c, p, w * c);
}
const char *cimage_failure_reason(void) { return cimage_reason ? cimage_reason : stbi_failure_reason(); }
