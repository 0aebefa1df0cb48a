// The umT5 tokenizer against Debian's python3-sentencepiece on small unigram models this test trains
// (one with SentencePiece's default nmt_nfkc normalizer and byte fallback, one with the identity
// normalizer), ids, </s>, padding and truncation, the spiece.model search, T5Encoder::encode on a
// prompt, and NFC against Python's unicodedata. Skips only if no python3 with sentencepiece exists.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "models/wan/t5.h"
#include "models/wan/text_clean.h"
#include "models/wan/tokenizer.h"
#include "testutil.h"

using namespace x2v;
using namespace x2v::models::wan;
namespace fs = std::filesystem;

namespace {

const char* kScript = R"PY(
import json, sys, unicodedata
import sentencepiece as spm
cmd = sys.argv[1]
if cmd == 'train':
    corpus, prefix, vocab, rule, byte_fallback = sys.argv[2:7]
    spm.SentencePieceTrainer.train(input=corpus, model_prefix=prefix, vocab_size=int(vocab), model_type='unigram',
                                   pad_id=0, eos_id=1, unk_id=2, bos_id=-1, character_coverage=0.9995,
                                   normalization_rule_name=rule, byte_fallback=byte_fallback == '1', num_threads=1,
                                   hard_vocab_limit=False)
elif cmd == 'encode':
    model, texts, out = sys.argv[2:5]
    sp = spm.SentencePieceProcessor(model_file=model)
    with open(texts, encoding='utf-8') as f:
        ids = [sp.encode(t) for t in json.load(f)]
    with open(out, 'w') as f:
        json.dump(ids, f)
elif cmd == 'nfc':
    texts, out = sys.argv[2:4]
    with open(texts, encoding='utf-8') as f:
        res = [unicodedata.normalize('NFC', t) for t in json.load(f)]
    with open(out, 'w') as f:
        json.dump({'version': unicodedata.unidata_version, 'nfc': res}, f)
)PY";

const char* kNegative =
    "\u8272\u8C03\u8273\u4E3D\uFF0C\u8FC7\u66DD\uFF0C\u9759\u6001\uFF0C\u7EC6\u8282\u6A21\u7CCA\u4E0D\u6E05\uFF0C"
    "\u5B57\u5E55\uFF0C\u98CE\u683C\uFF0C\u4F5C\u54C1\uFF0C\u753B\u4F5C\uFF0C\u753B\u9762\uFF0C\u9759\u6B62\uFF0C"
    "\u6574\u4F53\u53D1\u7070\uFF0C\u6700\u5DEE\u8D28\u91CF\uFF0C\u4F4E\u8D28\u91CF\uFF0CJPEG\u538B\u7F29\u6B8B"
    "\u7559\uFF0C\u4E11\u964B\u7684\uFF0C\u6B8B\u7F3A\u7684\uFF0C\u591A\u4F59\u7684\u624B\u6307";

std::string python;  // an interpreter with sentencepiece, or empty
std::string dir, nfkc_model, ident_model;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int py(const std::string& args, std::string* log = nullptr) {
  return test::run(python + " " + dir + "/spm.py " + args + " 2>&1", log);
}

// Deterministic text in several scripts for the trainer.
void write_corpus(const std::string& path) {
  const std::vector<std::string> words = {
      "a", "cat", "walks", "on", "the", "grass", "realistic", "style", "two", "anthropomorphic", "cats", "in",
      "comfy", "boxing", "gear", "fight", "stage", "bright", "tones", "overexposed", "static", "blurred", "details",
      "subtitles", "painting", "worst", "quality", "low", "JPEG", "compression", "ugly", "deformed", "extra",
      "fingers", "camera", "slowly", "pans", "across", "sunset", "ocean", "waves", "city", "night", "neon",
      "caf\u00E9", "cr\u00E8me", "na\u00EFve", "\u00FCber", "stra\u00DFe", "\u0395\u03BB\u03BB\u03B7\u03BD\u03B9\u03BA\u03AC",
      "\u0440\u0443\u0441\u0441\u043A\u0438\u0439", "\u30D1\u30F3\u30B1\u30FC\u30AD", "\uD55C\uAD6D\uC5B4",
      "2024", "42", "3.5", "(", ")", ",", ".", "!", "?", "'", "\"", "-", ":"};
  std::vector<std::string> zh;
  std::string neg = kNegative, sep = "\uFF0C";
  for (size_t p = 0, q; p < neg.size(); p = q + sep.size()) {
    q = neg.find(sep, p);
    if (q == std::string::npos) q = neg.size();
    zh.push_back(neg.substr(p, q - p));
  }
  std::mt19937 rng(1234);
  std::ofstream out(path);
  for (int line = 0; line < 4000; ++line) {
    const int n = 4 + static_cast<int>(rng() % 14);
    for (int i = 0; i < n; ++i) {
      if (rng() % 4 == 0) out << zh[rng() % zh.size()] << (rng() % 2 ? "\uFF0C" : ",");
      else out << words[rng() % words.size()] << ' ';
    }
    out << '\n';
  }
}

class TokenizerVsPython : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (const char* p : {"/usr/bin/python3", "python3"})
      if (test::run(std::string(p) + " -c 'import sentencepiece' >/dev/null 2>&1") == 0) {
        python = p;
        break;
      }
    if (python.empty()) return;
    dir = test::temp_dir();
    std::ofstream(dir + "/spm.py") << kScript;
    write_corpus(dir + "/corpus.txt");
    std::string log;
    ASSERT_EQ(py("train " + dir + "/corpus.txt " + dir + "/nfkc 700 nmt_nfkc 1", &log), 0) << log;
    ASSERT_EQ(py("train " + dir + "/corpus.txt " + dir + "/ident 400 identity 0", &log), 0) << log;
    nfkc_model = dir + "/nfkc.model";
    ident_model = dir + "/ident.model";
  }
  void SetUp() override {
    if (python.empty()) GTEST_SKIP() << "no python3 with the sentencepiece module (Debian: python3-sentencepiece)";
  }

  // python's sp.encode for each text
  static std::vector<std::vector<int64_t>> reference(const std::string& model, const std::vector<std::string>& texts) {
    const std::string in = dir + "/texts.json", out = dir + "/ids.json";
    std::ofstream(in) << nlohmann::json(texts).dump();
    std::string log;
    EXPECT_EQ(py("encode " + model + " " + in + " " + out, &log), 0) << log;
    return nlohmann::json::parse(slurp(out)).get<std::vector<std::vector<int64_t>>>();
  }
};

std::vector<std::string> prompts() {
  std::vector<std::string> p = {
      "A cat walks on the grass, realistic style.",
      "  Two   anthropomorphic\tcats in comfy boxing gear\n\nfight on a stage.  ",
      kNegative,
      "Bright tones, overexposed\u3000static,\u2003blurred\u00A0details",
      "\u201CQuoted\u201D and \u2018single\u2019 \uFB02uffy Caf&eacute; &amp; cr\u00E8me &lt;3",
      "\uFF8A\uFF9F\uFF9D\uFF79\uFF70\uFF77 \uFF26\uFF35\uFF2C\uFF2C\uFF11\uFF12\uFF13\uFF01 \uFFE5100",
      "emoji \U0001F600 and \U0001F431, \u0395\u03BB\u03BB\u03B7\u03BD\u03B9\u03BA\u03AC, \u0627\u0644\u0639\u0631\u0628\u064A\u0629",
      "e\u0301 \u212B \u1100\u1161 zebra xylophone qqq",
      "",
      "   ",
      "<b>bold</b> \u2014 \u2026 \u00BD \u2460",
  };
  std::string longp;
  for (int i = 0; i < 120; ++i) longp += "the camera slowly pans across a neon city at night, ";
  p.push_back(longp);
  const size_t n = p.size();
  for (size_t i = 0; i < n; ++i) p.push_back(clean_prompt(p[i]));  // what the pipelines actually tokenize
  return p;
}

}  // namespace

TEST_F(TokenizerVsPython, PiecesMatchSentencepiece) {
  const auto texts = prompts();
  for (const std::string& model : {nfkc_model, ident_model}) {
    Tokenizer tok = Tokenizer::open(model);
    const auto ref = reference(model, texts);
    ASSERT_EQ(ref.size(), texts.size());
    for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(tok.pieces(texts[i]), ref[i]) << model << ": " << texts[i];
  }
}

TEST_F(TokenizerVsPython, EosPaddingAndTruncationLikeHuggingFace) {
  Tokenizer tok = Tokenizer::open(nfkc_model);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_GT(tok.vocab_size(), 259);  // 3 specials + 256 byte pieces + learned pieces
  const auto texts = prompts();
  const auto ref = reference(nfkc_model, texts);
  for (int64_t max_len : {int64_t{512}, int64_t{16}}) {
    for (size_t i = 0; i < texts.size(); ++i) {
      TokenizedText t = tok.encode(texts[i], max_len);
      // Hugging Face (padding='max_length', truncation=True, add_special_tokens=True): the text is
      // cut to max_len - 1 pieces so that </s> always ends the real tokens.
      std::vector<int64_t> want(ref[i].begin(), ref[i].begin() + std::min<ptrdiff_t>(ref[i].size(), max_len - 1));
      want.push_back(1);
      const auto real = static_cast<int64_t>(want.size());
      want.resize(static_cast<size_t>(max_len), 0);
      EXPECT_EQ(t.ids, want) << texts[i];
      EXPECT_EQ(t.length, real);
      ASSERT_EQ(t.mask.size(), static_cast<size_t>(max_len));
      for (int64_t j = 0; j < max_len; ++j) EXPECT_EQ(t.mask[static_cast<size_t>(j)], j < real ? 1 : 0);
    }
  }
  // The long prompt fills all 512 slots and still ends with </s>.
  TokenizedText t = tok.encode(texts[11], 512);
  EXPECT_GT(ref[11].size(), 600u);
  EXPECT_EQ(t.length, 512);
  EXPECT_EQ(t.ids[511], 1);
  EXPECT_THROW(tok.encode("x", 0), Error);
}

TEST_F(TokenizerVsPython, FindsSpieceModelAndExplainsWhatIsMissing) {
  const std::string root = test::temp_dir();
  fs::create_directories(root + "/Wan2.1-T2V-1.3B/google/umt5-xxl");
  fs::copy_file(ident_model, root + "/Wan2.1-T2V-1.3B/google/umt5-xxl/spiece.model");
  const std::string p = "A cat walks on the grass.";
  const auto want = Tokenizer::open(ident_model).pieces(p);
  EXPECT_EQ(Tokenizer::open(root + "/Wan2.1-T2V-1.3B").pieces(p), want);
  EXPECT_EQ(Tokenizer::open(root + "/Wan2.1-T2V-1.3B/google/umt5-xxl").pieces(p), want);
  EXPECT_EQ(Tokenizer::from_model_bytes(slurp(ident_model), "bytes").pieces(p), want);

  fs::create_directories(root + "/fast_only");
  std::ofstream(root + "/fast_only/tokenizer.json") << "{}";
  try {
    Tokenizer::open(root + "/fast_only");
    ADD_FAILURE() << "a folder with only tokenizer.json must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::NotFound);
    EXPECT_NE(std::string(e.what()).find("spiece.model"), std::string::npos) << e.what();
  }
  std::ofstream(root + "/garbage.model") << "not a model";
  EXPECT_THROW(Tokenizer::open(root + "/garbage.model"), Error);
  EXPECT_THROW(Tokenizer::open(root + "/missing"), Error);
  EXPECT_THROW(Tokenizer::from_model_bytes("junk", "bytes"), Error);
}

TEST_F(TokenizerVsPython, T5EncodesAPromptLikeThePipeline) {
  // The fixture T5 has a 512-token vocabulary, the identity model 500 pieces.
  Tokenizer tok = Tokenizer::open(ident_model);
  T5Encoder t5 = T5Encoder::load(test::fixture("wan21/t5.safetensors"));
  const std::string prompt = "  Two   anthropomorphic cats in comfy boxing gear fight on a stage. ";
  Tensor ctx = t5.encode(tok, prompt);
  TokenizedText t = tok.encode(clean_prompt(prompt), 512);
  ASSERT_EQ(ctx.shape(), (Shape{t.length, 64}));
  Tensor ids = Tensor::empty({512}, DType::I64), mask = Tensor::empty({512}, DType::I64);
  std::copy(t.ids.begin(), t.ids.end(), ids.data<int64_t>());
  std::copy(t.mask.begin(), t.mask.end(), mask.data<int64_t>());
  // The reference's way: all 512 positions with the mask, then the first L_real rows.
  Tensor full = T5Encoder::trim(t5.forward(ids, mask), mask);
  std::printf("encode vs 512-token forward + trim: rel L2 %.3g\n", test::rel_l2(ctx.to_vector(), full.to_vector()));
  test::expect_close(ctx, full, 1e-5, "encode vs forward+trim");
}

TEST_F(TokenizerVsPython, NfcMatchesUnicodedata) {
  std::vector<std::string> texts;
  auto utf8 = [](std::u32string s) {
    std::string o;
    for (char32_t c : s) {
      if (c < 0x80) o += static_cast<char>(c);
      else if (c < 0x800) o += {static_cast<char>(0xC0 | (c >> 6)), static_cast<char>(0x80 | (c & 0x3F))};
      else if (c < 0x10000)
        o += {static_cast<char>(0xE0 | (c >> 12)), static_cast<char>(0x80 | ((c >> 6) & 0x3F)), static_cast<char>(0x80 | (c & 0x3F))};
      else
        o += {static_cast<char>(0xF0 | (c >> 18)), static_cast<char>(0x80 | ((c >> 12) & 0x3F)),
              static_cast<char>(0x80 | ((c >> 6) & 0x3F)), static_cast<char>(0x80 | (c & 0x3F))};
    }
    return o;
  };
  std::vector<std::u32string> cps;
  for (char32_t c = 0xA0; c < 0x30000; ++c)
    if (c < 0xD800 || c > 0xDFFF) cps.push_back(std::u32string(1, c));
  // Sequences mixing starters, combining marks of several classes, Hangul jamo and kana marks.
  const std::u32string pool = U"aeoAEUnsk\u00E9\u0300\u0301\u0302\u0308\u0323\u0327\u0328\u0345\u05B0\u0591\u093C\u0958"
                              U"\u1100\u1161\u11A8\u11A7\uAC00\u304B\u3099\u309A\uFF76\uFF9E\u212B\u1E0A\u0307\u0F73";
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::u32string s;
    const int n = 1 + static_cast<int>(rng() % 6);
    for (int k = 0; k < n; ++k) s += pool[rng() % pool.size()];
    cps.push_back(s);
  }
  for (const auto& s : cps) texts.push_back(utf8(s));
  const std::string in = dir + "/nfc_in.json", out = dir + "/nfc_out.json";
  std::ofstream(in) << nlohmann::json(texts).dump();
  std::string log;
  ASSERT_EQ(py("nfc " + in + " " + out, &log), 0) << log;
  const auto j = nlohmann::json::parse(slurp(out));
  if (j.at("version") != "14.0.0") GTEST_SKIP() << "python's Unicode is " << j.at("version") << ", the tables are 14.0.0";
  const auto ref = j.at("nfc").get<std::vector<std::string>>();
  ASSERT_EQ(ref.size(), cps.size());
  int bad = 0;
  for (size_t i = 0; i < cps.size() && bad < 20; ++i)
    if (utf8(nfc(cps[i])) != ref[i]) {
      ++bad;
      ADD_FAILURE() << "NFC differs for " << texts[i];
    }
}
