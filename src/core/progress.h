// Progress of long work. The pipeline reports stages ("text encoder", "denoise", "vae decode")
// and the steps inside them through a Progress; the CLI draws a bar, the server streams events, a
// library user passes nothing (no_progress()). Timing bookkeeping (time per step, ETA, a record of
// every stage for the summary) is shared by all implementations in ProgressTracker.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace x2v {

class Progress {
 public:
  virtual ~Progress() = default;
  // A stage begins; stages nest (a stage begun inside another ends before it). `steps` > 0 says
  // that step(i, steps) will follow.
  virtual void stage_begin(std::string_view name, int64_t steps = 0) = 0;
  // `done` of `total` steps of the innermost stage are finished (1 after the first step).
  virtual void step(int64_t done, int64_t total) = 0;
  // The innermost stage ends. Must not throw: it runs while exceptions unwind (ProgressStage).
  virtual void stage_end() noexcept = 0;
};

// A Progress that ignores everything.
Progress& no_progress();

// Begins a stage and ends it when the scope ends, also when an exception leaves the scope.
// A null Progress is allowed (nothing is reported).
class ProgressStage {
 public:
  ProgressStage(Progress* p, std::string_view name, int64_t steps = 0);
  ~ProgressStage();
  ProgressStage(const ProgressStage&) = delete;
  ProgressStage& operator=(const ProgressStage&) = delete;
  void step(int64_t done) {
    if (p_) p_->step(done, steps_);
  }

 private:
  Progress* p_;
  int64_t steps_;
};

struct ProgressEvent {
  enum Kind { StageBegin, Step, StageEnd } kind;
  std::string stage;
  int depth = 0;          // 0 for a top-level stage
  int64_t done = 0, total = 0;
  double elapsed_s = 0;   // since the stage began
  double step_s = 0;      // mean time per step (0 until known)
  double eta_s = -1;      // estimated time left in the stage; -1 if unknown
};

// Seconds from a monotonic clock; replaceable for tests.
using ProgressClock = std::function<double()>;
double monotonic_seconds();

class ProgressTracker : public Progress {
 public:
  explicit ProgressTracker(ProgressClock clock = monotonic_seconds);

  void stage_begin(std::string_view name, int64_t steps = 0) final;
  void step(int64_t done, int64_t total) final;
  void stage_end() noexcept final;

  struct StageRecord {
    std::string name;
    int depth = 0;
    double seconds = 0;  // of a finished stage; time so far for one still running
    int64_t steps = 0;   // steps reported done
    bool finished = false;
  };
  // Every stage begun so far, in the order they began.
  std::vector<StageRecord> records() const;
  // A table of stage times (top-level total) and peak memory (host RSS; device when a backend
  // registered its hook), one line each, ending in a newline.
  std::string summary() const;

 protected:
  // Called with the tracker's lock held: implementations must not call back into the tracker.
  virtual void on_event(const ProgressEvent&) {}
  double now() const { return clock_(); }

 private:
  struct Open {
    size_t record;
    double begin;
    double first_step_time = -1;  // when the first step report arrived
    int64_t first_step_done = 0;
  };
  ProgressEvent event(ProgressEvent::Kind kind, const Open& o, int64_t done, int64_t total) const;

  ProgressClock clock_;
  mutable std::mutex mu_;
  std::vector<StageRecord> records_;
  std::vector<Open> open_;
};

// Forwards every event to a function (the server turns them into a stream).
class CallbackProgress : public ProgressTracker {
 public:
  explicit CallbackProgress(std::function<void(const ProgressEvent&)> fn, ProgressClock clock = monotonic_seconds)
      : ProgressTracker(std::move(clock)), fn_(std::move(fn)) {}

 protected:
  void on_event(const ProgressEvent& e) override {
    if (fn_) fn_(e);
  }

 private:
  std::function<void(const ProgressEvent&)> fn_;
};

// The CLI's display. On a terminal, one line redrawn in place (stage, bar, step i/n, time per
// step, ETA) and a permanent line per finished stage; otherwise (logs, pipes) plain lines, at most
// one per second per stage plus the last step.
class TerminalProgress : public ProgressTracker {
 public:
  explicit TerminalProgress(std::FILE* out = stderr);
  TerminalProgress(std::FILE* out, bool tty, ProgressClock clock = monotonic_seconds);
  // Writes summary() to the output.
  void print_summary();

 protected:
  void on_event(const ProgressEvent& e) override;

 private:
  void emit(const std::string& s);
  std::string fit(std::string line) const;
  std::FILE* out_;
  bool tty_;
  size_t columns_ = 1000;  // terminal width, when it can be asked
  bool live_line_ = false;  // a redrawable line is on screen
  double last_draw_ = -1e300;
};

// "3.21 s" below a minute, "2:05" (m:ss) or "1:02:05" above.
std::string format_duration(double seconds);
// "512 MiB", "12.34 GiB".
std::string format_bytes(int64_t bytes);

// Peak resident set size of this process so far (getrusage), in bytes.
int64_t host_peak_rss_bytes();
// The device backend registers a function giving its peak allocated bytes; nullptr removes it.
void set_device_peak_memory_hook(std::function<int64_t()> hook);
// -1 when no backend registered one.
int64_t device_peak_memory_bytes();

}  // namespace x2v
