// A fake op-API library for the aclnn tests: it records every call it receives, as JSON, and
// runs nothing. Built by the tests as shared objects:
//   -DFAKE_INNER    aclnnInnerAlltoAllAllGatherBatchMatMul[GetWorkspaceSize] with the signature
//                   opbuild generates from the OpDef (inputs, all nine attributes, outputs); linked
//                   with the public wrapper (op_host/op_api/aclnn_alltoall_allgather_bmm.cpp) this
//                   is the moe_mc2 OPP package's libcust_opapi.so;
//   -DFAKE_BUILTIN  CANN's built-in aclnnAlltoAllAllGatherBatchMatMul and
//                   aclnnBatchMatMulReduceScatterAlltoAll (no transpose / output flags);
//   neither         only the acl_meta functions (an op-API library without the op).
// Every build has the acl_meta functions the bridge and the wrapper use (aclCreateTensor,
// aclDestroyTensor, the view getters, aclGetRawTensorAddr) and aclAppLog. The signatures are
// written here from CANN's published declarations, independently of the code under test and of
// its headers: if an argument arrived in another place or of another type, the recorded values
// would be wrong. Enums travel as int (their C ABI).
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

struct aclTensor {
    int id;
    std::vector<int64_t> view, strides, storage;
    int64_t offset;
    int dtype, format;
    void *data;
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
bool g_reuse_executor = false;  // hand out the same executor from every first stage
aclOpExecutor g_reused{999};

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
        if (static_cast<unsigned char>(*p) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", *p);
            out += buf;
            continue;
        }
        out += *p;
    }
    return out + "\"";
}

std::string ptr(const void *p) { return std::to_string(reinterpret_cast<uintptr_t>(p)); }
std::string tensor(const aclTensor *t) { return t ? std::to_string(t->id) : "null"; }
std::string boolean(bool b) { return b ? "true" : "false"; }

int64_t *copy(const std::vector<int64_t> &v) {
    int64_t *out = new int64_t[v.size() ? v.size() : 1];
    for (size_t i = 0; i < v.size(); ++i) out[i] = v[i];
    return out;
}

int first_stage(const std::string &entry, const std::string &args, uint64_t *workspaceSize,
                aclOpExecutor **executor) {
    if (g_status_first != 0) {
        emit("{\"event\":\"get_workspace_size\",\"entry\":\"" + entry + "\",\"args\":[" + args +
             "],\"executor\":null}");
        return g_status_first;
    }
    *workspaceSize = g_workspace_size;
    *executor = g_reuse_executor ? &g_reused : new aclOpExecutor{g_next_executor++};
    emit("{\"event\":\"get_workspace_size\",\"entry\":\"" + entry + "\",\"args\":[" + args +
         "],\"executor\":" + std::to_string((*executor)->id) + "}");
    return 0;
}

int run(const std::string &entry, void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, void *stream) {
    emit("{\"event\":\"run\",\"entry\":\"" + entry + "\",\"workspace\":" + ptr(workspace) +
         ",\"workspace_size\":" + std::to_string(workspaceSize) + ",\"executor\":" + std::to_string(executor->id) +
         ",\"stream\":" + ptr(stream) + "}");
    if (executor != &g_reused) delete executor;
    return g_status_run;
}

}  // namespace

extern "C" {

// ---- acl_meta.h ----
aclTensor *aclCreateTensor(const int64_t *viewDims, uint64_t viewDimsNum, int dataType, const int64_t *stride,
                           int64_t offset, int format, const int64_t *storageDims, uint64_t storageDimsNum,
                           void *tensorData) {
    aclTensor *t = new aclTensor{g_next_tensor++,
                                 std::vector<int64_t>(viewDims, viewDims + viewDimsNum),
                                 std::vector<int64_t>(stride, stride + viewDimsNum),
                                 std::vector<int64_t>(storageDims, storageDims + storageDimsNum),
                                 offset, dataType, format, tensorData};
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

// The getters allocate their arrays with new[], as CANN's do (the caller delete[]s them).
int aclGetViewShape(const aclTensor *t, int64_t **viewDims, uint64_t *viewDimsNum) {
    if (t == nullptr || viewDims == nullptr || viewDimsNum == nullptr) return 161001;
    *viewDims = copy(t->view);
    *viewDimsNum = t->view.size();
    return 0;
}

int aclGetViewStrides(const aclTensor *t, int64_t **stridesValue, uint64_t *stridesNum) {
    if (t == nullptr || stridesValue == nullptr || stridesNum == nullptr) return 161001;
    *stridesValue = copy(t->strides);
    *stridesNum = t->strides.size();
    return 0;
}

int aclGetStorageShape(const aclTensor *t, int64_t **storageDims, uint64_t *storageDimsNum) {
    if (t == nullptr || storageDims == nullptr || storageDimsNum == nullptr) return 161001;
    *storageDims = copy(t->storage);
    *storageDimsNum = t->storage.size();
    return 0;
}

int aclGetViewOffset(const aclTensor *t, int64_t *offset) {
    if (t == nullptr || offset == nullptr) return 161001;
    *offset = t->offset;
    return 0;
}

int aclGetDataType(const aclTensor *t, int *dataType) {
    if (t == nullptr || dataType == nullptr) return 161001;
    *dataType = t->dtype;
    return 0;
}

int aclGetFormat(const aclTensor *t, int *format) {
    if (t == nullptr || format == nullptr) return 161001;
    *format = t->format;
    return 0;
}

int aclGetRawTensorAddr(const aclTensor *t, void **addr) {
    if (t == nullptr || addr == nullptr) return 161001;
    *addr = t->data;
    return 0;
}

// ---- acl_base.h ----
void aclAppLog(int logLevel, const char *func, const char *file, uint32_t line, const char *fmt, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    (void)file;
    (void)line;
    emit("{\"event\":\"log\",\"level\":" + std::to_string(logLevel) + ",\"func\":" + str(func) +
         ",\"message\":" + str(buf) + "}");
}

#if defined(FAKE_INNER)
int aclnnInnerAlltoAllAllGatherBatchMatMulGetWorkspaceSize(
    const aclTensor *x, const aclTensor *weight, const aclTensor *bias, char *group_ep, char *group_tp,
    int64_t ep_world_size, int64_t tp_world_size, int64_t x_shard_type, int64_t act_type, bool transpose_weight,
    bool output_y2_flag, bool output_y3_flag, const aclTensor *y1, const aclTensor *y2, const aclTensor *y3,
    uint64_t *workspaceSize, aclOpExecutor **executor) {
    std::string args = tensor(x) + "," + tensor(weight) + "," + tensor(bias) + "," + str(group_ep) + "," +
                       str(group_tp) + "," + std::to_string(ep_world_size) + "," + std::to_string(tp_world_size) +
                       "," + std::to_string(x_shard_type) + "," + std::to_string(act_type) + "," +
                       boolean(transpose_weight) + "," + boolean(output_y2_flag) + "," + boolean(output_y3_flag) +
                       "," + tensor(y1) + "," + tensor(y2) + "," + tensor(y3);
    return first_stage("aclnnInnerAlltoAllAllGatherBatchMatMul", args, workspaceSize, executor);
}

int aclnnInnerAlltoAllAllGatherBatchMatMul(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                           void *stream) {
    return run("aclnnInnerAlltoAllAllGatherBatchMatMul", workspace, workspaceSize, executor, stream);
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

int aclnnAlltoAllAllGatherBatchMatMul(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                      void *stream) {
    return run("aclnnAlltoAllAllGatherBatchMatMul", workspace, workspaceSize, executor, stream);
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
    return run("aclnnBatchMatMulReduceScatterAlltoAll", workspace, workspaceSize, executor, stream);
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
    g_reuse_executor = false;
}

void fake_reuse_executor(int on) { g_reuse_executor = on != 0; }

}  // extern "C"
