// Ops that may run beside the ones queued after them. On CUDA, run(f) queues the ops f issues on a
// second stream, after everything queued so far, so that memory-bound kernels (a norm, RoPE) overlap
// the compute-bound GEMMs that follow; join() makes later ops wait for them. On the CPU f simply runs.
// Everything f reads or writes must stay alive until the join (the destructor joins), and f must not
// run matmuls, attention or convolutions: see x2v::cuda::beside.
#pragma once

#include <functional>

#include "core/tensor.h"

namespace x2v::ops {

class Beside {
 public:
  explicit Beside(Device device) : cuda_(device == Device::CUDA) {}
  Beside(const Beside&) = delete;
  Beside& operator=(const Beside&) = delete;
  ~Beside();

  void run(const std::function<void()>& f);
  void join();

 private:
  bool cuda_;
  bool pending_ = false;
};

}  // namespace x2v::ops
