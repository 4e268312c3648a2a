#include "algorithms/gptq/column_quantizer.h"

#include "absl/strings/str_cat.h"
#include "numerics/reference/int_grid.h"
#include "quarry/status.h"

namespace quarry::algorithms {

absl::StatusOr<ColumnQuantizer> ColumnQuantizer::Create(const QuantizationSpec& spec, int64_t rows,
                                                        int64_t cols) {
  ColumnQuantizer q;
  q.spec_ = spec;
  q.rows_ = rows;
  q.cols_ = cols;
  const bool block = IsBlockDtype(spec.dtype) || spec.qscheme == QSchemeType::kPerGroup;
  if (IsCastDtype(spec.dtype))
    return absl::InvalidArgumentError(absl::StrCat("dtype ", Name(spec.dtype),
                                                   " is a cast; there is nothing to quantize"));
  if (block) {
    const int axis = spec.ch_axis.value_or(-1);
    if (axis != 1 && axis != -1)
      return absl::InvalidArgumentError(absl::StrCat(
          "GPTQ/Qronos need weight groups along the input dimension (ch_axis 1 or -1), got ",
          axis));
    const int g = spec.group_size.value_or(-1);
    q.group_size_ = g <= 0 ? cols : g;
    q.per_group_ = true;
  } else {
    if (spec.qscheme == QSchemeType::kPerChannel && spec.ch_axis.value_or(0) != 0)
      return absl::InvalidArgumentError(
          "GPTQ/Qronos need per-channel weight scales along the output dimension (ch_axis 0)");
    q.group_size_ = cols;
  }
  q.num_groups_ = (cols + q.group_size_ - 1) / q.group_size_;
  q.groups_.resize(q.num_groups_);
  q.computed_.assign(q.num_groups_, false);
  auto range = IntegerRange(spec.dtype);
  q.fast_int_ = range.has_value() && !spec.is_dynamic.value_or(false);
  if (q.fast_int_) {
    q.qmin_ = static_cast<float>(range->first);
    q.qmax_ = static_cast<float>(range->second);
    q.round_ = spec.round_method.value_or(RoundType::kHalfEven);
    q.scale_.resize(q.num_groups_);
    q.zero_.resize(q.num_groups_);
  }
  return q;
}

absl::Status ColumnQuantizer::ComputeGroup(int64_t g, const at::Tensor& columns) {
  if (g < 0 || g >= num_groups_) return absl::OutOfRangeError("group index");
  at::Tensor c = columns.to(at::kFloat).contiguous();
  QUARRY_ASSIGN_OR_RETURN(QuantParams p, ComputeQuantParams(spec_, c));
  if (fast_int_) {
    at::Tensor s = p.scale.to(at::kFloat).reshape({-1});
    at::Tensor z = p.zero_point.defined() ? p.zero_point.to(at::kFloat).reshape({-1})
                                          : at::zeros_like(s);
    if (s.numel() != 1 && s.numel() != rows_)
      return absl::InternalError(absl::StrCat("unexpected parameter count ", s.numel()));
    scale_[g].assign(rows_, 0);
    zero_[g].assign(rows_, 0);
    for (int64_t r = 0; r < rows_; ++r) {
      scale_[g][r] = s.numel() == 1 ? s.item<float>() : s[r].item<float>();
      zero_[g][r] = z.numel() == 1 ? z.item<float>() : z[r].item<float>();
    }
  }
  groups_[g] = std::move(p);
  computed_[g] = true;
  return absl::OkStatus();
}

absl::Status ColumnQuantizer::QuantizeColumn(int64_t g, const float* x, float* out) const {
  if (!computed_[g]) return absl::FailedPreconditionError(absl::StrCat("group ", g, " has no parameters"));
  if (fast_int_) {
    const float* s = scale_[g].data();
    const float* z = zero_[g].data();
    for (int64_t r = 0; r < rows_; ++r)
      out[r] = numerics::ref::FakeQuantIntValue(x[r], s[r], z[r], qmin_, qmax_, round_);
    return absl::OkStatus();
  }
  at::Tensor col = at::from_blob(const_cast<float*>(x), {rows_, 1}, at::kFloat);
  QUARRY_ASSIGN_OR_RETURN(at::Tensor q, FakeQuantize(col, spec_, groups_[g]));
  std::memcpy(out, q.contiguous().data_ptr<float>(), rows_ * sizeof(float));
  return absl::OkStatus();
}

absl::StatusOr<QuantParams> ColumnQuantizer::Params() const {
  for (int64_t g = 0; g < num_groups_; ++g)
    if (!computed_[g]) return absl::FailedPreconditionError(absl::StrCat("group ", g, " missing"));
  if (!per_group_) return groups_[0];
  QuantParams out;
  std::vector<at::Tensor> scales, zeros;
  for (const auto& p : groups_) {
    scales.push_back(p.scale.reshape({rows_, 1}));
    if (p.zero_point.defined()) zeros.push_back(p.zero_point.reshape({rows_, 1}));
  }
  out.scale = at::cat(scales, 1);
  if (!zeros.empty()) out.zero_point = at::cat(zeros, 1);
  return out;
}

}  // namespace quarry::algorithms
