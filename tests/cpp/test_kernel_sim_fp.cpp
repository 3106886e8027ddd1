// The CPU model's 16-bit floats (kernel_sim/include/kernel_sim/sim_fp.h): every round mode of the
// documented float -> half / bfloat16_t Cast, saturation, subnormals, and round-to-nearest-even
// against the compiler's own _Float16 conversion.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "kernel_sim/sim_fp.h"

using aag_sim::Rounding;

namespace {

float H(uint16_t b) { return aag_sim::HalfBitsToFloat(b); }
float B(uint16_t b) { return aag_sim::Bf16BitsToFloat(b); }

}  // namespace

TEST(KernelSimFp, DocumentedHalfExample)
{
    // 0.5 + 2^-12 -> half: RINT / FLOOR / TRUNC give 0.5, CEIL / ROUND / ODD give 0.5 + 2^-11
    const float v = 0.5f + std::ldexp(1.0f, -12);
    const float lo = 0.5f, hi = 0.5f + std::ldexp(1.0f, -11);
    EXPECT_EQ(H(aag_sim::FloatToHalfBits(v, Rounding::kRint)), lo);
    EXPECT_EQ(H(aag_sim::FloatToHalfBits(v, Rounding::kFloor)), lo);
    EXPECT_EQ(H(aag_sim::FloatToHalfBits(v, Rounding::kTrunc)), lo);
    EXPECT_EQ(H(aag_sim::FloatToHalfBits(v, Rounding::kCeil)), hi);
    EXPECT_EQ(H(aag_sim::FloatToHalfBits(v, Rounding::kRound)), hi);
    EXPECT_EQ(H(aag_sim::FloatToHalfBits(v, Rounding::kOdd)), hi);
    EXPECT_EQ(H(aag_sim::FloatToHalfBits(v, Rounding::kNone)), lo);  // NONE = RINT when precision is lost
}

TEST(KernelSimFp, DocumentedBf16Example)
{
    // 0.5 + 2^-9 + 2^-11 -> bfloat16: RINT / CEIL / ROUND give 0.5 + 2^-8, FLOOR / TRUNC give 0.5
    const float v = 0.5f + std::ldexp(1.0f, -9) + std::ldexp(1.0f, -11);
    const float lo = 0.5f, hi = 0.5f + std::ldexp(1.0f, -8);
    EXPECT_EQ(B(aag_sim::FloatToBf16Bits(v, Rounding::kRint)), hi);
    EXPECT_EQ(B(aag_sim::FloatToBf16Bits(v, Rounding::kCeil)), hi);
    EXPECT_EQ(B(aag_sim::FloatToBf16Bits(v, Rounding::kRound)), hi);
    EXPECT_EQ(B(aag_sim::FloatToBf16Bits(v, Rounding::kFloor)), lo);
    EXPECT_EQ(B(aag_sim::FloatToBf16Bits(v, Rounding::kTrunc)), lo);
}

TEST(KernelSimFp, NegativeDirectedModes)
{
    const float v = -(1.0f + std::ldexp(1.0f, -12));
    EXPECT_EQ(H(aag_sim::FloatToHalfBits(v, Rounding::kFloor)), -(1.0f + std::ldexp(1.0f, -10)));
    EXPECT_EQ(H(aag_sim::FloatToHalfBits(v, Rounding::kCeil)), -1.0f);
    EXPECT_EQ(H(aag_sim::FloatToHalfBits(v, Rounding::kTrunc)), -1.0f);
}

TEST(KernelSimFp, SaturatesAndKeepsNan)
{
    EXPECT_EQ(H(aag_sim::FloatToHalfBits(1e6f)), 65504.0f);
    EXPECT_EQ(H(aag_sim::FloatToHalfBits(-INFINITY)), -65504.0f);
    EXPECT_TRUE(std::isnan(H(aag_sim::FloatToHalfBits(NAN))));
    EXPECT_TRUE(std::isnan(B(aag_sim::FloatToBf16Bits(NAN))));
    EXPECT_EQ(B(aag_sim::FloatToBf16Bits(3.4e38f)), B(0x7F7F));
}

TEST(KernelSimFp, SubnormalsAndTies)
{
    EXPECT_EQ(H(aag_sim::FloatToHalfBits(std::ldexp(1.0f, -24))), std::ldexp(1.0f, -24));
    EXPECT_EQ(H(aag_sim::FloatToHalfBits(std::ldexp(1.0f, -25))), 0.0f);             // tie -> even (0)
    EXPECT_EQ(H(aag_sim::FloatToHalfBits(3.0f * std::ldexp(1.0f, -25))), std::ldexp(1.0f, -23));
    EXPECT_EQ(H(aag_sim::FloatToHalfBits(1.0f + std::ldexp(1.0f, -11))), 1.0f);     // tie -> even
    EXPECT_EQ(H(aag_sim::FloatToHalfBits(1.0f + 3 * std::ldexp(1.0f, -11))), 1.0f + std::ldexp(1.0f, -9));
}

#if defined(__FLT16_MAX__)
TEST(KernelSimFp, RintMatchesTheCompilersHalfConversion)
{
    std::mt19937 rng(7);
    std::uniform_int_distribution<uint32_t> bits;
    int checked = 0;
    for (int n = 0; n < 200000; ++n) {
        uint32_t u = bits(rng);
        float f;
        std::memcpy(&f, &u, 4);
        if (!std::isfinite(f) || std::fabs(f) > 65504.0f) continue;
        _Float16 h = static_cast<_Float16>(f);
        uint16_t want;
        std::memcpy(&want, &h, 2);
        ASSERT_EQ(aag_sim::FloatToHalfBits(f, Rounding::kRint), want) << f;
        ++checked;
    }
    EXPECT_GT(checked, 10000);
}
#endif

TEST(KernelSimFp, Bf16RintMatchesBitRounding)
{
    std::mt19937 rng(11);
    std::uniform_int_distribution<uint32_t> bits;
    for (int n = 0; n < 200000; ++n) {
        uint32_t u = bits(rng);
        float f;
        std::memcpy(&f, &u, 4);
        if (!std::isfinite(f) || std::fabs(f) > 3.38e38f) continue;
        const uint32_t lsb = (u >> 16) & 1U;
        const uint16_t want = static_cast<uint16_t>((u + 0x7FFFU + lsb) >> 16);  // round to nearest even
        ASSERT_EQ(aag_sim::FloatToBf16Bits(f, Rounding::kRint), want) << f;
    }
}
