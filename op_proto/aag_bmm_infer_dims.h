/*
 * Shape inference of AlltoAllAllGatherBatchMatMul with unknown dims (-1) and
 * unknown rank (-2), as GE hands them to a dynamic-shape graph. Portable C++17
 * (no CANN header): op_proto/aag_bmm_infershape.cpp calls it from the gert
 * adapter, tests/test_infershape_dims.py compiles it on its own.
 *
 * Fully known shapes go straight to the portable core (Validate, InferShapes).
 * Otherwise every unknown is replaced by a value compatible with everything
 * that is known (a "surrogate" call), the core validates that call - so only
 * known dims that contradict each other, or attributes, can fail - and the
 * outputs keep -1 wherever they depend on an unknown:
 *   y1 = y3 = (El, ep*C, N), y2 = (El, ep*C, H); an output not produced is
 *   [0, 0, 0] whatever is unknown (CANN's infershape does the same).
 * Known relations are still enforced: E = El * ep, H of x and weight, the
 * ranges, bias (El, N) / (El, 1, N), exactly like a static call.
 */
#ifndef MOE_MC2_OP_PROTO_AAG_BMM_INFER_DIMS_H
#define MOE_MC2_OP_PROTO_AAG_BMM_INFER_DIMS_H

#include <cstdint>
#include <string>
#include <vector>

#include "core/aag_bmm_rules.h"

namespace moe_mc2_infer {

constexpr int64_t kUnknownDim = -1;
constexpr int64_t kUnknownRank = -2;

inline bool IsUnknownRank(const std::vector<int64_t> &d)
{
    return d.size() == 1U && d[0] == kUnknownRank;
}

struct Inferred {
    bool ok = false;
    std::string why;  // the broken rule when !ok
    moe_mc2::OutShapes shapes;
};

namespace detail {

inline bool Known(const std::vector<int64_t> &d, size_t k)
{
    return !IsUnknownRank(d) && k < d.size() && d[k] != kUnknownDim;
}

inline int64_t At(const std::vector<int64_t> &d, size_t k, int64_t otherwise)
{
    return Known(d, k) ? d[k] : otherwise;
}

// dims are -1 or >= 0; a rank is -2 alone or 3 (x, weight) / 2-3 (bias) known dims
inline bool WellFormed(const std::vector<int64_t> &d)
{
    if (IsUnknownRank(d)) {
        return true;
    }
    for (int64_t v : d) {
        if (v < kUnknownDim) {
            return false;
        }
    }
    return true;
}

inline bool AnyUnknown(const moe_mc2::Args &a)
{
    auto unknown = [](const std::vector<int64_t> &d) {
        if (IsUnknownRank(d)) {
            return true;
        }
        for (int64_t v : d) {
            if (v == kUnknownDim) {
                return true;
            }
        }
        return false;
    };
    return unknown(a.x) || unknown(a.weight) || (a.hasBias && unknown(a.bias));
}

}  // namespace detail

/* `a` as the adapters fill it: weight in its LOGICAL (El, H, N) order (ReadAttrs
 * swaps a stored transposed weight), dtypes not looked at (InferDataType does). */
inline Inferred InferDims(const moe_mc2::Args &a)
{
    using detail::At;
    using detail::Known;
    Inferred r;
    if (!detail::WellFormed(a.x) || !detail::WellFormed(a.weight) || (a.hasBias && !detail::WellFormed(a.bias))) {
        r.why = "a dim below -1, or -2 beside other dims";
        return r;
    }
    moe_mc2::Args s = a;  // the surrogate: shapes only, dtypes the core cannot object to
    s.xDtype = s.weightDtype = s.biasDtype = moe_mc2::DType::kFloat16;
    const bool known = !detail::AnyUnknown(a);
    if (!known) {
        if (a.ep <= 0 || a.tp <= 0) {
            moe_mc2::RuleError e = moe_mc2::Validate(s, false);  // reports the world size
            r.why = e.ok() ? "world sizes must be positive" : e.rule;
            return r;
        }
        const bool xr = !IsUnknownRank(a.x), wr = !IsUnknownRank(a.weight);
        if ((xr && a.x.size() != 3U) || (wr && a.weight.size() != 3U)) {
            moe_mc2::RuleError e = moe_mc2::Validate(s, false);  // x.rank / weight.rank
            r.why = e.rule;
            return r;
        }
        const bool br = a.hasBias && !IsUnknownRank(a.bias);
        const size_t bLast = br && !a.bias.empty() ? a.bias.size() - 1U : 0U;
        // El: weight, else x / ep, else bias; N: weight, else bias; H: x or weight by shard type
        int64_t el = At(a.weight, 0, Known(a.x, 0) ? a.x[0] / a.ep : (br ? At(a.bias, 0, 1) : 1));
        int64_t n = At(a.weight, 2, br ? At(a.bias, bLast, 1) : 1);
        int64_t h;  // the full hidden size
        if (a.shardType == 1) {
            h = At(a.x, 2, At(a.weight, 1, 1));
        } else {
            h = Known(a.x, 2) ? a.x[2] * a.tp : At(a.weight, 1, a.tp);
        }
        const int64_t xCols = a.shardType == 1 ? h : (Known(a.x, 2) ? a.x[2] : h / a.tp);
        s.x = {At(a.x, 0, el * a.ep), At(a.x, 1, 1), xCols};
        s.weight = {el, At(a.weight, 1, h), n};
        if (a.hasBias && !br) {
            s.hasBias = false;  // unknown rank: nothing to check
        } else if (br) {
            s.bias = a.bias;
            if (s.bias.size() == 2U || s.bias.size() == 3U) {
                s.bias[0] = At(a.bias, 0, el);
                if (s.bias.size() == 3U) {
                    s.bias[1] = At(a.bias, 1, 1);
                }
                s.bias[bLast] = At(a.bias, bLast, n);
            }
        }
    }
    moe_mc2::RuleError e = moe_mc2::Validate(s, false);
    if (!e.ok() && e.error != "TypeError") {
        r.why = e.rule;
        return r;
    }
    r.shapes = moe_mc2::InferShapes(s);
    r.ok = true;
    if (known) {
        return r;
    }
    // mask what depends on an unknown
    const bool elKnown = Known(a.weight, 0) || Known(a.x, 0);
    const bool rowsKnown = Known(a.x, 1);
    const bool nKnown = Known(a.weight, 2);
    const bool hKnown = Known(a.weight, 1) || Known(a.x, 2);
    auto mask = [&](std::vector<int64_t> &d, bool lastKnown) {
        if (d.size() != 3U || (d[0] == 0 && d[1] == 0 && d[2] == 0)) {
            return;  // not produced: [0, 0, 0]
        }
        d[0] = elKnown ? d[0] : kUnknownDim;
        d[1] = rowsKnown ? d[1] : kUnknownDim;
        d[2] = lastKnown ? d[2] : kUnknownDim;
    };
    mask(r.shapes.y1, nKnown);
    mask(r.shapes.y2, hKnown);
    mask(r.shapes.y3, nKnown);
    return r;
}

}  // namespace moe_mc2_infer

#endif  // MOE_MC2_OP_PROTO_AAG_BMM_INFER_DIMS_H
