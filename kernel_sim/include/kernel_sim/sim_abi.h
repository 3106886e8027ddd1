/*
 * kernel_sim: the C ABI of the model's shared library (libaag_kernel_sim.so),
 * used by python/moe_mc2/kernel_sim.py through ctypes. Every field is 64 bits
 * wide so the layout is the same on every ABI.
 */
#ifndef MOE_MC2_KERNEL_SIM_ABI_H
#define MOE_MC2_KERNEL_SIM_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct AagSimCall {
    /* the call, in the contract's vocabulary (docs/contract.md) */
    int64_t ep, tp;
    int64_t shard;            /* x_shard_type */
    int64_t act;              /* act_type 0..4 */
    int64_t E, C, H, M;       /* C: rows per source ep rank of y; H: full hidden; M: full output (M/tp per rank) */
    int64_t dtype;            /* x / weight / y: 0 float16, 1 bfloat16 */
    int64_t bias;             /* 0 none, 2: (E/ep, M/tp), 3: (E/ep, 1, M/tp) */
    int64_t biasDtype;        /* 0 float16, 1 bfloat16, 2 float32 */
    int64_t transposeWeight;  /* weight stored (E/ep, M/tp, H) */
    int64_t y2Flag, y3Flag;
    /* the simulated machine */
    int64_t aicPerRank;       /* cube cores per rank (vector cores: twice as many) */
    int64_t ubBytes;          /* Unified Buffer per vector core */
    int64_t sysWorkspaceBytes;
    int64_t eTile, cTile;     /* forced remote tile shape; 0: the planner's */
    int64_t unitM, unitN;     /* force the matmul unit (0: the planner's) */
    int64_t epiRows;          /* force fewer epilogue rows per UB chunk (0: the planner's) */
    int64_t nTileEnds;        /* > 0: force these tile boundaries (exclusive end cells; the last = El*Rx) */
    int64_t tileEnds[16];
    int64_t legacyETile, legacyCTile;  /* aag_sim_cost: the issue-9 kernel's tile shape (0: its best) */
    int64_t ownAhead;         /* shard 1: 0 the planner's own-rows lookahead; n > 0 forces n - 1 tiles ahead */
    int64_t peerAhead;        /* shard 1: 0 the planner's peer rows; 1 forces them into the far phase (after the
                                 AllGather); n > 1 forces a peer phase n - 2 tiles ahead */
    double collectiveLatencyUs;  /* aag_sim_cost what-if: latency of one collective (0: the constant) */
    int64_t serialGroups;     /* aag_sim_cost what-if: 1 = the ep and tp servers never run at the same time */
    uint64_t seed;            /* collective landing times */
    int64_t maxDelay;         /* landing delay bound, in API calls of the world */
    int64_t countOnly;        /* 1: no arithmetic, no data (counts and checks only) */
    int64_t raceCheck;        /* 1: happens-before check of every GM byte */
    double watchdogSeconds;   /* no progress for this long: report positions and stop */
    int64_t l2Bytes;          /* L2 capacity per rank for the HBM counters; 0: moe_mc2::MemoryConstants */
    int64_t l2LineBytes;      /* L2 line; 0: moe_mc2::MemoryConstants */
    const char *kernel;       /* "aag" (the project's kernel) or a probe name (negative controls) */
    /* per world rank r = t * ep + i (count ep * tp); host memory, see kernel_sim.py */
    void *const *x;
    void *const *weight;      /* stored layout */
    void *const *biasData;
    void *const *y1;
    void *const *y2;          /* may be NULL when not produced */
    void *const *y3;
} AagSimCall;

/* host side only (rules, shapes, tiling): JSON into out; 0 valid, 2 invalid call */
int aag_sim_plan(const AagSimCall *call, char *out, size_t outLen);
/* the cost model (op_host/core/aag_bmm_planner.*): the chosen plan, the same model for one tile, CANN's
 * reference schedule and the issue-9 kernel, with every constant; JSON into out; 0 valid, 2 invalid */
int aag_sim_cost(const AagSimCall *call, char *out, size_t outLen);
/* one call of the kernel on every rank: JSON report into out; 0 ok, 1 model error, 2 invalid call */
int aag_sim_run(const AagSimCall *call, char *out, size_t outLen);

#ifdef __cplusplus
}
#endif

#endif  // MOE_MC2_KERNEL_SIM_ABI_H
