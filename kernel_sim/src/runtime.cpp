/*
 * kernel_sim runtime: world lock and logical clock, errors and core positions,
 * blocking and deadlock detection, Unified Buffer (capacity, pipe ordering),
 * Global Memory (bounds, happens-before races, byte counters), SyncAll and
 * cross-core flags.
 *
 * Happens-before: every core and each rank's two communication servers is an
 * agent with a vector clock. A release (SyncAll arrival, CrossCoreSetFlag,
 * Commit, a matmul request, a finished collective) publishes the agent's clock
 * and then advances it; an acquire (leaving SyncAll, CrossCoreWaitFlag, Wait,
 * a finished matmul, a collective starting) joins the published clock. Every
 * 2 bytes of Global Memory remember the agent and clock of their last write;
 * a read or write by another agent that has not acquired that clock is a race
 * and an error, whatever the timing of the run.
 */
#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <sstream>

#include "sim_world.h"

namespace aag_sim {

namespace {

World *gWorld = nullptr;
thread_local Core *tCore = nullptr;
thread_local int tDepth = 0;
thread_local std::unique_lock<std::mutex> tLock;
thread_local uint32_t tInsn = 0;  // sequence number of the instruction in progress
thread_local const std::string *tServerCtx = nullptr;  // set while this thread runs a collective

const char *PipeName(int p)
{
    static const char *names[] = {"PIPE_S", "PIPE_V", "PIPE_M", "PIPE_MTE1", "PIPE_MTE2", "PIPE_MTE3", "PIPE_FIX"};
    return (p >= 0 && p < kPipeCount) ? names[p] : "PIPE_ALL";
}

Core &Me()
{
    if (tCore == nullptr) {
        throw std::logic_error("kernel_sim: an Ascend C API was called outside a simulated core");
    }
    return *tCore;
}

}  // namespace

void Join(VClock &into, const VClock &from)
{
    if (into.size() < from.size()) into.resize(from.size(), 0);
    for (size_t k = 0; k < from.size(); ++k) into[k] = std::max(into[k], from[k]);
}

World *CurWorld() { return gWorld; }
Core *CurCore() { return tCore; }
void SetCurrent(World *w, Core *c)
{
    gWorld = w;
    tCore = c;
}
std::unique_lock<std::mutex> &CurLock() { return tLock; }

int World::InstOf(int worldRank, int gid) const
{
    return ranks[static_cast<size_t>(worldRank)]->groups[gid].inst;
}

int Rank::AddCounter(const std::string &name)
{
    for (size_t k = 0; k < ctr.size(); ++k) {
        if (ctr[k].name == name) return static_cast<int>(k);
    }
    ctr.push_back(ByteCounter{name});
    return static_cast<int>(ctr.size() - 1);
}

GmBuffer *Rank::Find(const void *addr, uint64_t bytes)
{
    const uint8_t *a = static_cast<const uint8_t *>(addr);
    for (auto &b : bufs) {
        if (a >= b->base && a < b->base + b->size && bytes <= static_cast<uint64_t>(b->base + b->size - a)) {
            return b.get();
        }
    }
    return nullptr;
}

/* ------------------------------------------------------------ API scope */
ApiScope::ApiScope(const char *api)
{
    Core &c = Me();
    World &w = *gWorld;
    if (tDepth == 0) {
        tLock = std::unique_lock<std::mutex>(w.mu);
    }
    ++tDepth;
    c.api = api;
    ++c.apiCalls;
    prevInsn_ = tInsn;
    tInsn = ++c.seq;
    if (tDepth == 1) {
        ++w.now;
        if (!w.abort) {
            try {
                RunDueLandings(w);
            } catch (...) {
                if (--tDepth == 0) tLock.unlock();
                throw;
            }
        }
    }
    if (w.abort) {
        if (--tDepth == 0) tLock.unlock();
        throw SimAbort{};
    }
}

ApiScope::~ApiScope()
{
    tInsn = prevInsn_;
    if (--tDepth == 0) {
        tLock.unlock();
    }
}

std::string Format(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return buf;
}

void RecordError(const std::string &msg)
{
    World &w = *gWorld;
    if (w.errors.size() < 20) w.errors.push_back(msg);
    w.abort = true;
    w.cv.notify_all();
}

void Fail(const std::string &msg)
{
    World &w = *gWorld;
    std::unique_lock<std::mutex> own;
    if (tDepth == 0) own = std::unique_lock<std::mutex>(w.mu);
    Core *c = tCore;
    std::string where = tServerCtx ? (*tServerCtx + ": ")
                        : c ? (c->label + ": " + c->api + ": ") : std::string("kernel_sim: ");
    RecordError(where + msg);
    throw SimAbort{};
}

ServerContext::ServerContext(const std::string &what) : prev_(tServerCtx), what_(what) { tServerCtx = &what_; }
ServerContext::~ServerContext() { tServerCtx = prev_; }

void Notify() { gWorld->cv.notify_all(); }

std::string PositionReport(World &w)
{
    std::ostringstream os;
    for (auto &r : w.ranks) {
        for (auto &c : r->cores) {
            os << "  " << c->label << ": ";
            if (c->finished) {
                os << "left the kernel";
            } else if (!c->blockedOn.empty()) {
                os << "waits in " << c->blockedOn;
            } else {
                os << "running";
            }
            os << " (last API " << c->api << ", " << c->apiCalls << " API calls, " << c->syncAlls << " SyncAll)\n";
        }
    }
    return os.str();
}

void CheckDeadlockLocked(World &w)
{
    if (w.abort || w.alive <= 0 || w.blocked < w.alive || !w.landings.empty()) return;
    for (auto &r : w.ranks) {
        for (auto &c : r->cores) {
            if (!c->finished && c->waitPred && c->waitPred()) return;  // woken, not yet running
        }
    }
    w.deadlock = PositionReport(w);
    RecordError("deadlock: every core that has not left the kernel waits and nothing can wake it; positions:\n" +
                w.deadlock);
}

void BlockUntil(const std::function<bool()> &ready, const std::string &what)
{
    World &w = *gWorld;
    Core &c = Me();
    c.blockedOn = what;
    c.waitPred = ready;
    struct Clear {
        Core &c;
        ~Clear()
        {
            c.blockedOn.clear();
            c.waitPred = nullptr;
        }
    } clear{c};
    while (true) {
        if (w.abort) throw SimAbort{};
        if (ready()) return;
        if (!w.landings.empty()) {  // time passes while this core waits
            RunOneLanding(w, true);
            continue;
        }
        ++w.blocked;
        CheckDeadlockLocked(w);
        if (!w.abort) {
            w.cv.wait_for(tLock, std::chrono::milliseconds(100));
        }
        --w.blocked;
    }
}

/* ---------------------------------------------------------- core facts */
bool OnAiv() { return !Me().aic; }
bool OnAic() { return Me().aic; }
int64_t BlockIdx() { return Me().blockIdx; }
int64_t BlockNum() { return Me().rank->nAic; }
int64_t SubBlockIdx() { return Me().aic ? 0 : Me().subIdx; }
int64_t TaskRatio() { return Me().aic ? 1 : (Me().rank->nAic > 0 ? Me().rank->nAiv / Me().rank->nAic : 1); }
uint64_t TilingKey() { return gWorld->tilingKey; }
bool CountOnly() { return gWorld->countOnly; }

void CheckTilingBlob(const uint8_t *tiling, size_t structBytes)
{
    Rank &r = *Me().rank;
    if (tiling != r.tiling) {
        Fail("the tiling pointer is not the kernel's tiling argument");
    }
    if (structBytes != r.tilingBytes) {
        Fail(Format("the kernel reads a tiling struct of %zu bytes, the host tiling wrote %zu", structBytes,
                    r.tilingBytes));
    }
}

void DeclareKernelType(int type)
{
    ApiScope s("KERNEL_TASK_TYPE_DEFAULT");
    Core &c = Me();
    c.declaredType = type;
    if (gWorld->launchType >= 0 && type != gWorld->launchType) {
        Fail(Format("the kernel declares kernel type %d but was launched as %d (MIX AIC:AIV 1:2 = 5)", type,
                    gWorld->launchType));
    }
}

uint8_t *SysWorkspacePtr() { return Me().rank->workspace; }
uint8_t *UserWorkspacePtr(uint8_t *workspace)
{
    if (workspace == nullptr) return nullptr;
    return workspace + Me().rank->sysWorkspaceBytes;
}
uint8_t *HcclContextPtr(uint32_t index) { return Me().rank->hcclCtx + 64U * index; }

/* ------------------------------------------------------ Unified Buffer */
uint8_t *UbData() { return Me().ub.data(); }
uint32_t UbCapacity() { return static_cast<uint32_t>(Me().ub.size()); }

void PipeCreate(const void *pipe)
{
    Core &c = Me();
    if (c.aic) {
        // the cube core has no Unified Buffer; a TPipe there only owns L1/L0 buffers the model does not use
    }
    if (c.pipe != nullptr && c.pipe != pipe) {
        Fail("a second TPipe while one is alive (one TPipe per core)");
    }
    c.pipe = pipe;
    c.pipeEnd = 0;
}

void PipeDestroy(const void *pipe)
{
    Core *c = tCore;
    if (c == nullptr) return;
    std::unique_lock<std::mutex> own;
    if (tDepth == 0) own = std::unique_lock<std::mutex>(gWorld->mu);
    if (c->pipe == pipe) {
        c->pipe = nullptr;
        c->pipeEnd = 0;
    }
}

const void *CurrentPipe() { return Me().pipe; }

uint32_t PipeAlloc(uint32_t bytes, const char *what)
{
    Core &c = Me();
    if (c.aic) {
        Fail(Format("%s in the Unified Buffer requested on a cube core (AIC has no UB)", what));
    }
    if (static_cast<uint64_t>(c.pipeEnd) + bytes > c.ub.size()) {
        Fail(Format("%s of %u bytes does not fit the Unified Buffer: %u of %zu bytes are already allocated", what,
                    bytes, c.pipeEnd, c.ub.size()));
    }
    uint32_t off = c.pipeEnd;
    c.pipeEnd += bytes;
    c.ubHigh = std::max(c.ubHigh, c.pipeEnd);
    return off;
}

uint32_t PipeAllocEnd() { return Me().pipeEnd; }

void UbRequireAligned(uint64_t off, uint64_t align, const char *operand)
{
    if (off % align != 0U) {
        Fail(Format("%s starts at UB byte %llu, which is not %llu-byte aligned", operand,
                    static_cast<unsigned long long>(off), static_cast<unsigned long long>(align)));
    }
}

/* Pipe ordering. Instructions of different pipes (and of one pipe, for the
 * vector and MTE pipes) run asynchronously; done[P][Q] is the last
 * instruction of pipe P known complete before later instructions of pipe Q
 * (PipeBarrier, SetFlag/WaitFlag, SyncAll). A UB access that depends on an
 * earlier access of another instruction not so ordered is an error. */
void UbUse(int pipe, uint64_t off, uint64_t bytes, bool write, const char *operand)
{
    Core &c = Me();
    if (c.aic) Fail("Unified Buffer access on a cube core");
    if (off + bytes > c.ub.size()) {
        Fail(Format("%s: UB bytes [%llu, %llu) exceed the %zu-byte Unified Buffer", operand,
                    static_cast<unsigned long long>(off), static_cast<unsigned long long>(off + bytes), c.ub.size()));
    }
    if (bytes == 0) return;
    const uint32_t me = tInsn;
    const uint64_t b0 = off / 32U, b1 = (off + bytes - 1U) / 32U;
    for (uint64_t b = b0; b <= b1; ++b) {
        UbBlock &blk = c.ubState[b];
        if (blk.wPipe != 0xFF && blk.wSeq != me && !(blk.wPipe == pipe && pipe == kPipeS) &&
            blk.wSeq > c.done[blk.wPipe][pipe]) {
            Fail(Format("%s (UB block %llu) is %s on %s after an unfinished write on %s: the pipes are not ordered "
                        "(PipeBarrier / SetFlag+WaitFlag missing)", operand, static_cast<unsigned long long>(b),
                        write ? "written" : "read", PipeName(pipe), PipeName(blk.wPipe)));
        }
        if (write) {
            for (int q = 0; q < kPipeCount; ++q) {
                if (q != pipe && blk.rSeq[q] != 0 && blk.rSeq[q] != me && blk.rSeq[q] > c.done[q][pipe]) {
                    Fail(Format("%s (UB block %llu) is overwritten on %s while a read on %s may still be running "
                                "(PipeBarrier / SetFlag+WaitFlag missing)", operand,
                                static_cast<unsigned long long>(b), PipeName(pipe), PipeName(q)));
                }
            }
        }
    }
    for (uint64_t b = b0; b <= b1; ++b) {
        UbBlock &blk = c.ubState[b];
        if (write) {
            blk.wSeq = me;
            blk.wPipe = static_cast<uint8_t>(pipe);
        } else {
            blk.rSeq[pipe] = me;
        }
    }
}

void PipeBarrierOn(int pipe)
{
    Core &c = Me();
    const uint32_t me = tInsn;
    if (pipe == kPipeAll) {
        for (auto &row : c.done)
            for (auto &v : row) v = me;
    } else if (pipe >= 0 && pipe < kPipeCount) {
        c.done[pipe][pipe] = me;
    }
}

void SetFlagOn(int srcPipe, int dstPipe, int eventId)
{
    Core &c = Me();
    Core::FlagMark m;
    m.marker = tInsn;
    for (int r = 0; r < kPipeCount; ++r) m.known[r] = c.done[r][srcPipe];
    c.flags[(srcPipe * 16 + dstPipe) * 64 + eventId].push_back(m);
}

void WaitFlagOn(int srcPipe, int dstPipe, int eventId)
{
    Core &c = Me();
    auto &q = c.flags[(srcPipe * 16 + dstPipe) * 64 + eventId];
    if (q.empty()) {
        Fail(Format("WaitFlag %s->%s event %d without a matching SetFlag: the pipe would wait forever",
                    PipeName(srcPipe), PipeName(dstPipe), eventId));
    }
    Core::FlagMark m = q.front();
    q.pop_front();
    // dst now runs after src's instructions up to the marker, and after whatever those were ordered after
    c.done[srcPipe][dstPipe] = std::max(c.done[srcPipe][dstPipe], m.marker);
    for (int r = 0; r < kPipeCount; ++r) c.done[r][dstPipe] = std::max(c.done[r][dstPipe], m.known[r]);
}

int FetchEventId(int srcPipe, int dstPipe)
{
    Core &c = Me();
    int &cur = c.eventCursor[srcPipe][dstPipe];
    int id = cur;
    cur = (cur + 1) % 8;
    return id;
}

void CountVector(uint64_t elements) { Me().rank->vectorElems += elements; }

/* ------------------------------------------------------------- L2 model */
namespace {

void L2Unlink(L2Model &m, uint32_t id)
{
    const uint32_t p = m.prev[id], n = m.next[id];
    if (p != L2Model::kNil) m.next[p] = n; else m.head = n;
    if (n != L2Model::kNil) m.prev[n] = p; else m.tail = p;
    m.prev[id] = m.next[id] = L2Model::kNil;
}

void L2PushFront(L2Model &m, uint32_t id)
{
    m.prev[id] = L2Model::kNil;
    m.next[id] = m.head;
    if (m.head != L2Model::kNil) m.prev[m.head] = id;
    m.head = id;
    if (m.tail == L2Model::kNil) m.tail = id;
}

void L2Charge(Rank &r, uint32_t id, bool write, bool atEnd = false)
{
    const int32_t k = r.l2.ctrOf[id];
    if (k < 0) return;
    ByteCounter &bc = r.ctr[static_cast<size_t>(k)];
    if (write) {
        bc.hbmWrite += r.l2.lineBytes;
        if (atEnd) bc.hbmWriteAtEnd += r.l2.lineBytes;
    } else {
        bc.hbmRead += r.l2.lineBytes;
    }
}

/* one core access of line `id` */
void L2Touch(Rank &r, uint32_t id, bool write)
{
    L2Model &m = r.l2;
    if (m.state[id] != 0) {
        L2Unlink(m, id);
    } else {
        if (!write) L2Charge(r, id, false);  // read miss: one line from HBM
        if (m.resident >= m.capLines && m.tail != L2Model::kNil) {
            const uint32_t victim = m.tail;
            L2Unlink(m, victim);
            if (m.state[victim] == 2) L2Charge(r, victim, true);
            m.state[victim] = 0;
            --m.resident;
        }
        m.state[id] = 1;
        ++m.resident;
    }
    if (write) m.state[id] = 2;
    L2PushFront(m, id);
}

/* a collective wrote line `id`: the L2 copy is stale */
void L2Invalidate(Rank &r, uint32_t id)
{
    L2Model &m = r.l2;
    if (m.state[id] == 0) return;
    if (m.state[id] == 2) L2Charge(r, id, true);
    L2Unlink(m, id);
    m.state[id] = 0;
    --m.resident;
}

}  // namespace

void L2AddBuffer(Rank &r, GmBuffer &b)
{
    L2Model &m = r.l2;
    const uint64_t n = (b.size + m.lineBytes - 1U) / m.lineBytes;
    b.cached = true;
    b.lineBase = static_cast<uint32_t>(m.lines);
    m.lines += n;
    m.prev.resize(m.lines, L2Model::kNil);
    m.next.resize(m.lines, L2Model::kNil);
    m.state.resize(m.lines, 0);
    m.ctrOf.resize(m.lines, b.counter);
    for (uint64_t k = 0; k < n; ++k) {
        const uint64_t off = k * m.lineBytes;
        for (const Region &g : b.regions) {
            if (off >= g.off && off < g.off + g.len) {
                m.ctrOf[b.lineBase + k] = g.counter;
                break;
            }
        }
    }
}

void L2Flush(Rank &r)
{
    L2Model &m = r.l2;
    for (uint32_t id = m.head; id != L2Model::kNil; id = m.next[id]) {
        if (m.state[id] == 2) {
            L2Charge(r, id, true, true);
            m.state[id] = 1;
        }
    }
}

/* --------------------------------------------------------- Global Memory */
void GmAccessAs(Rank &r, int agent, VClock &vc, const void *addr, uint64_t bytes, bool write, bool comm,
                const char *what)
{
    if (bytes == 0) return;
    GmBuffer *b = r.Find(addr, bytes);
    if (b == nullptr) {
        Fail(Format("%s %s of %llu bytes at %p is outside every Global Memory buffer of rank %d", what,
                    write ? "write" : "read", static_cast<unsigned long long>(bytes), addr, r.world));
    }
    const uint64_t off = static_cast<const uint8_t *>(addr) - b->base;
    // byte counters: regions first, the rest to the buffer's own counter
    uint64_t covered = 0;
    for (const Region &g : b->regions) {
        uint64_t lo = std::max(off, g.off), hi = std::min(off + bytes, g.off + g.len);
        if (hi > lo) {
            ByteCounter &bc = r.ctr[static_cast<size_t>(g.counter)];
            (comm ? (write ? bc.commWrite : bc.commRead) : (write ? bc.kernelWrite : bc.kernelRead)) += hi - lo;
            covered += hi - lo;
        }
    }
    if (covered < bytes && b->counter >= 0) {
        ByteCounter &bc = r.ctr[static_cast<size_t>(b->counter)];
        (comm ? (write ? bc.commWrite : bc.commRead) : (write ? bc.kernelWrite : bc.kernelRead)) += bytes - covered;
    }
    if (b->cached) {  // HBM level: the cores through the L2 model; a collective's write invalidates
        const uint64_t l0 = off / r.l2.lineBytes, l1 = (off + bytes - 1U) / r.l2.lineBytes;
        for (uint64_t l = l0; l <= l1; ++l) {
            const uint32_t id = b->lineBase + static_cast<uint32_t>(l);
            if (!comm) L2Touch(r, id, write);
            else if (write) L2Invalidate(r, id);
        }
    }
    if (b->shadow.empty() || !r.w->raceCheck) return;
    const uint64_t c0 = off / kShadowGrain, c1 = (off + bytes - 1U) / kShadowGrain;
    const uint32_t myClock = vc[static_cast<size_t>(agent)];
    for (uint64_t k = c0; k <= c1; ++k) {
        Shadow &s = b->shadow[k];
        if (s.agent != kHostAgent && s.agent != agent && vc[s.agent] < s.clock) {
            std::string writer = s.agent < r.cores.size() ? r.cores[s.agent]->label
                                                          : Format("rank %d %s server", r.world,
                                                                   s.agent == r.cores.size() ? "group_ep" : "group_tp");
            if (s.clock == 0xFFFFFFFFu) {
                Fail(Format("%s %s of rank %d %s byte %llu: these bytes are the receive buffer of a %s collective "
                            "that has not completed for this reader (read before Wait, or a missing "
                            "InterHcclGroupSync)", what, write ? "write" : "read", r.world, b->name.c_str(),
                            static_cast<unsigned long long>(k * kShadowGrain), writer.c_str()));
            }
            Fail(Format("%s %s of rank %d %s byte %llu races with a write by %s that is not ordered before it (a "
                        "Wait, SyncAll, flag or InterHcclGroupSync is missing)", what, write ? "write" : "read",
                        r.world, b->name.c_str(), static_cast<unsigned long long>(k * kShadowGrain), writer.c_str()));
        }
        if (write) {
            s.agent = static_cast<uint16_t>(agent);
            s.clock = myClock;
        }
    }
}

void GmMarkPending(Rank &r, int agent, const void *addr, uint64_t bytes)
{
    if (bytes == 0 || !r.w->raceCheck) return;
    GmBuffer *b = r.Find(addr, bytes);
    if (b == nullptr || b->shadow.empty()) return;  // reported when the collective moves the data
    const uint64_t off = static_cast<const uint8_t *>(addr) - b->base;
    for (uint64_t k = off / kShadowGrain; k <= (off + bytes - 1U) / kShadowGrain; ++k) {
        b->shadow[k].agent = static_cast<uint16_t>(agent);
        b->shadow[k].clock = 0xFFFFFFFFu;
    }
}

void GmUse(const void *addr, uint64_t bytes, bool write)
{
    Core &c = Me();
    ++c.rank->gmDataCopies;
    GmAccessAs(*c.rank, c.index, c.vc, addr, bytes, write, false, "kernel");
}

void GmUseRows(const void *addr, uint64_t rows, uint64_t rowBytes, uint64_t pitch, bool write)
{
    Core &c = Me();
    ++c.rank->gmDataCopies;
    const uint8_t *p = static_cast<const uint8_t *>(addr);
    for (uint64_t r = 0; r < rows; ++r) {
        GmAccessAs(*c.rank, c.index, c.vc, p + r * pitch, rowBytes, write, false, "kernel");
    }
}

void GmRequireAligned(const void *addr, uint64_t align, const char *operand)
{
    if (reinterpret_cast<uintptr_t>(addr) % align != 0U) {
        Fail(Format("%s address %p is not aligned to %llu bytes", operand, addr, static_cast<unsigned long long>(align)));
    }
}

/* ----------------------------------------------------------------- sync */
void SyncAllHard(bool aivOnly)
{
    Core &c = Me();
    Rank &r = *c.rank;
    if (aivOnly && c.aic) {
        Fail("SyncAll<true> (vector cores only) called on a cube core");
    }
    const int participants = aivOnly ? r.nAiv : r.nAiv + r.nAic;
    if (r.saArrived == 0) {
        r.saAivOnly = aivOnly;
        r.saVc.assign(static_cast<size_t>(r.Agents()), 0);
    } else if (r.saAivOnly != aivOnly) {
        Fail("SyncAll<true> and SyncAll<false> meet in one barrier");
    }
    PipeBarrierOn(kPipeAll);  // default config: trigger and wait on PIPE_ALL
    Join(r.saVc, c.vc);
    ++r.saArrived;
    const uint64_t gen = r.saGen;
    ++c.syncAlls;
    if (r.saArrived == participants) {
        r.saRelease = r.saVc;
        r.saArrived = 0;
        ++r.saGen;
        ++r.syncAllBarriers;
        Notify();
    } else {
        const uint64_t nth = c.syncAlls;
        BlockUntil([&r, gen] { return r.saGen != gen; },
                   Format("SyncAll<%s> #%llu of this core (%d of %d %s cores arrived)", aivOnly ? "true" : "false",
                          static_cast<unsigned long long>(nth), r.saArrived, participants, aivOnly ? "AIV" : "AIC+AIV"));
    }
    Join(c.vc, r.saRelease);
    ++c.vc[static_cast<size_t>(c.index)];
}

namespace {
std::vector<Core *> FlagTargets(Core &c, int mode)
{
    Rank &r = *c.rank;
    std::vector<Core *> out;
    for (auto &o : r.cores) {
        if (mode == 0) {
            if (o->aic == c.aic) out.push_back(o.get());
        } else if (mode == 1) {
            if (!o->aic && !c.aic && o->blockIdx / 2 == c.blockIdx / 2) out.push_back(o.get());
        } else if (mode == 2) {
            if (c.aic && !o->aic && o->blockIdx / 2 == c.blockIdx) out.push_back(o.get());
            if (!c.aic && o->aic && o->blockIdx == c.blockIdx / 2) out.push_back(o.get());
        }
    }
    return out;
}

}  // namespace

void CrossCoreSet(int mode, int pipe, uint16_t flagId)
{
    Core &c = Me();
    if (mode != 0 && mode != 1 && mode != 2) Fail(Format("mode %d is not supported on Atlas A2/A3 (0, 1, 2)", mode));
    if (pipe == kPipeS || pipe == kPipeAll) Fail("PIPE_S / PIPE_ALL are not allowed for CrossCoreSetFlag");
    if (flagId > 15) Fail(Format("flagId %u is outside 0..15", flagId));
    if (flagId >= 11 && flagId <= 14) Fail(Format("flagId %u is reserved by the hardware SyncAll (11..14)", flagId));
    if (c.mmObjects > 0 && flagId < 2 * c.mmObjects) {
        Fail(Format("flagId %u is used by the Matmul API of %d object(s) (0..%d)", flagId, c.mmObjects,
                    2 * c.mmObjects - 1));
    }
    PipeBarrierOn(pipe);
    Rank &r = *c.rank;
    // who must set before the waiters are released, and who is released
    std::vector<Core *> setters, waiters;
    if (mode == 0) {
        for (auto &o : r.cores)
            if (o->aic == c.aic) setters.push_back(o.get());
        waiters = setters;
    } else if (mode == 1) {
        setters = FlagTargets(c, 1);
        waiters = setters;
    } else {
        if (c.aic) {
            setters = {&c};
            waiters = FlagTargets(c, 2);
        } else {
            for (auto &o : r.cores)
                if (!o->aic && o->blockIdx / 2 == c.blockIdx / 2) setters.push_back(o.get());
            waiters = FlagTargets(c, 2);
        }
    }
    int group = (mode == 0) ? (c.aic ? -1 : -2) : (c.aic ? c.blockIdx : c.blockIdx / 2) * 2 + (c.aic ? 1 : 0);
    FlagRound &fr = r.flagRounds[std::make_tuple(mode, group, static_cast<int>(flagId))];
    Join(fr.vc, c.vc);
    ++c.vc[static_cast<size_t>(c.index)];
    if (++fr.arrived == static_cast<int>(setters.size())) {
        for (Core *o : waiters) {
            if (o->crossFlag[flagId] >= 15) {
                Fail(Format("the flag counter of %s for flagId %u overflows (more than 15 pending sets)",
                            o->label.c_str(), flagId));
            }
            ++o->crossFlag[flagId];
            o->crossVc[flagId].push_back(fr.vc);  // published with the flag, acquired by CrossCoreWaitFlag
        }
        fr = FlagRound{};
        Notify();
    }
}

void CrossCoreWait(int mode, int pipe, uint16_t flagId)
{
    Core &c = Me();
    (void)mode;
    (void)pipe;
    if (flagId > 15) Fail(Format("flagId %u is outside 0..15", flagId));
    BlockUntil([&c, flagId] { return c.crossFlag[flagId] > 0; },
               Format("CrossCoreWaitFlag(%u)", static_cast<unsigned>(flagId)));
    --c.crossFlag[flagId];
    Join(c.vc, c.crossVc[flagId].front());
    c.crossVc[flagId].pop_front();
    PipeBarrierOn(kPipeAll);  // A2/A3: the wait blocks every pipe
}

}  // namespace aag_sim
