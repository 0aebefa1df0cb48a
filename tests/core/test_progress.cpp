// Progress: timing arithmetic (time per step excluding warm-up, ETA), the terminal output in both
// modes, throttling, stage records and the summary, with a fake clock.
#include <fcntl.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "core/progress.h"
#include "testutil.h"

using namespace x2v;

namespace {

// Captures what a TerminalProgress writes.
struct Capture {
  char* buf = nullptr;
  size_t size = 0;
  std::FILE* f = open_memstream(&buf, &size);
  ~Capture() {
    std::fclose(f);
    std::free(buf);
  }
  std::string text() {
    std::fflush(f);
    return std::string(buf, size);
  }
};

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

}  // namespace

TEST(Progress, StepTimeExcludesWarmUpAndEtaFollows) {
  double t = 100;
  std::vector<ProgressEvent> ev;
  CallbackProgress p([&](const ProgressEvent& e) { ev.push_back(e); }, [&] { return t; });
  p.stage_begin("denoise", 4);
  t = 103;  // first step: 3 s (warm-up)
  p.step(1, 4);
  t = 104;
  p.step(2, 4);
  t = 105;
  p.step(3, 4);
  t = 106;
  p.step(4, 4);
  p.stage_end();
  ASSERT_EQ(ev.size(), 6u);
  EXPECT_EQ(ev[0].kind, ProgressEvent::StageBegin);
  EXPECT_EQ(ev[0].stage, "denoise");
  EXPECT_EQ(ev[0].total, 4);
  // After one step only the whole elapsed time is known.
  EXPECT_DOUBLE_EQ(ev[1].step_s, 3.0);
  EXPECT_DOUBLE_EQ(ev[1].eta_s, 9.0);
  // From the second step on, 1 s per step measured after the first.
  EXPECT_DOUBLE_EQ(ev[2].step_s, 1.0);
  EXPECT_DOUBLE_EQ(ev[2].eta_s, 2.0);
  EXPECT_DOUBLE_EQ(ev[3].eta_s, 1.0);
  EXPECT_DOUBLE_EQ(ev[4].eta_s, 0.0);
  EXPECT_DOUBLE_EQ(ev[4].elapsed_s, 6.0);
  EXPECT_EQ(ev[5].kind, ProgressEvent::StageEnd);
  EXPECT_DOUBLE_EQ(ev[5].elapsed_s, 6.0);
  EXPECT_EQ(ev[5].done, 4);
  // A stage without steps has no ETA.
  p.stage_begin("decode");
  EXPECT_EQ(ev.back().eta_s, -1);
}

TEST(Progress, RecordsNestAndSummaryTotals) {
  double t = 0;
  ProgressTracker p([&] { return t; });
  {
    ProgressStage gen(&p, "generate");
    {
      ProgressStage enc(&p, "text encoder");
      t += 2;
    }
    {
      ProgressStage den(&p, "denoise", 10);
      for (int i = 1; i <= 10; ++i) {
        t += 1.5;
        den.step(i);
      }
    }
    t += 0.5;
  }
  {
    ProgressStage vae(&p, "vae decode");
    t += 4;
  }
  auto rs = p.records();
  ASSERT_EQ(rs.size(), 4u);
  EXPECT_EQ(rs[0].name, "generate");
  EXPECT_EQ(rs[0].depth, 0);
  EXPECT_DOUBLE_EQ(rs[0].seconds, 17.5);
  EXPECT_EQ(rs[1].name, "text encoder");
  EXPECT_EQ(rs[1].depth, 1);
  EXPECT_DOUBLE_EQ(rs[1].seconds, 2.0);
  EXPECT_EQ(rs[2].steps, 10);
  EXPECT_DOUBLE_EQ(rs[2].seconds, 15.0);
  EXPECT_EQ(rs[3].depth, 0);
  for (const auto& r : rs) EXPECT_TRUE(r.finished) << r.name;
  std::string s = p.summary();
  // Total counts only top-level stages: 17.5 + 4, not the nested ones again.
  EXPECT_TRUE(has(s, "total")) << s;
  EXPECT_TRUE(has(s, "21.50 s")) << s;
  EXPECT_TRUE(has(s, "    denoise")) << s;  // indented under generate
  EXPECT_TRUE(has(s, "(10 steps, 1.50 s/step)")) << s;
  EXPECT_TRUE(has(s, "peak memory: host ")) << s;
}

TEST(Progress, StageEndsWhenAnExceptionLeaves) {
  double t = 0;
  ProgressTracker p([&] { return t; });
  try {
    ProgressStage st(&p, "load", 3);
    st.step(1);
    t = 1;
    throw std::runtime_error("bad file");
  } catch (const std::runtime_error&) {
  }
  auto rs = p.records();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_TRUE(rs[0].finished);
  EXPECT_EQ(rs[0].steps, 1);
  // Unbalanced calls are ignored, not crashes; a null Progress is allowed.
  p.stage_end();
  p.step(1, 2);
  ProgressStage none(nullptr, "x", 2);
  none.step(1);
  no_progress().stage_begin("x", 1);
  no_progress().stage_end();
  // A stage still running shows as unfinished with its time so far.
  p.stage_begin("still", 0);
  t = 5;
  rs = p.records();
  EXPECT_FALSE(rs[1].finished);
  EXPECT_DOUBLE_EQ(rs[1].seconds, 4.0);
  EXPECT_TRUE(has(p.summary(), "(unfinished)"));
}

TEST(Progress, PlainLinesWhenNotATerminal) {
  Capture cap;
  double t = 0;
  TerminalProgress p(cap.f, /*tty=*/false, [&] { return t; });
  p.stage_begin("load weights");
  t = 2;
  p.stage_end();
  p.stage_begin("denoise", 50);
  for (int i = 1; i <= 50; ++i) {
    t += 0.25;  // 4 steps per second: a line at most once per second
    p.step(i, 50);
  }
  p.stage_end();
  std::string out = cap.text();
  EXPECT_FALSE(has(out, "\r")) << "no carriage returns in logs";
  EXPECT_FALSE(has(out, "\x1b")) << "no escape codes in logs";
  EXPECT_TRUE(has(out, "load weights ...\n")) << out;
  EXPECT_TRUE(has(out, "load weights done in 2.00 s\n")) << out;
  EXPECT_TRUE(has(out, "1/50  0.25 s/step  ETA 0:12\n")) << out;  // 49 steps x 0.25 s = 12.25 s
  EXPECT_TRUE(has(out, "50/50")) << out;
  EXPECT_TRUE(has(out, "denoise done in 12.50 s (50 steps, 0.25 s/step)\n")) << out;
  size_t step_lines = count(out, "/50");
  EXPECT_GE(step_lines, 12u);
  EXPECT_LE(step_lines, 14u) << "throttled to about one line per second:\n" << out;
  EXPECT_TRUE(has(out, "[########################] 50/50")) << out;
}

TEST(Progress, RedrawsOneLineOnATerminal) {
  Capture cap;
  double t = 0;
  TerminalProgress p(cap.f, /*tty=*/true, [&] { return t; });
  p.stage_begin("denoise", 8);
  for (int i = 1; i <= 8; ++i) {
    t += 2;
    p.step(i, 8);
  }
  p.stage_end();
  p.stage_begin("vae decode");
  t += 30;
  p.stage_end();
  p.print_summary();
  std::string out = cap.text();
  // Each redraw returns to the line start and clears it; only finished stages end a line.
  EXPECT_GE(count(out, "\r\x1b[K"), 9u);
  std::string before_summary = out.substr(0, out.find("timings:"));
  EXPECT_EQ(count(before_summary, "\n"), 2u) << before_summary;
  EXPECT_TRUE(has(out, "[############............] 4/8  2.00 s/step  ETA 0:08")) << out;
  EXPECT_TRUE(has(out, "vae decode done in 30.00 s\n")) << out;
  EXPECT_TRUE(has(out, "timings:")) << out;
}

TEST(Progress, FastStepsShowARateAndAreThrottled) {
  Capture cap;
  double t = 0;
  TerminalProgress p(cap.f, /*tty=*/true, [&] { return t; });
  p.stage_begin("load", 1000);
  for (int i = 1; i <= 1000; ++i) {
    t += 0.001;  // a second in all: about 10 redraws plus the last
    p.step(i, 1000);
  }
  p.stage_end();
  std::string out = cap.text();
  size_t draws = count(out, "/1000");
  EXPECT_GE(draws, 9u);
  EXPECT_LE(draws, 12u) << out;
  EXPECT_TRUE(has(out, "1000.0 steps/s")) << out;
}

TEST(Progress, Formatting) {
  EXPECT_EQ(format_duration(0.5), "0.50 s");
  EXPECT_EQ(format_duration(59.994), "59.99 s");
  EXPECT_EQ(format_duration(125), "2:05");
  EXPECT_EQ(format_duration(3725), "1:02:05");
  EXPECT_EQ(format_bytes(512ll << 20), "512 MiB");
  EXPECT_EQ(format_bytes(3ll << 30), "3.00 GiB");
  EXPECT_EQ(format_bytes(-1), "?");
}

TEST(Progress, PeakMemory) {
  int64_t before = host_peak_rss_bytes();
  EXPECT_GT(before, 0);
  // Touch 64 MiB more than has ever been resident: the peak must grow by about that much.
  const size_t n = (64u << 20) + static_cast<size_t>(before);
  char* p = static_cast<char*>(std::malloc(n));
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, n);
  asm volatile("" : : "r"(p) : "memory");  // keep the compiler from eliding the unused buffer
  int64_t after = host_peak_rss_bytes();
  std::free(p);
  EXPECT_GE(after, before + (60ll << 20));

  EXPECT_EQ(device_peak_memory_bytes(), -1);
  ProgressTracker tr;
  EXPECT_FALSE(has(tr.summary(), "device"));
  set_device_peak_memory_hook([] { return int64_t{3} << 29; });
  EXPECT_EQ(device_peak_memory_bytes(), int64_t{3} << 29);
  EXPECT_TRUE(has(tr.summary(), ", device 1.50 GiB")) << tr.summary();
  set_device_peak_memory_hook(nullptr);
  EXPECT_EQ(device_peak_memory_bytes(), -1);
}

TEST(Progress, ConcurrentReportsAreSafe) {
  ProgressTracker p;
  p.stage_begin("parallel", 4000);
  std::vector<std::thread> th;
  for (int k = 0; k < 4; ++k)
    th.emplace_back([&p, k] {
      for (int i = 1; i <= 1000; ++i) p.step(k * 1000 + i, 4000);
    });
  for (auto& x : th) x.join();
  p.stage_end();
  auto rs = p.records();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_GE(rs[0].steps, 1000);
  EXPECT_TRUE(rs[0].finished);
}

TEST(Progress, DetectsATerminalAndFitsItsWidth) {
  int master = -1, slave = -1;
  struct winsize ws {};
  ws.ws_col = 40;
  ws.ws_row = 10;
  if (openpty(&master, &slave, nullptr, nullptr, &ws) != 0) GTEST_SKIP() << "no pseudo-terminal here";
  std::FILE* f = fdopen(slave, "w");
  ASSERT_NE(f, nullptr);
  {
    TerminalProgress p(f);  // must find out by itself that f is a terminal 40 columns wide
    p.stage_begin("a stage with a rather long name", 100);
    p.step(50, 100);
    p.stage_end();
  }
  std::fclose(f);
  fcntl(master, F_SETFL, O_NONBLOCK);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(master, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(master);
  ASSERT_TRUE(has(out, "\r\x1b[K")) << "a terminal gets redrawn lines: " << out;
  // Every redrawn (live) segment fits in 39 columns; the permanent "done" line may be longer.
  size_t live = 0;
  for (size_t p = out.find("\x1b[K"); p != std::string::npos; p = out.find("\x1b[K", p + 1)) {
    size_t end = out.find_first_of("\r\n", p + 3);
    std::string seg = out.substr(p + 3, end == std::string::npos ? std::string::npos : end - p - 3);
    if (has(seg, "done in")) continue;
    ++live;
    EXPECT_LE(seg.size(), 39u) << seg;
  }
  EXPECT_GE(live, 2u) << out;
}
