// Arbitrary bytes as a PyTorch zip checkpoint (zip reader + restricted unpickler + views).
#include <cstdint>

#include "core/error.h"
#include "io/mapped_file.h"
#include "io/pth.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = x2v::io::MappedFile::from_bytes(data, size, "fuzz.pth");
  try {
    auto store = x2v::io::open_pth(file);
    volatile uint8_t sink = 0;
    for (const auto& n : store->names()) {
      x2v::Tensor t = store->load(n);
      if (t.nbytes() > 0) sink = sink + static_cast<const uint8_t*>(t.raw())[0] + static_cast<const uint8_t*>(t.raw())[t.nbytes() - 1];
    }
  } catch (const x2v::Error&) {
  }
  return 0;
}
