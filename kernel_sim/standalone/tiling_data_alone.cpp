// compile check: op_kernel/aag_bmm_tiling_data.h is self-contained (first and only include)
#include "aag_bmm_tiling_data.h"
static_assert(sizeof(AagBmmTilingData) > 0, "complete");
