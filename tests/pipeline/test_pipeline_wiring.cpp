// The encoders are wired as the reference wires them: running the demo models through the
// pipeline with the T5 (prompt and default negative prompt) or the CLIP tower (the image at its
// original resolution) gives exactly the video obtained by computing those embeddings here with
// the encoder APIs and handing them to the pipeline as --text-embeddings / --clip-embeddings.
#include "io/image.h"
#include "io/safetensors.h"
#include "models/wan/clip.h"
#include "models/wan/t5.h"
#include "models/wan/tokenizer.h"
#include "pipeline/demo.h"
#include "pipeline/model_dir.h"
#include "pipeline/pipeline.h"
#include "testutil.h"

namespace x2v::pipeline {
namespace {
namespace wan = models::wan;

TEST(PipelineWiring, TextEncoderPromptAndDefaultNegative) {
  const std::string dir = test::temp_dir();
  write_demo_model(dir + "/model");
  GenerateRequest r;
  r.model.model_dir = dir + "/model";
  r.prompt = "  a small cat &amp; two dogs   dancing on the moon ";
  r.width = 32;
  r.height = 32;
  r.frames = 5;
  r.steps = 2;
  r.seed = 5;
  r.output_tensor = dir + "/a.safetensors";
  GenerateResult a = generate(resolve(r));

  wan::Tokenizer tok = wan::Tokenizer::open(dir + "/model/" + kTokenizerDir);
  wan::T5Encoder t5 = wan::T5Encoder::load(dir + "/model/models_t5_umt5-xxl-enc-bf16.safetensors");
  const std::string emb = dir + "/emb.safetensors";
  io::write_safetensors(emb, {{"context", t5.encode(tok, r.prompt)},
                              {"context_null", t5.encode(tok, default_negative_prompt(Task::T2V))}});
  r.text_embeddings = emb;
  r.output_tensor = dir + "/b.safetensors";
  GenerateResult b = generate(resolve(r));
  EXPECT_EQ(a.video.to_vector(), b.video.to_vector());

  // A different negative prompt changes the video (the negative pass is really used).
  r.text_embeddings.clear();
  r.negative_prompt = "blurry";
  r.output_tensor = dir + "/c.safetensors";
  GenerateResult c = generate(resolve(r));
  EXPECT_NE(a.video.to_vector(), c.video.to_vector());
}

TEST(PipelineWiring, ClipSeesTheOriginalImage) {
  const std::string dir = test::temp_dir();
  write_demo_model(dir + "/model", 7, /*i2v=*/true);
  // A 40x56 (h x w) image with structure in every channel.
  Tensor img = Tensor::empty({40, 56, 3}, DType::U8);
  uint8_t* p = img.data<uint8_t>();
  for (int y = 0; y < 40; ++y)
    for (int x = 0; x < 56; ++x) {
      p[(y * 56 + x) * 3 + 0] = static_cast<uint8_t>(x * 4);
      p[(y * 56 + x) * 3 + 1] = static_cast<uint8_t>(y * 6);
      p[(y * 56 + x) * 3 + 2] = static_cast<uint8_t>((x * y) % 251);
    }
  io::write_png(dir + "/in.png", img);
  GenerateRequest r;
  r.task = Task::I2V;
  r.model.model_dir = dir + "/model";
  r.image = dir + "/in.png";
  r.prompt = "a panda climbing";
  r.max_area = 32 * 32;
  r.frames = 5;
  r.steps = 2;
  r.seed = 3;
  r.output_tensor = dir + "/a.safetensors";
  GenerateResult a = generate(resolve(r));
  // 40x56 at 1024 px: sqrt(1024·40/56) = 27.0 → 27 // 8 // 2 · 2 = 2 latent rows; sqrt(1024·56/40) = 37.9 → 4.
  EXPECT_EQ(a.video.shape(), (Shape{3, 5, 16, 32}));

  wan::ClipVisionEncoder clip = wan::ClipVisionEncoder::load(
      dir + "/model/models_clip_open-clip-xlm-roberta-large-vit-huge-14.safetensors",
      wan::EncoderConfigJson(dir + "/model/" + kClipConfigFile));
  const std::string emb = dir + "/clip.safetensors";
  io::write_safetensors(emb, {{"clip_context", clip.encode(io::image_to_unit(img))}});
  r.clip_embeddings = emb;
  r.output_tensor = dir + "/b.safetensors";
  GenerateResult b = generate(resolve(r));
  EXPECT_EQ(a.video.to_vector(), b.video.to_vector());

  // The image matters: another first frame, another video.
  for (int64_t i = 0; i < img.numel(); ++i) p[i] = static_cast<uint8_t>(255 - p[i]);
  io::write_png(dir + "/in.png", img);
  r.output_tensor = dir + "/c.safetensors";
  GenerateResult c = generate(resolve(r));
  EXPECT_NE(b.video.to_vector(), c.video.to_vector());
}

}  // namespace
}  // namespace x2v::pipeline
