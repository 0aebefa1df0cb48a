// The initial latent noise. The reference draws it with torch's CUDA Philox generator, which a C++
// engine cannot reproduce bit for bit (runs are reproduced by importing the noise: --noise FILE).
// x2v's own generator is counter-based (Philox4x32-10 + Box–Muller): the same seed gives the same
// noise on every machine, thread count and device.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace x2v::pipeline {

// Standard normal f32 samples of `shape` from `seed`.
Tensor gaussian_noise(const Shape& shape, uint64_t seed);

}  // namespace x2v::pipeline
