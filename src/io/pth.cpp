#include "io/pth.h"

namespace x2v::io {
// Placeholder until the restricted unpickler lands (same session).
std::unique_ptr<WeightStore> open_pth(std::shared_ptr<MappedFile> file) {
  fail(ErrorKind::Unsupported, file->path(), ": PyTorch .pth checkpoints are not readable yet");
}
}  // namespace x2v::io
