/*
 * Portable core (C++17, no CANN header): the input rules of
 * AlltoAllAllGatherBatchMatMul and its shape inference.
 *
 * The rules and their order are the contract of docs/contract.md "Rules";
 * each failure carries the rule id, the Python argument name and the Python
 * exception class, exactly as tests/vectors/forward_invalid.json lists.
 */
#ifndef MOE_MC2_AAG_BMM_RULES_H
#define MOE_MC2_AAG_BMM_RULES_H

#include <cstdint>
#include <string>
#include <vector>

namespace moe_mc2 {

enum class DType { kFloat16, kBFloat16, kFloat32, kOther };

const char *DTypeName(DType d);
DType DTypeFromName(const std::string &name);  // "float16" / "bfloat16" / "float32"; else kOther
uint32_t DTypeBytes(DType d);

enum class Act : int64_t { kNone = 0, kGelu = 1, kSilu = 2, kRelu = 3, kFastGelu = 4 };

/* Everything the operator receives, in the Python / GE vocabulary.
 * weight is the LOGICAL shape (El, H, N) whatever transpose_weight says: the
 * CANN adapter swaps the last two stored dims back when transpose_weight=true. */
struct Args {
    std::vector<int64_t> x;
    std::vector<int64_t> weight;
    bool hasBias = false;
    std::vector<int64_t> bias;
    DType xDtype = DType::kFloat16;
    DType weightDtype = DType::kFloat16;
    DType biasDtype = DType::kFloat16;
    int64_t ep = 0;
    int64_t tp = 0;
    int64_t shardType = 0;
    int64_t actType = 0;
    std::string groupEp;
    std::string groupTp;
    bool transposeWeight = false;
    bool y2Flag = false;
    bool y3Flag = false;
};

struct RuleError {
    std::string rule;   // e.g. "E.multiple"; empty == valid
    std::string arg;    // Python argument name
    std::string error;  // "ValueError" or "TypeError"
    std::string message;
    bool ok() const { return rule.empty(); }
};

/* Checks every rule in contract order, first failure wins.
 * portable=false is the NPU kernel (float32 x is rejected with x.dtype, a
 * group of 1 rank with ep.world_size / tp.world_size); portable=true accepts
 * both, as the portable runtime does. */
RuleError Validate(const Args &a, bool portable = false);

// The call of problem sizes (ep, tp, shard type, E, C, H, M) in dtype `dt`, groups "ep"/"tp":
// x and the (logical, untransposed) weight shaped as the contract lays them out for that shard type.
Args ArgsFor(int64_t ep, int64_t tp, int64_t shard, int64_t E, int64_t C, int64_t H, int64_t M,
             DType dt = DType::kFloat16);

/* Derived sizes of a valid call. */
struct Dims {
    int64_t ep, tp, shard, act;
    int64_t E, El, Rx, Hx, C, H, N;
    bool y2Out, y3Out;
};
Dims DeriveDims(const Args &a);  // requires Validate(a).ok()

struct OutShapes {
    std::vector<int64_t> y1, y2, y3;  // an output not produced is {0, 0, 0}
};
OutShapes InferShapes(const Args &a);  // requires Validate(a).ok()

}  // namespace moe_mc2

#endif  // MOE_MC2_AAG_BMM_RULES_H
