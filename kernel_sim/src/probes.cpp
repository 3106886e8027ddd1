/*
 * kernel_sim negative controls: small, deliberately broken kernels written
 * against the same model headers as the real one. Each must be reported by
 * the model (tests/test_kernel_sim_model.py) - proof that the checks the real
 * kernel passes can fail. They run with the real kernel's tiling struct.
 */
#include <cstring>
#include <string>
#include <type_traits>

#include "kernel_operator.h"
#include "lib/hccl/hccl.h"
#include "lib/matmul_intf.h"

#include "aag_bmm_offsets.h"
#include "aag_bmm_tiling_data.h"

using namespace AscendC;

using KernelFn = void (*)(uint8_t *, uint8_t *, uint8_t *, uint8_t *, uint8_t *, uint8_t *, uint8_t *, uint8_t *);

namespace {

#define PROBE_ENTRY(name) \
    void name(GM_ADDR x, GM_ADDR w, GM_ADDR bias, GM_ADDR y1, GM_ADDR y2, GM_ADDR y3, GM_ADDR ws, GM_ADDR tiling)
#define PROBE_UNUSED (void)x, (void)w, (void)bias, (void)y1, (void)y2, (void)y3, (void)ws

/* a tp AllGather of the first 256 x elements into the user workspace, read
 * back before (or without) its Wait */
PROBE_ENTRY(ProbeReadBeforeWait)
{
    PROBE_UNUSED;
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    GET_TILING_DATA_WITH_STRUCT(AagBmmTilingData, td, tiling);
    if ASCEND_IS_AIC {
        return;
    }
    TPipe pipe;
    TBuf<TPosition::VECCALC> buf;
    pipe.InitBuffer(buf, 4096);
    Hccl<HCCL_SERVER_TYPE_AICPU> tp;
    tp.InitV2(GetHcclContext<1>(), &td);
    tp.SetCcTilingV2(offsetof(AagBmmTilingData, allgatherCcTiling));
    GM_ADDR dst = GetUserWorkspace(ws);
    HcclHandle h = tp.AllGather<true>(x, dst, 16U, HcclDataType::HCCL_DATA_TYPE_FP16, 0U);
    GlobalTensor<half> got;
    got.SetGlobalBuffer(reinterpret_cast<__gm__ half *>(dst));
    LocalTensor<half> l = buf.Get<half>();
    DataCopy(l, got, 16U);  // BUG: the AllGather's data is read before tp.Wait(h)
    PipeBarrier<PIPE_ALL>();
    tp.Wait(h);
    SyncAll<true>();
    tp.Finalize();
}

PROBE_ENTRY(ProbeUnalignedDataCopy)
{
    PROBE_UNUSED;
    (void)tiling;
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    if ASCEND_IS_AIC {
        return;
    }
    TPipe pipe;
    TBuf<TPosition::VECCALC> buf;
    pipe.InitBuffer(buf, 1024);
    GlobalTensor<half> xg;
    xg.SetGlobalBuffer(reinterpret_cast<__gm__ half *>(x));
    LocalTensor<half> l = buf.Get<half>();
    DataCopy(l, xg, 7U);  // BUG: 14 bytes; DataCopy moves whole 32-byte blocks only (DataCopyPad needed)
}

PROBE_ENTRY(ProbeMissingSyncAll)
{
    PROBE_UNUSED;
    (void)tiling;
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    if ASCEND_IS_AIC {
        return;
    }
    if (GetBlockIdx() == 1) {
        return;  // BUG: vector core 1 never reaches the SyncAll the others wait in
    }
    SyncAll<true>();
}

PROBE_ENTRY(ProbeWaitWithoutCommit)
{
    PROBE_UNUSED;
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    GET_TILING_DATA_WITH_STRUCT(AagBmmTilingData, td, tiling);
    if ASCEND_IS_AIC {
        return;
    }
    Hccl<HCCL_SERVER_TYPE_AICPU> tp;
    tp.InitV2(GetHcclContext<1>(), &td);
    tp.SetCcTilingV2(offsetof(AagBmmTilingData, allgatherCcTiling));
    HcclHandle h = tp.AllGather<false>(x, GetUserWorkspace(ws), 16U, HcclDataType::HCCL_DATA_TYPE_FP16, 0U);
    tp.Wait(h);  // BUG: prepared without commit=true and never committed
    tp.Finalize();
}

PROBE_ENTRY(ProbeUbOverflow)
{
    PROBE_UNUSED;
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    GET_TILING_DATA_WITH_STRUCT(AagBmmTilingData, td, tiling);
    if ASCEND_IS_AIC {
        return;
    }
    TPipe pipe;
    TBuf<TPosition::VECCALC> a;
    TBuf<TPosition::VECCALC> b;
    pipe.InitBuffer(a, td.ubBytes / 2U);
    pipe.InitBuffer(b, td.ubBytes / 2U + 32U);  // BUG: one block more than the Unified Buffer holds
}

PROBE_ENTRY(ProbePipeRace)
{
    PROBE_UNUSED;
    (void)tiling;
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    if ASCEND_IS_AIC {
        return;
    }
    TPipe pipe;
    TBuf<TPosition::VECCALC> buf;
    pipe.InitBuffer(buf, 1024);
    GlobalTensor<half> xg;
    xg.SetGlobalBuffer(reinterpret_cast<__gm__ half *>(x));
    LocalTensor<half> l = buf.Get<half>();
    DataCopy(l, xg, 16U);
    Add(l, l, l, 16);  // BUG: no PipeBarrier / SetFlag<MTE2_V> between the copy-in and the vector op
}

/* AlltoAllV over ep, then an AllGather over tp of what it received, without
 * InterHcclGroupSync: the AllGather may send before the AlltoAllV delivered */
PROBE_ENTRY(ProbeMissingGroupSync)
{
    PROBE_UNUSED;
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    GET_TILING_DATA_WITH_STRUCT(AagBmmTilingData, td, tiling);
    if ASCEND_IS_AIC {
        return;
    }
    Hccl<HCCL_SERVER_TYPE_AICPU> ep;
    Hccl<HCCL_SERVER_TYPE_AICPU> tp;
    ep.InitV2(GetHcclContext<0>(), &td);
    ep.SetCcTilingV2(offsetof(AagBmmTilingData, alltoallCcTiling));
    tp.InitV2(GetHcclContext<1>(), &td);
    tp.SetCcTilingV2(offsetof(AagBmmTilingData, allgatherCcTiling));
    const uint32_t n = td.geom.ep;
    uint64_t counts[aag::kMaxWorld];
    uint64_t displs[aag::kMaxWorld];
    for (uint32_t j = 0; j < n; ++j) {
        counts[j] = 16U;
        displs[j] = 16U * j;
    }
    GM_ADDR a2a = GetUserWorkspace(ws);
    GM_ADDR ag = a2a + 4096U;
    HcclHandle h1 = ep.AlltoAllV<true>(x, counts, displs, HcclDataType::HCCL_DATA_TYPE_FP16, a2a, counts, displs,
                                       HcclDataType::HCCL_DATA_TYPE_FP16);
    // BUG: tp.InterHcclGroupSync(HCCL_GROUP_ID_0, h1) missing
    HcclHandle h2 = tp.AllGather<true>(a2a, ag, 16U * n, HcclDataType::HCCL_DATA_TYPE_FP16, 0U);
    (void)h1;
    tp.Wait(h2);
    SyncAll<true>();
    ep.Finalize();
    tp.Finalize();
}

PROBE_ENTRY(ProbeUnalignedOperand)
{
    PROBE_UNUSED;
    (void)tiling;
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    if ASCEND_IS_AIC {
        return;
    }
    TPipe pipe;
    TBuf<TPosition::VECCALC> buf;
    pipe.InitBuffer(buf, 1024);
    LocalTensor<float> t = buf.Get<float>();
    Duplicate(t, 1.0f, 64);
    PipeBarrier<PIPE_V>();
    Add(t, t[3], t[3], 16);  // BUG: operands must start 32-byte aligned (float offset 3 = 12 bytes)
}


/* vector cores of one AI Core exchange data through GM, ordered by a mode-1
 * cross-core flag (ok) or not (BUG) */
template <bool WITH_FLAG>
void CrossCorePair(GM_ADDR x, GM_ADDR y1)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    if ASCEND_IS_AIC {
        return;
    }
    TPipe pipe;
    TBuf<TPosition::VECCALC> buf;
    pipe.InitBuffer(buf, 1024);
    GlobalTensor<half> xg, yg;
    xg.SetGlobalBuffer(reinterpret_cast<__gm__ half *>(x));
    yg.SetGlobalBuffer(reinterpret_cast<__gm__ half *>(y1));
    LocalTensor<half> l = buf.Get<half>();
    const int64_t me = GetBlockIdx();
    const int64_t partner = me ^ 1;
    DataCopy(l, xg[me * 16], 16U);
    PipeBarrier<PIPE_ALL>();
    DataCopy(yg[me * 16], l, 16U);  // my block of y1
    if constexpr (WITH_FLAG) {
        CrossCoreSetFlag<1, PIPE_MTE3>(3);
        CrossCoreWaitFlag(3);
    }
    PipeBarrier<PIPE_ALL>();
    DataCopy(l, yg[partner * 16], 16U);  // the partner's block
    PipeBarrier<PIPE_ALL>();
    Muls(l, l, static_cast<half>(2.0f), 16);
    PipeBarrier<PIPE_ALL>();
    SyncAll<true>();
    DataCopy(yg[(8 + me) * 16], l, 16U);
}

PROBE_ENTRY(ProbeCrossCoreFlag)
{
    PROBE_UNUSED;
    (void)tiling;
    CrossCorePair<true>(x, y1);
}

PROBE_ENTRY(ProbeMissingCrossCoreFlag)
{
    PROBE_UNUSED;
    (void)tiling;
    CrossCorePair<false>(x, y1);  // BUG: the partner's block is read without the flag
}

/* the queue programming model: VECIN / VECOUT queues of depth 2, y1[k] = 2 x[k]
 * for the first 64 * vector-core-count elements */
PROBE_ENTRY(ProbeQueuePipeline)
{
    PROBE_UNUSED;
    (void)tiling;
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    if ASCEND_IS_AIC {
        return;
    }
    TPipe pipe;
    TQue<TPosition::VECIN, 2> inQ;
    TQue<TPosition::VECOUT, 2> outQ;
    pipe.InitBuffer(inQ, 2, 16 * sizeof(half));
    pipe.InitBuffer(outQ, 2, 16 * sizeof(half));
    GlobalTensor<half> xg, yg;
    xg.SetGlobalBuffer(reinterpret_cast<__gm__ half *>(x));
    yg.SetGlobalBuffer(reinterpret_cast<__gm__ half *>(y1));
    const int64_t base = GetBlockIdx() * 64;
    for (int k = 0; k < 4; ++k) {
        LocalTensor<half> in = inQ.AllocTensor<half>();
        DataCopy(in, xg[base + k * 16], 16U);
        inQ.EnQue(in);
        LocalTensor<half> a = inQ.DeQue<half>();
        LocalTensor<half> o = outQ.AllocTensor<half>();
        Muls(o, a, static_cast<half>(2.0f), 16);
        outQ.EnQue(o);
        inQ.FreeTensor(a);
        LocalTensor<half> r = outQ.DeQue<half>();
        DataCopy(yg[base + k * 16], r, 16U);
        outQ.FreeTensor(r);
    }
}

/* rank 1 leaves before it commits its part of a tp AllGather: the peers wait forever */
PROBE_ENTRY(ProbeRankSkipsCollective)
{
    PROBE_UNUSED;
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    GET_TILING_DATA_WITH_STRUCT(AagBmmTilingData, td, tiling);
    if ASCEND_IS_AIC {
        return;
    }
    Hccl<HCCL_SERVER_TYPE_AICPU> tp;
    tp.InitV2(GetHcclContext<1>(), &td);
    tp.SetCcTilingV2(offsetof(AagBmmTilingData, allgatherCcTiling));
    if (tp.GetRankId() == 1) {
        return;  // BUG: this rank never joins the AllGather
    }
    HcclHandle h = tp.AllGather<true>(x, GetUserWorkspace(ws), 16U, HcclDataType::HCCL_DATA_TYPE_FP16, 0U);
    tp.Wait(h);
    SyncAll<true>();
    tp.Finalize();
}

/* the working core finalizes while the other vector cores may still wait (no SyncAll) */
PROBE_ENTRY(ProbeFinalizeBeforeOthersWait)
{
    PROBE_UNUSED;
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    GET_TILING_DATA_WITH_STRUCT(AagBmmTilingData, td, tiling);
    if ASCEND_IS_AIC {
        return;
    }
    Hccl<HCCL_SERVER_TYPE_AICPU> tp;
    tp.InitV2(GetHcclContext<1>(), &td);
    tp.SetCcTilingV2(offsetof(AagBmmTilingData, allgatherCcTiling));
    HcclHandle h = tp.AllGather<true>(x, GetUserWorkspace(ws), 16U, HcclDataType::HCCL_DATA_TYPE_FP16, 0U);
    tp.Wait(h);
    tp.Finalize();  // BUG: SyncAll<true>() missing before Finalize
}

}  // namespace

namespace aag_sim {

/* the Matmul API's documented rules: variant 0 follows them (C in x's dtype, a half bias through
 * SetBias with isBias set, asynchronous IterateAll + WaitIterateAll); every other variant breaks one */
template <int VARIANT>
void MatmulRules(GM_ADDR x, GM_ADDR w, GM_ADDR y1, GM_ADDR tiling)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    GET_TILING_DATA_WITH_STRUCT(AagBmmTilingData, td, tiling);
    using A = matmul::MatmulType<TPosition::GM, CubeFormat::ND, half>;
    using C = matmul::MatmulType<TPosition::GM, CubeFormat::ND, half>;
    using BiasH = matmul::MatmulType<TPosition::GM, CubeFormat::ND, half>;
    using BiasB = matmul::MatmulType<TPosition::GM, CubeFormat::ND, bfloat16_t>;
    using Bias = typename std::conditional<VARIANT == 4, BiasB, BiasH>::type;
    matmul::Matmul<A, A, C, Bias> mm;
    TCubeTiling t = td.mmTiling;
    t.isBias = (VARIANT == 1) ? 0 : 1;  // 1: SetBias without isBias in the tiling
    TPipe pipe;
    REGIST_MATMUL_OBJ(&pipe, GetSysWorkSpacePtr(), mm, &t);
    if (GetBlockIdx() != 0) {
        return;
    }
    GlobalTensor<half> xg, wg, yg;
    xg.SetGlobalBuffer(reinterpret_cast<__gm__ half *>(x));
    wg.SetGlobalBuffer(reinterpret_cast<__gm__ half *>(w));
    yg.SetGlobalBuffer(reinterpret_cast<__gm__ half *>(y1));
    GlobalTensor<typename Bias::T> bg;
    bg.SetGlobalBuffer(reinterpret_cast<__gm__ typename Bias::T *>(x));  // any 16 values
    if constexpr (VARIANT != 2) {
        mm.SetOrgShape(16, 16, 32, 32);
    }
    mm.SetTensorA(xg);
    mm.SetTensorB(wg);
    if constexpr (VARIANT == 2) {
        mm.SetOrgShape(16, 16, 32, 32);  // BUG: after SetTensorA / SetTensorB
    }
    mm.SetBias(bg);
    mm.SetSingleShape(16, 16, 32);
    mm.template IterateAll<false>(yg, 0, false, VARIANT != 3);  // 3: async without waitIterateAll
    mm.WaitIterateAll();
    mm.End();
}

PROBE_ENTRY(ProbeMatmulOk) { PROBE_UNUSED; MatmulRules<0>(x, w, y1, tiling); }
PROBE_ENTRY(ProbeMatmulBiasWithoutIsBias) { PROBE_UNUSED; MatmulRules<1>(x, w, y1, tiling); }
PROBE_ENTRY(ProbeMatmulOrgShapeLate) { PROBE_UNUSED; MatmulRules<2>(x, w, y1, tiling); }
PROBE_ENTRY(ProbeMatmulAsyncNoWaitFlag) { PROBE_UNUSED; MatmulRules<3>(x, w, y1, tiling); }
PROBE_ENTRY(ProbeMatmulBf16Bias) { PROBE_UNUSED; MatmulRules<4>(x, w, y1, tiling); }

/* the L2 model: vector core 0 of every rank reads x twice and writes the first 8 KiB of y1 once */
PROBE_ENTRY(ProbeL2Reread)
{
    PROBE_UNUSED;
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    GET_TILING_DATA_WITH_STRUCT(AagBmmTilingData, td, tiling);
    if ASCEND_IS_AIC {
        return;
    }
    if (GetBlockIdx() != 0) {
        return;
    }
    const uint64_t xElems = td.geom.E * td.geom.Rx * td.geom.Hx;
    TPipe pipe;
    TBuf<TPosition::VECCALC> buf;
    pipe.InitBuffer(buf, 4096);
    LocalTensor<half> l = buf.Get<half>();
    GlobalTensor<half> xg, yg;
    xg.SetGlobalBuffer(reinterpret_cast<__gm__ half *>(x));
    yg.SetGlobalBuffer(reinterpret_cast<__gm__ half *>(y1));
    for (int pass = 0; pass < 2; ++pass) {
        for (uint64_t k = 0; k + 2048U <= xElems; k += 2048U) {
            DataCopy(l, xg[k], 2048U);
            PipeBarrier<PIPE_ALL>();
        }
    }
    for (uint64_t k = 0; k < 4096U; k += 2048U) {
        DataCopy(yg[k], l, 2048U);
        PipeBarrier<PIPE_ALL>();
    }
}

KernelFn FindProbe(const std::string &name)
{
    if (name == "matmul_ok") return ProbeMatmulOk;
    if (name == "matmul_bias_without_isbias") return ProbeMatmulBiasWithoutIsBias;
    if (name == "matmul_orgshape_late") return ProbeMatmulOrgShapeLate;
    if (name == "matmul_async_no_wait_flag") return ProbeMatmulAsyncNoWaitFlag;
    if (name == "matmul_bf16_bias") return ProbeMatmulBf16Bias;
    if (name == "l2_reread") return ProbeL2Reread;
    if (name == "read_before_wait") return ProbeReadBeforeWait;
    if (name == "unaligned_datacopy") return ProbeUnalignedDataCopy;
    if (name == "missing_syncall") return ProbeMissingSyncAll;
    if (name == "wait_without_commit") return ProbeWaitWithoutCommit;
    if (name == "ub_overflow") return ProbeUbOverflow;
    if (name == "pipe_race") return ProbePipeRace;
    if (name == "missing_group_sync") return ProbeMissingGroupSync;
    if (name == "unaligned_operand") return ProbeUnalignedOperand;
    if (name == "cross_core_flag") return ProbeCrossCoreFlag;
    if (name == "missing_cross_core_flag") return ProbeMissingCrossCoreFlag;
    if (name == "queue_pipeline") return ProbeQueuePipeline;
    if (name == "rank_skips_collective") return ProbeRankSkipsCollective;
    if (name == "finalize_before_others_wait") return ProbeFinalizeBeforeOthersWait;
    return nullptr;
}

}  // namespace aag_sim
