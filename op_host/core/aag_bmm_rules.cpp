#include "aag_bmm_rules.h"

#include <sstream>

namespace moe_mc2 {

const char *DTypeName(DType d)
{
    switch (d) {
        case DType::kFloat16: return "float16";
        case DType::kBFloat16: return "bfloat16";
        case DType::kFloat32: return "float32";
        default: return "other";
    }
}

DType DTypeFromName(const std::string &name)
{
    if (name == "float16") return DType::kFloat16;
    if (name == "bfloat16") return DType::kBFloat16;
    if (name == "float32") return DType::kFloat32;
    return DType::kOther;
}

uint32_t DTypeBytes(DType d)
{
    switch (d) {
        case DType::kFloat16:
        case DType::kBFloat16: return 2U;
        case DType::kFloat32: return 4U;
        default: return 0U;
    }
}

namespace {

std::string ShapeStr(const std::vector<int64_t> &s)
{
    std::ostringstream os;
    os << "(";
    for (size_t k = 0; k < s.size(); ++k) {
        os << (k ? ", " : "") << s[k];
    }
    os << (s.size() == 1 ? ",)" : ")");
    return os.str();
}

RuleError Fail(const char *rule, const char *arg, const char *error, const std::string &message)
{
    RuleError r;
    r.rule = rule;
    r.arg = arg;
    r.error = error;
    r.message = std::string(arg) + ": " + message + " [rule " + rule + "]";
    return r;
}

// CANN's kernel takes 2, 4, 8 and 16 ranks per group; the portable runtime also runs pure
// expert- or tensor-parallel layers (a group of 1).
bool IsWorldSize(int64_t v, bool portable) { return (portable && v == 1) || v == 2 || v == 4 || v == 8 || v == 16; }

std::string WorldSizeRule(bool portable)
{
    return portable ? "must be in {1, 2, 4, 8, 16}"
                    : "must be in {2, 4, 8, 16} on the NPU (CANN's kernel; only the portable runtime also takes 1)";
}

bool GroupNameOk(const std::string &g) { return !g.empty() && g.size() < 128U; }

constexpr int64_t kEMin = 2;
constexpr int64_t kEMax = 2048;
constexpr int64_t kDimMax = 65535;

}  // namespace

RuleError Validate(const Args &a, bool portable)
{
    if (a.shardType != 0 && a.shardType != 1) {
        return Fail("shard_type.value", "shard_type", "ValueError",
                    "got " + std::to_string(a.shardType) + ", must be 0 or 1");
    }
    if (a.actType < 0 || a.actType > 4) {
        return Fail("act_type.value", "act_type", "ValueError",
                    "got " + std::to_string(a.actType) + ", must be one of None/GELU/Silu/Relu/FastGELU (0..4)");
    }
    if (!IsWorldSize(a.ep, portable)) {
        return Fail("ep.world_size", "group_ep_worldsize", "ValueError",
                    "got " + std::to_string(a.ep) + ", " + WorldSizeRule(portable));
    }
    if (!IsWorldSize(a.tp, portable)) {
        return Fail("tp.world_size", "group_tp_worldsize", "ValueError",
                    "got " + std::to_string(a.tp) + ", " + WorldSizeRule(portable));
    }
    if (!GroupNameOk(a.groupEp)) {
        return Fail("group.name", "group_ep", "ValueError",
                    "length " + std::to_string(a.groupEp.size()) + ", must be non-empty and shorter than 128");
    }
    if (!GroupNameOk(a.groupTp)) {
        return Fail("group.name", "group_tp", "ValueError",
                    "length " + std::to_string(a.groupTp.size()) + ", must be non-empty and shorter than 128");
    }
    if (a.groupEp == a.groupTp) {
        return Fail("group.distinct", "group_tp", "ValueError", "'" + a.groupTp + "' must differ from group_ep");
    }
    if (a.x.size() != 3U) {
        return Fail("x.rank", "x", "ValueError", "shape " + ShapeStr(a.x) + " must be 3-D");
    }
    bool xTypeOk = a.xDtype == DType::kFloat16 || a.xDtype == DType::kBFloat16 ||
                   (portable && a.xDtype == DType::kFloat32);
    if (!xTypeOk) {
        return Fail("x.dtype", "x", "TypeError",
                    std::string("dtype ") + DTypeName(a.xDtype) +
                        (portable ? " must be float16, bfloat16 or float32" : " must be float16 or bfloat16 on the NPU"));
    }
    if (a.weight.size() != 3U) {
        return Fail("weight.rank", "weight", "ValueError", "shape " + ShapeStr(a.weight) + " must be 3-D");
    }
    if (a.weightDtype != a.xDtype) {
        return Fail("weight.dtype", "weight", "TypeError",
                    std::string("dtype ") + DTypeName(a.weightDtype) + " must equal x dtype " + DTypeName(a.xDtype));
    }
    const int64_t E = a.x[0];
    if (E < kEMin || E > kEMax) {
        return Fail("E.range", "x", "ValueError", "E = x.size(0) = " + std::to_string(E) + " must be in [2, 2048]");
    }
    if (E % a.ep != 0) {
        return Fail("E.multiple", "x", "ValueError",
                    "E = " + std::to_string(E) + " must be a multiple of ep = " + std::to_string(a.ep));
    }
    if (a.weight[0] * a.ep != E) {
        return Fail("weight.experts", "weight", "ValueError",
                    "weight.size(0) * ep = " + std::to_string(a.weight[0] * a.ep) + " must equal E = " +
                        std::to_string(E));
    }
    const int64_t H = (a.shardType == 1) ? a.x[2] : a.x[2] * a.tp;
    if (H < 1 || H > kDimMax) {
        return Fail("H.range", "x", "ValueError", "H = " + std::to_string(H) + " must be in [1, 65535]");
    }
    if (a.weight[1] != H) {
        return Fail("weight.hidden", "weight", "ValueError",
                    "weight.size(1) = " + std::to_string(a.weight[1]) + " must equal H = " + std::to_string(H));
    }
    const int64_t N = a.weight[2];
    if (N < 1 || N > kDimMax) {
        return Fail("N.range", "weight", "ValueError", "M/tp = weight.size(2) = " + std::to_string(N) +
                                                             " must be in [1, 65535]");
    }
    if (a.x[1] <= 0) {
        return Fail("C.positive", "x", "ValueError", "x.size(1) = " + std::to_string(a.x[1]) + " must be > 0");
    }
    if (a.hasBias) {
        if (a.bias.size() != 2U && a.bias.size() != 3U) {
            return Fail("bias.rank", "bias", "ValueError", "shape " + ShapeStr(a.bias) + " must be 2-D or 3-D");
        }
        const int64_t El = E / a.ep;
        bool shapeOk = (a.bias.size() == 2U) ? (a.bias[0] == El && a.bias[1] == N)
                                             : (a.bias[0] == El && a.bias[1] == 1 && a.bias[2] == N);
        if (!shapeOk) {
            return Fail("bias.shape", "bias", "ValueError",
                        "shape " + ShapeStr(a.bias) + " must be (" + std::to_string(El) + ", " + std::to_string(N) +
                            ") or (" + std::to_string(El) + ", 1, " + std::to_string(N) + ")");
        }
        DType want = (a.xDtype == DType::kFloat16) ? DType::kFloat16 : DType::kFloat32;
        if (a.biasDtype != want) {
            return Fail("bias.dtype", "bias", "TypeError",
                        std::string("dtype ") + DTypeName(a.biasDtype) + " must be " + DTypeName(want) +
                            " for x dtype " + DTypeName(a.xDtype));
        }
    }
    return RuleError{};
}

Dims DeriveDims(const Args &a)
{
    Dims d{};
    d.ep = a.ep;
    d.tp = a.tp;
    d.shard = a.shardType;
    d.act = a.actType;
    d.E = a.x[0];
    d.El = d.E / a.ep;
    d.Rx = a.x[1];
    d.Hx = a.x[2];
    d.C = (a.shardType == 1) ? d.Rx * a.tp : d.Rx;
    d.H = (a.shardType == 1) ? d.Hx : d.Hx * a.tp;
    d.N = a.weight[2];
    d.y2Out = a.y2Flag;
    d.y3Out = a.y3Flag && a.actType != 0;
    return d;
}

OutShapes InferShapes(const Args &a)
{
    Dims d = DeriveDims(a);
    OutShapes o;
    o.y1 = {d.El, d.ep * d.C, d.N};
    o.y2 = d.y2Out ? std::vector<int64_t>{d.El, d.ep * d.C, d.H} : std::vector<int64_t>{0, 0, 0};
    o.y3 = d.y3Out ? std::vector<int64_t>{d.El, d.ep * d.C, d.N} : std::vector<int64_t>{0, 0, 0};
    return o;
}

Args ArgsFor(int64_t ep, int64_t tp, int64_t shard, int64_t E, int64_t C, int64_t H, int64_t M, DType dt)
{
    Args a;
    a.ep = ep;
    a.tp = tp;
    a.shardType = shard;
    a.x = {E, shard == 1 ? C / tp : C, shard == 1 ? H : H / tp};
    a.weight = {E / ep, H, M / tp};
    a.xDtype = a.weightDtype = dt;
    a.groupEp = "ep";
    a.groupTp = "tp";
    return a;
}

}  // namespace moe_mc2
