/*
 * Ascend C kernel of AlltoAllAllGatherBatchMatMul (MIX: AI Cube + AI Vector).
 *
 * Compiles against the open-source CANN headers (scripts/cpp.sh cann-check, docs/cann_headers.md; every
 * tiling key, both core modes) and runs, unchanged, in the project's CPU
 * model of the Ascend C API (kernel_sim/, docs/kernel_model.md), which checks
 * it against the reference on simulated ep x tp worlds. Unverified on an NPU.
 *
 * Schedule of one rank (the plan comes from the host tiling; vocabulary and
 * formulas in aag_bmm_offsets.h):
 *   1. every vector core issues the same Prepare/Commit sequence up front (the
 *      HCCL client hands out handles on every core; vector core 0, the working
 *      core, writes the messages): for each tile k, AlltoAllV(ep) ->
 *      InterHcclGroupSync -> AllGather(tp). The group sync is a data
 *      dependency (the AllGather sends what the AlltoAllV received); every
 *      tile has its own receive regions, so nothing waits for an earlier tile.
 *   2. the matmul units of the tiles are dealt round robin over the vector
 *      cores; each vector core drives its cube core (MIX 1:2, both vector
 *      cores of an AI Core share it), one asynchronous IterateAll in flight:
 *        shard 1: every row is read in place from the first buffer that
 *        holds it, and computed as soon as it is there (aag::NextStep gives
 *        the order): the rank's own rows from x with no wait; the rows its
 *        AlltoAllV received (its own tp slot) from the AlltoAllV receive
 *        buffer after a Wait for that collective, while the tile's AllGather
 *        is still in flight; the tp peers' rows from the AllGather receive
 *        buffer after a Wait for the AllGather. The plan sets how many tiles
 *        the own and the peer rows run ahead, or leaves the peer rows with
 *        the far rows (then read from the AllGather receive buffer);
 *        shard 0, tile k: Wait, assemble the tile's rows (the tp column slices
 *        side by side) into y2 or a one-tile slot, SyncAll, then the units.
 *      act None without a bf16 bias: the matmul writes y1 in x's dtype, bias
 *      added by the matmul (SetBias), one rounding; nothing else runs.
 *      Otherwise each unit goes to a per-vector-core ring of two fp32 slots
 *      in the workspace and the vector core finishes the previous unit while
 *      the cube computes the next: + bias (only a bf16 bias, which the matmul
 *      cannot take on A2/A3), y3 = round(acc), y1 = round(act(acc)), in
 *      multi-row chunks through depth-2 queues.
 *   3. y2 (shard 1, only when requested): the rows of each unit of the first
 *      column panel are copied from x / the receive buffer while the cube
 *      reads them for that unit, so they come from HBM once.
 *   4. SyncAll, then both clients Finalize.
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

template <bool COND, typename A, typename B>
struct AagPick {
    using T = A;
};
template <typename A, typename B>
struct AagPick<false, A, B> {
    using T = B;
};

/* TX: x / weight / y dtype (half or bfloat16_t); TB: bias dtype (half, float or bfloat16_t).
 * The five template flags are the tiling key (aag::TilingKey). */
template <typename TX, typename TB, uint32_t SHARD, bool TRANS_W, bool HAS_BIAS, bool Y2_OUT, bool Y3_OUT>
class AagBmmKernel {
public:
    /* the Matmul takes a half or float bias on Atlas A2/A3 (SetBias documentation); a bf16 bias is
     * added by the vector epilogue instead */
    static constexpr bool kCubeBias = HAS_BIAS && !IsSameType<TB, bfloat16_t>::value;
    static constexpr bool kVecBias = HAS_BIAS && !kCubeBias;
    using BiasT = typename AagPick<kCubeBias, TB, float>::T;
    using AType = matmul::MatmulType<TPosition::GM, CubeFormat::ND, TX, false>;
    using BType = matmul::MatmulType<TPosition::GM, CubeFormat::ND, TX, TRANS_W>;
    using BiasType = matmul::MatmulType<TPosition::GM, CubeFormat::ND, BiasT>;
    using CDirectType = matmul::MatmulType<TPosition::GM, CubeFormat::ND, TX>;
    using CRingType = matmul::MatmulType<TPosition::GM, CubeFormat::ND, float>;
    matmul::Matmul<AType, BType, CDirectType, BiasType> mmDirect;  // y1 in x's dtype (act None)
    matmul::Matmul<AType, BType, CRingType, BiasType> mmRing;      // fp32 units for the epilogue

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
        }
        ringGm_.SetGlobalBuffer(reinterpret_cast<__gm__ float *>(userWs + ws_.ringOffBytes));

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
            InitUb();
        }
    }

    __aicore__ inline void Process()
    {
        // All orchestration runs on the vector cores; the cube cores serve the
        // Matmul requests (MIX 1:2) inside REGIST_MATMUL_OBJ.
        if ASCEND_IS_AIV {
            IssueCollectives();
            aiv_ = static_cast<uint64_t>(GetBlockIdx());
            base_ = 0U;
            aag::StepCursor cur = aag::FirstStep();
            aag::Step st{};
            while (aag::NextStep(g_, cur, &st)) {
                WaitForRows(st);
                RunPhase(st);
            }
            Drain();
            SyncAll<true>();  // every core's Waits are done before the working core finalizes
            hcclEp_.Finalize();
            hcclTp_.Finalize();
            ReleaseEvents();
        }
    }

private:
    /* ------------------------------------------------ communication (AIV) */
    __aicore__ inline void IssueCollectives()
    {
        const HcclDataType dt = HcclTypeOf<TX>();
        uint64_t sendCounts[aag::kMaxWorld];
        uint64_t sdispls[aag::kMaxWorld];
        uint64_t recvCounts[aag::kMaxWorld];
        uint64_t rdispls[aag::kMaxWorld];
        for (uint32_t k = 0; k < aag::NumTiles(g_); ++k) {
            for (uint32_t j = 0; j < g_.ep; ++j) {
                sendCounts[j] = aag::A2ABlock(g_, k);
                sdispls[j] = aag::A2ASendDispl(g_, k, j);
                recvCounts[j] = sendCounts[j];
                rdispls[j] = aag::A2ARecvDispl(g_, k, j);
            }
            GM_ADDR a2aBuf = wsBase_ + (ws_.a2aOff + aag::A2ATileOff(g_, k)) * sizeof(TX);
            a2a_[k] = hcclEp_.AlltoAllV<true>(xAddr_, sendCounts, sdispls, dt, a2aBuf, recvCounts, rdispls, dt);
            // the tp AllGather of tile k starts on the server once the ep AlltoAllV is done
            hcclTp_.InterHcclGroupSync(HCCL_GROUP_ID_0, a2a_[k]);
            ag_[k] = hcclTp_.AllGather<true>(a2aBuf, wsBase_ + (ws_.agOff + aag::AGTileOff(g_, k)) * sizeof(TX),
                                             aag::AGSendCount(g_, k), dt, 0U);
        }
    }

    /* --------------------------------------------------------- tiles (AIV) */
    /* the rows of a step are there: own rows need nothing; peer rows the tile's AlltoAllV; far rows the
     * tile's AllGather (shard 0 then assembles them: every core's units of the previous tile are done
     * first, the asm slot is reused) */
    __aicore__ inline void WaitForRows(const aag::Step &st)
    {
        if (st.phase == aag::kPeerRows) {
            hcclEp_.Wait(a2a_[st.k]);
        } else if (st.phase == aag::kFarRows) {
            if constexpr (SHARD == 1U) {
                hcclTp_.Wait(ag_[st.k]);
            } else {
                Drain();
                hcclTp_.Wait(ag_[st.k]);
                SyncAll<true>();
                CopyPieces(st.k);  // the tile's rows, tp column slices side by side
                SyncAll<true>();   // every row assembled before any unit reads it
            }
        }
    }

    /* this vector core's units of one step (dealt round robin by their global position) */
    __aicore__ inline void RunPhase(const aag::Step &st)
    {
        const uint64_t nseg = aag::NumSegments(g_, st.k);
        for (uint64_t q = 0; q < nseg; ++q) {
            const aag::Segment sg = aag::SegmentAt(g_, st.k, q);
            const uint64_t cnt = aag::PhaseUnitsOfSegment(g_, st.phase, sg.cL);
            for (uint64_t u = aag::FirstMine(base_, aiv_, g_.aivNum); u < cnt; u += g_.aivNum) {
                DoUnit(aag::PhaseUnit(g_, epRank_, tpRank_, st.k, sg, st.phase, u));
            }
            base_ += cnt;
        }
    }

    /* ----------------------------------------------------- matmul units (AIV) */
    __aicore__ inline GlobalTensor<TX> ASource(uint32_t kind)
    {
        if (kind == aag::kSrcX) {
            return xGm_;
        }
        if (kind == aag::kSrcAg) {
            return wsGm_[ws_.agOff];
        }
        if (kind == aag::kSrcA2a) {
            return wsGm_[ws_.a2aOff];
        }
        if constexpr (Y2_OUT) {
            return y2Gm_;
        } else {
            return wsGm_[ws_.asmOff];
        }
    }

    template <class MM>
    __aicore__ inline void SetOperands(MM &mm, const aag::Unit &u, uint64_t orgKc)
    {
        mm.SetOrgShape(static_cast<int>(u.tm), static_cast<int>(g_.N), static_cast<int>(g_.H),
                       static_cast<int>(g_.H), static_cast<int>(orgKc));
        mm.SetTensorA(ASource(u.aSrc)[u.aOff], false);
        mm.SetTensorB(wGm_[aag::WeightOff(g_, u.e, 0U, u.n0)], TRANS_W);
        if constexpr (kCubeBias) {
            mm.SetBias(biasGm_[u.e * g_.N + u.n0]);
        }
        mm.SetSingleShape(static_cast<int>(u.tm), static_cast<int>(u.tn), static_cast<int>(g_.H));
    }

    /* one unit in flight per vector core: wait for the previous one, start this one, then finish
     * the previous one on the vector core (ring) while the cube computes */
    __aicore__ inline void DoUnit(const aag::Unit &u)
    {
        if (g_.ring == 0U) {
            if (pending_) {
                mmDirect.WaitIterateAll();
                mmDirect.End();
            }
            SetOperands(mmDirect, u, 0U);
            mmDirect.template IterateAll<false>(y1Gm_[u.yRow * g_.N + u.n0], 0, false, true);
            CopyUnitRows(u);
            pending_ = true;
            return;
        }
        if (pending_) {
            mmRing.WaitIterateAll();
            mmRing.End();
        }
        const uint32_t slot = pending_ ? 1U - pendSlot_ : 0U;
        if (slotRead_[slot]) {
            // the epilogue's reads of this slot (MTE2) are complete before the cube overwrites it
            SetFlag<HardEvent::MTE2_S>(evSlot_);
            WaitFlag<HardEvent::MTE2_S>(evSlot_);
            slotRead_[slot] = false;
        }
        SetOperands(mmRing, u, g_.unitN);
        mmRing.template IterateAll<false>(ringGm_[aag::RingSlotOff(g_, aiv_, slot)], 0, false, true);
        CopyUnitRows(u);
        if (pending_) {
            Epilogue(pend_, pendSlot_);
        }
        pend_ = u;
        pendSlot_ = slot;
        pending_ = true;
    }

    __aicore__ inline void Drain()
    {
        if (!pending_) {
            return;
        }
        if (g_.ring == 0U) {
            mmDirect.WaitIterateAll();
            mmDirect.End();
        } else {
            mmRing.WaitIterateAll();
            mmRing.End();
            Epilogue(pend_, pendSlot_);
        }
        pending_ = false;
    }

    /* ------------------------------------------------------- epilogue (AIV) */
    /* act_type 1..4 into dst (fp32) */
    __aicore__ inline void Activate(const LocalTensor<float> &dst, const LocalTensor<float> &src, uint32_t n)
    {
        switch (g_.act) {
            case 1U: Gelu(dst, src, n); break;        // x / (1 + exp(-1.59576912 (x + 0.044715 x^3)))
            case 2U: Silu(dst, src, n); break;        // x * sigmoid(x)
            case 3U: Relu(dst, src, n); break;        // max(x, 0)
            default: FasterGelu(dst, src, n); break;  // 4: x / (1 + exp(-1.702 x))
        }
    }

    /* the bf16 bias (vector path only): once per unit, replicated over the chunk's rows */
    __aicore__ inline void LoadVecBias(const aag::Unit &u, uint32_t tnPad)
    {
        if constexpr (kVecBias) {
            if (biasLoaded_) {
                WaitFlag<HardEvent::V_MTE2>(evBiasFree_);  // the previous unit's Cast has read biasRaw
            }
            LocalTensor<TB> raw = biasRawBuf_.Get<TB>();
            LocalTensor<float> row = biasRowBuf_.Get<float>();
            LocalTensor<float> rep = biasRepBuf_.Get<float>();
            DataCopyExtParams bp{1U, static_cast<uint32_t>(u.tn * sizeof(TB)), 0U, 0U, 0U};
            DataCopyPadExtParams<TB> padB{false, 0U, 0U, static_cast<TB>(0)};
            DataCopyPad(raw, biasGm_[u.e * g_.N + u.n0], bp, padB);
            SetFlag<HardEvent::MTE2_V>(evBias_);
            WaitFlag<HardEvent::MTE2_V>(evBias_);
            Cast(row, raw, RoundMode::CAST_NONE, tnPad);
            PipeBarrier<PIPE_V>();
            for (uint32_t r = 0; r < g_.epiRows; ++r) {
                DataCopy(rep[r * tnPad], row, tnPad);
            }
            PipeBarrier<PIPE_V>();
            SetFlag<HardEvent::V_MTE2>(evBiasFree_);
            biasLoaded_ = true;
        }
    }

    __aicore__ inline void Epilogue(const aag::Unit &u, uint32_t slot)
    {
        const uint32_t tn = static_cast<uint32_t>(u.tn);
        const uint32_t tnPad = static_cast<uint32_t>(aag::AlignUp(tn, 16U));
        const uint64_t slotOff = aag::RingSlotOff(g_, aiv_, slot);
        LoadVecBias(u, tnPad);
        const DataCopyPadExtParams<float> padF{false, 0U, 0U, 0.0f};
        LocalTensor<float> act = actBuf_.Get<float>();
        for (uint64_t r0 = 0; r0 < u.tm; r0 += g_.epiRows) {
            const uint32_t rr = static_cast<uint32_t>(aag::MinU(g_.epiRows, u.tm - r0));
            const uint32_t n = rr * tnPad;
            // in: rr rows of tn floats, ring row stride unitN, UB row pitch tnPad
            LocalTensor<float> acc = inQue_.AllocTensor<float>();
            DataCopyExtParams in{static_cast<uint16_t>(rr), tn * 4U, (g_.unitN - tn) * 4U,
                                 (tnPad * 4U - static_cast<uint32_t>(aag::AlignUp(tn * 4U, 32U))) / 32U, 0U};
            DataCopyPad(acc, ringGm_[slotOff + r0 * g_.unitN], in, padF);
            inQue_.EnQue(acc);
            acc = inQue_.DeQue<float>();
            if constexpr (kVecBias) {
                Add(acc, acc, biasRepBuf_.Get<float>(), static_cast<int32_t>(n));
                PipeBarrier<PIPE_V>();
            }
            const DataCopyExtParams out{static_cast<uint16_t>(rr), tn * static_cast<uint32_t>(sizeof(TX)), 0U,
                                        static_cast<uint32_t>((g_.N - tn) * sizeof(TX)), 0U};
            const uint64_t yOff = (u.yRow + r0) * g_.N + u.n0;
            if constexpr (Y3_OUT) {  // the pre-activation result, rounded once
                LocalTensor<TX> o3 = out3Que_.AllocTensor<TX>();
                Cast(o3, acc, RoundMode::CAST_RINT, n);
                out3Que_.EnQue(o3);
            }
            LocalTensor<TX> o1 = outQue_.AllocTensor<TX>();
            if (g_.act != 0U) {
                Activate(act, acc, n);
                PipeBarrier<PIPE_V>();
                Cast(o1, act, RoundMode::CAST_RINT, n);
            } else {
                Cast(o1, acc, RoundMode::CAST_RINT, n);  // y1 = y3: one rounding of the fp32 result
            }
            outQue_.EnQue(o1);
            inQue_.FreeTensor(acc);
            if constexpr (Y3_OUT) {
                LocalTensor<TX> o3 = out3Que_.DeQue<TX>();
                DataCopyPad(y3Gm_[yOff], o3, out);
                out3Que_.FreeTensor(o3);
            }
            o1 = outQue_.DeQue<TX>();
            DataCopyPad(y1Gm_[yOff], o1, out);
            outQue_.FreeTensor(o1);
        }
        slotRead_[slot] = true;
    }

    /* --------------------------------------------- y2 copy / assemble (AIV) */
    /* One copy item: nr rows of nc elements from src (rows Hx apart) to dst (rows H apart), through UB
     * half `mine % 2`; MTE2 -> MTE3 -> MTE2 ordered by event flags (balanced by CopyDone). */
    __aicore__ inline void CopyItem(const GlobalTensor<TX> &src, const GlobalTensor<TX> &dst, uint64_t nr, uint64_t nc,
                                    uint64_t elems)
    {
        const uint32_t h = copyItems_ % 2U;
        if (copyItems_ >= 2U) {
            WaitFlag<HardEvent::MTE3_MTE2>(evFree_[h]);  // the half's previous item has left UB
        }
        LocalTensor<TX> buf = copyBuf_.Get<TX>()[h * static_cast<uint32_t>(elems)];
        DataCopyExtParams in{static_cast<uint16_t>(nr), static_cast<uint32_t>(nc * sizeof(TX)),
                             static_cast<uint32_t>((g_.Hx - nc) * sizeof(TX)), 0U, 0U};
        DataCopyPadExtParams<TX> pad{false, 0U, 0U, static_cast<TX>(0)};
        DataCopyPad(buf, src, in, pad);
        SetFlag<HardEvent::MTE2_MTE3>(evFull_[h]);
        WaitFlag<HardEvent::MTE2_MTE3>(evFull_[h]);
        DataCopyExtParams out{static_cast<uint16_t>(nr), static_cast<uint32_t>(nc * sizeof(TX)), 0U,
                              static_cast<uint32_t>((g_.H - nc) * sizeof(TX)), 0U};
        DataCopyPad(dst, buf, out);
        SetFlag<HardEvent::MTE3_MTE2>(evFree_[h]);
        ++copyItems_;
    }

    /* every SetFlag of the copy items has its WaitFlag: both halves are free again */
    __aicore__ inline void CopyDone()
    {
        for (uint32_t h = 0; h < 2U && h < copyItems_; ++h) {
            WaitFlag<HardEvent::MTE3_MTE2>(evFree_[(copyItems_ - 1U - h) % 2U]);
        }
        copyItems_ = 0;
    }

    /* `rows` rows of Hx elements, in items that fit a UB half (rows, or column pieces of long rows); with
     * deal: only the items whose running number (*item) is this vector core's in the round robin */
    __aicore__ inline void CopyRows(const GlobalTensor<TX> &src, const GlobalTensor<TX> &dst, uint64_t rows,
                                    uint64_t *item = nullptr)
    {
        const uint64_t elems = td_->copyUbBytes / sizeof(TX);  // per half
        const uint64_t colChunk = aag::MinU(g_.Hx, elems);
        const uint64_t rowPitch = aag::AlignUp(colChunk, 32U / sizeof(TX));
        uint64_t rowsPerChunk = elems / rowPitch;
        rowsPerChunk = rowsPerChunk == 0U ? 1U : (rowsPerChunk > kMaxBlockCount ? kMaxBlockCount : rowsPerChunk);
        for (uint64_t r0 = 0; r0 < rows; r0 += rowsPerChunk) {
            const uint64_t nr = aag::MinU(rowsPerChunk, rows - r0);
            for (uint64_t c0 = 0; c0 < g_.Hx; c0 += colChunk) {
                if (item != nullptr && (*item)++ % g_.aivNum != aiv_) {
                    continue;
                }
                CopyItem(src[r0 * g_.Hx + c0], dst[r0 * g_.H + c0], nr, aag::MinU(colChunk, g_.Hx - c0), elems);
            }
        }
    }

    /* shard 1, y2: the rows of a unit of the first column panel go to y2 while the cube reads them (so
     * they come from HBM once); every row of y2 belongs to exactly one such unit */
    __aicore__ inline void CopyUnitRows(const aag::Unit &u)
    {
        if constexpr (Y2_OUT && SHARD == 1U) {
            if (u.n0 == 0U) {
                CopyRows(ASource(u.aSrc)[u.aOff], y2Gm_[u.yRow * g_.H], u.tm);
                CopyDone();
            }
        }
    }

    /* shard 0: the tile's pieces (aag::PieceAt) into y2 or the asm slot, the tp column slices side by side */
    __aicore__ inline void CopyPieces(uint32_t k)
    {
        uint64_t item = 0;  // items (piece, row chunk, column chunk) are dealt round robin
        const uint64_t nseg = aag::NumSegments(g_, k);
        for (uint64_t q = 0; q < nseg; ++q) {
            const aag::Segment sg = aag::SegmentAt(g_, k, q);
            for (uint64_t b = 0; b < aag::PiecesPerSegment(g_); ++b) {
                const aag::Piece pc = aag::PieceAt(g_, epRank_, tpRank_, k, sg, b);
                const GlobalTensor<TX> src = (pc.srcKind == 0U) ? xGm_[pc.srcOff] : wsGm_[ws_.agOff + pc.srcOff];
                if (pc.dstKind == 0U) {
                    if constexpr (Y2_OUT) {
                        CopyRows(src, y2Gm_[pc.dstOff], pc.rows, &item);
                    }
                } else {
                    CopyRows(src, wsGm_[ws_.asmOff + pc.dstOff], pc.rows, &item);
                }
            }
        }
        CopyDone();
    }

    /* ---------------------------------------------------------- UB (AIV) */
    __aicore__ inline void InitUb()
    {
        const uint32_t rowF = g_.epiRows * g_.unitN;  // floats of one epilogue chunk (unitN is 16-aligned)
        if (g_.ring != 0U) {
            pipe_->InitBuffer(inQue_, 2, rowF * 4U);
            pipe_->InitBuffer(outQue_, 2, rowF * static_cast<uint32_t>(sizeof(TX)));
            if constexpr (Y3_OUT) {
                pipe_->InitBuffer(out3Que_, 2, rowF * static_cast<uint32_t>(sizeof(TX)));
            }
            pipe_->InitBuffer(actBuf_, rowF * 4U);
            if constexpr (kVecBias) {
                pipe_->InitBuffer(biasRawBuf_, g_.unitN * static_cast<uint32_t>(sizeof(TB)));
                pipe_->InitBuffer(biasRowBuf_, g_.unitN * 4U);
                pipe_->InitBuffer(biasRepBuf_, rowF * 4U);
                evBias_ = pipe_->AllocEventID<HardEvent::MTE2_V>();
                evBiasFree_ = pipe_->AllocEventID<HardEvent::V_MTE2>();
            }
            evSlot_ = pipe_->AllocEventID<HardEvent::MTE2_S>();
        }
        if (Y2_OUT || SHARD == 0U) {
            pipe_->InitBuffer(copyBuf_, 2U * td_->copyUbBytes);
            evFull_[0] = pipe_->AllocEventID<HardEvent::MTE2_MTE3>();
            evFull_[1] = pipe_->AllocEventID<HardEvent::MTE2_MTE3>();
            evFree_[0] = pipe_->AllocEventID<HardEvent::MTE3_MTE2>();
            evFree_[1] = pipe_->AllocEventID<HardEvent::MTE3_MTE2>();
        }
    }

    __aicore__ inline void ReleaseEvents()
    {
        if constexpr (kVecBias) {
            if (biasLoaded_) {
                WaitFlag<HardEvent::V_MTE2>(evBiasFree_);  // the last SetFlag of LoadVecBias
            }
        }
    }

    static constexpr uint64_t kMaxBlockCount = 4095U;  // DataCopyPad blockCount

    const AagBmmTilingData *td_ = nullptr;
    GM_ADDR xAddr_ = nullptr;
    aag::Geom g_{};
    aag::WsLayout ws_{};
    TPipe *pipe_ = nullptr;
    TQue<TPosition::VECIN, 2> inQue_;
    TQue<TPosition::VECOUT, 2> outQue_;
    TQue<TPosition::VECOUT, 2> out3Que_;
    TBuf<TPosition::VECCALC> actBuf_;
    TBuf<TPosition::VECCALC> biasRawBuf_;
    TBuf<TPosition::VECCALC> biasRowBuf_;
    TBuf<TPosition::VECCALC> biasRepBuf_;
    TBuf<TPosition::VECCALC> copyBuf_;
    GM_ADDR wsBase_ = nullptr;
    GlobalTensor<TX> xGm_, wGm_, y1Gm_, y2Gm_, y3Gm_, wsGm_;
    GlobalTensor<TB> biasGm_;
    GlobalTensor<float> ringGm_;
    Hccl<HCCL_SERVER_TYPE_AICPU> hcclEp_;
    Hccl<HCCL_SERVER_TYPE_AICPU> hcclTp_;
    HcclHandle a2a_[aag::kMaxTiles];
    HcclHandle ag_[aag::kMaxTiles];
    uint32_t epRank_ = 0;
    uint32_t tpRank_ = 0;
    uint64_t aiv_ = 0;
    uint64_t base_ = 0;                 // global position of the next unit (units are dealt round robin)
    uint32_t copyItems_ = 0;            // copy items since the last CopyDone
    aag::Unit pend_{};                  // the unit in flight
    uint32_t pendSlot_ = 0;
    bool pending_ = false;
    bool slotRead_[2] = {false, false};
    bool biasLoaded_ = false;
    int32_t evSlot_ = 0;
    int32_t evBias_ = 0;
    int32_t evBiasFree_ = 0;
    int32_t evFull_[2] = {0, 0};
    int32_t evFree_[2] = {0, 0};
};

}  // namespace aag_kernel

#endif  // MOE_MC2_AAG_BMM_KERNEL_H
