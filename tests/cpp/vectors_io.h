// Reads tests/vectors/*.json (shared with the Python tests) into moe_mc2::Args.
#ifndef MOE_MC2_TESTS_VECTORS_IO_H
#define MOE_MC2_TESTS_VECTORS_IO_H

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "aag_bmm_rules.h"

namespace moe_mc2_test {

inline nlohmann::json LoadVectors(const std::string &file)
{
    std::string path = std::string(MOE_MC2_VECTORS_DIR) + "/" + file;
    std::ifstream in(path);
    if (!in) {
        throw std::runtime_error("cannot open " + path);
    }
    nlohmann::json j;
    in >> j;
    return j;
}

inline std::vector<int64_t> Dims(const nlohmann::json &j) { return j.get<std::vector<int64_t>>(); }

inline moe_mc2::Args ArgsFromCase(const nlohmann::json &c)
{
    moe_mc2::Args a;
    a.x = Dims(c.at("x"));
    a.weight = Dims(c.at("weight"));
    a.hasBias = !c.at("bias").is_null();
    if (a.hasBias) {
        a.bias = Dims(c.at("bias"));
    }
    a.xDtype = moe_mc2::DTypeFromName(c.at("dtype").get<std::string>());
    a.weightDtype = c.contains("weight_dtype") ? moe_mc2::DTypeFromName(c.at("weight_dtype").get<std::string>())
                                               : a.xDtype;
    if (a.hasBias && !c.at("bias_dtype").is_null()) {
        a.biasDtype = moe_mc2::DTypeFromName(c.at("bias_dtype").get<std::string>());
    }
    a.ep = c.at("ep").get<int64_t>();
    a.tp = c.at("tp").get<int64_t>();
    a.shardType = c.at("shard_type").get<int64_t>();
    a.actType = c.at("act_type").get<int64_t>();
    a.groupEp = c.at("group_ep").get<std::string>();
    a.groupTp = c.at("group_tp").get<std::string>();
    a.transposeWeight = c.at("transpose_weight").get<bool>();
    a.y2Flag = c.at("y2_flag").get<bool>();
    a.y3Flag = c.at("y3_flag").get<bool>();
    return a;
}

}  // namespace moe_mc2_test

#endif
