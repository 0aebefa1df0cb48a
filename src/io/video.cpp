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
    fail(ErrorKind::InvalidArgument, "write_video: expected a float video [3, F, H, W] or u8 frames [F, H, W, 3], got ",
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

void check_source(const FrameSource& s, const std::string& path) {
  if (s.count < 1) fail(ErrorKind::InvalidArgument, "cannot write ", path, ": the video has no frames");
  if (s.h < 1 || s.w < 1 || s.h > kMaxSide || s.w > kMaxSide)
    fail(ErrorKind::InvalidArgument, "cannot write ", path, ": frame size ", s.w, "x", s.h, " is outside 1..",
         kMaxSide);
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

void write_frame_folder(const std::string& path, const FrameSource& src, const VideoOptions& opts) {
  std::string clean = path;
  while (clean.size() > 1 && clean.back() == '/') clean.pop_back();
  fs::path target(clean);
  fs::path parent = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  std::error_code ec;
  if (!fs::is_directory(parent, ec))
    fail(ErrorKind::Io, "cannot write frames to ", path, ": folder ", parent.string(), " does not exist");
  const bool exists = fs::exists(target, ec);
  if (exists) {
    if (!fs::is_directory(target, ec))
      fail(ErrorKind::Io, "cannot write frames to ", path, ": it exists and is not a folder");
    for (const auto& e : fs::directory_iterator(target, ec))
      if (!is_frame_name(e.path().filename().string()))
        fail(ErrorKind::Io, "cannot write frames to ", path, ": the folder holds other files (",
             e.path().filename().string(), "); choose a new or empty folder");
  }

  TempTree tmp{unique_sibling(target, "tmp")};
  if (!fs::create_directory(tmp.path, ec) || ec)
    fail(ErrorKind::Io, "cannot write frames to ", path, ": cannot create ", tmp.path, ": ", ec.message());
  Tensor frame = Tensor::empty({src.h, src.w, 3}, DType::U8);
  char name[32];
  for (int64_t t = 0; t < src.count; ++t) {
    src.get(t, frame.data<uint8_t>());
    std::snprintf(name, sizeof name, "/frame_%05lld.png", static_cast<long long>(t));
    write_file(tmp.path + name, encode_png(frame, opts.png_level));
  }

  // rename() replaces only an empty folder: move an old frame folder aside first.
  TempTree old;
  if (exists) {
    std::string aside = unique_sibling(target, "old");
    if (std::rename(target.c_str(), aside.c_str()) != 0)
      fail(ErrorKind::Io, "cannot replace ", path, ": ", std::strerror(errno));
    old.path = aside;
  }
  if (std::rename(tmp.path.c_str(), target.c_str()) != 0) {
    int e = errno;
    if (!old.path.empty() && std::rename(old.path.c_str(), target.c_str()) == 0) old.path.clear();
    fail(ErrorKind::Io, "cannot move the finished frames to ", path, ": ", std::strerror(e));
  }
  tmp.path.clear();
}

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

void encode_file(const std::string& path, const FrameSource& src, const VideoOptions& opts) {
  quiet_ffmpeg();
  const std::string ext = lower_ext(path);
  const char* format = ext == ".mkv" ? "matroska" : ext == ".mov" ? "mov" : "mp4";
  const AVRational fps = fps_fraction(opts.fps, path);
  if (opts.crf < 0 || opts.crf > 51)
    fail(ErrorKind::InvalidArgument, "cannot write ", path, ": crf ", opts.crf, " is not in 0..51");
  if (!known_x264_preset(opts.preset))
    fail(ErrorKind::InvalidArgument, "cannot write ", path, ": x264 preset '", opts.preset,
         "' is unknown (ultrafast, superfast, veryfast, faster, fast, medium, slow, slower, veryslow)");
  const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
  if (!codec)
    fail(ErrorKind::Unsupported, "cannot write ", path, ": this FFmpeg has no libx264 encoder; install a"
         " libavcodec built with it (Debian's is), or write PNG frames (a path ending in '/')");
  // 4:2:0 chroma covers 2x2 pixels: odd sizes are padded by repeating the last column / row.
  const int w = static_cast<int>(src.w), h = static_cast<int>(src.h);
  const int ew = w + (w & 1), eh = h + (h & 1);

  AtomicPath out(path);  // declared first: removed last, after FFmpeg closed it
  FormatOut fo;
  int e = avformat_alloc_output_context2(&fo.oc, nullptr, format, out.temp_path().c_str());
  if (e < 0 || !fo.oc) fail(ErrorKind::Internal, "FFmpeg has no ", format, " muxer: ", av_detail(e));
  AVStream* st = avformat_new_stream(fo.oc, nullptr);
  CodecCtx cc;
  cc.c = avcodec_alloc_context3(codec);
  if (!st || !cc.c) fail(ErrorKind::OutOfMemory, "cannot set up the video encoder for ", path);
  AVCodecContext* c = cc.c;
  c->width = ew;
  c->height = eh;
  c->pix_fmt = AV_PIX_FMT_YUV420P;
  c->time_base = av_inv_q(fps);
  c->framerate = fps;
  c->sample_aspect_ratio = {1, 1};
  // BT.709, limited range: what players assume for untagged HD video, and tagged so they need not guess.
  c->colorspace = AVCOL_SPC_BT709;
  c->color_primaries = AVCOL_PRI_BT709;
  c->color_trc = AVCOL_TRC_BT709;
  c->color_range = AVCOL_RANGE_MPEG;
  if (fo.oc->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  av_opt_set(c->priv_data, "preset", opts.preset.c_str(), 0);
  av_opt_set_double(c->priv_data, "crf", opts.crf, 0);
  if ((e = avcodec_open2(c, codec, nullptr)) < 0)
    fail(ErrorKind::Internal, "cannot open the H.264 encoder for ", ew, "x", eh, ": ", av_detail(e));
  if ((e = avcodec_parameters_from_context(st->codecpar, c)) < 0)
    fail(ErrorKind::Internal, "FFmpeg: ", av_detail(e));
  st->time_base = c->time_base;
  st->avg_frame_rate = fps;

  if ((e = avio_open(&fo.oc->pb, out.temp_path().c_str(), AVIO_FLAG_WRITE)) < 0)
    fail(ErrorKind::Io, "cannot write ", path, ": ", av_detail(e));
  AVDictionary* mux_opts = nullptr;
  // Index first, so that browsers can start playing before the whole file has arrived.
  if (std::strcmp(format, "matroska") != 0) av_dict_set(&mux_opts, "movflags", "+faststart", 0);
  e = avformat_write_header(fo.oc, &mux_opts);
  av_dict_free(&mux_opts);
  if (e < 0) fail(ErrorKind::Io, "cannot write ", path, ": ", av_detail(e));

  Sws sws;
  sws.s = sws_getContext(ew, eh, AV_PIX_FMT_RGB24, ew, eh, AV_PIX_FMT_YUV420P,
                         SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr);
  if (!sws.s) fail(ErrorKind::Internal, "cannot set up the RGB to YUV conversion");
  const int* bt709 = sws_getCoefficients(SWS_CS_ITU709);
  sws_setColorspaceDetails(sws.s, bt709, 1, bt709, 0, 0, 1 << 16, 1 << 16);

  FramePtr frame;
  PacketPtr pkt;
  if (!frame.f || !pkt.p) fail(ErrorKind::OutOfMemory, "cannot allocate video frames");
  frame.f->format = c->pix_fmt;
  frame.f->width = ew;
  frame.f->height = eh;
  if ((e = av_frame_get_buffer(frame.f, 0)) < 0) fail(ErrorKind::OutOfMemory, "video frame: ", av_detail(e));

  auto drain = [&](bool flushing) {
    for (;;) {
      int r = avcodec_receive_packet(c, pkt.p);
      if (r == AVERROR(EAGAIN) || (flushing && r == AVERROR_EOF)) return;
      if (r < 0) fail(ErrorKind::Internal, "H.264 encoding failed: ", av_detail(r));
      if (pkt.p->duration == 0) pkt.p->duration = 1;  // constant rate: one tick of 1/fps
      av_packet_rescale_ts(pkt.p, c->time_base, st->time_base);
      pkt.p->stream_index = st->index;
      r = av_interleaved_write_frame(fo.oc, pkt.p);
      if (r < 0) fail(ErrorKind::Io, "writing ", path, " failed: ", av_detail(r), " (disk full?)");
    }
  };

  std::vector<uint8_t> rgb(static_cast<size_t>(ew) * eh * 3);
  std::vector<uint8_t> tight(ew == w ? 0 : static_cast<size_t>(w) * h * 3);
  for (int64_t t = 0; t < src.count; ++t) {
    // The source frame fills the top-left w x h of the (possibly padded) buffer.
    if (ew == w) {
      src.get(t, rgb.data());
    } else {
      src.get(t, tight.data());
      for (int y = 0; y < h; ++y) {
        std::memcpy(&rgb[static_cast<size_t>(y) * ew * 3], &tight[static_cast<size_t>(y) * w * 3],
                    static_cast<size_t>(w) * 3);
        std::memcpy(&rgb[(static_cast<size_t>(y) * ew + w) * 3], &tight[(static_cast<size_t>(y) * w + w - 1) * 3], 3);
      }
    }
    if (eh != h)
      std::memcpy(&rgb[static_cast<size_t>(h) * ew * 3], &rgb[static_cast<size_t>(h - 1) * ew * 3],
                  static_cast<size_t>(ew) * 3);
    if ((e = av_frame_make_writable(frame.f)) < 0) fail(ErrorKind::OutOfMemory, "video frame: ", av_detail(e));
    const uint8_t* in[1] = {rgb.data()};
    const int in_stride[1] = {ew * 3};
    sws_scale(sws.s, in, in_stride, 0, eh, frame.f->data, frame.f->linesize);
    frame.f->pts = t;
    if ((e = avcodec_send_frame(c, frame.f)) < 0) fail(ErrorKind::Internal, "H.264 encoding failed: ", av_detail(e));
    drain(false);
  }
  if ((e = avcodec_send_frame(c, nullptr)) < 0) fail(ErrorKind::Internal, "H.264 encoding failed: ", av_detail(e));
  drain(true);
  if ((e = av_write_trailer(fo.oc)) < 0) fail(ErrorKind::Io, "writing ", path, " failed: ", av_detail(e));
  if ((e = avio_closep(&fo.oc->pb)) < 0) fail(ErrorKind::Io, "writing ", path, " failed: ", av_detail(e));
  out.commit();
}

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
void write_source(const std::string& path, const FrameSource& src, const VideoOptions& opts) {
  check_source(src, path);
  if (video_target(path) == VideoTarget::FrameFolder) return write_frame_folder(path, src, opts);
#ifdef X2V_HAVE_FFMPEG
  encode_file(path, src, opts);
#else
  (void)opts;
  fail(ErrorKind::Unsupported, "cannot write ", path, ": this x2v was built without the FFmpeg libraries;"
       " write PNG frames instead (a path ending in '/'), or rebuild with libavcodec-dev, libavformat-dev,"
       " libswscale-dev installed");
#endif
}
}  // namespace

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
      pixels.resize(pixels.size() + frame_bytes);
      uint8_t* dst[1] = {pixels.data() + count * frame_bytes};
      const int dst_stride[1] = {w * 3};
      sws_scale(sws.s, frame.f->data, frame.f->linesize, 0, h, dst, dst_stride);
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
