// The umT5 tokenizer: SentencePiece (the unigram `spiece.model` of google/umt5-xxl) used as Wan's
// HuggingfaceTokenizer calls it — pieces, `</s>` appended, truncated to max_length keeping `</s>`
// last, padded with <pad> (id 0) to max_length, attention mask 1 on real tokens and `</s>`.
// Limitation: text that spells a special token ("</s>", "<extra_id_0>") is tokenized as plain
// text, where the Hugging Face tokenizer would emit the special id.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace x2v::models::wan {

inline constexpr int64_t kWanTextLength = 512;  // the pipelines' text_len

struct TokenizedText {
  std::vector<int64_t> ids;   // max_length entries
  std::vector<int64_t> mask;  // 1 for the first `length` entries, then 0
  int64_t length = 0;         // real tokens including `</s>`
};

class Tokenizer {
 public:
  // `path`: a spiece.model file, or a folder holding one (itself, google/umt5-xxl/ or tokenizer/
  // below it, as the Wan and diffusers checkpoints ship it).
  static Tokenizer open(const std::string& path);
  // A serialized SentencePiece ModelProto (the bytes of a spiece.model).
  static Tokenizer from_model_bytes(std::string_view proto, const std::string& label);

  // The pieces of `text` (SentencePiece's own normalization applies), without `</s>`.
  std::vector<int64_t> pieces(const std::string& text) const;
  // Pieces + `</s>`, truncated / padded to max_length.
  TokenizedText encode(const std::string& text, int64_t max_length = kWanTextLength) const;

  int64_t vocab_size() const;
  int64_t eos_id() const { return eos_; }
  int64_t pad_id() const { return pad_; }

 private:
  std::shared_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::string label_;
  int64_t eos_ = 1, pad_ = 0;
  void init();
};

}  // namespace x2v::models::wan
