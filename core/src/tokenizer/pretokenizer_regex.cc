#include "tokenizer/pretokenizer_regex.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/str_cat.h"
#include "tokenizer/unicode.h"

namespace quarry::tokenizer_internal {
namespace {

bool IsWordChar(char32_t cp) {
  const uint32_t bit = CategoryBit(CategoryOf(cp));
  return (bit & (kLetterMask | kMarkMask)) ||
         (bit & (CategoryBit(GeneralCategory::kNd) | CategoryBit(GeneralCategory::kNl) |
                 CategoryBit(GeneralCategory::kPc)));
}

// \p{name}: a general category, a one-letter class, or their long names. 0 if unknown.
uint32_t CategoryMask(std::string name) {
  std::string n;
  for (char c : name) {
    if (c != '_' && c != ' ' && c != '-') n.push_back(static_cast<char>(std::tolower(c)));
  }
  static const char* kShort[kNumGeneralCategories] = {
      "lu", "ll", "lt", "lm", "lo", "mn", "mc", "me", "nd", "nl", "no", "pc", "pd", "ps", "pe",
      "pi", "pf", "po", "sm", "sc", "sk", "so", "zs", "zl", "zp", "cc", "cf", "cs", "co", "cn"};
  static const char* kLong[kNumGeneralCategories] = {
      "uppercaseletter", "lowercaseletter", "titlecaseletter", "modifierletter", "otherletter",
      "nonspacingmark", "spacingmark", "enclosingmark", "decimalnumber", "letternumber",
      "othernumber", "connectorpunctuation", "dashpunctuation", "openpunctuation",
      "closepunctuation", "initialpunctuation", "finalpunctuation", "otherpunctuation",
      "mathsymbol", "currencysymbol", "modifiersymbol", "othersymbol", "spaceseparator",
      "lineseparator", "paragraphseparator", "control", "format", "surrogate", "privateuse",
      "unassigned"};
  for (int i = 0; i < kNumGeneralCategories; ++i) {
    if (n == kShort[i] || n == kLong[i]) return 1u << i;
  }
  auto group = [](const char* letters) {
    uint32_t m = 0;
    for (int i = 0; i < kNumGeneralCategories; ++i) {
      if (kShort[i][0] == letters[0]) m |= 1u << i;
    }
    return m;
  };
  if (n == "l" || n == "letter") return group("l");
  if (n == "m" || n == "mark" || n == "combiningmark") return group("m");
  if (n == "n" || n == "number") return group("n");
  if (n == "p" || n == "punctuation") return group("p");
  if (n == "s" || n == "symbol") return group("s");
  if (n == "z" || n == "separator") return group("z");
  if (n == "c" || n == "other") return group("c");
  if (n == "l&" || n == "lc" || n == "casedletter") return 0x7;  // Lu Ll Lt
  return 0;
}

}  // namespace

bool PretokenizerRegex::CharClass::Contains(char32_t cp) const {
  bool any = false;
  for (const ClassItem& item : items) {
    bool m = false;
    switch (item.kind) {
      case ClassItem::kRange: m = cp >= item.lo && cp <= item.hi; break;
      case ClassItem::kCategories: m = (CategoryBit(CategoryOf(cp)) & item.mask) != 0; break;
      case ClassItem::kWhiteSpace: m = IsWhiteSpace(cp); break;
      case ClassItem::kWord: m = IsWordChar(cp); break;
    }
    if (m != item.negated) {
      any = true;
      break;
    }
  }
  return any != negated;
}

// ---------------------------------------------------------------------------------------------

class PretokenizerRegex::Parser {
 public:
  Parser(PretokenizerRegex* re, std::vector<char32_t> p) : re_(re), p_(std::move(p)) {}

  absl::Status Parse() {
    auto top = ParseAlternation(false);
    if (!top.ok()) return top.status();
    if (pos_ != p_.size()) return Error("unbalanced ')'");
    return absl::OkStatus();
  }

 private:
  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("pre-tokenizer regex '", re_->pattern_, "': ",
                     absl::string_view(what.data(), what.size()), " at character ", pos_));
  }
  absl::Status Unsupported(std::string_view what) const {
    return absl::UnimplementedError(
        absl::StrCat("pre-tokenizer regex '", re_->pattern_, "': ",
                     absl::string_view(what.data(), what.size()), " (at character ", pos_,
                     ") is not supported"));
  }
  bool At(char32_t c) const { return pos_ < p_.size() && p_[pos_] == c; }
  bool AtString(std::string_view s) const {
    if (pos_ + s.size() > p_.size()) return false;
    for (size_t i = 0; i < s.size(); ++i) {
      if (p_[pos_ + i] != static_cast<unsigned char>(s[i])) return false;
    }
    return true;
  }

  int AddClass(CharClass c, bool icase) {
    if (icase) AddCaseVariants(&c);
    re_->classes_.push_back(std::move(c));
    return static_cast<int>(re_->classes_.size()) - 1;
  }

  // Case-insensitive matching of ASCII letters (with the two non-ASCII code points that
  // Unicode simple case folding maps onto them: U+017F -> s, U+212A -> k).
  static void AddCaseVariants(CharClass* c) {
    std::vector<ClassItem> extra;
    for (const ClassItem& item : c->items) {
      if (item.kind != ClassItem::kRange || item.negated) continue;
      for (char32_t ch = std::max<char32_t>(item.lo, 'A'); ch <= std::min<char32_t>(item.hi, 'z');
           ++ch) {
        char32_t other = 0;
        if (ch >= 'a' && ch <= 'z') other = ch - 32;
        if (ch >= 'A' && ch <= 'Z') other = ch + 32;
        if (other == 0) continue;
        extra.push_back(ClassItem{ClassItem::kRange, false, other, other, 0});
        const char32_t lower = ch | 0x20;
        if (lower == 's') extra.push_back(ClassItem{ClassItem::kRange, false, 0x17F, 0x17F, 0});
        if (lower == 'k') extra.push_back(ClassItem{ClassItem::kRange, false, 0x212A, 0x212A, 0});
      }
    }
    c->items.insert(c->items.end(), extra.begin(), extra.end());
  }

  // After a backslash. Either a literal code point (*literal set) or class items.
  absl::Status ParseEscape(std::vector<ClassItem>* items, char32_t* literal, bool* is_literal) {
    if (pos_ >= p_.size()) return Error("trailing backslash");
    const char32_t c = p_[pos_++];
    *is_literal = false;
    auto add = [&](ClassItem::Kind kind, bool negated, uint32_t mask = 0) {
      items->push_back(ClassItem{kind, negated, 0, 0, mask});
      return absl::OkStatus();
    };
    switch (c) {
      case 's': return add(ClassItem::kWhiteSpace, false);
      case 'S': return add(ClassItem::kWhiteSpace, true);
      case 'w': return add(ClassItem::kWord, false);
      case 'W': return add(ClassItem::kWord, true);
      case 'd': return add(ClassItem::kCategories, false, CategoryBit(GeneralCategory::kNd));
      case 'D': return add(ClassItem::kCategories, true, CategoryBit(GeneralCategory::kNd));
      case 'p':
      case 'P': {
        bool negated = c == 'P';
        std::string name;
        if (At('{')) {
          ++pos_;
          if (At('^')) {
            negated = !negated;
            ++pos_;
          }
          while (pos_ < p_.size() && p_[pos_] != '}') {
            if (p_[pos_] > 0x7F) return Error("non-ASCII property name");
            name.push_back(static_cast<char>(p_[pos_++]));
          }
          if (!At('}')) return Error("unterminated \\p{");
          ++pos_;
        } else if (pos_ < p_.size() && p_[pos_] < 0x80) {
          name.push_back(static_cast<char>(p_[pos_++]));
        } else {
          return Error("\\p without a property name");
        }
        const uint32_t mask = CategoryMask(name);
        if (mask == 0) return Unsupported(absl::StrCat("property \\p{", name, "}"));
        return add(ClassItem::kCategories, negated, mask);
      }
      case 'n': *literal = '\n'; break;
      case 'r': *literal = '\r'; break;
      case 't': *literal = '\t'; break;
      case 'f': *literal = '\f'; break;
      case 'v': *literal = '\v'; break;
      case 'a': *literal = 0x07; break;
      case 'e': *literal = 0x1B; break;
      case '0': *literal = 0; break;
      case 'x':
      case 'u': {
        const bool braced = At('{');
        if (braced) ++pos_;
        const size_t max_digits = braced ? 8 : (c == 'x' ? 2 : 4);
        char32_t v = 0;
        size_t digits = 0;
        while (digits < max_digits && pos_ < p_.size() && p_[pos_] < 0x80 &&
               std::isxdigit(static_cast<int>(p_[pos_]))) {
          const int ch = std::tolower(static_cast<int>(p_[pos_++]));
          v = v * 16 + static_cast<char32_t>(ch <= '9' ? ch - '0' : ch - 'a' + 10);
          ++digits;
        }
        if (digits == 0 || (braced && !At('}'))) return Error("bad \\x / \\u escape");
        if (braced) ++pos_;
        if (v > 0x10FFFF) return Error("code point out of range");
        *literal = v;
        break;
      }
      default:
        if (c < 0x80 && std::isalnum(static_cast<int>(c))) {
          return Unsupported(absl::StrCat("escape \\", std::string(1, static_cast<char>(c))));
        }
        *literal = c;  // escaped punctuation or any other character
    }
    *is_literal = true;
    return absl::OkStatus();
  }

  absl::StatusOr<int> ParseClass(bool icase) {
    CharClass cls;
    if (At('^')) {
      cls.negated = true;
      ++pos_;
    }
    bool first = true;
    while (pos_ < p_.size() && (first || p_[pos_] != ']')) {
      first = false;
      if (At('[')) return Unsupported("a nested class or [:posix:] class");
      if (AtString("&&")) return Unsupported("class intersection");
      char32_t lo = 0;
      if (At('\\')) {
        ++pos_;
        bool is_literal = false;
        if (absl::Status s = ParseEscape(&cls.items, &lo, &is_literal); !s.ok()) return s;
        if (!is_literal) continue;
      } else {
        lo = p_[pos_++];
      }
      char32_t hi = lo;
      if (At('-') && pos_ + 1 < p_.size() && p_[pos_ + 1] != ']') {
        ++pos_;
        if (At('\\')) {
          ++pos_;
          std::vector<ClassItem> ignored;
          bool is_literal = false;
          if (absl::Status s = ParseEscape(&ignored, &hi, &is_literal); !s.ok()) return s;
          if (!is_literal) return Error("a class escape cannot end a range");
        } else {
          hi = p_[pos_++];
        }
        if (hi < lo) return Error("range out of order");
      }
      cls.items.push_back(ClassItem{ClassItem::kRange, false, lo, hi, 0});
    }
    if (!At(']')) return Error("unterminated character class");
    ++pos_;
    return AddClass(std::move(cls), icase);
  }

  absl::Status ParseQuantifier(Node* node) {
    if (pos_ >= p_.size()) return absl::OkStatus();
    const char32_t c = p_[pos_];
    int min = 1, max = 1;
    if (c == '?') {
      min = 0;
      ++pos_;
    } else if (c == '*') {
      min = 0;
      max = -1;
      ++pos_;
    } else if (c == '+') {
      max = -1;
      ++pos_;
    } else if (c == '{') {
      size_t q = pos_ + 1;
      auto number = [&](int* out) {
        size_t start = q;
        long v = 0;
        while (q < p_.size() && p_[q] >= '0' && p_[q] <= '9' && v < 100000) v = v * 10 + (p_[q++] - '0');
        *out = static_cast<int>(v);
        return q > start;
      };
      int lo = 0, hi = 0;
      const bool has_lo = number(&lo);
      if (q < p_.size() && p_[q] == '}' && has_lo) {
        hi = lo;
      } else if (q < p_.size() && p_[q] == ',') {
        ++q;
        if (!number(&hi)) hi = -1;
        if (!has_lo && hi < 0) return Error("'{,}' is not a quantifier");
      } else {
        return Unsupported("a literal '{'");
      }
      if (q >= p_.size() || p_[q] != '}') return Error("unterminated {} quantifier");
      if (hi >= 0 && hi < lo) return Error("quantifier {n,m} with m < n");
      pos_ = q + 1;
      min = lo;
      max = hi;
    } else {
      return absl::OkStatus();
    }
    node->min = min;
    node->max = max;
    if (At('?')) {
      node->mode = Node::kLazy;
      ++pos_;
    } else if (At('+')) {
      node->mode = Node::kPossessive;
      ++pos_;
    }
    if (node->kind == Node::kLookahead || node->kind == Node::kNegativeLookahead) {
      return Error("quantifier on a lookahead");
    }
    if (node->kind == Node::kGroup && !(node->max == 1 && node->min <= 1)) {
      return Unsupported("a repeated group (only '?' may follow a group)");
    }
    if (pos_ < p_.size() && (p_[pos_] == '*' || p_[pos_] == '+' || p_[pos_] == '?' ||
                              p_[pos_] == '{')) {
      return Unsupported("a quantifier on a quantifier");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int> ParseAlternation(bool icase) {
    if (++depth_ > 64) return Error("groups nested too deeply");
    const int gi = static_cast<int>(re_->groups_.size());
    re_->groups_.emplace_back();
    Alternation alt;
    Sequence seq;
    while (pos_ < p_.size() && p_[pos_] != ')') {
      const char32_t c = p_[pos_];
      if (c == '|') {
        alt.push_back(std::move(seq));
        seq.clear();
        ++pos_;
        continue;
      }
      Node node;
      if (c == '(') {
        ++pos_;
        bool group_icase = icase;
        Node::Kind kind = Node::kGroup;
        if (AtString("?:")) {
          pos_ += 2;
        } else if (AtString("?i:")) {
          pos_ += 3;
          group_icase = true;
        } else if (AtString("?-i:")) {
          pos_ += 4;
          group_icase = false;
        } else if (AtString("?i)")) {
          pos_ += 3;
          icase = true;  // for the rest of this group
          continue;
        } else if (AtString("?=")) {
          pos_ += 2;
          kind = Node::kLookahead;
        } else if (AtString("?!")) {
          pos_ += 2;
          kind = Node::kNegativeLookahead;
        } else if (At('?')) {
          return Unsupported("this group syntax (lookbehind, named or atomic group, flags)");
        }
        auto inner = ParseAlternation(group_icase);
        if (!inner.ok()) return inner.status();
        if (!At(')')) return Error("missing ')'");
        ++pos_;
        node.kind = kind;
        node.index = *inner;
      } else if (c == '[') {
        ++pos_;
        auto cls = ParseClass(icase);
        if (!cls.ok()) return cls.status();
        node.index = *cls;
      } else if (c == '.') {
        ++pos_;
        CharClass any;
        any.negated = true;
        any.items.push_back(ClassItem{ClassItem::kRange, false, '\n', '\n', 0});
        node.index = AddClass(std::move(any), false);
      } else if (c == '\\') {
        ++pos_;
        CharClass cls;
        char32_t literal = 0;
        bool is_literal = false;
        if (absl::Status s = ParseEscape(&cls.items, &literal, &is_literal); !s.ok()) return s;
        if (is_literal) cls.items.push_back(ClassItem{ClassItem::kRange, false, literal, literal, 0});
        node.index = AddClass(std::move(cls), icase);
      } else if (c == '^' || c == '$') {
        return Unsupported("anchors");
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        return Error("nothing to repeat");
      } else {
        ++pos_;
        CharClass cls;
        cls.items.push_back(ClassItem{ClassItem::kRange, false, c, c, 0});
        node.index = AddClass(std::move(cls), icase);
      }
      if (absl::Status s = ParseQuantifier(&node); !s.ok()) return s;
      seq.push_back(node);
    }
    alt.push_back(std::move(seq));
    re_->groups_[gi] = std::move(alt);
    --depth_;
    return gi;
  }

  PretokenizerRegex* re_;
  std::vector<char32_t> p_;
  size_t pos_ = 0;
  int depth_ = 0;
};

absl::StatusOr<PretokenizerRegex> PretokenizerRegex::Compile(std::string_view pattern) {
  PretokenizerRegex re;
  re.pattern_ = std::string(pattern);
  std::vector<char32_t> cps;
  for (size_t i = 0; i < pattern.size();) {
    const Utf8Char c = DecodeUtf8(pattern, i);
    if (!c.valid) return absl::InvalidArgumentError("pre-tokenizer regex is not valid UTF-8");
    cps.push_back(c.cp);
    i += c.length;
  }
  // Real pre-tokenizer patterns are a few hundred characters; a cap bounds parsing and the
  // matcher's recursion (one frame per quantified element) for hostile files.
  constexpr size_t kMaxPatternLength = 4096;
  if (cps.size() > kMaxPatternLength) {
    return absl::InvalidArgumentError(absl::StrCat("pre-tokenizer regex of ", cps.size(),
                                                   " characters is longer than ",
                                                   kMaxPatternLength));
  }
  Parser parser(&re, std::move(cps));
  if (absl::Status s = parser.Parse(); !s.ok()) return s;
  return re;
}

bool PretokenizerRegex::MatchAlt(const std::vector<char32_t>& text, const Alternation& alt,
                                 size_t pos, const Cont* k, size_t* end) const {
  for (const Sequence& s : alt) {
    if (MatchSeq(text, s, 0, pos, k, end)) return true;
  }
  return false;
}

bool PretokenizerRegex::MatchSeq(const std::vector<char32_t>& text, const Sequence& seq,
                                 size_t index, size_t pos, const Cont* k, size_t* end) const {
  const size_t n = text.size();
  while (index < seq.size()) {
    const Node& node = seq[index];
    switch (node.kind) {
      case Node::kChar: {
        const CharClass& cc = classes_[node.index];
        if (node.min == 1 && node.max == 1) {
          if (pos < n && cc.Contains(text[pos])) {
            ++pos;
            ++index;
            continue;
          }
          return false;
        }
        const size_t limit = node.max < 0 ? n - pos : std::min<size_t>(n - pos, node.max);
        const size_t min = static_cast<size_t>(node.min);
        size_t run = 0;
        if (node.mode == Node::kLazy) {
          while (run < min) {
            if (run < limit && cc.Contains(text[pos + run])) {
              ++run;
            } else {
              return false;
            }
          }
          while (true) {
            if (MatchSeq(text, seq, index + 1, pos + run, k, end)) return true;
            if (run < limit && cc.Contains(text[pos + run])) {
              ++run;
            } else {
              return false;
            }
          }
        }
        while (run < limit && cc.Contains(text[pos + run])) ++run;
        if (run < min) return false;
        if (node.mode == Node::kPossessive) {
          pos += run;
          ++index;
          continue;
        }
        for (size_t r = run + 1; r-- > min;) {
          if (MatchSeq(text, seq, index + 1, pos + r, k, end)) return true;
        }
        return false;
      }
      case Node::kGroup: {
        const Alternation& group = groups_[node.index];
        const Cont next{&seq, index + 1, k};
        if (node.min == 1) return MatchAlt(text, group, pos, &next, end);
        if (node.mode == Node::kLazy) {
          if (MatchSeq(text, seq, index + 1, pos, k, end)) return true;
          return MatchAlt(text, group, pos, &next, end);
        }
        if (node.mode == Node::kPossessive) {
          size_t e = 0;
          if (MatchAlt(text, group, pos, nullptr, &e)) pos = e;
          ++index;
          continue;
        }
        if (MatchAlt(text, group, pos, &next, end)) return true;
        ++index;
        continue;
      }
      case Node::kLookahead:
      case Node::kNegativeLookahead: {
        size_t e = 0;
        const bool m = MatchAlt(text, groups_[node.index], pos, nullptr, &e);
        if (m != (node.kind == Node::kLookahead)) return false;
        ++index;
        continue;
      }
    }
  }
  if (k == nullptr) {
    *end = pos;
    return true;
  }
  return MatchSeq(text, *k->seq, k->index, pos, k->next, end);
}

long PretokenizerRegex::MatchAt(const std::vector<char32_t>& text, size_t pos) const {
  size_t end = 0;
  if (!MatchAlt(text, groups_[0], pos, nullptr, &end)) return -1;
  return static_cast<long>(end);
}

std::vector<std::pair<size_t, size_t>> PretokenizerRegex::FindAll(
    const std::vector<char32_t>& text) const {
  std::vector<std::pair<size_t, size_t>> out;
  size_t pos = 0;
  while (pos < text.size()) {
    const long end = MatchAt(text, pos);
    if (end > static_cast<long>(pos)) {
      out.emplace_back(pos, static_cast<size_t>(end));
      pos = static_cast<size_t>(end);
    } else {
      ++pos;
    }
  }
  return out;
}

}  // namespace quarry::tokenizer_internal
