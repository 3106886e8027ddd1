/*
 * kernel_sim: the HCCL kernel client and the communication server of the
 * simulated world.
 *
 * Client (per Hccl object and core), after the documented behaviour of the
 * AICPU-server client: every core that calls a Prepare gets the next handle
 * id; only the working core (GetBlockIdx() == config.blockId) writes the
 * message into its rank's queue for that group; Commit/Wait count per core;
 * Wait may not exceed the Commits (error, where the device would fail or
 * hang); at most 63 Prepares and 64 messages per client.
 *
 * Server: one queue per (rank, group), executed in order. An
 * InterHcclGroupSync message holds every later task of its group until the
 * named task of the other group has finished on that rank. A collective runs
 * once every member rank has it at the head of its queue, committed; its data
 * lands at a random later moment (uniform in [0, maxDelay] API calls of the
 * whole world), so a core that reads a receive buffer before its Wait sees
 * stale data - and the happens-before check reports the read whatever the
 * timing.
 */
#include <algorithm>
#include <cstring>

#include "sim_blobs.h"
#include "sim_world.h"

namespace aag_sim {

namespace {

const char *CmdName(int cmd)
{
    switch (cmd) {
        case 2: return "AllReduce";
        case 6: return "AllGather";
        case 7: return "ReduceScatter";
        case 8: return "AlltoAllV";
        case 10: return "AlltoAll";
        default: return "collective";
    }
}

uint64_t DtypeBytes(int dt)
{
    switch (dt) {
        case 0: case 7: return 1;                 // int8, uint8
        case 1: case 3: case 8: case 11: return 2;  // int16, fp16, uint16, bf16
        case 2: case 4: case 9: return 4;         // int32, fp32, uint32
        case 5: case 6: case 10: return 8;        // int64, uint64, fp64
        default: return 0;
    }
}

Core &Me()
{
    Core *c = CurCore();
    if (c == nullptr) throw std::logic_error("kernel_sim: HCCL API outside a simulated core");
    return *c;
}

const char *GroupName(int gid) { return gid == 0 ? "group_ep" : "group_tp"; }

/* the receive bytes of one rank's collective (all repeats) */
void MarkInFlight(Rank &r, int gid, const HcclEntry &e)
{
    const uint64_t eb = DtypeBytes(e.p.dataType);
    const uint64_t n = r.w->insts[static_cast<size_t>(r.groups[gid].inst)].members.size();
    const int agent = r.AgentOfGroup(gid);
    const uint64_t rep = static_cast<uint64_t>(e.repeat);
    if (e.p.cmd == 8) {
        for (uint64_t s = 0; s < n; ++s) {
            GmMarkPending(r, agent, e.p.recv + e.rd[s] * eb, e.rc[s] * eb * rep);
        }
    } else {
        const uint64_t stride = e.p.stride ? e.p.stride : e.p.count;
        GmMarkPending(r, agent, e.p.recv, ((n - 1U) * stride + rep * e.p.count) * eb);
    }
}

void ServerFail(Rank &r, int gid, const std::string &msg)
{
    RecordError(Format("HCCL server, rank %d %s: ", r.world, GroupName(gid)) + msg);
    throw SimAbort{};
}

}  // namespace

/* ------------------------------------------------------------- client */
void HcclClient::Init(uint8_t *ctx, const void *initTiling, int ver, int cfgType, int64_t cfgBlock)
{
    Core &c = Me();
    Rank &r = *c.rank;
    if (version != 0) Fail("Init repeatedly is not allowed (one Init/InitV2 per Hccl object)");
    if (ctx == nullptr) Fail("context is nullptr");
    if (ctx != r.hcclCtx && ctx != r.hcclCtx + 64) {
        Fail("context is not GetHcclContext<0>() or GetHcclContext<1>() of this rank");
    }
    const int gid = ctx == r.hcclCtx ? 0 : 1;
    for (const uint8_t *seen : c.hcclContexts) {
        if (seen == ctx) Fail("a second Hccl object initialised with the same context (not supported, InitV2 documentation)");
    }
    c.hcclContexts.push_back(ctx);
    if (ver == 2) {
        if (initTiling == nullptr) Fail("InitV2: initTiling is nullptr");
        if (r.Find(initTiling, 1) != nullptr) {
            Fail("InitV2: initTiling points into Global Memory; the documentation requires the tiling struct "
                 "copied by GET_TILING_DATA_WITH_STRUCT (a stack address)");
        }
        SimMc2Init head;
        std::memcpy(&head, initTiling, sizeof(head));
        if (head.magic != kInitMagic) {
            Fail("InitV2: initTiling does not point at the Mc2InitTiling the host tiling wrote (it must be the first "
                 "member of the tiling struct)");
        }
        tilingBase = static_cast<const uint8_t *>(initTiling);
    }
    bool isWorking;
    if (cfgType == 1) isWorking = !c.aic && c.blockIdx == cfgBlock;        // CoreType::ON_AIV
    else if (cfgType == 2) isWorking = c.aic && c.blockIdx == cfgBlock;    // CoreType::ON_AIC
    else isWorking = c.blockIdx == cfgBlock;                               // CoreType::DEFAULT
    HcclRankGroup &g = r.groups[gid];
    if (isWorking) {
        if (g.workingCore >= 0 && g.workingCore != c.index) {
            Fail(Format("%s already has a working core (%s); two cores would write its messages", GroupName(gid),
                        r.cores[static_cast<size_t>(g.workingCore)]->label.c_str()));
        }
        g.workingCore = c.index;
    }
    g.initialised = true;
    version = ver;
    group = gid;
    context = ctx;
    working = isWorking;
    coreKind = c.aic ? 0 : 1;
    for (auto &h : handleMsg) h = -1;
}

int32_t HcclClient::SetCcTiling(const void *ccTilingPtr, bool v2, uint64_t offset)
{
    Core &c = Me();
    Rank &r = *c.rank;
    if (v2 && version != 2) Fail("SetCcTilingV2 needs InitV2 first");
    if (!v2 && version != 1) Fail("SetCcTiling needs Init first");
    const uint8_t *blob = v2 ? tilingBase + offset : static_cast<const uint8_t *>(ccTilingPtr);
    if (blob == nullptr) Fail("ccOpTilingData is nullptr");
    SimMc2Cc cc;
    std::memcpy(&cc, blob, sizeof(cc));
    if (cc.magic != kCcMagic) {
        Fail(Format("no Mc2CcTiling at offset %llu from the Mc2InitTiling (pass offsetof(TilingStruct, member))",
                    static_cast<unsigned long long>(offset)));
    }
    if (cc.opType >= static_cast<uint32_t>(kHcclCmdCount)) return -1;
    if (std::string(cc.groupName) != r.w->groupNames[group]) {
        Fail(Format("the Mc2CcTiling at this offset was made for group '%s', this client serves group '%s'",
                    cc.groupName, r.w->groupNames[group].c_str()));
    }
    ccTiling[cc.opType] = blob;
    return 0;
}

int8_t HcclClient::Prepare(const HcclPrepare &p, bool commit)
{
    Core &c = Me();
    Rank &r = *c.rank;
    if (version == 0) Fail("Prepare before Init/InitV2");
    if ((c.aic ? 0 : 1) != coreKind) Fail("Prepare on a core type other than the one that called Init");
    if (p.send == nullptr || p.recv == nullptr) Fail("sendBuf / recvBuf is nullptr");
    if (p.dataType < 0 || p.dataType >= 255 || DtypeBytes(p.dataType) == 0) {
        Fail(Format("HcclDataType %d is invalid", p.dataType));
    }
    if (p.cmd == 8) {
        if (!p.sendCounts || !p.sdispls || !p.recvCounts || !p.rdispls) Fail("AlltoAllV count/displacement array is nullptr");
        if (p.dataType != p.recvType) Fail("AlltoAllV sendType differs from recvType");
    } else if (p.count == 0) {
        Fail("count is 0");
    }
    if (p.cmd != 6 && p.cmd != 8 && p.cmd != 10) Fail(Format("%s is not modelled", CmdName(p.cmd)));
    if (p.repeat == 0) return -1;
    if (ccTiling[p.cmd] == nullptr) {
        Fail(Format("no Mc2CcTiling for %s was set on this client (SetCcTilingV2 before the Prepare)", CmdName(p.cmd)));
    }
    const int handle = curHandle + 1;
    if (handle >= kHcclMaxHandle) Fail(Format("Prepare #%d: at most %d Prepare calls per client", handle + 1, kHcclMaxHandle));
    if (msgPos + 1 >= kHcclMsgCnt) Fail(Format("message %d: at most %d messages per client", msgPos + 1, kHcclMsgCnt - 1));
    curHandle = handle;
    handleMsg[handle] = static_cast<int8_t>(msgPos);
    handleRepeat[handle] = static_cast<uint8_t>(p.repeat);
    handleCmd[handle] = static_cast<uint8_t>(p.cmd);
    handleCommits[handle] = commit ? static_cast<uint16_t>(p.repeat) : 0;
    handleWaits[handle] = 0;
    if (working) {
        HcclRankGroup &g = r.groups[group];
        if (static_cast<int>(g.q.size()) != msgPos) Fail("message positions out of step with the group queue");
        HcclEntry e;
        e.kind = EntryKind::kColl;
        e.p = p;
        const uint32_t dim = static_cast<uint32_t>(r.w->insts[static_cast<size_t>(g.inst)].members.size());
        if (p.cmd == 8) {
            e.sc.assign(p.sendCounts, p.sendCounts + dim);
            e.sd.assign(p.sdispls, p.sdispls + dim);
            e.rc.assign(p.recvCounts, p.recvCounts + dim);
            e.rd.assign(p.rdispls, p.rdispls + dim);
        }
        e.p.sendCounts = e.p.sdispls = e.p.recvCounts = e.p.rdispls = nullptr;
        e.handle = handle;
        e.repeat = p.repeat;
        e.collIndex = g.collCount++;
        e.ccTiling = ccTiling[p.cmd];
        e.postedBy = c.index;
        if (commit) {
            e.commits = p.repeat;
            for (int k = 0; k < p.repeat; ++k) e.commitVc.push_back(c.vc);
            ++c.vc[static_cast<size_t>(c.index)];
            r.hcclCommits += static_cast<uint64_t>(p.repeat);
        }
        if (commit) MarkInFlight(r, group, e);
        g.q.push_back(std::move(e));
        g.handleEntry[handle] = msgPos;
    }
    ++msgPos;
    if (working) {
        ServerPump(*r.w);
        Notify();
    }
    return static_cast<int8_t>(handle);
}

void HcclClient::Commit(int8_t handle)
{
    Core &c = Me();
    Rank &r = *c.rank;
    if (version == 0) Fail("Commit before Init/InitV2");
    if (handle < 0 || handle > curHandle) Fail(Format("handle %d was not returned by a Prepare of this client", handle));
    if (handleCommits[handle] >= handleRepeat[handle]) {
        Fail(Format("Commit #%d of handle %d exceeds its repeat count %d", handleCommits[handle] + 1, handle,
                    handleRepeat[handle]));
    }
    ++handleCommits[handle];
    if (working) {
        HcclEntry &e = r.groups[group].q[static_cast<size_t>(handleMsg[handle])];
        if (e.commits == 0) MarkInFlight(r, group, e);
        ++e.commits;
        e.commitVc.push_back(c.vc);
        ++c.vc[static_cast<size_t>(c.index)];
        ++r.hcclCommits;
        ServerPump(*r.w);
        Notify();
    }
}

int32_t HcclClient::Wait(int8_t handle)
{
    Core &c = Me();
    Rank &r = *c.rank;
    if (version == 0) Fail("Wait before Init/InitV2");
    if (handle < 0 || handle > curHandle) Fail(Format("handle %d was not returned by a Prepare of this client", handle));
    if (handleWaits[handle] >= handleCommits[handle]) {
        Fail(Format("Wait #%d for handle %d without a matching Commit (%d Commit(s)): the device would fail the "
                    "Wait or wait forever", handleWaits[handle] + 1, handle, handleCommits[handle]));
    }
    for (int h = handle + 1; h <= curHandle; ++h) {
        if (handleWaits[h] > 0) {
            Fail(Format("Wait for handle %d after a Wait for the later handle %d: Waits must follow the Prepare order",
                        handle, h));
        }
    }
    const int nth = ++handleWaits[handle];
    HcclRankGroup &g = r.groups[group];
    const size_t pos = static_cast<size_t>(handleMsg[handle]);
    if (g.finalized) {
        Fail(Format("Wait for handle %d after the working core finalized %s: on the device the finish counters are "
                    "reset and this Wait never returns (a SyncAll before Finalize is missing)", handle,
                    GroupName(group)));
    }
    BlockUntil([&g, pos, nth] { return g.finalized || (pos < g.q.size() && g.q[pos].executed >= nth); },
               Format("Hccl::Wait(handle %d) of %s (%s)", handle, GroupName(group), CmdName(handleCmd[handle])));
    if (pos >= g.q.size() || g.q[pos].executed < nth) {
        Fail(Format("Wait for handle %d: the working core finalized %s while this core waited (a SyncAll before "
                    "Finalize is missing)", handle, GroupName(group)));
    }
    const HcclEntry &e = g.q[pos];
    if (e.kind != EntryKind::kColl || e.handle != handle || e.p.cmd != handleCmd[handle]) {
        Fail(Format("handle %d of this core names message %zu, which the working core posted as a different task: "
                    "every core must issue the same Prepare sequence", handle, pos));
    }
    Join(c.vc, e.doneVc);
    g.lastWait[c.index] = c.vc[static_cast<size_t>(c.index)];
    ++r.hcclWaits;
    return 0;
}

int32_t HcclClient::Query(int8_t handle)
{
    Core &c = Me();
    Rank &r = *c.rank;
    if (version == 0) Fail("Query before Init/InitV2");
    if (handle < 0 || handle > curHandle) return -1;
    HcclRankGroup &g = r.groups[group];
    const size_t pos = static_cast<size_t>(handleMsg[handle]);
    if (pos >= g.q.size()) return 0;
    if (g.q[pos].executed > 0) Join(c.vc, g.q[pos].doneVc);
    return g.q[pos].executed;
}

void HcclClient::InterGroupSync(int8_t srcGroup, int8_t srcHandle)
{
    Core &c = Me();
    Rank &r = *c.rank;
    if (version == 0) Fail("InterHcclGroupSync before Init/InitV2");
    if (srcGroup != 0 && srcGroup != 1) Fail(Format("srcGroupID %d is not a communication group of the op", srcGroup));
    if (srcGroup == group) Fail("srcGroupID is this client's own group");
    if (srcHandle < 0 || srcHandle >= kHcclMaxHandle) Fail(Format("srcHandleID %d is not a handle", srcHandle));
    if (msgPos + 1 >= kHcclMsgCnt) Fail(Format("message %d: at most %d messages per client", msgPos + 1, kHcclMsgCnt - 1));
    if (working) {
        HcclRankGroup &g = r.groups[group];
        HcclEntry e;
        e.kind = EntryKind::kSync;
        e.srcGroup = srcGroup;
        e.srcHandle = srcHandle;
        e.postedBy = c.index;
        g.q.push_back(std::move(e));
        ++r.groupSyncs;
    }
    ++msgPos;
    if (working) {
        ServerPump(*r.w);
        Notify();
    }
}

void HcclClient::Finalize(bool sync)
{
    Core &c = Me();
    Rank &r = *c.rank;
    if (version == 0) Fail("Finalize before Init/InitV2");
    HcclRankGroup &g = r.groups[group];
    if (!working) {
        ++msgPos;
        return;
    }
    if (sync && curHandle >= 0) {
        const size_t pos = static_cast<size_t>(handleMsg[curHandle]);
        const int rep = handleRepeat[curHandle];
        if (g.q[pos].commits < rep) {
            Fail(Format("Finalize waits for the last task (handle %d) but it was never committed", curHandle));
        }
        BlockUntil([&g, pos, rep] { return g.q[pos].executed >= rep; },
                   Format("Hccl::Finalize of %s (waits for handle %d)", GroupName(group), curHandle));
        Join(c.vc, g.q[pos].doneVc);
    }
    for (const auto &kv : g.lastWait) {
        if (kv.first != c.index && c.vc[static_cast<size_t>(kv.first)] < kv.second) {
            Fail(Format("Finalize of %s is not ordered after the Wait of %s: the working core resets the finish "
                        "counters and that core may wait forever (SyncAll before Finalize missing)", GroupName(group),
                        r.cores[static_cast<size_t>(kv.first)]->label.c_str()));
        }
    }
    HcclEntry e;
    e.kind = EntryKind::kFinalize;
    e.postedBy = c.index;
    g.q.push_back(std::move(e));
    g.finalized = true;
    g.finalizeVc = c.vc;
    ++msgPos;
    ServerPump(*r.w);
    Notify();
}

uint32_t HcclClient::RankId()
{
    Core &c = Me();
    if (version == 0) Fail("GetRankId before Init/InitV2");
    return static_cast<uint32_t>(group == 0 ? c.rank->epIdx : c.rank->tpIdx);
}

uint32_t HcclClient::RankDim()
{
    Core &c = Me();
    if (version == 0) Fail("GetRankDim before Init/InitV2");
    return static_cast<uint32_t>(c.rank->w->insts[static_cast<size_t>(c.rank->groups[group].inst)].members.size());
}

/* ------------------------------------------------------------- server */
namespace {

/* advances one rank's queue past satisfied group syncs; true if it moved */
bool AdvanceSyncs(World &w, Rank &r, int gid)
{
    HcclRankGroup &g = r.groups[gid];
    bool moved = false;
    while (g.head < g.q.size()) {
        HcclEntry &e = g.q[g.head];
        if (e.kind == EntryKind::kSync) {
            HcclRankGroup &src = r.groups[e.srcGroup];
            const int idx = src.handleEntry[e.srcHandle];
            if (idx < 0) break;  // the source task is not prepared yet
            const HcclEntry &se = src.q[static_cast<size_t>(idx)];
            if (se.executed < se.repeat) break;
            Join(r.agentVc[gid], se.doneVc);
            ++g.head;
            moved = true;
        } else if (e.kind == EntryKind::kFinalize) {
            ++g.head;
            moved = true;
        } else {
            break;
        }
    }
    (void)w;
    return moved;
}

void CheckSame(World &w, const GroupInstance &inst, const std::vector<HcclEntry *> &es)
{
    const HcclEntry &a = *es[0];
    for (size_t m = 1; m < es.size(); ++m) {
        const HcclEntry &b = *es[m];
        Rank &rb = *w.ranks[static_cast<size_t>(inst.members[m])];
        if (a.p.cmd != b.p.cmd || a.p.dataType != b.p.dataType || a.repeat != b.repeat ||
            (a.p.cmd != 8 && (a.p.count != b.p.count || a.p.stride != b.p.stride))) {
            ServerFail(rb, inst.gid,
                       Format("collective #%d differs between ranks: %s count %llu dtype %d on rank %d, %s count %llu "
                              "dtype %d on rank %d", a.collIndex, CmdName(a.p.cmd),
                              static_cast<unsigned long long>(a.p.count), a.p.dataType, inst.members[0],
                              CmdName(b.p.cmd), static_cast<unsigned long long>(b.p.count), b.p.dataType,
                              inst.members[m]));
        }
    }
}

}  // namespace

void ServerPump(World &w)
{
    bool progress = true;
    while (progress) {
        progress = false;
        for (size_t k = 0; k < w.insts.size(); ++k) {
            const GroupInstance &inst = w.insts[k];
            std::vector<HcclEntry *> heads;
            bool ready = true;
            for (int m : inst.members) {
                Rank &r = *w.ranks[static_cast<size_t>(m)];
                if (AdvanceSyncs(w, r, inst.gid)) progress = true;
                HcclRankGroup &g = r.groups[inst.gid];
                if (g.head >= g.q.size()) {
                    ready = false;
                    continue;
                }
                HcclEntry &e = g.q[g.head];
                if (e.kind != EntryKind::kColl || e.scheduled || e.commits <= e.executed) {
                    ready = false;
                    continue;
                }
                heads.push_back(&e);
            }
            if (!ready || heads.size() != inst.members.size()) continue;
            CheckSame(w, inst, heads);
            const uint64_t delay = w.maxDelay > 0 ? w.rng() % static_cast<uint64_t>(w.maxDelay + 1) : 0;
            for (HcclEntry *e : heads) e->scheduled = true;
            w.landings.push_back(Landing{w.now + delay, static_cast<int>(k)});
            progress = true;
        }
    }
}

namespace {

void Move(World &w, Rank &from, int gid, const uint8_t *src, Rank &to, uint8_t *dst, uint64_t bytes)
{
    if (bytes == 0) return;
    GmAccessAs(from, from.AgentOfGroup(gid), from.agentVc[gid], src, bytes, false, true, "send buffer");
    GmAccessAs(to, to.AgentOfGroup(gid), to.agentVc[gid], dst, bytes, true, true, "receive buffer");
    if (!w.countOnly) std::memmove(dst, src, bytes);
}

void Execute(World &w, const GroupInstance &inst)
{
    const size_t n = inst.members.size();
    std::vector<Rank *> rk(n);
    std::vector<HcclEntry *> es(n);
    for (size_t m = 0; m < n; ++m) {
        rk[m] = w.ranks[static_cast<size_t>(inst.members[m])].get();
        HcclRankGroup &g = rk[m]->groups[inst.gid];
        es[m] = &g.q[g.head];
        // the server learns what the committing core knew when it committed this round
        Join(rk[m]->agentVc[inst.gid], es[m]->commitVc[static_cast<size_t>(es[m]->executed)]);
    }
    const int cmd = es[0]->p.cmd;
    ServerContext ctx(Format("HCCL server, %s #%d of %s (ranks %s)", CmdName(cmd), es[0]->collIndex,
                             GroupName(inst.gid), [&inst] {
                                 std::string m;
                                 for (int r : inst.members) m += (m.empty() ? "" : ",") + std::to_string(r);
                                 return m;
                             }().c_str()));
    const uint64_t eb = DtypeBytes(es[0]->p.dataType);
    const uint64_t rep = static_cast<uint64_t>(es[0]->executed);
    std::vector<uint64_t> sent(n, 0), recv(n, 0);
    if (cmd == 6) {  // AllGather
        const uint64_t cnt = es[0]->p.count;
        const uint64_t stride = es[0]->p.stride ? es[0]->p.stride : cnt;
        for (size_t d = 0; d < n; ++d) {
            for (size_t s = 0; s < n; ++s) {
                const uint8_t *src = es[s]->p.send + rep * cnt * eb;
                uint8_t *dst = es[d]->p.recv + (s * stride + rep * cnt) * eb;
                Move(w, *rk[s], inst.gid, src, *rk[d], dst, cnt * eb);
                sent[s] += (s == d) ? 0 : cnt * eb;
                recv[d] += (s == d) ? 0 : cnt * eb;
            }
        }
    } else if (cmd == 10) {  // AlltoAll
        const uint64_t cnt = es[0]->p.count;
        const uint64_t stride = es[0]->p.stride ? es[0]->p.stride : cnt;
        for (size_t d = 0; d < n; ++d) {
            for (size_t s = 0; s < n; ++s) {
                const uint8_t *src = es[s]->p.send + (d * stride + rep * cnt) * eb;
                uint8_t *dst = es[d]->p.recv + (s * stride + rep * cnt) * eb;
                Move(w, *rk[s], inst.gid, src, *rk[d], dst, cnt * eb);
                sent[s] += (s == d) ? 0 : cnt * eb;
                recv[d] += (s == d) ? 0 : cnt * eb;
            }
        }
    } else {  // AlltoAllV
        for (size_t d = 0; d < n; ++d) {
            for (size_t s = 0; s < n; ++s) {
                const uint64_t cnt = es[d]->rc[s];
                if (es[s]->sc[d] != cnt) {
                    ServerFail(*rk[d], inst.gid,
                               Format("AlltoAllV #%d: rank %zu sends %llu elements to rank %zu, which expects %llu",
                                      es[0]->collIndex, s, static_cast<unsigned long long>(es[s]->sc[d]), d,
                                      static_cast<unsigned long long>(cnt)));
                }
                const uint8_t *src = es[s]->p.send + (es[s]->sd[d] + rep * es[s]->sc[d]) * eb;
                uint8_t *dst = es[d]->p.recv + (es[d]->rd[s] + rep * cnt) * eb;
                Move(w, *rk[s], inst.gid, src, *rk[d], dst, cnt * eb);
                sent[s] += (s == d) ? 0 : cnt * eb;
                recv[d] += (s == d) ? 0 : cnt * eb;
            }
        }
    }
    for (size_t m = 0; m < n; ++m) {
        HcclRankGroup &g = rk[m]->groups[inst.gid];
        HcclEntry &e = *es[m];
        VClock &avc = rk[m]->agentVc[inst.gid];
        e.doneVc = avc;
        ++avc[static_cast<size_t>(rk[m]->AgentOfGroup(inst.gid))];
        ++e.executed;
        e.scheduled = false;
        if (e.executed >= e.repeat) ++g.head;
        CollectiveCount &cc = rk[m]->collectives[CmdName(cmd)];
        ++cc.calls;
        cc.bytesSent += sent[m];
        cc.bytesRecv += recv[m];
    }
}

}  // namespace

bool RunOneLanding(World &w, bool force)
{
    if (w.landings.empty()) return false;
    auto it = std::min_element(w.landings.begin(), w.landings.end(),
                               [](const Landing &a, const Landing &b) { return a.due < b.due; });
    if (!force && it->due > w.now) return false;
    const int inst = it->inst;
    w.landings.erase(it);
    Execute(w, w.insts[static_cast<size_t>(inst)]);
    ServerPump(w);
    Notify();
    return true;
}

void RunDueLandings(World &w)
{
    while (RunOneLanding(w, false)) {
    }
}

}  // namespace aag_sim
