// Where the encoders and the VAE keep their weights, as DitLoadOptions does for the DiT: the
// matmul and convolution weights in `matmul_dtype`, everything the reference keeps in f32 (norm
// gains, biases, position tables) in f32, all on `device`. Activations then live where the weights
// do. The defaults (CPU, f32) are the reference behaviour.
#pragma once

#include "core/tensor.h"

namespace x2v::models::wan {

struct ModelLoadOptions {
  Device device = Device::CPU;
  DType matmul_dtype = DType::F32;

  // What the pipeline uses: f32 on the CPU (the reference), bf16 matmul weights elsewhere (the
  // reference pipelines run under bf16 autocast on the GPU).
  static ModelLoadOptions for_device(Device d) { return {d, d == Device::CPU ? DType::F32 : DType::BF16}; }
};

using T5LoadOptions = ModelLoadOptions;
using ClipLoadOptions = ModelLoadOptions;
using VaeLoadOptions = ModelLoadOptions;

// A weight read from a file (a host tensor, maybe memory-mapped) as the model keeps it: converted
// to `dtype` on the host first (device-side conversion of a host tensor would round-trip anyway),
// then moved to `device`.
inline Tensor place_weight(const Tensor& host, DType dtype, Device device) {
  Tensor t = host.dtype() == dtype ? host : host.to(dtype);
  return t.device() == device ? t : t.to(device);
}

// Matmul weights of the big encoders: on the CPU with f32 requested, a bf16/f16 file keeps its
// dtype, because the CPU backend widens each weight exactly per op and umT5-XXL would double to
// 22 GB in f32; results are identical either way.
inline Tensor place_matmul_weight(const Tensor& host, const ModelLoadOptions& opt) {
  if (opt.device == Device::CPU && opt.matmul_dtype == DType::F32) return host;
  return place_weight(host, opt.matmul_dtype, opt.device);
}

}  // namespace x2v::models::wan
