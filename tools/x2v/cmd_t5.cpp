// `x2v run-component t5`: the umT5 text encoder on token ids from a file, the way to check a T5
// checkpoint (official .pth, safetensors, Hugging Face / ComfyUI names) against the reference.
//   inputs  ids [L] int64, mask [L] int64 (1 = real token incl. </s>, 0 = padding)
//   output  out [L, dim] (every position, padded ones too, as the reference computes them)
#include <memory>

#include "io/safetensors.h"
#include "models/wan/t5.h"
#include "run_component.h"

namespace x2v::cli {
namespace {

Tensor int64_input(const io::SafeTensors& st, const std::string& name) {
  const io::TensorInfo* t = st.find(name);
  if (!t)
    fail(ErrorKind::InvalidArgument, st.path(), ": the t5 inputs need \"", name, "\" [L] int64 (",
         name == "ids" ? "token ids" : "attention mask, 1 for real tokens", ")");
  if (t->dtype != DType::I64)
    fail(ErrorKind::InvalidArgument, st.path(), ": input \"", name, "\" is ", dtype_name(t->dtype), shape_str(t->shape),
         "; it must be int64 (torch.long)");
  if (t->shape.size() != 1)
    fail(ErrorKind::InvalidArgument, st.path(), ": input \"", name, "\" has shape ", shape_str(t->shape),
         "; expected one dimension [L] (one prompt, no batch axis)");
  return st.get(name).clone();
}

int run(const ComponentPaths& p) {
  const io::SafeTensors st = io::SafeTensors::open(p.inputs);  // inputs are checked before the weights are read
  Tensor ids = int64_input(st, "ids"), mask = int64_input(st, "mask");
  if (ids.numel() != mask.numel())
    fail(ErrorKind::InvalidArgument, p.inputs, ": \"ids\" has ", ids.numel(), " entries but \"mask\" has ", mask.numel());
  if (ids.numel() < 1 || ids.numel() > 4096)
    fail(ErrorKind::InvalidArgument, p.inputs, ": ", ids.numel(), " tokens; expected 1 to 4096 (Wan uses 512)");
  models::wan::EncoderConfigJson cfg = p.config.empty() ? models::wan::EncoderConfigJson() : models::wan::EncoderConfigJson(p.config);
  const models::wan::T5Encoder t5 = models::wan::T5Encoder::load(p.weights, std::move(cfg), p.load_options());
  write_component_outputs(p.output, {{"out", t5.forward(ids, mask)}});
  return 0;
}

RegisterComponent reg{{"t5",
                       "umT5 text encoder: ids [L] int64, mask [L] int64 -> out [L, dim] (config: dim, dim_attn, "
                       "dim_ffn, num_buckets, num_heads, num_layers, shared_pos, vocab; inferred from the weights)",
                       [](CLI::App& sub) {
                         auto p = std::make_shared<ComponentPaths>();
                         add_component_options(sub, *p, true);
                         return [p] { return run(*p); };
                       }}};

}  // namespace
}  // namespace x2v::cli
