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
// shape already in a.weight becomes the logical (El, H, N). False when the
// context lacks an attribute (an index beyond the node's attributes); `a`
// then keeps its defaults for it, which the core's rules reject.
inline bool ReadAttrs(const gert::RuntimeAttrs &attrs, moe_mc2::Args &a)
{
    const char *groupEp = attrs.GetStr(kAttrGroupEp);
    const char *groupTp = attrs.GetStr(kAttrGroupTp);
    const int64_t *ep = attrs.GetInt(kAttrEp);
    const int64_t *tp = attrs.GetInt(kAttrTp);
    const int64_t *shard = attrs.GetInt(kAttrShard);
    const int64_t *act = attrs.GetInt(kAttrAct);
    const bool *transposeW = attrs.GetBool(kAttrTransposeW);
    const bool *y2 = attrs.GetBool(kAttrY2);
    const bool *y3 = attrs.GetBool(kAttrY3);
    a.groupEp = groupEp ? groupEp : "";
    a.groupTp = groupTp ? groupTp : "";
    a.ep = ep ? *ep : 0;
    a.tp = tp ? *tp : 0;
    a.shardType = shard ? *shard : 0;
    a.actType = act ? *act : 0;
    a.transposeWeight = transposeW ? *transposeW : false;
    a.y2Flag = y2 ? *y2 : false;
    a.y3Flag = y3 ? *y3 : false;
    if (a.transposeWeight && a.weight.size() == 3U) {
        std::swap(a.weight[1], a.weight[2]);
    }
    return groupEp && groupTp && ep && tp && shard && act && transposeW && y2 && y3;
}

}  // namespace moe_mc2_glue

#endif  // MOE_MC2_AAG_BMM_GERT_GLUE_H
