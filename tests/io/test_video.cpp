// Video output: MP4 written through FFmpeg and decoded back, PNG frame folders, and the promise
// that a failed write leaves nothing behind.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "io/image.h"
#include "io/video.h"
#include "testutil.h"

using namespace x2v;
namespace fs = std::filesystem;

namespace {

using test::expect_error;

std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> v;
  for (auto& e : fs::directory_iterator(dir)) v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}

// A smooth pattern moving 3 pixels right and 2 down per frame, in [-1, 1]: what a codec keeps well
// and what shows at once if frames come back shifted, reordered or with channels swapped.
Tensor moving_pattern(int64_t F, int64_t H, int64_t W) {
  Tensor v = Tensor::empty({3, F, H, W}, DType::F32);
  float* p = v.data<float>();
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t f = 0; f < F; ++f)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          double X = x - 3.0 * f, Y = y - 2.0 * f;
          double val = c == 0 ? std::sin(X * 0.15) * std::cos(Y * 0.1)
                       : c == 1 ? std::cos((X + Y) * 0.08)
                                : 0.8 * std::sin(Y * 0.12) - 0.1;
          p[((c * F + f) * H + y) * W + x] = static_cast<float>(0.9 * val);
        }
  return v;
}

// Mean absolute difference of two u8 frames [H, W, 3] (or a frame against the top-left of a
// larger one).
[[maybe_unused]] double mean_abs(const uint8_t* a, int64_t aw, const uint8_t* b, int64_t bw, int64_t h, int64_t w) {
  double s = 0;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w * 3; ++x) s += std::abs(int(a[y * aw * 3 + x]) - int(b[y * bw * 3 + x]));
  return s / (h * w * 3);
}

}  // namespace

TEST(Video, TargetFromPath) {
  std::string dir = test::temp_dir();
  EXPECT_EQ(io::video_target("out.mp4"), io::VideoTarget::File);
  EXPECT_EQ(io::video_target("a/b/OUT.MP4"), io::VideoTarget::File);
  EXPECT_EQ(io::video_target("out.mkv"), io::VideoTarget::File);
  EXPECT_EQ(io::video_target("frames/"), io::VideoTarget::FrameFolder);
  EXPECT_EQ(io::video_target("out.mp4/"), io::VideoTarget::FrameFolder);
  EXPECT_EQ(io::video_target("frames"), io::VideoTarget::FrameFolder);
  EXPECT_EQ(io::video_target(dir), io::VideoTarget::FrameFolder);
  expect_error([] { io::video_target("out.gif"); }, ErrorKind::InvalidArgument, {"out.gif", ".mp4"});
}

#ifdef X2V_HAVE_FFMPEG

TEST(Video, Mp4RoundTrip) {
  ASSERT_TRUE(io::can_write_video_files()) << "Debian's libavcodec has libx264; this build should too";
  std::string dir = test::temp_dir(), path = dir + "/clip.mp4";
  const int64_t F = 17, H = 64, W = 96;
  Tensor video = moving_pattern(F, H, W);
  io::write_video(path, video);
  EXPECT_EQ(listing(dir), std::vector<std::string>{"clip.mp4"}) << "a temporary file was left behind";

  io::VideoInfo info = io::probe_video(path);
  EXPECT_EQ(info.frames, F);
  EXPECT_EQ(info.width, W);
  EXPECT_EQ(info.height, H);
  EXPECT_EQ(info.fps_num, 16);
  EXPECT_EQ(info.fps_den, 1);
  EXPECT_EQ(info.codec, "h264");
  EXPECT_EQ(info.pixel_format, "yuv420p");

  io::DecodedVideo got = io::read_video(path);
  ASSERT_EQ(got.info.frames, F);
  ASSERT_EQ(got.frames.shape(), (Shape{F, H, W, 3}));
  Tensor ref = io::video_to_frames(video);
  const uint8_t* g = got.frames.data<uint8_t>();
  const uint8_t* r = ref.data<uint8_t>();
  const int64_t fb = H * W * 3;
  double total = 0;
  for (int64_t f = 0; f < F; ++f) {
    double e = mean_abs(g + f * fb, W, r + f * fb, W, H, W);
    total += e;
    // Most of the error is 4:2:0 chroma subsampling of this small, colourful pattern.
    EXPECT_LT(e, 3.0) << "frame " << f;
    // The same frame must match far better than its neighbour: frames are in order, not shifted.
    if (f + 1 < F) {
      EXPECT_LT(3 * e, mean_abs(g + f * fb, W, r + (f + 1) * fb, W, H, W)) << "frame " << f;
    }
  }
  EXPECT_LT(total / F, 2.2) << "mean abs error of a crf-18 encode of a smooth pattern";

  // Lower quality is smaller; crf is honoured.
  std::string rough = dir + "/rough.mp4";
  io::VideoOptions o;
  o.crf = 40;
  o.preset = "veryfast";
  io::write_video(rough, video, o);
  EXPECT_LT(fs::file_size(rough), fs::file_size(path));
}

TEST(Video, FrameRatesAreExact) {
  std::string dir = test::temp_dir();
  Tensor video = moving_pattern(5, 32, 32);
  struct Case {
    double fps;
    int num, den;
  };
  for (Case c : {Case{24, 24, 1}, Case{30000.0 / 1001, 30000, 1001}, Case{12.5, 25, 2}}) {
    io::VideoOptions o;
    o.fps = c.fps;
    o.preset = "ultrafast";
    std::string path = dir + "/r.mp4";
    io::write_video(path, video, o);
    io::VideoInfo info = io::probe_video(path);
    EXPECT_EQ(info.fps_num, c.num) << c.fps;
    EXPECT_EQ(info.fps_den, c.den) << c.fps;
    EXPECT_EQ(info.frames, 5);
  }
  // The other containers work too.
  io::VideoOptions o;
  o.preset = "ultrafast";
  io::write_video(dir + "/r.mkv", video, o);
  EXPECT_EQ(io::read_video(dir + "/r.mkv").info.frames, 5);
  EXPECT_EQ(listing(dir), (std::vector<std::string>{"r.mkv", "r.mp4"}));
}

TEST(Video, OddSizesArePaddedByRepeatingTheEdge) {
  std::string dir = test::temp_dir(), path = dir + "/odd.mp4";
  const int64_t H = 17, W = 33;
  std::vector<Tensor> frames;
  Tensor pattern = io::video_to_frames(moving_pattern(3, H, W));
  for (int64_t f = 0; f < 3; ++f) frames.push_back(pattern[f].clone());
  io::write_video(path, frames);
  io::DecodedVideo got = io::read_video(path);
  ASSERT_EQ(got.frames.shape(), (Shape{3, H + 1, W + 1, 3}));
  for (int64_t f = 0; f < 3; ++f) {
    const uint8_t* g = got.frames.data<uint8_t>() + f * (H + 1) * (W + 1) * 3;
    const uint8_t* r = frames[f].data<uint8_t>();
    EXPECT_LT(mean_abs(g, W + 1, r, W, H, W), 4.0) << "frame " << f;
    // The added column repeats column W-1, the added row repeats row H-1.
    double col = 0, row = 0;
    for (int64_t y = 0; y < H; ++y)
      for (int c = 0; c < 3; ++c) col += std::abs(int(g[(y * (W + 1) + W) * 3 + c]) - int(r[(y * W + W - 1) * 3 + c]));
    for (int64_t x = 0; x < W; ++x)
      for (int c = 0; c < 3; ++c) row += std::abs(int(g[(H * (W + 1) + x) * 3 + c]) - int(r[((H - 1) * W + x) * 3 + c]));
    EXPECT_LT(col / (H * 3), 6.0);
    EXPECT_LT(row / (W * 3), 6.0);
  }
}

TEST(Video, FailedWritesLeaveNothing) {
  std::string dir = test::temp_dir();
  Tensor video = moving_pattern(2, 16, 16);
  // The folder does not exist.
  expect_error([&] { io::write_video(dir + "/no/such/out.mp4", video); }, ErrorKind::Io, {"no/such"});
  // The "folder" is a file.
  { std::ofstream(dir + "/plain") << "x"; }
  expect_error([&] { io::write_video(dir + "/plain/out.mp4", video); }, ErrorKind::Io, {"plain"});
  // The OS refuses to create the file (even for root).
  expect_error([&] { io::write_video("/proc/x2v-test.mp4", video); }, ErrorKind::Io, {"/proc/x2v-test.mp4"});
  EXPECT_FALSE(fs::exists("/proc/x2v-test.mp4"));
  // Invalid requests are refused before anything is created.
  io::VideoOptions o;
  o.crf = 60;
  expect_error([&] { io::write_video(dir + "/a.mp4", video, o); }, ErrorKind::InvalidArgument, {"crf"});
  o = {};
  o.preset = "warp-speed";
  expect_error([&] { io::write_video(dir + "/a.mp4", video, o); }, ErrorKind::InvalidArgument, {"warp-speed"});
  o = {};
  o.fps = 0;
  expect_error([&] { io::write_video(dir + "/a.mp4", video, o); }, ErrorKind::InvalidArgument, {"frame rate"});
  expect_error([&] { io::write_video(dir + "/a.mp4", Tensor::zeros({3, 0, 16, 16}, DType::F32)); },
               ErrorKind::InvalidArgument, {"no frames"});
  expect_error([&] { io::write_video(dir + "/a.mp4", Tensor::zeros({4, 2, 16, 16}, DType::F32)); },
               ErrorKind::InvalidArgument, {"[3, F, H, W]"});
  expect_error([&] {
    io::write_video(dir + "/a.mp4", std::vector<Tensor>{Tensor::zeros({8, 8, 3}, DType::U8), Tensor::zeros({8, 6, 3}, DType::U8)});
  }, ErrorKind::InvalidArgument, {"frame 1"});
  EXPECT_EQ(listing(dir), std::vector<std::string>{"plain"});
}

TEST(Video, ReadErrors) {
  std::string dir = test::temp_dir();
  expect_error([&] { io::read_video(dir + "/none.mp4"); }, ErrorKind::NotFound, {"none.mp4"});
  { std::ofstream(dir + "/text.mp4") << "this is not a video\n"; }
  expect_error([&] { io::probe_video(dir + "/text.mp4"); }, ErrorKind::BadFile, {"text.mp4"});
  Tensor video = moving_pattern(9, 32, 32);
  io::VideoOptions o;
  o.preset = "ultrafast";
  io::write_video(dir + "/v.mp4", video, o);
  expect_error([&] { io::read_video(dir + "/v.mp4", 4); }, ErrorKind::InvalidArgument, {"more than 4"});
  // Cut in half: the header (moved to the front by faststart) survives, the data does not.
  auto size = fs::file_size(dir + "/v.mp4");
  fs::resize_file(dir + "/v.mp4", size / 2);
  expect_error([&] { io::read_video(dir + "/v.mp4"); }, ErrorKind::BadFile, {"v.mp4", "truncated"});
}

TEST(Video, WriterStreamsChunks) {
  std::string dir = test::temp_dir(), path = dir + "/stream.mp4";
  const int64_t F = 13, H = 32, W = 48;
  Tensor video = moving_pattern(F, H, W);
  Tensor ref = io::video_to_frames(video);
  io::VideoOptions o;
  o.preset = "veryfast";
  o.threads = 1;
  {
    // As the VAE hands frames over: one, then groups of four ([3, n, H, W] slices of the video).
    io::VideoWriter w(path, W, H, o);
    auto chunk = [&](int64_t f0, int64_t n) {
      Tensor c = Tensor::empty({3, n, H, W}, DType::F32);
      for (int64_t ch = 0; ch < 3; ++ch)
        std::memcpy(c.data<float>() + ch * n * H * W, video.data<float>() + (ch * F + f0) * H * W,
                    static_cast<size_t>(n * H * W) * 4);
      return c;
    };
    w.add(chunk(0, 1));
    for (int64_t f = 1; f < F; f += 4) w.add(chunk(f, 4));
    EXPECT_EQ(w.frames(), F);
    EXPECT_TRUE(listing(dir).size() == 1 && listing(dir)[0] != "stream.mp4") << "only a temporary before finish()";
    w.finish();
  }
  EXPECT_EQ(listing(dir), std::vector<std::string>{"stream.mp4"});
  io::DecodedVideo got = io::read_video(path);
  ASSERT_EQ(got.frames.shape(), (Shape{F, H, W, 3}));
  for (int64_t f = 0; f < F; ++f)
    EXPECT_LT(mean_abs(got.frames.data<uint8_t>() + f * H * W * 3, W, ref.data<uint8_t>() + f * H * W * 3, W, H, W), 4.0)
        << "frame " << f;
  // Streaming encodes what writing the whole tensor encodes. (Bit-identical when run alone; after
  // other encodes in the same process x264 was seen to code a few B-frames differently from the
  // same input, so the comparison allows encoder-sized differences.)
  io::write_video(dir + "/whole.mp4", video, o);
  io::DecodedVideo whole = io::read_video(dir + "/whole.mp4");
  ASSERT_EQ(whole.frames.shape(), got.frames.shape());
  for (int64_t f = 0; f < F; ++f)
    EXPECT_LT(mean_abs(got.frames.data<uint8_t>() + f * H * W * 3, W, whole.frames.data<uint8_t>() + f * H * W * 3, W,
                       H, W), 1.0)
        << "frame " << f;
  fs::remove(dir + "/whole.mp4");

  // Abandoned writers leave nothing, for files and folders alike.
  for (std::string p : {dir + "/abandoned.mp4", dir + "/abandoned/"}) {
    io::VideoWriter w(p, W, H, o);
    w.add(ref[0]);
    w.add(ref.slice(1, 3));
  }
  EXPECT_EQ(listing(dir), std::vector<std::string>{"stream.mp4"});

  // Misuse is refused with a clear error.
  io::VideoWriter w(dir + "/x.mp4", W, H, o);
  expect_error([&] { w.add(Tensor::zeros({H, W + 2, 3}, DType::U8)); }, ErrorKind::InvalidArgument, {"50x32", "48x32"});
  expect_error([&] { w.finish(); }, ErrorKind::InvalidArgument, {"no frames"});
  w.add(ref[2]);
  w.finish();
  expect_error([&] { w.add(ref[2]); }, ErrorKind::InvalidArgument, {"after finish"});
  EXPECT_EQ(io::probe_video(dir + "/x.mp4").frames, 1);
  expect_error([&] { io::VideoWriter bad(dir + "/y.mp4", 0, H, o); }, ErrorKind::InvalidArgument, {"0x32"});
  EXPECT_EQ(listing(dir), (std::vector<std::string>{"stream.mp4", "x.mp4"}));
}

#else

TEST(Video, Mp4NeedsFfmpeg) {
  std::string dir = test::temp_dir();
  expect_error([&] { io::write_video(dir + "/a.mp4", moving_pattern(1, 8, 8)); }, ErrorKind::Unsupported, {"FFmpeg"});
  EXPECT_TRUE(listing(dir).empty());
}

#endif

TEST(Video, FrameFolder) {
  std::string dir = test::temp_dir();
  const int64_t F = 5, H = 24, W = 40;
  Tensor video = moving_pattern(F, H, W);
  Tensor ref = io::video_to_frames(video);
  for (std::string path : {dir + "/frames/", dir + "/plainname"}) {
    io::write_video(path, video);
    std::string folder = path.back() == '/' ? path.substr(0, path.size() - 1) : path;
    std::vector<std::string> want;
    for (int f = 0; f < F; ++f) want.push_back("frame_0000" + std::to_string(f) + ".png");
    ASSERT_EQ(listing(folder), want);
    for (int64_t f = 0; f < F; ++f) {
      Tensor img = io::read_image(folder + "/" + want[f]);
      ASSERT_EQ(img.shape(), (Shape{H, W, 3}));
      EXPECT_EQ(std::memcmp(img.data<uint8_t>(), ref.data<uint8_t>() + f * H * W * 3, img.nbytes()), 0)
          << "PNG frames are exact: frame " << f;
    }
  }
  EXPECT_EQ(listing(dir), (std::vector<std::string>{"frames", "plainname"})) << "temporary folders left";

  // Rewriting with fewer frames replaces the old frames entirely.
  io::write_video(dir + "/frames/", moving_pattern(2, 8, 8));
  EXPECT_EQ(listing(dir + "/frames"), (std::vector<std::string>{"frame_00000.png", "frame_00001.png"}));
  EXPECT_EQ(io::read_image(dir + "/frames/frame_00001.png").shape(), (Shape{8, 8, 3}));

  // A folder holding anything else is not touched.
  { std::ofstream(dir + "/plainname/notes.txt") << "mine"; }
  expect_error([&] { io::write_video(dir + "/plainname", video); }, ErrorKind::Io, {"notes.txt"});
  EXPECT_EQ(listing(dir + "/plainname").size(), static_cast<size_t>(F + 1));
  // A file where the folder should be.
  { std::ofstream(dir + "/file") << "x"; }
  expect_error([&] { io::write_video(dir + "/file/", video); }, ErrorKind::Io, {"not a folder"});
  expect_error([&] { io::write_video(dir + "/missing/frames/", video); }, ErrorKind::Io, {"does not exist"});
  EXPECT_EQ(listing(dir), (std::vector<std::string>{"file", "frames", "plainname"}));
}
