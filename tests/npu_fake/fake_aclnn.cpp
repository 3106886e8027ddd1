// A fake op-API library for the aclnn bridge tests: it records every call it receives, as JSON,
// and runs nothing. Built by tests/test_npu_aclnn_marshalling.py as three shared objects:
//   -DFAKE_PACKAGE  aclnnAlltoAllAllGatherBatchMatMul with the signature opbuild generates from
//                   the OpDef (inputs, all nine attributes, outputs) — the moe_mc2 OPP package;
//   -DFAKE_BUILTIN  CANN's built-in aclnnAlltoAllAllGatherBatchMatMul and
//                   aclnnBatchMatMulReduceScatterAlltoAll (no transpose / output flags);
//   neither         only aclCreateTensor / aclDestroyTensor (an op-API library without the op).
// The signatures are written here from CANN's published declarations, independently of the
// bridge's aclnn_decls.h: if the bridge passed arguments in another order or of other types,
// the recorded values would be wrong. Enums travel as int (their C ABI).
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

struct aclTensor {
    int id;
};
struct aclOpExecutor {
    int id;
};

namespace {

std::string g_events;  // JSON objects, comma-separated
int g_next_tensor = 0;
int g_next_executor = 100;
uint64_t g_workspace_size = 0;
int g_status_first = 0;
int g_status_run = 0;

void emit(const std::string &event) {
    if (!g_events.empty()) g_events += ",";
    g_events += event;
}

std::string ints(const int64_t *v, uint64_t n) {
    std::string s = "[";
    for (uint64_t i = 0; i < n; ++i) s += (i ? "," : "") + std::to_string(v[i]);
    return s + "]";
}

std::string str(const char *s) {
    if (s == nullptr) return "null";
    std::string out = "\"";
    for (const char *p = s; *p; ++p) {
        if (*p == '"' || *p == '\\') out += '\\';
        out += *p;
    }
    return out + "\"";
}

std::string ptr(const void *p) { return std::to_string(reinterpret_cast<uintptr_t>(p)); }
std::string tensor(const aclTensor *t) { return t ? std::to_string(t->id) : "null"; }
std::string boolean(bool b) { return b ? "true" : "false"; }

int first_stage(const std::string &entry, const std::string &args, uint64_t *workspaceSize,
                aclOpExecutor **executor) {
    if (g_status_first != 0) {
        emit("{\"event\":\"get_workspace_size\",\"entry\":\"" + entry + "\",\"args\":[" + args +
             "],\"executor\":null}");
        return g_status_first;
    }
    *workspaceSize = g_workspace_size;
    *executor = new aclOpExecutor{g_next_executor++};
    emit("{\"event\":\"get_workspace_size\",\"entry\":\"" + entry + "\",\"args\":[" + args +
         "],\"executor\":" + std::to_string((*executor)->id) + "}");
    return 0;
}

}  // namespace

extern "C" {

aclTensor *aclCreateTensor(const int64_t *viewDims, uint64_t viewDimsNum, int dataType, const int64_t *stride,
                           int64_t offset, int format, const int64_t *storageDims, uint64_t storageDimsNum,
                           void *tensorData) {
    aclTensor *t = new aclTensor{g_next_tensor++};
    emit("{\"event\":\"create\",\"id\":" + std::to_string(t->id) + ",\"view\":" + ints(viewDims, viewDimsNum) +
         ",\"strides\":" + ints(stride, viewDimsNum) + ",\"offset\":" + std::to_string(offset) +
         ",\"dtype\":" + std::to_string(dataType) + ",\"format\":" + std::to_string(format) +
         ",\"storage\":" + ints(storageDims, storageDimsNum) + ",\"data\":" + ptr(tensorData) + "}");
    return t;
}

int aclDestroyTensor(const aclTensor *tensor) {
    emit("{\"event\":\"destroy\",\"id\":" + std::to_string(tensor->id) + "}");
    delete tensor;
    return 0;
}

#if defined(FAKE_PACKAGE)
int aclnnAlltoAllAllGatherBatchMatMulGetWorkspaceSize(
    const aclTensor *x, const aclTensor *weight, const aclTensor *bias, const char *group_ep, const char *group_tp,
    int64_t ep_world_size, int64_t tp_world_size, int64_t x_shard_type, int64_t act_type, bool transpose_weight,
    bool output_y2_flag, bool output_y3_flag, aclTensor *y1, aclTensor *y2, aclTensor *y3, uint64_t *workspaceSize,
    aclOpExecutor **executor) {
    std::string args = tensor(x) + "," + tensor(weight) + "," + tensor(bias) + "," + str(group_ep) + "," +
                       str(group_tp) + "," + std::to_string(ep_world_size) + "," + std::to_string(tp_world_size) +
                       "," + std::to_string(x_shard_type) + "," + std::to_string(act_type) + "," +
                       boolean(transpose_weight) + "," + boolean(output_y2_flag) + "," + boolean(output_y3_flag) +
                       "," + tensor(y1) + "," + tensor(y2) + "," + tensor(y3);
    return first_stage("aclnnAlltoAllAllGatherBatchMatMul", args, workspaceSize, executor);
}
#endif

#if defined(FAKE_BUILTIN)
int aclnnAlltoAllAllGatherBatchMatMulGetWorkspaceSize(
    const aclTensor *x, const aclTensor *weight, const aclTensor *biasOptional, const char *groupEp,
    const char *groupTp, int64_t epWorldSize, int64_t tpWorldSize, int64_t xShardType, int64_t actType,
    aclTensor *y1Out, aclTensor *y2OutOptional, aclTensor *y3OutOptional, uint64_t *workspaceSize,
    aclOpExecutor **executor) {
    std::string args = tensor(x) + "," + tensor(weight) + "," + tensor(biasOptional) + "," + str(groupEp) + "," +
                       str(groupTp) + "," + std::to_string(epWorldSize) + "," + std::to_string(tpWorldSize) + "," +
                       std::to_string(xShardType) + "," + std::to_string(actType) + "," + tensor(y1Out) + "," +
                       tensor(y2OutOptional) + "," + tensor(y3OutOptional);
    return first_stage("aclnnAlltoAllAllGatherBatchMatMul", args, workspaceSize, executor);
}

int aclnnBatchMatMulReduceScatterAlltoAllGetWorkspaceSize(
    const aclTensor *x, const aclTensor *weight, const aclTensor *biasOptional, const char *groupEp,
    const char *groupTp, int64_t epWorldSize, int64_t tpWorldSize, int64_t yShardType, aclTensor *out,
    uint64_t *workspaceSize, aclOpExecutor **executor) {
    std::string args = tensor(x) + "," + tensor(weight) + "," + tensor(biasOptional) + "," + str(groupEp) + "," +
                       str(groupTp) + "," + std::to_string(epWorldSize) + "," + std::to_string(tpWorldSize) + "," +
                       std::to_string(yShardType) + "," + tensor(out);
    return first_stage("aclnnBatchMatMulReduceScatterAlltoAll", args, workspaceSize, executor);
}

int aclnnBatchMatMulReduceScatterAlltoAll(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                          void *stream) {
    emit("{\"event\":\"run\",\"entry\":\"aclnnBatchMatMulReduceScatterAlltoAll\",\"workspace\":" + ptr(workspace) +
         ",\"workspace_size\":" + std::to_string(workspaceSize) + ",\"executor\":" + std::to_string(executor->id) +
         ",\"stream\":" + ptr(stream) + "}");
    delete executor;
    return g_status_run;
}
#endif

#if defined(FAKE_PACKAGE) || defined(FAKE_BUILTIN)
int aclnnAlltoAllAllGatherBatchMatMul(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                      void *stream) {
    emit("{\"event\":\"run\",\"entry\":\"aclnnAlltoAllAllGatherBatchMatMul\",\"workspace\":" + ptr(workspace) +
         ",\"workspace_size\":" + std::to_string(workspaceSize) + ",\"executor\":" + std::to_string(executor->id) +
         ",\"stream\":" + ptr(stream) + "}");
    delete executor;
    return g_status_run;
}
#endif

// ---- control, for the tests ----
const char *fake_events() {
    static std::string out;
    out = "[" + g_events + "]";
    return out.c_str();
}

void fake_reset(uint64_t workspace_size, int status_first, int status_run) {
    g_events.clear();
    g_workspace_size = workspace_size;
    g_status_first = status_first;
    g_status_run = status_run;
}

}  // extern "C"
