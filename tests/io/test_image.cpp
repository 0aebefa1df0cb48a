// Images: every PNG flavour the reader converts is written here with libpng directly (not with
// x2v's writer), JPEGs with libjpeg; errors must name the file and say what is wrong.
#include <png.h>
#include <cstdio>
#include <jpeglib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "io/image.h"
#include "testutil.h"

using namespace x2v;
namespace fs = std::filesystem;

namespace {

void save(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

using test::expect_error;

void png_abort(png_structp, png_const_charp msg) {
  std::fprintf(stderr, "test PNG writer: %s\n", msg);
  std::abort();
}
void png_append(png_structp png, png_bytep d, size_t n) {
  auto* v = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  v->insert(v->end(), d, d + n);
}

struct RawPng {
  uint32_t w, h;
  int color, depth;
  std::vector<uint8_t> pixels;  // packed rows as libpng expects them (big-endian 16-bit samples)
  bool interlace = false;
  std::vector<png_color> palette = {};
  std::vector<uint8_t> trns = {};
};

std::vector<uint8_t> make_png(const RawPng& r) {
  std::vector<uint8_t> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, png_abort, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(png, &out, png_append, nullptr);
  png_set_IHDR(png, info, r.w, r.h, r.depth, r.color,
               r.interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!r.palette.empty()) png_set_PLTE(png, info, r.palette.data(), static_cast<int>(r.palette.size()));
  if (!r.trns.empty())
    png_set_tRNS(png, info, r.trns.data(), static_cast<int>(r.trns.size()), nullptr);
  png_write_info(png, info);
  size_t stride = r.pixels.size() / r.h;
  std::vector<png_bytep> rows(r.h);
  for (uint32_t y = 0; y < r.h; ++y) rows[y] = const_cast<uint8_t*>(r.pixels.data()) + y * stride;
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

std::vector<uint8_t> make_jpeg(int w, int h, int comps, J_COLOR_SPACE cs, const std::vector<uint8_t>& px,
                               int quality, bool progressive = false) {
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = w;
  c.image_height = h;
  c.input_components = comps;
  c.in_color_space = cs;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  if (progressive) jpeg_simple_progression(&c);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(px.data()) + static_cast<size_t>(c.next_scanline) * w * comps;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  std::vector<uint8_t> out(buf, buf + size);
  jpeg_destroy_compress(&c);
  std::free(buf);
  return out;
}

// A smooth RGB test picture (JPEG-friendly) with distinct channels.
std::vector<uint8_t> smooth_rgb(int w, int h) {
  std::vector<uint8_t> px(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &px[(static_cast<size_t>(y) * w + x) * 3];
      p[0] = static_cast<uint8_t>(x * 255 / (w - 1));
      p[1] = static_cast<uint8_t>(y * 255 / (h - 1));
      p[2] = static_cast<uint8_t>(128 + 100 * std::sin(0.2 * (x + y)));
    }
  return px;
}

const uint8_t* pixel(const Tensor& t, int64_t y, int64_t x) {
  return t.data<uint8_t>() + (y * t.size(1) + x) * 3;
}

std::vector<std::string> leftovers(const std::string& dir) {
  std::vector<std::string> v;
  for (auto& e : fs::directory_iterator(dir)) v.push_back(e.path().filename().string());
  return v;
}

}  // namespace

TEST(Image, PngRgbRoundTripIsExact) {
  std::string dir = test::temp_dir(), path = dir + "/a.png";
  Tensor img = Tensor::empty({37, 53, 3}, DType::U8);  // odd sizes: row strides are not aligned
  uint8_t* p = img.data<uint8_t>();
  for (int64_t i = 0; i < img.numel(); ++i) p[i] = static_cast<uint8_t>((i * 7919) >> 3);
  io::write_png(path, img);
  Tensor back = io::read_image(path);
  ASSERT_EQ(back.shape(), (Shape{37, 53, 3}));
  EXPECT_EQ(std::memcmp(back.data<uint8_t>(), p, img.nbytes()), 0);
  EXPECT_EQ(leftovers(dir), std::vector<std::string>{"a.png"});  // no temporary left behind
  // The same through the in-memory encoder, at every compression level's extremes.
  for (int level : {0, 9}) {
    auto bytes = io::encode_png(img, level);
    Tensor b = io::decode_image(bytes.data(), bytes.size(), "mem");
    EXPECT_EQ(std::memcmp(b.data<uint8_t>(), p, img.nbytes()), 0) << "level " << level;
  }
}

TEST(Image, PngGrayAndAlphaBecomeRgb) {
  const uint32_t w = 5, h = 3;
  RawPng g{w, h, PNG_COLOR_TYPE_GRAY, 8, {}};
  RawPng ga{w, h, PNG_COLOR_TYPE_GRAY_ALPHA, 8, {}};
  RawPng rgba{w, h, PNG_COLOR_TYPE_RGB_ALPHA, 8, {}};
  for (uint32_t i = 0; i < w * h; ++i) {
    uint8_t v = static_cast<uint8_t>(i * 17);
    g.pixels.push_back(v);
    ga.pixels.insert(ga.pixels.end(), {v, static_cast<uint8_t>(255 - v)});
    rgba.pixels.insert(rgba.pixels.end(), {v, static_cast<uint8_t>(v + 1), static_cast<uint8_t>(v + 2), 0});
  }
  for (const RawPng* r : {&g, &ga, &rgba}) {
    auto bytes = make_png(*r);
    Tensor t = io::decode_image(bytes.data(), bytes.size(), "mem");
    ASSERT_EQ(t.shape(), (Shape{h, w, 3}));
    for (uint32_t i = 0; i < w * h; ++i) {
      uint8_t v = static_cast<uint8_t>(i * 17);
      const uint8_t* q = t.data<uint8_t>() + i * 3;
      bool rgb = r->color == PNG_COLOR_TYPE_RGB_ALPHA;
      // Alpha is dropped, not composited (even alpha 0 keeps its colour), as PIL's convert("RGB").
      EXPECT_EQ(q[0], v);
      EXPECT_EQ(q[1], rgb ? static_cast<uint8_t>(v + 1) : v);
      EXPECT_EQ(q[2], rgb ? static_cast<uint8_t>(v + 2) : v);
    }
  }
}

TEST(Image, PngLowBitGrayPaletteAndInterlace) {
  // 2-bit gray: samples 0..3 scale to 0, 85, 170, 255.
  RawPng g2{4, 2, PNG_COLOR_TYPE_GRAY, 2, {0b00011011, 0b11100100}};
  auto bytes = make_png(g2);
  Tensor t = io::decode_image(bytes.data(), bytes.size(), "gray2");
  const uint8_t expect[8] = {0, 85, 170, 255, 255, 170, 85, 0};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(t.data<uint8_t>()[i * 3 + 1], expect[i]) << i;

  // 4-bit palette with a transparency entry (ignored: alpha is dropped).
  RawPng pal{3, 1, PNG_COLOR_TYPE_PALETTE, 4, {0x12, 0x00}};
  pal.palette = {{10, 20, 30}, {40, 50, 60}, {70, 80, 90}};
  pal.trns = {0, 128};
  bytes = make_png(pal);
  t = io::decode_image(bytes.data(), bytes.size(), "palette");
  ASSERT_EQ(t.shape(), (Shape{1, 3, 3}));
  const uint8_t pe[9] = {40, 50, 60, 70, 80, 90, 10, 20, 30};
  EXPECT_EQ(std::memcmp(t.data<uint8_t>(), pe, 9), 0);

  // Adam7-interlaced RGB decodes to the same pixels.
  RawPng il{19, 11, PNG_COLOR_TYPE_RGB, 8, smooth_rgb(19, 11)};
  il.interlace = true;
  bytes = make_png(il);
  t = io::decode_image(bytes.data(), bytes.size(), "interlaced");
  ASSERT_EQ(t.shape(), (Shape{11, 19, 3}));
  EXPECT_EQ(std::memcmp(t.data<uint8_t>(), il.pixels.data(), il.pixels.size()), 0);
}

TEST(Image, Png16BitKeepsHighByte) {
  // Every 16-bit value that matters for the high-byte rule: 0x00ff (-> 0), 0x0100 (-> 1),
  // 0x7fff, 0x8000, 0xff00, 0xffff.
  const uint16_t vals[6] = {0x00ff, 0x0100, 0x7fff, 0x8000, 0xff00, 0xffff};
  RawPng rgb{6, 1, PNG_COLOR_TYPE_RGB, 16, {}};
  RawPng gray{6, 1, PNG_COLOR_TYPE_GRAY, 16, {}};
  RawPng rgba{6, 1, PNG_COLOR_TYPE_RGB_ALPHA, 16, {}};
  for (uint16_t v : vals) {
    uint8_t hi = v >> 8, lo = v & 0xff;
    for (int c = 0; c < 3; ++c) rgb.pixels.insert(rgb.pixels.end(), {hi, lo});
    gray.pixels.insert(gray.pixels.end(), {hi, lo});
    for (int c = 0; c < 4; ++c) rgba.pixels.insert(rgba.pixels.end(), {hi, lo});
  }
  for (const RawPng* r : {&rgb, &gray, &rgba}) {
    auto bytes = make_png(*r);
    Tensor t = io::decode_image(bytes.data(), bytes.size(), "png16");
    ASSERT_EQ(t.shape(), (Shape{1, 6, 3}));
    for (int i = 0; i < 6; ++i)
      for (int c = 0; c < 3; ++c) EXPECT_EQ(t.data<uint8_t>()[i * 3 + c], vals[i] >> 8) << i;
  }
}

TEST(Image, JpegRgbAndGray) {
  const int w = 64, h = 48;
  auto px = smooth_rgb(w, h);
  std::string dir = test::temp_dir();
  for (bool progressive : {false, true}) {
    std::string path = dir + (progressive ? "/p.jpg" : "/b.jpg");
    save(path, make_jpeg(w, h, 3, JCS_RGB, px, 100, progressive));
    Tensor t = io::read_image(path);
    ASSERT_EQ(t.shape(), (Shape{h, w, 3}));
    double err = 0;
    for (size_t i = 0; i < px.size(); ++i) err += std::abs(int(t.data<uint8_t>()[i]) - int(px[i]));
    EXPECT_LT(err / px.size(), 2.0) << "mean abs error of a quality-100 JPEG";
  }
  std::vector<uint8_t> g(static_cast<size_t>(w) * h);
  for (size_t i = 0; i < g.size(); ++i) g[i] = static_cast<uint8_t>(i % w * 4);
  auto bytes = make_jpeg(w, h, 1, JCS_GRAYSCALE, g, 95);
  Tensor t = io::decode_image(bytes.data(), bytes.size(), "gray.jpg");
  ASSERT_EQ(t.shape(), (Shape{h, w, 3}));
  double err = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const uint8_t* q = t.data<uint8_t>() + i * 3;
    EXPECT_TRUE(q[0] == q[1] && q[1] == q[2]) << "gray must replicate into R, G, B";
    err += std::abs(int(q[0]) - int(g[i]));
  }
  EXPECT_LT(err / g.size(), 2.0);
}

// A 16x12 quality-85 4:2:0 JPEG written by PIL 9.4, and what the reference's
// `Image.open(f).convert("RGB")` returns for it (Debian 12, libjpeg-turbo 2.1.5): the decoder
// settings (islow IDCT, fancy upsampling) must reproduce it byte for byte.
const uint8_t kJpeg[733] = {
    255, 216, 255, 224, 0, 16, 74, 70, 73, 70, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
    255, 219, 0, 67, 0, 5, 3, 4, 4, 4, 3, 5, 4, 4, 4, 5, 5, 5, 6, 7,
    12, 8, 7, 7, 7, 7, 15, 11, 11, 9, 12, 17, 15, 18, 18, 17, 15, 17, 17, 19,
    22, 28, 23, 19, 20, 26, 21, 17, 17, 24, 33, 24, 26, 29, 29, 31, 31, 31, 19, 23,
    34, 36, 34, 30, 36, 28, 30, 31, 30, 255, 219, 0, 67, 1, 5, 5, 5, 7, 6, 7,
    14, 8, 8, 14, 30, 20, 17, 20, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
    30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
    30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 255, 192,
    0, 17, 8, 0, 12, 0, 16, 3, 1, 34, 0, 2, 17, 1, 3, 17, 1, 255, 196, 0,
    31, 0, 0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 255, 196, 0, 181, 16, 0, 2, 1, 3, 3,
    2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 125, 1, 2, 3, 0, 4, 17, 5, 18, 33,
    49, 65, 6, 19, 81, 97, 7, 34, 113, 20, 50, 129, 145, 161, 8, 35, 66, 177, 193, 21,
    82, 209, 240, 36, 51, 98, 114, 130, 9, 10, 22, 23, 24, 25, 26, 37, 38, 39, 40, 41,
    42, 52, 53, 54, 55, 56, 57, 58, 67, 68, 69, 70, 71, 72, 73, 74, 83, 84, 85, 86,
    87, 88, 89, 90, 99, 100, 101, 102, 103, 104, 105, 106, 115, 116, 117, 118, 119, 120, 121, 122,
    131, 132, 133, 134, 135, 136, 137, 138, 146, 147, 148, 149, 150, 151, 152, 153, 154, 162, 163, 164,
    165, 166, 167, 168, 169, 170, 178, 179, 180, 181, 182, 183, 184, 185, 186, 194, 195, 196, 197, 198,
    199, 200, 201, 202, 210, 211, 212, 213, 214, 215, 216, 217, 218, 225, 226, 227, 228, 229, 230, 231,
    232, 233, 234, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 255, 196, 0, 31, 1, 0, 3,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5,
    6, 7, 8, 9, 10, 11, 255, 196, 0, 181, 17, 0, 2, 1, 2, 4, 4, 3, 4, 7,
    5, 4, 4, 0, 1, 2, 119, 0, 1, 2, 3, 17, 4, 5, 33, 49, 6, 18, 65, 81,
    7, 97, 113, 19, 34, 50, 129, 8, 20, 66, 145, 161, 177, 193, 9, 35, 51, 82, 240, 21,
    98, 114, 209, 10, 22, 36, 52, 225, 37, 241, 23, 24, 25, 26, 38, 39, 40, 41, 42, 53,
    54, 55, 56, 57, 58, 67, 68, 69, 70, 71, 72, 73, 74, 83, 84, 85, 86, 87, 88, 89,
    90, 99, 100, 101, 102, 103, 104, 105, 106, 115, 116, 117, 118, 119, 120, 121, 122, 130, 131, 132,
    133, 134, 135, 136, 137, 138, 146, 147, 148, 149, 150, 151, 152, 153, 154, 162, 163, 164, 165, 166,
    167, 168, 169, 170, 178, 179, 180, 181, 182, 183, 184, 185, 186, 194, 195, 196, 197, 198, 199, 200,
    201, 202, 210, 211, 212, 213, 214, 215, 216, 217, 218, 226, 227, 228, 229, 230, 231, 232, 233, 234,
    242, 243, 244, 245, 246, 247, 248, 249, 250, 255, 218, 0, 12, 3, 1, 0, 2, 17, 3, 17,
    0, 63, 0, 243, 29, 55, 192, 70, 226, 230, 59, 104, 224, 249, 23, 175, 21, 218, 79, 224,
    228, 211, 244, 215, 101, 129, 72, 134, 50, 196, 19, 180, 49, 3, 133, 207, 185, 192, 252, 107,
    216, 252, 27, 162, 105, 226, 23, 155, 201, 249, 253, 107, 71, 196, 26, 93, 154, 232, 89, 9,
    254, 182, 229, 81, 248, 7, 35, 12, 216, 233, 234, 163, 242, 174, 106, 252, 81, 138, 204, 167,
    74, 18, 118, 150, 50, 86, 111, 249, 105, 199, 236, 175, 84, 114, 228, 92, 103, 95, 45, 203,
    170, 226, 98, 157, 233, 197, 181, 254, 46, 159, 137, 255, 217,
};
const uint8_t kPilRgb[576] = {
    4, 0, 161, 13, 2, 182, 26, 8, 216, 42, 9, 202, 66, 4, 137, 82, 1, 80, 93, 2,
    33, 105, 0, 30, 119, 0, 77, 143, 6, 135, 155, 2, 181, 169, 3, 199, 183, 9, 182, 206,
    10, 136, 245, 7, 66, 250, 0, 16, 15, 14, 180, 25, 21, 194, 35, 26, 215, 51, 25, 194,
    72, 20, 128, 87, 17, 77, 102, 20, 43, 115, 18, 51, 131, 17, 104, 155, 25, 159, 168, 21,
    197, 185, 26, 207, 193, 26, 178, 206, 21, 125, 224, 7, 50, 249, 18, 28, 24, 37, 204, 31,
    43, 205, 41, 48, 201, 53, 45, 164, 70, 41, 97, 87, 38, 59, 107, 41, 53, 122, 40, 80,
    139, 40, 146, 162, 44, 192, 175, 39, 207, 190, 45, 198, 197, 46, 153, 207, 45, 104, 215, 39,
    50, 247, 63, 51, 31, 60, 216, 37, 64, 205, 45, 67, 176, 54, 63, 128, 70, 60, 69, 88,
    58, 48, 111, 62, 68, 128, 62, 110, 144, 59, 178, 165, 62, 213, 182, 60, 207, 196, 63, 178,
    201, 66, 122, 200, 64, 78, 210, 78, 65, 198, 69, 40, 35, 82, 214, 41, 85, 190, 50, 87,
    142, 57, 84, 91, 72, 82, 47, 92, 82, 46, 116, 84, 89, 135, 84, 141, 149, 81, 204, 171,
    84, 225, 193, 87, 197, 203, 84, 148, 206, 86, 85, 189, 80, 47, 193, 110, 76, 115, 45, 11,
    38, 103, 193, 44, 104, 166, 54, 105, 108, 63, 103, 66, 79, 103, 43, 102, 105, 60, 124, 107,
    115, 141, 105, 166, 159, 107, 218, 175, 105, 217, 195, 103, 166, 204, 100, 111, 210, 103, 57, 195,
    111, 47, 182, 144, 105, 84, 70, 43, 44, 127, 159, 48, 125, 131, 61, 124, 79, 73, 123, 52,
    91, 123, 58, 113, 127, 91, 135, 127, 148, 151, 127, 185, 166, 131, 211, 177, 125, 187, 195, 119,
    123, 211, 120, 76, 215, 122, 42, 203, 144, 68, 146, 151, 121, 82, 119, 112, 48, 151, 124, 51,
    147, 101, 64, 144, 57, 79, 142, 51, 98, 142, 79, 121, 146, 124, 142, 148, 174, 156, 148, 195,
    165, 151, 187, 177, 147, 149, 202, 142, 90, 222, 150, 65, 216, 144, 46, 195, 162, 85, 81, 125,
    108, 47, 134, 143, 46, 170, 84, 50, 166, 69, 65, 163, 44, 84, 162, 60, 106, 164, 114, 128,
    169, 161, 147, 171, 199, 160, 175, 198, 168, 177, 158, 174, 168, 106, 198, 161, 57, 216, 167, 49,
    211, 163, 63, 199, 195, 132, 64, 149, 146, 32, 162, 186, 46, 190, 58, 53, 187, 52, 69, 186,
    46, 90, 186, 76, 110, 185, 142, 130, 188, 189, 147, 189, 211, 158, 192, 191, 171, 201, 137, 176,
    190, 77, 207, 192, 51, 220, 194, 58, 219, 199, 104, 172, 200, 152, 62, 181, 185, 34, 199, 229,
    51, 210, 47, 59, 211, 51, 76, 213, 61, 99, 215, 104, 119, 214, 174, 137, 213, 211, 148, 211,
    218, 158, 213, 184, 165, 214, 109, 169, 202, 53, 202, 209, 44, 207, 206, 64, 207, 219, 135, 119,
    180, 146, 43, 190, 197, 19, 210, 236, 56, 224, 43, 65, 225, 53, 84, 229, 72, 106, 233, 120,
    126, 231, 191, 143, 229, 226, 151, 225, 224, 160, 225, 183, 177, 235, 112, 189, 230, 63, 216, 233,
    57, 221, 233, 87, 218, 247, 167, 108, 187, 158, 53, 216, 221, 27, 231, 255,
};

TEST(Image, JpegDecodesExactlyAsPil) {
  Tensor t = io::decode_image(kJpeg, sizeof kJpeg, "pil.jpg");
  ASSERT_EQ(t.shape(), (Shape{12, 16, 3}));
  int differing = 0;
  for (size_t i = 0; i < sizeof kPilRgb; ++i) differing += t.data<uint8_t>()[i] != kPilRgb[i];
  EXPECT_EQ(differing, 0);
}

TEST(Image, CmykJpegIsRefused) {
  std::vector<uint8_t> px(16 * 16 * 4, 77);
  auto bytes = make_jpeg(16, 16, 4, JCS_CMYK, px, 90);
  expect_error([&] { io::decode_image(bytes.data(), bytes.size(), "cmyk.jpg"); }, ErrorKind::Unsupported,
               {"cmyk.jpg", "CMYK"});
}

TEST(Image, TruncatedFilesAreBadFiles) {
  std::string dir = test::temp_dir();
  Tensor img = Tensor::zeros({64, 64, 3}, DType::U8);
  auto px = smooth_rgb(64, 64);
  std::memcpy(img.data<uint8_t>(), px.data(), px.size());
  auto png = io::encode_png(img, 0);
  auto jpg = make_jpeg(64, 64, 3, JCS_RGB, px, 90);
  for (size_t keep : {png.size() / 2, png.size() - 5, size_t{30}}) {
    std::string path = dir + "/cut.png";
    save(path, std::vector<uint8_t>(png.begin(), png.begin() + keep));
    expect_error([&] { io::read_image(path); }, ErrorKind::BadFile, {path, "truncated"});
  }
  for (size_t keep : {jpg.size() / 2, jpg.size() - 2, size_t{200}}) {
    std::string path = dir + "/cut.jpg";
    save(path, std::vector<uint8_t>(jpg.begin(), jpg.begin() + keep));
    expect_error([&] { io::read_image(path); }, ErrorKind::BadFile, {path, "truncated"});
  }
  // Only the signature.
  expect_error([&] { io::decode_image(png.data(), 8, "sig.png"); }, ErrorKind::BadFile, {"sig.png", "truncated"});
}

TEST(Image, CorruptNonImageMissingAndOtherFormats) {
  std::string dir = test::temp_dir();
  auto png = io::encode_png(test::random_tensor({32, 32, 3}, 1, 0, 255).to(DType::U8), 0);
  png[png.size() / 2] ^= 0x55;  // inside the stored (level 0) image data: a CRC error
  std::string bad = dir + "/crc.png";
  save(bad, png);
  expect_error([&] { io::read_image(bad); }, ErrorKind::BadFile, {bad, "not a valid PNG"});

  std::string text = dir + "/notes.png";
  save(text, {'h', 'e', 'l', 'l', 'o', '\n'});
  expect_error([&] { io::read_image(text); }, ErrorKind::BadFile, {text, "not an image"});

  std::string empty = dir + "/empty.jpg";
  save(empty, {});
  expect_error([&] { io::read_image(empty); }, ErrorKind::BadFile, {empty, "empty"});

  expect_error([&] { io::read_image(dir + "/nope.png"); }, ErrorKind::NotFound, {dir + "/nope.png"});

  const char gif[] = "GIF89a\x01\x00\x01\x00";
  expect_error([&] { io::decode_image(gif, sizeof gif, "anim.gif"); }, ErrorKind::Unsupported,
               {"anim.gif", "GIF"});

  // A JPEG whose frame header (SOF0) claims zero rows.
  auto jpg = make_jpeg(16, 16, 3, JCS_RGB, smooth_rgb(16, 16), 90);
  size_t sof = 2;
  while (sof + 9 < jpg.size() && !(jpg[sof] == 0xff && jpg[sof + 1] == 0xc0)) ++sof;
  ASSERT_LT(sof + 9, jpg.size());
  jpg[sof + 5] = 0;
  jpg[sof + 6] = 0;
  expect_error([&] { io::decode_image(jpg.data(), jpg.size(), "garbled.jpg"); }, ErrorKind::BadFile,
               {"garbled.jpg", "JPEG"});
}

TEST(Image, AbsurdSizesAreRefusedBeforeAllocating) {
  // A PNG header claiming 100000 x 100000 (30 GB of pixels) followed by nothing.
  RawPng small{1, 1, PNG_COLOR_TYPE_RGB, 8, {1, 2, 3}};
  auto bytes = make_png(small);
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
  };
  put32(16, 100000);
  put32(20, 100000);
  expect_error([&] { io::decode_image(bytes.data(), bytes.size(), "huge.png"); }, ErrorKind::InvalidArgument,
               {"huge.png", "100000x100000"});

  // A real JPEG one pixel over the per-side limit (cheap: one row).
  std::vector<uint8_t> row(16385 * 3, 100);
  auto jpg = make_jpeg(16385, 1, 3, JCS_RGB, row, 50);
  expect_error([&] { io::decode_image(jpg.data(), jpg.size(), "wide.jpg"); }, ErrorKind::InvalidArgument,
               {"wide.jpg", "16385x1"});

  // Custom limits apply to both formats.
  io::ImageLimits lim{8, 64};
  auto ok = make_jpeg(8, 8, 3, JCS_RGB, smooth_rgb(8, 8), 90);
  EXPECT_EQ(io::decode_image(ok.data(), ok.size(), "ok", lim).shape(), (Shape{8, 8, 3}));
  auto big = io::encode_png(Tensor::zeros({9, 4, 3}, DType::U8));
  expect_error([&] { io::decode_image(big.data(), big.size(), "tall.png", lim); }, ErrorKind::InvalidArgument,
               {"tall.png"});
}

TEST(Image, WritePngErrors) {
  std::string dir = test::temp_dir();
  Tensor img = Tensor::zeros({4, 4, 3}, DType::U8);
  expect_error([&] { io::write_png(dir + "/missing/x.png", img); }, ErrorKind::Io, {"missing"});
  EXPECT_TRUE(leftovers(dir).empty());
  expect_error([&] { io::write_png(dir + "/f.png", Tensor::zeros({4, 4, 3}, DType::F32)); },
               ErrorKind::InvalidArgument, {"u8"});
  expect_error([&] { io::write_png(dir + "/f.png", Tensor::zeros({4, 4, 2}, DType::U8)); },
               ErrorKind::InvalidArgument, {"[H, W, 1|3|4]"});
  EXPECT_TRUE(leftovers(dir).empty());
  // Gray and RGBA outputs read back as RGB.
  Tensor ga = Tensor::zeros({2, 2, 4}, DType::U8);
  for (int i = 0; i < 16; ++i) ga.data<uint8_t>()[i] = static_cast<uint8_t>(i * 10);
  io::write_png(dir + "/rgba.png", ga);
  Tensor back = io::read_image(dir + "/rgba.png");
  EXPECT_EQ(pixel(back, 1, 1)[0], 120);
  EXPECT_EQ(pixel(back, 1, 1)[2], 140);
}

TEST(Image, U8ToUnitMatchesToTensorNormalize) {
  EXPECT_EQ(io::u8_to_unit(0), -1.0f);
  EXPECT_EQ(io::u8_to_unit(255), 1.0f);
  // 127/255 - 0.5 = -1/510, 128/255 - 0.5 = +1/510; divided by 0.5: -+1/255.
  EXPECT_NEAR(io::u8_to_unit(127), -1.0 / 255, 1e-7);
  EXPECT_NEAR(io::u8_to_unit(128), 1.0 / 255, 1e-7);
  // Strictly increasing and antisymmetric about 127.5 to float precision.
  for (int v = 1; v < 256; ++v) {
    EXPECT_LT(io::u8_to_unit(v - 1), io::u8_to_unit(v));
    EXPECT_NEAR(io::u8_to_unit(v), -io::u8_to_unit(255 - v), 2e-7);
    EXPECT_NEAR(io::u8_to_unit(v), v / 127.5 - 1.0, 2e-7);
  }
  // Layout: HWC -> CHW.
  Tensor img = Tensor::empty({2, 3, 3}, DType::U8);
  for (int i = 0; i < 18; ++i) img.data<uint8_t>()[i] = static_cast<uint8_t>(i * 15);
  Tensor f = io::image_to_unit(img);
  ASSERT_EQ(f.shape(), (Shape{3, 2, 3}));
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x)
      for (int c = 0; c < 3; ++c)
        EXPECT_EQ(f.data<float>()[(c * 2 + y) * 3 + x], io::u8_to_unit(static_cast<uint8_t>(((y * 3 + x) * 3 + c) * 15)));
}

TEST(Image, UnitToU8TruncatesLikeTheReference) {
  EXPECT_EQ(io::unit_to_u8(-1.0f), 0);
  EXPECT_EQ(io::unit_to_u8(1.0f), 255);
  EXPECT_EQ(io::unit_to_u8(0.0f), 127);    // 127.5 truncates
  EXPECT_EQ(io::unit_to_u8(0.999f), 254);  // 254.87 truncates
  EXPECT_EQ(io::unit_to_u8(-0.999f), 0);   // 0.1275
  EXPECT_EQ(io::unit_to_u8(-0.99f), 1);    // 1.275
  EXPECT_EQ(io::unit_to_u8(5.0f), 255);    // clamped
  EXPECT_EQ(io::unit_to_u8(-7.0f), 0);
  EXPECT_EQ(io::unit_to_u8(INFINITY), 255);
  EXPECT_EQ(io::unit_to_u8(-INFINITY), 0);
  EXPECT_EQ(io::unit_to_u8(NAN), 0);
  // f32 quirk kept from the reference: for the largest float below 1, p + 1 rounds to 2, so it
  // gives 255 (exact arithmetic would give 254); the next float down gives 254.
  const float below1 = std::nextafter(1.0f, 0.0f);
  EXPECT_EQ(io::unit_to_u8(below1), 255);
  EXPECT_EQ(io::unit_to_u8(std::nextafter(below1, 0.0f)), 254);
  // Against an independent double-precision truncation wherever f32 rounding cannot matter
  // (the product is not within 1e-4 of an integer).
  for (int i = -1100; i <= 1100; ++i) {
    float p = i / 1000.0f;
    double v = (std::clamp(static_cast<double>(p), -1.0, 1.0) + 1.0) / 2.0 * 255.0;
    if (std::abs(v - std::round(v)) < 1e-4) continue;
    EXPECT_EQ(io::unit_to_u8(p), static_cast<int>(std::floor(v))) << p;
  }
}

TEST(Image, VideoToFramesLayoutAndDtypes) {
  const int64_t F = 2, H = 3, W = 4;
  Tensor v = Tensor::empty({3, F, H, W}, DType::F32);
  float* p = v.data<float>();
  for (int64_t i = 0; i < v.numel(); ++i) p[i] = -1.0f + 2.0f * static_cast<float>(i) / (v.numel() - 1);
  Tensor u = io::video_to_frames(v);
  ASSERT_EQ(u.shape(), (Shape{F, H, W, 3}));
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t f = 0; f < F; ++f)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x)
          ASSERT_EQ(u.data<uint8_t>()[((f * H + y) * W + x) * 3 + c],
                    io::unit_to_u8(p[((c * F + f) * H + y) * W + x]));
  // bf16 input gives the frames of its f32 values.
  Tensor b = v.to(DType::BF16);
  Tensor ub = io::video_to_frames(b), ref = io::video_to_frames(b.to(DType::F32));
  EXPECT_EQ(std::memcmp(ub.data<uint8_t>(), ref.data<uint8_t>(), ub.nbytes()), 0);
  // A single image [3, H, W] -> [H, W, 3], and back to nearly the same values.
  Tensor img = io::unit_to_image(v.reshape({3, F * H, W}));
  ASSERT_EQ(img.shape(), (Shape{F * H, W, 3}));
  EXPECT_EQ(std::memcmp(img.data<uint8_t>(), u.data<uint8_t>(), u.nbytes()), 0);
  Tensor again = io::image_to_unit(img);
  auto a = again.to_vector();
  for (int64_t i = 0; i < v.numel(); ++i) EXPECT_NEAR(a[i], p[i], 2.0 / 255 + 1e-6);
  expect_error([&] { io::video_to_frames(Tensor::zeros({4, 1, 2, 2}, DType::F32)); }, ErrorKind::InvalidArgument,
               {"[3, F, H, W]"});
}
