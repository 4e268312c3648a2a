// Calibration data: N token sequences of at most seq_len tokens, deterministic given a seed.
//  - JSONL: one JSON object per line with a "text" field; each line is one document, encoded
//    with the tokenizer's special tokens (BOS) and truncated to seq_len (as Quark's loader does).
//  - Plain text: the whole file as one stream ([bos] + encode(text)), cut into consecutive
//    windows of seq_len tokens (the tail is dropped).
//  - Tokens: a JSON array of arrays of token ids, each truncated to seq_len.
// When more sequences are available than num_samples, a seeded shuffle picks which ones (kept in
// file order); fewer is allowed with a warning. Stateless; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quarry/pipeline.h"
#include "quarry/tokenizer.h"

namespace quarry {

struct CalibrationSet {
  std::vector<std::vector<int32_t>> samples;
  int64_t tokens = 0;
  int available = 0;      // sequences the file offered before selection
  std::string summary;    // e.g. "128 samples, 58,215 tokens (399..512 each) from kjv-calib.jsonl"
};

absl::StatusOr<CalibrationSet> LoadCalibration(const CalibrationOptions& options,
                                               const Tokenizer& tokenizer, int max_positions,
                                               std::vector<std::string>* warnings = nullptr);

}  // namespace quarry
