#include "tokenizer/sentencepiece_processor.h"

#include <algorithm>
#include <cfloat>
#include <cstring>
#include <functional>
#include <queue>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "tokenizer/unicode.h"

namespace quarry::tokenizer_internal {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581
constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// SentencePiece's string_util::OneCharLen: the length implied by the lead byte alone.
size_t OneCharLen(std::string_view s) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return std::min<size_t>(s.size(), kLen[static_cast<uint8_t>(s[0]) >> 4]);
}

// SentencePiece's IsValidDecodeUTF8: a well-formed character, or an invalid byte (length 1).
// (A literal U+FFFD is well-formed.)
bool IsValidUtf8Prefix(std::string_view s, size_t* length) {
  const Utf8Char c = DecodeUtf8(s, 0);
  *length = c.length;
  return c.valid;
}

std::string ByteToPiece(uint8_t b) { return absl::StrFormat("<0x%02X>", b); }

// "<0xAB>" (upper-case hex, as SentencePiece writes it) -> 0xAB; -1 otherwise.
int PieceToByte(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; ++i) {
    const char c = piece[i];
    if (c >= '0' && c <= '9') {
      v = v * 16 + (c - '0');
    } else if (c >= 'A' && c <= 'F') {
      v = v * 16 + (c - 'A' + 10);
    } else {
      return -1;
    }
  }
  return v;
}

size_t PrefixMatch(const PieceTrie* trie, std::string_view text, bool* found) {
  size_t longest = 0;
  if (trie != nullptr && !trie->empty()) {
    trie->ForEachPrefix(text, [&](size_t length, int32_t) { longest = std::max(longest, length); });
  }
  *found = longest > 0;
  return longest > 0 ? longest : OneCharLen(text);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// PieceTrie

int32_t PieceTrie::Child(int32_t node, uint8_t byte) const {
  const auto& children = nodes_[node].children;
  auto it = std::lower_bound(children.begin(), children.end(), byte,
                             [](const std::pair<uint8_t, int32_t>& c, uint8_t b) {
                               return c.first < b;
                             });
  if (it == children.end() || it->first != byte) return -1;
  return it->second;
}

void PieceTrie::Insert(std::string_view key, int32_t value) {
  int32_t node = 0;
  for (char ch : key) {
    const uint8_t b = static_cast<uint8_t>(ch);
    int32_t next = Child(node, b);
    if (next < 0) {
      next = static_cast<int32_t>(nodes_.size());
      nodes_.emplace_back();
      auto& children = nodes_[node].children;
      auto it = std::lower_bound(children.begin(), children.end(), b,
                                 [](const std::pair<uint8_t, int32_t>& c, uint8_t v) {
                                   return c.first < v;
                                 });
      children.insert(it, {b, next});
    }
    node = next;
  }
  nodes_[node].value = value;
}

template <typename Fn>
void PieceTrie::ForEachPrefix(std::string_view text, Fn&& fn) const {
  int32_t node = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    node = Child(node, static_cast<uint8_t>(text[i]));
    if (node < 0) return;
    if (nodes_[node].value >= 0) fn(i + 1, nodes_[node].value);
  }
}

// ---------------------------------------------------------------------------------------------
// CharsMap: <u32 little-endian trie size><darts-clone units><NUL-separated replacements>

absl::StatusOr<CharsMap> CharsMap::Parse(std::string_view blob) {
  if (blob.size() <= 4) {
    return absl::InvalidArgumentError("precompiled_charsmap is too short (blob is broken)");
  }
  uint32_t trie_size = 0;
  for (int i = 0; i < 4; ++i) trie_size |= static_cast<uint32_t>(static_cast<uint8_t>(blob[i])) << (8 * i);
  if (trie_size >= blob.size() || trie_size % 4 != 0 || trie_size == 0) {
    return absl::InvalidArgumentError(absl::StrCat("precompiled_charsmap declares a trie of ",
                                                   trie_size, " bytes in a blob of ",
                                                   blob.size()));
  }
  CharsMap map;
  map.units_.resize(trie_size / 4);
  std::memcpy(map.units_.data(), blob.data() + 4, trie_size);  // little-endian host
  map.normalized_ = std::string(blob.substr(4 + trie_size));
  return map;
}

size_t CharsMap::LongestPrefix(std::string_view input, std::string_view* replacement) const {
  // darts-clone DoubleArray::commonPrefixSearch with bounds checks.
  auto has_leaf = [](uint32_t u) { return ((u >> 8) & 1) == 1; };
  auto value = [](uint32_t u) { return static_cast<int32_t>(u & 0x7FFFFFFFu); };
  auto label = [](uint32_t u) { return u & (0x80000000u | 0xFFu); };
  auto offset = [](uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); };
  size_t longest = 0;
  int32_t longest_value = -1;
  size_t node_pos = offset(units_[0]);
  for (size_t i = 0; i < input.size(); ++i) {
    const uint8_t b = static_cast<uint8_t>(input[i]);
    node_pos ^= b;
    if (node_pos >= units_.size()) break;
    const uint32_t unit = units_[node_pos];
    if (label(unit) != b) break;
    node_pos ^= offset(unit);
    if (has_leaf(unit)) {
      if (node_pos >= units_.size()) break;
      longest = i + 1;
      longest_value = value(units_[node_pos]);
    }
  }
  if (longest == 0 || longest_value < 0 ||
      static_cast<size_t>(longest_value) >= normalized_.size()) {
    return 0;
  }
  const char* begin = normalized_.data() + longest_value;
  const size_t max_len = normalized_.size() - longest_value;
  *replacement = std::string_view(begin, strnlen(begin, max_len));
  return longest;
}

// ---------------------------------------------------------------------------------------------
// SpNormalizer (SentencePiece's normalizer::Normalizer)

absl::StatusOr<SpNormalizer> SpNormalizer::Create(const SpNormalizerSpec& spec,
                                                  bool treat_whitespace_as_suffix,
                                                  const PieceTrie* user_defined) {
  SpNormalizer n;
  n.spec_ = spec;
  n.spec_.precompiled_charsmap.clear();  // parsed below; no need for a second copy
  n.treat_whitespace_as_suffix_ = treat_whitespace_as_suffix;
  n.user_defined_ = user_defined;
  if (!spec.precompiled_charsmap.empty()) {
    auto map = CharsMap::Parse(spec.precompiled_charsmap);
    if (!map.ok()) return map.status();
    n.charsmap_ = std::make_shared<const CharsMap>(*std::move(map));
  }
  return n;
}

std::pair<std::string_view, size_t> SpNormalizer::NormalizePrefix(std::string_view input) const {
  if (input.empty()) return {};
  if (user_defined_ != nullptr) {
    bool found = false;
    const size_t length = PrefixMatch(user_defined_, input, &found);
    if (found) return {input.substr(0, length), length};
  }
  if (charsmap_ != nullptr) {
    std::string_view replacement;
    if (size_t length = charsmap_->LongestPrefix(input, &replacement); length > 0) {
      return {replacement, length};
    }
  }
  size_t length = 0;
  if (!IsValidUtf8Prefix(input, &length)) return {kReplacementChar, 1};
  return {input.substr(0, length), length};
}

std::string SpNormalizer::Normalize(std::string_view input, std::vector<size_t>* norm_to_orig,
                                    bool add_dummy_prefix) const {
  std::string normalized;
  norm_to_orig->clear();
  if (input.empty()) return normalized;
  size_t consumed = 0;
  if (spec_.remove_extra_whitespaces) {  // leading spaces
    while (!input.empty()) {
      const auto p = NormalizePrefix(input);
      if (p.first != " ") break;
      input.remove_prefix(p.second);
      consumed += p.second;
    }
  }
  if (input.empty()) return normalized;
  normalized.reserve(input.size() * 3);
  norm_to_orig->reserve(input.size() * 3);

  auto add_ws = [&] {
    if (spec_.escape_whitespaces) {
      normalized.append(kSpaceSymbol);
      norm_to_orig->insert(norm_to_orig->end(), kSpaceSymbol.size(), consumed);
    } else {
      normalized.push_back(' ');
      norm_to_orig->push_back(consumed);
    }
  };
  const bool dummy = spec_.add_dummy_prefix && add_dummy_prefix;
  if (!treat_whitespace_as_suffix_ && dummy) add_ws();

  bool is_prev_space = spec_.remove_extra_whitespaces;
  while (!input.empty()) {
    const auto p = NormalizePrefix(input);
    std::string_view sp = p.first;
    while (is_prev_space && !sp.empty() && sp[0] == ' ') sp.remove_prefix(1);
    if (!sp.empty()) {
      for (char c : sp) {
        if (spec_.escape_whitespaces && c == ' ') {
          normalized.append(kSpaceSymbol);
          norm_to_orig->insert(norm_to_orig->end(), kSpaceSymbol.size(), consumed);
        } else {
          normalized.push_back(c);
          norm_to_orig->push_back(consumed);
        }
      }
      is_prev_space = sp.back() == ' ';
    }
    consumed += p.second;
    input.remove_prefix(p.second);
    if (!spec_.remove_extra_whitespaces) is_prev_space = false;
  }
  if (spec_.remove_extra_whitespaces) {  // trailing spaces
    const std::string_view space = spec_.escape_whitespaces ? kSpaceSymbol : " ";
    while (normalized.size() >= space.size() &&
           std::string_view(normalized).substr(normalized.size() - space.size()) == space) {
      const size_t length = normalized.size() - space.size();
      consumed = (*norm_to_orig)[length];
      normalized.resize(length);
      norm_to_orig->resize(length);
    }
  }
  if (treat_whitespace_as_suffix_ && dummy) add_ws();
  norm_to_orig->push_back(consumed);
  return normalized;
}

// ---------------------------------------------------------------------------------------------
// SpProcessor

absl::StatusOr<std::unique_ptr<SpProcessor>> SpProcessor::Create(SpModelProto model,
                                                                std::string source) {
  auto fail = [&](absl::StatusCode code, const std::string& what) {
    return absl::Status(code, absl::StrCat(source, ": ", what));
  };
  std::unique_ptr<SpProcessor> p(new SpProcessor());
  p->source_ = source;
  p->user_defined_ = std::make_unique<PieceTrie>();
  const auto& spec = model.trainer_spec;
  switch (spec.model_type) {
    case SpTrainerSpec::kUnigram:
    case SpTrainerSpec::kBpe:
    case SpTrainerSpec::kChar:
      break;
    case SpTrainerSpec::kWord:
      return fail(absl::StatusCode::kUnimplemented,
                  "SentencePiece model_type WORD is not supported (UNIGRAM, BPE and CHAR are)");
    default:
      return fail(absl::StatusCode::kInvalidArgument,
                  absl::StrCat("unknown SentencePiece model_type ", spec.model_type));
  }
  bool has_byte[256] = {};
  bool any_user_defined = false;
  for (size_t i = 0; i < model.pieces.size(); ++i) {
    const SpPiece& sp = model.pieces[i];
    const int32_t id = static_cast<int32_t>(i);
    if (sp.piece.empty()) return fail(absl::StatusCode::kInvalidArgument,
                                      absl::StrCat("piece ", i, " is empty"));
    const bool normal = sp.type == SpPiece::kNormal || sp.type == SpPiece::kUserDefined ||
                        sp.type == SpPiece::kUnused;
    auto& map = normal ? p->pieces_ : p->reserved_;
    if (!map.emplace(sp.piece, id).second) {
      return fail(absl::StatusCode::kInvalidArgument,
                  absl::StrCat("piece '", sp.piece, "' (id ", i, ") is defined twice"));
    }
    if (sp.type == SpPiece::kUserDefined) {
      p->user_defined_->Insert(sp.piece, id);
      any_user_defined = true;
    }
    if (sp.type == SpPiece::kUnknown) {
      if (p->unk_id_ >= 0) {
        return fail(absl::StatusCode::kInvalidArgument,
                    absl::StrCat("more than one UNKNOWN piece (ids ", p->unk_id_, " and ", i, ")"));
      }
      p->unk_id_ = id;
    }
    if (sp.type == SpPiece::kByte) {
      if (!spec.byte_fallback) {
        return fail(absl::StatusCode::kInvalidArgument,
                    absl::StrCat("byte piece '", sp.piece, "' (id ", i,
                                 ") but trainer_spec.byte_fallback is false"));
      }
      const int b = PieceToByte(sp.piece);
      if (b < 0) {
        return fail(absl::StatusCode::kInvalidArgument,
                    absl::StrCat("byte piece '", sp.piece, "' (id ", i, ") is not <0xHH>"));
      }
      has_byte[b] = true;
      p->byte_ids_[b] = id;
    }
  }
  if (p->unk_id_ < 0) {
    return fail(absl::StatusCode::kInvalidArgument, "the model has no UNKNOWN (<unk>) piece");
  }
  if (spec.byte_fallback) {
    for (int b = 0; b < 256; ++b) {
      if (!has_byte[b]) {
        return fail(absl::StatusCode::kInvalidArgument,
                    absl::StrCat("byte_fallback is true but byte piece ", ByteToPiece(b),
                                 " is missing"));
      }
    }
  }
  if (!any_user_defined) p->user_defined_.reset();

  if (spec.model_type == SpTrainerSpec::kUnigram) {
    float min_score = FLT_MAX, max_score = FLT_MIN;
    for (const SpPiece& sp : model.pieces) {
      if (sp.type == SpPiece::kNormal) {
        min_score = std::min(min_score, sp.score);
        max_score = std::max(max_score, sp.score);
      }
    }
    p->min_score_ = min_score == FLT_MAX ? 0.0f : min_score;
    p->max_score_ = max_score == FLT_MIN ? 0.0f : max_score;
    for (const auto& [piece, id] : p->pieces_) p->unigram_trie_.Insert(piece, id);
  }

  auto normalizer = SpNormalizer::Create(model.normalizer_spec, spec.treat_whitespace_as_suffix,
                                         p->user_defined_.get());
  if (!normalizer.ok()) {
    return fail(absl::StatusCode::kInvalidArgument,
                absl::StrCat("normalizer_spec: ", normalizer.status().message()));
  }
  p->normalizer_ = std::make_unique<SpNormalizer>(*std::move(normalizer));
  if (model.has_denormalizer && !model.denormalizer_spec.precompiled_charsmap.empty()) {
    auto denormalizer = SpNormalizer::Create(model.denormalizer_spec, false, nullptr);
    if (!denormalizer.ok()) {
      return fail(absl::StatusCode::kInvalidArgument,
                  absl::StrCat("denormalizer_spec: ", denormalizer.status().message()));
    }
    p->denormalizer_ = std::make_unique<SpNormalizer>(*std::move(denormalizer));
  }
  model.normalizer_spec.precompiled_charsmap.clear();
  model.denormalizer_spec.precompiled_charsmap.clear();
  p->model_ = std::move(model);
  return p;
}

int32_t SpProcessor::FindPiece(std::string_view piece) const {
  if (auto it = reserved_.find(piece); it != reserved_.end()) return it->second;
  if (auto it = pieces_.find(piece); it != pieces_.end()) return it->second;
  return -1;
}

int32_t SpProcessor::PieceToId(std::string_view piece) const {
  const int32_t id = FindPiece(piece);
  return id >= 0 ? id : unk_id_;
}

size_t SpProcessor::PrefixMatch(std::string_view text, bool* found) const {
  return tokenizer_internal::PrefixMatch(user_defined_.get(), text, found);
}

std::string SpProcessor::Normalize(std::string_view text, std::vector<size_t>* norm_to_orig,
                                   bool add_dummy_prefix) const {
  return normalizer_->Normalize(text, norm_to_orig, add_dummy_prefix);
}

SpProcessor::EncodeResult SpProcessor::EncodeBpe(std::string_view normalized) const {
  // bpe_model.cc: repeatedly merge the adjacent pair whose merged piece has the highest score
  // (ties: leftmost), then resegment UNUSED pieces into the pieces they were merged from.
  struct Symbol {
    int prev, next;
    bool freeze;  // a user-defined symbol: never merged
    std::string_view piece;
  };
  struct Pair {
    int left, right;
    float score;
    size_t size;
  };
  struct PairLess {
    bool operator()(const Pair& a, const Pair& b) const {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
  };
  std::priority_queue<Pair, std::vector<Pair>, PairLess> agenda;
  std::vector<Symbol> symbols;
  symbols.reserve(normalized.size());
  std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> rev_merge;

  auto maybe_add_pair = [&](int left, int right) {
    if (left == -1 || right == -1 || symbols[left].freeze || symbols[right].freeze) return;
    const std::string_view piece(symbols[left].piece.data(),
                                 symbols[left].piece.size() + symbols[right].piece.size());
    const auto it = pieces_.find(piece);
    if (it == pieces_.end()) return;
    agenda.push(Pair{left, right, model_.pieces[it->second].score, piece.size()});
    if (model_.pieces[it->second].type == SpPiece::kUnused) {
      rev_merge[piece] = {symbols[left].piece, symbols[right].piece};
    }
  };

  int index = 0;
  while (!normalized.empty()) {
    Symbol s;
    const size_t length = PrefixMatch(normalized, &s.freeze);
    s.piece = normalized.substr(0, length);
    s.prev = index == 0 ? -1 : index - 1;
    normalized.remove_prefix(length);
    s.next = normalized.empty() ? -1 : index + 1;
    ++index;
    symbols.push_back(s);
  }
  if (symbols.empty()) return {};
  for (size_t i = 1; i < symbols.size(); ++i) maybe_add_pair(static_cast<int>(i) - 1, static_cast<int>(i));

  while (!agenda.empty()) {
    const Pair top = agenda.top();
    agenda.pop();
    Symbol& left = symbols[top.left];
    Symbol& right = symbols[top.right];
    if (left.piece.empty() || right.piece.empty() ||
        left.piece.size() + right.piece.size() != top.size) {
      continue;  // stale
    }
    left.piece = std::string_view(left.piece.data(), left.piece.size() + right.piece.size());
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    right.piece = std::string_view();
    maybe_add_pair(left.prev, top.left);
    maybe_add_pair(top.left, left.next);
  }

  EncodeResult output;
  std::function<void(std::string_view)> resegment = [&](std::string_view w) {
    const int32_t id = PieceToId(w);
    if (model_.pieces[id].type != SpPiece::kUnused) {
      output.emplace_back(w, id);
      return;
    }
    const auto it = rev_merge.find(w);
    if (it == rev_merge.end()) {
      output.emplace_back(w, id);
      return;
    }
    resegment(it->second.first);
    resegment(it->second.second);
  };
  for (int i = 0; i != -1; i = symbols[i].next) resegment(symbols[i].piece);
  return output;
}

SpProcessor::EncodeResult SpProcessor::EncodeUnigram(std::string_view normalized) const {
  // unigram_model.cc Model::EncodeOptimized: Viterbi over the lattice built on the fly; the best
  // path ending at each byte position, ties kept by the earliest start. The arithmetic types
  // (a double score for pieces, float sums for unknowns) follow the library's.
  struct BestPathNode {
    int32_t id = -1;
    float best_path_score = 0;
    long starts_at = -1;
  };
  constexpr float kUnkPenalty = 10.0f;
  const size_t size = normalized.size();
  const float unk_score = min_score_ - kUnkPenalty;
  std::vector<BestPathNode> best(size + 1);
  size_t starts_at = 0;
  while (starts_at < size) {
    const float best_till_here = best[starts_at].best_path_score;
    bool has_single_node = false;
    const size_t mblen = OneCharLen(normalized.substr(starts_at));
    unigram_trie_.ForEachPrefix(normalized.substr(starts_at), [&](size_t length, int32_t id) {
      const SpPiece::Type t = model_.pieces[id].type;
      if (t == SpPiece::kUnused) return;
      BestPathNode& target = best[starts_at + length];
      const double score = t == SpPiece::kUserDefined
                               ? (static_cast<float>(length) * max_score_ - 0.1)
                               : static_cast<double>(model_.pieces[id].score);
      const double candidate = score + best_till_here;
      if (target.starts_at == -1 || candidate > target.best_path_score) {
        target.best_path_score = static_cast<float>(candidate);
        target.starts_at = static_cast<long>(starts_at);
        target.id = id;
      }
      if (!has_single_node && length == mblen) has_single_node = true;
    });
    if (!has_single_node) {
      BestPathNode& target = best[starts_at + mblen];
      const float candidate = unk_score + best_till_here;
      if (target.starts_at == -1 || candidate > target.best_path_score) {
        target.best_path_score = candidate;
        target.starts_at = static_cast<long>(starts_at);
        target.id = unk_id_;
      }
    }
    starts_at += mblen;
  }
  EncodeResult results;
  size_t ends_at = size;
  while (ends_at > 0) {
    const BestPathNode& node = best[ends_at];
    results.emplace_back(normalized.substr(node.starts_at, ends_at - node.starts_at), node.id);
    ends_at = static_cast<size_t>(node.starts_at);
  }
  std::reverse(results.begin(), results.end());
  return results;
}

SpProcessor::EncodeResult SpProcessor::EncodeChar(std::string_view normalized) const {
  EncodeResult output;
  while (!normalized.empty()) {
    bool found = false;
    const size_t length = PrefixMatch(normalized, &found);
    const std::string_view w = normalized.substr(0, length);
    output.emplace_back(w, PieceToId(w));
    normalized.remove_prefix(length);
  }
  return output;
}

std::vector<int32_t> SpProcessor::Encode(std::string_view text, bool add_dummy_prefix) const {
  std::vector<size_t> norm_to_orig;
  const std::string normalized = Normalize(text, &norm_to_orig, add_dummy_prefix);
  if (normalized.empty()) return {};
  EncodeResult result;
  switch (model_.trainer_spec.model_type) {
    case SpTrainerSpec::kBpe: result = EncodeBpe(normalized); break;
    case SpTrainerSpec::kChar: result = EncodeChar(normalized); break;
    default: result = EncodeUnigram(normalized); break;
  }
  // SentencePieceProcessor::PopulateSentencePieceText: unknown pieces become their UTF-8 bytes
  // with byte_fallback; otherwise a run of unknown pieces collapses into one <unk>.
  std::vector<int32_t> ids;
  ids.reserve(result.size());
  bool prev_unk = false;
  for (const auto& [piece, id] : result) {
    const bool is_unk = model_.pieces[id].type == SpPiece::kUnknown;
    if (is_unk && model_.trainer_spec.byte_fallback) {
      for (char c : piece) ids.push_back(byte_ids_[static_cast<uint8_t>(c)]);
    } else if (!(is_unk && prev_unk)) {
      ids.push_back(id);
    }
    prev_unk = is_unk;
  }
  return ids;
}

absl::StatusOr<std::string> SpProcessor::Decode(
    absl::Span<const int32_t> ids, const std::unordered_map<int32_t, std::string>* extra) const {
  const auto& nspec = model_.normalizer_spec;
  std::string text;
  std::string bytes;  // a pending run of byte pieces
  auto flush_bytes = [&] {
    size_t offset = 0;
    while (offset < bytes.size()) {
      size_t length = 0;
      if (IsValidUtf8Prefix(std::string_view(bytes).substr(offset), &length)) {
        text.append(bytes, offset, length);
      } else {
        text.append(kReplacementChar);
      }
      offset += length;
    }
    bytes.clear();
  };
  bool is_bos_ws = true;
  bool bos_ws_seen = false;
  for (const int32_t id : ids) {
    if (extra != nullptr && (id < 0 || id >= piece_size())) {
      if (auto it = extra->find(id); it != extra->end()) {
        flush_bytes();
        text += it->second;
        continue;
      }
    }
    if (id < 0 || id >= piece_size()) {
      return absl::OutOfRangeError(absl::StrCat(Av(source_), ": cannot decode id ", id,
                                                ": valid ids are 0..", piece_size() - 1));
    }
    const SpPiece& sp = model_.pieces[id];
    if (sp.type == SpPiece::kByte) {
      bytes.push_back(static_cast<char>(PieceToByte(sp.piece)));
      continue;
    }
    flush_bytes();
    if (bos_ws_seen || !text.empty()) is_bos_ws = false;
    if (sp.type == SpPiece::kControl) continue;  // <s>, </s>: invisible
    if (sp.type == SpPiece::kUnknown) {
      text.append(model_.trainer_spec.unk_surface);
      continue;
    }
    std::string_view piece = sp.piece;
    if (is_bos_ws && (nspec.add_dummy_prefix || nspec.remove_extra_whitespaces)) {
      if (piece.substr(0, kSpaceSymbol.size()) == kSpaceSymbol) {
        piece.remove_prefix(kSpaceSymbol.size());
        if (!nspec.remove_extra_whitespaces) bos_ws_seen = true;
      }
    }
    for (size_t pos = 0; pos < piece.size();) {
      if (piece.substr(pos, kSpaceSymbol.size()) == kSpaceSymbol) {
        text.push_back(' ');
        pos += kSpaceSymbol.size();
      } else {
        text.push_back(piece[pos++]);
      }
    }
  }
  flush_bytes();
  if (denormalizer_ != nullptr) {
    std::vector<size_t> unused;
    text = denormalizer_->Normalize(text, &unused, /*add_dummy_prefix=*/true);
  }
  return text;
}

}  // namespace quarry::tokenizer_internal
