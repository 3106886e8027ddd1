/*
 * kernel_sim runner: one call of AlltoAllAllGatherBatchMatMul on a simulated
 * ep x tp world.
 *
 * Host side, as the CANN op would run it: the contract's rules
 * (moe_mc2::Validate), shape inference (moe_mc2::InferShapes) and the tiling
 * function's decisions through the portable core (moe_mc2::MakeKernelTiling);
 * the two blobs only CANN's libraries make are replaced by the model's own
 * (a TCubeTiling from a simple core split, HCCL blobs the model's client reads).
 * Device side: every rank's Global Memory (inputs copied in, outputs and
 * workspace filled with NaN bytes), then the kernel entry runs once per core
 * (AIC and AIV, MIX 1:2) of every rank, all as threads of one world.
 */
#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <type_traits>
#include <cstring>
#include <sstream>
#include <thread>
#include <vector>

#include "aag_bmm_offsets.h"
#include "aag_bmm_planner.h"
#include "aag_bmm_rules.h"
#include "aag_bmm_tiling_core.h"
#include "aag_bmm_tiling_data.h"
#include "kernel_sim/sim_abi.h"
#include "sim_blobs.h"
#include "sim_world.h"

using KernelFn = void (*)(uint8_t *, uint8_t *, uint8_t *, uint8_t *, uint8_t *, uint8_t *, uint8_t *, uint8_t *);

extern "C" {
void aag_kernel_fp16(uint8_t *, uint8_t *, uint8_t *, uint8_t *, uint8_t *, uint8_t *, uint8_t *, uint8_t *);
void aag_kernel_bf16(uint8_t *, uint8_t *, uint8_t *, uint8_t *, uint8_t *, uint8_t *, uint8_t *, uint8_t *);
void aag_kernel_bf16_bf16bias(uint8_t *, uint8_t *, uint8_t *, uint8_t *, uint8_t *, uint8_t *, uint8_t *,
                              uint8_t *);
}

namespace aag_sim {
KernelFn FindProbe(const std::string &name);  // probes.cpp
}

namespace {

using namespace aag_sim;

/* ---------------------------------------------------------------- JSON */
class Json {
public:
    Json &Key(const std::string &k)
    {
        Comma();
        Quote(k);
        os_ << ':';
        comma_ = false;
        return *this;
    }
    Json &Str(const std::string &v)
    {
        Comma();
        Quote(v);
        comma_ = true;
        return *this;
    }
    template <typename T>
    Json &Num(T v)
    {
        Comma();
        if constexpr (std::is_floating_point<T>::value) {
            char b[40];
            std::snprintf(b, sizeof(b), "%.15g", static_cast<double>(v));  // enough digits for byte and FLOP counts
            os_ << b;
        } else {
            os_ << v;
        }
        comma_ = true;
        return *this;
    }
    Json &Bool(bool v)
    {
        Comma();
        os_ << (v ? "true" : "false");
        comma_ = true;
        return *this;
    }
    Json &Open(char c)
    {
        Comma();
        os_ << c;
        comma_ = false;
        return *this;
    }
    Json &Close(char c)
    {
        os_ << c;
        comma_ = true;
        return *this;
    }
    std::string Text() const { return os_.str(); }

private:
    void Comma()
    {
        if (comma_) os_ << ',';
    }
    void Quote(const std::string &v)
    {
        os_ << '"';
        for (char ch : v) {
            if (ch == '"' || ch == '\\') os_ << '\\' << ch;
            else if (ch == '\n') os_ << "\\n";
            else if (static_cast<unsigned char>(ch) < 0x20) os_ << ' ';
            else os_ << ch;
        }
        os_ << '"';
    }
    std::ostringstream os_;
    bool comma_ = false;
};

int Emit(const std::string &text, char *out, size_t outLen)
{
    if (out != nullptr && outLen > 0) {
        size_t n = std::min(text.size(), outLen - 1);
        std::memcpy(out, text.data(), n);
        out[n] = '\0';
    }
    return static_cast<int>(text.size());
}

/* ------------------------------------------------------------ the call */
struct HostCall {
    moe_mc2::Args args;
    moe_mc2::KernelTiling kt;
    moe_mc2::OutShapes shapes;
    moe_mc2::RuleError err;
    int64_t El = 0, Rx = 0, Hx = 0, N = 0;
    uint32_t es = 2, biasEs = 2;
};

moe_mc2::DType DtypeOf(int64_t code)
{
    return code == 0 ? moe_mc2::DType::kFloat16 : code == 1 ? moe_mc2::DType::kBFloat16 : moe_mc2::DType::kFloat32;
}

/* the call forces part of the plan (tiles, unit, epilogue chunk or the rows' order) */
bool ForcesThePlan(const AagSimCall &c)
{
    return c.unitM > 0 || c.unitN > 0 || c.epiRows > 0 || c.nTileEnds > 0 || c.eTile > 0 || c.cTile > 0 ||
           c.ownAhead > 0 || c.peerAhead > 0;
}

bool Host(const AagSimCall &c, HostCall &h)
{
    auto bad = [&h](const std::string &rule, const std::string &msg) {
        h.err.rule = rule;
        h.err.arg = rule;
        h.err.error = "ValueError";
        h.err.message = msg;
        return false;
    };
    if (c.ep <= 0 || c.tp <= 0) return bad("world", "ep and tp must be positive");
    if (c.shard == 1 && c.C % c.tp != 0) return bad("C.divisible", "shard_type 1 needs C divisible by tp (x is (E, C/tp, H))");
    if (c.shard == 0 && c.H % c.tp != 0) return bad("H.divisible", "shard_type 0 needs H divisible by tp (x is (E, C, H/tp))");
    if (c.M % c.tp != 0) return bad("M.divisible", "M must be divisible by tp (weight is (E/ep, H, M/tp))");
    if (c.E % c.ep != 0) return bad("E.multiple", "E must be a multiple of ep");
    moe_mc2::Args a = moe_mc2::ArgsFor(c.ep, c.tp, c.shard, c.E, c.C, c.H, c.M, DtypeOf(c.dtype));
    a.actType = c.act;
    a.transposeWeight = c.transposeWeight != 0;
    a.y2Flag = c.y2Flag != 0;
    a.y3Flag = c.y3Flag != 0;
    a.hasBias = c.bias != 0;
    if (a.hasBias) {
        a.bias = (c.bias == 3) ? std::vector<int64_t>{c.E / c.ep, 1, c.M / c.tp} : std::vector<int64_t>{c.E / c.ep, c.M / c.tp};
        a.biasDtype = DtypeOf(c.biasDtype);
    }
    moe_mc2::PlatformInfo p;
    p.aicNum = static_cast<uint32_t>(c.aicPerRank);
    p.aivNum = 2U * p.aicNum;
    p.ubBytes = static_cast<uint64_t>(c.ubBytes);
    p.libApiWorkspaceBytes = static_cast<uint64_t>(c.sysWorkspaceBytes);
    if (ForcesThePlan(c)) {
        // forced unit / tiles: the tiling core's geometry with the model's overrides
        moe_mc2::Machine m = moe_mc2::MachineOf(p);
        m.unitM = static_cast<uint32_t>(std::max<int64_t>(0, c.unitM));
        m.unitN = static_cast<uint32_t>(std::max<int64_t>(0, c.unitN));
        m.epiRows = static_cast<uint32_t>(std::max<int64_t>(0, c.epiRows));
        m.ownAhead = static_cast<int32_t>(std::min<int64_t>(c.ownAhead, 64)) - 1;  // -1: the planner's
        if (c.peerAhead == 1) m.splitPeer = 0;
        if (c.peerAhead > 1) m.peerAhead = static_cast<int32_t>(std::min<int64_t>(c.peerAhead, 64)) - 2;
        h.err = moe_mc2::Validate(a, false);
        if (!h.err.ok()) return false;
        std::vector<uint64_t> ends;
        if (c.nTileEnds > 0) {
            for (int64_t k = 0; k < std::min<int64_t>(c.nTileEnds, 16); ++k) ends.push_back(static_cast<uint64_t>(c.tileEnds[k]));
        } else if (c.eTile > 0 || c.cTile > 0) {
            ends = moe_mc2::UniformTiles(moe_mc2::DeriveDims(a), static_cast<uint64_t>(c.eTile),
                                         static_cast<uint64_t>(c.cTile));
            if (ends.empty()) return bad("tiling.shape", "the tile shape is not a legal tiling of this call");
        } else {
            const aag::Geom pg = moe_mc2::PlanTiles(a, m).g;
            ends.assign(pg.tileEnd, pg.tileEnd + pg.nTiles);
            m.ownAhead = static_cast<int32_t>(pg.ownAhead);
            m.splitPeer = static_cast<int32_t>(pg.splitPeer);
            m.peerAhead = pg.splitPeer ? static_cast<int32_t>(pg.peerAhead) : -1;
        }
        h.err = moe_mc2::MakeKernelTilingWithEnds(a, p, ends, h.kt, &m);
    } else {
        h.err = moe_mc2::MakeKernelTiling(a, p, h.kt);
    }
    if (!h.err.ok()) return false;
    h.args = a;
    h.shapes = moe_mc2::InferShapes(a);
    const aag::Geom &g = h.kt.plan.g;
    h.El = static_cast<int64_t>(g.El);
    h.Rx = static_cast<int64_t>(g.Rx);
    h.Hx = static_cast<int64_t>(g.Hx);
    h.N = static_cast<int64_t>(g.N);
    h.es = moe_mc2::DTypeBytes(a.xDtype);
    h.biasEs = a.hasBias ? moe_mc2::DTypeBytes(a.biasDtype) : 2U;
    return true;
}

/* the model's TCubeTiling of one unit (not CANN's MatmulApiTiling: the kernel sets every call's
 * shapes itself; the model checks isBias against SetBias) */
void ModelCubeTiling(const moe_mc2::CubeProblem &p, AscendC::tiling::TCubeTiling &t)
{
    auto align16 = [](int64_t v) { return (v + 15) / 16 * 16; };
    t = AscendC::tiling::TCubeTiling{};
    t.usedCoreNum = 1;
    t.M = p.M;
    t.N = p.N;
    t.Ka = t.Kb = p.K;
    t.singleCoreM = p.M;
    t.singleCoreN = p.N;
    t.singleCoreK = p.K;
    t.baseM = static_cast<int32_t>(std::min<int64_t>(128, align16(p.M)));
    t.baseN = static_cast<int32_t>(std::min<int64_t>(256, align16(p.N)));
    t.baseK = static_cast<int32_t>(std::min<int64_t>(64, align16(p.K)));
    t.depthA1 = t.depthB1 = t.stepM = t.stepN = t.stepKa = t.stepKb = 1;
    t.dbL0A = t.dbL0B = 2;
    t.dbL0C = 1;
    t.isBias = p.bias ? 1 : 0;
}

void FillTiling(const HostCall &h, AagBmmTilingData &td)
{
    std::memset(static_cast<void *>(&td), 0, sizeof(td));
    SimMc2Init init;
    std::memcpy(static_cast<void *>(&td.mc2InitTiling), &init, sizeof(init));
    auto cc = [](const moe_mc2::CcConfig &cfg, AscendC::tiling::Mc2CcTiling &dst) {
        SimMc2Cc b;
        b.opType = cfg.opType;
        std::strncpy(b.groupName, cfg.group.c_str(), sizeof(b.groupName) - 1);
        std::strncpy(b.algConfig, cfg.algConfig.c_str(), sizeof(b.algConfig) - 1);
        std::memcpy(static_cast<void *>(&dst), &b, sizeof(b));
    };
    cc(h.kt.alltoall, td.alltoallCcTiling);
    cc(h.kt.allgather, td.allgatherCcTiling);
    ModelCubeTiling(h.kt.cube, td.mmTiling);
    ModelCubeTiling(h.kt.cube, td.mmRingTiling);
    td.geom = h.kt.plan.g;
    td.userWorkspaceBytes = h.kt.userWorkspaceBytes;
    td.aivNum = h.kt.aivNum;
    td.ubBytes = h.kt.ubBytes;
    td.copyUbBytes = h.kt.copyUbBytes;
}

/* shard 1's order of the rows: own_ahead, and peer_ahead (-1: the peer rows wait with the far rows) */
void OrderJson(Json &j, const aag::Geom &g)
{
    j.Key("own_ahead").Num(g.ownAhead).Key("peer_ahead").Num(g.splitPeer ? static_cast<int64_t>(g.peerAhead) : -1);
}

void TilingJson(Json &j, const HostCall &h, const AagBmmTilingData &td)
{
    const aag::Geom &g = h.kt.plan.g;
    j.Key("tiling").Open('{');
    j.Key("key").Num(h.kt.tilingKey).Key("block_dim").Num(h.kt.blockDim);
    j.Key("workspace_bytes").Num(h.kt.workspaceBytes).Key("user_workspace_bytes").Num(h.kt.userWorkspaceBytes);
    j.Key("ub_bytes").Num(h.kt.ubBytes).Key("copy_ub_bytes").Num(h.kt.copyUbBytes);
    j.Key("ub_used_bytes").Num(h.kt.ubUsedBytes);
    j.Key("tiles").Num(aag::NumTiles(g)).Key("tile_ends").Open('[');
    for (uint32_t k = 0; k < g.nTiles; ++k) j.Num(g.tileEnd[k]);
    j.Close(']');
    j.Key("unit_m").Num(g.unitM).Key("unit_n").Num(g.unitN).Key("ring").Bool(g.ring != 0U);
    OrderJson(j, g);
    j.Key("bias_in_cube").Bool(g.biasInCube != 0U).Key("epi_rows").Num(g.epiRows);
    j.Key("El").Num(g.El).Key("Rx").Num(g.Rx).Key("Hx").Num(g.Hx).Key("C").Num(g.C).Key("H").Num(g.H).Key("N").Num(g.N);
    j.Key("description").Str(h.kt.plan.pred.tiling);
    j.Key("makespan_us").Num(h.kt.plan.pred.makespan * 1e6).Key("bound_us").Num(h.kt.plan.pred.bound * 1e6);
    j.Key("mm").Open('{').Key("M").Num(td.mmTiling.M).Key("N").Num(td.mmTiling.N).Key("K").Num(td.mmTiling.Ka);
    j.Key("is_bias").Num(td.mmTiling.isBias).Close('}');
    j.Key("shapes").Open('{');
    auto shape = [&j](const char *name, const std::vector<int64_t> &s) {
        j.Key(name).Open('[');
        for (int64_t d : s) j.Num(d);
        j.Close(']');
    };
    shape("x", h.args.x);
    shape("weight", h.args.weight);
    shape("bias", h.args.bias);
    shape("y1", h.shapes.y1);
    shape("y2", h.shapes.y2);
    shape("y3", h.shapes.y3);
    j.Close('}');
    j.Close('}');
}

void RuleJson(Json &j, const moe_mc2::RuleError &e)
{
    j.Key("valid").Bool(false).Key("rule").Str(e.rule).Key("arg").Str(e.arg).Key("error").Str(e.error);
    j.Key("message").Str(e.message);
}

uint64_t Prod(const std::vector<int64_t> &s)
{
    uint64_t n = 1;
    for (int64_t d : s) n *= static_cast<uint64_t>(d);
    return n;
}

/* ------------------------------------------------------ world building */
struct Space {  // address space of one rank in counting mode: reserved, never touched
    uint8_t *base = nullptr;
    size_t size = 0, used = 0;
    ~Space()
    {
        if (base) munmap(base, size);
    }
};

GmBuffer *AddBuffer(Rank &r, Space *space, const std::string &name, uint64_t bytes, bool real)
{
    auto b = std::make_unique<GmBuffer>();
    b->name = name;
    b->size = bytes;
    const uint64_t alloc = std::max<uint64_t>(bytes, 1);
    if (real) {
        b->own.reset(new uint8_t[alloc + 64]);
        uint8_t *p = b->own.get();
        p += (64 - reinterpret_cast<uintptr_t>(p) % 64) % 64;
        b->base = p;
        if (r.w->raceCheck && !r.w->countOnly) b->shadow.assign((alloc + kShadowGrain - 1) / kShadowGrain, Shadow{});
    } else {
        b->base = space->base + space->used;
        space->used += (alloc + 4095) / 4096 * 4096 + 4096;
    }
    b->counter = r.AddCounter(name);
    GmBuffer *raw = b.get();
    r.bufs.push_back(std::move(b));
    return raw;
}

struct Launch {
    KernelFn fn = nullptr;
    std::vector<std::array<uint8_t *, 8>> args;  // per rank
};

void CoreMain(World *w, Core *c, KernelFn fn, std::array<uint8_t *, 8> a)
{
    SetCurrent(w, c);
    try {
        fn(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
    } catch (const SimAbort &) {
    } catch (const std::exception &e) {
        std::lock_guard<std::mutex> g(w->mu);
        RecordError(c->label + ": C++ exception: " + e.what());
    } catch (...) {
        std::lock_guard<std::mutex> g(w->mu);
        RecordError(c->label + ": unknown C++ exception");
    }
    std::lock_guard<std::mutex> g(w->mu);
    c->finished = true;
    --w->alive;
    CheckDeadlockLocked(*w);
    w->cv.notify_all();
}

std::mutex gRunMutex;

}  // namespace

namespace {

void PartJson(Json &j, const char *name, double start, double end, const moe_mc2::PartTime &pt)
{
    j.Key(name).Open('{').Key("start_us").Num(start * 1e6).Key("end_us").Num(end * 1e6);
    j.Key("cube_us").Num(pt.cube * 1e6).Key("vector_us").Num(pt.vector * 1e6).Key("hbm_us").Num(pt.hbm * 1e6);
    j.Key("l2_us").Num(pt.l2 * 1e6).Key("fixed_us").Num(pt.fixed * 1e6).Close('}');
}

void PredJson(Json &j, const moe_mc2::Prediction &p)
{
    j.Open('{');
    j.Key("schedule").Str(p.schedule).Key("description").Str(p.tiling);
    j.Key("makespan_us").Num(p.makespan * 1e6).Key("bound_us").Num(p.bound * 1e6);
    j.Key("ratio").Num(p.bound > 0 ? p.makespan / p.bound : 0.0);
    j.Key("comm_ideal_us").Num(p.commIdeal * 1e6).Key("compute_ideal_us").Num(p.computeIdeal * 1e6);
    j.Key("comm_total_us").Num(p.commTotal * 1e6).Key("compute_total_us").Num(p.computeTotal * 1e6);
    j.Key("hbm_bytes_floor").Num(p.hbmFloor);
    j.Key("hbm_data_read").Num(p.bytes.hbmDataRead).Key("hbm_data_write").Num(p.bytes.hbmDataWrite);
    j.Key("hbm_bytes_model").Num(p.bytes.HbmData()).Key("hbm_workspace").Num(p.bytes.hbmWorkspace);
    j.Key("gm_data").Num(p.bytes.gmData).Key("gm_workspace").Num(p.bytes.gmWorkspace);
    j.Key("comm_read").Num(p.bytes.commRead).Key("comm_write").Num(p.bytes.commWrite);
    j.Key("cube_flops").Num(p.cubeFlops).Key("cube_flops_exact").Num(p.cubeFlopsExact);
    j.Key("matmul_calls").Num(p.matmulCalls).Key("vector_elem_ops").Num(p.vectorElemOps);
    j.Key("sync_alls").Num(p.syncAlls).Key("waits").Num(p.waits).Key("collectives").Num(p.collectives);
    j.Key("tiles").Open('[');
    for (const auto &t : p.tiles) {
        j.Open('{').Key("cells").Open('[').Num(t.cellBegin).Num(t.cellEnd).Close(']');
        j.Key("a2a_us").Open('[').Num(t.a2aStart * 1e6).Num(t.a2aEnd * 1e6).Close(']');
        j.Key("ag_us").Open('[').Num(t.agStart * 1e6).Num(t.agEnd * 1e6).Close(']');
        PartJson(j, "own", t.ownStart, t.ownEnd, t.own);
        PartJson(j, "peer", t.peerStart, t.peerEnd, t.peer);
        PartJson(j, "far", t.farStart, t.farEnd, t.far);
        j.Key("cube_flops").Num(t.cubeFlops).Key("hbm_bytes").Num(t.bytes.HbmData());
        j.Key("gm_bytes").Num(t.bytes.gmData + t.bytes.gmWorkspace).Close('}');
    }
    j.Close(']');
    j.Close('}');
}

void ConstantsJson(Json &j, const moe_mc2::CostConstants &c)
{
    j.Key("constants").Open('{');
    j.Key("cube_flops_per_s").Num(c.cubeFlopsPerSec).Key("hbm_bytes_per_s").Num(c.hbmBytesPerSec);
    j.Key("l2_bytes_per_s").Num(c.l2BytesPerSec).Key("link_bytes_per_s").Num(c.linkBytesPerSec);
    j.Key("vector_elem_ops_per_s").Num(c.vecElemOpsPerSec).Key("collective_latency_s").Num(c.collectiveLatencySec);
    j.Key("sync_all_s").Num(c.syncAllSec).Key("wait_s").Num(c.waitSec).Key("matmul_call_s").Num(c.matmulCallSec);
    j.Key("matmul_sync_call_s").Num(c.matmulSyncCallSec).Key("hccl_max_bytes_per_call").Num(c.hcclMaxBytesPerCall);
    j.Key("groups_overlap").Bool(c.groupsOverlap).Key("l2_bytes").Num(c.mem.l2Bytes);
    j.Key("l2_line_bytes").Num(c.mem.l2LineBytes).Key("max_tiles").Num(aag::kMaxTiles);
    j.Close('}');
}

/* The host side of `call` into `h`; when the call breaks a rule, the rule as the JSON answer
 * (the entry points then return 2). `j` is the answer's open object. */
bool HostOrReport(const AagSimCall &call, HostCall &h, Json &j, char *out, size_t outLen)
{
    if (Host(call, h)) return true;
    RuleJson(j, h.err);
    j.Close('}');
    Emit(j.Text(), out, outLen);
    return false;
}

}  // namespace

extern "C" int aag_sim_cost(const AagSimCall *call, char *out, size_t outLen)
{
    HostCall h;
    Json j;
    j.Open('{');
    if (!HostOrReport(*call, h, j, out, outLen)) return 2;
    moe_mc2::PlatformInfo pi;
    pi.aicNum = static_cast<uint32_t>(call->aicPerRank);
    pi.aivNum = 2U * pi.aicNum;
    pi.ubBytes = static_cast<uint64_t>(call->ubBytes);
    const moe_mc2::Machine m = moe_mc2::MachineOf(pi);
    moe_mc2::CostConstants cc;
    if (call->l2Bytes > 0) cc.mem.l2Bytes = static_cast<uint64_t>(call->l2Bytes);
    if (call->collectiveLatencyUs > 0) cc.collectiveLatencySec = call->collectiveLatencyUs * 1e-6;
    if (call->serialGroups != 0) cc.groupsOverlap = false;
    // the host tiling's plan (or the forced one), re-priced with these constants
    const moe_mc2::Plan planned = ForcesThePlan(*call) ? h.kt.plan : moe_mc2::PlanTiles(h.args, m, cc);
    const aag::Geom &g = planned.g;
    const moe_mc2::Prediction chosen = moe_mc2::Evaluate(h.args, g, m, cc);
    const moe_mc2::Dims d = moe_mc2::DeriveDims(h.args);
    const moe_mc2::Prediction single =
        moe_mc2::Evaluate(h.args, moe_mc2::MakeGeom(h.args, {static_cast<uint64_t>(d.El * d.Rx)}, m), m, cc);
    const moe_mc2::Prediction ref = moe_mc2::EvaluateReference(h.args, m, cc);
    const moe_mc2::Prediction legacy = moe_mc2::EvaluateLegacy(
        h.args, m, static_cast<uint64_t>(std::max<int64_t>(0, call->legacyETile)),
        static_cast<uint64_t>(std::max<int64_t>(0, call->legacyCTile)), cc);
    j.Key("valid").Bool(true);
    j.Key("machine").Open('{').Key("aic").Num(m.aicNum).Key("aiv").Num(m.aivNum).Key("ub_bytes").Num(m.ubBytes);
    j.Close('}');
    ConstantsJson(j, cc);
    j.Key("candidates").Num(planned.candidates);
    j.Key("tile_ends").Open('[');
    for (uint32_t k = 0; k < g.nTiles; ++k) j.Num(g.tileEnd[k]);
    j.Close(']');
    j.Key("unit_m").Num(g.unitM).Key("unit_n").Num(g.unitN).Key("ring").Bool(g.ring != 0U);
    OrderJson(j, g);
    j.Key("shard").Num(g.shard);
    j.Key("plan");
    PredJson(j, chosen);
    j.Key("single_tile");
    PredJson(j, single);
    j.Key("reference");
    PredJson(j, ref);
    j.Key("legacy");
    PredJson(j, legacy);
    j.Close('}');
    Emit(j.Text(), out, outLen);
    return 0;
}

extern "C" int aag_sim_plan(const AagSimCall *call, char *out, size_t outLen)
{
    HostCall h;
    Json j;
    j.Open('{');
    if (!HostOrReport(*call, h, j, out, outLen)) return 2;
    AagBmmTilingData td;
    FillTiling(h, td);
    j.Key("valid").Bool(true);
    TilingJson(j, h, td);
    j.Close('}');
    Emit(j.Text(), out, outLen);
    return 0;
}

extern "C" int aag_sim_run(const AagSimCall *call, char *out, size_t outLen)
{
    std::lock_guard<std::mutex> runGuard(gRunMutex);
    const auto t0 = std::chrono::steady_clock::now();
    const AagSimCall &c = *call;
    HostCall h;
    Json j;
    j.Open('{');
    if (!HostOrReport(c, h, j, out, outLen)) return 2;
    AagBmmTilingData td;
    FillTiling(h, td);
    const std::string kernel = c.kernel ? c.kernel : "aag";
    KernelFn fn = nullptr;
    if (kernel == "aag") {
        if (h.args.xDtype == moe_mc2::DType::kFloat16) {
            fn = (!h.args.hasBias || h.args.biasDtype == moe_mc2::DType::kFloat16) ? aag_kernel_fp16 : nullptr;
        } else if (!h.args.hasBias || h.args.biasDtype == moe_mc2::DType::kFloat32) {
            fn = aag_kernel_bf16;
        } else if (h.args.biasDtype == moe_mc2::DType::kBFloat16) {
            fn = aag_kernel_bf16_bf16bias;
        }
        if (fn == nullptr) {
            moe_mc2::RuleError e;
            e.rule = "bias.dtype";
            e.arg = "bias";
            e.error = "TypeError";
            e.message = "no compiled kernel for this x / bias dtype pair";
            RuleJson(j, e);
            j.Close('}');
            Emit(j.Text(), out, outLen);
            return 2;
        }
    } else {
        fn = FindProbe(kernel);
        if (fn == nullptr) {
            j.Key("valid").Bool(false).Key("rule").Str("kernel").Key("message").Str("unknown kernel '" + kernel + "'");
            j.Close('}');
            Emit(j.Text(), out, outLen);
            return 2;
        }
    }

    // ---------------------------------------------------------- the world
    auto wp = std::make_unique<World>();
    World &w = *wp;
    w.rng.seed(c.seed);
    w.maxDelay = static_cast<int>(c.maxDelay);
    w.countOnly = c.countOnly != 0;
    w.raceCheck = c.raceCheck != 0 && !w.countOnly;
    w.tilingKey = h.kt.tilingKey;
    w.launchType = 5;  // KERNEL_TYPE_MIX_AIC_1_2
    w.groupNames[0] = h.args.groupEp;
    w.groupNames[1] = h.args.groupTp;
    const int ep = static_cast<int>(c.ep), tp = static_cast<int>(c.tp), world = ep * tp;
    for (int t = 0; t < tp; ++t) {
        GroupInstance gi;
        gi.gid = 0;
        for (int i = 0; i < ep; ++i) gi.members.push_back(t * ep + i);
        w.insts.push_back(gi);
    }
    for (int i = 0; i < ep; ++i) {
        GroupInstance gi;
        gi.gid = 1;
        for (int t = 0; t < tp; ++t) gi.members.push_back(t * ep + i);
        w.insts.push_back(gi);
    }
    const aag::Geom &g = h.kt.plan.g;
    const aag::WsLayout ws = aag::Workspace(g, h.es);
    const uint64_t xBytes = Prod(h.args.x) * h.es;
    const uint64_t wBytes = Prod(h.args.weight) * h.es;
    const uint64_t bBytes = h.args.hasBias ? Prod(h.args.bias) * h.biasEs : 0;
    const uint64_t y1Bytes = Prod(h.shapes.y1) * h.es, y2Bytes = Prod(h.shapes.y2) * h.es, y3Bytes = Prod(h.shapes.y3) * h.es;
    const uint64_t sysWs = static_cast<uint64_t>(c.sysWorkspaceBytes);
    std::vector<std::unique_ptr<Space>> spaces;
    Launch launch;
    launch.fn = fn;
    const bool real = !w.countOnly;
    for (int r = 0; r < world; ++r) {
        auto rk = std::make_unique<Rank>();
        Rank &R = *rk;
        R.w = &w;
        R.world = r;
        R.epIdx = r % ep;
        R.tpIdx = r / ep;
        R.nAic = static_cast<int>(c.aicPerRank);
        R.nAiv = 2 * R.nAic;
        R.groups[0].inst = R.tpIdx;        // ep group number t
        R.groups[1].inst = tp + R.epIdx;   // tp group number i
        {
            const moe_mc2::MemoryConstants mc;
            R.l2.lineBytes = c.l2LineBytes > 0 ? static_cast<uint64_t>(c.l2LineBytes) : mc.l2LineBytes;
            const uint64_t cap = c.l2Bytes > 0 ? static_cast<uint64_t>(c.l2Bytes) : mc.l2Bytes;
            R.l2.capLines = std::max<uint64_t>(1, cap / R.l2.lineBytes);
        }
        for (int k = 0; k < R.nAic + R.nAiv; ++k) {
            auto core = std::make_unique<Core>();
            core->rank = &R;
            core->index = k;
            core->aic = k < R.nAic;
            core->blockIdx = core->aic ? k : k - R.nAic;
            core->subIdx = core->aic ? 0 : core->blockIdx % 2;
            core->label = Format("rank %d (ep %d, tp %d) %s %d", r, R.epIdx, R.tpIdx, core->aic ? "AIC" : "AIV",
                                 core->blockIdx);
            if (!core->aic) {
                core->ub.assign(static_cast<size_t>(c.ubBytes), 0xFF);
                core->ubState.assign((static_cast<size_t>(c.ubBytes) + 31) / 32, UbBlock{});
            }
            R.cores.push_back(std::move(core));
        }
        for (auto &core : R.cores) {
            core->vc.assign(static_cast<size_t>(R.Agents()), 0);
            core->vc[static_cast<size_t>(core->index)] = 1;
        }
        for (int gid = 0; gid < 2; ++gid) {
            R.agentVc[gid].assign(static_cast<size_t>(R.Agents()), 0);
            R.agentVc[gid][static_cast<size_t>(R.AgentOfGroup(gid))] = 1;
        }
        Space *space = nullptr;
        if (!real) {
            auto sp = std::make_unique<Space>();
            sp->size = (xBytes + wBytes + bBytes + y1Bytes + y2Bytes + y3Bytes + sysWs + ws.totalBytes) + 16 * 4096 * 8;
            sp->size = (sp->size + 4095) / 4096 * 4096;
            void *m = mmap(nullptr, sp->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (m == MAP_FAILED) {
                j.Key("valid").Bool(true).Key("ok").Bool(false);
                j.Key("errors").Open('[').Str("kernel_sim: cannot reserve the address space of a rank").Close(']');
                j.Close('}');
                Emit(j.Text(), out, outLen);
                return 1;
            }
            sp->base = static_cast<uint8_t *>(m);
            space = sp.get();
            spaces.push_back(std::move(sp));
        }
        GmBuffer *bx = AddBuffer(R, space, "x", xBytes, real);
        GmBuffer *bw = AddBuffer(R, space, "weight", wBytes, real);
        GmBuffer *bb = h.args.hasBias ? AddBuffer(R, space, "bias", bBytes, real) : nullptr;
        GmBuffer *by1 = AddBuffer(R, space, "y1", y1Bytes, real);
        GmBuffer *by2 = (y2Bytes > 0 && c.y2 != nullptr) ? AddBuffer(R, space, "y2", y2Bytes, real) : nullptr;
        GmBuffer *by3 = (y3Bytes > 0 && c.y3 != nullptr) ? AddBuffer(R, space, "y3", y3Bytes, real) : nullptr;
        GmBuffer *bws = AddBuffer(R, space, "workspace", sysWs + ws.totalBytes, real);
        GmBuffer *btl = AddBuffer(R, nullptr, "tiling", sizeof(AagBmmTilingData), true);
        GmBuffer *bctx = AddBuffer(R, nullptr, "hccl_context", 128, true);
        // workspace regions (aag::Workspace offsets behind the system workspace)
        auto region = [&R, bws, sysWs](const std::string &name, uint64_t off, uint64_t len) {
            if (len > 0) bws->regions.push_back(Region{sysWs + off, len, R.AddCounter(name)});
        };
        bws->regions.push_back(Region{0, sysWs, R.AddCounter("ws.sys")});
        region("ws.a2a", ws.a2aOff * h.es, ws.a2aElems * h.es);
        region("ws.ag", ws.agOff * h.es, ws.agElems * h.es);
        region("ws.asm", ws.asmOff * h.es, ws.asmElems * h.es);
        region("ws.ring", ws.ringOffBytes, ws.ringFloats * 4U);
        // the L2 model covers what the cores touch (the tiling and the HCCL context are not data)
        for (GmBuffer *gb : {bx, bw, bb, by1, by2, by3, bws}) {
            if (gb != nullptr) L2AddBuffer(R, *gb);
        }
        if (real) {
            std::memcpy(bx->base, c.x[r], xBytes);
            std::memcpy(bw->base, c.weight[r], wBytes);
            if (bb) std::memcpy(bb->base, c.biasData[r], bBytes);
            std::memset(by1->base, 0xFF, y1Bytes);
            if (by2) std::memset(by2->base, 0xFF, y2Bytes);
            if (by3) std::memset(by3->base, 0xFF, y3Bytes);
            std::memset(bws->base, 0xFF, bws->size);
        }
        std::memcpy(btl->base, &td, sizeof(td));
        std::memset(bctx->base, 0, 128);
        R.tiling = btl->base;
        R.tilingBytes = sizeof(td);
        R.workspace = bws->base;
        R.sysWorkspaceBytes = sysWs;
        R.hcclCtx = bctx->base;
        launch.args.push_back({bx->base, bw->base, bb ? bb->base : nullptr, by1->base, by2 ? by2->base : nullptr,
                               by3 ? by3->base : nullptr, bws->base, btl->base});
        w.ranks.push_back(std::move(rk));
    }

    // ------------------------------------------------------------- run
    std::vector<std::thread> threads;
    {
        std::lock_guard<std::mutex> lk(w.mu);
        for (auto &r : w.ranks) w.alive += static_cast<int>(r->cores.size());
    }
    for (size_t r = 0; r < w.ranks.size(); ++r) {
        for (auto &core : w.ranks[r]->cores) {
            threads.emplace_back(CoreMain, &w, core.get(), launch.fn, launch.args[r]);
        }
    }
    bool stuck = false;
    {
        std::unique_lock<std::mutex> lk(w.mu);
        uint64_t lastNow = w.now;
        auto lastMove = std::chrono::steady_clock::now();
        while (w.alive > 0) {
            w.cv.wait_for(lk, std::chrono::milliseconds(200));
            if (w.now != lastNow) {
                lastNow = w.now;
                lastMove = std::chrono::steady_clock::now();
            } else if (!w.abort && std::chrono::duration<double>(std::chrono::steady_clock::now() - lastMove).count() >
                                       c.watchdogSeconds) {
                SetCurrent(&w, nullptr);
                RecordError(Format("watchdog: no API call for %.1f s (a core loops without calling the API?); "
                                   "positions:\n", c.watchdogSeconds) + PositionReport(w));
            }
            if (w.abort && w.alive > 0 &&
                std::chrono::duration<double>(std::chrono::steady_clock::now() - lastMove).count() >
                    c.watchdogSeconds + 5.0) {
                stuck = true;
                break;
            }
        }
    }
    if (stuck) {
        for (auto &th : threads) th.detach();
        wp.release();  // cores still running reference the world: leak it
        j.Key("valid").Bool(true).Key("ok").Bool(false).Key("errors").Open('[');
        for (const auto &e : w.errors) j.Str(e);
        j.Close(']').Key("stuck").Bool(true);
        j.Close('}');
        Emit(j.Text(), out, outLen);
        return 1;
    }
    for (auto &th : threads) th.join();
    SetCurrent(&w, nullptr);

    // ------------------------------------------------ end-of-run checks
    std::vector<std::string> notes;
    if (w.errors.empty()) {
        try {
            while (!w.landings.empty()) RunOneLanding(w, true);  // the servers finish their queues
        } catch (const SimAbort &) {
        }
    }
    if (w.errors.empty()) {
        for (auto &r : w.ranks) {
            for (int gid = 0; gid < 2; ++gid) {
                HcclRankGroup &grp = r->groups[gid];
                if (!grp.initialised) continue;
                const char *gname = gid == 0 ? "group_ep" : "group_tp";
                if (!grp.finalized) {
                    w.errors.push_back(Format("rank %d %s: the working core never called Finalize (the server would "
                                              "not release the communicator)", r->world, gname));
                }
                for (const HcclEntry &e : grp.q) {
                    if (e.kind != EntryKind::kColl) continue;
                    if (e.commits < e.repeat) {
                        w.errors.push_back(Format("rank %d %s: handle %d was prepared but committed %d of %d times",
                                                  r->world, gname, e.handle, e.commits, e.repeat));
                    } else if (e.executed < e.commits) {
                        w.errors.push_back(Format("rank %d %s: handle %d was committed but never ran (a peer rank "
                                                  "did not commit it)", r->world, gname, e.handle));
                    }
                }
            }
            for (auto &core : r->cores) {
                if (core->mmPending) {
                    w.errors.push_back(core->label + ": an asynchronous IterateAll was never waited for");
                }
            }
        }
    }
    if (w.errors.empty()) {
        for (auto &r : w.ranks) L2Flush(*r);  // dirty lines reach HBM after the kernel
    }
    // ------------------------------------------------------- outputs
    if (real) {
        for (int r = 0; r < world; ++r) {
            const auto &a = launch.args[static_cast<size_t>(r)];
            std::memcpy(c.y1[r], a[3], y1Bytes);
            if (a[4] && c.y2 && c.y2[r]) std::memcpy(c.y2[r], a[4], y2Bytes);
            if (a[5] && c.y3 && c.y3[r]) std::memcpy(c.y3[r], a[5], y3Bytes);
        }
    }
    // -------------------------------------------------------- report
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    j.Key("valid").Bool(true).Key("ok").Bool(w.errors.empty());
    j.Key("kernel").Str(kernel).Key("count_only").Bool(w.countOnly).Key("seconds").Num(secs);
    j.Key("errors").Open('[');
    for (const auto &e : w.errors) j.Str(e);
    j.Close(']');
    j.Key("deadlock").Bool(!w.deadlock.empty());
    TilingJson(j, h, td);
    j.Key("ranks").Open('[');
    for (auto &r : w.ranks) {
        j.Open('{').Key("world").Num(r->world).Key("ep").Num(r->epIdx).Key("tp").Num(r->tpIdx);
        j.Key("bytes").Open('{');
        for (const ByteCounter &bc : r->ctr) {
            j.Key(bc.name).Open('{').Key("kernel_read").Num(bc.kernelRead).Key("kernel_write").Num(bc.kernelWrite);
            j.Key("comm_read").Num(bc.commRead).Key("comm_write").Num(bc.commWrite);
            j.Key("hbm_read").Num(bc.hbmRead).Key("hbm_write").Num(bc.hbmWrite);
            j.Key("hbm_write_at_end").Num(bc.hbmWriteAtEnd).Close('}');
        }
        j.Close('}');
        j.Key("cube_flops").Num(r->cubeFlops).Key("matmuls").Num(r->matmuls);
        j.Key("sync_all").Num(r->syncAllBarriers).Key("vector_elements").Num(r->vectorElems);
        j.Key("gm_copies").Num(r->gmDataCopies).Key("hccl_commits").Num(r->hcclCommits);
        j.Key("hccl_waits").Num(r->hcclWaits).Key("group_syncs").Num(r->groupSyncs);
        j.Key("collectives").Open('{');
        for (const auto &kv : r->collectives) {
            j.Key(kv.first).Open('{').Key("calls").Num(kv.second.calls).Key("bytes_sent").Num(kv.second.bytesSent);
            j.Key("bytes_recv").Num(kv.second.bytesRecv).Close('}');
        }
        j.Close('}');
        uint32_t ubHigh = 0;
        uint64_t api = 0;
        for (auto &core : r->cores) {
            ubHigh = std::max(ubHigh, core->ubHigh);
            api += core->apiCalls;
        }
        j.Key("ub_high_water").Num(ubHigh).Key("api_calls").Num(api);
        j.Key("l2_bytes").Num(r->l2.capLines * r->l2.lineBytes).Key("l2_line_bytes").Num(r->l2.lineBytes);
        j.Close('}');
    }
    j.Close(']');
    j.Close('}');
    Emit(j.Text(), out, outLen);
    return w.errors.empty() ? 0 : 1;
}
