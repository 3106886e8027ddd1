/*
 * What the two gert adapters (op_proto infershape, op_host tiling) read the
 * same way: input/attribute indices (REG_OP / OpDef order), shapes and dtypes
 * into the portable core's types, and the attributes into moe_mc2::Args.
 * Compiles only with CANN (gert headers); the package build copies it next
 * to both adapters.
 */
#ifndef MOE_MC2_AAG_BMM_GERT_GLUE_H
#define MOE_MC2_AAG_BMM_GERT_GLUE_H

#include <cstdint>
#include <utility>
#include <vector>

#include "core/aag_bmm_rules.h"

namespace moe_mc2_glue {

constexpr size_t kX = 0;
constexpr size_t kWeight = 1;
constexpr size_t kBias = 2;
constexpr size_t kY1 = 0;
constexpr size_t kY2 = 1;
constexpr size_t kY3 = 2;
// attribute indices: the order of REG_OP / OpDef (tests/test_conformance.py pins it)
constexpr size_t kAttrGroupEp = 0;
constexpr size_t kAttrGroupTp = 1;
constexpr size_t kAttrEp = 2;
constexpr size_t kAttrTp = 3;
constexpr size_t kAttrShard = 4;
constexpr size_t kAttrAct = 5;
constexpr size_t kAttrTransposeW = 6;
constexpr size_t kAttrY2 = 7;
constexpr size_t kAttrY3 = 8;

inline std::vector<int64_t> Dims(const gert::Shape &s)
{
    std::vector<int64_t> d(s.GetDimNum());
    for (size_t k = 0; k < d.size(); ++k) {
        d[k] = s.GetDim(k);
    }
    return d;
}

inline moe_mc2::DType FromGe(ge::DataType t)
{
    switch (t) {
        case ge::DT_FLOAT16: return moe_mc2::DType::kFloat16;
        case ge::DT_BF16: return moe_mc2::DType::kBFloat16;
        case ge::DT_FLOAT: return moe_mc2::DType::kFloat32;
        default: return moe_mc2::DType::kOther;
    }
}

// Attributes into `a`; with transpose_weight the stored (El, N, H) weight
// shape already in a.weight becomes the logical (El, H, N).
inline void ReadAttrs(const gert::RuntimeAttrs &attrs, moe_mc2::Args &a)
{
    const char *groupEp = attrs.GetStr(kAttrGroupEp);
    const char *groupTp = attrs.GetStr(kAttrGroupTp);
    a.groupEp = groupEp ? groupEp : "";
    a.groupTp = groupTp ? groupTp : "";
    a.ep = *attrs.GetInt(kAttrEp);
    a.tp = *attrs.GetInt(kAttrTp);
    a.shardType = *attrs.GetInt(kAttrShard);
    a.actType = *attrs.GetInt(kAttrAct);
    a.transposeWeight = *attrs.GetBool(kAttrTransposeW);
    a.y2Flag = *attrs.GetBool(kAttrY2);
    a.y3Flag = *attrs.GetBool(kAttrY3);
    if (a.transposeWeight && a.weight.size() == 3U) {
        std::swap(a.weight[1], a.weight[2]);
    }
}

}  // namespace moe_mc2_glue

#endif  // MOE_MC2_AAG_BMM_GERT_GLUE_H
