/*
 * kernel_sim: the Matmul high-level API in MIX AIC:AIV 1:2 mode.
 *
 * AIV b's client hands each IterateAll to AIC b / 2 (the cube core of its AI
 * Core), which serves requests inside REGIST_MATMUL_OBJ until both of its AIVs
 * have left the kernel. The cube reads A and B from Global Memory, multiplies
 * with fp32 accumulation (fp16 / bf16 products are exact in fp32; the sum runs
 * over k in order), adds an fp32 bias, and writes C (fp32 as is; fp16 / bf16
 * rounded to nearest even). What the hardware's fractal layouts, L1/L0 tiling
 * and accumulation order do to the last bits of fp32 is not modelled.
 */
#include <algorithm>
#include <cstring>

#include "kernel_sim/sim_fp.h"
#include "sim_world.h"

namespace aag_sim {

namespace {

Core &Me()
{
    Core *c = CurCore();
    if (c == nullptr) throw std::logic_error("kernel_sim: Matmul API outside a simulated core");
    return *c;
}

uint64_t Bytes(Scalar s)
{
    switch (s) {
        case Scalar::kHalf: case Scalar::kBf16: case Scalar::kInt16: case Scalar::kUint16: return 2;
        case Scalar::kFloat: case Scalar::kInt32: case Scalar::kUint32: return 4;
        case Scalar::kInt8: case Scalar::kUint8: return 1;
        default: return 8;
    }
}

float LoadAs(Scalar s, const uint8_t *p)
{
    uint16_t b;
    switch (s) {
        case Scalar::kHalf: std::memcpy(&b, p, 2); return HalfBitsToFloat(b);
        case Scalar::kBf16: std::memcpy(&b, p, 2); return Bf16BitsToFloat(b);
        case Scalar::kFloat: { float f; std::memcpy(&f, p, 4); return f; }
        default: return 0.0f;
    }
}

void StoreAs(Scalar s, uint8_t *p, float v)
{
    uint16_t b;
    switch (s) {
        case Scalar::kHalf: b = FloatToHalfBits(v, Rounding::kRint); std::memcpy(p, &b, 2); break;
        case Scalar::kBf16: b = FloatToBf16Bits(v, Rounding::kRint); std::memcpy(p, &b, 2); break;
        case Scalar::kFloat: std::memcpy(p, &v, 4); break;
        default: break;
    }
}

Core *CubeOf(Core &aiv)
{
    for (auto &o : aiv.rank->cores) {
        if (o->aic && o->blockIdx == aiv.blockIdx / 2) return o.get();
    }
    return nullptr;
}

bool PartnersGone(Core &cube)
{
    for (auto &o : cube.rank->cores) {
        if (!o->aic && o->blockIdx / 2 == cube.blockIdx && !o->finished) return false;
    }
    return true;
}

void Validate(const MatmulCall &m)
{
    if (!m.aSet || !m.bSet) Fail("IterateAll before SetTensorA and SetTensorB");
    if (!m.aGm || !m.bGm || !m.cGm || (m.hasBias && !m.biasGm)) {
        Fail("only GM/ND operands are modelled (MatmulType<TPosition::GM, CubeFormat::ND, ...>)");
    }
    const bool f16 = m.aType == Scalar::kHalf && m.bType == Scalar::kHalf;
    const bool b16 = m.aType == Scalar::kBf16 && m.bType == Scalar::kBf16;
    if (!f16 && !b16) Fail("A and B must both be half or both bfloat16_t in the model");
    // Matmul's supported type combinations on Atlas A2/A3 (Matmul使用说明, table 2) for half / bf16 A and B:
    // C float, half or bfloat16_t; a bias of half or float (never bfloat16_t: SetBias documentation)
    const bool cOk = m.cType == Scalar::kFloat || m.cType == Scalar::kHalf || m.cType == Scalar::kBf16;
    if (!cOk) Fail("C must be float, half or bfloat16_t (Matmul's type table for Atlas A2/A3)");
    if (m.hasBias) {
        if (m.biasType != Scalar::kFloat && m.biasType != Scalar::kHalf) {
            Fail("the bias of Matmul must be half or float on Atlas A2/A3 (SetBias documentation)");
        }
        // table 2 rows with a bias: (half, half | half: C float / bf16 / half; float: C float / half / bf16),
        // (bf16, bf16 | float: C float / bf16 / half; half: C float / half)
        if (b16 && m.biasType == Scalar::kHalf && m.cType == Scalar::kBf16) {
            Fail("bf16 A/B with a half bias and bf16 C is not a supported Matmul type combination on Atlas A2/A3");
        }
    }
    if (m.transA && !m.aTransType) Fail("SetTensorA(..., true) needs MatmulType<..., isTrans = true> for A");
    if (m.transB && !m.bTransType) Fail("SetTensorB(..., true) needs MatmulType<..., isTrans = true> for B");
    if (m.singleM <= 0 || m.singleN <= 0 || m.singleK <= 0) {
        Fail(Format("single shape %d x %d x %d is not positive (SetSingleShape or the tiling)", m.singleM, m.singleN,
                    m.singleK));
    }
    if (m.orgM <= 0 || m.orgN <= 0 || m.orgKa <= 0 || m.orgKb <= 0) {
        Fail(Format("original shape M=%d N=%d Ka=%d Kb=%d is not positive (SetOrgShape or the tiling)", m.orgM,
                    m.orgN, m.orgKa, m.orgKb));
    }
    if (m.singleM > m.orgM || m.singleN > m.orgN || m.singleK > m.orgKa || m.singleK > m.orgKb) {
        Fail(Format("single shape %d x %d x %d exceeds the original shape M=%d N=%d Ka=%d Kb=%d", m.singleM,
                    m.singleN, m.singleK, m.orgM, m.orgN, m.orgKa, m.orgKb));
    }
    if (m.enAtomic != 0 && m.enAtomic != 1) Fail("only enAtomic 0 (none) and 1 (add) are modelled");
}

}  // namespace

void MatmulRegisterObject(const void *object, const void *tiling, int index)
{
    Core &c = Me();
    (void)object;
    (void)tiling;
    if (index >= 4) Fail("at most 4 Matmul objects per kernel");
    c.mmObjects = std::max(c.mmObjects, index + 1);
}

bool MatmulServeOnCube()
{
    Core &c = Me();
    if (!c.aic) return false;
    c.mmServing = true;
    Rank &r = *c.rank;
    while (true) {
        // the cube cores of a rank run at the same speed: a request runs once every older request of the
        // rank has run (issue order), so the L2 model sees the accesses of concurrent cores interleaved as
        // on the device rather than in the host's thread order; no happens-before edge comes from this
        BlockUntil([&c, &r] {
            return (!c.mmQueue.empty() && c.mmQueue.front()->seq == *r.mmPendingSeqs.begin()) ||
                   (c.mmQueue.empty() && PartnersGone(c));
        }, "REGIST_MATMUL_OBJ (cube core serving its vector cores)");
        if (c.mmQueue.empty()) break;
        std::shared_ptr<MatmulReq> req = c.mmQueue.front();
        c.mmQueue.pop_front();
        ExecuteMatmul(c, *req);
        r.mmPendingSeqs.erase(req->seq);
        req->done = true;
        Notify();
    }
    c.mmServing = false;
    return true;
}

void MatmulIterateAll(const MatmulCall &call, bool sync)
{
    Core &c = Me();
    if (c.aic) Fail("the Matmul client is driven from the vector cores in MIX mode");
    if (c.mmObjects == 0) Fail("IterateAll without REGIST_MATMUL_OBJ");
    Validate(call);
    if (c.mmPending) Fail("IterateAll while an asynchronous IterateAll is in flight (WaitIterateAll missing)");
    Core *cube = CubeOf(c);
    if (cube == nullptr || cube->finished) Fail("the cube core of this AI Core has left the kernel");
    auto req = std::make_shared<MatmulReq>();
    req->seq = ++c.rank->mmIssued;
    c.rank->mmPendingSeqs.insert(req->seq);
    req->call = call;
    req->vc = c.vc;
    req->requester = c.index;
    ++c.vc[static_cast<size_t>(c.index)];
    cube->mmQueue.push_back(req);
    Notify();
    if (sync) {
        BlockUntil([req] { return req->done; }, Format("Matmul::IterateAll on %s", cube->label.c_str()));
        Join(c.vc, req->doneVc);
    } else {
        c.mmPending = req;
    }
}

void MatmulWaitIterateAll(const void *object)
{
    Core &c = Me();
    (void)object;
    if (!c.mmPending) Fail("WaitIterateAll without an asynchronous IterateAll");
    auto req = c.mmPending;
    BlockUntil([req] { return req->done; }, "Matmul::WaitIterateAll");
    Join(c.vc, req->doneVc);
    c.mmPending.reset();
}

void MatmulEnd(const void *object)
{
    Core &c = Me();
    if (c.mmPending && c.mmPending->call.object == object) {
        Fail("End while an asynchronous IterateAll is in flight (WaitIterateAll missing)");
    }
}

void ExecuteMatmul(Core &cube, MatmulReq &req)
{
    Rank &r = *cube.rank;
    Join(cube.vc, req.vc);
    const MatmulCall &m = req.call;
    const uint64_t M = static_cast<uint64_t>(m.singleM), N = static_cast<uint64_t>(m.singleN);
    const uint64_t K = static_cast<uint64_t>(m.singleK);
    const uint64_t ea = Bytes(m.aType), eb = Bytes(m.bType), ec = Bytes(m.cType), ebias = Bytes(m.biasType);
    const uint64_t cN = static_cast<uint64_t>(m.orgKc > 0 ? m.orgKc : m.orgN);
    const uint8_t *A = static_cast<const uint8_t *>(m.a);
    const uint8_t *B = static_cast<const uint8_t *>(m.b);
    uint8_t *C = static_cast<uint8_t *>(m.c);
    const uint8_t *bias = static_cast<const uint8_t *>(m.bias);
    const char *what = "Matmul (cube)";
    // A: M x K, row stride Ka (or K x M, row stride M, transposed)
    if (!m.transA) {
        for (uint64_t i = 0; i < M; ++i) GmAccessAs(r, cube.index, cube.vc, A + i * m.orgKa * ea, K * ea, false, false, what);
    } else {
        for (uint64_t k = 0; k < K; ++k) GmAccessAs(r, cube.index, cube.vc, A + k * m.orgM * ea, M * ea, false, false, what);
    }
    // B: K x N, row stride N (or N x K, row stride Kb, transposed)
    if (!m.transB) {
        for (uint64_t k = 0; k < K; ++k) GmAccessAs(r, cube.index, cube.vc, B + k * m.orgN * eb, N * eb, false, false, what);
    } else {
        for (uint64_t j = 0; j < N; ++j) GmAccessAs(r, cube.index, cube.vc, B + j * m.orgKb * eb, K * eb, false, false, what);
    }
    if (m.hasBias) GmAccessAs(r, cube.index, cube.vc, bias, N * ebias, false, false, what);
    if (m.enAtomic == 1) {
        for (uint64_t i = 0; i < M; ++i) GmAccessAs(r, cube.index, cube.vc, C + i * cN * ec, N * ec, false, false, what);
    }
    for (uint64_t i = 0; i < M; ++i) GmAccessAs(r, cube.index, cube.vc, C + i * cN * ec, N * ec, true, false, what);
    r.cubeFlops += 2ULL * M * N * K;
    ++r.matmuls;
    if (!r.w->countOnly) {
        std::vector<float> a(M * K), b(K * N);
        for (uint64_t i = 0; i < M; ++i)
            for (uint64_t k = 0; k < K; ++k)
                a[i * K + k] = LoadAs(m.aType, m.transA ? A + (k * m.orgM + i) * ea : A + (i * m.orgKa + k) * ea);
        for (uint64_t k = 0; k < K; ++k)
            for (uint64_t j = 0; j < N; ++j)
                b[k * N + j] = LoadAs(m.bType, m.transB ? B + (j * m.orgKb + k) * eb : B + (k * m.orgN + j) * eb);
        for (uint64_t i = 0; i < M; ++i) {
            for (uint64_t j = 0; j < N; ++j) {
                float acc = 0.0f;
                for (uint64_t k = 0; k < K; ++k) acc += a[i * K + k] * b[k * N + j];  // fp32 multiply-add
                if (m.hasBias) acc += LoadAs(m.biasType, bias + j * ebias);
                uint8_t *dst = C + (i * cN + j) * ec;
                if (m.enAtomic == 1) acc += LoadAs(m.cType, dst);
                StoreAs(m.cType, dst, acc);
            }
        }
    }
    req.doneVc = cube.vc;
    ++cube.vc[static_cast<size_t>(cube.index)];
}

}  // namespace aag_sim
