// Stand-in for CANN's aclnn/aclnn_base.h (see ../acl/acl_base.h).
#pragma once
#include "aclnn/acl_meta.h"
