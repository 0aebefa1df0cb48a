#include "models/wan/tokenizer.h"

#include <sentencepiece_processor.h>

#include <filesystem>

#include "core/error.h"

namespace x2v::models::wan {

namespace fs = std::filesystem;

namespace {

std::string find_spiece(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail(ErrorKind::NotFound, "tokenizer: ", path, " does not exist");
  if (!fs::is_directory(path, ec)) return path;
  const fs::path dir(path);
  for (const fs::path& sub : {fs::path(), fs::path("google/umt5-xxl"), fs::path("tokenizer")}) {
    const fs::path p = dir / sub / "spiece.model";
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  for (const fs::path& sub : {fs::path(), fs::path("google/umt5-xxl"), fs::path("tokenizer")})
    if (fs::is_regular_file(dir / sub / "tokenizer.json", ec))
      fail(ErrorKind::NotFound, "tokenizer: ", (dir / sub).string(),
           " has only tokenizer.json; x2v needs the SentencePiece model spiece.model of google/umt5-xxl "
           "(download it into the same folder)");
  fail(ErrorKind::NotFound, "tokenizer: no spiece.model in ", path,
       " (looked in it, in google/umt5-xxl/ and in tokenizer/ below it)");
}

}  // namespace

void Tokenizer::init() {
  // Hugging Face looks the special tokens up by their text; the model's own ids agree for T5
  // models, and the text is the fallback when the trainer spec left an id undefined.
  auto special = [&](int id, const char* piece) -> int64_t {
    if (id >= 0) return id;
    const int by_text = sp_->PieceToId(piece);
    return sp_->IsUnknown(by_text) ? -1 : by_text;
  };
  eos_ = special(sp_->eos_id(), "</s>");
  pad_ = special(sp_->pad_id(), "<pad>");
  if (eos_ < 0 || pad_ < 0)
    fail(ErrorKind::BadFile, label_, ": the SentencePiece model defines no ", eos_ < 0 ? "</s>" : "<pad>",
         " id; it is not a T5 tokenizer");
}

Tokenizer Tokenizer::open(const std::string& path) {
  const std::string file = find_spiece(path);
  Tokenizer t;
  t.sp_ = std::make_shared<sentencepiece::SentencePieceProcessor>();
  t.label_ = file;
  const auto st = t.sp_->Load(file);
  if (!st.ok()) fail(ErrorKind::BadFile, file, ": not a SentencePiece model (", st.ToString(), ")");
  t.init();
  return t;
}

Tokenizer Tokenizer::from_model_bytes(std::string_view proto, const std::string& label) {
  Tokenizer t;
  t.sp_ = std::make_shared<sentencepiece::SentencePieceProcessor>();
  t.label_ = label;
  const auto st = t.sp_->LoadFromSerializedProto(proto);
  if (!st.ok()) fail(ErrorKind::BadFile, label, ": not a SentencePiece model (", st.ToString(), ")");
  t.init();
  return t;
}

int64_t Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }

std::vector<int64_t> Tokenizer::pieces(const std::string& text) const {
  std::vector<int> ids;
  const auto st = sp_->Encode(text, &ids);
  if (!st.ok()) fail(ErrorKind::InvalidArgument, "tokenizer: cannot encode the text (", st.ToString(), ")");
  return {ids.begin(), ids.end()};
}

TokenizedText Tokenizer::encode(const std::string& text, int64_t max_length) const {
  if (max_length < 1) fail(ErrorKind::InvalidArgument, "tokenizer: max_length must be positive, got ", max_length);
  std::vector<int64_t> p = pieces(text);
  // Hugging Face truncates the text to leave room for the special token, so `</s>` always survives.
  if (static_cast<int64_t>(p.size()) > max_length - 1) p.resize(static_cast<size_t>(max_length - 1));
  p.push_back(eos_);
  TokenizedText t;
  t.length = static_cast<int64_t>(p.size());
  t.ids = std::move(p);
  t.ids.resize(static_cast<size_t>(max_length), pad_);
  t.mask.assign(static_cast<size_t>(max_length), 0);
  std::fill(t.mask.begin(), t.mask.begin() + t.length, 1);
  return t;
}

}  // namespace x2v::models::wan
