// Arbitrary bytes as a safetensors file: a clean x2v::Error or tensors that can be read in full.
#include <cstdint>

#include "core/error.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = x2v::io::MappedFile::from_bytes(data, size, "fuzz.safetensors");
  try {
    auto st = x2v::io::SafeTensors::parse(file);
    volatile uint8_t sink = 0;
    for (const auto& t : st.tensors()) {
      x2v::Tensor v = st.get(t.name);
      // Touch the first and last byte: a view outside the file is an ASan report.
      if (v.nbytes() > 0) sink = sink + static_cast<const uint8_t*>(v.raw())[0] + static_cast<const uint8_t*>(v.raw())[v.nbytes() - 1];
    }
  } catch (const x2v::Error&) {
  }
  return 0;
}
