/*
 * Tiling data of AlltoAllAllGatherBatchMatMul, defined with standard C++ (the
 * "standard C++ tiling structure" flow of Ascend C): the host tiling function
 * fills it through TilingContext::GetTilingData<AagBmmTilingData>() and the
 * kernel copies it with GET_TILING_DATA_WITH_STRUCT. Mc2InitTiling must be the
 * first member: the kernel hands the struct's address to Hccl::InitV2 and the
 * other HCCL blobs by their offsetof (SetCcTilingV2).
 *
 * Self-contained: compiles on its own in the host build (CANN host headers),
 * in the device build and in the CPU model (kernel_sim/).
 */
#ifndef MOE_MC2_AAG_BMM_TILING_DATA_H
#define MOE_MC2_AAG_BMM_TILING_DATA_H

#if defined(__CCE_AICORE__) || defined(__CCE_KT_TEST__)
#include "kernel_operator.h"  // device builds: the fixed-width integer types come with the Ascend C headers
#else
#include <cstdint>
#endif
#include "kernel_tiling/kernel_tiling.h"
#include "aag_bmm_offsets.h"

struct AagBmmTilingData {
    AscendC::tiling::Mc2InitTiling mc2InitTiling;      // first member, HCCL InitV2
    AscendC::tiling::Mc2CcTiling alltoallCcTiling;     // group_ep: AlltoAllV
    AscendC::tiling::Mc2CcTiling allgatherCcTiling;    // group_tp: AllGather
    AscendC::tiling::TCubeTiling mmTiling;             // unit matmul, C in x's dtype (act None): unitM x unitN x H
    AscendC::tiling::TCubeTiling mmRingTiling;         // unit matmul, C in fp32 (the ring of the epilogue)
    aag::Geom geom;                                    // sizes + plan (op_kernel/aag_bmm_offsets.h)
    uint64_t userWorkspaceBytes;                       // aag::Workspace(geom, elemBytes).totalBytes
    uint32_t aivNum;                                   // vector cores of the launch
    uint32_t ubBytes;                                  // unified buffer bytes per vector core
    uint32_t copyUbBytes;                              // UB bytes of each half of the copy buffer (y2 / assemble)
    uint32_t reserved;
};

#endif  // MOE_MC2_AAG_BMM_TILING_DATA_H
