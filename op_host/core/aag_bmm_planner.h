/*
 * Portable core (C++17, no CANN header): the tile planner of
 * AlltoAllAllGatherBatchMatMul.
 *
 * Pipeline model (one rank; every rank runs the same plan):
 *   - the communication stream is sequential: tile 0's comm (shard 1: none,
 *     shard 0: the tp AllGather of the own expert block), then for each remote
 *     tile k: AlltoAll(V) over ep followed by AllGather over tp;
 *   - the compute stream runs the local block first, then the remote tiles:
 *       comp_end[0] = comm_end[0] + comp_0
 *       comp_end[k] = max(comp_end[k-1], comm_end[k]) + comp_k
 *   - makespan = comp_end[last]; the no-overlap reference is sum(comm) + sum(comp).
 * The planner enumerates tile shapes (eTile experts x full rows, or one expert
 * x cTile rows), evaluates the model and keeps the smallest makespan.
 */
#ifndef MOE_MC2_AAG_BMM_PLANNER_H
#define MOE_MC2_AAG_BMM_PLANNER_H

#include <cstdint>
#include <vector>

#include "aag_bmm_rules.h"
#include "../../op_kernel/aag_bmm_offsets.h"

namespace moe_mc2 {

/* Documented constants of one Atlas A3 rank (one Ascend 910C die).
 *  - cubePeakFlops: 752 TFLOPS dense FP16/BF16 per 910C package of two dies
 *    (Huawei CloudMatrix384 paper, arXiv:2506.12708, section 3; consistent with
 *    Huawei's "~300 PFLOPS BF16 for 384 910C" Atlas 900 A3 SuperPoD figure),
 *    so 376 TFLOPS per die / rank.
 *  - linkBytesPerSec: 196 GB/s unidirectional Unified-Bus (HCCS) bandwidth per
 *    die (392 GB/s per 910C package, same paper), used by both groups because
 *    ep and tp stay inside one supernode.
 *  - hbmBytesPerSec: 1.6 TB/s HBM per die (3.2 TB/s per package, same paper).
 *  - the efficiencies and per-op overheads are modelling assumptions (AICPU
 *    driven HCCL task launch and Matmul API setup), not measured numbers. */
struct CostModel {
    double cubePeakFlops = 376e12;
    double cubeEfficiency = 0.70;
    double linkBytesPerSec = 196e9;
    double linkEfficiency = 0.80;
    double hbmBytesPerSec = 1.6e12;
    double hbmEfficiency = 0.70;
    double commOverheadSec = 15e-6;    // per collective (AlltoAllV or AllGather)
    double matmulOverheadSec = 2e-6;   // per matmul run
    double tileOverheadSec = 3e-6;     // per tile (core-wide sync, assemble launch)
};

/* Memory-hierarchy constants shared by the cost model and the CPU model's L2 (kernel_sim). */
struct MemoryConstants {
    /* L2 capacity of one rank (one die), bytes: the 192 MB the Ascend C guide's L2-cache tiling example
     * states for its AI processor (asc-devkit docs/zh/guide, "L2 Cache切分": "L2 Cache大小为192MB, ...
     * GM的带宽约为1.6TB/s"); modelled as 192 MiB. */
    uint64_t l2Bytes = 192ULL << 20;
    /* L2 line, bytes: an assumption (the documentation does not state it). */
    uint64_t l2LineBytes = 512;
};

struct TileCost {
    double comm = 0;      // seconds on the comm stream (a2a + ag)
    double comp = 0;      // seconds on the compute stream (assemble + matmul + epilogue)
    double commEnd = 0;
    double compEnd = 0;
};

struct Plan {
    aag::Geom g{};
    double makespan = 0;
    double noOverlap = 0;
    std::vector<TileCost> tiles;  // index 0 = local block
    uint32_t candidates = 0;      // shapes evaluated
};

/* Geometry for a valid call and a chosen tile shape (eTile experts x cTile rows). */
aag::Geom MakeGeom(const Args &a, uint64_t eTile, uint64_t cTile);

/* true when (eTile, cTile) is a legal remote tiling for g's sizes */
bool TileShapeLegal(const Dims &d, uint64_t eTile, uint64_t cTile);

Plan Evaluate(const aag::Geom &g, uint32_t elemBytes, const CostModel &cm = CostModel{});

/* The planner: requires Validate(a).ok(). */
Plan PlanTiles(const Args &a, const CostModel &cm = CostModel{});

/* user workspace bytes of a plan (the CANN adapter adds the library's own) */
uint64_t WorkspaceBytes(const aag::Geom &g, uint32_t elemBytes);

uint64_t TilingKeyOf(const Args &a);

}  // namespace moe_mc2

#endif  // MOE_MC2_AAG_BMM_PLANNER_H
