/*
 * kernel_sim: the two 16-bit floating-point types of the CPU model (`half`,
 * `bfloat16_t`) and the float -> 16-bit conversions with every RoundMode the
 * Ascend C Cast documents for float -> half / bfloat16_t on Atlas A2/A3.
 *
 * Written for this project's CPU model of the Ascend C API; not CANN code.
 * Overflow saturates to the largest finite value (the documented default
 * "saturation mode" of Cast); NaN stays NaN.
 */
#ifndef MOE_MC2_KERNEL_SIM_FP_H
#define MOE_MC2_KERNEL_SIM_FP_H

#include <cmath>
#include <cstdint>
#include <cstring>

namespace aag_sim {

/* the values of AscendC::RoundMode (same order as the documented enum) */
enum class Rounding : int { kNone = 0, kRint, kFloor, kCeil, kRound, kTrunc, kOdd, kHybrid };

struct Fp16Format {
    int mantBits;   // stored mantissa bits
    int emin;       // exponent of the smallest normal
    int emax;       // exponent of the largest finite
    int expBias;
};
constexpr Fp16Format kHalfFmt{10, -14, 15, 15};
constexpr Fp16Format kBf16Fmt{7, -126, 127, 127};

/* rounds |a| (finite, > 0) to an integer multiple of q per mode; neg = sign of the value */
inline double RoundMagnitude(double m, bool neg, Rounding mode)
{
    double fl = std::floor(m);
    double frac = m - fl;
    switch (mode) {
        case Rounding::kFloor: return neg ? (frac > 0 ? fl + 1 : fl) : fl;   // toward -inf
        case Rounding::kCeil: return neg ? fl : (frac > 0 ? fl + 1 : fl);    // toward +inf
        case Rounding::kRound: return frac >= 0.5 ? fl + 1 : fl;             // half away from zero
        case Rounding::kTrunc: return fl;
        case Rounding::kOdd:
            if (frac == 0) return fl;
            return (std::fmod(fl, 2.0) == 0) ? fl + 1 : fl;                  // von Neumann
        case Rounding::kNone:
        case Rounding::kRint:
        case Rounding::kHybrid:
        default:
            if (frac > 0.5) return fl + 1;
            if (frac < 0.5) return fl;
            return (std::fmod(fl, 2.0) == 0) ? fl : fl + 1;                 // ties to even
    }
}

inline uint16_t EncodeSmallFloat(double v, const Fp16Format &f, Rounding mode)
{
    const int totalExpBits = (f.mantBits == 10) ? 5 : 8;
    const uint16_t signBit = 0x8000;
    const uint16_t expMask = static_cast<uint16_t>(((1u << totalExpBits) - 1u) << f.mantBits);
    if (std::isnan(v)) {
        return static_cast<uint16_t>(expMask | (1u << (f.mantBits - 1)));
    }
    const bool neg = std::signbit(v);
    double a = std::fabs(v);
    const double maxFinite = (2.0 - std::ldexp(1.0, -f.mantBits)) * std::ldexp(1.0, f.emax);
    uint16_t sign = neg ? signBit : 0;
    if (a == 0.0) {
        return sign;
    }
    if (std::isinf(a)) {
        a = maxFinite;  // saturation
    }
    int e2 = 0;
    (void)std::frexp(a, &e2);
    int e = e2 - 1;                     // a in [2^e, 2^(e+1))
    if (e < f.emin) e = f.emin;        // subnormal range: fixed quantum
    double q = std::ldexp(1.0, e - f.mantBits);
    double m = RoundMagnitude(a / q, neg, mode);
    double r = m * q;
    if (r > maxFinite) r = maxFinite;  // saturation
    if (r == 0.0) return sign;
    if (r < std::ldexp(1.0, f.emin)) {  // subnormal
        uint16_t mant = static_cast<uint16_t>(r / std::ldexp(1.0, f.emin - f.mantBits));
        return static_cast<uint16_t>(sign | mant);
    }
    (void)std::frexp(r, &e2);
    int re = e2 - 1;
    double frac = r / std::ldexp(1.0, re) - 1.0;
    uint16_t mant = static_cast<uint16_t>(frac * std::ldexp(1.0, f.mantBits) + 0.0);
    uint16_t ex = static_cast<uint16_t>((re + f.expBias) << f.mantBits);
    return static_cast<uint16_t>(sign | ex | mant);
}

inline float DecodeSmallFloat(uint16_t bits, const Fp16Format &f)
{
    const int totalExpBits = (f.mantBits == 10) ? 5 : 8;
    const bool neg = (bits & 0x8000u) != 0;
    const uint32_t ex = (bits >> f.mantBits) & ((1u << totalExpBits) - 1u);
    const uint32_t mant = bits & ((1u << f.mantBits) - 1u);
    double v;
    if (ex == 0) {
        v = std::ldexp(static_cast<double>(mant), f.emin - f.mantBits);
    } else if (ex == (1u << totalExpBits) - 1u) {
        v = mant ? NAN : INFINITY;
    } else {
        v = std::ldexp(1.0 + std::ldexp(static_cast<double>(mant), -f.mantBits), static_cast<int>(ex) - f.expBias);
    }
    return static_cast<float>(neg ? -v : v);
}

inline uint16_t FloatToHalfBits(float v, Rounding mode = Rounding::kRint) { return EncodeSmallFloat(v, kHalfFmt, mode); }
inline uint16_t FloatToBf16Bits(float v, Rounding mode = Rounding::kRint) { return EncodeSmallFloat(v, kBf16Fmt, mode); }
inline float HalfBitsToFloat(uint16_t b) { return DecodeSmallFloat(b, kHalfFmt); }
inline float Bf16BitsToFloat(uint16_t b)
{
    uint32_t u = static_cast<uint32_t>(b) << 16;  // bf16 is the top half of a float: exact
    float f;
    std::memcpy(&f, &u, sizeof(f));
    return f;
}

}  // namespace aag_sim

/* IEEE binary16, the `half` of Ascend C kernels (global namespace, as in CANN) */
struct half {
    uint16_t bits = 0;
    half() = default;
    half(float v) : bits(aag_sim::FloatToHalfBits(v)) {}          // NOLINT: implicit like the device type
    half(double v) : bits(aag_sim::FloatToHalfBits(static_cast<float>(v))) {}
    half(int v) : bits(aag_sim::FloatToHalfBits(static_cast<float>(v))) {}
    half(unsigned v) : bits(aag_sim::FloatToHalfBits(static_cast<float>(v))) {}
    static half FromBits(uint16_t b) { half h; h.bits = b; return h; }
    operator float() const { return aag_sim::HalfBitsToFloat(bits); }
};

/* bfloat16 (8-bit exponent, 7-bit mantissa), the `bfloat16_t` of Ascend C kernels */
struct bfloat16_t {
    uint16_t bits = 0;
    bfloat16_t() = default;
    bfloat16_t(float v) : bits(aag_sim::FloatToBf16Bits(v)) {}    // NOLINT
    bfloat16_t(double v) : bits(aag_sim::FloatToBf16Bits(static_cast<float>(v))) {}
    bfloat16_t(int v) : bits(aag_sim::FloatToBf16Bits(static_cast<float>(v))) {}
    bfloat16_t(unsigned v) : bits(aag_sim::FloatToBf16Bits(static_cast<float>(v))) {}
    static bfloat16_t FromBits(uint16_t b) { bfloat16_t h; h.bits = b; return h; }
    operator float() const { return aag_sim::Bf16BitsToFloat(bits); }
};

static_assert(sizeof(half) == 2 && sizeof(bfloat16_t) == 2, "16-bit storage");

#endif  // MOE_MC2_KERNEL_SIM_FP_H
