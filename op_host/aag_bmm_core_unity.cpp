// Unity source used only inside the msOpGen package project: its op_host
// CMakeLists compiles every .cpp file of op_host, so this file pulls the
// portable core (op_host/core) into the tiling and proto libraries. The
// top-level CMake builds the core directly and never compiles this file.
#include "core/aag_bmm_rules.cpp"
#include "core/aag_bmm_planner.cpp"
#include "core/aag_bmm_tiling_core.cpp"
