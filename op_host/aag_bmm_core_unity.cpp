/*
 * Unity source used only inside the msOpGen package project: its op_host
 * CMakeLists compiles op_host/*.cpp, so this pulls the portable core
 * (op_host/core) into the tiling / proto libraries. The top-level CMake
 * builds the core directly and never compiles this file.
 */
#include "core/aag_bmm_rules.cpp"
#include "core/aag_bmm_planner.cpp"
