/*
 * Portable core (C++17, no CANN header): the cost model and the tile planner of
 * AlltoAllAllGatherBatchMatMul — the one source of truth for the host tiling
 * (op_host/aag_bmm_tiling.cpp through aag_bmm_tiling_core.*), the CPU model's
 * L2 (kernel_sim/) and `python -m moe_mc2 plan` (through kernel_sim's C ABI).
 *
 * What it predicts, per rank, for a plan (docs/op_alltoall_allgather_bmm.md,
 * "Cost model"):
 *   - every pass of the kernel (aag_bmm_kernel.h): the matmul units, the
 *     vector epilogue, the y2 copy / shard-0 assemble, with their bytes at two
 *     levels: GM (what the API calls move; served by L2 or HBM) and HBM (after
 *     the L2: compulsory misses, re-reads whose reuse distance exceeds the L2,
 *     write-backs), data and workspace apart; cube FLOPs (16-aligned, as the
 *     cube computes them), vector element-operations per activation, SyncAll,
 *     waits and collectives;
 *   - a timeline per tile: the ep stream (AlltoAllV) and the tp stream
 *     (AllGather, after its tile's AlltoAllV: InterHcclGroupSync), the compute
 *     stream in the kernel's order of steps (aag::NextStep: own rows at once,
 *     peer rows after the tile's AlltoAllV, far rows after its AllGather),
 *     each part the max of its cube, vector, HBM and L2 times (the parts
 *     overlap inside a tile);
 *   - the bound max(communication alone, computation alone) and the makespan.
 * The same constants price CANN's reference schedule (hicann/ops-transformer,
 * mc2/allto_all_all_gather_batch_mat_mul: local block first, tiles along E,
 * at most 5 tiles, matmul output in x's dtype then a vector pass) and this
 * project's issue-9 kernel (assemble, run by run, fp32 round trip, SyncAll).
 * Predictions of a model with stated constants, not NPU measurements.
 */
#ifndef MOE_MC2_AAG_BMM_PLANNER_H
#define MOE_MC2_AAG_BMM_PLANNER_H

#include <cstdint>
#include <string>
#include <vector>

#include "aag_bmm_rules.h"
#include "../../op_kernel/aag_bmm_offsets.h"

namespace moe_mc2 {

/* Memory-hierarchy constants shared by the cost model and the CPU model's L2 (kernel_sim). */
struct MemoryConstants {
    /* L2 capacity of one rank (one die), bytes: the 192 MB the Ascend C guide's L2-cache tiling example
     * states for its AI processor (asc-devkit docs/zh/guide, "L2 Cache切分": "L2 Cache大小为192MB, ...
     * GM的带宽约为1.6TB/s"); modelled as 192 MiB. */
    uint64_t l2Bytes = 192ULL << 20;
    /* L2 line, bytes: an assumption (the documentation does not state it). */
    uint64_t l2LineBytes = 512;
};

/* Every constant of the cost model, in one place, with its provenance. */
struct CostConstants {
    /* cube peak, FLOP/s, fp16 / bf16 dense, one rank: issue 10's 910B-class figure (about 320 TFLOP/s);
     * used as is for every schedule and for the bound (no efficiency factor). */
    double cubeFlopsPerSec = 320e12;
    /* HBM bandwidth of one rank: 1.6 TB/s (issue 10; the Ascend C guide's L2 example: "GM ~1.6TB/s"). */
    double hbmBytesPerSec = 1.6e12;
    /* L2 bandwidth, read/write mixed: ~7 TB/s (same Ascend C guide page). Every GM-level byte costs it. */
    double l2BytesPerSec = 7.0e12;
    /* one HCCS link, one direction: 56 GB/s (issue 10's 910B-class figure). Assumption: the ep x tp
     * world is one full-mesh server, every peer has its own link, a rank sends to all peers at once. */
    double linkBytesPerSec = 56e9;
    /* vector core: fp32 element-operations per second. Assumption: 64 fp32 lanes (256-byte vector
     * registers) at 1.8 GHz, one instruction per cycle; every vector instruction of the epilogue
     * counts once per element (Exp and Div as much as Add). */
    double vecElemOpsPerSec = 64.0 * 1.8e9;
    /* latency of one collective (AICPU server scheduling, link setup): assumption. */
    double collectiveLatencySec = 15e-6;
    /* SyncAll across the vector cores: assumption. */
    double syncAllSec = 2e-6;
    /* a vector core learning that a collective finished (Hccl::Wait): assumption. */
    double waitSec = 2e-6;
    /* per matmul call on the cube not hidden by the next call (first L1/L0 loads, last fixpipe
     * drain): assumption. The issue-9 kernel's synchronous calls add the AIV->AIC round trip: */
    double matmulCallSec = 0.3e-6;
    double matmulSyncCallSec = 2e-6;
    /* bytes one collective may move: HCCL's default window, HCCL_BUFFSIZE = 200 MB: assumption that an
     * AICPU-server collective must fit it. The planner keeps each tile's AllGather receive under it. */
    uint64_t hcclMaxBytesPerCall = 200ULL << 20;
    /* the ep and tp servers run their queues at the same time (open question 5 of docs/kernel_model.md:
     * not documented); CANN's reference schedule orders its AlltoAllV after the previous AllGather
     * itself (InterHcclGroupSync), so there it changes nothing. */
    bool groupsOverlap = true;
    MemoryConstants mem;
};

/* the numbers of the launch the plan is for */
struct Machine {
    uint32_t aicNum = 24;   // cube cores (block dim of MIX 1:2)
    uint32_t aivNum = 48;   // vector cores (2 per cube core)
    uint64_t ubBytes = 192 * 1024;
    /* tests and the CPU model only: force the unit / epilogue chunk (0: the planner's) */
    uint32_t unitM = 0, unitN = 0, epiRows = 0;
    int32_t ownAhead = -1;   // -1: the planner's (MakeGeom alone: 0)
    int32_t peerAhead = -1;  // -1: the planner's (MakeGeom alone: 0)
    int32_t splitPeer = -1;  // 0 / 1: force the peer rows into the far phase / into their own; -1: the planner's
                             // (MakeGeom alone: 1 when peerAhead >= 0)
};

/* time of one part of a tile: the parts overlap inside it, so the part takes the longest */
struct PartTime {
    double cube = 0;    // the busiest cube core: its units' FLOPs at peak + call overheads
    double vector = 0;  // the busiest vector core: its epilogue element-operations
    double hbm = 0;     // the part's HBM bytes at HBM bandwidth
    double l2 = 0;      // the part's GM-level bytes at L2 bandwidth
    double fixed = 0;   // waits, SyncAll
    double Time() const;
};

/* bytes of one part or of the whole call, per rank */
struct Bytes {
    uint64_t gmData = 0;        // GM level, tensors and the collectives' receive regions
    uint64_t gmWorkspace = 0;   // GM level, scratch workspace (ring, asm slot, fp32 scratch)
    uint64_t hbmDataRead = 0;   // HBM level (after the L2)
    uint64_t hbmDataWrite = 0;
    uint64_t hbmWorkspace = 0;  // HBM level, scratch workspace (the flush of its dirty lines)
    uint64_t commRead = 0;      // bytes the collectives read / wrote in this rank's memory
    uint64_t commWrite = 0;
    void Add(const Bytes &o);
    uint64_t HbmData() const { return hbmDataRead + hbmDataWrite; }
};

struct TileTimeline {
    uint64_t cellBegin = 0, cellEnd = 0;
    double a2aStart = 0, a2aEnd = 0;  // ep stream
    double agStart = 0, agEnd = 0;    // tp stream
    double ownStart = 0, ownEnd = 0;    // shard 1: the own rows (shard 0: the assemble)
    double peerStart = 0, peerEnd = 0;  // shard 1: the peer rows (from the AlltoAllV receive buffer)
    double farStart = 0, farEnd = 0;    // the far rows (from the AllGather receive buffer / assembled)
    PartTime own, peer, far;
    Bytes bytes;
    double cubeFlops = 0;
};

/* one schedule's prediction (the chosen plan, CANN's reference, the issue-9 kernel) */
struct Prediction {
    std::string schedule;
    std::vector<TileTimeline> tiles;
    double makespan = 0;
    double bound = 0;         // max(commIdeal, computeIdeal): the same for every schedule of a call
    double commIdeal = 0;     // the exchange alone, one collective of each kind
    double computeIdeal = 0;  // the matmul alone: exact FLOPs at peak, the HBM floor, the vector work
    double commTotal = 0;     // this schedule's collectives alone (its own chaining and latencies)
    double computeTotal = 0;  // this schedule's compute parts back to back
    Bytes bytes;
    uint64_t hbmFloor = 0;    // gathered A once + weight once + y1 once
    double cubeFlops = 0;     // as the cube computes them (16-aligned)
    double cubeFlopsExact = 0;  // 2 * rows * H * N
    uint64_t matmulCalls = 0;
    uint64_t vectorElemOps = 0;
    uint64_t syncAlls = 0;
    uint64_t waits = 0;
    uint64_t collectives = 0;
    std::string tiling;       // human-readable tile description
};

struct Plan {
    aag::Geom g{};
    Prediction pred;
    uint32_t candidates = 0;  // tilings evaluated
};

/* ------------------------------------------------------------------ plans */

/* Geometry of a valid call for the given tile boundaries (exclusive end cells, last == El*Rx). */
aag::Geom MakeGeom(const Args &a, const std::vector<uint64_t> &tileEnds, const Machine &m);

/* Tile boundaries of the uniform shape eTile experts x all rows, or one expert x cTile rows;
 * empty when illegal (cTile < Rx needs eTile == 1; at most aag::kMaxTiles tiles). */
std::vector<uint64_t> UniformTiles(const Dims &d, uint64_t eTile, uint64_t cTile);
bool TileShapeLegal(const Dims &d, uint64_t eTile, uint64_t cTile);

/* The cost model of this project's kernel for geometry g. exactWorkspace = false (the planner's scoring):
 * the ring's flushed lines from a closed form instead of the kernel's unit order. */
Prediction Evaluate(const Args &a, const aag::Geom &g, const Machine &m, const CostConstants &cc = CostConstants{},
                    bool exactWorkspace = true);

/* The planner: every candidate tiling (uniform, short first tile, short last tile, along experts),
 * the smallest predicted makespan; ties: fewer HBM bytes, then fewer tiles. Requires Validate(a).ok(). */
Plan PlanTiles(const Args &a, const Machine &m, const CostConstants &cc = CostConstants{});

/* CANN's reference schedule (best of its legal tile counts under these constants) and this project's
 * issue-9 kernel (eTile x cTile; 0, 0: the best legal shape) priced by the same constants. */
Prediction EvaluateReference(const Args &a, const Machine &m, const CostConstants &cc = CostConstants{});
Prediction EvaluateLegacy(const Args &a, const Machine &m, uint64_t eTile = 0, uint64_t cTile = 0,
                          const CostConstants &cc = CostConstants{});

/* the chosen unit / epilogue sizes (also what MakeGeom puts into the geometry) */
uint32_t EpilogueRows(const aag::Geom &g, uint32_t elemBytes, uint32_t biasBytes, uint64_t ubBytes);
uint32_t CopyUbBytes(uint64_t ubBytes);       // each half of the copy buffer
uint32_t KernelUbBufferBytes(uint64_t ubBytes);  // what the kernel's TPipe may take (the rest: activation scratch)

/* user workspace bytes of a plan (the CANN adapter adds the library's own) */
uint64_t WorkspaceBytes(const aag::Geom &g, uint32_t elemBytes);

uint64_t TilingKeyOf(const Args &a);

/* vector element-operations per output element of the epilogue (ring path) */
uint32_t EpilogueOpsPerElem(int64_t act, bool y3, bool vecBias);

}  // namespace moe_mc2

#endif  // MOE_MC2_AAG_BMM_PLANNER_H
