// The export's fast path for per-group integer weights (kernels/transposed_codes.h) against the
// reference path it replaces, Quantize(W^T, ch_axis 0, params^T), byte for byte: int4 / uint4
// (packed, both nibble orders) and int8 / uint8, symmetric and asymmetric, group tails, exact
// rounding ties and NaN.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstring>

#include "numerics/kernels/transposed_codes.h"
#include "numerics/plan.h"
#include "quarry/quantize.h"

namespace quarry {
namespace {

QuantizationSpec GroupSpec(Dtype d, bool sym, int group) {
  QuantizationSpec s;
  s.dtype = d;
  s.qscheme = QSchemeType::kPerGroup;
  s.symmetric = sym;
  s.ch_axis = -1;
  s.group_size = group;
  s.round_method = RoundType::kHalfEven;
  s.is_dynamic = false;
  return s;
}

struct Case {
  Dtype dtype;
  bool sym;
  int64_t rows, cols;
  int group;
};

TEST(TransposedGroupCodes, EqualsTheReferencePathByteForByte) {
  at::manual_seed(7);
  const Case cases[] = {{Dtype::kInt4, true, 64, 256, 128},  {Dtype::kUint4, false, 64, 256, 128},
                        {Dtype::kInt4, true, 24, 100, 32},   {Dtype::kUint4, false, 16, 72, 16},
                        {Dtype::kInt8, true, 40, 256, 128},  {Dtype::kUint8, false, 33, 130, 64},
                        {Dtype::kInt4, false, 8, 384, 128}};
  for (const Case& c : cases) {
    for (PackOrder order : {PackOrder::kReorder, PackOrder::kOrder}) {
      SCOPED_TRACE(std::string(Name(c.dtype)) + (c.sym ? " sym " : " asym ") +
                   std::to_string(c.rows) + "x" + std::to_string(c.cols) + " g" +
                   std::to_string(c.group) + (order == PackOrder::kReorder ? " reorder" : " order"));
      const QuantizationSpec spec = GroupSpec(c.dtype, c.sym, c.group);
      at::Tensor w = at::randn({c.rows, c.cols}) * 0.05;
      auto params = ComputeQuantParams(spec, w);
      ASSERT_TRUE(params.ok()) << params.status();
      // Exact ties (x / s = k + 0.5) in row 1, a NaN in row 2.
      const at::Tensor s0 = params->scale.to(at::kFloat).contiguous();
      for (int64_t j = 0; j < std::min<int64_t>(c.cols, 8); ++j)
        w[1][j] = s0[1][j / c.group].item<float>() * (static_cast<float>(j % 4) - 1.5f);
      w[2][3] = std::nanf("");
      QuantizationSpec t = spec;
      t.ch_axis = 0;
      QuantParams tp;
      tp.scale = params->scale.t().contiguous();
      if (params->zero_point.defined()) tp.zero_point = params->zero_point.t().contiguous();
      auto ref = Quantize(w.t().contiguous(), t, tp, order);
      ASSERT_TRUE(ref.ok()) << ref.status();
      auto plan = numerics::MakePlan(spec);
      ASSERT_TRUE(plan.ok());
      at::Tensor zp = params->zero_point.defined() ? params->zero_point.to(at::kFloat).contiguous()
                                                   : at::Tensor();
      at::Tensor fast = numerics::kernels::TransposedGroupCodes(
          *plan, w.contiguous(), params->scale.to(at::kFloat).contiguous(), zp, c.group, order);
      ASSERT_TRUE(fast.defined());
      ASSERT_EQ(fast.scalar_type(), ref->data.scalar_type());
      ASSERT_EQ(fast.sizes(), ref->data.sizes());
      const at::Tensor r = ref->data.contiguous();
      EXPECT_EQ(std::memcmp(fast.data_ptr(), r.data_ptr(), r.nbytes()), 0);
    }
  }
}

TEST(TransposedGroupCodes, DeclinesWhatItDoesNotCover) {
  const QuantizationSpec spec = GroupSpec(Dtype::kInt4, true, 32);
  auto plan = numerics::MakePlan(spec);
  ASSERT_TRUE(plan.ok());
  at::Tensor w = at::randn({12, 64});  // 12 rows: int4 words need a multiple of 8
  at::Tensor s = at::ones({12, 2});
  EXPECT_FALSE(numerics::kernels::TransposedGroupCodes(*plan, w, s, {}, 32, PackOrder::kOrder)
                   .defined());
  auto plan3 = numerics::MakePlan(GroupSpec(Dtype::kInt3, true, 32));
  ASSERT_TRUE(plan3.ok());
  EXPECT_FALSE(numerics::kernels::TransposedGroupCodes(*plan3, at::randn({16, 64}), at::ones({16, 2}),
                                                       {}, 32, PackOrder::kOrder)
                   .defined());
}

}  // namespace
}  // namespace quarry
