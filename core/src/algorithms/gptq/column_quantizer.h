// Core-internal: quantizes a weight matrix one column at a time with parameters computed per
// group of columns, for GPTQ-style algorithms. Parameters come from the spec's own observer run
// on the group's columns (per_group: each group of group_size consecutive columns; per_channel
// and per_tensor: the whole matrix once). Integer specs take a scalar fast path (the numerics'
// scalar reference formula, bit-exact with FakeQuantize); other formats go through FakeQuantize.
// Not thread-safe.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "absl/status/statusor.h"
#include "quarry/quantize.h"

namespace quarry::algorithms {

class ColumnQuantizer {
 public:
  static absl::StatusOr<ColumnQuantizer> Create(const QuantizationSpec& spec, int64_t rows,
                                                int64_t cols);
  // Columns that share one set of parameters.
  int64_t group_size() const { return group_size_; }
  int64_t num_groups() const { return num_groups_; }
  bool per_group() const { return per_group_; }
  // Parameters of group g from columns [rows, width] of the weight.
  absl::Status ComputeGroup(int64_t g, const at::Tensor& columns);
  bool has_group(int64_t g) const { return computed_[g]; }
  // Fake-quantizes x[rows] (one column) with group g's parameters into out[rows].
  absl::Status QuantizeColumn(int64_t g, const float* x, float* out) const;
  // The parameters of all groups in the spec's layout (per_group [rows, G]).
  absl::StatusOr<QuantParams> Params() const;

 private:
  QuantizationSpec spec_;
  int64_t rows_ = 0, cols_ = 0, group_size_ = 0, num_groups_ = 0;
  bool per_group_ = false;
  bool fast_int_ = false;
  float qmin_ = 0, qmax_ = 0;
  RoundType round_ = RoundType::kHalfEven;
  std::vector<QuantParams> groups_;
  std::vector<bool> computed_;
  // Fast integer path: per group, per row scale and zero point.
  std::vector<std::vector<float>> scale_, zero_;
};

}  // namespace quarry::algorithms
