// x2v info FILE: what a weight file holds, and what x2v makes of it.
#include <cstdio>
#include <map>

#include "command.h"
#include "io/weights.h"
#include "models/wan/detect.h"

namespace x2v::cli {
namespace {

int run_info(const std::string& path, bool all) {
  auto store = io::open_weights(path);
  std::map<std::string, int64_t> by_dtype;
  int64_t params = 0;
  const auto names = store->names();
  std::printf("file: %s\nformat: %s\ntensors: %zu\n", path.c_str(), store->format().c_str(), names.size());
  size_t shown = 0;
  for (const auto& n : names) {
    io::TensorMeta m = store->meta(n);
    int64_t k = shape_numel(m.shape);
    params += k;
    by_dtype[dtype_name(m.dtype)] += k;
    if (all || shown < 40) {
      std::printf("  %-64s %-10s %s\n", n.c_str(), dtype_name(m.dtype), shape_str(m.shape).c_str());
      ++shown;
    }
  }
  if (shown < names.size()) std::printf("  ... %zu more (--all lists every tensor)\n", names.size() - shown);
  std::printf("parameters: %lld (", static_cast<long long>(params));
  bool first = true;
  for (const auto& [d, k] : by_dtype) {
    std::printf("%s%s %lld", first ? "" : ", ", d.c_str(), static_cast<long long>(k));
    first = false;
  }
  std::printf(")\n");
  for (const auto& line : models::wan::describe(*store)) std::printf("%s\n", line.c_str());
  return 0;
}

Register reg{{"info", "Show the tensors, dtypes and detected model of a weight file (.safetensors, .index.json, .pth)",
              [](CLI::App& sub) {
                auto path = std::make_shared<std::string>();
                auto all = std::make_shared<bool>(false);
                sub.add_option("file", *path, "weight file")->required();
                sub.add_flag("--all", *all, "list every tensor");
                return [path, all] { return run_info(*path, *all); };
              }}};

}  // namespace
}  // namespace x2v::cli
