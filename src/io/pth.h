// PyTorch zip checkpoints (what torch.save(state_dict) writes): a zip archive holding
// `<root>/data.pkl` (a pickle) and `<root>/data/<key>` storage blobs. The pickle is read by a
// restricted unpickler that accepts only the globals and opcodes a state dict needs and never
// executes anything from the file.
#pragma once

#include <memory>

#include "io/mapped_file.h"
#include "io/weights.h"

namespace x2v::io {

std::unique_ptr<WeightStore> open_pth(std::shared_ptr<MappedFile> file);

}  // namespace x2v::io
