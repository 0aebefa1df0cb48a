#include "io/video.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdarg>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <random>

#include "io/atomic_file.h"
#include "io/image.h"

#ifdef X2V_HAVE_FFMPEG
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libavutil/rational.h>
#include <libswscale/swscale.h>
}
#endif

namespace x2v::io {

namespace fs = std::filesystem;

// A destination for u8 frames [h, w, 3], one at a time. Destroyed without finish(), it leaves
// nothing behind.
struct VideoWriter::Sink {
  virtual ~Sink() = default;
  virtual void put(const uint8_t* rgb) = 0;
  virtual void finish() = 0;
};

namespace {

constexpr int64_t kMaxSide = 16384;

// Frames as the writers consume them: frame t written as u8 [h, w, 3] into `out`.
struct FrameSource {
  int64_t count = 0, h = 0, w = 0;
  std::function<void(int64_t t, uint8_t* out)> get;
};

FrameSource frames_of(const Tensor& video) {
  FrameSource src;
  if (video.defined() && video.dtype() == DType::U8 && video.dim() == 4 && video.size(3) == 3) {
    Tensor v = video.is_cpu() ? video : video.to(Device::CPU);
    src.count = v.size(0), src.h = v.size(1), src.w = v.size(2);
    const size_t frame_bytes = static_cast<size_t>(src.h * src.w * 3);
    src.get = [v, frame_bytes](int64_t t, uint8_t* out) {
      std::memcpy(out, v.data<uint8_t>() + t * frame_bytes, frame_bytes);
    };
  } else if (video.defined() && dtype_is_float(video.dtype()) && video.dim() == 4 && video.size(0) == 3) {
    Tensor v = video.is_cpu() ? video : video.to(Device::CPU);
    if (v.dtype() != DType::F32) v = v.to(DType::F32);
    src.count = v.size(1), src.h = v.size(2), src.w = v.size(3);
    src.get = [v](int64_t t, uint8_t* out) {
      const int64_t hw = v.size(2) * v.size(3), plane = v.size(1) * hw;
      const float* s = v.data<float>() + t * hw;
      for (int64_t i = 0; i < hw; ++i)
        for (int c = 0; c < 3; ++c) out[i * 3 + c] = unit_to_u8(s[c * plane + i]);
    };
  } else {
    fail(ErrorKind::InvalidArgument, "video frames: expected a float video [3, F, H, W] or u8 frames [F, H, W, 3], got ",
         video.defined() ? video.desc() : std::string("nothing"));
  }
  return src;
}

FrameSource frames_of(const std::vector<Tensor>& frames) {
  FrameSource src;
  src.count = static_cast<int64_t>(frames.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    const Tensor& f = frames[i];
    if (!f.defined() || f.dtype() != DType::U8 || f.dim() != 3 || f.size(2) != 3)
      fail(ErrorKind::InvalidArgument, "write_video: frame ", i, " is ", f.defined() ? f.desc() : std::string("nothing"),
           "; expected u8 [H, W, 3]");
    if (i == 0) {
      src.h = f.size(0), src.w = f.size(1);
    } else if (f.size(0) != src.h || f.size(1) != src.w) {
      fail(ErrorKind::InvalidArgument, "write_video: frame ", i, " is ", f.size(1), "x", f.size(0), ", frame 0 is ",
           src.w, "x", src.h, "; all frames must have one size");
    }
  }
  std::vector<Tensor> host;
  for (const Tensor& f : frames) host.push_back(f.is_cpu() ? f : f.to(Device::CPU));
  src.get = [host](int64_t t, uint8_t* out) {
    std::memcpy(out, host[static_cast<size_t>(t)].data<uint8_t>(), host[static_cast<size_t>(t)].nbytes());
  };
  return src;
}

std::string lower_ext(const std::string& path) {
  std::string e = fs::path(path).extension().string();
  for (char& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

// ------------------------------------------------------------------------------ frame folders

bool is_frame_name(const std::string& n) {
  // frame_<digits>.png
  if (n.size() < 11 || n.rfind("frame_", 0) != 0 || n.compare(n.size() - 4, 4, ".png") != 0) return false;
  for (size_t i = 6; i + 4 < n.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(n[i]))) return false;
  return true;
}

std::string unique_sibling(const fs::path& target, const char* tag) {
  std::random_device rd;
  char suffix[48];
  std::snprintf(suffix, sizeof suffix, ".%s-%d-%08x", tag, static_cast<int>(getpid()), rd());
  return (target.parent_path() / ("." + target.filename().string() + suffix)).string();
}

// Removes a folder tree on destruction unless released.
struct TempTree {
  std::string path;
  ~TempTree() {
    if (!path.empty()) {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  }
};

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) fail(ErrorKind::Io, "cannot write ", path, ": ", std::strerror(errno));
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  int err = errno;
  if (std::fclose(f) != 0 && ok) ok = false, err = errno;
  if (!ok) fail(ErrorKind::Io, "writing ", path, " failed: ", std::strerror(err), " (disk full?)");
}

using FrameSink = VideoWriter::Sink;

class FolderSink final : public FrameSink {
 public:
  FolderSink(const std::string& path, int64_t w, int64_t h, const VideoOptions& opts)
      : path_(path), frame_(Tensor::empty({h, w, 3}, DType::U8)), level_(opts.png_level) {
    std::string clean = path;
    while (clean.size() > 1 && clean.back() == '/') clean.pop_back();
    target_ = clean;
    fs::path parent = target_.parent_path().empty() ? fs::path(".") : target_.parent_path();
    std::error_code ec;
    if (!fs::is_directory(parent, ec))
      fail(ErrorKind::Io, "cannot write frames to ", path, ": folder ", parent.string(), " does not exist");
    if (fs::exists(target_, ec)) {
      if (!fs::is_directory(target_, ec))
        fail(ErrorKind::Io, "cannot write frames to ", path, ": it exists and is not a folder");
      for (const auto& e : fs::directory_iterator(target_, ec))
        if (!is_frame_name(e.path().filename().string()))
          fail(ErrorKind::Io, "cannot write frames to ", path, ": the folder holds other files (",
               e.path().filename().string(), "); choose a new or empty folder");
    }
    if (level_ < 0 || level_ > 9) fail(ErrorKind::InvalidArgument, "PNG compression level ", level_, " is not in 0..9");
    std::string tmp = unique_sibling(target_, "tmp");
    if (!fs::create_directory(tmp, ec) || ec)
      fail(ErrorKind::Io, "cannot write frames to ", path, ": cannot create ", tmp, ": ", ec.message());
    tmp_.path = tmp;
  }

  void put(const uint8_t* rgb) override {
    std::memcpy(frame_.data<uint8_t>(), rgb, frame_.nbytes());
    char name[32];
    std::snprintf(name, sizeof name, "/frame_%05lld.png", static_cast<long long>(count_++));
    write_file(tmp_.path + name, encode_png(frame_, level_));
  }

  void finish() override {
    // rename() replaces only an empty folder: move an old frame folder aside first.
    std::error_code ec;
    TempTree old;
    if (fs::exists(target_, ec)) {
      std::string aside = unique_sibling(target_, "old");
      if (std::rename(target_.c_str(), aside.c_str()) != 0)
        fail(ErrorKind::Io, "cannot replace ", path_, ": ", std::strerror(errno));
      old.path = aside;
    }
    if (std::rename(tmp_.path.c_str(), target_.c_str()) != 0) {
      int e = errno;
      if (!old.path.empty() && std::rename(old.path.c_str(), target_.c_str()) == 0) old.path.clear();
      fail(ErrorKind::Io, "cannot move the finished frames to ", path_, ": ", std::strerror(e));
    }
    tmp_.path.clear();
  }

 private:
  std::string path_;
  fs::path target_;
  TempTree tmp_;
  Tensor frame_;
  int level_;
  int64_t count_ = 0;
};

// ------------------------------------------------------------------------------------- FFmpeg

#ifdef X2V_HAVE_FFMPEG

std::string av_error(int e) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(e, buf, sizeof buf);
  return buf;
}

// FFmpeg logs to stderr; libx264 adds statistics for every file. x2v reports errors itself, so the
// log is kept instead: its last error line (often the only precise one, e.g. "invalid preset") is
// appended to x2v's message.
// (Encoder and decoder threads log too, hence one guarded string rather than a thread-local one.)
std::mutex g_log_mutex;
std::string g_last_log;

void on_av_log(void*, int level, const char* fmt, va_list args) {
  if (level > AV_LOG_ERROR) return;
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, args);
  std::string s = buf;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (s.empty()) return;
  std::lock_guard<std::mutex> lock(g_log_mutex);
  g_last_log = s;
}

void quiet_ffmpeg() {
  static const bool once = [] {
    av_log_set_callback(on_av_log);
    return true;
  }();
  (void)once;
  std::lock_guard<std::mutex> lock(g_log_mutex);
  g_last_log.clear();
}

// An FFmpeg error code in words, with FFmpeg's last logged error when there is one.
std::string av_detail(int e) {
  std::string s = av_error(e);
  std::lock_guard<std::mutex> lock(g_log_mutex);
  if (!g_last_log.empty()) s += " (" + g_last_log + ")";
  return s;
}

bool known_x264_preset(const std::string& p) {
  for (const char* k : {"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                        "veryslow", "placebo"})
    if (p == k) return true;
  return false;
}

struct FormatOut {
  AVFormatContext* oc = nullptr;
  ~FormatOut() {
    if (oc) {
      if (oc->pb) avio_closep(&oc->pb);
      avformat_free_context(oc);
    }
  }
};
struct CodecCtx {
  AVCodecContext* c = nullptr;
  ~CodecCtx() { avcodec_free_context(&c); }
};
struct FramePtr {
  AVFrame* f = av_frame_alloc();
  ~FramePtr() { av_frame_free(&f); }
};
struct PacketPtr {
  AVPacket* p = av_packet_alloc();
  ~PacketPtr() { av_packet_free(&p); }
};
struct Sws {
  SwsContext* s = nullptr;
  ~Sws() { sws_freeContext(s); }
};

AVRational fps_fraction(double fps, const std::string& path) {
  if (!(fps > 0) || fps > 1000)
    fail(ErrorKind::InvalidArgument, "cannot write ", path, ": frame rate ", fps, " is not in (0, 1000]");
  AVRational r = av_d2q(fps, 1001000);
  if (r.num <= 0 || r.den <= 0) fail(ErrorKind::InvalidArgument, "cannot write ", path, ": frame rate ", fps);
  return r;
}

class FfmpegSink final : public FrameSink {
 public:
  FfmpegSink(const std::string& path, int64_t width, int64_t height, const VideoOptions& opts)
      : path_(path), out_(check_args(path, opts)), w_(static_cast<int>(width)), h_(static_cast<int>(height)) {
    const std::string ext = lower_ext(path);
    const char* format = ext == ".mkv" ? "matroska" : ext == ".mov" ? "mov" : "mp4";
    const AVRational fps = fps_fraction(opts.fps, path);
    const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
    if (!codec)
      fail(ErrorKind::Unsupported, "cannot write ", path, ": this FFmpeg has no libx264 encoder; install a"
           " libavcodec built with it (Debian's is), or write PNG frames (a path ending in '/')");
    // 4:2:0 chroma covers 2x2 pixels: odd sizes are padded by repeating the last column / row.
    ew_ = w_ + (w_ & 1);
    eh_ = h_ + (h_ & 1);

    int e = avformat_alloc_output_context2(&fo_.oc, nullptr, format, out_.temp_path().c_str());
    if (e < 0 || !fo_.oc) fail(ErrorKind::Internal, "FFmpeg has no ", format, " muxer: ", av_error(e));
    st_ = avformat_new_stream(fo_.oc, nullptr);
    cc_.c = avcodec_alloc_context3(codec);
    if (!st_ || !cc_.c) fail(ErrorKind::OutOfMemory, "cannot set up the video encoder for ", path);
    AVCodecContext* c = cc_.c;
    c->width = ew_;
    c->height = eh_;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->time_base = av_inv_q(fps);
    c->framerate = fps;
    c->sample_aspect_ratio = {1, 1};
    // BT.709, limited range: what players assume for untagged HD video, and tagged so they need not guess.
    c->colorspace = AVCOL_SPC_BT709;
    c->color_primaries = AVCOL_PRI_BT709;
    c->color_trc = AVCOL_TRC_BT709;
    c->color_range = AVCOL_RANGE_MPEG;
    if (fo_.oc->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    c->thread_count = opts.threads;
    av_opt_set(c->priv_data, "preset", opts.preset.c_str(), 0);
    av_opt_set_double(c->priv_data, "crf", opts.crf, 0);
    if ((e = avcodec_open2(c, codec, nullptr)) < 0)
      fail(ErrorKind::Internal, "cannot open the H.264 encoder for ", ew_, "x", eh_, ": ", av_detail(e));
    if ((e = avcodec_parameters_from_context(st_->codecpar, c)) < 0)
      fail(ErrorKind::Internal, "FFmpeg: ", av_detail(e));
    st_->time_base = c->time_base;
    st_->avg_frame_rate = fps;

    if ((e = avio_open(&fo_.oc->pb, out_.temp_path().c_str(), AVIO_FLAG_WRITE)) < 0)
      fail(ErrorKind::Io, "cannot write ", path, ": ", av_detail(e));
    AVDictionary* mux_opts = nullptr;
    // Index first, so that browsers can start playing before the whole file has arrived.
    if (std::strcmp(format, "matroska") != 0) av_dict_set(&mux_opts, "movflags", "+faststart", 0);
    e = avformat_write_header(fo_.oc, &mux_opts);
    av_dict_free(&mux_opts);
    if (e < 0) fail(ErrorKind::Io, "cannot write ", path, ": ", av_detail(e));

    sws_.s = sws_getContext(ew_, eh_, AV_PIX_FMT_RGB24, ew_, eh_, AV_PIX_FMT_YUV420P,
                            SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr);
    if (!sws_.s) fail(ErrorKind::Internal, "cannot set up the RGB to YUV conversion");
    const int* bt709 = sws_getCoefficients(SWS_CS_ITU709);
    sws_setColorspaceDetails(sws_.s, bt709, 1, bt709, 0, 0, 1 << 16, 1 << 16);

    if (!frame_.f || !pkt_.p) fail(ErrorKind::OutOfMemory, "cannot allocate video frames");
    frame_.f->format = c->pix_fmt;
    frame_.f->width = ew_;
    frame_.f->height = eh_;
    if ((e = av_frame_get_buffer(frame_.f, 0)) < 0) fail(ErrorKind::OutOfMemory, "video frame: ", av_detail(e));
    // swscale never writes the row padding: zeroed, so that nothing uninitialised reaches x264.
    for (int i = 0; i < 3; ++i)
      std::memset(frame_.f->data[i], 0, static_cast<size_t>(frame_.f->linesize[i]) * (i ? (eh_ + 1) / 2 : eh_));
    // swscale's SIMD reads past the end of input rows: frames are staged in a buffer whose rows are
    // 64-byte aligned and padded with zeros (else heap garbage leaks into the output, which then
    // differs from run to run).
    stride_ = (ew_ * 3 + 63) / 64 * 64;
    staged_ = Tensor::zeros({static_cast<int64_t>(stride_) * eh_ + 64}, DType::U8);
  }

  void put(const uint8_t* rgb) override {
    const size_t row = static_cast<size_t>(w_) * 3, srow = static_cast<size_t>(stride_);
    uint8_t* st = staged_.data<uint8_t>();
    for (int y = 0; y < h_; ++y) {
      std::memcpy(st + y * srow, rgb + y * row, row);
      // Odd sizes: the padding column / row repeats the last one.
      if (ew_ != w_) std::memcpy(st + y * srow + row, rgb + y * row + row - 3, 3);
    }
    if (eh_ != h_) std::memcpy(st + h_ * srow, st + (h_ - 1) * srow, srow);
    int e = av_frame_make_writable(frame_.f);
    if (e < 0) fail(ErrorKind::OutOfMemory, "video frame: ", av_detail(e));
    const uint8_t* planes[1] = {st};
    const int stride[1] = {stride_};
    sws_scale(sws_.s, planes, stride, 0, eh_, frame_.f->data, frame_.f->linesize);
    frame_.f->pts = count_++;
    if ((e = avcodec_send_frame(cc_.c, frame_.f)) < 0)
      fail(ErrorKind::Internal, "H.264 encoding failed: ", av_detail(e));
    drain(false);
  }

  void finish() override {
    int e = avcodec_send_frame(cc_.c, nullptr);
    if (e < 0) fail(ErrorKind::Internal, "H.264 encoding failed: ", av_detail(e));
    drain(true);
    if ((e = av_write_trailer(fo_.oc)) < 0) fail(ErrorKind::Io, "writing ", path_, " failed: ", av_detail(e));
    if ((e = avio_closep(&fo_.oc->pb)) < 0) fail(ErrorKind::Io, "writing ", path_, " failed: ", av_detail(e));
    out_.commit();
  }

 private:
  // Runs before anything is created, so that a bad request leaves no temporary file.
  static std::string check_args(const std::string& path, const VideoOptions& opts) {
    quiet_ffmpeg();
    fps_fraction(opts.fps, path);
    if (opts.crf < 0 || opts.crf > 51)
      fail(ErrorKind::InvalidArgument, "cannot write ", path, ": crf ", opts.crf, " is not in 0..51");
    if (opts.threads < 0 || opts.threads > 256)
      fail(ErrorKind::InvalidArgument, "cannot write ", path, ": ", opts.threads, " encoder threads is not in 0..256");
    if (!known_x264_preset(opts.preset))
      fail(ErrorKind::InvalidArgument, "cannot write ", path, ": x264 preset '", opts.preset,
           "' is unknown (ultrafast, superfast, veryfast, faster, fast, medium, slow, slower, veryslow)");
    return path;
  }

  void drain(bool flushing) {
    for (;;) {
      int r = avcodec_receive_packet(cc_.c, pkt_.p);
      if (r == AVERROR(EAGAIN) || (flushing && r == AVERROR_EOF)) return;
      if (r < 0) fail(ErrorKind::Internal, "H.264 encoding failed: ", av_detail(r));
      if (pkt_.p->duration == 0) pkt_.p->duration = 1;  // constant rate: one tick of 1/fps
      av_packet_rescale_ts(pkt_.p, cc_.c->time_base, st_->time_base);
      pkt_.p->stream_index = st_->index;
      r = av_interleaved_write_frame(fo_.oc, pkt_.p);
      if (r < 0) fail(ErrorKind::Io, "writing ", path_, " failed: ", av_detail(r), " (disk full?)");
    }
  }

  std::string path_;
  AtomicPath out_;  // before the FFmpeg objects: destroyed after them, once FFmpeg closed the file
  FormatOut fo_;
  CodecCtx cc_;
  Sws sws_;
  FramePtr frame_;
  PacketPtr pkt_;
  AVStream* st_ = nullptr;
  int w_, h_, ew_ = 0, eh_ = 0;
  int stride_ = 0;
  Tensor staged_;
  int64_t count_ = 0;
};

// ------------------------------------------------------------------------------------ reading

struct FormatIn {
  AVFormatContext* ic = nullptr;
  ~FormatIn() { avformat_close_input(&ic); }
};

// Opens `path` and finds its video stream; the returned index is valid in `in.ic`.
int open_video(const std::string& path, FormatIn& in) {
  quiet_ffmpeg();
  std::error_code ec;
  if (!fs::exists(path, ec)) fail(ErrorKind::NotFound, "cannot open ", path, ": no such file");
  int e = avformat_open_input(&in.ic, path.c_str(), nullptr, nullptr);
  if (e < 0) fail(ErrorKind::BadFile, path, " is not a readable video file: ", av_detail(e));
  if ((e = avformat_find_stream_info(in.ic, nullptr)) < 0)
    fail(ErrorKind::BadFile, path, ": cannot read the stream information: ", av_detail(e));
  int s = av_find_best_stream(in.ic, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (s < 0) fail(ErrorKind::BadFile, path, " has no video stream");
  const AVCodecParameters* par = in.ic->streams[s]->codecpar;
  if (par->width < 1 || par->height < 1 || par->width > kMaxSide || par->height > kMaxSide)
    fail(ErrorKind::BadFile, path, ": video size ", par->width, "x", par->height, " is outside 1..", kMaxSide);
  return s;
}

VideoInfo info_of(const AVFormatContext* ic, int s) {
  const AVStream* st = ic->streams[s];
  VideoInfo v;
  v.width = st->codecpar->width;
  v.height = st->codecpar->height;
  AVRational r = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
  v.fps_num = r.num;
  v.fps_den = r.den > 0 ? r.den : 1;
  v.frames = st->nb_frames;
  v.codec = avcodec_get_name(st->codecpar->codec_id);
  const char* pf = av_get_pix_fmt_name(static_cast<AVPixelFormat>(st->codecpar->format));
  v.pixel_format = pf ? pf : "unknown";
  return v;
}

#endif  // X2V_HAVE_FFMPEG

}  // namespace

VideoTarget video_target(const std::string& path) {
  if (path.empty()) fail(ErrorKind::InvalidArgument, "no output path given");
  if (path.back() == '/') return VideoTarget::FrameFolder;
  std::error_code ec;
  if (fs::is_directory(path, ec)) return VideoTarget::FrameFolder;
  const std::string ext = lower_ext(path);
  if (ext.empty()) return VideoTarget::FrameFolder;
  if (ext == ".mp4" || ext == ".mov" || ext == ".mkv") return VideoTarget::File;
  fail(ErrorKind::InvalidArgument, "cannot write a video to ", path, ": '", ext,
       "' is not a video format x2v writes; use .mp4, or a folder path ending in '/' for PNG frames");
}

bool can_write_video_files() {
#ifdef X2V_HAVE_FFMPEG
  return avcodec_find_encoder_by_name("libx264") != nullptr;
#else
  return false;
#endif
}

namespace {
std::unique_ptr<FrameSink> open_sink(const std::string& path, int64_t w, int64_t h, const VideoOptions& opts) {
  if (w < 1 || h < 1 || w > kMaxSide || h > kMaxSide)
    fail(ErrorKind::InvalidArgument, "cannot write ", path, ": frame size ", w, "x", h, " is outside 1..", kMaxSide);
  if (video_target(path) == VideoTarget::FrameFolder) return std::make_unique<FolderSink>(path, w, h, opts);
#ifdef X2V_HAVE_FFMPEG
  return std::make_unique<FfmpegSink>(path, w, h, opts);
#else
  (void)opts;
  fail(ErrorKind::Unsupported, "cannot write ", path, ": this x2v was built without the FFmpeg libraries;"
       " write PNG frames instead (a path ending in '/'), or rebuild with libavcodec-dev, libavformat-dev,"
       " libswscale-dev installed");
#endif
}

void write_source(const std::string& path, const FrameSource& src, const VideoOptions& opts) {
  if (src.count < 1) fail(ErrorKind::InvalidArgument, "cannot write ", path, ": the video has no frames");
  std::unique_ptr<FrameSink> sink = open_sink(path, src.w, src.h, opts);
  std::vector<uint8_t> rgb(static_cast<size_t>(src.w * src.h * 3));
  for (int64_t t = 0; t < src.count; ++t) {
    src.get(t, rgb.data());
    sink->put(rgb.data());
  }
  sink->finish();
}
}  // namespace

VideoWriter::VideoWriter(const std::string& path, int64_t width, int64_t height, const VideoOptions& opts)
    : path_(path), width_(width), height_(height), sink_(open_sink(path, width, height, opts)) {}

VideoWriter::~VideoWriter() = default;

void VideoWriter::add(const Tensor& frames) {
  if (!sink_) fail(ErrorKind::InvalidArgument, "video ", path_, ": frames added after finish()");
  Tensor t = frames;
  if (t.defined() && t.dim() == 3)
    t = t.dtype() == DType::U8 ? t.reshape({1, t.size(0), t.size(1), t.size(2)})
                               : t.reshape({t.size(0), 1, t.size(1), t.size(2)});
  FrameSource src = frames_of(t);
  if (src.w != width_ || src.h != height_)
    fail(ErrorKind::InvalidArgument, "video ", path_, ": frames of ", src.w, "x", src.h, " added to a ", width_, "x",
         height_, " video");
  buf_.resize(static_cast<size_t>(width_ * height_ * 3));
  for (int64_t i = 0; i < src.count; ++i) {
    src.get(i, buf_.data());
    sink_->put(buf_.data());
    ++count_;
  }
}

void VideoWriter::finish() {
  if (!sink_) fail(ErrorKind::InvalidArgument, "video ", path_, ": finish() called twice");
  if (count_ == 0) fail(ErrorKind::InvalidArgument, "cannot write ", path_, ": the video has no frames");
  sink_->finish();
  sink_.reset();
}

void write_video(const std::string& path, const Tensor& video, const VideoOptions& opts) {
  write_source(path, frames_of(video), opts);
}

void write_video(const std::string& path, const std::vector<Tensor>& frames, const VideoOptions& opts) {
  write_source(path, frames_of(frames), opts);
}

#ifdef X2V_HAVE_FFMPEG

VideoInfo probe_video(const std::string& path) {
  FormatIn in;
  int s = open_video(path, in);
  VideoInfo v = info_of(in.ic, s);
  if (v.frames <= 0) {
    // Containers without a sample table (raw streams, some mkv): count the packets.
    PacketPtr pkt;
    v.frames = 0;
    while (av_read_frame(in.ic, pkt.p) >= 0) {
      if (pkt.p->stream_index == s) ++v.frames;
      av_packet_unref(pkt.p);
    }
  }
  return v;
}

DecodedVideo read_video(const std::string& path, int64_t max_frames) {
  FormatIn in;
  int s = open_video(path, in);
  DecodedVideo out;
  out.info = info_of(in.ic, s);
  const AVCodecParameters* par = in.ic->streams[s]->codecpar;
  const AVCodec* dec = avcodec_find_decoder(par->codec_id);
  if (!dec) fail(ErrorKind::Unsupported, path, ": no decoder for ", avcodec_get_name(par->codec_id), " video");
  CodecCtx cc;
  cc.c = avcodec_alloc_context3(dec);
  if (!cc.c) fail(ErrorKind::OutOfMemory, "cannot set up the video decoder for ", path);
  int e = avcodec_parameters_to_context(cc.c, par);
  if (e < 0) fail(ErrorKind::BadFile, path, ": ", av_detail(e));
  cc.c->thread_count = 2;
  if ((e = avcodec_open2(cc.c, dec, nullptr)) < 0) fail(ErrorKind::BadFile, path, ": cannot open the decoder: ", av_detail(e));

  const int w = par->width, h = par->height;
  const size_t frame_bytes = static_cast<size_t>(w) * h * 3;
  const int stride = (w * 3 + 63) / 64 * 64;
  Tensor staged = Tensor::zeros({static_cast<int64_t>(stride) * h + 64}, DType::U8);
  std::vector<uint8_t> pixels;
  int64_t count = 0;
  Sws sws;
  FramePtr frame;
  PacketPtr pkt;
  if (!frame.f || !pkt.p) fail(ErrorKind::OutOfMemory, "cannot allocate video frames");

  auto receive = [&]() {
    for (;;) {
      int r = avcodec_receive_frame(cc.c, frame.f);
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
      if (r < 0) fail(ErrorKind::BadFile, path, ": frame ", count, " cannot be decoded: ", av_detail(r));
      if (frame.f->width != w || frame.f->height != h)
        fail(ErrorKind::Unsupported, path, ": the frame size changes mid-stream (", frame.f->width, "x",
             frame.f->height, " after ", w, "x", h, ")");
      if (count >= max_frames)
        fail(ErrorKind::InvalidArgument, path, " has more than ", max_frames, " frames");
      if (!sws.s) {
        sws.s = sws_getContext(w, h, static_cast<AVPixelFormat>(frame.f->format), w, h, AV_PIX_FMT_RGB24,
                               SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr);
        if (!sws.s) fail(ErrorKind::Unsupported, path, ": cannot convert its pixel format to RGB");
        int spc = frame.f->colorspace == AVCOL_SPC_BT709 ? SWS_CS_ITU709
                  : frame.f->colorspace == AVCOL_SPC_BT2020_NCL ? SWS_CS_BT2020
                                                                : SWS_CS_ITU601;
        const int* coef = sws_getCoefficients(spc);
        sws_setColorspaceDetails(sws.s, coef, frame.f->color_range == AVCOL_RANGE_JPEG ? 1 : 0, coef, 1, 0,
                                 1 << 16, 1 << 16);
      }
      // Converted into aligned, padded rows (swscale's SIMD may write past a row's end), then packed.
      uint8_t* dst[1] = {staged.data<uint8_t>()};
      const int dst_stride[1] = {stride};
      sws_scale(sws.s, frame.f->data, frame.f->linesize, 0, h, dst, dst_stride);
      pixels.resize(pixels.size() + frame_bytes);
      for (int y = 0; y < h; ++y)
        std::memcpy(pixels.data() + count * frame_bytes + static_cast<size_t>(y) * w * 3,
                    staged.data<uint8_t>() + static_cast<size_t>(y) * stride, static_cast<size_t>(w) * 3);
      ++count;
      av_frame_unref(frame.f);
    }
  };

  while ((e = av_read_frame(in.ic, pkt.p)) >= 0) {
    if (pkt.p->stream_index == s) {
      int r = avcodec_send_packet(cc.c, pkt.p);
      av_packet_unref(pkt.p);
      if (r < 0 && r != AVERROR(EAGAIN)) fail(ErrorKind::BadFile, path, ": corrupt video data: ", av_detail(r));
      receive();
    } else {
      av_packet_unref(pkt.p);
    }
  }
  if (e != AVERROR_EOF) fail(ErrorKind::BadFile, path, ": reading failed: ", av_detail(e));
  avcodec_send_packet(cc.c, nullptr);
  receive();

  // The container's sample table says how many frames there are: fewer means the data was cut.
  if (out.info.frames > 0 && count < out.info.frames)
    fail(ErrorKind::BadFile, path, " is truncated: ", count, " of its ", out.info.frames,
         " frames could be decoded; the copy or the encode did not finish");
  out.info.frames = count;
  out.frames = Tensor::empty({count, h, w, 3}, DType::U8);
  if (count) std::memcpy(out.frames.data<uint8_t>(), pixels.data(), pixels.size());
  return out;
}

#else

VideoInfo probe_video(const std::string& path) {
  fail(ErrorKind::Unsupported, "cannot read ", path, ": this x2v was built without the FFmpeg libraries");
}

DecodedVideo read_video(const std::string& path, int64_t) {
  fail(ErrorKind::Unsupported, "cannot read ", path, ": this x2v was built without the FFmpeg libraries");
}

#endif

}  // namespace x2v::io
