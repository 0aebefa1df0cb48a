#include "testutil.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>

namespace x2v::test {

std::string fixture(const std::string& sub) {
  const char* env = std::getenv("X2V_FIXTURES");
  std::string base = env && *env ? env : X2V_FIXTURES_DEFAULT;
  return base + "/" + sub;
}

std::string x2v_binary() {
  const char* env = std::getenv("X2V_BINARY");
  return env && *env ? env : X2V_BINARY_DEFAULT;
}

namespace {
struct TempRoot {
  std::string path;
  TempRoot() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "x2v-test-XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    if (!p) std::abort();
    path = p;
  }
  ~TempRoot() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};
}  // namespace

std::string temp_dir() {
  static TempRoot root;
  static int n = 0;
  std::string d = root.path + "/t" + std::to_string(n++);
  std::filesystem::create_directories(d);
  return d;
}

double rel_l2(const std::vector<float>& got, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size() && i < got.size(); ++i) {
    double d = static_cast<double>(got[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(num / (den > 0 ? den : 1e-300));
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb + 1e-300);
}

void expect_close(const Tensor& got, const Tensor& ref, double tol, const std::string& what) {
  ASSERT_TRUE(got.defined()) << what << ": no output";
  ASSERT_EQ(got.shape(), ref.shape()) << what << ": shape " << shape_str(got.shape()) << " vs "
                                      << shape_str(ref.shape());
  auto g = got.to_vector(), r = ref.to_vector();
  for (size_t i = 0; i < g.size(); ++i)
    ASSERT_TRUE(std::isfinite(g[i])) << what << ": non-finite value at " << i;
  double e = rel_l2(g, r);
  EXPECT_LE(e, tol) << what << ": relative L2 error " << e;
}

Tensor random_tensor(const Shape& shape, uint64_t seed, float lo, float hi) {
  Tensor t = Tensor::empty(shape, DType::F32);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = d(rng);
  return t;
}

int run(const std::string& cmd, std::string* output) {
  std::string full = cmd + " 2>&1";
  FILE* f = popen(full.c_str(), "r");
  if (!f) return -1;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  int st = pclose(f);
  if (output) *output = out;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

}  // namespace x2v::test
