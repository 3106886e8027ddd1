// The tile planner's cost model, its choices and the workspace/tiling-key helpers.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "aag_bmm_planner.h"

using moe_mc2::Args;

TEST(Planner, RecurrenceAndBounds)
{
    for (int shard = 0; shard <= 1; ++shard) {
        Args a = moe_mc2::ArgsFor(4, 2, shard, 16, 282, 12288, 12288);
        ASSERT_TRUE(moe_mc2::Validate(a).ok());
        moe_mc2::Plan p = moe_mc2::PlanTiles(a);
        ASSERT_EQ(p.tiles.size(), aag::NumTiles(p.g));
        double commEnd = 0, compEnd = 0, sumComm = 0, sumComp = 0;
        for (size_t k = 0; k < p.tiles.size(); ++k) {
            commEnd += p.tiles[k].comm;
            compEnd = std::max(compEnd, commEnd) + p.tiles[k].comp;
            EXPECT_DOUBLE_EQ(p.tiles[k].commEnd, commEnd);
            EXPECT_DOUBLE_EQ(p.tiles[k].compEnd, compEnd);
            sumComm += p.tiles[k].comm;
            sumComp += p.tiles[k].comp;
        }
        if (shard == 1) EXPECT_EQ(p.tiles[0].comm, 0.0) << "the local block needs no network in shard 1";
        EXPECT_DOUBLE_EQ(p.makespan, compEnd);
        EXPECT_NEAR(p.noOverlap, sumComm + sumComp, 1e-12);
        EXPECT_LE(p.makespan, p.noOverlap);
        EXPECT_GE(p.makespan, sumComp);
        EXPECT_GE(p.makespan, sumComm);
        EXPECT_LE(aag::NumRemoteTiles(p.g), aag::kMaxRemoteTiles);
        EXPECT_GT(p.candidates, 1U);
    }
}

TEST(Planner, SeedShapeOverlapsCommunication)
{
    Args a = moe_mc2::ArgsFor(4, 2, 1, 4, 1024, 1024, 8192);
    moe_mc2::Plan p = moe_mc2::PlanTiles(a);
    // compute-bound: the local block hides part of the exchange
    EXPECT_LT(p.makespan, p.noOverlap);
    moe_mc2::Plan one = moe_mc2::Evaluate(moe_mc2::MakeGeom(a, 1, a.x[1]), 2);
    EXPECT_LE(p.makespan, one.makespan);
}

TEST(Planner, BalancedShapeIsPipelined)
{
    // comm ~ compute: several remote tiles must beat one, by a wide margin
    Args a = moe_mc2::ArgsFor(4, 2, 1, 8, 2048, 4096, 2048);
    moe_mc2::Plan p = moe_mc2::PlanTiles(a);
    EXPECT_GT(aag::NumRemoteTiles(p.g), 2U);
    moe_mc2::Plan one = moe_mc2::Evaluate(moe_mc2::MakeGeom(a, 2, a.x[1]), 2);
    EXPECT_LT(p.makespan, 0.8 * one.makespan);
    EXPECT_LT(p.makespan, 0.7 * p.noOverlap);
}

TEST(Planner, PlannerIsTheMinimumOverLegalShapes)
{
    Args a = moe_mc2::ArgsFor(2, 2, 0, 8, 64, 256, 512);
    moe_mc2::Dims d = moe_mc2::DeriveDims(a);
    moe_mc2::Plan p = moe_mc2::PlanTiles(a);
    for (int64_t e = 1; e <= d.El; ++e) {
        if (!moe_mc2::TileShapeLegal(d, e, d.Rx)) continue;
        EXPECT_LE(p.makespan, moe_mc2::Evaluate(moe_mc2::MakeGeom(a, e, d.Rx), 2).makespan * (1 + 1e-9));
    }
}

TEST(Planner, ClosedFormsMatchTheEnumeratedBlocks)
{
    // the planner prices copies and matmuls with closed forms; they must equal
    // what aag::CopyBlockAt / aag::RunAt enumerate for every rank
    for (int shard = 0; shard <= 1; ++shard) {
        Args a = moe_mc2::ArgsFor(4, 2, shard, 12, 10, 8, 6);
        moe_mc2::Dims d = moe_mc2::DeriveDims(a);
        for (int64_t e = 1; e <= d.El; ++e)
            for (int64_t c = 1; c <= d.Rx; ++c) {
                if (!moe_mc2::TileShapeLegal(d, e, c)) continue;
                aag::Geom g = moe_mc2::MakeGeom(a, e, c);
                for (uint32_t k = 0; k < aag::NumTiles(g); ++k) {
                    aag::TileRange tr = aag::Tile(g, k);
                    for (uint64_t i = 0; i < g.ep; ++i)
                        for (uint64_t t = 0; t < g.tp; ++t) {
                            uint64_t rows = 0, runRows = 0;
                            for (uint64_t b = 0; b < aag::NumCopyBlocks(g, k); ++b) {
                                aag::CopyBlock cb = aag::CopyBlockAt(g, i, t, k, b);
                                if (!cb.skip) rows += cb.rows;
                            }
                            for (uint64_t r = 0; r < aag::NumRuns(g, k); ++r) {
                                aag::Run run = aag::RunAt(g, i, t, k, r);
                                EXPECT_EQ(run.rows, tr.cL);
                                runRows += run.rows;
                            }
                            EXPECT_EQ(rows * g.Hx, runRows * g.H) << "every assembled element is multiplied once";
                            EXPECT_EQ(runRows, aag::NumRuns(g, k) * tr.cL);
                        }
                }
            }
    }
}

TEST(Planner, WorkspaceRegionsAreDisjointAndHoldEveryTile)
{
    for (int shard = 0; shard <= 1; ++shard)
        for (int y2 = 0; y2 <= 1; ++y2) {
            Args a = moe_mc2::ArgsFor(4, 4, shard, 8, 12, 16, 8);
            a.y2Flag = y2;
            moe_mc2::Dims d = moe_mc2::DeriveDims(a);
            for (int64_t c : {(d.Rx + 1) / 2, (d.Rx + 2) / 3, d.Rx}) {
                int64_t e = (c == d.Rx) ? 2 : 1;
                ASSERT_TRUE(moe_mc2::TileShapeLegal(d, e, c));
                aag::Geom g = moe_mc2::MakeGeom(a, e, c);
                aag::WsLayout w = aag::Workspace(g, 2);
                EXPECT_LE(w.a2aOff + w.a2aElems, w.agOff);
                EXPECT_LE(w.agOff + w.agElems, w.localAgOff);
                EXPECT_LE(w.localAgOff + w.localAgElems, w.y2Off);
                EXPECT_LE((w.y2Off + w.y2Elems) * 2, w.accOffBytes);
                EXPECT_EQ(w.accOffBytes % 32, 0U);
                EXPECT_LE(w.accOffBytes + w.accElems * 4, w.totalBytes);
                EXPECT_EQ(w.y2Elems == 0, y2 == 1);
                uint64_t prevA = 0, prevG = 0;
                for (uint32_t k = 1; k < aag::NumTiles(g); ++k) {
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
