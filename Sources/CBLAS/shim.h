// OpenBLAS's own cblas.h (pkg-config `openblas` puts its directory first), which also declares
// openblas_get_corename / openblas_set_num_threads.
#include <cblas.h>
