// Drives op_proto/aag_bmm_infer_dims.h without CANN: one call per stdin line,
//   x=4,-1,8 w=2,8,5 b=2,1,5 ep=2 tp=2 shard=1 act=1 y2=1 y3=0 gep=a gtp=b
// (w is the LOGICAL weight; b=- for no bias; -2 alone is an unknown rank), and
// one answer per line: "OK y1 y2 y3" with comma-separated dims, or "FAIL <rule>".
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "aag_bmm_infer_dims.h"

namespace {

std::vector<int64_t> ParseDims(const std::string &s)
{
    std::vector<int64_t> d;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        d.push_back(std::stoll(item));
    }
    return d;
}

std::string Join(const std::vector<int64_t> &d)
{
    std::string out;
    for (size_t k = 0; k < d.size(); ++k) {
        out += (k ? "," : "") + std::to_string(d[k]);
    }
    return out;
}

}  // namespace

int main()
{
    std::string line;
    while (std::getline(std::cin, line)) {
        moe_mc2::Args a;
        std::stringstream ss(line);
        std::string tok;
        while (ss >> tok) {
            const auto eq = tok.find('=');
            const std::string key = tok.substr(0, eq), value = tok.substr(eq + 1);
            if (key == "x") a.x = ParseDims(value);
            else if (key == "w") a.weight = ParseDims(value);
            else if (key == "b") { a.hasBias = value != "-"; if (a.hasBias) a.bias = ParseDims(value); }
            else if (key == "ep") a.ep = std::stoll(value);
            else if (key == "tp") a.tp = std::stoll(value);
            else if (key == "shard") a.shardType = std::stoll(value);
            else if (key == "act") a.actType = std::stoll(value);
            else if (key == "y2") a.y2Flag = value == "1";
            else if (key == "y3") a.y3Flag = value == "1";
            else if (key == "gep") a.groupEp = value;
            else if (key == "gtp") a.groupTp = value;
        }
        moe_mc2_infer::Inferred r = moe_mc2_infer::InferDims(a);
        if (r.ok) {
            std::cout << "OK " << Join(r.shapes.y1) << " " << Join(r.shapes.y2) << " " << Join(r.shapes.y3) << "\n";
        } else {
            std::cout << "FAIL " << r.why << "\n";
        }
    }
    return 0;
}
