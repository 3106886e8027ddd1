/*
 * Kernel entry of AlltoAllAllGatherBatchMatMul. The file and function name are
 * the snake case opbuild derives from the op type. Compiles against the
 * open-source CANN headers and runs in the CPU model (kernel_sim/); unverified
 * on an NPU.
 *
 * Tiling key = aag::TilingKey(shard, transpose_weight, bias, y2, y3):
 *   bit 0 x_shard_type, bit 1 transpose_weight, bit 2 bias present,
 *   bit 3 y2 produced, bit 4 y3 produced (output_y3_flag && act_type != 0).
 * The dtypes are fixed per compiled binary by the OpDef column the op compiler
 * passes as ORIG_DTYPE_X / ORIG_DTYPE_BIAS: fp16 x with fp16 bias, bf16 x with
 * fp32 bias, bf16 x with bf16 bias (without ORIG_DTYPE_BIAS: the first two).
 */
#include "kernel_operator.h"
#include "lib/matmul_intf.h"

#include "aag_bmm_kernel.h"
#include "aag_bmm_tiling_data.h"

#if defined(ORIG_DTYPE_X) && (ORIG_DTYPE_X == DT_BF16)
using AagTX = bfloat16_t;
#if defined(ORIG_DTYPE_BIAS) && (ORIG_DTYPE_BIAS == DT_BF16)
using AagTB = bfloat16_t;
#else
using AagTB = float;
#endif
#else
using AagTX = half;
using AagTB = half;
#endif

#define AAG_BMM_CASE(KEY)                                                                                         \
    if (TILING_KEY_IS(KEY)) {                                                                                     \
        aag_kernel::AagBmmKernel<AagTX, AagTB, ((KEY) & 1), (((KEY) >> 1) & 1) != 0, (((KEY) >> 2) & 1) != 0,     \
                                 (((KEY) >> 3) & 1) != 0, (((KEY) >> 4) & 1) != 0>                               \
            op;                                                                                                   \
        REGIST_MATMUL_OBJ(&pipe, GetSysWorkSpacePtr(), op.mmDirect, &td.mmTiling, op.mmRing, &td.mmRingTiling);    \
        op.Init(x, weight, bias, y1, y2, y3, userWs, &td, &pipe);                                               \
        op.Process();                                                                                             \
        return;                                                                                                   \
    }

extern "C" __global__ __aicore__ void allto_all_all_gather_batch_mat_mul(GM_ADDR x, GM_ADDR weight, GM_ADDR bias,
                                                                         GM_ADDR y1, GM_ADDR y2, GM_ADDR y3,
                                                                         GM_ADDR workspace, GM_ADDR tiling)
{
    REGISTER_TILING_DEFAULT(AagBmmTilingData);
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    GET_TILING_DATA_WITH_STRUCT(AagBmmTilingData, td, tiling);
    GM_ADDR userWs = AscendC::GetUserWorkspace(workspace);
    if (userWs == nullptr) {
        return;
    }
    AscendC::TPipe pipe;
    AAG_BMM_CASE(0) AAG_BMM_CASE(1) AAG_BMM_CASE(2) AAG_BMM_CASE(3)
    AAG_BMM_CASE(4) AAG_BMM_CASE(5) AAG_BMM_CASE(6) AAG_BMM_CASE(7)
    AAG_BMM_CASE(8) AAG_BMM_CASE(9) AAG_BMM_CASE(10) AAG_BMM_CASE(11)
    AAG_BMM_CASE(12) AAG_BMM_CASE(13) AAG_BMM_CASE(14) AAG_BMM_CASE(15)
    AAG_BMM_CASE(16) AAG_BMM_CASE(17) AAG_BMM_CASE(18) AAG_BMM_CASE(19)
    AAG_BMM_CASE(20) AAG_BMM_CASE(21) AAG_BMM_CASE(22) AAG_BMM_CASE(23)
    AAG_BMM_CASE(24) AAG_BMM_CASE(25) AAG_BMM_CASE(26) AAG_BMM_CASE(27)
    AAG_BMM_CASE(28) AAG_BMM_CASE(29) AAG_BMM_CASE(30) AAG_BMM_CASE(31)
}
