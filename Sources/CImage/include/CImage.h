// stb image codecs (Debian libstb-dev): decode PNG/JPEG/BMP, encode PNG.
#ifndef CIMAGE_H
#define CIMAGE_H
unsigned char *cimage_load(const char *path, int *width, int *height, int *channels, int wanted);
unsigned char *cimage_load_memory(const unsigned char *bytes, int length, int *width, int *height,
                                  int *channels, int wanted);
void cimage_free(void *pixels);
int cimage_write_png(const char *path, int width, int height, int channels, const unsigned char *pixels);
const char *cimage_failure_reason(void);
#endif
