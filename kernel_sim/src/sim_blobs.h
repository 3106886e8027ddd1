/*
 * kernel_sim internal: the model's own content of the opaque HCCL tiling blobs
 * (Mc2InitTiling 64 bytes, Mc2CcTiling 512 bytes). CANN's host library writes
 * its own layout into them; the model's runner writes this one and the model's
 * HCCL client reads it back, so a kernel that hands the wrong blob to
 * SetCcTilingV2 is caught.
 */
#ifndef MOE_MC2_KERNEL_SIM_BLOBS_H
#define MOE_MC2_KERNEL_SIM_BLOBS_H

#include <cstdint>

namespace aag_sim {

constexpr uint32_t kInitMagic = 0x4E494D53u;  // "SMIN"
constexpr uint32_t kCcMagic = 0x43434D53u;    // "SMCC"

struct SimMc2Init {
    uint32_t magic = kInitMagic;
    uint32_t version = 1;
    uint8_t pad[56] = {};
};
static_assert(sizeof(SimMc2Init) == 64, "Mc2InitTiling is 64 bytes");

struct SimMc2Cc {
    uint32_t magic = kCcMagic;
    uint32_t opType = 0;
    char groupName[128] = {};
    char algConfig[128] = {};
    uint8_t pad[248] = {};
};
static_assert(sizeof(SimMc2Cc) == 512, "Mc2CcTiling is 512 bytes");

}  // namespace aag_sim

#endif  // MOE_MC2_KERNEL_SIM_BLOBS_H
