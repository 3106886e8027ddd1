// The cost model and the tile planner (op_host/core/aag_bmm_planner.*): its timeline obeys the schedule's
// dependencies, its counts equal what the kernel's unit enumeration (aag_bmm_offsets.h) gives, the bound
// holds, the planner never picks a plan worse than one tile, and the workspace / key helpers.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "aag_bmm_planner.h"

using moe_mc2::Args;

namespace {

Args Seed(int64_t act = 1, bool bias = true)
{
    Args a = moe_mc2::ArgsFor(4, 2, 1, 16, 1024, 1024, 8192);
    a.actType = act;
    if (bias) {
        a.hasBias = true;
        a.bias = {4, 1, 4096};
        a.biasDtype = moe_mc2::DType::kFloat16;
    }
    return a;
}

std::vector<Args> Shapes()
{
    std::vector<Args> out;
    for (int shard = 0; shard <= 1; ++shard)
        for (int act : {0, 1}) {
            Args a = moe_mc2::ArgsFor(4, 2, shard, 8, 64, 256, 512);
            a.actType = act;
            a.y2Flag = act == 0;
            a.y3Flag = true;
            out.push_back(a);
            Args b = moe_mc2::ArgsFor(2, 2, shard, 6, 10, 40, 76);
            b.actType = act;
            b.hasBias = true;
            b.bias = {3, 38};
            out.push_back(b);
        }
    out.push_back(Seed(0, false));
    out.push_back(Seed(1, true));
    return out;
}

}  // namespace

TEST(CostModel, TimelineFollowsTheScheduleDependencies)
{
    const moe_mc2::CostConstants cc;
    for (const Args &a : Shapes()) {
        ASSERT_TRUE(moe_mc2::Validate(a).ok());
        const moe_mc2::Machine m;
        const moe_mc2::Plan p = moe_mc2::PlanTiles(a, m);
        const moe_mc2::Prediction &pr = p.pred;
        ASSERT_EQ(pr.tiles.size(), p.g.nTiles);
        double prevA2a = 0, prevAg = 0;
        for (size_t k = 0; k < pr.tiles.size(); ++k) {
            const auto &t = pr.tiles[k];
            EXPECT_GE(t.a2aStart, prevA2a);                      // the ep stream runs in order
            EXPECT_GE(t.agStart, std::max(prevAg, t.a2aEnd));    // InterHcclGroupSync, tp stream in order
            EXPECT_GE(t.a2aEnd - t.a2aStart, cc.collectiveLatencySec);
            EXPECT_GE(t.agEnd - t.agStart, cc.collectiveLatencySec);
            EXPECT_GE(t.farStart, t.agEnd);                      // the far rows wait for the tile's AllGather
            EXPECT_LE(t.farEnd, pr.makespan);
            if (p.g.splitPeer != 0U && p.g.ep > 1U) {
                EXPECT_GE(t.peerStart, t.a2aEnd);                // the peer rows wait for the tile's AlltoAllV
                EXPECT_LE(t.peerEnd, pr.makespan);
            }
            prevA2a = t.a2aEnd;
            prevAg = t.agEnd;
        }
        EXPECT_DOUBLE_EQ(pr.commTotal, prevAg);
        EXPECT_GE(pr.makespan, pr.bound * (1 - 1e-12));
        EXPECT_GE(pr.makespan, pr.commTotal);
        EXPECT_GE(pr.commTotal, pr.commIdeal * (1 - 1e-12));
        EXPECT_DOUBLE_EQ(pr.bound, std::max(pr.commIdeal, pr.computeIdeal));
    }
}

TEST(CostModel, CountsEqualTheKernelsUnitEnumeration)
{
    // the model prices units with closed forms; they must equal what aag::PhaseUnit enumerates
    for (const Args &a0 : Shapes()) {
        for (uint32_t unit : {16U, 48U}) {
            Args a = a0;
            moe_mc2::Machine m;
            m.aicNum = 3;
            m.aivNum = 6;
            m.unitM = unit;
            m.unitN = unit;
            const moe_mc2::Dims d = moe_mc2::DeriveDims(a);
            const uint64_t total = static_cast<uint64_t>(d.El * d.Rx);
            const std::vector<uint64_t> ends{std::max<uint64_t>(1U, total / 3U), total - total / 4U, total};
            const aag::Geom g = moe_mc2::MakeGeom(a, ends, m);
            const moe_mc2::Prediction pr = moe_mc2::Evaluate(a, g, m);
            uint64_t units = 0;
            double flops = 0;
            uint64_t gmB = 0;
            for (uint32_t k = 0; k < g.nTiles; ++k)
                for (uint64_t q = 0; q < aag::NumSegments(g, k); ++q) {
                    const aag::Segment sg = aag::SegmentAt(g, k, q);
                    auto count = [&](const aag::Unit &u) {
                        ++units;
                        flops += 2.0 * u.tm * u.tn * g.H;
                        gmB += g.H * u.tn * 2U;
                    };
                    for (uint32_t ph : {aag::kOwnRows, aag::kPeerRows, aag::kFarRows})
                        for (uint64_t u = 0; u < aag::PhaseUnitsOfSegment(g, ph, sg.cL); ++u)
                            count(aag::PhaseUnit(g, 0, 0, k, sg, ph, u));
                }
            EXPECT_EQ(pr.matmulCalls, units);
            EXPECT_DOUBLE_EQ(pr.cubeFlopsExact, flops);
            const uint64_t rows = g.El * g.ep * g.C;
            EXPECT_DOUBLE_EQ(pr.cubeFlopsExact, 2.0 * rows * g.H * g.N);  // every output row multiplied once
            EXPECT_GE(pr.bytes.gmData + pr.bytes.gmWorkspace, gmB);
            EXPECT_EQ(pr.collectives, 2U * g.nTiles);
        }
    }
}

TEST(CostModel, HbmAtLeastTheFloorAndTheFloorIsTheDefinition)
{
    for (const Args &a : Shapes()) {
        const moe_mc2::Plan p = moe_mc2::PlanTiles(a, moe_mc2::Machine{});
        const moe_mc2::Dims d = moe_mc2::DeriveDims(a);
        const uint64_t rows = static_cast<uint64_t>(d.El * d.ep * d.C);
        EXPECT_EQ(p.pred.hbmFloor, (rows * d.H + d.El * d.H * d.N + rows * d.N) * 2U);
        EXPECT_GE(p.pred.bytes.HbmData() + 4096U, p.pred.hbmFloor);
    }
}

TEST(Planner, NeverWorseThanOneTile)
{
    std::mt19937_64 rng(11);
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    for (int n = 0; n < 40; ++n) {
        const int64_t ep = pick(0, 1) ? 2 : 4, tp = pick(0, 1) ? 2 : 4;
        const int64_t shard = pick(0, 1);
        Args a = moe_mc2::ArgsFor(ep, tp, shard, ep * pick(1, 4), tp * pick(1, 64), tp * 16 * pick(1, 32),
                                  tp * 16 * pick(1, 64));
        a.actType = pick(0, 4);
        ASSERT_TRUE(moe_mc2::Validate(a).ok());
        moe_mc2::Machine m;
        m.aicNum = static_cast<uint32_t>(pick(1, 24));
        m.aivNum = 2U * m.aicNum;
        const moe_mc2::Plan p = moe_mc2::PlanTiles(a, m);
        const moe_mc2::Dims d = moe_mc2::DeriveDims(a);
        const moe_mc2::Prediction one =
            moe_mc2::Evaluate(a, moe_mc2::MakeGeom(a, {static_cast<uint64_t>(d.El * d.Rx)}, m), m);
        EXPECT_LE(p.pred.makespan, one.makespan * (1 + 1e-9)) << "shape " << n;
        EXPECT_GT(p.candidates, 1U);
        EXPECT_LE(p.g.nTiles, aag::kMaxTiles);
    }
}

TEST(Planner, SeedIsPipelined)
{
    const moe_mc2::Plan p = moe_mc2::PlanTiles(Seed(), moe_mc2::Machine{});
    EXPECT_GT(p.g.nTiles, 1U);
    EXPECT_EQ(p.g.ring, 1U);        // GELU: the fp32 ring and the epilogue
    EXPECT_EQ(p.g.biasInCube, 1U);  // an fp16 bias goes through the matmul
    const moe_mc2::Plan none = moe_mc2::PlanTiles(Seed(0, false), moe_mc2::Machine{});
    EXPECT_EQ(none.g.ring, 0U);     // act None: y1 straight from the matmul
}

TEST(Planner, TilesRespectHcclsWindow)
{
    moe_mc2::CostConstants cc;
    cc.hcclMaxBytesPerCall = 4ULL << 20;  // a small window forces several tiles
    const Args a = Seed(0, false);
    const moe_mc2::Plan p = moe_mc2::PlanTiles(a, moe_mc2::Machine{}, cc);
    for (uint32_t k = 0; k < p.g.nTiles; ++k) {
        EXPECT_LE(static_cast<uint64_t>(p.g.tp) * p.g.ep * aag::TileCells(p.g, k) * p.g.Hx * 2U, cc.hcclMaxBytesPerCall);
    }
}

TEST(Reference, AtMostFiveTilesAlongExperts)
{
    const moe_mc2::Prediction r = moe_mc2::EvaluateReference(Seed(), moe_mc2::Machine{});
    EXPECT_LE(r.tiles.size(), 5U);
    EXPECT_GE(r.tiles.size(), 2U);
    EXPECT_EQ(r.schedule, "CANN reference");
    EXPECT_DOUBLE_EQ(r.cubeFlopsExact, 2.0 * 4 * 4096 * 1024 * 4096);
    const moe_mc2::Prediction l = moe_mc2::EvaluateLegacy(Seed(), moe_mc2::Machine{}, 2, 512);
    EXPECT_EQ(l.tiles.size(), 3U);  // local block + 2 remote tiles of 2 experts
    EXPECT_DOUBLE_EQ(l.cubeFlopsExact, r.cubeFlopsExact);
}

TEST(Planner, WorkspaceRegionsAreDisjointAndHoldEveryTile)
{
    for (int shard = 0; shard <= 1; ++shard)
        for (int y2 = 0; y2 <= 1; ++y2)
            for (int act = 0; act <= 1; ++act) {
                Args a = moe_mc2::ArgsFor(4, 4, shard, 8, 12, 16, 8);
                a.y2Flag = y2;
                a.actType = act;
                const moe_mc2::Dims d = moe_mc2::DeriveDims(a);
                const uint64_t total = static_cast<uint64_t>(d.El * d.Rx);
                moe_mc2::Machine m;
                m.aicNum = 2;
                m.aivNum = 4;
                const aag::Geom g = moe_mc2::MakeGeom(a, {total / 3U, total / 2U, total}, m);
                const aag::WsLayout w = aag::Workspace(g, 2);
                EXPECT_LE(w.a2aOff + w.a2aElems, w.agOff);
                EXPECT_LE(w.agOff + w.agElems, w.asmOff);
                EXPECT_LE((w.asmOff + w.asmElems) * 2U, w.ringOffBytes);
                EXPECT_EQ(w.ringOffBytes % 32U, 0U);
                EXPECT_LE(w.ringOffBytes + w.ringFloats * 4U, w.totalBytes);
                EXPECT_EQ(w.asmElems == 0U, shard == 1 || y2 == 1);
                EXPECT_EQ(w.ringFloats == 0U, act == 0);
                EXPECT_EQ(w.ringFloats, act ? 4U * 2U * g.unitM * g.unitN : 0U);
                uint64_t prevA = 0, prevG = 0;
                for (uint32_t k = 0; k < g.nTiles; ++k) {
                    EXPECT_EQ(aag::A2ATileOff(g, k), prevA);
                    EXPECT_EQ(aag::AGTileOff(g, k), prevG);
                    prevA += aag::A2ATileElems(g, k);
                    prevG += g.tp * aag::AGSendCount(g, k);
                }
                EXPECT_EQ(prevA, w.a2aElems);
                EXPECT_EQ(prevG, w.agElems);
                EXPECT_EQ(moe_mc2::WorkspaceBytes(g, 2), w.totalBytes);
            }
}

TEST(Planner, UnitsAreDealtToEveryCubeCoreFirst)
{
    // consecutive units go to different cube cores before a cube core gets its second
    const uint64_t aiv = 8;
    std::set<uint64_t> cubes;
    for (uint64_t p = 0; p < aiv / 2U; ++p) {
        for (uint64_t a = 0; a < aiv; ++a) {
            if (aag::FirstMine(0, a, aiv) == p) cubes.insert(a / 2U);
        }
    }
    EXPECT_EQ(cubes.size(), aiv / 2U);
    std::set<uint64_t> seats;
    for (uint64_t a = 0; a < aiv; ++a) seats.insert(aag::SeatOf(a, aiv));
    EXPECT_EQ(seats.size(), aiv);
}

TEST(Planner, TilingKeysAreDistinct)
{
    std::set<uint64_t> keys;
    for (uint32_t s = 0; s < 2; ++s)
        for (uint32_t tw = 0; tw < 2; ++tw)
            for (uint32_t b = 0; b < 2; ++b)
                for (uint32_t y2 = 0; y2 < 2; ++y2)
                    for (uint32_t y3 = 0; y3 < 2; ++y3) keys.insert(aag::TilingKey(s, tw, b, y2, y3));
    EXPECT_EQ(keys.size(), 32U);
    Args a = moe_mc2::ArgsFor(2, 2, 1, 4, 4, 4, 4);
    a.y3Flag = true;  // no activation: y3 is not produced, so not in the key
    EXPECT_EQ(moe_mc2::TilingKeyOf(a), aag::TilingKey(1, 0, 0, 0, 0));
    a.actType = 2;
    a.transposeWeight = true;
    EXPECT_EQ(moe_mc2::TilingKeyOf(a), aag::TilingKey(1, 1, 0, 0, 1));
}

TEST(KernelOrder, EveryPhaseOfEveryTileOnceAndEachClientsWaitsInPrepareOrder)
{
    // aag::NextStep is the order the kernel, the twin and the model walk; the kernel Waits for tile k's
    // AlltoAllV before its peer rows and for its AllGather before its far rows, and HCCL requires each
    // client's Waits in the order of its Prepares: the peer steps, and the far steps, must go by tile
    for (const Args &a : Shapes()) {
        for (uint32_t nt : {1U, 2U, 5U}) {
            for (int32_t own : {0, 1, 2, 9}) {
                for (int32_t peer : {-1, 0, 1, 3, 9}) {  // -1: no peer phase
                    moe_mc2::Machine m;
                    m.ownAhead = own;
                    m.peerAhead = peer;
                    const moe_mc2::Dims d = moe_mc2::DeriveDims(a);
                    const uint64_t total = static_cast<uint64_t>(d.El * d.Rx);
                    if (total < nt) continue;
                    std::vector<uint64_t> ends;
                    for (uint32_t k = 1; k <= nt; ++k) ends.push_back(total * k / nt);
                    const aag::Geom g = moe_mc2::MakeGeom(a, ends, m);
                    std::set<std::pair<uint32_t, uint32_t>> seen;
                    int64_t lastPeer = -1, lastFar = -1;
                    aag::StepCursor cur = aag::FirstStep();
                    aag::Step st{};
                    while (aag::NextStep(g, cur, &st)) {
                        ASSERT_LT(st.k, g.nTiles);
                        EXPECT_TRUE(seen.insert({st.k, st.phase}).second) << "step repeated";
                        if (st.phase == aag::kPeerRows) {
                            EXPECT_EQ(static_cast<int64_t>(st.k), lastPeer + 1);
                            lastPeer = st.k;
                            EXPECT_LE(st.k, static_cast<uint32_t>(lastFar + 1) + g.peerAhead);
                        }
                        if (st.phase == aag::kFarRows) {
                            EXPECT_EQ(static_cast<int64_t>(st.k), lastFar + 1);
                            lastFar = st.k;
                            if (g.shard == 1U) {  // the tile's own and peer rows are done before its far rows
                                EXPECT_TRUE(seen.count({st.k, aag::kOwnRows}));
                                EXPECT_EQ(seen.count({st.k, aag::kPeerRows}), g.splitPeer);
                            }
                        }
                    }
                    EXPECT_EQ(g.splitPeer, (g.shard == 1U && peer >= 0) ? 1U : 0U);
                    EXPECT_EQ(seen.size(), g.shard == 1U ? (2U + g.splitPeer) * g.nTiles : g.nTiles);
                }
            }
        }
    }
}
