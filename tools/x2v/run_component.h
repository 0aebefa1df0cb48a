// `x2v run-component NAME ...`: run one network or the sampler on tensors from a safetensors file
// and write its outputs to another. Components register themselves like commands do (command.h);
// the shared --weights/--config/--inputs/--output contract and its checks live here.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "io/safetensors.h"
#include "models/wan/load_options.h"

namespace x2v::cli {

struct Component {
  std::string name;
  std::string help;
  std::function<std::function<int()>(CLI::App& sub)> setup;
};

std::vector<Component>& components();

struct RegisterComponent {
  explicit RegisterComponent(Component c) { components().push_back(std::move(c)); }
};

struct ComponentPaths {
  std::string weights, config, inputs, output;
  std::string device = "cpu";
  // Where the network runs, from --device: f32 on the CPU (the reference), bf16 weights on a GPU.
  // Refuses a device this build has no backend for.
  models::wan::ModelLoadOptions load_options() const;
};
// Adds --inputs and --output (required) and, if `with_weights`, --weights (required), --config and
// --device.
void add_component_options(CLI::App& sub, ComponentPaths& p, bool with_weights);

// The --inputs file, with checks that name the file and the tensor.
class ComponentInputs {
 public:
  explicit ComponentInputs(const std::string& path);
  bool has(const std::string& name) const { return st_.has(name); }
  // The tensor converted to f32 (or i64 for `integer`), with its rank checked.
  Tensor f32(const std::string& name, int rank) const;
  Tensor i64(const std::string& name, int rank) const;

 private:
  Tensor get(const std::string& name, int rank) const;
  io::SafeTensors st_;
};

// Writes the outputs atomically (all or nothing) as f32 host tensors.
void write_component_outputs(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& outs);

}  // namespace x2v::cli
