// Stand-in for CANN's acl/acl_base.h when neither a CANN toolkit nor the torch-npu wheel's copy is
// at hand: only what the moe_mc2 aclnn wrapper and its tests use, with the values and prototypes
// CANN documents. tests/test_aclnn_wrapper.py builds the wrapper against the real headers too
// whenever they are available.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ACL_FUNC_VISIBILITY

typedef void *aclrtStream;
typedef enum { ACL_DT_UNDEFINED = -1, ACL_FLOAT = 0, ACL_FLOAT16 = 1, ACL_BF16 = 27 } aclDataType;
typedef enum { ACL_FORMAT_UNDEFINED = -1, ACL_FORMAT_ND = 2 } aclFormat;
typedef enum { ACL_DEBUG = 0, ACL_INFO = 1, ACL_WARNING = 2, ACL_ERROR = 3 } aclLogLevel;

ACL_FUNC_VISIBILITY void aclAppLog(aclLogLevel logLevel, const char *func, const char *file, uint32_t line,
                                   const char *fmt, ...);

#ifdef __cplusplus
}
#endif
