#include <cstdio>
#include <exception>
#include <map>

#include "api/status.h"
#include "command.h"
#include "core/error.h"

namespace x2v::cli {
std::vector<Command>& commands() {
  static std::vector<Command> c;
  return c;
}
}  // namespace x2v::cli

int main(int argc, char** argv) {
  CLI::App app{"x2v: video diffusion inference (Wan2.1 / Wan2.2)"};
  app.set_version_flag("--version", std::string("x2v ") + X2V_VERSION);
  app.require_subcommand(1);
  std::map<CLI::App*, std::function<int()>> actions;
  std::vector<std::pair<CLI::App*, const x2v::cli::Command*>> subs;
  for (const auto& c : x2v::cli::commands()) subs.emplace_back(app.add_subcommand(c.name, c.help), &c);
  for (auto& [sub, c] : subs) actions[sub] = c->setup(*sub);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    for (auto& [sub, act] : actions)
      if (sub->parsed()) return act();
  } catch (const x2v::Error& e) {
    std::fprintf(stderr, "x2v: error (%s): %s\n", x2v::error_kind_name(e.kind()), e.what());
    return x2v::api::status_code(e.kind());  // the C API's codes
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "x2v: error: out of host memory\n");
    return 7;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "x2v: internal error: %s\n", e.what());
    return 70;
  }
  return 0;
}
