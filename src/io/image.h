// Still images: PNG and JPEG in, PNG out, and the pixel conversions the Wan reference uses.
//
// Images are u8 tensors [H, W, 3] (RGB, row-major, HWC) on the host. Decoding gives what the
// reference's `PIL.Image.open(path).convert("RGB")` gives (checked byte for byte against PIL 9.4
// for baseline/progressive/4:4:4/gray JPEGs and 1-bit, gray+alpha, palette+tRNS, RGBA and
// 16-bit RGB(A) PNGs): gray is replicated, palettes expanded, alpha dropped (not composited),
// 16-bit RGB(A) samples keep their high byte. One deliberate difference: PIL clips 16-bit gray to
// 255 (a white image); x2v keeps the high byte there too. EXIF orientation is not applied (the
// reference does not apply it either).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace x2v::io {

// Sizes are checked from the header, before any pixel memory is allocated.
struct ImageLimits {
  int64_t max_side = 16384;
  int64_t max_pixels = int64_t{16384} * 16384;
};

// PNG or JPEG, recognised by content (not by extension). NotFound if the file is missing; BadFile
// (naming the file) if it is truncated, corrupt or not an image; Unsupported for a valid image x2v
// does not decode (CMYK JPEG, other formats); InvalidArgument if it exceeds `limits`.
Tensor read_image(const std::string& path, const ImageLimits& limits = {});
// The same from bytes in memory; `label` names the source in error messages (fuzzers, uploads).
Tensor decode_image(const void* data, size_t size, const std::string& label,
                    const ImageLimits& limits = {});

// u8 [H, W, C] with C = 1 (gray), 3 (RGB) or 4 (RGBA). `level` is the zlib level (0..9): frames
// of a video are written often, so the default favours speed.
std::vector<uint8_t> encode_png(const Tensor& image, int level = 3);
// Written to a temporary name beside `path` and renamed: never a partial file.
void write_png(const std::string& path, const Tensor& image, int level = 3);

// One pixel, exactly as the reference computes it in f32:
//   in:  (x / 255 - 0.5) / 0.5                          (torchvision to_tensor, then normalize)
//   out: uint8(trunc(((clamp(p, -1, 1) + 1) / 2) * 255)) (make_grid(normalize), * 255, .byte())
// NaN maps to 0 (the reference's cast leaves it undefined).
inline float u8_to_unit(uint8_t x) { return (static_cast<float>(x) / 255.0f - 0.5f) / 0.5f; }
inline uint8_t unit_to_u8(float p) {
  if (!(p == p)) return 0;
  float c = p < -1.0f ? -1.0f : (p > 1.0f ? 1.0f : p);
  float v = ((c + 1.0f) / 2.0f) * 255.0f;
  return static_cast<uint8_t>(v);  // v is in [0, 255]: the cast truncates
}

// u8 [H, W, 3] -> f32 [3, H, W] in [-1, 1].
Tensor image_to_unit(const Tensor& image);
// f32 [3, H, W] in [-1, 1] (any float dtype, any device) -> u8 [H, W, 3].
Tensor unit_to_image(const Tensor& chw);
// f32 video [3, F, H, W] in [-1, 1] (any float dtype, any device) -> u8 frames [F, H, W, 3].
Tensor video_to_frames(const Tensor& video);

}  // namespace x2v::io
