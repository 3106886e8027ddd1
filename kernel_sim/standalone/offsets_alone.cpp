// compile check: op_kernel/aag_bmm_offsets.h is self-contained (first and only include)
#include "aag_bmm_offsets.h"
static_assert(aag::kMaxWorld > 0, "complete");
