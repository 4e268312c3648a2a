#include "quarry/calibration.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "config/json_internal.h"
#include "quarry/status.h"

namespace quarry {
namespace {

using internal::Json;

CalibrationOptions::Format DetectFormat(const std::string& path) {
  if (absl::EndsWith(path, ".jsonl")) return CalibrationOptions::Format::kJsonl;
  if (absl::EndsWith(path, ".json")) return CalibrationOptions::Format::kTokens;
  return CalibrationOptions::Format::kText;
}

absl::StatusOr<std::string> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open calibration data '", path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

absl::StatusOr<CalibrationSet> LoadCalibration(const CalibrationOptions& options,
                                               const Tokenizer& tokenizer, int max_positions,
                                               std::vector<std::string>* warnings) {
  if (options.num_samples <= 0)
    return absl::InvalidArgumentError("calibration num_samples must be > 0");
  if (options.seq_len <= 0) return absl::InvalidArgumentError("calibration seq_len must be > 0");
  int seq_len = options.seq_len;
  if (max_positions > 0 && seq_len > max_positions) {
    if (warnings)
      warnings->push_back(absl::StrCat("calibration seq_len ", seq_len, " exceeds the model's ",
                                       max_positions, " positions; using ", max_positions));
    seq_len = max_positions;
  }
  QUARRY_ASSIGN_OR_RETURN(std::string data, ReadAll(options.path));
  auto format = options.format == CalibrationOptions::Format::kAuto ? DetectFormat(options.path)
                                                                    : options.format;
  std::vector<std::vector<int32_t>> all;
  if (format == CalibrationOptions::Format::kJsonl) {
    std::istringstream lines(data);
    std::string line;
    int lineno = 0;
    while (std::getline(lines, line)) {
      ++lineno;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      Json j;
      try {
        j = Json::parse(line);
      } catch (const Json::parse_error& e) {
        return absl::InvalidArgumentError(absl::StrCat(options.path, ":", lineno,
                                                       ": invalid JSON at byte ", e.byte));
      }
      if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
        return absl::InvalidArgumentError(absl::StrCat(options.path, ":", lineno,
                                                       ": expected an object with a string "
                                                       "\"text\" field"));
      std::vector<int32_t> ids = tokenizer.Encode(j["text"].get<std::string>(), true);
      if (static_cast<int>(ids.size()) > seq_len) ids.resize(seq_len);
      if (ids.size() >= 2) all.push_back(std::move(ids));
    }
  } else if (format == CalibrationOptions::Format::kTokens) {
    Json j;
    try {
      j = Json::parse(data);
    } catch (const Json::parse_error& e) {
      return absl::InvalidArgumentError(absl::StrCat(options.path, ": invalid JSON at byte ", e.byte));
    }
    if (!j.is_array())
      return absl::InvalidArgumentError(absl::StrCat(options.path, ": expected an array of arrays "
                                                     "of token ids"));
    for (size_t i = 0; i < j.size(); ++i) {
      if (!j[i].is_array())
        return absl::InvalidArgumentError(absl::StrCat(options.path, ": entry ", i,
                                                       " is not an array of token ids"));
      std::vector<int32_t> ids;
      for (const auto& v : j[i]) {
        if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
            v.get<int64_t>() >= tokenizer.vocab_size())
          return absl::InvalidArgumentError(absl::StrCat(options.path, ": entry ", i,
                                                         ": token id ", v.dump(), " is not in [0, ",
                                                         tokenizer.vocab_size(), ")"));
        ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
        if (static_cast<int>(ids.size()) == seq_len) break;
      }
      if (ids.size() >= 2) all.push_back(std::move(ids));
    }
  } else {
    std::vector<int32_t> ids = tokenizer.Encode(data, true);
    for (size_t start = 0; start + seq_len <= ids.size(); start += seq_len)
      all.emplace_back(ids.begin() + start, ids.begin() + start + seq_len);
  }
  if (all.empty())
    return absl::InvalidArgumentError(absl::StrCat("calibration data '", options.path,
                                                   "' yields no sequence of at least 2 tokens"));
  CalibrationSet set;
  set.available = static_cast<int>(all.size());
  std::vector<size_t> pick(all.size());
  std::iota(pick.begin(), pick.end(), 0);
  if (static_cast<int>(all.size()) > options.num_samples) {
    std::mt19937_64 rng(options.seed);
    std::shuffle(pick.begin(), pick.end(), rng);
    pick.resize(options.num_samples);
    std::sort(pick.begin(), pick.end());
  } else if (static_cast<int>(all.size()) < options.num_samples && warnings) {
    warnings->push_back(absl::StrCat("calibration data has ", all.size(), " sequences; ",
                                     options.num_samples, " were requested, using all"));
  }
  size_t shortest = SIZE_MAX, longest = 0;
  for (size_t i : pick) {
    shortest = std::min(shortest, all[i].size());
    longest = std::max(longest, all[i].size());
    set.tokens += static_cast<int64_t>(all[i].size());
    set.samples.push_back(std::move(all[i]));
  }
  set.summary = absl::StrFormat("%d samples, %d tokens (%d..%d each) from %s",
                                set.samples.size(), set.tokens, shortest, longest,
                                std::filesystem::path(options.path).filename().string());
  return set;
}

}  // namespace quarry
