/*
 * kernel_sim internal: the simulated world (ranks, cores, Global Memory with
 * happens-before shadow state, the HCCL server queues) shared by the runtime,
 * the HCCL server, the cube and the runner.
 */
#ifndef MOE_MC2_KERNEL_SIM_WORLD_H
#define MOE_MC2_KERNEL_SIM_WORLD_H

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "kernel_sim/sim_runtime.h"

namespace aag_sim {

using VClock = std::vector<uint32_t>;
void Join(VClock &into, const VClock &from);

constexpr uint16_t kHostAgent = 0xFFFF;
constexpr uint32_t kShadowGrain = 2;  // bytes per shadow cell (the smallest element the model moves)

struct Shadow {
    uint32_t clock = 0;
    uint16_t agent = kHostAgent;
};

struct Region {
    uint64_t off;
    uint64_t len;
    int counter;
};

/* one allocation in a rank's Global Memory (tensor, workspace, tiling, context) */
struct GmBuffer {
    std::string name;
    uint8_t *base = nullptr;
    uint64_t size = 0;
    int counter = -1;           // byte counter of bytes outside every region
    bool cached = false;        // core accesses go through the rank's L2 model
    uint32_t lineBase = 0;      // first L2 line id of this buffer (lines of L2Model::lineBytes from base)
    std::vector<Region> regions;
    std::vector<Shadow> shadow;  // per kShadowGrain bytes (empty in counting mode)
    std::unique_ptr<uint8_t[]> own;
};

struct ByteCounter {
    std::string name;
    uint64_t kernelRead = 0, kernelWrite = 0, commRead = 0, commWrite = 0;  // GM level: bytes the API calls move
    uint64_t hbmRead = 0, hbmWrite = 0;  // HBM level: L2 misses and write-backs caused by the cores
    uint64_t hbmWriteAtEnd = 0;          // of hbmWrite: dirty lines still in L2 when the kernel ends
};

/* L2 model of one rank (one die): a least-recently-used cache of `capLines` lines of
 * `lineBytes`, write-back and write-allocate without fill (a core write marks the line dirty, it
 * never reads HBM), shared by every core of the rank. Core reads that miss read one line from HBM;
 * evicting a dirty line writes it to HBM, and so does the flush at the end of the kernel (the data
 * must reach HBM). Collectives (the HCCL server's engines) move data between HBM and the links:
 * a collective write invalidates the lines it covers (a dirty one is written back first), its
 * reads and writes are counted as comm bytes, not through the L2. Line ids are dense per rank
 * (GmBuffer::lineBase); lists are intrusive arrays, so a seed-size run stays within seconds. */
struct L2Model {
    uint64_t lineBytes = 512;
    uint64_t capLines = 0;
    uint64_t lines = 0;          // ids in use
    std::vector<uint32_t> prev, next;
    std::vector<uint8_t> state;  // 0 absent, 1 clean, 2 dirty
    std::vector<int32_t> ctrOf;  // counter charged for this line's HBM traffic
    uint32_t head = kNil, tail = kNil;  // MRU, LRU
    uint64_t resident = 0;
    static constexpr uint32_t kNil = 0xFFFFFFFFu;
};

struct UbBlock {
    uint32_t wSeq = 0;
    uint8_t wPipe = 0xFF;
    uint32_t rSeq[kPipeCount] = {};
};

struct MatmulReq {
    uint64_t seq = 0;  // issue order over the whole rank (see MatmulServeOnCube)
    MatmulCall call;
    VClock vc;       // requester's clock at the request
    VClock doneVc;   // cube's clock at completion
    bool done = false;
    int requester = -1;
};

struct Rank;
struct World;

struct FlagRound {
    int arrived = 0;
    VClock vc;
};

struct Core {
    Rank *rank = nullptr;
    int index = 0;      // agent id inside the rank
    bool aic = false;
    int blockIdx = 0;
    int subIdx = 0;
    std::string label;
    // Unified Buffer
    std::vector<uint8_t> ub;
    std::vector<UbBlock> ubState;
    const void *pipe = nullptr;
    uint32_t pipeEnd = 0;
    uint32_t ubHigh = 0;
    // pipe ordering (see UbUse)
    uint32_t seq = 0;
    uint32_t done[kPipeCount][kPipeCount] = {};
    struct FlagMark {
        uint32_t marker;                 // the setting instruction
        uint32_t known[kPipeCount];      // done[*][src] when it was set (carried on: transitivity)
    };
    std::map<int, std::deque<FlagMark>> flags;   // (src*16+dst)*64+id -> pending SetFlag
    int eventCursor[kPipeCount][kPipeCount] = {};
    // happens-before
    VClock vc;
    // status
    const char *api = "(not started)";
    uint64_t apiCalls = 0;
    std::string blockedOn;
    std::function<bool()> waitPred;
    bool finished = false;
    int declaredType = -1;
    uint64_t syncAlls = 0;
    std::vector<const uint8_t *> hcclContexts;  // contexts this core initialised an Hccl object with
    uint8_t crossFlag[16] = {};
    std::deque<VClock> crossVc[16];
    // matmul
    int mmObjects = 0;
    bool mmServing = false;
    std::deque<std::shared_ptr<MatmulReq>> mmQueue;       // AIC: requests of its AIVs
    std::shared_ptr<MatmulReq> mmPending;                 // AIV: async request in flight
    std::map<const void *, int> mmEnded;
};

/* ---------------------------------------------------------------- HCCL */
enum class EntryKind { kColl, kSync, kFinalize };

struct HcclEntry {
    EntryKind kind = EntryKind::kColl;
    HcclPrepare p;
    std::vector<uint64_t> sc, sd, rc, rd;  // AlltoAllV arrays, copied at Prepare
    int handle = -1;
    int repeat = 1;
    int commits = 0;
    int executed = 0;
    bool scheduled = false;
    std::vector<VClock> commitVc;
    VClock doneVc;
    int srcGroup = -1;
    int srcHandle = -1;
    int collIndex = -1;
    const uint8_t *ccTiling = nullptr;
    int postedBy = -1;
};

struct HcclRankGroup {
    int inst = -1;                       // GroupInstance index
    std::vector<HcclEntry> q;
    size_t head = 0;
    int handleEntry[kHcclMaxHandle];
    int collCount = 0;
    bool initialised = false;
    bool finalized = false;
    int workingCore = -1;
    VClock finalizeVc;
    std::map<int, uint32_t> lastWait;    // core -> its own clock at its last Wait on this group
    HcclRankGroup()
    {
        for (int &h : handleEntry) h = -1;
    }
};

struct GroupInstance {
    int gid = 0;                 // 0: group_ep, 1: group_tp (OpDef HcclGroup order)
    std::vector<int> members;    // world ranks, by rank id inside the group
};

struct CollectiveCount {
    uint64_t calls = 0;
    uint64_t bytesSent = 0;
    uint64_t bytesRecv = 0;
};

struct Rank {
    World *w = nullptr;
    int world = 0, epIdx = 0, tpIdx = 0;
    int nAic = 0, nAiv = 0;
    std::vector<std::unique_ptr<Core>> cores;
    std::vector<std::unique_ptr<GmBuffer>> bufs;
    std::vector<ByteCounter> ctr;
    // SyncAll (hardware): barrier state
    int saArrived = 0;
    uint64_t saGen = 0;
    VClock saVc, saRelease;
    bool saAivOnly = true;
    // communication
    HcclRankGroup groups[2];
    std::map<std::tuple<int, int, int>, FlagRound> flagRounds;  // CrossCoreSetFlag (mode, group, flag)
    VClock agentVc[2];
    // launch
    uint8_t *tiling = nullptr;
    size_t tilingBytes = 0;
    uint8_t *workspace = nullptr;
    uint64_t sysWorkspaceBytes = 0;
    uint8_t *hcclCtx = nullptr;
    // counters
    uint64_t cubeFlops = 0, matmuls = 0, syncAllBarriers = 0, vectorElems = 0;
    uint64_t gmDataCopies = 0;
    std::map<std::string, CollectiveCount> collectives;
    uint64_t mmIssued = 0;                 // matmul requests issued on this rank
    std::set<uint64_t> mmPendingSeqs;      // ... and not yet executed
    uint64_t hcclWaits = 0, hcclCommits = 0, groupSyncs = 0;
    L2Model l2;

    int AgentOfGroup(int gid) const { return static_cast<int>(cores.size()) + gid; }
    int Agents() const { return static_cast<int>(cores.size()) + 2; }
    GmBuffer *Find(const void *addr, uint64_t bytes);
    int AddCounter(const std::string &name);
};

struct Landing {
    uint64_t due;
    int inst;
};

struct World {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::unique_ptr<Rank>> ranks;
    std::vector<GroupInstance> insts;
    int alive = 0;
    int blocked = 0;
    bool abort = false;
    std::vector<std::string> errors;
    std::string deadlock;
    uint64_t now = 0;
    std::mt19937_64 rng;
    int maxDelay = 48;
    bool countOnly = false;
    bool raceCheck = true;
    uint64_t tilingKey = 0;
    int launchType = -1;         // KernelMetaType the runner launched
    std::vector<Landing> landings;
    std::string groupNames[2] = {"ep", "tp"};

    int InstOf(int worldRank, int gid) const;
};

World *CurWorld();
Core *CurCore();                  // nullptr outside kernel threads
void SetCurrent(World *w, Core *c);
std::unique_lock<std::mutex> &CurLock();

/* while alive, errors of this thread are attributed to `what` (the HCCL server) */
class ServerContext {
public:
    explicit ServerContext(const std::string &what);
    ~ServerContext();

private:
    const std::string *prev_;
    std::string what_;
};

/* blocking inside an API call: `ready` is evaluated under the world lock; the
 * wait lets time pass (due and scheduled collective landings) and reports a
 * deadlock when every live core waits and nothing can make progress */
void BlockUntil(const std::function<bool()> &ready, const std::string &what);
void Notify();
void RecordError(const std::string &msg);
std::string PositionReport(World &w);
void CheckDeadlockLocked(World &w);

/* HCCL server (hccl.cpp) */
void ServerPump(World &w);
bool RunOneLanding(World &w, bool force);
void RunDueLandings(World &w);

/* GM access by an agent (core or group server) */
void GmAccessAs(Rank &r, int agent, VClock &vc, const void *addr, uint64_t bytes, bool write, bool comm,
                const char *what);

/* L2 model (runtime.cpp): line ids for a cached buffer, and the end-of-kernel flush */
void L2AddBuffer(Rank &r, GmBuffer &b);
void L2Flush(Rank &r);

/* marks bytes a committed collective will write as in flight: any access by
 * another agent before the agent's completion is acquired is a race */
void GmMarkPending(Rank &r, int agent, const void *addr, uint64_t bytes);

/* matmul (matmul.cpp) */
void ExecuteMatmul(Core &cube, MatmulReq &req);

}  // namespace aag_sim

#endif  // MOE_MC2_KERNEL_SIM_WORLD_H
