// VaeConfig: the `WanVAE_` constructor fields, from JSON and from the weights' shapes.
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "models/wan/vae.h"

namespace x2v::models::wan {

using nlohmann::json;

namespace {

// The published latent statistics (wan-spec §5.3, §5.4), as the reference's Python floats; they are
// rounded to f32 like the reference's torch.tensor(mean, dtype=float32).
const std::vector<double> kMean21 = {-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
                                     0.4134,  -0.0715, 0.5517,  -0.3632, -0.1922, -0.9497, 0.2503, -0.2921};
const std::vector<double> kStd21 = {2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
                                    3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160};
const std::vector<double> kMean22 = {
    -0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174,  0.1838,  0.1557,  -0.1382, 0.0542,  0.2813,  0.0891,
    0.1570,  -0.0098, 0.0375,  -0.1825, -0.2246, -0.1207, -0.0698, 0.5109,  0.2665,  -0.2108, -0.2158, 0.2502,
    -0.2055, -0.0322, 0.1109,  0.1567,  -0.0729, 0.0899,  -0.2799, -0.1230, -0.0313, -0.1649, 0.0117,  0.0723,
    -0.2839, -0.2083, -0.0520, 0.3748,  0.0152,  0.1957,  0.1433,  -0.2944, 0.3573,  -0.0548, -0.1681, -0.0667};
const std::vector<double> kStd22 = {
    0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.4990, 0.4818, 0.5013, 0.8158, 1.0344, 0.5894, 1.0901,
    0.6885, 0.6165, 0.8454, 0.4978, 0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659,
    0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093, 0.5709, 0.6065, 0.6415, 0.4944,
    0.5726, 1.2042, 0.5458, 1.6887, 0.3971, 1.0600, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744};

std::vector<float> to_f32(const std::vector<double>& v) { return {v.begin(), v.end()}; }

[[noreturn]] void bad_field(const std::string& src, const std::string& key, const std::string& want, const json& v) {
  fail(ErrorKind::InvalidArgument, src, ": config field \"", key, "\" must be ", want, ", got ", v.dump());
}
int64_t as_int(const std::string& s, const std::string& k, const json& v) {
  if (!v.is_number_integer()) bad_field(s, k, "an integer", v);
  return v.get<int64_t>();
}
template <class T, class F>
std::vector<T> as_list(const std::string& s, const std::string& k, const json& v, const char* what, F get) {
  if (!v.is_array()) bad_field(s, k, std::string("a list of ") + what, v);
  std::vector<T> out;
  for (const json& e : v) out.push_back(get(e));
  return out;
}

}  // namespace

int64_t VaeConfig::spatial_stride() const {
  int64_t s = int64_t{1} << (dim_mult.size() - 1);
  return version == 22 ? 2 * s : s;
}

int64_t VaeConfig::temporal_stride() const {
  int64_t t = 1;
  for (size_t i = 0; i + 1 < dim_mult.size(); ++i) t *= temperal_downsample[i] ? 2 : 1;
  return t;
}

void VaeConfig::validate(const std::string& source) const {
  auto bad = [&](const auto&... parts) { fail(ErrorKind::InvalidArgument, source, ": VAE config: ", parts...); };
  if (version != 21 && version != 22) bad("version must be 21 or 22");
  if (dim < 1 || z_dim < 1 || decoder_dim() < 1 || num_res_blocks < 1) bad("dim, dec_dim, z_dim and num_res_blocks must be positive");
  if (dim_mult.size() < 2 || dim_mult.size() > 8) bad("dim_mult needs 2 to 8 entries");
  for (int64_t m : dim_mult)
    if (m < 1 || m > 64) bad("dim_mult entries must be in 1..64");
  if (temperal_downsample.size() + 1 < dim_mult.size()) bad("temperal_downsample needs one entry per downsampling level (", dim_mult.size() - 1, ")");
  if (temporal_stride() != 4)
    bad("exactly two temporal downsamples are supported (the reference encodes in chunks of 4 frames)");
  // Wan2.1's decoder halves the channels after each upsampling and feeds them to the next level.
  if (version == 21)
    for (size_t i = 0; i + 1 < dim_mult.size(); ++i)
      if ((dim * dim_mult[dim_mult.size() - 1 - i]) % 2) bad("decoder widths must be even");
  if (version == 22 && !attn_scales.empty()) bad("attn_scales must be empty for the Wan2.2 VAE");
  if (!latent_mean.empty() && static_cast<int64_t>(latent_mean.size()) != z_dim) bad("latent_mean needs z_dim = ", z_dim, " values");
  if (!latent_std.empty() && static_cast<int64_t>(latent_std.size()) != z_dim) bad("latent_std needs z_dim = ", z_dim, " values");
  for (float s : latent_std)
    if (!(s > 0.f) || !std::isfinite(s)) bad("latent_std values must be positive");
}

std::string VaeConfig::summary() const {
  std::ostringstream os;
  os << "Wan" << (version == 21 ? "2.1" : "2.2") << " VAE: dim " << dim;
  if (version == 22) os << ", dec_dim " << decoder_dim();
  os << ", z_dim " << z_dim << ", stride " << temporal_stride() << "x" << spatial_stride() << "x" << spatial_stride();
  return os.str();
}

VaeConfigFields parse_vae_config(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(ErrorKind::InvalidArgument, source, ": not valid JSON (", e.what(), ")");
  }
  if (!j.is_object()) fail(ErrorKind::InvalidArgument, source, ": a VAE config must be a JSON object");
  VaeConfigFields f;
  f.source = source;
  const std::string& s = source;
  auto ints = [&](const std::string& k, const json& v) { return as_list<int64_t>(s, k, v, "integers", [&](const json& e) { return as_int(s, k, e); }); };
  auto floats = [&](const std::string& k, const json& v) {
    return as_list<float>(s, k, v, "numbers", [&](const json& e) {
      if (!e.is_number()) bad_field(s, k, "a list of numbers", v);
      return static_cast<float>(e.get<double>());
    });
  };
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    if (!k.empty() && k[0] == '_') continue;
    // Official constructor names first, then diffusers' AutoencoderKLWan names for the same things.
    if (k == "dim" || k == "base_dim") f.dim = as_int(s, k, v);
    else if (k == "dec_dim" || k == "decoder_base_dim") {
      if (!v.is_null()) f.dec_dim = as_int(s, k, v);
    } else if (k == "z_dim") f.z_dim = as_int(s, k, v);
    else if (k == "num_res_blocks") f.num_res_blocks = as_int(s, k, v);
    else if (k == "dim_mult") f.dim_mult = ints(k, v);
    else if (k == "attn_scales")
      f.attn_scales = as_list<double>(s, k, v, "numbers", [&](const json& e) {
        if (!e.is_number()) bad_field(s, k, "a list of numbers", v);
        return e.get<double>();
      });
    else if (k == "temperal_downsample")
      f.temperal_downsample = as_list<bool>(s, k, v, "booleans", [&](const json& e) {
        if (!e.is_boolean()) bad_field(s, k, "a list of true/false", v);
        return e.get<bool>();
      });
    else if (k == "latent_mean" || k == "latents_mean") f.latent_mean = floats(k, v);
    else if (k == "latent_std" || k == "latents_std") f.latent_std = floats(k, v);
    else if (k == "dropout" || k == "in_channels" || k == "out_channels" || k == "patch_size" || k == "is_residual" ||
             k == "scale_factor_spatial" || k == "scale_factor_temporal" || k == "clip_output")
      continue;  // implied by the layout, or training-only
    else
      fail(ErrorKind::InvalidArgument, s, ": unknown config field \"", k,
           "\"; a Wan VAE config takes dim, dec_dim, z_dim, dim_mult, num_res_blocks, attn_scales, "
           "temperal_downsample, latent_mean, latent_std (keys starting with '_' are ignored)");
  }
  return f;
}

VaeConfigFields read_vae_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::NotFound, path, ": cannot open the VAE config file");
  std::ostringstream os;
  os << in.rdbuf();
  return parse_vae_config(os.str(), path);
}

VaeConfig resolve_vae_config(const VaeConfigFields& given, const io::WeightStore& w) {
  VaeConfig c;
  const std::string src = w.source();
  if (w.has("decoder.upsamples.0.upsamples.0.residual.2.weight")) c.version = 22;
  else if (w.has("decoder.middle.0.residual.0.gamma")) c.version = 21;
  else
    fail(ErrorKind::BadFile, src, ": not a Wan VAE checkpoint (no decoder.middle.0.residual.0.gamma); pass the "
         "Wan2.1_VAE.pth / Wan2.2_VAE.pth file or its safetensors conversion");
  if (given.dim_mult) c.dim_mult = *given.dim_mult;
  if (given.num_res_blocks) c.num_res_blocks = *given.num_res_blocks;
  if (given.attn_scales) c.attn_scales = *given.attn_scales;
  if (given.temperal_downsample) c.temperal_downsample = *given.temperal_downsample;
  if (c.dim_mult.empty() || c.dim_mult[0] < 1) c.validate(given.source.empty() ? src : given.source);

  // Widths from the shapes: encoder.conv1 [dim·m0, in, 3,3,3], decoder.head.2 [out, dec_dim·m0, 3,3,3],
  // conv2 [z, z, 1,1,1]. A given value must agree.
  auto shape_of = [&](const std::string& name, int rank) {
    io::TensorMeta m = w.meta(name);
    if (static_cast<int>(m.shape.size()) != rank)
      fail(ErrorKind::BadFile, src, ": tensor ", name, " has shape ", shape_str(m.shape), ", expected rank ", rank);
    return m.shape;
  };
  const int64_t m0 = c.dim_mult[0];
  const int64_t dim = shape_of("encoder.conv1.weight", 5)[0] / m0;
  const int64_t dec = shape_of("decoder.head.2.weight", 5)[1] / m0;
  const int64_t z = shape_of("conv2.weight", 5)[0];
  auto pick = [&](const char* name, const std::optional<int64_t>& g, int64_t inferred) {
    if (g && *g != inferred)
      fail(ErrorKind::InvalidArgument, given.source, ": config says ", name, " = ", *g, " but the weights in ", src,
           " have ", name, " = ", inferred);
    return inferred;
  };
  c.dim = pick("dim", given.dim, dim);
  c.z_dim = pick("z_dim", given.z_dim, z);
  if (c.version == 22) c.dec_dim = pick("dec_dim", given.dec_dim, dec);
  else if (dec != dim) fail(ErrorKind::BadFile, src, ": decoder width ", dec * m0, " does not match the encoder's ", dim * m0);

  if (given.latent_mean) c.latent_mean = *given.latent_mean;
  if (given.latent_std) c.latent_std = *given.latent_std;
  if (c.latent_mean.empty() != c.latent_std.empty())
    fail(ErrorKind::InvalidArgument, given.source, ": give both latent_mean and latent_std, or neither");
  if (c.latent_mean.empty()) {
    if (c.z_dim == 16) c.latent_mean = to_f32(kMean21), c.latent_std = to_f32(kStd21);
    else if (c.z_dim == 48) c.latent_mean = to_f32(kMean22), c.latent_std = to_f32(kStd22);
    else
      fail(ErrorKind::InvalidArgument, src, ": z_dim ", c.z_dim,
           " has no published latent statistics; give latent_mean and latent_std in --config");
  }
  c.validate(given.source.empty() ? src : given.source);
  return c;
}

}  // namespace x2v::models::wan
