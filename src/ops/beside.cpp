#include "ops/beside.h"

#ifdef X2V_WITH_CUDA
#include "ops/cuda/cuda.h"
#endif

namespace x2v::ops {

void Beside::run(const std::function<void()>& f) {
#ifdef X2V_WITH_CUDA
  if (cuda_) {
    pending_ = true;
    x2v::cuda::beside(f);
    return;
  }
#endif
  f();
}

void Beside::join() {
#ifdef X2V_WITH_CUDA
  if (pending_) x2v::cuda::join_beside();
#endif
  pending_ = false;
}

Beside::~Beside() {
  // A failed join leaves the CUDA context broken, and the next op reports that; a destructor must not.
  try {
    join();
  } catch (...) {
  }
}

}  // namespace x2v::ops
