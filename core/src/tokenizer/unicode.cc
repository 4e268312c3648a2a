#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>
#include <iterator>
#include <vector>

namespace quarry::tokenizer_internal {
namespace {

struct CategoryRun {
  uint32_t first;
  uint8_t category;
};
struct CombiningRun {
  uint32_t first;
  uint8_t ccc;
};
struct Decomposition {
  uint32_t cp, first, second;
};
struct Composition {
  uint32_t first, second, composite;
};

#include "tokenizer/unicode_tables.inc"

// Hangul syllables compose and decompose algorithmically (Unicode 14, section 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
              kSCount = kLCount * kNCount;

template <typename Run>
const Run& FindRun(const Run* begin, const Run* end, char32_t cp) {
  // The last run whose first code point is <= cp; tables start at U+0000.
  const Run* it = std::upper_bound(begin, end, cp,
                                   [](char32_t v, const Run& r) { return v < r.first; });
  return *(it - 1);
}

void DecomposeInto(char32_t cp, std::vector<char32_t>* out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const int s = static_cast<int>(cp - kSBase);
    out->push_back(kLBase + s / kNCount);
    out->push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out->push_back(kTBase + s % kTCount);
    return;
  }
  const auto* end = std::end(kDecompositions);
  const auto* it = std::lower_bound(std::begin(kDecompositions), end, cp,
                                    [](const Decomposition& d, char32_t v) { return d.cp < v; });
  if (it == end || it->cp != cp) {
    out->push_back(cp);
    return;
  }
  DecomposeInto(it->first, out);
  if (it->second != 0) DecomposeInto(it->second, out);
}

// The primary composite of (a, b), or 0.
char32_t Compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  const auto* end = std::end(kCompositions);
  const auto* it = std::lower_bound(std::begin(kCompositions), end, std::make_pair(a, b),
                                    [](const Composition& c, std::pair<char32_t, char32_t> v) {
                                      return c.first != v.first ? c.first < v.first
                                                                : c.second < v.second;
                                    });
  if (it != end && it->first == a && it->second == b) return it->composite;
  return 0;
}

// NFC of a run of code points (all valid).
void NfcRun(const std::vector<char32_t>& run, std::string* out) {
  std::vector<char32_t> d;
  d.reserve(run.size() + 8);
  for (char32_t cp : run) DecomposeInto(cp, &d);
  // Canonical ordering: stable sort of every maximal run of non-starters by combining class.
  for (size_t i = 0; i < d.size();) {
    if (CombiningClass(d[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < d.size() && CombiningClass(d[j]) != 0) ++j;
    std::stable_sort(d.begin() + i, d.begin() + j, [](char32_t x, char32_t y) {
      return CombiningClass(x) < CombiningClass(y);
    });
    i = j;
  }
  // Canonical composition.
  std::vector<char32_t> c;
  c.reserve(d.size());
  long starter = -1;  // index in `c` of the last starter
  int last_ccc = 0;   // combining class of the last character kept after it
  for (char32_t cp : d) {
    const int ccc = CombiningClass(cp);
    if (starter >= 0) {
      const bool adjacent = static_cast<long>(c.size()) - 1 == starter;
      const bool blocked = !adjacent && (last_ccc == 0 || last_ccc >= ccc);
      if (!blocked) {
        if (char32_t composite = Compose(c[starter], cp)) {
          c[starter] = composite;
          continue;
        }
      }
    }
    if (ccc == 0) starter = static_cast<long>(c.size());
    c.push_back(cp);
    last_ccc = ccc;
  }
  for (char32_t cp : c) AppendUtf8(cp, out);
}

}  // namespace

GeneralCategory CategoryOf(char32_t cp) {
  static const std::array<uint8_t, 128> kAscii = [] {
    std::array<uint8_t, 128> t{};
    for (char32_t c = 0; c < 128; ++c) {
      t[c] = FindRun(std::begin(kCategoryRuns), std::end(kCategoryRuns), c).category;
    }
    return t;
  }();
  if (cp < 128) return static_cast<GeneralCategory>(kAscii[cp]);
  if (cp > 0x10FFFF) return GeneralCategory::kCn;
  return static_cast<GeneralCategory>(
      FindRun(std::begin(kCategoryRuns), std::end(kCategoryRuns), cp).category);
}

bool IsWhiteSpace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

int CombiningClass(char32_t cp) {
  if (cp < 0x300) return 0;
  if (cp > 0x10FFFF) return 0;
  return FindRun(std::begin(kCombiningRuns), std::end(kCombiningRuns), cp).ccc;
}

Utf8Char DecodeUtf8(std::string_view s, size_t pos) {
  Utf8Char r;
  const size_t n = s.size() - pos;
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[pos + i]); };
  const auto trail = [&](size_t i) { return (b(i) & 0xC0) == 0x80; };
  const unsigned char c0 = b(0);
  if (c0 < 0x80) return {c0, 1, true};
  if (c0 >= 0xC2 && c0 <= 0xDF) {
    if (n >= 2 && trail(1)) return {static_cast<char32_t>(((c0 & 0x1F) << 6) | (b(1) & 0x3F)), 2, true};
  } else if (c0 >= 0xE0 && c0 <= 0xEF) {
    if (n >= 3 && trail(1) && trail(2)) {
      const char32_t cp = ((c0 & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
      if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) return {cp, 3, true};
    }
  } else if (c0 >= 0xF0 && c0 <= 0xF4) {
    if (n >= 4 && trail(1) && trail(2) && trail(3)) {
      const char32_t cp =
          ((c0 & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
      if (cp >= 0x10000 && cp <= 0x10FFFF) return {cp, 4, true};
    }
  }
  r.cp = 0xFFFD;
  r.length = 1;
  r.valid = false;
  return r;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string Utf8Lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  const size_t n = bytes.size();
  const auto at = [&](size_t k) { return static_cast<unsigned char>(bytes[k]); };
  while (i < n) {
    const Utf8Char c = DecodeUtf8(bytes, i);
    if (c.valid) {
      out.append(bytes.substr(i, c.length));
      i += c.length;
      continue;
    }
    // Skip the maximal prefix of a well-formed sequence (at least one byte), as Rust does.
    const unsigned char first = at(i++);
    auto cont = [&](unsigned char lo, unsigned char hi) {
      if (i < n && at(i) >= lo && at(i) <= hi) {
        ++i;
        return true;
      }
      return false;
    };
    if (first >= 0xC2 && first <= 0xDF) {
      // A 2-byte lead followed by a non-continuation byte: just the lead.
    } else if (first >= 0xE0 && first <= 0xEF) {
      const unsigned char lo = first == 0xE0 ? 0xA0 : 0x80;
      const unsigned char hi = first == 0xED ? 0x9F : 0xBF;
      if (cont(lo, hi)) cont(0x80, 0xBF);
    } else if (first >= 0xF0 && first <= 0xF4) {
      const unsigned char lo = first == 0xF0 ? 0x90 : 0x80;
      const unsigned char hi = first == 0xF4 ? 0x8F : 0xBF;
      if (cont(lo, hi) && cont(0x80, 0xBF)) cont(0x80, 0xBF);
    }
    out.append("\xEF\xBF\xBD");
  }
  return out;
}

std::string NfcNormalize(std::string_view text) {
  // Fast path: text whose code points are all below U+0300 is already NFC (nothing there
  // decomposes, and every composition's second character is U+0300 or above).
  bool trivial = true;
  for (char ch : text) {
    if (static_cast<unsigned char>(ch) >= 0xCC) {
      trivial = false;
      break;
    }
  }
  if (trivial) return std::string(text);

  std::string out;
  out.reserve(text.size());
  std::vector<char32_t> run;
  size_t i = 0;
  while (i < text.size()) {
    const Utf8Char c = DecodeUtf8(text, i);
    if (c.valid) {
      run.push_back(c.cp);
    } else {
      NfcRun(run, &out);
      run.clear();
      out.push_back(text[i]);
    }
    i += c.length;
  }
  NfcRun(run, &out);
  return out;
}

}  // namespace quarry::tokenizer_internal
