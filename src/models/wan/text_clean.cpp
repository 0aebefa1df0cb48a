#include "models/wan/text_clean.h"

#include <algorithm>
#include <string>
#include <unordered_map>

namespace x2v::models::wan {

namespace {

using U32 = std::u32string;

// ---- UTF-8 <-> code points (invalid bytes become U+FFFD, one per byte)

U32 decode(std::string_view s) {
  U32 out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    int n = b < 0x80 ? 0 : (b >> 5) == 6 ? 1 : (b >> 4) == 14 ? 2 : (b >> 3) == 30 ? 3 : -1;
    char32_t cp = n == 0 ? b : n == 1 ? (b & 0x1F) : n == 2 ? (b & 0x0F) : (b & 0x07);
    bool ok = n >= 0 && i + static_cast<size_t>(n) < s.size();
    for (int k = 1; ok && k <= n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      ok = (c & 0xC0) == 0x80;
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr char32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (ok && n > 0 && (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) ok = false;
    if (!ok) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += static_cast<size_t>(n) + 1;
  }
  return out;
}

std::string encode(const U32& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

// ---- data

// The HTML 4.01 named character references (+ &apos;): name, code point, whether html.unescape
// also accepts it without ';' (a "legacy" name), and the upper-case text ftfy gives the all-caps
// spelling of a lower-case name when that spelling is not an entity itself (&EACUTE; → É).
struct Entity {
  const char* name;
  char32_t cp;
  bool legacy;
  char32_t upper[2];
};
constexpr Entity kEntities[] = {
    {"AElig", 0x00C6, true, {}}, {"Aacute", 0x00C1, true, {}}, {"Acirc", 0x00C2, true, {}},
    {"Agrave", 0x00C0, true, {}}, {"Alpha", 0x0391, false, {}}, {"Aring", 0x00C5, true, {}},
    {"Atilde", 0x00C3, true, {}}, {"Auml", 0x00C4, true, {}}, {"Beta", 0x0392, false, {}},
    {"Ccedil", 0x00C7, true, {}}, {"Chi", 0x03A7, false, {}}, {"Dagger", 0x2021, false, {}},
    {"Delta", 0x0394, false, {}}, {"ETH", 0x00D0, true, {}}, {"Eacute", 0x00C9, true, {}}, {"Ecirc", 0x00CA, true, {}},
    {"Egrave", 0x00C8, true, {}}, {"Epsilon", 0x0395, false, {}}, {"Eta", 0x0397, false, {}},
    {"Euml", 0x00CB, true, {}}, {"Gamma", 0x0393, false, {}}, {"Iacute", 0x00CD, true, {}},
    {"Icirc", 0x00CE, true, {}}, {"Igrave", 0x00CC, true, {}}, {"Iota", 0x0399, false, {}}, {"Iuml", 0x00CF, true, {}},
    {"Kappa", 0x039A, false, {}}, {"Lambda", 0x039B, false, {}}, {"Mu", 0x039C, false, {}},
    {"Ntilde", 0x00D1, true, {}}, {"Nu", 0x039D, false, {}}, {"OElig", 0x0152, false, {}},
    {"Oacute", 0x00D3, true, {}}, {"Ocirc", 0x00D4, true, {}}, {"Ograve", 0x00D2, true, {}},
    {"Omega", 0x03A9, false, {}}, {"Omicron", 0x039F, false, {}}, {"Oslash", 0x00D8, true, {}},
    {"Otilde", 0x00D5, true, {}}, {"Ouml", 0x00D6, true, {}}, {"Phi", 0x03A6, false, {}}, {"Pi", 0x03A0, false, {}},
    {"Prime", 0x2033, false, {}}, {"Psi", 0x03A8, false, {}}, {"Rho", 0x03A1, false, {}},
    {"Scaron", 0x0160, false, {}}, {"Sigma", 0x03A3, false, {}}, {"THORN", 0x00DE, true, {}},
    {"Tau", 0x03A4, false, {}}, {"Theta", 0x0398, false, {}}, {"Uacute", 0x00DA, true, {}},
    {"Ucirc", 0x00DB, true, {}}, {"Ugrave", 0x00D9, true, {}}, {"Upsilon", 0x03A5, false, {}},
    {"Uuml", 0x00DC, true, {}}, {"Xi", 0x039E, false, {}}, {"Yacute", 0x00DD, true, {}}, {"Yuml", 0x0178, false, {}},
    {"Zeta", 0x0396, false, {}}, {"aacute", 0x00E1, true, {0x00C1}}, {"acirc", 0x00E2, true, {0x00C2}},
    {"acute", 0x00B4, true, {0x00B4}}, {"aelig", 0x00E6, true, {0x00C6}}, {"agrave", 0x00E0, true, {0x00C0}},
    {"alefsym", 0x2135, false, {0x2135}}, {"alpha", 0x03B1, false, {0x0391}}, {"amp", 0x0026, true, {}},
    {"and", 0x2227, false, {0x2227}}, {"ang", 0x2220, false, {0x2220}}, {"apos", 0x0027, false, {0x0027}},
    {"aring", 0x00E5, true, {0x00C5}}, {"asymp", 0x2248, false, {0x2248}}, {"atilde", 0x00E3, true, {0x00C3}},
    {"auml", 0x00E4, true, {0x00C4}}, {"bdquo", 0x201E, false, {0x201E}}, {"beta", 0x03B2, false, {0x0392}},
    {"brvbar", 0x00A6, true, {0x00A6}}, {"bull", 0x2022, false, {0x2022}}, {"cap", 0x2229, false, {0x2229}},
    {"ccedil", 0x00E7, true, {0x00C7}}, {"cedil", 0x00B8, true, {0x00B8}}, {"cent", 0x00A2, true, {0x00A2}},
    {"chi", 0x03C7, false, {0x03A7}}, {"circ", 0x02C6, false, {0x02C6}}, {"clubs", 0x2663, false, {0x2663}},
    {"cong", 0x2245, false, {0x2245}}, {"copy", 0x00A9, true, {}}, {"crarr", 0x21B5, false, {0x21B5}},
    {"cup", 0x222A, false, {0x222A}}, {"curren", 0x00A4, true, {0x00A4}}, {"dArr", 0x21D3, false, {}},
    {"dagger", 0x2020, false, {0x2020}}, {"darr", 0x2193, false, {0x2193}}, {"deg", 0x00B0, true, {0x00B0}},
    {"delta", 0x03B4, false, {0x0394}}, {"diams", 0x2666, false, {0x2666}}, {"divide", 0x00F7, true, {0x00F7}},
    {"eacute", 0x00E9, true, {0x00C9}}, {"ecirc", 0x00EA, true, {0x00CA}}, {"egrave", 0x00E8, true, {0x00C8}},
    {"empty", 0x2205, false, {0x2205}}, {"emsp", 0x2003, false, {0x2003}}, {"ensp", 0x2002, false, {0x2002}},
    {"epsilon", 0x03B5, false, {0x0395}}, {"equiv", 0x2261, false, {0x2261}}, {"eta", 0x03B7, false, {0x0397}},
    {"eth", 0x00F0, true, {}}, {"euml", 0x00EB, true, {0x00CB}}, {"euro", 0x20AC, false, {0x20AC}},
    {"exist", 0x2203, false, {0x2203}}, {"fnof", 0x0192, false, {0x0191}}, {"forall", 0x2200, false, {0x2200}},
    {"frac12", 0x00BD, true, {0x00BD}}, {"frac14", 0x00BC, true, {0x00BC}}, {"frac34", 0x00BE, true, {0x00BE}},
    {"frasl", 0x2044, false, {0x2044}}, {"gamma", 0x03B3, false, {0x0393}}, {"ge", 0x2265, false, {0x2265}},
    {"gt", 0x003E, true, {}}, {"hArr", 0x21D4, false, {}}, {"harr", 0x2194, false, {0x2194}},
    {"hearts", 0x2665, false, {0x2665}}, {"hellip", 0x2026, false, {0x2026}}, {"iacute", 0x00ED, true, {0x00CD}},
    {"icirc", 0x00EE, true, {0x00CE}}, {"iexcl", 0x00A1, true, {0x00A1}}, {"igrave", 0x00EC, true, {0x00CC}},
    {"image", 0x2111, false, {0x2111}}, {"infin", 0x221E, false, {0x221E}}, {"int", 0x222B, false, {0x222B}},
    {"iota", 0x03B9, false, {0x0399}}, {"iquest", 0x00BF, true, {0x00BF}}, {"isin", 0x2208, false, {0x2208}},
    {"iuml", 0x00EF, true, {0x00CF}}, {"kappa", 0x03BA, false, {0x039A}}, {"lArr", 0x21D0, false, {}},
    {"lambda", 0x03BB, false, {0x039B}}, {"lang", 0x27E8, false, {0x27E8}}, {"laquo", 0x00AB, true, {0x00AB}},
    {"larr", 0x2190, false, {0x2190}}, {"lceil", 0x2308, false, {0x2308}}, {"ldquo", 0x201C, false, {0x201C}},
    {"le", 0x2264, false, {0x2264}}, {"lfloor", 0x230A, false, {0x230A}}, {"lowast", 0x2217, false, {0x2217}},
    {"loz", 0x25CA, false, {0x25CA}}, {"lrm", 0x200E, false, {0x200E}}, {"lsaquo", 0x2039, false, {0x2039}},
    {"lsquo", 0x2018, false, {0x2018}}, {"lt", 0x003C, true, {}}, {"macr", 0x00AF, true, {0x00AF}},
    {"mdash", 0x2014, false, {0x2014}}, {"micro", 0x00B5, true, {0x039C}}, {"middot", 0x00B7, true, {0x00B7}},
    {"minus", 0x2212, false, {0x2212}}, {"mu", 0x03BC, false, {0x039C}}, {"nabla", 0x2207, false, {0x2207}},
    {"nbsp", 0x00A0, true, {0x00A0}}, {"ndash", 0x2013, false, {0x2013}}, {"ne", 0x2260, false, {0x2260}},
    {"ni", 0x220B, false, {0x220B}}, {"not", 0x00AC, true, {0x00AC}}, {"notin", 0x2209, false, {0x2209}},
    {"nsub", 0x2284, false, {0x2284}}, {"ntilde", 0x00F1, true, {0x00D1}}, {"nu", 0x03BD, false, {0x039D}},
    {"oacute", 0x00F3, true, {0x00D3}}, {"ocirc", 0x00F4, true, {0x00D4}}, {"oelig", 0x0153, false, {0x0152}},
    {"ograve", 0x00F2, true, {0x00D2}}, {"oline", 0x203E, false, {0x203E}}, {"omega", 0x03C9, false, {0x03A9}},
    {"omicron", 0x03BF, false, {0x039F}}, {"oplus", 0x2295, false, {0x2295}}, {"or", 0x2228, false, {0x2228}},
    {"ordf", 0x00AA, true, {0x00AA}}, {"ordm", 0x00BA, true, {0x00BA}}, {"oslash", 0x00F8, true, {0x00D8}},
    {"otilde", 0x00F5, true, {0x00D5}}, {"otimes", 0x2297, false, {0x2297}}, {"ouml", 0x00F6, true, {0x00D6}},
    {"para", 0x00B6, true, {0x00B6}}, {"part", 0x2202, false, {0x2202}}, {"permil", 0x2030, false, {0x2030}},
    {"perp", 0x22A5, false, {0x22A5}}, {"phi", 0x03C6, false, {0x03A6}}, {"pi", 0x03C0, false, {0x03A0}},
    {"piv", 0x03D6, false, {0x03A0}}, {"plusmn", 0x00B1, true, {0x00B1}}, {"pound", 0x00A3, true, {0x00A3}},
    {"prime", 0x2032, false, {0x2032}}, {"prod", 0x220F, false, {0x220F}}, {"prop", 0x221D, false, {0x221D}},
    {"psi", 0x03C8, false, {0x03A8}}, {"quot", 0x0022, true, {}}, {"rArr", 0x21D2, false, {}},
    {"radic", 0x221A, false, {0x221A}}, {"rang", 0x27E9, false, {0x27E9}}, {"raquo", 0x00BB, true, {0x00BB}},
    {"rarr", 0x2192, false, {0x2192}}, {"rceil", 0x2309, false, {0x2309}}, {"rdquo", 0x201D, false, {0x201D}},
    {"real", 0x211C, false, {0x211C}}, {"reg", 0x00AE, true, {}}, {"rfloor", 0x230B, false, {0x230B}},
    {"rho", 0x03C1, false, {0x03A1}}, {"rlm", 0x200F, false, {0x200F}}, {"rsaquo", 0x203A, false, {0x203A}},
    {"rsquo", 0x2019, false, {0x2019}}, {"sbquo", 0x201A, false, {0x201A}}, {"scaron", 0x0161, false, {0x0160}},
    {"sdot", 0x22C5, false, {0x22C5}}, {"sect", 0x00A7, true, {0x00A7}}, {"shy", 0x00AD, true, {0x00AD}},
    {"sigma", 0x03C3, false, {0x03A3}}, {"sigmaf", 0x03C2, false, {0x03A3}}, {"sim", 0x223C, false, {0x223C}},
    {"spades", 0x2660, false, {0x2660}}, {"sub", 0x2282, false, {0x2282}}, {"sube", 0x2286, false, {0x2286}},
    {"sum", 0x2211, false, {0x2211}}, {"sup", 0x2283, false, {0x2283}}, {"sup1", 0x00B9, true, {0x00B9}},
    {"sup2", 0x00B2, true, {0x00B2}}, {"sup3", 0x00B3, true, {0x00B3}}, {"supe", 0x2287, false, {0x2287}},
    {"szlig", 0x00DF, true, {0x0053, 0x0053}}, {"tau", 0x03C4, false, {0x03A4}}, {"there4", 0x2234, false, {0x2234}},
    {"theta", 0x03B8, false, {0x0398}}, {"thetasym", 0x03D1, false, {0x0398}}, {"thinsp", 0x2009, false, {0x2009}},
    {"thorn", 0x00FE, true, {}}, {"tilde", 0x02DC, false, {0x02DC}}, {"times", 0x00D7, true, {0x00D7}},
    {"trade", 0x2122, false, {}}, {"uArr", 0x21D1, false, {}}, {"uacute", 0x00FA, true, {0x00DA}},
    {"uarr", 0x2191, false, {0x2191}}, {"ucirc", 0x00FB, true, {0x00DB}}, {"ugrave", 0x00F9, true, {0x00D9}},
    {"uml", 0x00A8, true, {0x00A8}}, {"upsih", 0x03D2, false, {0x03D2}}, {"upsilon", 0x03C5, false, {0x03A5}},
    {"uuml", 0x00FC, true, {0x00DC}}, {"weierp", 0x2118, false, {0x2118}}, {"xi", 0x03BE, false, {0x039E}},
    {"yacute", 0x00FD, true, {0x00DD}}, {"yen", 0x00A5, true, {0x00A5}}, {"yuml", 0x00FF, true, {0x0178}},
    {"zeta", 0x03B6, false, {0x0396}}, {"zwj", 0x200D, false, {0x200D}}, {"zwnj", 0x200C, false, {0x200C}},
    {"AMP", 0x0026, true, {}}, {"COPY", 0x00A9, true, {}}, {"GT", 0x003E, true, {}}, {"LT", 0x003C, true, {}},
    {"QUOT", 0x0022, true, {}}, {"REG", 0x00AE, true, {}}
};

// Windows-1252 for bytes 0x80–0x9F; the five undefined bytes keep their code point (as ftfy's
// "sloppy" codec and html.unescape's table do).
constexpr char32_t kCp1252[32] = {0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                  0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
                                  0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                  0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

// NFKC of the halfwidth/fullwidth forms U+FF5F–U+FFEF that change (U+FF01–U+FF5E are ASCII + 0xFEE0).
struct Width {
  char32_t from;
  char32_t to[2];
};
constexpr Width kWidth[] = {
    {0xFF5F, {0x2985}}, {0xFF60, {0x2986}}, {0xFF61, {0x3002}}, {0xFF62, {0x300C}}, {0xFF63, {0x300D}},
    {0xFF64, {0x3001}}, {0xFF65, {0x30FB}}, {0xFF66, {0x30F2}}, {0xFF67, {0x30A1}}, {0xFF68, {0x30A3}},
    {0xFF69, {0x30A5}}, {0xFF6A, {0x30A7}}, {0xFF6B, {0x30A9}}, {0xFF6C, {0x30E3}}, {0xFF6D, {0x30E5}},
    {0xFF6E, {0x30E7}}, {0xFF6F, {0x30C3}}, {0xFF70, {0x30FC}}, {0xFF71, {0x30A2}}, {0xFF72, {0x30A4}},
    {0xFF73, {0x30A6}}, {0xFF74, {0x30A8}}, {0xFF75, {0x30AA}}, {0xFF76, {0x30AB}}, {0xFF77, {0x30AD}},
    {0xFF78, {0x30AF}}, {0xFF79, {0x30B1}}, {0xFF7A, {0x30B3}}, {0xFF7B, {0x30B5}}, {0xFF7C, {0x30B7}},
    {0xFF7D, {0x30B9}}, {0xFF7E, {0x30BB}}, {0xFF7F, {0x30BD}}, {0xFF80, {0x30BF}}, {0xFF81, {0x30C1}},
    {0xFF82, {0x30C4}}, {0xFF83, {0x30C6}}, {0xFF84, {0x30C8}}, {0xFF85, {0x30CA}}, {0xFF86, {0x30CB}},
    {0xFF87, {0x30CC}}, {0xFF88, {0x30CD}}, {0xFF89, {0x30CE}}, {0xFF8A, {0x30CF}}, {0xFF8B, {0x30D2}},
    {0xFF8C, {0x30D5}}, {0xFF8D, {0x30D8}}, {0xFF8E, {0x30DB}}, {0xFF8F, {0x30DE}}, {0xFF90, {0x30DF}},
    {0xFF91, {0x30E0}}, {0xFF92, {0x30E1}}, {0xFF93, {0x30E2}}, {0xFF94, {0x30E4}}, {0xFF95, {0x30E6}},
    {0xFF96, {0x30E8}}, {0xFF97, {0x30E9}}, {0xFF98, {0x30EA}}, {0xFF99, {0x30EB}}, {0xFF9A, {0x30EC}},
    {0xFF9B, {0x30ED}}, {0xFF9C, {0x30EF}}, {0xFF9D, {0x30F3}}, {0xFF9E, {0x3099}}, {0xFF9F, {0x309A}},
    {0xFFA0, {0x1160}}, {0xFFA1, {0x1100}}, {0xFFA2, {0x1101}}, {0xFFA3, {0x11AA}}, {0xFFA4, {0x1102}},
    {0xFFA5, {0x11AC}}, {0xFFA6, {0x11AD}}, {0xFFA7, {0x1103}}, {0xFFA8, {0x1104}}, {0xFFA9, {0x1105}},
    {0xFFAA, {0x11B0}}, {0xFFAB, {0x11B1}}, {0xFFAC, {0x11B2}}, {0xFFAD, {0x11B3}}, {0xFFAE, {0x11B4}},
    {0xFFAF, {0x11B5}}, {0xFFB0, {0x111A}}, {0xFFB1, {0x1106}}, {0xFFB2, {0x1107}}, {0xFFB3, {0x1108}},
    {0xFFB4, {0x1121}}, {0xFFB5, {0x1109}}, {0xFFB6, {0x110A}}, {0xFFB7, {0x110B}}, {0xFFB8, {0x110C}},
    {0xFFB9, {0x110D}}, {0xFFBA, {0x110E}}, {0xFFBB, {0x110F}}, {0xFFBC, {0x1110}}, {0xFFBD, {0x1111}},
    {0xFFBE, {0x1112}}, {0xFFC2, {0x1161}}, {0xFFC3, {0x1162}}, {0xFFC4, {0x1163}}, {0xFFC5, {0x1164}},
    {0xFFC6, {0x1165}}, {0xFFC7, {0x1166}}, {0xFFCA, {0x1167}}, {0xFFCB, {0x1168}}, {0xFFCC, {0x1169}},
    {0xFFCD, {0x116A}}, {0xFFCE, {0x116B}}, {0xFFCF, {0x116C}}, {0xFFD2, {0x116D}}, {0xFFD3, {0x116E}},
    {0xFFD4, {0x116F}}, {0xFFD5, {0x1170}}, {0xFFD6, {0x1171}}, {0xFFD7, {0x1172}}, {0xFFDA, {0x1173}},
    {0xFFDB, {0x1174}}, {0xFFDC, {0x1175}}, {0xFFE0, {0x00A2}}, {0xFFE1, {0x00A3}}, {0xFFE2, {0x00AC}},
    {0xFFE3, {0x0020, 0x0304}}, {0xFFE4, {0x00A6}}, {0xFFE5, {0x00A5}}, {0xFFE6, {0x20A9}}, {0xFFE8, {0x2502}},
    {0xFFE9, {0x2190}}, {0xFFEA, {0x2191}}, {0xFFEB, {0x2192}}, {0xFFEC, {0x2193}}, {0xFFED, {0x25A0}},
    {0xFFEE, {0x25CB}}
};

// ftfy's fix_latin_ligatures table.
struct Ligature {
  char32_t from;
  const char32_t* to;
};
constexpr Ligature kLigatures[] = {
    {0x0132, U"IJ"}, {0x0133, U"ij"}, {0x0149, U"\u02BCn"}, {0x01F1, U"DZ"}, {0x01F2, U"Dz"}, {0x01F3, U"dz"},
    {0x01C4, U"D\u017D"}, {0x01C5, U"D\u017E"}, {0x01C6, U"d\u017E"}, {0x01C7, U"LJ"}, {0x01C8, U"Lj"},
    {0x01C9, U"lj"}, {0x01CA, U"NJ"}, {0x01CB, U"Nj"}, {0x01CC, U"nj"}, {0xFB00, U"ff"}, {0xFB01, U"fi"},
    {0xFB02, U"fl"}, {0xFB03, U"ffi"}, {0xFB04, U"ffl"}, {0xFB05, U"\u017Ft"}, {0xFB06, U"st"}};

struct EntityMaps {
  std::unordered_map<std::string, U32> html5;  // html.unescape: "name;" and legacy "name"
  std::unordered_map<std::string, U32> ftfy;   // ftfy: "&name;" and "&NAME;" variants
  EntityMaps() {
    for (const Entity& e : kEntities) {
      const std::string n = e.name;
      html5[n + ";"] = U32(1, e.cp);
      if (e.legacy) html5[n] = U32(1, e.cp);
      ftfy["&" + n + ";"] = U32(1, e.cp);
      if (e.upper[0]) {
        std::string up = n;
        for (char& c : up) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
        ftfy["&" + up + ";"] = e.upper[1] ? U32{e.upper[0], e.upper[1]} : U32(1, e.upper[0]);
      }
    }
  }
};
const EntityMaps& entities() {
  static const EntityMaps m;
  return m;
}

bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_hex_digit(char32_t c) { return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_ascii_alnum(char32_t c) { return is_ascii_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Python's str.isspace() set (Unicode White_Space plus U+001C–U+001F). The `regex` module's \s
// leaves out U+001C–U+001F, which remove_control_chars has deleted before they could matter.
bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string ascii_key(const U32& s) {
  std::string k;
  for (char32_t c : s) {
    if (c >= 0x80) return {};
    k += static_cast<char>(c);
  }
  return k;
}

// html.unescape's numeric reference rules (html/__init__.py _replace_charref).
U32 charref(char32_t num, bool overflow) {
  if (!overflow) {
    if (num == 0) return U"\uFFFD";
    if (num == 0x0D) return U"\r";
    if (num >= 0x80 && num <= 0x9F) return U32(1, kCp1252[num - 0x80]);
  }
  if (overflow || (num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return U"\uFFFD";
  const bool invalid = (num >= 0x01 && num <= 0x08) || num == 0x0B || (num >= 0x0E && num <= 0x1F) ||
                       (num >= 0x7F && num <= 0x9F) || (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE;
  return invalid ? U32() : U32(1, num);
}

// Python's html.unescape on code points.
U32 unescape_py(const U32& s) {
  const auto& html5 = entities().html5;
  U32 out;
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    if (s[i] != '&') {
      out += s[i++];
      continue;
    }
    size_t j = i + 1;
    if (j < n && s[j] == '#') {
      // &#123; / &#x7B; with an optional ';'
      size_t k = j + 1;
      const bool hex = k < n && (s[k] == 'x' || s[k] == 'X') && k + 1 < n && is_hex_digit(s[k + 1]);
      if (hex) ++k;
      const size_t d0 = k;
      while (k < n && (hex ? is_hex_digit(s[k]) : is_ascii_digit(s[k]))) ++k;
      if (k == d0) {
        out += s[i++];
        continue;
      }
      char32_t num = 0;
      bool overflow = false;
      for (size_t t = d0; t < k; ++t) {
        const char32_t c = s[t];
        const char32_t v = is_ascii_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
        if (num > 0x10FFFF) overflow = true;
        if (!overflow) num = num * (hex ? 16 : 10) + v;
      }
      if (k < n && s[k] == ';') ++k;
      out += charref(num, overflow);
      i = k;
      continue;
    }
    size_t k = j;
    auto name_char = [](char32_t c) { return c != '\t' && c != '\n' && c != '\f' && c != ' ' && c != '<' && c != '&' && c != '#' && c != ';'; };
    while (k < n && k - j < 32 && name_char(s[k])) ++k;
    if (k == j) {
      out += s[i++];
      continue;
    }
    if (k < n && s[k] == ';') ++k;
    const U32 name = s.substr(j, k - j);
    i = k;
    if (auto it = html5.find(ascii_key(name)); it != html5.end() && !ascii_key(name).empty()) {
      out += it->second;
      continue;
    }
    // The longest entity that is a prefix (of at least 2 characters) of the name.
    bool done = false;
    for (size_t len = name.size() - 1; len > 1 && !done; --len) {
      const std::string key = ascii_key(name.substr(0, len));
      if (key.empty()) continue;
      if (auto it = html5.find(key); it != html5.end()) {
        out += it->second;
        out += name.substr(len);
        done = true;
      }
    }
    if (!done) {
      out += '&';
      out += name;
    }
  }
  return out;
}

// ---- ftfy's fixers

// ftfy.fixes.unescape_html: only complete "&...;" references of up to 24 ASCII letters/digits.
U32 ftfy_unescape(const U32& s) {
  const auto& map = entities().ftfy;
  U32 out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '&') {
      size_t k = i + 1;
      if (k < s.size() && s[k] == '#') ++k;
      const size_t a0 = k;
      while (k < s.size() && k - a0 < 25 && is_ascii_alnum(s[k])) ++k;
      if (k > a0 && k - a0 <= 24 && k < s.size() && s[k] == ';') {
        const U32 ref = s.substr(i, k + 1 - i);
        i = k + 1;
        if (auto it = map.find(ascii_key(ref)); it != map.end()) {
          out += it->second;
        } else if (ref[1] == '#') {
          const U32 u = unescape_py(ref);
          out += u.find(';') != U32::npos ? ref : u;
        } else {
          out += ref;
        }
        continue;
      }
    }
    out += s[i++];
  }
  return out;
}

U32 fix_c1_controls(const U32& s) {
  U32 out = s;
  for (char32_t& c : out)
    if (c >= 0x80 && c <= 0x9F) c = kCp1252[c - 0x80];
  return out;
}

U32 fix_latin_ligatures(const U32& s) {
  U32 out;
  for (char32_t c : s) {
    auto it = std::find_if(std::begin(kLigatures), std::end(kLigatures), [c](const Ligature& l) { return l.from == c; });
    if (it == std::end(kLigatures)) out += c;
    else out += it->to;
  }
  return out;
}

U32 fix_character_width(const U32& s) {
  U32 out;
  for (char32_t c : s) {
    if (c == 0x3000) {
      out += ' ';
    } else if (c >= 0xFF01 && c <= 0xFF5E) {
      out += c - 0xFEE0;
    } else if (c >= 0xFF5F && c <= 0xFFEF) {
      auto it = std::find_if(std::begin(kWidth), std::end(kWidth), [c](const Width& w) { return w.from == c; });
      if (it == std::end(kWidth)) {
        out += c;
      } else {
        out += it->to[0];
        if (it->to[1]) out += it->to[1];
      }
    } else {
      out += c;
    }
  }
  return out;
}

U32 uncurl_quotes(const U32& s) {
  U32 out = s;
  for (char32_t& c : out) {
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) c = '\'';
    else if (c >= 0x201C && c <= 0x201F) c = '"';
  }
  return out;
}

U32 fix_line_breaks(const U32& s) {
  U32 out;
  for (size_t i = 0; i < s.size(); ++i) {
    const char32_t c = s[i];
    if (c == '\r') {
      out += '\n';
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else if (c == 0x2028 || c == 0x2029 || c == 0x85) {
      out += '\n';
    } else {
      out += c;
    }
  }
  return out;
}

// ESC '[' (digits | ';')* letter
U32 remove_terminal_escapes(const U32& s) {
  U32 out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == 0x1B && i + 1 < s.size() && s[i + 1] == '[') {
      size_t k = i + 2;
      while (k < s.size() && (is_ascii_digit(s[k]) || s[k] == ';')) ++k;
      if (k < s.size() && ((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z'))) {
        i = k + 1;
        continue;
      }
    }
    out += s[i++];
  }
  return out;
}

U32 remove_control_chars(const U32& s) {
  U32 out;
  for (char32_t c : s) {
    const bool drop = c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
                      c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
    if (!drop) out += c;
  }
  return out;
}

// ftfy.fix_and_explain on one segment: the fixers in ftfy's order until nothing changes.
U32 fix_segment(U32 text, bool unescape) {
  for (int round = 0; round < 64; ++round) {
    const U32 before = text;
    if (unescape) text = ftfy_unescape(text);
    text = fix_c1_controls(text);
    text = fix_latin_ligatures(text);
    text = fix_character_width(text);
    text = uncurl_quotes(text);
    text = fix_line_breaks(text);
    text = remove_terminal_escapes(text);
    text = remove_control_chars(text);
    text = nfc(text);
    if (text == before) break;
  }
  return text;
}

U32 strip(const U32& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

U32 collapse(const U32& s) {
  U32 out;
  for (size_t i = 0; i < s.size();) {
    if (is_space(s[i])) {
      out += ' ';
      while (i < s.size() && is_space(s[i])) ++i;
    } else {
      out += s[i++];
    }
  }
  return strip(out);
}

}  // namespace

std::string ftfy_fix_text(std::string_view text) {
  const U32 s = decode(text);
  U32 out;
  // ftfy fixes each line on its own; once a line contains '<' it stops unescaping HTML entities for
  // the rest of the text (the text may be HTML).
  bool unescape = true;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find('\n', pos);
    end = end == U32::npos ? s.size() : end + 1;
    const U32 seg = s.substr(pos, end - pos);
    if (seg.find('<') != U32::npos) unescape = false;
    out += fix_segment(seg, unescape);
    pos = end;
  }
  return encode(out);
}

std::string html_unescape(std::string_view text) { return encode(unescape_py(decode(text))); }
std::string collapse_whitespace(std::string_view text) { return encode(collapse(decode(text))); }
std::string strip_whitespace(std::string_view text) { return encode(strip(decode(text))); }

std::string clean_prompt(std::string_view text) {
  U32 s = decode(ftfy_fix_text(text));
  s = unescape_py(unescape_py(s));
  return encode(collapse(strip(s)));
}

}  // namespace x2v::models::wan
