/*
 * Ascend C kernel of AlltoAllAllGatherBatchMatMul (MIX: AI Cube + AI Vector).
 *
 * Compiles against the open-source CANN headers (shared/cann/check.sh, every
 * tiling key, both core modes) and runs, unchanged, in the project's CPU
 * model of the Ascend C API (kernel_sim/, docs/kernel_model.md), which checks
 * it against the reference on simulated ep x tp worlds. Unverified on an NPU.
 *
 * Schedule (one rank, plan from the host tiling):
 *   1. every vector core issues the same Prepare/Commit sequence up front (the
 *      HCCL client hands out handles on every core; vector core 0, the working
 *      core, writes the messages), so the server runs them back to back while
 *      the cores compute:
 *        shard 0: AllGather(tp) of the own experts for the local block;
 *        each remote tile k: AlltoAllV(ep) -> InterHcclGroupSync -> AllGather(tp).
 *      The group sync is a data dependency: the AllGather sends what the
 *      AlltoAllV received. Every tile has its own receive buffers, so no task
 *      waits for an earlier tile (docs/op_alltoall_allgather_bmm.md).
 *   2. tile 0 (local block), then remote tiles 1..n in order:
 *        wait for the tile's AllGather (nothing for tile 0 in shard 1),
 *        assemble its rows into Y2buf (y2 itself when requested),
 *        per run: Matmul (fp32 accumulation) into an fp32 scratch, then the
 *        vector epilogue: + bias, y3 = cast(acc), y1 = cast(act(acc)).
 *   Later tiles' communication therefore runs while earlier tiles compute.
 */
#ifndef MOE_MC2_AAG_BMM_KERNEL_H
#define MOE_MC2_AAG_BMM_KERNEL_H

#include "kernel_operator.h"
#include "lib/matmul_intf.h"
#include "lib/hccl/hccl.h"

#include "aag_bmm_offsets.h"
#include "aag_bmm_tiling_data.h"

namespace aag_kernel {

using namespace AscendC;

template <typename T>
__aicore__ inline HcclDataType HcclTypeOf()
{
    if constexpr (IsSameType<T, bfloat16_t>::value) {
        return HcclDataType::HCCL_DATA_TYPE_BFP16;
    } else {
        return HcclDataType::HCCL_DATA_TYPE_FP16;
    }
}

/* TX: x / weight / y dtype (half or bfloat16_t); TB: bias dtype (half or float).
 * The five template flags are the tiling key (aag::TilingKey). */
template <typename TX, typename TB, uint32_t SHARD, bool TRANS_W, bool HAS_BIAS, bool Y2_OUT, bool Y3_OUT>
class AagBmmKernel {
public:
    using AType = matmul::MatmulType<TPosition::GM, CubeFormat::ND, TX, false>;
    using BType = matmul::MatmulType<TPosition::GM, CubeFormat::ND, TX, TRANS_W>;
    using CType = matmul::MatmulType<TPosition::GM, CubeFormat::ND, float>;
    using BiasType = matmul::MatmulType<TPosition::GM, CubeFormat::ND, float>;  // unused: bias is added in fp32 by the epilogue
    matmul::Matmul<AType, BType, CType, BiasType> mm;

    __aicore__ inline AagBmmKernel() {}

    /* y2 / y3 may be null when the graph does not produce them (optional outputs);
     * they are touched only when the tiling key says they are produced. */
    __aicore__ inline void Init(GM_ADDR x, GM_ADDR w, GM_ADDR bias, GM_ADDR y1, GM_ADDR y2, GM_ADDR y3,
                                GM_ADDR userWs, const AagBmmTilingData *td, TPipe *pipe)
    {
        td_ = td;
        g_ = td->geom;
        pipe_ = pipe;
        xAddr_ = x;
        xGm_.SetGlobalBuffer(reinterpret_cast<__gm__ TX *>(x));
        wGm_.SetGlobalBuffer(reinterpret_cast<__gm__ TX *>(w));
        if constexpr (HAS_BIAS) {
            biasGm_.SetGlobalBuffer(reinterpret_cast<__gm__ TB *>(bias));
        }
        y1Gm_.SetGlobalBuffer(reinterpret_cast<__gm__ TX *>(y1));
        if constexpr (Y3_OUT) {
            y3Gm_.SetGlobalBuffer(reinterpret_cast<__gm__ TX *>(y3));
        }
        ws_ = aag::Workspace(g_, sizeof(TX));
        wsBase_ = userWs;
        wsGm_.SetGlobalBuffer(reinterpret_cast<__gm__ TX *>(userWs));
        if constexpr (Y2_OUT) {
            y2Gm_.SetGlobalBuffer(reinterpret_cast<__gm__ TX *>(y2));
        } else {
            y2Gm_.SetGlobalBuffer(reinterpret_cast<__gm__ TX *>(userWs) + ws_.y2Off);
        }
        accGm_.SetGlobalBuffer(reinterpret_cast<__gm__ float *>(userWs + ws_.accOffBytes));

        // HCCL clients: group 0 = group_ep (AlltoAllV), group 1 = group_tp (AllGather),
        // the order of MC2().HcclGroup({"group_ep", "group_tp"}) in the OpDef. InitV2 takes
        // the tiling struct copied to the stack (Mc2InitTiling is its first member) and
        // SetCcTilingV2 the offset of each collective's blob from it.
        if ASCEND_IS_AIV {
            hcclEp_.InitV2(GetHcclContext<HCCL_GROUP_ID_0>(), td);
            hcclEp_.SetCcTilingV2(offsetof(AagBmmTilingData, alltoallCcTiling));
            hcclTp_.InitV2(GetHcclContext<1>(), td);
            hcclTp_.SetCcTilingV2(offsetof(AagBmmTilingData, allgatherCcTiling));
            epRank_ = hcclEp_.GetRankId();
            tpRank_ = hcclTp_.GetRankId();
        }
        pipe_->InitBuffer(ubBuf_, td->ubBytes / 4U * 3U / 32U * 32U);  // the rest: activation API scratch
    }

    __aicore__ inline void Process()
    {
        // All orchestration runs on the vector cores; the cube cores serve the
        // Matmul high-level API requests (MIX 1:2), so only AIV cores sync here.
        if ASCEND_IS_AIV {
            IssueCollectives();
            const uint32_t nt = aag::NumTiles(g_);
            for (uint32_t k = 0; k < nt; ++k) {
                if (k == 0U) {
                    if constexpr (SHARD == 0U) {
                        hcclTp_.Wait(localAg_);
                    }
                } else {
                    hcclTp_.Wait(ag_[k]);
                }
                SyncAll<true>();
                Assemble(k);
                SyncAll<true>();
                const uint64_t runs = aag::NumRuns(g_, k);
                for (uint64_t r = 0; r < runs; ++r) {
                    aag::Run run = aag::RunAt(g_, epRank_, tpRank_, k, r);
                    MatmulRun(run);
                    SyncAll<true>();
                    Epilogue(run);
                    SyncAll<true>();
                }
            }
            hcclEp_.Finalize();
            hcclTp_.Finalize();
        }
    }

private:
    /* ------------------------------------------------ communication (AIV) */
    __aicore__ inline void IssueCollectives()
    {
        const HcclDataType dt = HcclTypeOf<TX>();
        GM_ADDR xAddr = xAddr_;
        if constexpr (SHARD == 0U) {
            localAg_ = hcclTp_.AllGather<true>(xAddr + aag::LocalAGSendDispl(g_, epRank_) * sizeof(TX),
                                               wsBase_ + ws_.localAgOff * sizeof(TX), aag::AGSendCount(g_, 0U), dt,
                                               0U);
        }
        uint64_t sendCounts[aag::kMaxWorld];
        uint64_t sdispls[aag::kMaxWorld];
        uint64_t recvCounts[aag::kMaxWorld];
        uint64_t rdispls[aag::kMaxWorld];
        const uint32_t nt = aag::NumTiles(g_);
        for (uint32_t k = 1; k < nt; ++k) {
            for (uint32_t j = 0; j < g_.ep; ++j) {
                sendCounts[j] = aag::A2ASendCount(g_, k, epRank_, j);
                sdispls[j] = aag::A2ASendDispl(g_, k, j);
                recvCounts[j] = sendCounts[j];
                rdispls[j] = aag::A2ARecvDispl(g_, k, epRank_, j);
            }
            GM_ADDR a2aBuf = wsBase_ + (ws_.a2aOff + aag::A2ATileOff(g_, k)) * sizeof(TX);
            HcclHandle a2a = hcclEp_.AlltoAllV<true>(xAddr, sendCounts, sdispls, dt, a2aBuf, recvCounts, rdispls, dt);
            // the tp AllGather of tile k starts on the server once the ep AlltoAllV is done
            hcclTp_.InterHcclGroupSync(HCCL_GROUP_ID_0, a2a);
            ag_[k] = hcclTp_.AllGather<true>(a2aBuf, wsBase_ + (ws_.agOff + aag::AGTileOff(g_, k)) * sizeof(TX),
                                             aag::AGSendCount(g_, k), dt, 0U);
        }
    }

    /* ------------------------------------------ assemble into Y2buf (AIV) */
    __aicore__ inline GlobalTensor<TX> CopySource(uint32_t kind)
    {
        if (kind == 0U) {
            return xGm_;
        }
        return wsGm_[kind == 1U ? ws_.localAgOff : ws_.agOff];
    }

    __aicore__ inline void Assemble(uint32_t k)
    {
        const uint32_t core = GetBlockIdx();
        const uint32_t cores = GetBlockNum() * GetTaskRatio();
        const uint64_t elemsPerBlock32 = 32U / sizeof(TX);
        const uint64_t bufElems = td_->copyUbBytes / sizeof(TX);
        const uint64_t colChunk = (g_.Hx < bufElems) ? g_.Hx : bufElems;
        const uint64_t rowPitch = aag::AlignUp(colChunk, elemsPerBlock32);
        uint64_t rowsPerChunk = (bufElems / rowPitch > 0U) ? bufElems / rowPitch : 1U;
        if (rowsPerChunk > kMaxBlockCount) {
            rowsPerChunk = kMaxBlockCount;  // DataCopyPad: blockCount <= 4095
        }
        LocalTensor<TX> buf = ubBuf_.Get<TX>();
        uint64_t unit = 0;  // round-robin over (block, row chunk, column chunk)
        const uint64_t nb = aag::NumCopyBlocks(g_, k);
        for (uint64_t b = 0; b < nb; ++b) {
            aag::CopyBlock cb = aag::CopyBlockAt(g_, epRank_, tpRank_, k, b);
            if (cb.skip) {
                continue;
            }
            GlobalTensor<TX> src = CopySource(cb.srcKind);
            for (uint64_t r0 = 0; r0 < cb.rows; r0 += rowsPerChunk) {
                const uint64_t nr = (cb.rows - r0 < rowsPerChunk) ? cb.rows - r0 : rowsPerChunk;
                for (uint64_t c0 = 0; c0 < g_.Hx; c0 += colChunk, ++unit) {
                    if (unit % cores != core) {
                        continue;
                    }
                    const uint64_t nc = (g_.Hx - c0 < colChunk) ? g_.Hx - c0 : colChunk;
                    DataCopyExtParams in{static_cast<uint16_t>(nr), static_cast<uint32_t>(nc * sizeof(TX)),
                                         static_cast<uint32_t>((g_.Hx - nc) * sizeof(TX)), 0U, 0U};
                    DataCopyPadExtParams<TX> pad{false, 0U, 0U, static_cast<TX>(0)};
                    DataCopyPad(buf, src[cb.srcOff + r0 * g_.Hx + c0], in, pad);
                    PipeBarrier<PIPE_ALL>();
                    DataCopyExtParams out{static_cast<uint16_t>(nr), static_cast<uint32_t>(nc * sizeof(TX)), 0U,
                                          static_cast<uint32_t>((g_.H - nc) * sizeof(TX)), 0U};
                    DataCopyPad(y2Gm_[cb.dstOff + r0 * g_.H + c0], buf, out);
                    PipeBarrier<PIPE_ALL>();
                }
            }
        }
    }

    /* ---------------------------------------------- matmul of one run */
    __aicore__ inline void MatmulRun(const aag::Run &run)
    {
        const AscendC::tiling::TCubeTiling &t = td_->mmTiling;
        const uint64_t sM = static_cast<uint64_t>(t.singleCoreM);
        const uint64_t sN = static_cast<uint64_t>(t.singleCoreN);
        const uint64_t mBlocks = (run.rows + sM - 1U) / sM;
        const uint64_t nBlocks = (g_.N + sN - 1U) / sN;
        // in MIX 1:2 mode one vector core of each pair drives its cube core's matmul
        if (GetSubBlockIdx() != 0) {
            return;
        }
        // the tiling spreads a run over usedCoreNum cube cores (<= the launched ones)
        const uint64_t mmCore = GetBlockIdx() / GetTaskRatio();
        const uint64_t mmCores = static_cast<uint64_t>(t.usedCoreNum);
        if (mmCore >= mmCores) {
            return;
        }
        const uint64_t aOff = aag::RunAOff(g_, run);
        const uint64_t wOff = aag::RunWOff(g_, run);
        mm.SetOrgShape(static_cast<int>(run.rows), static_cast<int>(g_.N), static_cast<int>(g_.H));
        for (uint64_t blk = mmCore; blk < mBlocks * nBlocks; blk += mmCores) {
            const uint64_t mi = blk / nBlocks;
            const uint64_t ni = blk % nBlocks;
            const uint64_t tm = (run.rows - mi * sM < sM) ? run.rows - mi * sM : sM;
            const uint64_t tn = (g_.N - ni * sN < sN) ? g_.N - ni * sN : sN;
            // B is (H, N) row-major, or (N, H) row-major when transposed
            const uint64_t bOff = TRANS_W ? wOff + ni * sN * g_.H : wOff + ni * sN;
            mm.SetSingleShape(static_cast<int>(tm), static_cast<int>(tn), static_cast<int>(g_.H));
            mm.SetTensorA(y2Gm_[aOff + mi * sM * g_.H], false);
            mm.SetTensorB(wGm_[bOff], TRANS_W);
            mm.IterateAll(accGm_[mi * sM * g_.N + ni * sN]);
            mm.End();
        }
    }

    /* -------------------------------- bias + activation epilogue (AIV) */
    /* act_type 1..4 into dst (fp32); act_type 0 (None) never gets here: the
     * epilogue rounds the accumulator itself (a UB->UB DataCopy would move whole
     * 32-byte blocks only and leave the tail of a row stale). */
    __aicore__ inline void Activate(LocalTensor<float> &dst, LocalTensor<float> &src, uint32_t n)
    {
        switch (g_.act) {
            case 1U: Gelu(dst, src, n); break;        // x / (1 + exp(-1.59576912 (x + 0.044715 x^3)))
            case 2U: Silu(dst, src, n); break;        // x * sigmoid(x)
            case 3U: Relu(dst, src, n); break;        // max(x, 0)
            default: FasterGelu(dst, src, n); break;  // 4: x / (1 + exp(-1.702 x))
        }
    }

    __aicore__ inline void Epilogue(const aag::Run &run)
    {
        const uint32_t core = GetBlockIdx();
        const uint32_t cores = GetBlockNum() * GetTaskRatio();
        const uint64_t chunk = td_->epiColChunk;   // floats per pass, multiple of 64
        LocalTensor<float> acc = ubBuf_.Get<float>();
        LocalTensor<float> bias = acc[chunk];
        LocalTensor<float> act = acc[2U * chunk];
        LocalTensor<TX> out = acc[3U * chunk].template ReinterpretCast<TX>();
        LocalTensor<TB> biasRaw = acc[4U * chunk].template ReinterpretCast<TB>();
        const uint64_t yOff = aag::RunYOff(g_, run);
        uint64_t unit = 0;
        for (uint64_t r = 0; r < run.rows; ++r) {
            for (uint64_t c0 = 0; c0 < g_.N; c0 += chunk, ++unit) {
                if (unit % cores != core) {
                    continue;
                }
                const uint32_t nc = static_cast<uint32_t>((g_.N - c0 < chunk) ? g_.N - c0 : chunk);
                DataCopyExtParams one{1U, static_cast<uint32_t>(nc * sizeof(float)), 0U, 0U, 0U};
                DataCopyPadExtParams<float> padF{false, 0U, 0U, 0.0f};
                DataCopyPad(acc, accGm_[r * g_.N + c0], one, padF);
                if constexpr (HAS_BIAS) {
                    DataCopyExtParams bb{1U, static_cast<uint32_t>(nc * sizeof(TB)), 0U, 0U, 0U};
                    DataCopyPadExtParams<TB> padB{false, 0U, 0U, static_cast<TB>(0)};
                    DataCopyPad(biasRaw, biasGm_[aag::RunBiasOff(g_, run) + c0], bb, padB);
                    PipeBarrier<PIPE_ALL>();
                    if constexpr (IsSameType<TB, float>::value) {
                        Add(acc, acc, biasRaw, nc);
                    } else {
                        Cast(bias, biasRaw, RoundMode::CAST_NONE, nc);
                        PipeBarrier<PIPE_V>();
                        Add(acc, acc, bias, nc);
                    }
                }
                PipeBarrier<PIPE_ALL>();
                DataCopyExtParams st{1U, static_cast<uint32_t>(nc * sizeof(TX)), 0U, 0U, 0U};
                if constexpr (Y3_OUT) {  // pre-activation output, rounded once
                    Cast(out, acc, RoundMode::CAST_RINT, nc);
                    PipeBarrier<PIPE_ALL>();
                    DataCopyPad(y3Gm_[yOff + r * g_.N + c0], out, st);
                    PipeBarrier<PIPE_ALL>();
                }
                if (g_.act != 0U) {
                    Activate(act, acc, nc);
                    PipeBarrier<PIPE_V>();
                    Cast(out, act, RoundMode::CAST_RINT, nc);
                } else {
                    Cast(out, acc, RoundMode::CAST_RINT, nc);  // y1 = y3: one rounding of the fp32 result
                }
                PipeBarrier<PIPE_ALL>();
                DataCopyPad(y1Gm_[yOff + r * g_.N + c0], out, st);
                PipeBarrier<PIPE_ALL>();
            }
        }
    }

    static constexpr uint64_t kMaxBlockCount = 4095U;

    const AagBmmTilingData *td_ = nullptr;
    GM_ADDR xAddr_ = nullptr;
    aag::Geom g_{};
    aag::WsLayout ws_{};
    TPipe *pipe_ = nullptr;
    TBuf<TPosition::VECCALC> ubBuf_;
    GM_ADDR wsBase_ = nullptr;
    GlobalTensor<TX> xGm_, wGm_, y1Gm_, y2Gm_, y3Gm_, wsGm_;
    GlobalTensor<TB> biasGm_;
    GlobalTensor<float> accGm_;
    Hccl<HCCL_SERVER_TYPE_AICPU> hcclEp_;
    Hccl<HCCL_SERVER_TYPE_AICPU> hcclTp_;
    HcclHandle localAg_ = -1;
    HcclHandle ag_[aag::kMaxRemoteTiles + 1U];
    uint32_t epRank_ = 0;
    uint32_t tpRank_ = 0;
};

}  // namespace aag_kernel

#endif  // MOE_MC2_AAG_BMM_KERNEL_H
