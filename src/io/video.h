// Video output: an H.264 MP4 (FFmpeg libraries, libx264, yuv420p) or a folder of PNG frames, and
// a reader for MP4s (tests, tools).
//
// Outputs appear whole or not at all: an MP4 is encoded under a temporary name beside the target
// and renamed at the end; a frame folder is filled under a temporary name and renamed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace x2v::io {

struct VideoOptions {
  double fps = 16;  // Wan2.1 writes 16 fps, Wan2.2 TI2V-5B 24; fractional rates (29.97) are kept exact
  // x264 constant rate factor (0 lossless .. 51 worst). 18 is visually lossless; the reference's
  // imageio quality=8 amounts to crf 10 (imageio-ffmpeg: int((1 - 8/10) * 51)), bigger files.
  int crf = 18;
  std::string preset = "medium";  // x264 speed/size trade-off: ultrafast .. veryslow
  int png_level = 3;              // zlib level of frame-folder PNGs
  int threads = 0;                // encoder threads; 0 lets x264 choose (about 1.5 per core)
};

enum class VideoTarget { File, FrameFolder };
// How write_video treats `path`: a frame folder when it ends with '/', names an existing folder or
// has no extension; a video file for .mp4 (also .mov, .mkv: other H.264 containers); any other
// extension is an InvalidArgument error (so that "out.gif" is not silently a folder).
VideoTarget video_target(const std::string& path);

// `video` is f32/bf16/f16 [3, F, H, W] in [-1, 1] (pixels converted exactly as the reference:
// see unit_to_u8 in io/image.h) or u8 frames [F, H, W, 3]. Video files need even sizes (4:2:0
// chroma): an odd width or height is padded by repeating the last column / row. Frame folders
// hold frame_00000.png, frame_00001.png, ... at the original size; an existing folder is replaced
// only if it holds nothing but such frames.
void write_video(const std::string& path, const Tensor& video, const VideoOptions& opts = {});
// The same from u8 frames [H, W, 3], all of one size.
void write_video(const std::string& path, const std::vector<Tensor>& frames, const VideoOptions& opts = {});

// Writes a video frame by frame (as the VAE decodes it, say) without holding all of it, with the
// formats and guarantees of write_video: nothing appears at `path` before finish(), and a writer
// destroyed before finish() leaves nothing behind. Bad options and paths fail in the constructor.
class VideoWriter {
 public:
  VideoWriter(const std::string& path, int64_t width, int64_t height, const VideoOptions& opts = {});
  ~VideoWriter();
  VideoWriter(const VideoWriter&) = delete;
  VideoWriter& operator=(const VideoWriter&) = delete;

  // u8 [H, W, 3] or [n, H, W, 3]; float [3, H, W] or [3, n, H, W] in [-1, 1] (any device).
  void add(const Tensor& frames);
  // Flushes the encoder and moves the output into place; InvalidArgument if no frame was added.
  void finish();
  int64_t frames() const { return count_; }

  struct Sink;

 private:
  std::string path_;
  int64_t width_, height_, count_ = 0;
  std::unique_ptr<Sink> sink_;
  std::vector<uint8_t> buf_;
};

// True when this build can write video files (FFmpeg with an H.264 encoder).
bool can_write_video_files();

struct VideoInfo {
  int64_t frames = 0;  // from the container; counted from the packets if it does not say
  int width = 0, height = 0;
  int fps_num = 0, fps_den = 1;  // average frame rate as a fraction
  std::string codec;             // "h264"
  std::string pixel_format;      // "yuv420p"
  double fps() const { return fps_den ? static_cast<double>(fps_num) / fps_den : 0.0; }
};

// Reads the container only. NotFound / BadFile (naming the file) / Unsupported without FFmpeg.
VideoInfo probe_video(const std::string& path);

struct DecodedVideo {
  VideoInfo info;  // info.frames = decoded frame count
  Tensor frames;   // u8 [F, H, W, 3], converted with the colour matrix and range the stream declares
};
// Decodes at most `max_frames` frames (InvalidArgument if the video has more).
DecodedVideo read_video(const std::string& path, int64_t max_frames = 10000);

}  // namespace x2v::io
