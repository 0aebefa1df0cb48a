// Subcommands register themselves here (one file per subcommand in tools/x2v/), so main.cpp
// never changes when a command is added.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace x2v::cli {

struct Command {
  std::string name;
  std::string help;
  // Adds options to `sub` and returns the action to run once the command line has been parsed.
  std::function<std::function<int()>(CLI::App& sub)> setup;
};

std::vector<Command>& commands();

struct Register {
  explicit Register(Command c) { commands().push_back(std::move(c)); }
};

}  // namespace x2v::cli
