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
#include <cstring>
#include <sstream>
#include <thread>

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
        os_ << v;
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
    h.err = (c.eTile > 0 || c.cTile > 0)
                ? moe_mc2::MakeKernelTilingWithTiles(a, p, static_cast<uint64_t>(c.eTile), static_cast<uint64_t>(c.cTile), h.kt)
                : moe_mc2::MakeKernelTiling(a, p, h.kt);
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

/* the model's TCubeTiling: the run's (M x K) * (K x N) split over the cube cores
 * in 16-aligned blocks (not CANN's MultiCoreMatmulTiling; the kernel reads only
 * the shapes, singleCoreM/N and usedCoreNum) */
void ModelCubeTiling(const moe_mc2::CubeProblem &p, int64_t block, AscendC::tiling::TCubeTiling &t)
{
    auto ceil = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
    auto align16 = [](int64_t v) { return (v + 15) / 16 * 16; };
    t = AscendC::tiling::TCubeTiling{};
    t.M = p.M;
    t.N = p.N;
    t.Ka = t.Kb = p.K;
    const int64_t cores = std::max<int64_t>(1, p.cores);
    const int64_t nSplit = std::min<int64_t>(cores, ceil(p.N, 16));
    const int64_t sN = std::min<int64_t>(p.N, align16(ceil(p.N, nSplit)));
    const int64_t mSplit = std::max<int64_t>(1, cores / nSplit);
    const int64_t sM = std::min<int64_t>(p.M, align16(ceil(p.M, mSplit)));
    t.singleCoreM = static_cast<int32_t>(sM);
    t.singleCoreN = static_cast<int32_t>(sN);
    t.singleCoreK = p.K;
    t.usedCoreNum = static_cast<int32_t>(std::min<int64_t>(cores, ceil(p.M, sM) * ceil(p.N, sN)));
    if (block > 0) {  // small blocks, one core left idle: every core loops over several blocks
        t.singleCoreM = static_cast<int32_t>(std::min<int64_t>(p.M, block));
        t.singleCoreN = static_cast<int32_t>(std::min<int64_t>(p.N, block));
        const int64_t blocks = ceil(p.M, t.singleCoreM) * ceil(p.N, t.singleCoreN);
        t.usedCoreNum = static_cast<int32_t>(std::min<int64_t>(blocks, std::max<int64_t>(1, cores - 1)));
    }
    t.baseM = static_cast<int32_t>(std::min<int64_t>(128, align16(sM)));
    t.baseN = static_cast<int32_t>(std::min<int64_t>(256, align16(sN)));
    t.baseK = static_cast<int32_t>(std::min<int64_t>(64, align16(p.K)));
    t.depthA1 = t.depthB1 = t.stepM = t.stepN = t.stepKa = t.stepKb = 1;
    t.dbL0A = t.dbL0B = 2;
    t.dbL0C = 1;
}

void FillTiling(const HostCall &h, int64_t cubeBlock, AagBmmTilingData &td)
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
    ModelCubeTiling(h.kt.cube, cubeBlock, td.mmTiling);
    td.geom = h.kt.plan.g;
    td.userWorkspaceBytes = h.kt.userWorkspaceBytes;
    td.aivNum = h.kt.aivNum;
    td.ubBytes = h.kt.ubBytes;
    td.copyUbBytes = h.kt.copyUbBytes;
    td.epiColChunk = h.kt.epiColChunk;
}

void TilingJson(Json &j, const HostCall &h, const AagBmmTilingData &td)
{
    const aag::Geom &g = h.kt.plan.g;
    j.Key("tiling").Open('{');
    j.Key("key").Num(h.kt.tilingKey).Key("block_dim").Num(h.kt.blockDim);
    j.Key("workspace_bytes").Num(h.kt.workspaceBytes).Key("user_workspace_bytes").Num(h.kt.userWorkspaceBytes);
    j.Key("ub_bytes").Num(h.kt.ubBytes).Key("copy_ub_bytes").Num(h.kt.copyUbBytes);
    j.Key("epi_col_chunk").Num(h.kt.epiColChunk);
    j.Key("e_tile").Num(g.eTile).Key("c_tile").Num(g.cTile).Key("tiles").Num(aag::NumTiles(g));
    j.Key("El").Num(g.El).Key("Rx").Num(g.Rx).Key("Hx").Num(g.Hx).Key("C").Num(g.C).Key("H").Num(g.H).Key("N").Num(g.N);
    j.Key("makespan_us").Num(h.kt.plan.makespan * 1e6).Key("no_overlap_us").Num(h.kt.plan.noOverlap * 1e6);
    j.Key("mm").Open('{').Key("M").Num(td.mmTiling.M).Key("N").Num(td.mmTiling.N).Key("K").Num(td.mmTiling.Ka);
    j.Key("single_core_m").Num(td.mmTiling.singleCoreM).Key("single_core_n").Num(td.mmTiling.singleCoreN);
    j.Key("used_core_num").Num(td.mmTiling.usedCoreNum).Close('}');
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

extern "C" int aag_sim_plan(const AagSimCall *call, char *out, size_t outLen)
{
    HostCall h;
    Json j;
    j.Open('{');
    if (!Host(*call, h)) {
        RuleJson(j, h.err);
        j.Close('}');
        Emit(j.Text(), out, outLen);
        return 2;
    }
    AagBmmTilingData td;
    FillTiling(h, call->cubeBlock, td);
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
    if (!Host(c, h)) {
        RuleJson(j, h.err);
        j.Close('}');
        Emit(j.Text(), out, outLen);
        return 2;
    }
    AagBmmTilingData td;
    FillTiling(h, call->cubeBlock, td);
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
        region("ws.local_ag", ws.localAgOff * h.es, ws.localAgElems * h.es);
        region("ws.y2buf", ws.y2Off * h.es, ws.y2Elems * h.es);
        region("ws.acc", ws.accOffBytes, ws.accElems * 4U);
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
