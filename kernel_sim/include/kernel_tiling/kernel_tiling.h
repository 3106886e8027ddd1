/*
 * kernel_sim/include/kernel_tiling/kernel_tiling.h — the CPU model's own
 * definitions of the tiling structures a kernel reads (same names, same
 * namespace, same sizes for the HCCL blobs as CANN's generated header). The
 * model fills them with its own content (kernel_sim/src/host_blobs.cpp); the
 * kernel only passes the HCCL blobs on and reads the TCubeTiling fields below.
 * Written for this project; not CANN code.
 */
#ifndef MOE_MC2_KERNEL_SIM_KERNEL_TILING_H
#define MOE_MC2_KERNEL_SIM_KERNEL_TILING_H

#include <cstdint>

namespace AscendC {
namespace tiling {

/* HCCL: the communicator init blob and one blob per collective configuration
 * (opaque to kernels; 64 and 512 bytes like the CANN structures) */
struct Mc2InitTiling {
    uint8_t reserved[64] = {};
};
struct Mc2CcTiling {
    uint8_t reserved[512] = {};
};

/* Matmul tiling of the high-level API: the shape fields and the core split */
struct TCubeTiling {
    int32_t usedCoreNum = 0;
    int32_t M = 0;
    int32_t N = 0;
    int32_t Ka = 0;
    int32_t Kb = 0;
    int32_t singleCoreM = 0;
    int32_t singleCoreN = 0;
    int32_t singleCoreK = 0;
    int32_t baseM = 0;
    int32_t baseN = 0;
    int32_t baseK = 0;
    int32_t depthA1 = 0;
    int32_t depthB1 = 0;
    int32_t stepM = 0;
    int32_t stepN = 0;
    int32_t isBias = 0;
    int32_t transLength = 0;
    int32_t iterateOrder = 0;
    int32_t shareMode = 0;
    int32_t shareL1Size = 0;
    int32_t shareL0CSize = 0;
    int32_t shareUbSize = 0;
    int32_t stepKa = 0;
    int32_t stepKb = 0;
    int32_t dbL0A = 0;
    int32_t dbL0B = 0;
    int32_t dbL0C = 0;
    int32_t reserved = 0;
};

}  // namespace tiling
}  // namespace AscendC

using AscendC::tiling::Mc2CcTiling;
using AscendC::tiling::Mc2InitTiling;
using AscendC::tiling::TCubeTiling;

#endif  // MOE_MC2_KERNEL_SIM_KERNEL_TILING_H
