// Wan's prompt cleaning (wan/modules/tokenizers.py, clean='whitespace'):
//   ftfy.fix_text → html.unescape twice → strip → every run of whitespace to one space → strip.
//
// ftfy.fix_text (ftfy 6.x, default TextFixerConfig) is reproduced step by step, per line segment,
// repeated until nothing changes, with these steps:
//   unescape_html ("auto": skipped from the first segment containing '<' on), fix_c1_controls
//   (C1 controls read as Windows-1252), fix_latin_ligatures, fix_character_width (fullwidth and
//   halfwidth forms → their NFKC form, U+3000 → space; so the fullwidth comma U+FF0C of the Chinese
//   negative prompt becomes ','), uncurl_quotes (U+02BC, U+2018–U+201B → ', U+201C–U+201F → "),
//   fix_line_breaks, remove_terminal_escapes (ASCII digits only), remove_control_chars, and the
//   final NFC normalization (Unicode 14 tables; this is what joins halfwidth ｶ + ﾞ into ガ).
// Not reproduced (documented limitations):
//   - fix_encoding (mojibake repair: "Ã©" stays "Ã©"; ftfy would make it "é");
//   - fix_surrogates (UTF-8 input cannot hold surrogates; invalid UTF-8 bytes become U+FFFD).
// HTML entities: numeric references exactly as Python's html.unescape; named ones for the
// HTML 4.01 set plus &apos; (with ftfy's upper-case variants such as &EACUTE;, and html.unescape's
// legacy forms without ';' such as "&amp"); the HTML5-only names (&checkmark;, ...) are left as is.
#pragma once

#include <string>
#include <string_view>

namespace x2v::models::wan {

// The full Wan cleaning (what the pipelines apply to each prompt before tokenizing).
std::string clean_prompt(std::string_view text);

// The parts, for tests and reuse (UTF-8 in, UTF-8 out).
std::string ftfy_fix_text(std::string_view text);
std::string html_unescape(std::string_view text);
std::string collapse_whitespace(std::string_view text);  // Python: re.sub(r'\s+', ' ', t).strip()
std::string strip_whitespace(std::string_view text);     // Python: str.strip()
// Unicode NFC (Python's unicodedata.normalize('NFC', s)), on code points.
std::u32string nfc(std::u32string_view s);

}  // namespace x2v::models::wan
