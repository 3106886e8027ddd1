/*
 * kernel_sim/include/kernel_operator.h — the CPU model's stand-in for the
 * Ascend C header of the same name: the basic-API subset this project's kernel
 * uses (tensors, TPipe/TQue/TBuf, DataCopy/DataCopyPad, vector and activation
 * APIs, pipe and core synchronisation, system variables, tiling macros), with
 * the names and signatures of the Ascend C API and behaviour taken from its
 * documentation. Rules the documentation states (32-byte Unified-Buffer
 * alignment, DataCopy granularity, UB capacity, Cast round modes, pipe
 * ordering) are checked and a violation stops the run with an error naming the
 * call; nothing is silently fixed.
 *
 * Written for this project (docs/kernel_model.md); not CANN code. A kernel is
 * compiled against these headers instead of CANN's by changing only the
 * include path.
 */
#ifndef MOE_MC2_KERNEL_SIM_KERNEL_OPERATOR_H
#define MOE_MC2_KERNEL_SIM_KERNEL_OPERATOR_H

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernel_sim/sim_fp.h"
#include "kernel_sim/sim_runtime.h"

/* ------------------------------------------------ qualifiers and macros */
#ifndef __aicore__
#define __aicore__
#endif
#ifndef __global__
#define __global__
#endif
#ifndef __gm__
#define __gm__
#endif
#ifndef __ubuf__
#define __ubuf__
#endif
#ifndef __inout_pipe__
#define __inout_pipe__(p)
#endif
#define GM_ADDR __gm__ uint8_t *

/* dtype codes of the op compiler's -DORIG_DTYPE_<NAME>=DT_... (values as in CANN's kernel_type.h) */
#define DT_FLOAT 0
#define DT_FLOAT16 1
#define DT_INT8 2
#define DT_INT32 3
#define DT_UINT8 4
#define DT_INT16 6
#define DT_UINT16 7
#define DT_UINT32 8
#define DT_INT64 9
#define DT_UINT64 10
#define DT_BOOL 12
#define DT_BF16 27

/* the pipes of an AI Core (global names, as in the device headers) */
enum pipe_t : int { PIPE_S = 0, PIPE_V, PIPE_M, PIPE_MTE1, PIPE_MTE2, PIPE_MTE3, PIPE_ALL, PIPE_FIX };

enum KernelMetaType : int {
    KERNEL_TYPE_AIV_ONLY = 0,
    KERNEL_TYPE_AIC_ONLY,
    KERNEL_TYPE_MIX_AIV_1_0,
    KERNEL_TYPE_MIX_AIC_1_0,
    KERNEL_TYPE_MIX_AIC_1_1,
    KERNEL_TYPE_MIX_AIC_1_2,
};

#define KERNEL_TASK_TYPE_DEFAULT(type) ::aag_sim::DeclareKernelType(static_cast<int>(type))
#define REGISTER_TILING_DEFAULT(type) \
    static_assert(std::is_trivially_copyable<type>::value, "tiling struct must be trivially copyable")
#define GET_TILING_DATA_WITH_STRUCT(type, var, tiling) \
    type var;                                          \
    ::AscendC::SimLoadTiling(&(var), (tiling))
#define GET_TILING_DATA_PTR_WITH_STRUCT(type, ptr, tiling) \
    ::AscendC::SimCheckTiling<type>(tiling);               \
    const type *ptr = reinterpret_cast<const type *>(tiling)
#define TILING_KEY_IS(key) (::aag_sim::TilingKey() == static_cast<uint64_t>(key))
#define ASCEND_IS_AIV (::aag_sim::OnAiv())
#define ASCEND_IS_AIC (::aag_sim::OnAic())
#define ASCEND_IS_NOT_AIV (!::aag_sim::OnAiv())
#define ASCEND_IS_NOT_AIC (!::aag_sim::OnAic())

namespace AscendC {

template <typename T>
__aicore__ inline void SimCheckTiling(const uint8_t *tiling)
{
    aag_sim::ApiScope s("GET_TILING_DATA");
    aag_sim::CheckTilingBlob(tiling, sizeof(T));
}

template <typename T>
__aicore__ inline void SimLoadTiling(T *dst, const uint8_t *tiling)
{
    SimCheckTiling<T>(tiling);
    std::memcpy(static_cast<void *>(dst), tiling, sizeof(T));
}

/* ------------------------------------------------------------ utilities */
template <typename T, typename U>
struct IsSameType {
    static constexpr bool value = false;
};
template <typename T>
struct IsSameType<T, T> {
    static constexpr bool value = true;
};

enum class TPosition : int32_t {
    GM,
    A1,
    A2,
    B1,
    B2,
    C1,
    C2,
    CO1,
    CO2,
    VECIN,
    VECOUT,
    VECCALC,
    LCM = VECCALC,
    SPM,
    SHM = SPM,
    TSCM,
    C2PIPE2GM,
    MAX,
};
using QuePosition = TPosition;

enum CoreTypeValue : int32_t { AIC = 1, AIV = 2 };
struct SimCoreTypeProxy {
    operator int32_t() const { return aag_sim::OnAic() ? AIC : AIV; }
};
static const SimCoreTypeProxy g_coreType{};

template <typename T>
constexpr aag_sim::Scalar SimScalarOf()
{
    if constexpr (std::is_same<T, half>::value) return aag_sim::Scalar::kHalf;
    else if constexpr (std::is_same<T, bfloat16_t>::value) return aag_sim::Scalar::kBf16;
    else if constexpr (std::is_same<T, float>::value) return aag_sim::Scalar::kFloat;
    else if constexpr (std::is_same<T, int8_t>::value) return aag_sim::Scalar::kInt8;
    else if constexpr (std::is_same<T, int16_t>::value) return aag_sim::Scalar::kInt16;
    else if constexpr (std::is_same<T, int32_t>::value) return aag_sim::Scalar::kInt32;
    else if constexpr (std::is_same<T, int64_t>::value) return aag_sim::Scalar::kInt64;
    else if constexpr (std::is_same<T, uint8_t>::value) return aag_sim::Scalar::kUint8;
    else if constexpr (std::is_same<T, uint16_t>::value) return aag_sim::Scalar::kUint16;
    else if constexpr (std::is_same<T, uint32_t>::value) return aag_sim::Scalar::kUint32;
    else if constexpr (std::is_same<T, uint64_t>::value) return aag_sim::Scalar::kUint64;
    else return aag_sim::Scalar::kOther;
}

constexpr int SimPipeOf(pipe_t p)
{
    return p == PIPE_S ? aag_sim::kPipeS
         : p == PIPE_V ? aag_sim::kPipeV
         : p == PIPE_M ? aag_sim::kPipeM
         : p == PIPE_MTE1 ? aag_sim::kPipeMte1
         : p == PIPE_MTE2 ? aag_sim::kPipeMte2
         : p == PIPE_MTE3 ? aag_sim::kPipeMte3
         : p == PIPE_FIX ? aag_sim::kPipeFix
         : aag_sim::kPipeAll;
}

/* --------------------------------------------------------- GlobalTensor */
template <typename T>
class GlobalTensor {
public:
    using PrimType = T;
    __aicore__ inline GlobalTensor() {}
    __aicore__ inline void SetGlobalBuffer(__gm__ PrimType *buffer, uint64_t bufferSize)
    {
        addr_ = buffer;
        size_ = bufferSize;
    }
    __aicore__ inline void SetGlobalBuffer(__gm__ PrimType *buffer)
    {
        addr_ = buffer;
        size_ = 0;
    }
    __aicore__ inline const __gm__ PrimType *GetPhyAddr() const { return addr_; }
    __aicore__ inline __gm__ PrimType *GetPhyAddr(const uint64_t offset) const { return addr_ + offset; }
    __aicore__ inline uint64_t GetSize() const { return size_; }
    __aicore__ inline GlobalTensor operator[](const uint64_t offset) const
    {
        GlobalTensor t;
        t.addr_ = addr_ + offset;
        t.size_ = (size_ > offset) ? size_ - offset : 0;
        return t;
    }
    __aicore__ inline PrimType GetValue(const uint64_t offset) const
    {
        aag_sim::ApiScope s("GlobalTensor::GetValue");
        aag_sim::GmUse(addr_ + offset, sizeof(T), false);
        PrimType v{};
        if (!aag_sim::CountOnly()) std::memcpy(&v, addr_ + offset, sizeof(T));
        return v;
    }
    __aicore__ inline void SetValue(const uint64_t offset, PrimType value)
    {
        aag_sim::ApiScope s("GlobalTensor::SetValue");
        aag_sim::GmUse(addr_ + offset, sizeof(T), true);
        if (!aag_sim::CountOnly()) std::memcpy(addr_ + offset, &value, sizeof(T));
    }
    /* model access */
    __aicore__ inline PrimType *SimAddr() const { return addr_; }

private:
    PrimType *addr_ = nullptr;
    uint64_t size_ = 0;
};

/* ---------------------------------------------------------- LocalTensor */
template <typename T>
class LocalTensor {
public:
    using PrimType = T;
    __aicore__ inline LocalTensor() {}
    __aicore__ inline LocalTensor(uint32_t off, uint32_t bytes, TPosition pos, int32_t buf)
        : off_(off), bytes_(bytes), pos_(pos), buf_(buf)
    {
    }
    __aicore__ inline LocalTensor operator[](const uint32_t offset) const
    {
        const uint64_t b = static_cast<uint64_t>(offset) * sizeof(T);
        if (buf_ < 0 || b > bytes_) {
            aag_sim::ApiScope s("LocalTensor::operator[]");
            aag_sim::Fail(aag_sim::Format("element offset %u is outside the tensor (%u elements%s)", offset,
                                          GetSize(), buf_ < 0 ? ", tensor not allocated" : ""));
        }
        return LocalTensor(off_ + static_cast<uint32_t>(b), bytes_ - static_cast<uint32_t>(b), pos_, buf_);
    }
    template <typename U>
    __aicore__ inline LocalTensor<U> ReinterpretCast() const
    {
        return LocalTensor<U>(off_, bytes_, pos_, buf_);
    }
    __aicore__ inline uint32_t GetSize() const { return bytes_ / static_cast<uint32_t>(sizeof(T)); }
    __aicore__ inline uint32_t GetLength() const { return bytes_; }
    __aicore__ inline TPosition GetPosition() const { return pos_; }
    __aicore__ inline PrimType *GetPhyAddr() const { return reinterpret_cast<PrimType *>(aag_sim::UbData() + off_); }
    __aicore__ inline PrimType GetValue(const uint32_t index) const
    {
        aag_sim::ApiScope s("LocalTensor::GetValue");
        SimCheck(index, 1, "LocalTensor::GetValue");
        aag_sim::UbUse(aag_sim::kPipeS, off_ + index * sizeof(T), sizeof(T), false, "tensor");
        PrimType v{};
        std::memcpy(&v, aag_sim::UbData() + off_ + index * sizeof(T), sizeof(T));
        return v;
    }
    template <typename S>
    __aicore__ inline void SetValue(const uint32_t index, const S value) const
    {
        aag_sim::ApiScope s("LocalTensor::SetValue");
        SimCheck(index, 1, "LocalTensor::SetValue");
        aag_sim::UbUse(aag_sim::kPipeS, off_ + index * sizeof(T), sizeof(T), true, "tensor");
        PrimType v = static_cast<PrimType>(value);
        std::memcpy(aag_sim::UbData() + off_ + index * sizeof(T), &v, sizeof(T));
    }

    /* model access */
    __aicore__ inline uint32_t SimOff() const { return off_; }
    __aicore__ inline uint32_t SimBytes() const { return bytes_; }
    __aicore__ inline int32_t SimBuf() const { return buf_; }
    __aicore__ inline PrimType *SimData() const { return reinterpret_cast<PrimType *>(aag_sim::UbData() + off_); }
    __aicore__ inline void SimCheck(uint64_t first, uint64_t count, const char *what) const
    {
        if (buf_ < 0) {
            aag_sim::Fail(aag_sim::Format("%s: tensor was never allocated (TBuf::Get / TQue::AllocTensor)", what));
        }
        if ((first + count) * sizeof(T) > bytes_) {
            aag_sim::Fail(aag_sim::Format("%s: %llu elements from element %llu exceed the tensor (%u elements)", what,
                                          static_cast<unsigned long long>(count),
                                          static_cast<unsigned long long>(first), GetSize()));
        }
    }

private:
    uint32_t off_ = 0;
    uint32_t bytes_ = 0;
    TPosition pos_ = TPosition::VECCALC;
    int32_t buf_ = -1;
};

/* --------------------------------------------------------------- events */
enum class HardEvent : uint8_t {
    MTE2_MTE1,
    MTE1_MTE2,
    MTE1_M,
    M_MTE1,
    MTE2_V,
    V_MTE2,
    MTE3_V,
    V_MTE3,
    M_V,
    V_M,
    V_V,
    MTE3_MTE1,
    MTE1_MTE3,
    MTE1_V,
    MTE2_M,
    M_MTE2,
    V_MTE1,
    M_FIX,
    FIX_M,
    MTE3_MTE2,
    MTE2_MTE3,
    S_V,
    V_S,
    S_MTE2,
    MTE2_S,
    S_MTE3,
    MTE3_S,
    MTE2_FIX,
    FIX_MTE2,
    FIX_S,
    M_S,
    FIX_MTE3,
    MTE1_FIX,
    FIX_MTE1,
    FIX_FIX,
    MAX,
};

struct SimEventPipes {
    int src;
    int dst;
};
constexpr SimEventPipes SimPipesOf(HardEvent e)
{
    using namespace aag_sim;
    switch (e) {
        case HardEvent::MTE2_MTE1: return {kPipeMte2, kPipeMte1};
        case HardEvent::MTE1_MTE2: return {kPipeMte1, kPipeMte2};
        case HardEvent::MTE1_M: return {kPipeMte1, kPipeM};
        case HardEvent::M_MTE1: return {kPipeM, kPipeMte1};
        case HardEvent::MTE2_V: return {kPipeMte2, kPipeV};
        case HardEvent::V_MTE2: return {kPipeV, kPipeMte2};
        case HardEvent::MTE3_V: return {kPipeMte3, kPipeV};
        case HardEvent::V_MTE3: return {kPipeV, kPipeMte3};
        case HardEvent::M_V: return {kPipeM, kPipeV};
        case HardEvent::V_M: return {kPipeV, kPipeM};
        case HardEvent::V_V: return {kPipeV, kPipeV};
        case HardEvent::MTE3_MTE1: return {kPipeMte3, kPipeMte1};
        case HardEvent::MTE1_MTE3: return {kPipeMte1, kPipeMte3};
        case HardEvent::MTE1_V: return {kPipeMte1, kPipeV};
        case HardEvent::MTE2_M: return {kPipeMte2, kPipeM};
        case HardEvent::M_MTE2: return {kPipeM, kPipeMte2};
        case HardEvent::V_MTE1: return {kPipeV, kPipeMte1};
        case HardEvent::M_FIX: return {kPipeM, kPipeFix};
        case HardEvent::FIX_M: return {kPipeFix, kPipeM};
        case HardEvent::MTE3_MTE2: return {kPipeMte3, kPipeMte2};
        case HardEvent::MTE2_MTE3: return {kPipeMte2, kPipeMte3};
        case HardEvent::S_V: return {kPipeS, kPipeV};
        case HardEvent::V_S: return {kPipeV, kPipeS};
        case HardEvent::S_MTE2: return {kPipeS, kPipeMte2};
        case HardEvent::MTE2_S: return {kPipeMte2, kPipeS};
        case HardEvent::S_MTE3: return {kPipeS, kPipeMte3};
        case HardEvent::MTE3_S: return {kPipeMte3, kPipeS};
        case HardEvent::MTE2_FIX: return {kPipeMte2, kPipeFix};
        case HardEvent::FIX_MTE2: return {kPipeFix, kPipeMte2};
        case HardEvent::FIX_S: return {kPipeFix, kPipeS};
        case HardEvent::M_S: return {kPipeM, kPipeS};
        case HardEvent::FIX_MTE3: return {kPipeFix, kPipeMte3};
        case HardEvent::MTE1_FIX: return {kPipeMte1, kPipeFix};
        case HardEvent::FIX_MTE1: return {kPipeFix, kPipeMte1};
        case HardEvent::FIX_FIX: return {kPipeFix, kPipeFix};
        default: return {kPipeS, kPipeS};
    }
}

enum event_t : int32_t {
    EVENT_ID0 = 0,
    EVENT_ID1,
    EVENT_ID2,
    EVENT_ID3,
    EVENT_ID4,
    EVENT_ID5,
    EVENT_ID6,
    EVENT_ID7,
};

template <pipe_t pipe>
__aicore__ inline void PipeBarrier()
{
    aag_sim::ApiScope s("PipeBarrier");
    aag_sim::PipeBarrierOn(SimPipeOf(pipe));
}

template <HardEvent event>
__aicore__ inline void SetFlag(int32_t eventID)
{
    aag_sim::ApiScope s("SetFlag");
    constexpr SimEventPipes p = SimPipesOf(event);
    aag_sim::SetFlagOn(p.src, p.dst, eventID);
}

template <HardEvent event>
__aicore__ inline void WaitFlag(int32_t eventID)
{
    aag_sim::ApiScope s("WaitFlag");
    constexpr SimEventPipes p = SimPipesOf(event);
    aag_sim::WaitFlagOn(p.src, p.dst, eventID);
}

/* ----------------------------------------------------- TPipe, TBuf, TQue */
class TPipe;

template <TPosition pos = TPosition::LCM>
class TBuf {
public:
    __aicore__ inline TBuf() = default;
    template <typename T>
    __aicore__ inline LocalTensor<T> Get()
    {
        SimRequire("TBuf::Get");
        return LocalTensor<T>(off_, len_, pos, buf_);
    }
    template <typename T>
    __aicore__ inline LocalTensor<T> Get(uint32_t len)
    {
        SimRequire("TBuf::Get");
        if (static_cast<uint64_t>(len) * sizeof(T) > len_) {
            aag_sim::ApiScope s("TBuf::Get");
            aag_sim::Fail(aag_sim::Format("%u elements (%llu bytes) exceed the TBuf of %u bytes", len,
                                          static_cast<unsigned long long>(len) * sizeof(T), len_));
        }
        return LocalTensor<T>(off_, static_cast<uint32_t>(len * sizeof(T)), pos, buf_);
    }
    template <typename T>
    __aicore__ inline LocalTensor<T> GetWithOffset(uint32_t size, uint32_t bufOffset)
    {
        SimRequire("TBuf::GetWithOffset");
        if (bufOffset % 32U != 0U || bufOffset + static_cast<uint64_t>(size) * sizeof(T) > len_) {
            aag_sim::ApiScope s("TBuf::GetWithOffset");
            aag_sim::Fail(aag_sim::Format("offset %u / %u elements do not fit the TBuf of %u bytes (offset must be "
                                          "32-byte aligned)", bufOffset, size, len_));
        }
        return LocalTensor<T>(off_ + bufOffset, static_cast<uint32_t>(size * sizeof(T)), pos, buf_);
    }
    /* model */
    __aicore__ inline void SimInit(uint32_t off, uint32_t len, int32_t buf)
    {
        off_ = off;
        len_ = len;
        buf_ = buf;
    }

private:
    __aicore__ inline void SimRequire(const char *api) const
    {
        if (buf_ < 0) {
            aag_sim::ApiScope s(api);
            aag_sim::Fail("TBuf used before TPipe::InitBuffer");
        }
    }
    uint32_t off_ = 0;
    uint32_t len_ = 0;
    int32_t buf_ = -1;
};

/* TQue: `num` buffers of `len` bytes; EnQue/DeQue carry the pipe ordering the
 * position implies (VECIN: MTE2 -> V, VECOUT: V -> MTE3), FreeTensor/AllocTensor
 * the reverse one, as the documentation of the queue programming model says. */
template <TPosition pos, int32_t depth, auto mask = 0>
class TQue {
public:
    __aicore__ inline TQue() = default;
    template <typename T>
    __aicore__ inline LocalTensor<T> AllocTensor()
    {
        aag_sim::ApiScope s("TQue::AllocTensor");
        SimRequire();
        for (int32_t k = 0; k < num_; ++k) {
            if (state_[k] == 0) {
                state_[k] = 1;
                if (freed_[k]) {  // reuse: wait until the consumer pipe of the last round is done
                    SimOrder(true);
                }
                return LocalTensor<T>(off_ + static_cast<uint32_t>(k) * len_, len_, pos, k);
            }
        }
        aag_sim::Fail(aag_sim::Format("all %d buffers of the queue are allocated (FreeTensor missing?)", num_));
    }
    template <typename T>
    __aicore__ inline void FreeTensor(LocalTensor<T> &tensor)
    {
        aag_sim::ApiScope s("TQue::FreeTensor");
        int32_t k = SimSlot(tensor, "FreeTensor");
        if (state_[k] == 0) aag_sim::Fail("FreeTensor of a buffer that is not allocated");
        state_[k] = 0;
        freed_[k] = true;
        SimMark(true);
    }
    template <typename T>
    __aicore__ inline bool EnQue(const LocalTensor<T> &tensor)
    {
        aag_sim::ApiScope s("TQue::EnQue");
        int32_t k = SimSlot(tensor, "EnQue");
        if (state_[k] != 1) aag_sim::Fail("EnQue of a buffer that is not allocated or already queued");
        if (count_ >= depth) aag_sim::Fail(aag_sim::Format("EnQue beyond the queue depth %d", depth));
        state_[k] = 2;
        fifo_[(head_ + count_) % kMaxBufs] = k;
        ++count_;
        SimMark(false);
        return true;
    }
    template <typename T>
    __aicore__ inline LocalTensor<T> DeQue()
    {
        aag_sim::ApiScope s("TQue::DeQue");
        if (count_ == 0) aag_sim::Fail("DeQue from an empty queue (the device would wait forever)");
        int32_t k = fifo_[head_];
        head_ = (head_ + 1) % kMaxBufs;
        --count_;
        state_[k] = 1;
        SimOrder(false);
        return LocalTensor<T>(off_ + static_cast<uint32_t>(k) * len_, len_, pos, k);
    }
    /* model */
    __aicore__ inline void SimInit(uint32_t off, int32_t num, uint32_t len)
    {
        off_ = off;
        num_ = num;
        len_ = len;
        for (int32_t k = 0; k < kMaxBufs; ++k) {
            state_[k] = 0;
            freed_[k] = false;
        }
        head_ = count_ = 0;
        init_ = true;
    }

private:
    static constexpr int32_t kMaxBufs = 8;
    __aicore__ inline void SimRequire() const
    {
        if (!init_) aag_sim::Fail("TQue used before TPipe::InitBuffer");
    }
    template <typename T>
    __aicore__ inline int32_t SimSlot(const LocalTensor<T> &t, const char *what) const
    {
        SimRequire();
        if (t.SimBuf() < 0 || t.SimBuf() >= num_ || t.SimOff() != off_ + static_cast<uint32_t>(t.SimBuf()) * len_) {
            aag_sim::Fail(aag_sim::Format("%s of a tensor that was not allocated from this queue", what));
        }
        return t.SimBuf();
    }
    /* producer -> consumer pipes of this position (enqueue: forward, free: backward) */
    __aicore__ inline void SimPipes(bool backward, int &src, int &dst) const
    {
        int prod = aag_sim::kPipeV, cons = aag_sim::kPipeV;
        if (pos == TPosition::VECIN) {
            prod = aag_sim::kPipeMte2;
            cons = aag_sim::kPipeV;
        } else if (pos == TPosition::VECOUT) {
            prod = aag_sim::kPipeV;
            cons = aag_sim::kPipeMte3;
        }
        src = backward ? cons : prod;
        dst = backward ? prod : cons;
    }
    __aicore__ inline void SimMark(bool backward)
    {
        int src, dst;
        SimPipes(backward, src, dst);
        if (src != dst) aag_sim::SetFlagOn(src, dst, 8 + (backward ? 1 : 0));
        else aag_sim::PipeBarrierOn(src);
    }
    __aicore__ inline void SimOrder(bool backward)
    {
        int src, dst;
        SimPipes(backward, src, dst);
        if (src != dst) aag_sim::WaitFlagOn(src, dst, 8 + (backward ? 1 : 0));
    }
    uint32_t off_ = 0;
    uint32_t len_ = 0;
    int32_t num_ = 0;
    bool init_ = false;
    uint8_t state_[kMaxBufs] = {};   // 0 free, 1 allocated, 2 queued
    bool freed_[kMaxBufs] = {};
    int32_t fifo_[kMaxBufs] = {};
    int32_t head_ = 0;
    int32_t count_ = 0;
};

class TPipe {
public:
    __aicore__ inline TPipe()
    {
        aag_sim::ApiScope s("TPipe::TPipe");
        aag_sim::PipeCreate(this);
    }
    __aicore__ inline ~TPipe() { aag_sim::PipeDestroy(this); }
    TPipe(const TPipe &) = delete;
    TPipe &operator=(const TPipe &) = delete;

    template <class QUE>
    __aicore__ inline bool InitBuffer(QUE &que, uint8_t num, uint32_t len)
    {
        aag_sim::ApiScope s("TPipe::InitBuffer");
        SimOwn();
        if (num == 0 || num > 8) aag_sim::Fail(aag_sim::Format("queue buffer count %u is not in [1, 8]", num));
        const uint32_t aligned = (len + 31U) / 32U * 32U;
        uint32_t off = aag_sim::PipeAlloc(aligned * num, "TQue");
        que.SimInit(off, num, aligned);
        return true;
    }
    template <TPosition pos>
    __aicore__ inline bool InitBuffer(TBuf<pos> &buf, uint32_t len)
    {
        aag_sim::ApiScope s("TPipe::InitBuffer");
        SimOwn();
        const uint32_t aligned = (len + 31U) / 32U * 32U;
        uint32_t off = aag_sim::PipeAlloc(aligned, "TBuf");
        buf.SimInit(off, aligned, 0);
        return true;
    }
    __aicore__ inline void Reset() { aag_sim::PipeCreate(this); }
    __aicore__ inline void Destroy() { aag_sim::PipeDestroy(this); }
    template <HardEvent evt>
    __aicore__ inline int32_t FetchEventID()
    {
        aag_sim::ApiScope s("TPipe::FetchEventID");
        constexpr SimEventPipes p = SimPipesOf(evt);
        return aag_sim::FetchEventId(p.src, p.dst);
    }
    __aicore__ inline int32_t FetchEventID(HardEvent evt)
    {
        aag_sim::ApiScope s("TPipe::FetchEventID");
        SimEventPipes p = SimPipesOf(evt);
        return aag_sim::FetchEventId(p.src, p.dst);
    }
    template <HardEvent evt>
    __aicore__ inline int32_t AllocEventID()
    {
        return FetchEventID<evt>();
    }
    template <HardEvent evt>
    __aicore__ inline void ReleaseEventID(int32_t)
    {
    }

private:
    __aicore__ inline void SimOwn() const
    {
        if (aag_sim::CurrentPipe() != this) aag_sim::Fail("InitBuffer on a TPipe that is not the core's live pipe");
    }
};

__aicore__ inline TPipe *GetTPipePtr() { return const_cast<TPipe *>(static_cast<const TPipe *>(aag_sim::CurrentPipe())); }

/* the UB space after the TPipe's buffers, handed to APIs that need scratch */
template <typename T, TPosition pos>
__aicore__ inline bool PopStackBuffer(LocalTensor<T> &popLocal)
{
    aag_sim::ApiScope s("PopStackBuffer");
    const uint32_t start = (aag_sim::PipeAllocEnd() + 31U) / 32U * 32U;
    const uint32_t cap = aag_sim::UbCapacity();
    popLocal = LocalTensor<T>(start, cap > start ? cap - start : 0U, pos, 1000);
    return cap > start;
}

/* --------------------------------------------------- system variables */
__aicore__ inline int64_t GetBlockIdx() { return aag_sim::BlockIdx(); }
__aicore__ inline int64_t GetBlockNum() { return aag_sim::BlockNum(); }
__aicore__ inline int64_t GetSubBlockIdx() { return aag_sim::SubBlockIdx(); }
__aicore__ inline int64_t GetTaskRatio() { return aag_sim::TaskRatio(); }
[[deprecated("legacy spelling; the Ascend C API name is GetTaskRatio")]] __aicore__ inline int64_t GetTaskRation()
{
    return aag_sim::TaskRatio();
}
__aicore__ inline GM_ADDR GetUserWorkspace(GM_ADDR workspace) { return aag_sim::UserWorkspacePtr(workspace); }

template <uint32_t index>
__aicore__ inline __gm__ uint8_t *__gm__ GetHcclContext(void)
{
    if constexpr (index > 1) {
        return nullptr;
    }
    return aag_sim::HcclContextPtr(index);
}

/* ---------------------------------------------------------------- sync */
template <bool isAIVOnly = true>
__aicore__ inline void SyncAll()
{
    aag_sim::ApiScope s("SyncAll");
    aag_sim::SyncAllHard(isAIVOnly);
}

template <uint8_t modeId, pipe_t pipe>
__aicore__ inline void CrossCoreSetFlag(uint16_t flagId)
{
    aag_sim::ApiScope s("CrossCoreSetFlag");
    aag_sim::CrossCoreSet(modeId, SimPipeOf(pipe), flagId);
}

template <uint8_t modeId = 0, pipe_t pipe = PIPE_S>
__aicore__ inline void CrossCoreWaitFlag(uint16_t flagId)
{
    aag_sim::ApiScope s("CrossCoreWaitFlag");
    aag_sim::CrossCoreWait(modeId, SimPipeOf(pipe), flagId);
}

/* ----------------------------------------------------------- data copy */
struct DataCopyParams {
    __aicore__ DataCopyParams() {}
    __aicore__ DataCopyParams(const uint16_t count, const uint16_t len, const uint16_t srcStrideIn,
                              const uint16_t dstStrideIn)
        : blockCount(count), blockLen(len), srcStride(srcStrideIn), dstStride(dstStrideIn)
    {
    }
    uint16_t blockCount = 1;
    uint16_t blockLen = 0;   // 32-byte blocks
    uint16_t srcStride = 0;  // 32-byte blocks
    uint16_t dstStride = 0;
};

struct DataCopyExtParams {
    __aicore__ DataCopyExtParams() {}
    __aicore__ DataCopyExtParams(const uint16_t count, const uint32_t len, const uint32_t srcStrideIn,
                                 const uint32_t dstStrideIn, const uint32_t rsvIn)
        : blockCount(count), blockLen(len), srcStride(srcStrideIn), dstStride(dstStrideIn), rsv(rsvIn)
    {
    }
    uint16_t blockCount = 1;
    uint32_t blockLen = 0;    // bytes
    uint32_t srcStride = 0;   // GM: bytes; UB: 32-byte blocks
    uint32_t dstStride = 0;   // GM: bytes; UB: 32-byte blocks
    uint32_t rsv = 0;
};

template <typename T>
struct DataCopyPadExtParams {
    __aicore__ DataCopyPadExtParams() {}
    __aicore__ DataCopyPadExtParams(const bool isPadValue, const uint8_t leftPadValue, const uint8_t rightPadValue,
                                    T padValue)
        : isPad(isPadValue), leftPadding(leftPadValue), rightPadding(rightPadValue), paddingValue(padValue)
    {
    }
    bool isPad = false;
    uint8_t leftPadding = 0;
    uint8_t rightPadding = 0;
    T paddingValue{};
};

namespace simdetail {

constexpr uint32_t kBlk = 32U;
inline uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1U) / a * a; }

template <typename T>
inline void RequireUb(const LocalTensor<T> &t, uint64_t elems, const char *operand)
{
    t.SimCheck(0, elems, operand);
    aag_sim::UbRequireAligned(t.SimOff(), kBlk, operand);
}

template <typename T>
inline void Poison(uint8_t *p, uint64_t bytes)
{
    std::memset(p, 0xFF, bytes);  // NaN for every floating type of the model
}

}  // namespace simdetail

/* GM -> UB, UB -> GM, UB -> UB: contiguous copies of `count` elements */
template <typename T>
__aicore__ inline void DataCopy(const LocalTensor<T> &dst, const GlobalTensor<T> &src, const uint32_t count)
{
    aag_sim::ApiScope s("DataCopy(GM->UB)");
    const uint64_t bytes = static_cast<uint64_t>(count) * sizeof(T);
    if (bytes % simdetail::kBlk != 0U) {
        aag_sim::Fail(aag_sim::Format("count * sizeof(T) = %llu bytes is not a multiple of 32 bytes (the hardware "
                                      "moves whole 32-byte blocks only and would drop the last %llu bytes); use "
                                      "DataCopyPad", static_cast<unsigned long long>(bytes),
                                      static_cast<unsigned long long>(bytes % simdetail::kBlk)));
    }
    simdetail::RequireUb(dst, count, "dst");
    aag_sim::GmRequireAligned(src.SimAddr(), sizeof(T), "src");
    aag_sim::GmUse(src.SimAddr(), bytes, false);
    aag_sim::UbUse(aag_sim::kPipeMte2, dst.SimOff(), bytes, true, "dst");
    if (!aag_sim::CountOnly()) std::memcpy(dst.SimData(), src.SimAddr(), bytes);
}

template <typename T>
__aicore__ inline void DataCopy(const GlobalTensor<T> &dst, const LocalTensor<T> &src, const uint32_t count)
{
    aag_sim::ApiScope s("DataCopy(UB->GM)");
    const uint64_t bytes = static_cast<uint64_t>(count) * sizeof(T);
    if (bytes % simdetail::kBlk != 0U) {
        aag_sim::Fail(aag_sim::Format("count * sizeof(T) = %llu bytes is not a multiple of 32 bytes (the hardware "
                                      "moves whole 32-byte blocks only and would drop the last %llu bytes); use "
                                      "DataCopyPad", static_cast<unsigned long long>(bytes),
                                      static_cast<unsigned long long>(bytes % simdetail::kBlk)));
    }
    simdetail::RequireUb(src, count, "src");
    aag_sim::GmRequireAligned(dst.SimAddr(), sizeof(T), "dst");
    aag_sim::UbUse(aag_sim::kPipeMte3, src.SimOff(), bytes, false, "src");
    aag_sim::GmUse(dst.SimAddr(), bytes, true);
    if (!aag_sim::CountOnly()) std::memcpy(dst.SimAddr(), src.SimData(), bytes);
}

template <typename T>
__aicore__ inline void DataCopy(const LocalTensor<T> &dst, const LocalTensor<T> &src, const uint32_t count)
{
    aag_sim::ApiScope s("DataCopy(UB->UB)");
    const uint64_t bytes = static_cast<uint64_t>(count) * sizeof(T);
    if (bytes % simdetail::kBlk != 0U) {
        aag_sim::Fail(aag_sim::Format("count * sizeof(T) = %llu bytes is not a multiple of 32 bytes (the hardware "
                                      "moves whole 32-byte blocks only and would leave the last %llu bytes of dst "
                                      "stale)", static_cast<unsigned long long>(bytes),
                                      static_cast<unsigned long long>(bytes % simdetail::kBlk)));
    }
    simdetail::RequireUb(dst, count, "dst");
    simdetail::RequireUb(src, count, "src");
    aag_sim::UbUse(aag_sim::kPipeV, src.SimOff(), bytes, false, "src");
    aag_sim::UbUse(aag_sim::kPipeV, dst.SimOff(), bytes, true, "dst");
    if (!aag_sim::CountOnly()) std::memmove(dst.SimData(), src.SimData(), bytes);
}

/* strided forms: blockCount blocks of blockLen 32-byte units, strides in 32-byte units */
template <typename T>
__aicore__ inline void DataCopy(const LocalTensor<T> &dst, const GlobalTensor<T> &src, const DataCopyParams &p)
{
    aag_sim::ApiScope s("DataCopy(GM->UB, DataCopyParams)");
    const uint64_t len = static_cast<uint64_t>(p.blockLen) * simdetail::kBlk;
    const uint64_t sp = len + static_cast<uint64_t>(p.srcStride) * simdetail::kBlk;
    const uint64_t dp = len + static_cast<uint64_t>(p.dstStride) * simdetail::kBlk;
    const uint64_t ubBytes = p.blockCount ? (p.blockCount - 1U) * dp + len : 0U;
    simdetail::RequireUb(dst, ubBytes / sizeof(T), "dst");
    aag_sim::GmRequireAligned(src.SimAddr(), sizeof(T), "src");
    aag_sim::GmUseRows(src.SimAddr(), p.blockCount, len, sp, false);
    for (uint32_t r = 0; r < p.blockCount; ++r) {
        aag_sim::UbUse(aag_sim::kPipeMte2, dst.SimOff() + r * dp, len, true, "dst");
        if (!aag_sim::CountOnly()) {
            std::memcpy(reinterpret_cast<uint8_t *>(dst.SimData()) + r * dp,
                        reinterpret_cast<const uint8_t *>(src.SimAddr()) + r * sp, len);
        }
    }
}

template <typename T>
__aicore__ inline void DataCopy(const GlobalTensor<T> &dst, const LocalTensor<T> &src, const DataCopyParams &p)
{
    aag_sim::ApiScope s("DataCopy(UB->GM, DataCopyParams)");
    const uint64_t len = static_cast<uint64_t>(p.blockLen) * simdetail::kBlk;
    const uint64_t sp = len + static_cast<uint64_t>(p.srcStride) * simdetail::kBlk;
    const uint64_t dp = len + static_cast<uint64_t>(p.dstStride) * simdetail::kBlk;
    const uint64_t ubBytes = p.blockCount ? (p.blockCount - 1U) * sp + len : 0U;
    simdetail::RequireUb(src, ubBytes / sizeof(T), "src");
    aag_sim::GmRequireAligned(dst.SimAddr(), sizeof(T), "dst");
    for (uint32_t r = 0; r < p.blockCount; ++r) {
        aag_sim::UbUse(aag_sim::kPipeMte3, src.SimOff() + r * sp, len, false, "src");
    }
    aag_sim::GmUseRows(dst.SimAddr(), p.blockCount, len, dp, true);
    if (!aag_sim::CountOnly()) {
        for (uint32_t r = 0; r < p.blockCount; ++r) {
            std::memcpy(reinterpret_cast<uint8_t *>(dst.SimAddr()) + r * dp,
                        reinterpret_cast<const uint8_t *>(src.SimData()) + r * sp, len);
        }
    }
}

namespace simdetail {
inline void CheckExtParams(const DataCopyExtParams &p, uint64_t elemBytes)
{
    if (p.blockCount > 4095U) {
        aag_sim::Fail(aag_sim::Format("blockCount %u is outside [0, 4095]", p.blockCount));
    }
    if (p.blockLen > 2097151U) {
        aag_sim::Fail(aag_sim::Format("blockLen %u bytes is outside [0, 2097151]", p.blockLen));
    }
    if (p.blockLen % elemBytes != 0U) {
        aag_sim::Fail(aag_sim::Format("blockLen %u bytes is not a multiple of sizeof(T) = %llu", p.blockLen,
                                      static_cast<unsigned long long>(elemBytes)));
    }
}
}  // namespace simdetail

/* GM -> UB, any length: every block lands 32-byte aligned in UB, padded to a
 * whole number of 32-byte blocks (left/right padding and dummy values as the
 * documentation describes); GM strides in bytes, UB strides in blocks. */
template <typename T>
__aicore__ inline void DataCopyPad(const LocalTensor<T> &dst, const GlobalTensor<T> &src,
                                   const DataCopyExtParams &dataCopyParams, const DataCopyPadExtParams<T> &padParams)
{
    aag_sim::ApiScope s("DataCopyPad(GM->UB)");
    const DataCopyExtParams &p = dataCopyParams;
    simdetail::CheckExtParams(p, sizeof(T));
    if (padParams.leftPadding * sizeof(T) > 32U || padParams.rightPadding * sizeof(T) > 32U) {
        aag_sim::Fail("leftPadding / rightPadding exceed 32 bytes");
    }
    if (p.blockCount == 0U || p.blockLen == 0U) {
        return;  // documented NOP on Atlas A2/A3
    }
    const uint64_t es = sizeof(T);
    const uint64_t lp = padParams.leftPadding * es;
    const uint64_t rp = padParams.rightPadding * es;
    const uint64_t rowUb = simdetail::AlignUp(lp + p.blockLen + rp, simdetail::kBlk);
    const uint64_t pitchUb = rowUb + static_cast<uint64_t>(p.dstStride) * simdetail::kBlk;
    const uint64_t pitchGm = static_cast<uint64_t>(p.blockLen) + p.srcStride;
    const uint64_t ubBytes = (p.blockCount - 1U) * pitchUb + rowUb;
    aag_sim::UbRequireAligned(dst.SimOff(), simdetail::kBlk, "dst");
    if (dst.SimBuf() < 0 || ubBytes > dst.SimBytes()) {
        aag_sim::Fail(aag_sim::Format("the %u padded blocks need %llu bytes of UB, dst has %u", p.blockCount,
                                      static_cast<unsigned long long>(ubBytes), dst.SimBytes()));
    }
    aag_sim::GmUseRows(src.SimAddr(), p.blockCount, p.blockLen, pitchGm, false);
    for (uint32_t r = 0; r < p.blockCount; ++r) {
        aag_sim::UbUse(aag_sim::kPipeMte2, dst.SimOff() + r * pitchUb, rowUb, true, "dst");
    }
    if (aag_sim::CountOnly()) return;
    const bool noPad = (lp == 0U && rp == 0U);
    for (uint32_t r = 0; r < p.blockCount; ++r) {
        uint8_t *row = reinterpret_cast<uint8_t *>(dst.SimData()) + r * pitchUb;
        const uint8_t *g = reinterpret_cast<const uint8_t *>(src.SimAddr()) + r * pitchGm;
        for (uint64_t k = 0; k < lp; k += es) {
            if (padParams.isPad) std::memcpy(row + k, &padParams.paddingValue, es);
            else simdetail::Poison<T>(row + k, es);
        }
        std::memcpy(row + lp, g, p.blockLen);
        for (uint64_t k = lp + p.blockLen; k < lp + p.blockLen + rp; k += es) {
            if (padParams.isPad) std::memcpy(row + k, &padParams.paddingValue, es);
            else simdetail::Poison<T>(row + k, es);
        }
        for (uint64_t k = lp + p.blockLen + rp; k + es <= rowUb; k += es) {  // dummy fill to the block end
            if (noPad) std::memcpy(row + k, g, es);               // "the first element of the block"
            else if (padParams.isPad) std::memcpy(row + k, &padParams.paddingValue, es);
            else simdetail::Poison<T>(row + k, es);
        }
    }
}

/* UB -> GM, any length: UB blocks start 32-byte aligned (srcStride in blocks),
 * GM rows are blockLen bytes, dstStride bytes apart. */
template <typename T>
__aicore__ inline void DataCopyPad(const GlobalTensor<T> &dst, const LocalTensor<T> &src,
                                   const DataCopyExtParams &dataCopyParams)
{
    aag_sim::ApiScope s("DataCopyPad(UB->GM)");
    const DataCopyExtParams &p = dataCopyParams;
    simdetail::CheckExtParams(p, sizeof(T));
    if (p.blockCount == 0U || p.blockLen == 0U) {
        return;
    }
    const uint64_t rowUb = simdetail::AlignUp(p.blockLen, simdetail::kBlk);
    const uint64_t pitchUb = rowUb + static_cast<uint64_t>(p.srcStride) * simdetail::kBlk;
    const uint64_t pitchGm = static_cast<uint64_t>(p.blockLen) + p.dstStride;
    const uint64_t ubBytes = (p.blockCount - 1U) * pitchUb + p.blockLen;
    aag_sim::UbRequireAligned(src.SimOff(), simdetail::kBlk, "src");
    if (src.SimBuf() < 0 || ubBytes > src.SimBytes()) {
        aag_sim::Fail(aag_sim::Format("the %u blocks read %llu bytes of UB, src has %u", p.blockCount,
                                      static_cast<unsigned long long>(ubBytes), src.SimBytes()));
    }
    for (uint32_t r = 0; r < p.blockCount; ++r) {
        aag_sim::UbUse(aag_sim::kPipeMte3, src.SimOff() + r * pitchUb, p.blockLen, false, "src");
    }
    aag_sim::GmUseRows(dst.SimAddr(), p.blockCount, p.blockLen, pitchGm, true);
    if (aag_sim::CountOnly()) return;
    for (uint32_t r = 0; r < p.blockCount; ++r) {
        std::memcpy(reinterpret_cast<uint8_t *>(dst.SimAddr()) + r * pitchGm,
                    reinterpret_cast<const uint8_t *>(src.SimData()) + r * pitchUb, p.blockLen);
    }
}

/* ------------------------------------------------------------- vector */
enum class RoundMode {
    CAST_NONE = 0,
    CAST_RINT,
    CAST_FLOOR,
    CAST_CEIL,
    CAST_ROUND,
    CAST_TRUNC,
    CAST_ODD,
    CAST_HYBRID,
};

namespace simdetail {

template <typename T>
inline float Load(const T *p, uint64_t i)
{
    return static_cast<float>(p[i]);
}
template <typename T>
inline void Store(T *p, uint64_t i, float v)
{
    p[i] = static_cast<T>(v);  // one rounding to T (round to nearest even for half / bfloat16_t)
}

template <typename T>
inline constexpr bool IsVecType()
{
    return std::is_same<T, half>::value || std::is_same<T, float>::value || std::is_same<T, bfloat16_t>::value ||
           std::is_same<T, int16_t>::value || std::is_same<T, int32_t>::value;
}

/* operands of a count-mode vector instruction: 32-byte aligned, in bounds,
 * destination either identical to a source or disjoint from it */
template <typename D, typename S>
inline void VecOperands(const LocalTensor<D> &dst, const LocalTensor<S> &src, int32_t count, const char *srcName)
{
    if (count < 0) aag_sim::Fail(aag_sim::Format("count %d is negative", count));
    RequireUb(dst, static_cast<uint64_t>(count), "dst");
    RequireUb(src, static_cast<uint64_t>(count), srcName);
    const uint64_t d0 = dst.SimOff(), d1 = d0 + static_cast<uint64_t>(count) * sizeof(D);
    const uint64_t s0 = src.SimOff(), s1 = s0 + static_cast<uint64_t>(count) * sizeof(S);
    if (count > 0 && d0 < s1 && s0 < d1 && !(d0 == s0 && sizeof(D) == sizeof(S))) {
        aag_sim::Fail(aag_sim::Format("dst and %s overlap partially (UB bytes [%llu, %llu) and [%llu, %llu)); the "
                                      "operands of one instruction must coincide or be disjoint", srcName,
                                      static_cast<unsigned long long>(d0), static_cast<unsigned long long>(d1),
                                      static_cast<unsigned long long>(s0), static_cast<unsigned long long>(s1)));
    }
}

template <typename T, class F>
inline void Unary(const LocalTensor<T> &dst, const LocalTensor<T> &src, int32_t count, F f)
{
    static_assert(IsVecType<T>(), "vector type");
    VecOperands(dst, src, count, "src");
    const uint64_t n = static_cast<uint64_t>(count);
    aag_sim::UbUse(aag_sim::kPipeV, src.SimOff(), n * sizeof(T), false, "src");
    aag_sim::UbUse(aag_sim::kPipeV, dst.SimOff(), n * sizeof(T), true, "dst");
    aag_sim::CountVector(n);
    if (aag_sim::CountOnly()) return;
    T *d = dst.SimData();
    const T *a = src.SimData();
    for (uint64_t i = 0; i < n; ++i) Store(d, i, f(Load(a, i)));
}

template <typename T, class F>
inline void Binary(const LocalTensor<T> &dst, const LocalTensor<T> &src0, const LocalTensor<T> &src1, int32_t count,
                   F f)
{
    static_assert(IsVecType<T>(), "vector type");
    VecOperands(dst, src0, count, "src0");
    VecOperands(dst, src1, count, "src1");
    const uint64_t n = static_cast<uint64_t>(count);
    aag_sim::UbUse(aag_sim::kPipeV, src0.SimOff(), n * sizeof(T), false, "src0");
    aag_sim::UbUse(aag_sim::kPipeV, src1.SimOff(), n * sizeof(T), false, "src1");
    aag_sim::UbUse(aag_sim::kPipeV, dst.SimOff(), n * sizeof(T), true, "dst");
    aag_sim::CountVector(n);
    if (aag_sim::CountOnly()) return;
    T *d = dst.SimData();
    const T *a = src0.SimData();
    const T *b = src1.SimData();
    for (uint64_t i = 0; i < n; ++i) Store(d, i, f(Load(a, i), Load(b, i)));
}

}  // namespace simdetail

template <typename T>
__aicore__ inline void Add(const LocalTensor<T> &dst, const LocalTensor<T> &src0, const LocalTensor<T> &src1,
                           const int32_t &count)
{
    aag_sim::ApiScope s("Add");
    simdetail::Binary(dst, src0, src1, count, [](float a, float b) { return a + b; });
}
template <typename T>
__aicore__ inline void Sub(const LocalTensor<T> &dst, const LocalTensor<T> &src0, const LocalTensor<T> &src1,
                           const int32_t &count)
{
    aag_sim::ApiScope s("Sub");
    simdetail::Binary(dst, src0, src1, count, [](float a, float b) { return a - b; });
}
template <typename T>
__aicore__ inline void Mul(const LocalTensor<T> &dst, const LocalTensor<T> &src0, const LocalTensor<T> &src1,
                           const int32_t &count)
{
    aag_sim::ApiScope s("Mul");
    simdetail::Binary(dst, src0, src1, count, [](float a, float b) { return a * b; });
}
template <typename T>
__aicore__ inline void Div(const LocalTensor<T> &dst, const LocalTensor<T> &src0, const LocalTensor<T> &src1,
                           const int32_t &count)
{
    aag_sim::ApiScope s("Div");
    simdetail::Binary(dst, src0, src1, count, [](float a, float b) { return a / b; });
}
template <typename T>
__aicore__ inline void Max(const LocalTensor<T> &dst, const LocalTensor<T> &src0, const LocalTensor<T> &src1,
                           const int32_t &count)
{
    aag_sim::ApiScope s("Max");
    simdetail::Binary(dst, src0, src1, count, [](float a, float b) { return a > b ? a : b; });
}
template <typename T>
__aicore__ inline void Min(const LocalTensor<T> &dst, const LocalTensor<T> &src0, const LocalTensor<T> &src1,
                           const int32_t &count)
{
    aag_sim::ApiScope s("Min");
    simdetail::Binary(dst, src0, src1, count, [](float a, float b) { return a < b ? a : b; });
}
template <typename T, typename U>
__aicore__ inline void Adds(const LocalTensor<T> &dst, const LocalTensor<T> &src, const U &scalarValue,
                            const int32_t &count)
{
    aag_sim::ApiScope s("Adds");
    const float c = static_cast<float>(static_cast<T>(scalarValue));
    simdetail::Unary(dst, src, count, [c](float a) { return a + c; });
}
template <typename T, typename U>
__aicore__ inline void Muls(const LocalTensor<T> &dst, const LocalTensor<T> &src, const U &scalarValue,
                            const int32_t &count)
{
    aag_sim::ApiScope s("Muls");
    const float c = static_cast<float>(static_cast<T>(scalarValue));
    simdetail::Unary(dst, src, count, [c](float a) { return a * c; });
}
template <typename T, typename U>
__aicore__ inline void Maxs(const LocalTensor<T> &dst, const LocalTensor<T> &src, const U &scalarValue,
                            const int32_t &count)
{
    aag_sim::ApiScope s("Maxs");
    const float c = static_cast<float>(static_cast<T>(scalarValue));
    simdetail::Unary(dst, src, count, [c](float a) { return a > c ? a : c; });
}
template <typename T, typename U>
__aicore__ inline void Mins(const LocalTensor<T> &dst, const LocalTensor<T> &src, const U &scalarValue,
                            const int32_t &count)
{
    aag_sim::ApiScope s("Mins");
    const float c = static_cast<float>(static_cast<T>(scalarValue));
    simdetail::Unary(dst, src, count, [c](float a) { return a < c ? a : c; });
}
template <typename T>
__aicore__ inline void Exp(const LocalTensor<T> &dst, const LocalTensor<T> &src, const int32_t &count)
{
    aag_sim::ApiScope s("Exp");
    simdetail::Unary(dst, src, count, [](float a) { return std::exp(a); });
}
template <typename T>
__aicore__ inline void Abs(const LocalTensor<T> &dst, const LocalTensor<T> &src, const int32_t &count)
{
    aag_sim::ApiScope s("Abs");
    simdetail::Unary(dst, src, count, [](float a) { return std::fabs(a); });
}
template <typename T>
__aicore__ inline void Reciprocal(const LocalTensor<T> &dst, const LocalTensor<T> &src, const int32_t &count)
{
    aag_sim::ApiScope s("Reciprocal");
    simdetail::Unary(dst, src, count, [](float a) { return 1.0f / a; });
}
template <typename T>
__aicore__ inline void Relu(const LocalTensor<T> &dst, const LocalTensor<T> &src, const int32_t &count)
{
    aag_sim::ApiScope s("Relu");
    simdetail::Unary(dst, src, count, [](float a) { return a > 0.0f ? a : 0.0f; });
}
template <typename T>
__aicore__ inline void Duplicate(const LocalTensor<T> &dst, const T &scalarValue, const int32_t &count)
{
    aag_sim::ApiScope s("Duplicate");
    if (count < 0) aag_sim::Fail("count is negative");
    simdetail::RequireUb(dst, static_cast<uint64_t>(count), "dst");
    aag_sim::UbUse(aag_sim::kPipeV, dst.SimOff(), static_cast<uint64_t>(count) * sizeof(T), true, "dst");
    aag_sim::CountVector(static_cast<uint64_t>(count));
    if (aag_sim::CountOnly()) return;
    for (int32_t i = 0; i < count; ++i) dst.SimData()[i] = scalarValue;
}

/* Cast: the type pairs and round modes the Atlas A2/A3 table of the Cast
 * documentation lists for half / bfloat16_t / float. */
template <typename T, typename U>
__aicore__ inline void Cast(const LocalTensor<T> &dst, const LocalTensor<U> &src, const RoundMode &roundMode,
                            const uint32_t count)
{
    aag_sim::ApiScope s("Cast");
    constexpr bool f2h = std::is_same<T, half>::value && std::is_same<U, float>::value;
    constexpr bool f2b = std::is_same<T, bfloat16_t>::value && std::is_same<U, float>::value;
    constexpr bool h2f = std::is_same<T, float>::value && std::is_same<U, half>::value;
    constexpr bool b2f = std::is_same<T, float>::value && std::is_same<U, bfloat16_t>::value;
    static_assert(f2h || f2b || h2f || b2f, "the model implements Cast between float and half / bfloat16_t only");
    const RoundMode m = roundMode;
    bool ok = true;
    if (h2f || b2f) ok = (m == RoundMode::CAST_NONE);
    if (f2h) ok = (m != RoundMode::CAST_HYBRID);
    if (f2b) ok = (m != RoundMode::CAST_HYBRID && m != RoundMode::CAST_NONE && m != RoundMode::CAST_ODD);
    if (!ok) {
        aag_sim::Fail(aag_sim::Format("round mode %d is not supported for this type pair on Atlas A2/A3 (Cast "
                                      "documentation)", static_cast<int>(m)));
    }
    simdetail::VecOperands(dst, src, static_cast<int32_t>(count), "src");
    const uint64_t n = count;
    aag_sim::UbUse(aag_sim::kPipeV, src.SimOff(), n * sizeof(U), false, "src");
    aag_sim::UbUse(aag_sim::kPipeV, dst.SimOff(), n * sizeof(T), true, "dst");
    aag_sim::CountVector(n);
    if (aag_sim::CountOnly()) return;
    const aag_sim::Rounding r = static_cast<aag_sim::Rounding>(static_cast<int>(m));
    for (uint64_t i = 0; i < n; ++i) {
        const float v = static_cast<float>(src.SimData()[i]);
        if constexpr (f2h) {
            dst.SimData()[i] = half::FromBits(aag_sim::FloatToHalfBits(v, r));
        } else if constexpr (f2b) {
            dst.SimData()[i] = bfloat16_t::FromBits(aag_sim::FloatToBf16Bits(v, r));
        } else {
            dst.SimData()[i] = v;  // exact widening
        }
    }
}

/* ------------------------------------------------------- activations */
namespace simdetail {

/* the scratch of a high-level activation API: `tmp` (a caller buffer or the
 * stack after the TPipe's buffers), split into `parts` equal 32-byte aligned
 * pieces of T; returns elements per piece (0 = not enough scratch) */
template <typename T>
inline uint32_t ScratchPiece(const LocalTensor<uint8_t> &tmp, uint32_t parts)
{
    const uint32_t elems = tmp.SimBytes() / sizeof(T);
    return (elems / parts) * sizeof(T) / kBlk * kBlk / sizeof(T);
}

template <typename T>
inline void RequireDisjoint(const LocalTensor<uint8_t> &tmp, const LocalTensor<T> &t, uint64_t n, const char *what)
{
    const uint64_t a0 = tmp.SimOff(), a1 = a0 + tmp.SimBytes();
    const uint64_t b0 = t.SimOff(), b1 = b0 + n * sizeof(T);
    if (n > 0 && a0 < b1 && b0 < a1) {
        aag_sim::Fail(aag_sim::Format("the temporary buffer overlaps %s (not supported by the API)", what));
    }
}

/* runs f(dst[off..], src[off..], tmpA, tmpB, n) piece by piece, as the API
 * processes its data in rounds of the scratch size */
template <typename T, class F>
inline void InPieces(const LocalTensor<T> &dst, const LocalTensor<T> &src, const LocalTensor<uint8_t> &tmp,
                     uint32_t dataSize, uint32_t parts, const char *api, F f)
{
    RequireUb(dst, dataSize, "dstLocal");
    RequireUb(src, dataSize, "srcLocal");
    RequireDisjoint(tmp, dst, dataSize, "dstLocal");
    RequireDisjoint(tmp, src, dataSize, "srcLocal");
    const uint32_t piece = ScratchPiece<T>(tmp, parts);
    if (piece == 0U) {
        aag_sim::Fail(aag_sim::Format("%s: %u bytes of temporary space are too few (the API needs %u pieces of at "
                                      "least 32 bytes; leave UB unallocated or pass sharedTmpBuffer)", api,
                                      tmp.SimBytes(), parts));
    }
    const LocalTensor<T> a = tmp.template ReinterpretCast<T>();
    const LocalTensor<T> b = a[piece];
    for (uint32_t off = 0; off < dataSize; off += piece) {
        const uint32_t n = (dataSize - off < piece) ? dataSize - off : piece;
        f(dst[off], src[off], a, b, static_cast<int32_t>(n));
    }
}

}  // namespace simdetail

/* GELU, tanh form, in the instruction sequence of the API's implementation:
 * y = 1.5957691216057308 (x + 0.044715 x^3); out = x / (exp(-|y|) + 1) * exp(min(y, 0)) */
template <typename T, bool highPrecision = false, bool highPerformance = false>
__aicore__ inline void Gelu(const LocalTensor<T> &dstLocal, const LocalTensor<T> &srcLocal,
                            const LocalTensor<uint8_t> &sharedTmpBuffer, const uint32_t dataSize)
{
    aag_sim::ApiScope s("Gelu");
    static_assert(std::is_same<T, float>::value || std::is_same<T, half>::value, "Gelu: half or float");
    simdetail::InPieces(dstLocal, srcLocal, sharedTmpBuffer, dataSize, 2U, "Gelu",
                        [](const LocalTensor<T> &d, const LocalTensor<T> &x, const LocalTensor<T> &a,
                           const LocalTensor<T> &b, int32_t n) {
                            Mul(a, x, x, n);
                            PipeBarrier<PIPE_V>();
                            Mul(b, x, a, n);
                            PipeBarrier<PIPE_V>();
                            Muls(a, b, static_cast<T>(0.044715f), n);
                            PipeBarrier<PIPE_V>();
                            Add(b, x, a, n);
                            PipeBarrier<PIPE_V>();
                            Muls(a, b, static_cast<T>(1.5957691216057308f), n);
                            PipeBarrier<PIPE_V>();
                            Mins(b, a, static_cast<T>(0.0f), n);
                            PipeBarrier<PIPE_V>();
                            Exp(b, b, n);
                            PipeBarrier<PIPE_V>();
                            Abs(a, a, n);
                            PipeBarrier<PIPE_V>();
                            Muls(a, a, static_cast<T>(-1.0f), n);
                            PipeBarrier<PIPE_V>();
                            Exp(a, a, n);
                            PipeBarrier<PIPE_V>();
                            Adds(a, a, static_cast<T>(1.0f), n);
                            PipeBarrier<PIPE_V>();
                            if constexpr (highPerformance) {
                                Reciprocal(a, a, n);
                                PipeBarrier<PIPE_V>();
                                Mul(a, x, a, n);
                            } else {
                                Div(a, x, a, n);
                            }
                            PipeBarrier<PIPE_V>();
                            Mul(d, a, b, n);
                            PipeBarrier<PIPE_V>();
                        });
}

template <typename T, bool highPrecision = false, bool highPerformance = false>
__aicore__ inline void Gelu(const LocalTensor<T> &dstLocal, const LocalTensor<T> &srcLocal, const uint32_t dataSize)
{
    aag_sim::ApiScope s("Gelu");
    LocalTensor<uint8_t> tmp;
    PopStackBuffer<uint8_t, TPosition::LCM>(tmp);
    Gelu<T, highPrecision, highPerformance>(dstLocal, srcLocal, tmp, dataSize);
}

/* FastGELU as FasterGelu computes it: out = x / (1 + exp(-1.702 x)) */
template <typename T, bool highPrecision = false, bool highPerformance = false>
__aicore__ inline void FasterGelu(const LocalTensor<T> &dstLocal, const LocalTensor<T> &srcLocal,
                                  const LocalTensor<uint8_t> &sharedTmpBuffer, const uint32_t dataSize)
{
    aag_sim::ApiScope s("FasterGelu");
    static_assert(std::is_same<T, float>::value || std::is_same<T, half>::value, "FasterGelu: half or float");
    simdetail::InPieces(dstLocal, srcLocal, sharedTmpBuffer, dataSize, 1U, "FasterGelu",
                        [](const LocalTensor<T> &d, const LocalTensor<T> &x, const LocalTensor<T> &a,
                           const LocalTensor<T> &, int32_t n) {
                            Muls(a, x, static_cast<T>(-1.702f), n);
                            PipeBarrier<PIPE_V>();
                            Exp(a, a, n);
                            PipeBarrier<PIPE_V>();
                            Adds(a, a, static_cast<T>(1.0f), n);
                            PipeBarrier<PIPE_V>();
                            if constexpr (highPerformance) {
                                Reciprocal(a, a, n);
                                PipeBarrier<PIPE_V>();
                                Mul(d, x, a, n);
                            } else {
                                Div(d, x, a, n);
                            }
                            PipeBarrier<PIPE_V>();
                        });
}

template <typename T, bool highPrecision = false, bool highPerformance = false>
__aicore__ inline void FasterGelu(const LocalTensor<T> &dstLocal, const LocalTensor<T> &srcLocal,
                                  const uint32_t dataSize)
{
    aag_sim::ApiScope s("FasterGelu");
    LocalTensor<uint8_t> tmp;
    PopStackBuffer<uint8_t, TPosition::LCM>(tmp);
    FasterGelu<T, highPrecision, highPerformance>(dstLocal, srcLocal, tmp, dataSize);
}

/* SiLU as the API computes it, using dst as its scratch: out = x / (1 + exp(-x));
 * source and destination must not overlap (documented constraint). */
template <typename T, bool isReuseSource = false>
__aicore__ inline void Silu(const LocalTensor<T> &dstLocal, const LocalTensor<T> &srcLocal, uint32_t dataSize)
{
    aag_sim::ApiScope s("Silu");
    static_assert(std::is_same<T, float>::value || std::is_same<T, half>::value, "Silu: half or float");
    simdetail::RequireUb(dstLocal, dataSize, "dstLocal");
    simdetail::RequireUb(srcLocal, dataSize, "srcLocal");
    const uint64_t d0 = dstLocal.SimOff(), s0 = srcLocal.SimOff(), n = dataSize * sizeof(T);
    if (dataSize > 0 && d0 < s0 + n && s0 < d0 + n) {
        aag_sim::Fail("source and destination overlap (not supported by Silu)");
    }
    const int32_t c = static_cast<int32_t>(dataSize);
    Muls(dstLocal, srcLocal, static_cast<T>(-1.0f), c);
    PipeBarrier<PIPE_V>();
    Exp(dstLocal, dstLocal, c);
    PipeBarrier<PIPE_V>();
    Adds(dstLocal, dstLocal, static_cast<T>(1.0f), c);
    PipeBarrier<PIPE_V>();
    Div(dstLocal, srcLocal, dstLocal, c);
    PipeBarrier<PIPE_V>();
}

}  // namespace AscendC

/* the system workspace of the high-level APIs (a global function, as in CANN) */
__aicore__ inline __gm__ uint8_t *__gm__ GetSysWorkSpacePtr() { return aag_sim::SysWorkspacePtr(); }

#endif  // MOE_MC2_KERNEL_SIM_KERNEL_OPERATOR_H
