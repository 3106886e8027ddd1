#include "aag_bmm_tiling_core.h"

#include <deque>
#include <map>
#include <mutex>
#include <sstream>

namespace moe_mc2 {

namespace {

/* The planner prices one to a few thousand candidate plans (tens of milliseconds); the host tiling runs on
 * every launch of a dynamic shape, so the plan of each recent (call, platform) is kept. The plan depends on
 * the sizes, dtypes, flags and platform only, never on the group names. */
Plan PlanOnce(const Args &a, const PlatformInfo &p)
{
    constexpr size_t kKept = 64;
    static std::mutex mu;
    static std::map<std::string, Plan> plans;
    static std::deque<std::string> order;  // oldest first
    std::ostringstream k;
    auto dims = [&k](const std::vector<int64_t> &v) {
        for (int64_t x : v) k << x << ',';
        k << ';';
    };
    dims(a.x);
    dims(a.weight);
    dims(a.bias);
    k << a.hasBias << static_cast<int>(a.xDtype) << ',' << static_cast<int>(a.weightDtype) << ','
      << static_cast<int>(a.biasDtype) << ';' << a.ep << ',' << a.tp << ',' << a.shardType << ',' << a.actType << ','
      << a.transposeWeight << a.y2Flag << a.y3Flag << ';' << p.aicNum << ',' << p.aivNum << ',' << p.ubBytes;
    const std::string key = k.str();
    {
        std::lock_guard<std::mutex> lock(mu);
        const auto it = plans.find(key);
        if (it != plans.end()) return it->second;
    }
    Plan plan = PlanTiles(a, MachineOf(p));
    std::lock_guard<std::mutex> lock(mu);
    if (plans.emplace(key, plan).second) {
        order.push_back(key);
        if (order.size() > kKept) {
            plans.erase(order.front());
            order.pop_front();
        }
    }
    return plan;
}

RuleError PlatformError(const std::string &msg)
{
    RuleError e;
    e.rule = "platform";
    e.arg = "platform";
    e.error = "RuntimeError";
    e.message = msg;
    return e;
}

RuleError ShapeError(const std::string &msg)
{
    RuleError e;
    e.rule = "tiling.shape";
    e.arg = "tiles";
    e.error = "ValueError";
    e.message = msg;
    return e;
}

RuleError CheckPlatform(const PlatformInfo &p)
{
    if (p.aicNum == 0U || p.aivNum != 2U * p.aicNum) {
        return PlatformError("the kernel runs MIX AIC:AIV 1:2 and needs aivNum == 2 * aicNum > 0 (aicNum=" +
                             std::to_string(p.aicNum) + ", aivNum=" + std::to_string(p.aivNum) + ")");
    }
    if (p.ubBytes < 16U * 1024U || p.ubBytes > 0xFFFFFFFFULL) {
        return PlatformError("Unified Buffer of " + std::to_string(p.ubBytes) + " bytes is outside [16 KiB, 4 GiB)");
    }
    return RuleError{};
}

RuleError Fill(const Args &a, const PlatformInfo &p, Plan plan, KernelTiling &out)
{
    const uint32_t elemBytes = DTypeBytes(a.xDtype);
    const uint32_t biasBytes = a.hasBias ? DTypeBytes(a.biasDtype) : 0U;
    const uint32_t ub = static_cast<uint32_t>(p.ubBytes);
    out.plan = std::move(plan);
    const aag::Geom &g = out.plan.g;
    out.tilingKey = TilingKeyOf(a);
    out.blockDim = p.aicNum;
    out.userWorkspaceBytes = WorkspaceBytes(g, elemBytes);
    out.workspaceBytes = p.libApiWorkspaceBytes + out.userWorkspaceBytes;
    out.aivNum = p.aivNum;
    out.ubBytes = ub;
    out.copyUbBytes = CopyUbBytes(ub);
    out.ubUsedBytes = KernelUbUse(g, elemBytes, biasBytes, ub);
    if ((g.ring != 0U && g.epiRows == 0U) || out.copyUbBytes < 64U || out.ubUsedBytes > KernelUbBufferBytes(ub)) {
        return PlatformError("Unified Buffer of " + std::to_string(ub) + " bytes is too small for the kernel (" +
                             std::to_string(out.ubUsedBytes) + " bytes of buffers)");
    }
    out.cube.M = static_cast<int32_t>(g.unitM);
    out.cube.N = static_cast<int32_t>(g.unitN);
    out.cube.K = static_cast<int32_t>(g.H);
    out.cube.transposeB = a.transposeWeight;
    out.cube.inType = a.xDtype;
    out.cube.bias = g.biasInCube != 0U;
    out.cube.biasType = a.biasDtype;
    out.cube.cores = p.aicNum;
    // HCCL algorithm strings of the HCCL tiling documentation (Atlas A3)
    out.alltoall = CcConfig{a.groupEp, kHcclCmdAlltoAllV, "AlltoAll=level0:fullmesh;level1:pairwise"};
    out.allgather = CcConfig{a.groupTp, kHcclCmdAllGather, "AllGather=level0:doublering"};
    return RuleError{};
}

}  // namespace

Machine MachineOf(const PlatformInfo &p)
{
    Machine m;
    m.aicNum = p.aicNum;
    m.aivNum = p.aivNum;
    m.ubBytes = p.ubBytes;
    return m;
}

uint32_t KernelUbUse(const aag::Geom &g, uint32_t elemBytes, uint32_t biasBytes, uint64_t ubBytes)
{
    // mirrors AagBmmKernel::InitUb (op_kernel/aag_bmm_kernel.h)
    auto a32 = [](uint64_t v) { return aag::AlignUp(v, 32U); };
    uint64_t used = 0;
    if (g.ring != 0U) {
        const uint64_t rowF = static_cast<uint64_t>(g.epiRows) * g.unitN;
        used += 2U * a32(rowF * 4U) + 2U * a32(rowF * elemBytes);
        if (g.y3Out != 0U) used += 2U * a32(rowF * elemBytes);
        used += a32(rowF * 4U);
        if (g.hasBias != 0U && g.biasInCube == 0U) {
            used += a32(static_cast<uint64_t>(g.unitN) * biasBytes) + a32(g.unitN * 4U) + a32(rowF * 4U);
        }
    }
    if (g.y2Out != 0U || g.shard == 0U) used += a32(2U * static_cast<uint64_t>(CopyUbBytes(ubBytes)));
    return static_cast<uint32_t>(used);
}

RuleError MakeKernelTiling(const Args &a, const PlatformInfo &p, KernelTiling &out)
{
    RuleError err = Validate(a, /*portable=*/false);
    if (!err.ok()) return err;
    err = CheckPlatform(p);
    if (!err.ok()) return err;
    return Fill(a, p, PlanOnce(a, p), out);
}

RuleError MakeKernelTilingWithEnds(const Args &a, const PlatformInfo &p, const std::vector<uint64_t> &ends,
                                   KernelTiling &out, const Machine *machine)
{
    RuleError err = Validate(a, /*portable=*/false);
    if (!err.ok()) return err;
    err = CheckPlatform(p);
    if (!err.ok()) return err;
    const Dims d = DeriveDims(a);
    const uint64_t total = static_cast<uint64_t>(d.El * d.Rx);
    if (ends.empty() || ends.size() > aag::kMaxTiles || ends.back() != total) {
        return ShapeError("tile ends must be 1.." + std::to_string(aag::kMaxTiles) + " increasing cells ending at " +
                          std::to_string(total));
    }
    for (size_t k = 0; k < ends.size(); ++k) {
        if (ends[k] <= (k ? ends[k - 1] : 0U)) return ShapeError("tile ends must increase");
    }
    const Machine m = machine ? *machine : MachineOf(p);
    Plan plan;
    plan.g = MakeGeom(a, ends, m);
    plan.pred = Evaluate(a, plan.g, m);
    plan.candidates = 1;
    return Fill(a, p, std::move(plan), out);
}

RuleError MakeKernelTilingWithTiles(const Args &a, const PlatformInfo &p, uint64_t eTile, uint64_t cTile,
                                    KernelTiling &out)
{
    RuleError err = Validate(a, /*portable=*/false);
    if (!err.ok()) return err;
    const std::vector<uint64_t> ends = UniformTiles(DeriveDims(a), eTile, cTile);
    if (ends.empty()) {
        return ShapeError("tile " + std::to_string(eTile) + " experts x " + std::to_string(cTile) +
                          " rows is not a legal tiling of this call");
    }
    return MakeKernelTilingWithEnds(a, p, ends, out);
}

}  // namespace moe_mc2
