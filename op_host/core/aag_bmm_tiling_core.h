/*
 * Portable core (C++17, no CANN header): everything the host tiling of
 * AlltoAllAllGatherBatchMatMul decides, from a validated call and the numbers
 * of the platform. The CANN adapter (op_host/aag_bmm_tiling.cpp) reads the
 * TilingContext into Args, asks CANN for the platform numbers, calls
 * MakeKernelTiling and turns the result into the tiling struct plus the two
 * blobs only CANN can make (HCCL Mc2 tiling, Matmul TCubeTiling). The CPU
 * model of the kernel (kernel_sim/) calls the same function, so the kernel it
 * runs reads the tiling the real adapter would write, except for those blobs.
 */
#ifndef MOE_MC2_AAG_BMM_TILING_CORE_H
#define MOE_MC2_AAG_BMM_TILING_CORE_H

#include <cstdint>
#include <string>
#include <vector>

#include "aag_bmm_planner.h"
#include "aag_bmm_rules.h"

namespace moe_mc2 {

/* what the adapter reads from platform_ascendc::PlatformAscendC */
struct PlatformInfo {
    uint32_t aicNum = 0;               // cube cores (= logical AI cores of a MIX 1:2 launch)
    uint32_t aivNum = 0;               // vector cores
    uint64_t ubBytes = 0;              // Unified Buffer per vector core
    uint64_t libApiWorkspaceBytes = 0; // GetLibApiWorkSpaceSize(): the system workspace in front of ours
};

/* HcclCMDType values (HCCL high-level API: hccl_common.h) */
constexpr uint32_t kHcclCmdAllGather = 6U;
constexpr uint32_t kHcclCmdAlltoAllV = 8U;

/* one HCCL collective configuration (Mc2CcTilingConfig arguments) */
struct CcConfig {
    std::string group;
    uint32_t opType = 0;
    std::string algConfig;
};

/* the matmul of one unit: (unitM x H) * (H x unitN), C in x's dtype (direct) or fp32 (ring) */
struct CubeProblem {
    int32_t M = 0;
    int32_t N = 0;
    int32_t K = 0;
    bool transposeB = false;
    DType inType = DType::kFloat16;
    bool bias = false;         // the bias goes through the matmul (SetBias): TCubeTiling.isBias
    DType biasType = DType::kFloat16;
    uint32_t cores = 0;        // cube cores of the launch
};

struct KernelTiling {
    Plan plan;                       // tiles, geometry (plan.g) and the predicted timeline
    uint64_t tilingKey = 0;          // aag::TilingKey bits
    uint32_t blockDim = 0;           // logical AI cores: one AIC + two AIV each (KERNEL_TYPE_MIX_AIC_1_2)
    uint64_t userWorkspaceBytes = 0; // aag::Workspace(...).totalBytes
    uint64_t workspaceBytes = 0;     // + the library's system workspace
    uint32_t aivNum = 0;
    uint32_t ubBytes = 0;            // UB bytes per vector core
    uint32_t copyUbBytes = 0;        // UB bytes of each half of the copy buffer
    uint32_t ubUsedBytes = 0;        // what the kernel's TPipe allocates (the rest: activation scratch)
    CubeProblem cube;
    CcConfig alltoall;               // group_ep: AlltoAllV
    CcConfig allgather;              // group_tp: AllGather
};

/* the launch the cost model plans for */
Machine MachineOf(const PlatformInfo &p);

/* UB bytes the kernel's TPipe takes for geometry g (queues, buffers; the rest is the activation scratch) */
uint32_t KernelUbUse(const aag::Geom &g, uint32_t elemBytes, uint32_t biasBytes, uint64_t ubBytes);

/* Validates `a` (portable=false: the NPU kernel's rules), plans and fills `out`.
 * The returned RuleError is a contract rule, or rule "platform" when the
 * platform numbers cannot run the kernel. */
RuleError MakeKernelTiling(const Args &a, const PlatformInfo &p, KernelTiling &out);

/* Same, with a forced remote tile shape (eTile experts x cTile rows of x);
 * rule "tiling.shape" when the shape is not legal. Used by tests and the model. */
RuleError MakeKernelTilingWithTiles(const Args &a, const PlatformInfo &p, uint64_t eTile, uint64_t cTile,
                                    KernelTiling &out);

/* Same, with forced tile boundaries (exclusive end cells, increasing, the last = El*Rx; a tile may
 * span experts). `machine` (tests, the CPU model): the launch with forced unit sizes. */
RuleError MakeKernelTilingWithEnds(const Args &a, const PlatformInfo &p, const std::vector<uint64_t> &ends,
                                   KernelTiling &out, const Machine *machine = nullptr);

}  // namespace moe_mc2

#endif  // MOE_MC2_AAG_BMM_TILING_CORE_H
