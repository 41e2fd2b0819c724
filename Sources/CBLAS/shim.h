#ifndef ATTNAX_CBLAS_SHIM_H
#define ATTNAX_CBLAS_SHIM_H
#include <cblas.h>
/* OpenBLAS extensions (declared in cblas.h of OpenBLAS builds). */
#endif
