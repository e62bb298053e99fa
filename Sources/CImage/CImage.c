#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
// Images igpt reads are small (resized to 14..256 per side): a header claiming more than
// 8192 per side is refused before stb allocates for it (found by make fuzz: a PNG header's
// size alone made stb ask for gigabytes).
#define STBI_MAX_DIMENSIONS 8192
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include "CImage.h"

unsigned char *cimage_load(const char *path, int *w, int *h, int *c, int wanted) {
  return stbi_load(path, w, h, c, wanted);
}
unsigned char *cimage_load_memory(const unsigned char *b, int n, int *w, int *h, int *c, int wanted) {
  return stbi_load_from_memory(b, n, w, h, c, wanted);
}
void cimage_free(void *p) { stbi_image_free(p); }
int cimage_write_png(const char *path, int w, int h, int c, const unsigned char *p) {
  return stbi_write_png(path, w, h, c, p, w * c);
}
const char *cimage_failure_reason(void) { return stbi_failure_reason(); }
