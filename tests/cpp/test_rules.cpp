// The C++ validator and shape inference against the shared test vectors.
#include <gtest/gtest.h>

#include <set>

#include "aag_bmm_rules.h"
#include "vectors_io.h"

using moe_mc2::Args;
using moe_mc2::Validate;
using moe_mc2_test::ArgsFromCase;
using moe_mc2_test::LoadVectors;

namespace {

const std::vector<std::string> kRuleOrder = {
    "shard_type.value", "act_type.value", "ep.world_size", "tp.world_size", "group.name",
    "group.distinct",   "x.rank",         "x.dtype",       "weight.rank",   "weight.dtype",
    "E.range",          "E.multiple",     "weight.experts", "H.range",      "weight.hidden",
    "N.range",          "C.positive",     "bias.rank",     "bias.shape",    "bias.dtype"};

}  // namespace

TEST(Vectors, FilesHaveTheFixedSchema)
{
    for (const char *f : {"forward_valid.json", "forward_invalid.json"}) {
        auto j = LoadVectors(f);
        EXPECT_EQ(j.at("op").get<std::string>(), "AlltoAllAllGatherBatchMatMul");
        ASSERT_TRUE(j.at("cases").is_array());
        std::set<std::string> names;
        for (const auto &c : j.at("cases")) {
            EXPECT_TRUE(names.insert(c.at("name").get<std::string>()).second) << "duplicate " << c.at("name");
            for (const char *k : {"ep", "tp", "shard_type", "act_type", "x", "weight", "transpose_weight", "bias",
                                  "dtype", "bias_dtype", "y2_flag", "y3_flag", "group_ep", "group_tp", "npu"}) {
                EXPECT_TRUE(c.contains(k)) << f << ":" << c.at("name") << " lacks " << k;
            }
        }
    }
}

TEST(Vectors, ValidCasesAreAcceptedWithTheExpectedShapes)
{
    auto j = LoadVectors("forward_valid.json");
    int npuCases = 0;
    for (const auto &c : j.at("cases")) {
        const std::string name = c.at("name").get<std::string>();
        Args a = ArgsFromCase(c);
        auto portable = Validate(a, /*portable=*/true);
        ASSERT_TRUE(portable.ok()) << name << ": " << portable.message;
        auto shapes = moe_mc2::InferShapes(a);
        EXPECT_EQ(shapes.y1, moe_mc2_test::Dims(c.at("expect").at("y1"))) << name;
        EXPECT_EQ(shapes.y2, moe_mc2_test::Dims(c.at("expect").at("y2"))) << name;
        EXPECT_EQ(shapes.y3, moe_mc2_test::Dims(c.at("expect").at("y3"))) << name;
        auto npu = Validate(a, /*portable=*/false);
        if (c.at("npu").get<bool>()) {
            ++npuCases;
            EXPECT_TRUE(npu.ok()) << name << ": " << npu.message;
        } else {  // portable-only: the rule the NPU refuses it with (float32 x unless the case says)
            EXPECT_EQ(npu.rule, c.value("npu_rule", std::string("x.dtype"))) << name;
            EXPECT_EQ(npu.arg, c.value("npu_arg", std::string("x"))) << name;
            EXPECT_EQ(npu.error, c.value("npu_error", std::string("TypeError"))) << name;
            EXPECT_NE(npu.message.find("on the NPU"), std::string::npos) << name << ": " << npu.message;
        }
    }
    EXPECT_GE(npuCases, 30);
}

TEST(Vectors, InvalidCasesFailWithTheListedRuleArgAndError)
{
    auto j = LoadVectors("forward_invalid.json");
    std::set<std::string> seen;
    for (const auto &c : j.at("cases")) {
        const std::string name = c.at("name").get<std::string>();
        Args a = ArgsFromCase(c);
        for (bool portable : {false, true}) {
            auto r = Validate(a, portable);
            EXPECT_EQ(r.rule, c.at("rule").get<std::string>()) << name << " portable=" << portable << " " << r.message;
            EXPECT_EQ(r.arg, c.at("arg").get<std::string>()) << name;
            EXPECT_EQ(r.error, c.at("error").get<std::string>()) << name;
            EXPECT_NE(r.message.find(r.arg), std::string::npos) << name;
        }
        seen.insert(c.at("rule").get<std::string>());
    }
    for (const auto &rule : kRuleOrder) {
        EXPECT_TRUE(seen.count(rule)) << "no invalid vector covers rule " << rule;
    }
}

TEST(Rules, FirstFailingRuleWins)
{
    Args a;
    a.x = {4, 3};             // x.rank broken
    a.weight = {1};           // weight.rank broken too
    a.ep = 3;                 // ep.world_size broken, earlier
    a.tp = 2;
    a.groupEp = "a";
    a.groupTp = "b";
    EXPECT_EQ(Validate(a).rule, "ep.world_size");
    a.ep = 1;  // a group of 1: the portable runtime only
    EXPECT_EQ(Validate(a, /*portable=*/false).rule, "ep.world_size");
    EXPECT_EQ(Validate(a, /*portable=*/true).rule, "x.rank");
    a.ep = 2;
    EXPECT_EQ(Validate(a).rule, "x.rank");
    a.shardType = 7;
    EXPECT_EQ(Validate(a).rule, "shard_type.value");
}

TEST(Rules, ShardZeroScalesHByTp)
{
    Args a;
    a.x = {4, 2, 8};
    a.weight = {2, 32, 4};
    a.ep = 2;
    a.tp = 4;
    a.shardType = 0;
    a.groupEp = "ep";
    a.groupTp = "tp";
    EXPECT_TRUE(Validate(a).ok());
    auto s = moe_mc2::InferShapes(a);
    EXPECT_EQ(s.y1, (std::vector<int64_t>{2, 4, 4}));
    a.y2Flag = true;
    EXPECT_EQ(moe_mc2::InferShapes(a).y2, (std::vector<int64_t>{2, 4, 32}));
    a.shardType = 1;
    EXPECT_EQ(Validate(a).rule, "weight.hidden");
}

TEST(Rules, Y3NeedsAnActivation)
{
    Args a;
    a.x = {2, 2, 4};
    a.weight = {1, 4, 3};
    a.ep = 2;
    a.tp = 2;
    a.shardType = 1;
    a.groupEp = "ep";
    a.groupTp = "tp";
    a.y3Flag = true;
    EXPECT_EQ(moe_mc2::InferShapes(a).y3, (std::vector<int64_t>{0, 0, 0}));
    a.actType = 3;
    EXPECT_EQ(moe_mc2::InferShapes(a).y3, (std::vector<int64_t>{1, 8, 3}));
}
