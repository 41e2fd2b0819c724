/* Allocator policy for long-running forward loops (glibc only). */
#include "attnax_kernels.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

int ax_keep_freed_memory(void) {
#if defined(__GLIBC__)
  /* 32 MiB is glibc's largest mmap threshold: smaller blocks come from the heap and, with trimming
   * off, freed ones stay mapped for the next forward instead of being faulted in again. */
  int ok = mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ok &= mallopt(M_TRIM_THRESHOLD, 0x7fffffff);
  ok &= mallopt(M_TOP_PAD, 16 << 20);
  return ok;
#else
  return 0;
#endif
}
