#include "core/progress.h"

#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace x2v {

namespace {

class NullProgress final : public Progress {
 public:
  void stage_begin(std::string_view, int64_t) override {}
  void step(int64_t, int64_t) override {}
  void stage_end() noexcept override {}
};

std::mutex g_hook_mu;
std::function<int64_t()> g_device_peak;

std::string printf_string(const char* fmt, double a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, a);
  return buf;
}

// m:ss (or h:mm:ss), for ETAs that tick down.
std::string clock_time(double s) {
  if (!(s >= 0) || s > 1e8) return "?";
  long long t = static_cast<long long>(std::llround(s));
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", t / 60, t % 60);
  return buf;
}

std::string per_step(double s) {
  if (s <= 0) return "";
  // Fast loops read better as a rate.
  if (s < 0.1) return printf_string("%.1f steps/s", 1.0 / s);
  return printf_string("%.2f s/step", s);
}

constexpr int kBarWidth = 24;

std::string bar(int64_t done, int64_t total) {
  int filled = total > 0 ? static_cast<int>(std::min<int64_t>(done, total) * kBarWidth / total) : 0;
  std::string b = "[";
  b.append(static_cast<size_t>(filled), '#');
  b.append(static_cast<size_t>(kBarWidth - filled), '.');
  b += ']';
  return b;
}

}  // namespace

Progress& no_progress() {
  static NullProgress p;
  return p;
}

ProgressStage::ProgressStage(Progress* p, std::string_view name, int64_t steps) : p_(p), steps_(steps) {
  if (p_) p_->stage_begin(name, steps);
}

ProgressStage::~ProgressStage() {
  if (p_) p_->stage_end();
}

double monotonic_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

std::string format_duration(double s) {
  if (!(s >= 0)) return "?";
  if (s < 60) return printf_string("%.2f s", s);
  return clock_time(s);
}

std::string format_bytes(int64_t b) {
  if (b < 0) return "?";
  const double mib = static_cast<double>(b) / (1024.0 * 1024.0);
  if (mib < 1024) return printf_string("%.0f MiB", mib);
  return printf_string("%.2f GiB", mib / 1024.0);
}

int64_t host_peak_rss_bytes() {
  struct rusage ru {};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;  // Linux reports kilobytes
}

void set_device_peak_memory_hook(std::function<int64_t()> hook) {
  std::lock_guard<std::mutex> lock(g_hook_mu);
  g_device_peak = std::move(hook);
}

int64_t device_peak_memory_bytes() {
  std::function<int64_t()> f;
  {
    std::lock_guard<std::mutex> lock(g_hook_mu);
    f = g_device_peak;
  }
  return f ? f() : -1;
}

// ------------------------------------------------------------------------------ tracker

ProgressTracker::ProgressTracker(ProgressClock clock) : clock_(std::move(clock)) {
  if (!clock_) clock_ = monotonic_seconds;
}

ProgressEvent ProgressTracker::event(ProgressEvent::Kind kind, const Open& o, int64_t done, int64_t total) const {
  ProgressEvent e;
  e.kind = kind;
  e.stage = records_[o.record].name;
  e.depth = records_[o.record].depth;
  e.done = done;
  e.total = total;
  const double t = clock_();
  e.elapsed_s = t - o.begin;
  // The first step carries warm-up (allocation, kernel selection, caches): once a second one has
  // arrived, time per step is measured from the first report, not from the stage's beginning.
  if (o.first_step_time >= 0 && done > o.first_step_done)
    e.step_s = (t - o.first_step_time) / static_cast<double>(done - o.first_step_done);
  else if (done > 0)
    e.step_s = e.elapsed_s / static_cast<double>(done);
  if (done > 0 && total > 0) e.eta_s = e.step_s * static_cast<double>(std::max<int64_t>(total - done, 0));
  return e;
}

void ProgressTracker::stage_begin(std::string_view name, int64_t steps) {
  std::lock_guard<std::mutex> lock(mu_);
  StageRecord r;
  r.name = std::string(name);
  r.depth = static_cast<int>(open_.size());
  records_.push_back(std::move(r));
  open_.push_back(Open{records_.size() - 1, clock_()});
  on_event(event(ProgressEvent::StageBegin, open_.back(), 0, steps));
}

void ProgressTracker::step(int64_t done, int64_t total) {
  std::lock_guard<std::mutex> lock(mu_);
  if (open_.empty()) return;  // a step outside any stage: nothing to attribute it to
  Open& o = open_.back();
  ProgressEvent e = event(ProgressEvent::Step, o, done, total);
  if (o.first_step_time < 0) {
    o.first_step_time = clock_();
    o.first_step_done = done;
  }
  records_[o.record].steps = done;
  on_event(e);
}

void ProgressTracker::stage_end() noexcept {
  try {
    std::lock_guard<std::mutex> lock(mu_);
    if (open_.empty()) return;
    Open o = open_.back();
    open_.pop_back();
    StageRecord& r = records_[o.record];
    r.seconds = clock_() - o.begin;
    r.finished = true;
    on_event(event(ProgressEvent::StageEnd, o, r.steps, r.steps));
  } catch (...) {
    // A display that fails (a closed stderr, an allocation) must not turn unwinding into terminate.
  }
}

std::vector<ProgressTracker::StageRecord> ProgressTracker::records() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<StageRecord> out = records_;
  const double t = clock_();
  for (const Open& o : open_) out[o.record].seconds = t - o.begin;
  return out;
}

std::string ProgressTracker::summary() const {
  std::vector<StageRecord> rs = records();
  size_t width = 5;  // "total"
  for (const auto& r : rs) width = std::max(width, r.name.size() + 2 * r.depth);
  std::string s = "timings:\n";
  double total = 0;
  char line[512];
  for (const auto& r : rs) {
    if (r.depth == 0) total += r.seconds;
    std::string label = std::string(2 * r.depth, ' ') + r.name;
    std::string extra;
    if (r.steps > 0) {
      extra = "  (" + std::to_string(r.steps) + " steps, " + per_step(r.seconds / r.steps) + ")";
    }
    if (!r.finished) extra += "  (unfinished)";
    std::snprintf(line, sizeof line, "  %-*s %10s%s\n", static_cast<int>(width), label.c_str(),
                  format_duration(r.seconds).c_str(), extra.c_str());
    s += line;
  }
  std::snprintf(line, sizeof line, "  %-*s %10s\n", static_cast<int>(width), "total", format_duration(total).c_str());
  s += line;
  s += "peak memory: host " + format_bytes(host_peak_rss_bytes()) + " (RSS)";
  int64_t dev = device_peak_memory_bytes();
  if (dev >= 0) s += ", device " + format_bytes(dev);
  s += "\n";
  return s;
}

// ------------------------------------------------------------------------------ terminal

TerminalProgress::TerminalProgress(std::FILE* out)
    : TerminalProgress(out, out && isatty(fileno(out)) != 0, monotonic_seconds) {}

TerminalProgress::TerminalProgress(std::FILE* out, bool tty, ProgressClock clock)
    : ProgressTracker(std::move(clock)), out_(out), tty_(tty) {
  // A live line wider than the terminal wraps, and "\r" then returns only to the start of its
  // last row: the redraws would stack up. Live lines are cut to the width instead.
  struct winsize ws {};
  if (tty_ && out_ && ioctl(fileno(out_), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) columns_ = ws.ws_col;
}

std::string TerminalProgress::fit(std::string line) const {
  if (line.size() >= columns_) line.resize(columns_ - 1);
  return line;
}

void TerminalProgress::emit(const std::string& s) {
  if (!out_) return;
  std::fputs(s.c_str(), out_);
  std::fflush(out_);
}

void TerminalProgress::on_event(const ProgressEvent& e) {
  const std::string indent(2 * e.depth, ' ');
  // Erase the live line before anything permanent is printed over it.
  const char* clear = "\r\x1b[K";
  switch (e.kind) {
    case ProgressEvent::StageBegin:
      last_draw_ = -1e300;
      if (tty_) {
        emit(clear + fit(indent + e.stage + " ..."));
        live_line_ = true;
      } else {
        emit(indent + e.stage + " ...\n");
      }
      return;
    case ProgressEvent::Step: {
      const double t = now();
      const bool last = e.total > 0 && e.done >= e.total;
      // Redraws cost terminal time and log lines: a terminal gets 10 per second, a log 1.
      if (!last && t - last_draw_ < (tty_ ? 0.1 : 1.0)) return;
      last_draw_ = t;
      std::string line = indent + e.stage + " " + bar(e.done, e.total) + " " + std::to_string(e.done) + "/" +
                         std::to_string(e.total);
      if (e.step_s > 0) line += "  " + per_step(e.step_s);
      if (e.eta_s >= 0 && !last) line += "  ETA " + clock_time(e.eta_s);
      if (tty_) {
        emit(clear + fit(line));
        live_line_ = true;
      } else {
        emit(line + "\n");
      }
      return;
    }
    case ProgressEvent::StageEnd: {
      std::string line = indent + e.stage + " done in " + format_duration(e.elapsed_s);
      if (e.done > 0) line += " (" + std::to_string(e.done) + " steps, " + per_step(e.elapsed_s / e.done) + ")";
      emit((tty_ && live_line_ ? clear : "") + line + "\n");
      live_line_ = false;
      return;
    }
  }
}

void TerminalProgress::print_summary() {
  std::string s = summary();
  if (tty_ && live_line_) {
    s = "\r\x1b[K" + s;
    live_line_ = false;
  }
  emit(s);
}

}  // namespace x2v
