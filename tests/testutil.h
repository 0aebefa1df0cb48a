// Shared helpers for tests: fixture paths, error metrics, temporary folders, running the CLI.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/tensor.h"

namespace x2v::test {

// ../shared/fixtures (or $X2V_FIXTURES); `sub` like "wan21/dit_t2v.safetensors".
std::string fixture(const std::string& sub);
// Path of the built x2v binary.
std::string x2v_binary();
// A fresh temporary folder for this test, removed at exit.
std::string temp_dir();

double rel_l2(const std::vector<float>& got, const std::vector<float>& ref);
double cosine(const std::vector<float>& a, const std::vector<float>& b);
// Fails the test (with the metric) unless shapes match, all values finite and rel L2 <= tol.
void expect_close(const Tensor& got, const Tensor& ref, double tol, const std::string& what);

// A tensor of uniform random values in [lo, hi) from a fixed seed.
Tensor random_tensor(const Shape& shape, uint64_t seed, float lo = -1.f, float hi = 1.f);

// Runs `fn`, which must throw an x2v::Error of `kind` whose message contains every one of `words`.
template <class F>
void expect_error(F&& fn, ErrorKind kind, const std::vector<std::string>& words) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected " << error_kind_name(kind);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    for (const auto& w : words)
      EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << "message lacks '" << w << "': " << e.what();
  }
}

// Run a shell command; returns its exit status and (if given) its combined output.
int run(const std::string& cmd, std::string* output = nullptr);

}  // namespace x2v::test
