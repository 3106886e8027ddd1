# Included by the top-level CMakeLists.txt when -DMOE_MC2_BUILD_OPP=ON.
# The OPP package is produced by a msOpGen custom-op project (CMakePresets.json,
# opbuild -> aclnn + op info, Ascend C kernel binaries, makeself custom_opp_*.run)
# that scripts/cpp.sh package generates from op_host/msopgen/*.json and fills
# with this repository's op_host / op_proto / op_kernel sources.
if(NOT DEFINED ENV{ASCEND_HOME_PATH} AND NOT EXISTS /usr/local/Ascend/ascend-toolkit/set_env.sh)
  message(WARNING "MOE_MC2_BUILD_OPP=ON but no CANN toolkit found (ASCEND_HOME_PATH unset); "
                  "the opp_package target will report what is missing")
endif()
add_custom_target(opp_package
  COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/cpp.sh package
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
  COMMENT "Building the moe_mc2 custom OPP package (vendor moe_mc2)"
  USES_TERMINAL)
