// LightX2V-style JSON configuration files (`--config FILE.json`, the keys of LightX2V's
// configs/*.json; docs/lightx2v.md §3.3). The sampling and shape keys fill a GenerateRequest; keys
// LightX2V knows but x2v does not apply (attention kernels, offload, quantization, ...) and unknown
// keys are returned as warnings, so a config written for LightX2V runs and says what it ignored.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "pipeline/request.h"

namespace x2v::pipeline {

// Reads `path` (NotFound, or BadFile if it is not a JSON object) and applies it to `r`; returns
// the warnings. A key of the wrong type is an InvalidArgument naming the file and the key.
std::vector<std::string> apply_config_file(const std::string& path, GenerateRequest& r);
std::vector<std::string> apply_config_json(const nlohmann::json& j, const std::string& label, GenerateRequest& r);

}  // namespace x2v::pipeline
