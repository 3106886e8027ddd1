/*
 * kernel_sim: the runtime interface behind the model's Ascend C headers.
 *
 * The model headers (kernel_operator.h, lib/matmul_intf.h, lib/hccl/hccl.h)
 * give kernels the Ascend C names and signatures; every call lands here, in
 * kernel_sim/src/, where one simulated world (ep x tp ranks, each with
 * AIC and AIV cores as threads) checks the documented rules and does the work.
 *
 * Nothing here is CANN code; see docs/kernel_model.md for what is modelled.
 */
#ifndef MOE_MC2_KERNEL_SIM_RUNTIME_H
#define MOE_MC2_KERNEL_SIM_RUNTIME_H

#include <cstddef>
#include <cstdint>
#include <string>

namespace aag_sim {

/* Thrown to unwind a core's kernel once the run has failed (any core reported
 * an error, or a deadlock was found). Kernels never catch it. */
struct SimAbort {
};

/* pipes of one core (AscendC pipe_t without PIPE_ALL) */
enum PipeId : int { kPipeS = 0, kPipeV, kPipeM, kPipeMte1, kPipeMte2, kPipeMte3, kPipeFix, kPipeCount, kPipeAll = 100 };

/* element kinds the model moves and computes with */
enum class Scalar : int { kHalf = 0, kBf16, kFloat, kInt8, kInt16, kInt32, kInt64, kUint8, kUint16, kUint32, kUint64, kOther };

/* Every API entry point opens one scope: it takes the world lock (once per
 * thread, nested scopes are free), advances the model's logical clock, lands
 * due collectives, records the call as the core's position and stops the
 * core when the run was aborted. */
class ApiScope {
public:
    explicit ApiScope(const char *api);
    ~ApiScope();
    ApiScope(const ApiScope &) = delete;
    ApiScope &operator=(const ApiScope &) = delete;

private:
    uint32_t prevInsn_ = 0;
};

/* Records `msg` (prefixed with the core and the API in progress) as the run's
 * error and unwinds this core with SimAbort. */
[[noreturn]] void Fail(const std::string &msg);
std::string Format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------ core facts */
bool OnAiv();
bool OnAic();
int64_t BlockIdx();
int64_t BlockNum();
int64_t SubBlockIdx();
int64_t TaskRatio();
uint64_t TilingKey();
void CheckTilingBlob(const uint8_t *tiling, size_t structBytes);
void DeclareKernelType(int type);
uint8_t *SysWorkspacePtr();
uint8_t *UserWorkspacePtr(uint8_t *workspace);
uint8_t *HcclContextPtr(uint32_t index);
bool CountOnly();  // the run skips arithmetic and data movement (counting mode)

/* ------------------------------------------------------- Unified Buffer */
uint8_t *UbData();
uint32_t UbCapacity();
void PipeCreate(const void *pipe);
void PipeDestroy(const void *pipe);
const void *CurrentPipe();
uint32_t PipeAlloc(uint32_t bytes, const char *what);      // byte offset in UB; fails past capacity
uint32_t PipeAllocEnd();                                    // first byte the TPipe has not handed out
/* bounds + pipe-ordering check of one UB access (write=false: read) */
void UbUse(int pipe, uint64_t off, uint64_t bytes, bool write, const char *operand);
void UbRequireAligned(uint64_t off, uint64_t align, const char *operand);
void PipeBarrierOn(int pipe);
void SetFlagOn(int srcPipe, int dstPipe, int eventId);
void WaitFlagOn(int srcPipe, int dstPipe, int eventId);
int FetchEventId(int srcPipe, int dstPipe);
void CountVector(uint64_t elements);

/* --------------------------------------------------------- Global Memory */
/* one access of `bytes` bytes at addr: bounds, happens-before race check,
 * per-tensor / per-region byte counters */
void GmUse(const void *addr, uint64_t bytes, bool write);
/* `rows` rows of rowBytes bytes, `pitch` bytes apart */
void GmUseRows(const void *addr, uint64_t rows, uint64_t rowBytes, uint64_t pitch, bool write);
void GmRequireAligned(const void *addr, uint64_t align, const char *operand);

/* ----------------------------------------------------------------- sync */
void SyncAllHard(bool aivOnly);
void CrossCoreSet(int mode, int pipe, uint16_t flagId);
void CrossCoreWait(int mode, int pipe, uint16_t flagId);

/* --------------------------------------------------------------- matmul */
struct MatmulCall {
    Scalar aType = Scalar::kOther, bType = Scalar::kOther, cType = Scalar::kOther, biasType = Scalar::kOther;
    bool aTransType = false, bTransType = false;  // MatmulType<..., ISTRANS>
    bool aGm = true, bGm = true, cGm = true, biasGm = true;
    const void *a = nullptr;
    const void *b = nullptr;
    const void *bias = nullptr;
    void *c = nullptr;
    bool transA = false, transB = false, hasBias = false;
    int orgM = 0, orgN = 0, orgKa = 0, orgKb = 0, orgKc = 0;
    int singleM = 0, singleN = 0, singleK = 0;
    bool aSet = false, bSet = false, shapeSet = false, orgSet = false;
    int enAtomic = 0;
    const void *tiling = nullptr;
    const void *object = nullptr;
};
void MatmulRegisterObject(const void *object, const void *tiling, int index);
bool MatmulServeOnCube();                 // AIC: serve the pair's AIV requests, then true (the kernel returns)
void MatmulIterateAll(const MatmulCall &call, bool sync);
void MatmulWaitIterateAll(const void *object);
void MatmulEnd(const void *object);

/* ----------------------------------------------------------------- HCCL */
constexpr int kHcclMaxHandle = 63;  // HCCL_MAX_HANDLE_ID of the HCCL kernel API
constexpr int kHcclMsgCnt = 64;     // HCCL_MSG_CNT: messages (Prepare, group sync, Finalize) per client
constexpr int kHcclCmdCount = 21;   // HcclCMDType::HCCL_CMD_ALL

struct HcclPrepare {
    int cmd = 0;                  // HcclCMDType value
    uint8_t *send = nullptr;
    uint8_t *recv = nullptr;
    uint64_t count = 0;
    int dataType = 0;             // HcclDataType value
    int recvType = 0;
    int reduceOp = 0;
    uint64_t stride = 0;
    int repeat = 1;
    const uint64_t *sendCounts = nullptr, *sdispls = nullptr, *recvCounts = nullptr, *rdispls = nullptr;
};

/* client state of one Hccl object on one core (the device-side object keeps it) */
struct HcclClient {
    int version = 0;              // 0 none, 1 Init (deprecated), 2 InitV2
    int group = -1;
    uint8_t *context = nullptr;
    const uint8_t *tilingBase = nullptr;
    bool working = false;         // this core writes the messages (block config.blockId)
    int coreKind = -1;
    int curHandle = -1;
    int msgPos = 0;
    int8_t handleMsg[kHcclMaxHandle] = {};
    uint8_t handleRepeat[kHcclMaxHandle] = {};
    uint8_t handleCmd[kHcclMaxHandle] = {};
    uint16_t handleCommits[kHcclMaxHandle] = {};
    uint16_t handleWaits[kHcclMaxHandle] = {};
    const uint8_t *ccTiling[kHcclCmdCount] = {};

    void Init(uint8_t *ctx, const void *initTiling, int version, int cfgType, int64_t cfgBlock);
    int32_t SetCcTiling(const void *ccTiling, bool v2, uint64_t offset);
    int8_t Prepare(const HcclPrepare &p, bool commit);
    void Commit(int8_t handle);
    int32_t Wait(int8_t handle);
    int32_t Query(int8_t handle);
    void InterGroupSync(int8_t srcGroup, int8_t srcHandle);
    void Finalize(bool sync);
    uint32_t RankId();
    uint32_t RankDim();
};

}  // namespace aag_sim

#endif  // MOE_MC2_KERNEL_SIM_RUNTIME_H
