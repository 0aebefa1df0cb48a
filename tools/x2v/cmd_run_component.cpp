#include <memory>

#include "command.h"
#include "run_component.h"

namespace x2v::cli {

std::vector<Component>& components() {
  static std::vector<Component> c;
  return c;
}

void add_component_options(CLI::App& sub, ComponentPaths& p, bool with_weights) {
  if (with_weights) {
    sub.add_option("--weights", p.weights, "weight file (.safetensors, .safetensors.index.json or .pth)")->required();
    sub.add_option("--config", p.config, "JSON object with the official constructor fields");
    sub.add_option("--device", p.device, "cpu (default, f32) or cuda (bf16 weights and activations)");
  }
  sub.add_option("--inputs", p.inputs, "safetensors file holding the input tensors")->required();
  sub.add_option("--output", p.output, "safetensors file to write the outputs to")->required();
}

models::wan::ModelLoadOptions ComponentPaths::load_options() const {
  const Device d = device_from_name(device, "--device");
  if (d != Device::CPU && !device_allocator(d))
    fail(ErrorKind::Unsupported, "--device ", device, ": no ", device, " backend in this build (rebuild with the ",
         device, " preset, or use --device cpu)");
  return models::wan::ModelLoadOptions::for_device(d);
}

ComponentInputs::ComponentInputs(const std::string& path) : st_(io::SafeTensors::open(path)) {}

Tensor ComponentInputs::get(const std::string& name, int rank) const {
  if (!st_.has(name)) fail(ErrorKind::InvalidArgument, st_.path(), ": the inputs need a tensor named \"", name, "\"");
  Tensor t = st_.get(name);
  if (rank >= 0 && t.dim() != rank)
    fail(ErrorKind::InvalidArgument, st_.path(), ": input \"", name, "\" has shape ", shape_str(t.shape()),
         ", expected ", rank, " dimensions");
  return t;
}

Tensor ComponentInputs::f32(const std::string& name, int rank) const {
  Tensor t = get(name, rank);
  if (!dtype_is_float(t.dtype()))
    fail(ErrorKind::InvalidArgument, st_.path(), ": input \"", name, "\" is ", t.desc(), "; a float tensor is needed");
  // A private copy either way: the stored tensor views the read-only mapping of the file.
  return t.dtype() == DType::F32 ? t.clone() : t.to(DType::F32);
}

Tensor ComponentInputs::i64(const std::string& name, int rank) const {
  Tensor t = get(name, rank);
  if (dtype_is_float(t.dtype()))
    fail(ErrorKind::InvalidArgument, st_.path(), ": input \"", name, "\" is ", t.desc(), "; an integer tensor is needed");
  return t.dtype() == DType::I64 ? t.clone() : t.to(DType::I64);
}

void write_component_outputs(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& outs) {
  std::vector<std::pair<std::string, Tensor>> host;
  for (const auto& [n, t] : outs) host.emplace_back(n, t.to(Device::CPU).to(DType::F32));
  io::write_safetensors(path, host);
}

namespace {
Register reg{{"run-component",
              "Run one network (dit, t5, clip, vae-encode, vae-decode) or the sampler on tensors from a file",
              [](CLI::App& sub) {
                sub.require_subcommand(1);
                auto acts = std::make_shared<std::vector<std::pair<CLI::App*, std::function<int()>>>>();
                for (const auto& c : components()) {
                  CLI::App* s = sub.add_subcommand(c.name, c.help);
                  acts->emplace_back(s, c.setup(*s));
                }
                return [acts]() {
                  for (auto& [s, act] : *acts)
                    if (s->parsed()) return act();
                  return 2;
                };
              }}};
}  // namespace

}  // namespace x2v::cli
