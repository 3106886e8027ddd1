/*
 * kernel_sim/include/lib/hccl/hccl.h — the CPU model's HCCL kernel client
 * (Hccl<>: InitV2/SetCcTilingV2, the Prepare calls AllGather / AlltoAll /
 * AlltoAllV, Commit, Wait, Query, InterHcclGroupSync, Finalize). The work is
 * done by the model's communication server across the simulated ranks
 * (kernel_sim/src/hccl.cpp): a collective runs only when every member rank
 * committed it, its data lands at a randomized later moment, and the
 * documented rules (Wait count <= Commit count, message and handle limits,
 * working core, order of Wait) are checked. Written for this project; not CANN
 * code.
 */
#ifndef MOE_MC2_KERNEL_SIM_HCCL_H
#define MOE_MC2_KERNEL_SIM_HCCL_H

#include "kernel_operator.h"

namespace AscendC {

constexpr uint32_t HCCL_GROUP_ID_0 = 0;
using HcclHandle = int8_t;

enum class HcclCMDType {
    HCCL_CMD_INVALID = 0,
    HCCL_CMD_BROADCAST = 1,
    HCCL_CMD_ALLREDUCE,
    HCCL_CMD_REDUCE,
    HCCL_CMD_SEND,
    HCCL_CMD_RECEIVE,
    HCCL_CMD_ALLGATHER,
    HCCL_CMD_REDUCE_SCATTER,
    HCCL_CMD_ALLTOALLV,
    HCCL_CMD_ALLTOALLVC,
    HCCL_CMD_ALLTOALL,
    HCCL_CMD_GATHER,
    HCCL_CMD_SCATTER,
    HCCL_CMD_BATCH_SEND_RECV,
    HCCL_CMD_BATCH_PUT,
    HCCL_CMD_BATCH_GET,
    HCCL_CMD_ALLGATHER_V,
    HCCL_CMD_REDUCE_SCATTER_V,
    HCCL_CMD_BATCH_WRITE,
    HCCL_CMD_HALF_ALLTOALLV = 20,
    HCCL_CMD_ALL
};

enum HcclReduceOp { HCCL_REDUCE_SUM = 0, HCCL_REDUCE_PROD = 1, HCCL_REDUCE_MAX = 2, HCCL_REDUCE_MIN = 3,
                    HCCL_REDUCE_RESERVED };
enum HcclServerType { HCCL_SERVER_TYPE_AICPU = 0, HCCL_SERVER_TYPE_CCU = 5, HCCL_SERVER_TYPE_END };
enum class CoreType : uint8_t { DEFAULT, ON_AIV, ON_AIC };
struct HcclServerConfig {
    CoreType type;
    int64_t blockId;
};
enum HcclDataType {
    HCCL_DATA_TYPE_INT8 = 0,
    HCCL_DATA_TYPE_INT16 = 1,
    HCCL_DATA_TYPE_INT32 = 2,
    HCCL_DATA_TYPE_FP16 = 3,
    HCCL_DATA_TYPE_FP32 = 4,
    HCCL_DATA_TYPE_INT64 = 5,
    HCCL_DATA_TYPE_UINT64 = 6,
    HCCL_DATA_TYPE_UINT8 = 7,
    HCCL_DATA_TYPE_UINT16 = 8,
    HCCL_DATA_TYPE_UINT32 = 9,
    HCCL_DATA_TYPE_FP64 = 10,
    HCCL_DATA_TYPE_BFP16 = 11,
    HCCL_DATA_TYPE_INT128 = 12,
    HCCL_DATA_TYPE_RESERVED = 255
};

static constexpr HcclServerConfig DEFAULT_CFG = {CoreType::DEFAULT, 0};

template <HcclServerType serverType = HcclServerType::HCCL_SERVER_TYPE_AICPU, const auto &config = DEFAULT_CFG>
class Hccl {
public:
    template <bool commit = false>
    __aicore__ inline HcclHandle AllReduce(GM_ADDR sendBuf, GM_ADDR recvBuf, uint64_t count, HcclDataType dataType,
                                           HcclReduceOp op, uint8_t repeat = 1)
    {
        aag_sim::ApiScope s("Hccl::AllReduce");
        return Prep<commit>(HcclCMDType::HCCL_CMD_ALLREDUCE, sendBuf, recvBuf, count, dataType, op, 0, repeat);
    }
    template <bool commit = false>
    __aicore__ inline HcclHandle AllGather(GM_ADDR sendBuf, GM_ADDR recvBuf, uint64_t sendCount,
                                           HcclDataType dataType, uint64_t strideCount, uint8_t repeat = 1)
    {
        aag_sim::ApiScope s("Hccl::AllGather");
        return Prep<commit>(HcclCMDType::HCCL_CMD_ALLGATHER, sendBuf, recvBuf, sendCount, dataType,
                            HCCL_REDUCE_RESERVED, strideCount, repeat);
    }
    template <bool commit = false>
    __aicore__ inline HcclHandle ReduceScatter(GM_ADDR sendBuf, GM_ADDR recvBuf, uint64_t recvCount,
                                               HcclDataType dataType, HcclReduceOp op, uint64_t strideCount,
                                               uint8_t repeat = 1)
    {
        aag_sim::ApiScope s("Hccl::ReduceScatter");
        return Prep<commit>(HcclCMDType::HCCL_CMD_REDUCE_SCATTER, sendBuf, recvBuf, recvCount, dataType, op,
                            strideCount, repeat);
    }
    template <bool commit = false>
    __aicore__ inline HcclHandle AlltoAll(GM_ADDR sendBuf, GM_ADDR recvBuf, uint64_t dataCount,
                                          HcclDataType dataType, uint64_t strideCount = 0, uint8_t repeat = 1)
    {
        aag_sim::ApiScope s("Hccl::AlltoAll");
        return Prep<commit>(HcclCMDType::HCCL_CMD_ALLTOALL, sendBuf, recvBuf, dataCount, dataType,
                            HCCL_REDUCE_RESERVED, strideCount, repeat);
    }
    template <bool commit = false>
    __aicore__ inline HcclHandle AlltoAllV(GM_ADDR sendBuf, void *sendCounts, void *sdispls, HcclDataType sendType,
                                           GM_ADDR recvBuf, void *recvCounts, void *rdispls, HcclDataType recvType,
                                           uint8_t repeat = 1)
    {
        aag_sim::ApiScope s("Hccl::AlltoAllV");
        aag_sim::HcclPrepare p;
        p.cmd = static_cast<int>(HcclCMDType::HCCL_CMD_ALLTOALLV);
        p.send = sendBuf;
        p.recv = recvBuf;
        p.dataType = sendType;
        p.recvType = recvType;
        p.reduceOp = HCCL_REDUCE_RESERVED;
        p.repeat = repeat;
        p.sendCounts = static_cast<const uint64_t *>(sendCounts);
        p.sdispls = static_cast<const uint64_t *>(sdispls);
        p.recvCounts = static_cast<const uint64_t *>(recvCounts);
        p.rdispls = static_cast<const uint64_t *>(rdispls);
        return c_.Prepare(p, commit);
    }

    [[deprecated("It is obsoleted and use SetCcTilingV2 instead.")]] __aicore__ inline int32_t SetCcTiling(
        __gm__ void *ccOpTilingData)
    {
        aag_sim::ApiScope s("Hccl::SetCcTiling");
        return c_.SetCcTiling(ccOpTilingData, false, 0);
    }
    __aicore__ inline int32_t SetCcTilingV2(uint64_t offset)
    {
        aag_sim::ApiScope s("Hccl::SetCcTilingV2");
        return c_.SetCcTiling(nullptr, true, offset);
    }
    [[deprecated("It is obsoleted and use InitV2 instead.")]] __aicore__ inline void Init(
        GM_ADDR context, __gm__ void *initTiling = nullptr)
    {
        aag_sim::ApiScope s("Hccl::Init");
        c_.Init(context, initTiling, 1, static_cast<int>(config.type), config.blockId);
    }
    __aicore__ inline void InitV2(GM_ADDR context, const void *initTiling)
    {
        aag_sim::ApiScope s("Hccl::InitV2");
        c_.Init(context, initTiling, 2, static_cast<int>(config.type), config.blockId);
    }
    __aicore__ inline void Commit(HcclHandle handleId)
    {
        aag_sim::ApiScope s("Hccl::Commit");
        c_.Commit(handleId);
    }
    __aicore__ inline int32_t Wait(HcclHandle handleId)
    {
        aag_sim::ApiScope s("Hccl::Wait");
        return c_.Wait(handleId);
    }
    __aicore__ inline int32_t Query(HcclHandle handleId)
    {
        aag_sim::ApiScope s("Hccl::Query");
        return c_.Query(handleId);
    }
    __aicore__ inline void InterHcclGroupSync(int8_t srcGroupID, HcclHandle srcHandleID)
    {
        aag_sim::ApiScope s("Hccl::InterHcclGroupSync");
        c_.InterGroupSync(srcGroupID, srcHandleID);
    }
    template <bool sync = true>
    __aicore__ inline void Finalize()
    {
        aag_sim::ApiScope s("Hccl::Finalize");
        c_.Finalize(sync);
    }
    __aicore__ inline uint32_t GetRankId()
    {
        aag_sim::ApiScope s("Hccl::GetRankId");
        return c_.RankId();
    }
    __aicore__ inline uint32_t GetRankDim()
    {
        aag_sim::ApiScope s("Hccl::GetRankDim");
        return c_.RankDim();
    }

private:
    template <bool commit>
    __aicore__ inline HcclHandle Prep(HcclCMDType cmd, GM_ADDR send, GM_ADDR recv, uint64_t count,
                                      HcclDataType dt, HcclReduceOp op, uint64_t stride, uint8_t repeat)
    {
        aag_sim::HcclPrepare p;
        p.cmd = static_cast<int>(cmd);
        p.send = send;
        p.recv = recv;
        p.count = count;
        p.dataType = dt;
        p.recvType = dt;
        p.reduceOp = op;
        p.stride = stride;
        p.repeat = repeat;
        return c_.Prepare(p, commit);
    }
    aag_sim::HcclClient c_;
};

}  // namespace AscendC

#endif  // MOE_MC2_KERNEL_SIM_HCCL_H
