#include "io/image.h"

#include <png.h>
// jpeglib.h needs size_t and FILE declared first.
#include <cstdio>
#include <jerror.h>
#include <jpeglib.h>

#include <algorithm>
#include <csetjmp>
#include <cstring>
#include <new>

#include "io/atomic_file.h"
#include "io/mapped_file.h"

namespace x2v::io {

// libpng and libjpeg report errors by longjmp. A longjmp must not cross a frame that owns C++
// objects with destructors, so each library call sequence lives in a small function whose locals
// are all trivial; the callers own the memory (RAII) and turn a failed phase into an x2v::Error.

namespace {

constexpr size_t kMsgLen = 256;
// A progressive JPEG can hold thousands of tiny scans, each a full pass over the coefficients:
// a few-kilobyte file that takes minutes. Real encoders write at most a few dozen.
constexpr int kMaxJpegScans = 500;

void check_limits(const std::string& label, const char* kind, int64_t w, int64_t h,
                  const ImageLimits& lim) {
  if (w <= 0 || h <= 0) fail(ErrorKind::BadFile, label, ": ", kind, " image has size ", w, "x", h);
  if (w > lim.max_side || h > lim.max_side || w * h > lim.max_pixels)
    fail(ErrorKind::InvalidArgument, label, ": ", kind, " image is ", w, "x", h,
         " pixels, larger than x2v accepts (", lim.max_side, " per side, ", lim.max_pixels,
         " pixels); scale it down first");
}

// ------------------------------------------------------------------------------------------ PNG

struct PngSource {
  const uint8_t* data;
  size_t size;
  size_t pos;
  bool truncated;
  char msg[kMsgLen];
};

void png_read_mem(png_structp png, png_bytep out, size_t n) {
  auto* s = static_cast<PngSource*>(png_get_io_ptr(png));
  if (n > s->size - s->pos) {
    s->truncated = true;
    png_error(png, "unexpected end of file");
  }
  std::memcpy(out, s->data + s->pos, n);
  s->pos += n;
}

void png_on_error(png_structp png, png_const_charp msg) {
  auto* s = static_cast<PngSource*>(png_get_error_ptr(png));
  std::snprintf(s->msg, kMsgLen, "%s", msg);
  png_longjmp(png, 1);
}

void png_on_warning(png_structp, png_const_charp) {}

struct PngReader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngReader() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

// Reads the header and sets up the conversion to 8-bit RGB, the way PIL's convert("RGB") sees
// the image.
bool png_phase_header(png_structp png, png_infop info, uint32_t max_side, uint32_t* w, uint32_t* h,
                      size_t* rowbytes) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_user_limits(png, max_side, max_side);
  png_read_info(png, info);
  int color = png_get_color_type(png, info);
  int depth = png_get_bit_depth(png, info);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) png_set_strip_16(png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  // Expanding a palette also turns its tRNS entries into an alpha channel: drop that too.
  if ((color & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS)) png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  *w = png_get_image_width(png, info);
  *h = png_get_image_height(png, info);
  *rowbytes = png_get_rowbytes(png, info);
  return true;
}

bool png_phase_pixels(png_structp png, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  return true;
}

[[noreturn]] void png_fail(const std::string& label, const PngSource& s) {
  if (s.truncated)
    fail(ErrorKind::BadFile, label, ": PNG file is truncated (", s.size,
         " bytes); the download or copy did not finish");
  fail(ErrorKind::BadFile, label, ": not a valid PNG image (libpng: ", s.msg, ")");
}

Tensor decode_png(const uint8_t* data, size_t size, const std::string& label, const ImageLimits& lim) {
  PngSource src{data, size, 0, false, {}};
  PngReader r;
  r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
  if (!r.png) fail(ErrorKind::OutOfMemory, "cannot create a PNG reader for ", label);
  r.info = png_create_info_struct(r.png);
  if (!r.info) fail(ErrorKind::OutOfMemory, "cannot create a PNG reader for ", label);
  png_set_read_fn(r.png, &src, png_read_mem);

  // The size is in the first chunk (IHDR): check it in x2v's words before libpng sees it (its own
  // user limit, set below as a backstop, only says "Invalid IHDR data").
  if (size >= 24 && std::memcmp(data + 12, "IHDR", 4) == 0)
    check_limits(label, "PNG", png_get_uint_32(data + 16), png_get_uint_32(data + 20), lim);
  uint32_t w = 0, h = 0;
  size_t rowbytes = 0;
  uint32_t side = static_cast<uint32_t>(std::min<int64_t>(lim.max_side, 0x7fffffff));
  if (!png_phase_header(r.png, r.info, side, &w, &h, &rowbytes)) png_fail(label, src);
  check_limits(label, "PNG", w, h, lim);
  if (rowbytes != static_cast<size_t>(w) * 3)
    fail(ErrorKind::Internal, label, ": PNG conversion gave ", rowbytes, " bytes per row for width ", w);

  Tensor img = Tensor::empty({h, w, 3}, DType::U8);
  std::vector<png_bytep> rows(h);
  uint8_t* p = img.data<uint8_t>();
  for (uint32_t y = 0; y < h; ++y) rows[y] = p + static_cast<size_t>(y) * rowbytes;
  if (!png_phase_pixels(r.png, rows.data())) png_fail(label, src);
  return img;
}

struct PngSink {
  std::vector<uint8_t>* out;
  bool oom;
  char msg[kMsgLen];
};

void png_write_mem(png_structp png, png_bytep data, size_t n) {
  auto* s = static_cast<PngSink*>(png_get_io_ptr(png));
  try {
    s->out->insert(s->out->end(), data, data + n);
  } catch (const std::bad_alloc&) {
    s->oom = true;
    png_error(png, "out of memory");
  }
}

void png_write_flush(png_structp) {}

void png_on_write_error(png_structp png, png_const_charp msg) {
  auto* s = static_cast<PngSink*>(png_get_error_ptr(png));
  std::snprintf(s->msg, kMsgLen, "%s", msg);
  png_longjmp(png, 1);
}

struct PngWriter {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngWriter() { png_destroy_write_struct(&png, info ? &info : nullptr); }
};

bool png_phase_write(png_structp png, png_infop info, uint32_t w, uint32_t h, int color, int level,
                     png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_IHDR(png, info, w, h, 8, color, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(png, level);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  return true;
}

// ----------------------------------------------------------------------------------------- JPEG

struct JpegState {
  jpeg_error_mgr err;  // first: libjpeg hands callbacks cinfo->err, which is then the whole state
  jpeg_decompress_struct cinfo;
  jpeg_progress_mgr progress;
  std::jmp_buf jump;
  bool created;
  bool truncated;
  bool too_many_scans;
  char msg[JMSG_LENGTH_MAX];
};

JpegState* jpeg_state(j_common_ptr c) { return reinterpret_cast<JpegState*>(c->err); }

void jpeg_on_error(j_common_ptr c) {
  JpegState* s = jpeg_state(c);
  c->err->format_message(c, s->msg);
  std::longjmp(s->jump, 1);
}

void jpeg_on_message(j_common_ptr c, int level) {
  if (level >= 0) return;  // trace messages
  // A file cut short decodes as grey below the cut with only a warning: refuse it instead.
  if (c->err->msg_code == JWRN_JPEG_EOF) {
    JpegState* s = jpeg_state(c);
    s->truncated = true;
    c->err->format_message(c, s->msg);
    std::longjmp(s->jump, 1);
  }
  c->err->num_warnings++;
}

void jpeg_on_progress(j_common_ptr c) {
  auto* d = reinterpret_cast<j_decompress_ptr>(c);
  if (d->input_scan_number > kMaxJpegScans) {
    JpegState* s = jpeg_state(c);
    s->too_many_scans = true;
    std::snprintf(s->msg, sizeof s->msg, "more than %d progressive scans", kMaxJpegScans);
    std::longjmp(s->jump, 1);
  }
}

struct JpegReader {
  JpegState s{};
  ~JpegReader() {
    if (s.created) jpeg_destroy_decompress(&s.cinfo);
  }
};

bool jpeg_phase_header(JpegState* s, const uint8_t* data, size_t size, bool* cmyk) {
  if (setjmp(s->jump)) return false;
  s->cinfo.err = jpeg_std_error(&s->err);
  s->err.error_exit = jpeg_on_error;
  s->err.emit_message = jpeg_on_message;
  jpeg_create_decompress(&s->cinfo);
  s->created = true;
  s->progress.progress_monitor = jpeg_on_progress;
  s->cinfo.progress = &s->progress;
  jpeg_mem_src(&s->cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&s->cinfo, TRUE);
  *cmyk = s->cinfo.jpeg_color_space == JCS_CMYK || s->cinfo.jpeg_color_space == JCS_YCCK;
  s->cinfo.out_color_space = JCS_RGB;
  return true;
}

bool jpeg_phase_pixels(JpegState* s, uint8_t* out, size_t rowbytes) {
  if (setjmp(s->jump)) return false;
  jpeg_start_decompress(&s->cinfo);
  if (s->cinfo.output_components != 3) {
    std::snprintf(s->msg, sizeof s->msg, "decoder gave %d components", s->cinfo.output_components);
    return false;
  }
  while (s->cinfo.output_scanline < s->cinfo.output_height) {
    JSAMPROW row = out + static_cast<size_t>(s->cinfo.output_scanline) * rowbytes;
    jpeg_read_scanlines(&s->cinfo, &row, 1);
  }
  jpeg_finish_decompress(&s->cinfo);
  return true;
}

[[noreturn]] void jpeg_fail(const std::string& label, const JpegState& s, size_t size) {
  if (s.truncated)
    fail(ErrorKind::BadFile, label, ": JPEG file is truncated (", size,
         " bytes); the download or copy did not finish");
  if (s.too_many_scans)
    fail(ErrorKind::BadFile, label, ": JPEG file has ", s.msg, "; re-save it as a baseline JPEG or PNG");
  fail(ErrorKind::BadFile, label, ": not a valid JPEG image (libjpeg: ", s.msg, ")");
}

Tensor decode_jpeg(const uint8_t* data, size_t size, const std::string& label, const ImageLimits& lim) {
  JpegReader r;
  bool cmyk = false;
  if (!jpeg_phase_header(&r.s, data, size, &cmyk)) jpeg_fail(label, r.s, size);
  if (cmyk)
    fail(ErrorKind::Unsupported, label, " is a CMYK JPEG (print colours); x2v reads RGB and gray"
         " images: convert it to RGB first (e.g. `convert in.jpg -colorspace sRGB out.png`)");
  int64_t w = r.s.cinfo.image_width, h = r.s.cinfo.image_height;
  check_limits(label, "JPEG", w, h, lim);
  Tensor img = Tensor::empty({h, w, 3}, DType::U8);
  if (!jpeg_phase_pixels(&r.s, img.data<uint8_t>(), static_cast<size_t>(w) * 3))
    jpeg_fail(label, r.s, size);
  if (r.s.cinfo.output_width != w || r.s.cinfo.output_height != h)
    fail(ErrorKind::Internal, label, ": JPEG decoder changed the size");
  return img;
}

bool starts_with(const uint8_t* d, size_t n, const char* magic, size_t m, size_t at = 0) {
  return n >= at + m && std::memcmp(d + at, magic, m) == 0;
}

// Names formats people commonly hand over, so that the error can say what to do.
const char* other_format(const uint8_t* d, size_t n) {
  if (starts_with(d, n, "GIF8", 4)) return "GIF";
  if (starts_with(d, n, "BM", 2)) return "BMP";
  if (starts_with(d, n, "RIFF", 4) && starts_with(d, n, "WEBP", 4, 8)) return "WebP";
  if (starts_with(d, n, "II*\0", 4) || starts_with(d, n, "MM\0*", 4)) return "TIFF";
  if (starts_with(d, n, "ftypavif", 8, 4) || starts_with(d, n, "ftypheic", 8, 4)) return "AVIF/HEIC";
  return nullptr;
}

void check_u8_image(const Tensor& image, const char* what) {
  if (!image.defined() || image.dtype() != DType::U8 || image.dim() != 3 ||
      (image.size(2) != 1 && image.size(2) != 3 && image.size(2) != 4))
    fail(ErrorKind::InvalidArgument, what, ": expected a u8 image [H, W, 1|3|4], got ",
         image.defined() ? image.desc() : std::string("nothing"));
  if (image.size(0) < 1 || image.size(1) < 1 || image.size(0) > 0x7fffffff || image.size(1) > 0x7fffffff)
    fail(ErrorKind::InvalidArgument, what, ": cannot encode an image of shape ", shape_str(image.shape()));
}

// Any float dtype, any device -> f32 on the host.
Tensor host_f32(const Tensor& t) {
  Tensor h = t.is_cpu() ? t : t.to(Device::CPU);
  return h.dtype() == DType::F32 ? h : h.to(DType::F32);
}

}  // namespace

Tensor decode_image(const void* data, size_t size, const std::string& label, const ImageLimits& limits) {
  const auto* d = static_cast<const uint8_t*>(data);
  if (size == 0) fail(ErrorKind::BadFile, label, " is empty (0 bytes)");
  if (starts_with(d, size, "\x89PNG\r\n\x1a\n", 8)) return decode_png(d, size, label, limits);
  if (starts_with(d, size, "\xff\xd8\xff", 3)) return decode_jpeg(d, size, label, limits);
  if (const char* f = other_format(d, size))
    fail(ErrorKind::Unsupported, label, " is a ", f, " image; x2v reads PNG and JPEG: convert it first");
  fail(ErrorKind::BadFile, label, " is not an image (neither PNG nor JPEG by its first bytes)");
}

Tensor read_image(const std::string& path, const ImageLimits& limits) {
  auto f = MappedFile::open(path);
  return decode_image(f->data(), f->size(), path, limits);
}

std::vector<uint8_t> encode_png(const Tensor& image, int level) {
  check_u8_image(image, "encode_png");
  if (level < 0 || level > 9) fail(ErrorKind::InvalidArgument, "PNG compression level ", level, " is not in 0..9");
  Tensor img = image.is_cpu() ? image : image.to(Device::CPU);
  const uint32_t h = static_cast<uint32_t>(img.size(0)), w = static_cast<uint32_t>(img.size(1));
  const int c = static_cast<int>(img.size(2));
  const int color = c == 1 ? PNG_COLOR_TYPE_GRAY : c == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_RGBA;

  std::vector<uint8_t> out;
  PngSink sink{&out, false, {}};
  PngWriter wr;
  wr.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, png_on_write_error, png_on_warning);
  if (!wr.png) fail(ErrorKind::OutOfMemory, "cannot create a PNG writer");
  wr.info = png_create_info_struct(wr.png);
  if (!wr.info) fail(ErrorKind::OutOfMemory, "cannot create a PNG writer");
  png_set_write_fn(wr.png, &sink, png_write_mem, png_write_flush);
  std::vector<png_bytep> rows(h);
  uint8_t* p = img.data<uint8_t>();
  for (uint32_t y = 0; y < h; ++y) rows[y] = p + static_cast<size_t>(y) * w * c;
  if (!png_phase_write(wr.png, wr.info, w, h, color, level, rows.data())) {
    if (sink.oom) fail(ErrorKind::OutOfMemory, "out of host memory while encoding a PNG");
    fail(ErrorKind::Internal, "PNG encoding failed: ", sink.msg);
  }
  return out;
}

void write_png(const std::string& path, const Tensor& image, int level) {
  std::vector<uint8_t> bytes = encode_png(image, level);
  AtomicFile f(path);
  f.write(bytes.data(), bytes.size());
  f.commit();
}

Tensor image_to_unit(const Tensor& image) {
  if (!image.defined() || image.dtype() != DType::U8 || image.dim() != 3 || image.size(2) != 3)
    fail(ErrorKind::InvalidArgument, "image_to_unit: expected a u8 RGB image [H, W, 3], got ",
         image.defined() ? image.desc() : std::string("nothing"));
  Tensor src = image.is_cpu() ? image : image.to(Device::CPU);
  const int64_t h = src.size(0), w = src.size(1), hw = h * w;
  Tensor out = Tensor::empty({3, h, w}, DType::F32);
  const uint8_t* s = src.data<uint8_t>();
  float* o = out.data<float>();
  for (int64_t i = 0; i < hw; ++i)
    for (int c = 0; c < 3; ++c) o[c * hw + i] = u8_to_unit(s[i * 3 + c]);
  return out;
}

Tensor unit_to_image(const Tensor& chw) {
  if (!chw.defined() || !dtype_is_float(chw.dtype()) || chw.dim() != 3 || chw.size(0) != 3)
    fail(ErrorKind::InvalidArgument, "unit_to_image: expected a float image [3, H, W], got ",
         chw.defined() ? chw.desc() : std::string("nothing"));
  return video_to_frames(chw.reshape({3, 1, chw.size(1), chw.size(2)}))[0];
}

Tensor video_to_frames(const Tensor& video) {
  if (!video.defined() || !dtype_is_float(video.dtype()) || video.dim() != 4 || video.size(0) != 3)
    fail(ErrorKind::InvalidArgument, "video_to_frames: expected a float video [3, F, H, W], got ",
         video.defined() ? video.desc() : std::string("nothing"));
  Tensor v = host_f32(video);
  const int64_t f = v.size(1), h = v.size(2), w = v.size(3), plane = f * h * w, hw = h * w;
  Tensor out = Tensor::empty({f, h, w, 3}, DType::U8);
  const float* s = v.data<float>();
  uint8_t* o = out.data<uint8_t>();
  for (int64_t t = 0; t < f; ++t)
    for (int64_t i = 0; i < hw; ++i)
      for (int c = 0; c < 3; ++c) o[(t * hw + i) * 3 + c] = unit_to_u8(s[c * plane + t * hw + i]);
  return out;
}

}  // namespace x2v::io
