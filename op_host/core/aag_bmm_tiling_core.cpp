#include "aag_bmm_tiling_core.h"

namespace moe_mc2 {

namespace {

RuleError PlatformError(const std::string &msg)
{
    RuleError e;
    e.rule = "platform";
    e.arg = "platform";
    e.error = "RuntimeError";
    e.message = msg;
    return e;
}

RuleError Fill(const Args &a, const PlatformInfo &p, Plan plan, KernelTiling &out)
{
    if (p.aicNum == 0U || p.aivNum != 2U * p.aicNum) {
        return PlatformError("the kernel runs MIX AIC:AIV 1:2 and needs aivNum == 2 * aicNum > 0 (aicNum=" +
                             std::to_string(p.aicNum) + ", aivNum=" + std::to_string(p.aivNum) + ")");
    }
    if (p.ubBytes < 16U * 1024U || p.ubBytes > 0xFFFFFFFFULL) {
        return PlatformError("Unified Buffer of " + std::to_string(p.ubBytes) + " bytes is outside [16 KiB, 4 GiB)");
    }
    const uint32_t elemBytes = DTypeBytes(a.xDtype);
    const uint32_t ub = static_cast<uint32_t>(p.ubBytes);
    out.plan = std::move(plan);
    out.tilingKey = TilingKeyOf(a);
    out.blockDim = p.aicNum;
    out.userWorkspaceBytes = WorkspaceBytes(out.plan.g, elemBytes);
    out.workspaceBytes = p.libApiWorkspaceBytes + out.userWorkspaceBytes;
    out.aivNum = p.aivNum;
    out.ubBytes = ub;
    // the kernel's TBuf: the assemble copy buffer uses half of UB, the epilogue
    // five fp32 rows (acc, bias, act, out, raw bias) of epiColChunk floats
    out.copyUbBytes = ub / 2U / 32U * 32U;
    out.epiColChunk = KernelUbBufferBytes(ub) / 5U / static_cast<uint32_t>(sizeof(float)) / 64U * 64U;
    if (out.epiColChunk == 0U || out.copyUbBytes > KernelUbBufferBytes(ub)) {
        return PlatformError("Unified Buffer of " + std::to_string(ub) + " bytes is too small for the kernel");
    }
    out.cube.M = static_cast<int32_t>(aag::MaxRunRows(out.plan.g));
    out.cube.N = static_cast<int32_t>(out.plan.g.N);
    out.cube.K = static_cast<int32_t>(out.plan.g.H);
    out.cube.transposeB = a.transposeWeight;
    out.cube.inType = a.xDtype;
    out.cube.cores = p.aicNum;
    // HCCL algorithm strings of the HCCL tiling documentation (Atlas A3)
    out.alltoall = CcConfig{a.groupEp, kHcclCmdAlltoAllV, "AlltoAll=level0:fullmesh;level1:pairwise"};
    out.allgather = CcConfig{a.groupTp, kHcclCmdAllGather, "AllGather=level0:doublering"};
    return RuleError{};
}

}  // namespace

uint32_t KernelUbBufferBytes(uint32_t ubBytes) { return ubBytes / 4U * 3U / 32U * 32U; }

RuleError MakeKernelTiling(const Args &a, const PlatformInfo &p, KernelTiling &out)
{
    RuleError err = Validate(a, /*portable=*/false);
    if (!err.ok()) {
        return err;
    }
    return Fill(a, p, PlanTiles(a), out);
}

RuleError MakeKernelTilingWithTiles(const Args &a, const PlatformInfo &p, uint64_t eTile, uint64_t cTile,
                                    KernelTiling &out)
{
    RuleError err = Validate(a, /*portable=*/false);
    if (!err.ok()) {
        return err;
    }
    if (!TileShapeLegal(DeriveDims(a), eTile, cTile)) {
        RuleError e;
        e.rule = "tiling.shape";
        e.arg = "tiles";
        e.error = "ValueError";
        e.message = "remote tile " + std::to_string(eTile) + " experts x " + std::to_string(cTile) +
                    " rows is not a legal tiling of this call";
        return e;
    }
    const aag::Geom g = MakeGeom(a, eTile, cTile);
    Plan plan = Evaluate(g, DTypeBytes(a.xDtype));
    return Fill(a, p, std::move(plan), out);
}

}  // namespace moe_mc2
