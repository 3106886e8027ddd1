# moe_mc2: CANN's public aclnnAlltoAllAllGatherBatchMatMul in the package's op-API library.
#
# scripts/cpp.sh package (through op_host/op_api/msopgen_hook.py) includes this file at the end of
# the msOpGen project's op_host/CMakeLists.txt, and runs that file's opbuild() call with
# OPS_PROJECT_NAME=aclnnInner in the environment, as CANN's own build generates the API of an op
# whose public API is written by hand. So by the time this runs (configure time, after opbuild):
#   ${ASCEND_AUTOGEN_PATH}/aclnnInner_<op>.{cpp,h}  the API generated from the OpDef, under the
#                                                   inner name (aclnnInnerAlltoAllAllGatherBatchMatMul);
#   cust_opapi                                      the template's op-API library, made from the
#                                                   generated aclnn_*.cpp, of which there are none.
# This adds the generated inner source and the public wrapper to cust_opapi, compiles the wrapper
# against the generated inner header (its static_asserts compare the two declarations), and installs
# the wrapper's header where the template installs the generated ones. It stops the configuration
# with a message saying what it found when opbuild did not produce the inner API (an opbuild that
# ignores OPS_PROJECT_NAME would otherwise export the OpDef's argument list under CANN's public name).

set(_moe_mc2_api_dir ${CMAKE_CURRENT_LIST_DIR})
set(_moe_mc2_wrapper ${_moe_mc2_api_dir}/aclnn_alltoall_allgather_bmm.cpp)

if(NOT TARGET cust_opapi)
    message(FATAL_ERROR "moe_mc2: this msOpGen project has no cust_opapi target in op_host/CMakeLists.txt, "
                        "so the public aclnn wrapper has no library to go into")
endif()
if(ASCEND_PACK_SHARED_LIBRARY)
    message(FATAL_ERROR "moe_mc2: ASCEND_PACK_SHARED_LIBRARY (the static-library packaging of msOpGen projects) "
                        "is not supported with the public aclnn wrapper; build the default OPP package")
endif()
if(NOT ASCEND_AUTOGEN_PATH)
    message(FATAL_ERROR "moe_mc2: ASCEND_AUTOGEN_PATH is not set; cannot find what opbuild generated")
endif()

file(GLOB _moe_mc2_inner_src ${ASCEND_AUTOGEN_PATH}/aclnnInner_*.cpp)
file(GLOB _moe_mc2_inner_inc ${ASCEND_AUTOGEN_PATH}/aclnnInner_*.h)
file(GLOB _moe_mc2_public_src ${ASCEND_AUTOGEN_PATH}/aclnn_*.cpp)
list(LENGTH _moe_mc2_inner_src _moe_mc2_n_src)
list(LENGTH _moe_mc2_inner_inc _moe_mc2_n_inc)
if(NOT _moe_mc2_n_src EQUAL 1 OR NOT _moe_mc2_n_inc EQUAL 1 OR _moe_mc2_public_src)
    message(FATAL_ERROR
        "moe_mc2: opbuild, run with OPS_PROJECT_NAME=aclnnInner, was expected to generate exactly one "
        "aclnnInner_*.cpp, one aclnnInner_*.h and no aclnn_*.cpp in ${ASCEND_AUTOGEN_PATH}; it generated "
        "aclnnInner_*.cpp: [${_moe_mc2_inner_src}], aclnnInner_*.h: [${_moe_mc2_inner_inc}], "
        "aclnn_*.cpp: [${_moe_mc2_public_src}]. This opbuild does not take the API's prefix from "
        "OPS_PROJECT_NAME (or names its files otherwise); packaged like this, the generated argument list "
        "would sit under CANN's public name aclnnAlltoAllAllGatherBatchMatMul. See docs/npu.md, "
        "\"The OPP package's aclnn API\".")
endif()
get_filename_component(_moe_mc2_inner_header ${_moe_mc2_inner_inc} NAME)

target_sources(cust_opapi PRIVATE ${_moe_mc2_inner_src} ${_moe_mc2_wrapper})
set_property(SOURCE ${_moe_mc2_wrapper} APPEND PROPERTY
             COMPILE_DEFINITIONS "MOE_MC2_ACLNN_INNER_HEADER=\"${_moe_mc2_inner_header}\"")
set_property(SOURCE ${_moe_mc2_wrapper} APPEND PROPERTY
             INCLUDE_DIRECTORIES ${_moe_mc2_api_dir} ${ASCEND_AUTOGEN_PATH})
install(FILES ${_moe_mc2_api_dir}/aclnn_alltoall_allgather_bmm.h
        DESTINATION packages/vendors/${vendor_name}/op_api/include)
message(STATUS "moe_mc2: cust_opapi gets ${_moe_mc2_inner_src} (generated, inner name) and the public wrapper")
