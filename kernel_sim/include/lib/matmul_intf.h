/*
 * kernel_sim/include/lib/matmul_intf.h — the CPU model's Matmul high-level API
 * (MatmulType, Matmul, REGIST_MATMUL_OBJ) for MIX kernels: the AIV side is a
 * client that hands each IterateAll to the cube core of its AI Core; the AIC
 * side, inside REGIST_MATMUL_OBJ, serves those requests and then returns from
 * the kernel, as the documented MIX programming model describes. Products are
 * accumulated in fp32 (fp16 / bf16 inputs are exact in fp32). Written for this
 * project; not CANN code.
 */
#ifndef MOE_MC2_KERNEL_SIM_MATMUL_INTF_H
#define MOE_MC2_KERNEL_SIM_MATMUL_INTF_H

#include "kernel_operator.h"
#include "kernel_tiling/kernel_tiling.h"

namespace AscendC {

enum class CubeFormat : int32_t { ND = 0, NZ, ZN, ZZ, NN, ND_ALIGN, SCALAR, VECTOR, ROW_MAJOR = ND, COLUMN_MAJOR = 8 };
enum class LayoutMode : int32_t { NONE = 0, BSNGD, SBNGD, BNGS1S2, NORMAL };

template <TPosition POSITION, CubeFormat FORMAT, typename TYPE, bool ISTRANS = false,
          LayoutMode LAYOUT = LayoutMode::NONE, bool IBSHARE = false, TPosition SRCPOS = TPosition::GM>
struct MatmulType {
    constexpr static TPosition pos = POSITION;
    constexpr static CubeFormat format = FORMAT;
    using T = TYPE;
    constexpr static bool isTrans = ISTRANS;
    constexpr static LayoutMode layout = LAYOUT;
    constexpr static bool ibShare = IBSHARE;
    constexpr static TPosition srcPos = SRCPOS;
};

struct MatmulConfig {
    bool doNorm = true;
};
constexpr MatmulConfig CFG_NORM{};

struct SimNoCallback {
};
struct SimNoPolicy {
};

template <class A_TYPE, class B_TYPE, class C_TYPE, class BIAS_TYPE = C_TYPE, const auto &MM_CFG = CFG_NORM,
          class MM_CB = SimNoCallback, class MATMUL_POLICY = SimNoPolicy>
class Matmul {
public:
    using SrcAT = typename A_TYPE::T;
    using SrcBT = typename B_TYPE::T;
    using DstT = typename C_TYPE::T;
    using BiasT = typename BIAS_TYPE::T;

    __aicore__ inline Matmul()
    {
        call_.aType = SimScalarOf<SrcAT>();
        call_.bType = SimScalarOf<SrcBT>();
        call_.cType = SimScalarOf<DstT>();
        call_.biasType = SimScalarOf<BiasT>();
        call_.aTransType = A_TYPE::isTrans;
        call_.bTransType = B_TYPE::isTrans;
        call_.aGm = A_TYPE::pos == TPosition::GM && A_TYPE::format == CubeFormat::ND;
        call_.bGm = B_TYPE::pos == TPosition::GM && B_TYPE::format == CubeFormat::ND;
        call_.cGm = C_TYPE::pos == TPosition::GM && C_TYPE::format == CubeFormat::ND;
        call_.biasGm = BIAS_TYPE::pos == TPosition::GM;
        call_.object = this;
    }
    __aicore__ inline void Init(const TCubeTiling *cubeTiling, TPipe *tpipe = nullptr)
    {
        (void)tpipe;
        SimSetTiling(cubeTiling);
    }
    __aicore__ inline void SetOrgShape(int orgM, int orgN, int orgK) { SetOrgShape(orgM, orgN, orgK, orgK, 0); }
    __aicore__ inline void SetOrgShape(int orgM, int orgN, int orgKa, int orgKb, int orgKc = 0)
    {
        aag_sim::ApiScope s("Matmul::SetOrgShape");
        if (operandsSet_) {
            aag_sim::Fail("SetOrgShape after SetTensorA / SetTensorB / SetBias / SetSingleShape of the same call: the "
                          "documentation requires it before them");
        }
        call_.orgM = orgM;
        call_.orgN = orgN;
        call_.orgKa = orgKa;
        call_.orgKb = orgKb;
        call_.orgKc = orgKc;
        call_.orgSet = true;
    }
    __aicore__ inline void SetSingleShape(int singleM, int singleN, int singleK)
    {
        operandsSet_ = true;
        call_.singleM = singleM;
        call_.singleN = singleN;
        call_.singleK = singleK;
        call_.shapeSet = true;
    }
    __aicore__ inline void SetTail(int tailM = -1, int tailN = -1, int tailK = -1)
    {
        if (tailM > 0) call_.singleM = tailM;
        if (tailN > 0) call_.singleN = tailN;
        if (tailK > 0) call_.singleK = tailK;
        call_.shapeSet = true;
    }
    __aicore__ inline void SetTensorA(const GlobalTensor<SrcAT> &gm, bool isTransposeA = false)
    {
        operandsSet_ = true;
        call_.a = gm.SimAddr();
        call_.transA = isTransposeA;
        call_.aSet = true;
    }
    __aicore__ inline void SetTensorB(const GlobalTensor<SrcBT> &gm, bool isTransposeB = false)
    {
        operandsSet_ = true;
        call_.b = gm.SimAddr();
        call_.transB = isTransposeB;
        call_.bSet = true;
    }
    __aicore__ inline void SetBias(const GlobalTensor<BiasT> &biasGlobal)
    {
        aag_sim::ApiScope s("Matmul::SetBias");
        const auto *t = static_cast<const TCubeTiling *>(call_.tiling);
        if (t == nullptr || t->isBias != 1) {
            aag_sim::Fail("SetBias needs a tiling with isBias = 1 (TCubeTiling; SetBias documentation)");
        }
        operandsSet_ = true;
        call_.bias = biasGlobal.SimAddr();
        call_.hasBias = true;
    }
    __aicore__ inline void ClearBias() { call_.hasBias = false; }
    template <bool sync = true>
    __aicore__ inline void IterateAll(const GlobalTensor<DstT> &gm, uint8_t enAtomic = 0,
                                      bool enSequentialWrite = false, bool waitIterateAll = false,
                                      bool fakeMsg = false)
    {
        aag_sim::ApiScope s("Matmul::IterateAll");
        if (enSequentialWrite || fakeMsg) {
            aag_sim::Fail("enSequentialWrite / fakeMsg are not modelled");
        }
        if (sync && waitIterateAll) {
            aag_sim::Fail("waitIterateAll is for the asynchronous IterateAll<false> only (IterateAll documentation)");
        }
        if (!sync && !waitIterateAll) {
            aag_sim::Fail("IterateAll<false> without waitIterateAll = true leaves the wait to the kernel's own "
                          "synchronisation, which the model does not implement; pass true and call WaitIterateAll");
        }
        operandsSet_ = false;
        call_.c = gm.SimAddr();
        call_.enAtomic = enAtomic;
        aag_sim::MatmulIterateAll(call_, sync);
    }
    __aicore__ inline void WaitIterateAll()
    {
        aag_sim::ApiScope s("Matmul::WaitIterateAll");
        aag_sim::MatmulWaitIterateAll(this);
    }
    __aicore__ inline void End()
    {
        aag_sim::ApiScope s("Matmul::End");
        aag_sim::MatmulEnd(this);
        call_.aSet = call_.bSet = false;
        call_.hasBias = false;
        operandsSet_ = false;
    }
    /* model */
    __aicore__ inline void SimSetTiling(const TCubeTiling *t)
    {
        call_.tiling = t;
        if (t != nullptr) {
            call_.orgM = t->M;
            call_.orgN = t->N;
            call_.orgKa = t->Ka;
            call_.orgKb = t->Kb;
            call_.singleM = t->singleCoreM;
            call_.singleN = t->singleCoreN;
            call_.singleK = t->singleCoreK;
            call_.hasBias = false;
        }
    }

private:
    aag_sim::MatmulCall call_;
    bool operandsSet_ = false;  // SetTensorA/B, SetBias or SetSingleShape since the last call
};

namespace simdetail {
template <class X>
constexpr bool IsTilingPtr()
{
    using D = typename std::decay<X>::type;
    return std::is_pointer<D>::value &&
           std::is_same<typename std::remove_cv<typename std::remove_pointer<D>::type>::type, TCubeTiling>::value;
}
inline void RegisterCubeObjs(int) {}
template <class MM, class First, class... Rest>
inline void RegisterCubeObjsTail(int index, MM &mm, First &&first, Rest &&...rest);
template <class MM, class... Rest>
inline void RegisterCubeObjs(int index, MM &mm, Rest &&...rest)
{
    if constexpr (sizeof...(Rest) > 0) {
        RegisterCubeObjsTail(index, mm, rest...);
    } else {
        aag_sim::MatmulRegisterObject(&mm, nullptr, index);
    }
}
template <class MM, class First, class... Rest>
inline void RegisterCubeObjsTail(int index, MM &mm, First &&first, Rest &&...rest)
{
    if constexpr (IsTilingPtr<First>()) {
        mm.SimSetTiling(first);
        aag_sim::MatmulRegisterObject(&mm, first, index);
        RegisterCubeObjs(index + 1, rest...);
    } else {
        aag_sim::MatmulRegisterObject(&mm, nullptr, index);
        RegisterCubeObjs(index + 1, first, rest...);
    }
}
template <class... Objs>
inline bool RegistCubeObj(TPipe *tpipe, GM_ADDR workspace, Objs &&...objs)
{
    aag_sim::ApiScope s("REGIST_MATMUL_OBJ");
    (void)tpipe;
    if (workspace == nullptr) aag_sim::Fail("REGIST_MATMUL_OBJ needs the system workspace (GetSysWorkSpacePtr())");
    RegisterCubeObjs(0, objs...);
    return aag_sim::MatmulServeOnCube();
}
}  // namespace simdetail

}  // namespace AscendC

namespace matmul = AscendC;

/* on the cube core: serve the AIV requests, then leave the kernel */
#define REGIST_MATMUL_OBJ(tpipe, workspace, ...)                                    \
    if (::AscendC::simdetail::RegistCubeObj((tpipe), (workspace), __VA_ARGS__)) { \
        return;                                                                     \
    }
#define REGIST_CUBE_OBJ REGIST_MATMUL_OBJ

#endif  // MOE_MC2_KERNEL_SIM_MATMUL_INTF_H
