// Checkpoint-name variants of the Wan networks, mapped in one place.
//
// The models ask for tensors by their official names (the Wan-AI reference state dicts). A file
// published under other names — a ComfyUI single file with a `model.diffusion_model.` prefix, a
// diffusers `transformer/` folder — is read through a renaming view, so model code never sees the
// variants.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "io/weights.h"
#include "models/wan/detect.h"

namespace x2v::models::wan {

// diffusers `WanTransformer3DModel` name → official `WanModel` name (wan-spec §8.3). Names the
// table does not know are returned unchanged, so a stray tensor stays visible (and is reported as
// unexpected by the loader) instead of vanishing.
std::string dit_name_from_diffusers(const std::string& name);

// A view of `store` under the official DiT names, whatever layout `detect` found: a name prefix is
// stripped (tensors without it are hidden: they belong to other networks of an all-in-one file),
// diffusers names are translated. Returns `store` itself for an official file.
std::shared_ptr<io::WeightStore> dit_official_names(std::shared_ptr<io::WeightStore> store, const Layout& layout);

}  // namespace x2v::models::wan
