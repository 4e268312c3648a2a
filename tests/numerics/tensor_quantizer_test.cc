// TensorQuantizer: lifecycle (observe, freeze, apply), progressive specs (quantize, then quantize
// the result again) and scale-quant specs (NVFP4-style fp4 per group with fp8 scales).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "numerics/reference/fp_elements.h"
#include "numerics/formats.h"
#include "oracle_util.h"
#include "quarry/quantize.h"
#include "quarry/spec_helpers.h"
#include "test_data.h"

namespace quarry {
namespace {

using testing::BitEqual;

QuantizationSpec Int8PerTensorStatic() {
  Int8PerTensorSpec h;
  h.observer_method = "min_max";
  h.symmetric = true;
  h.scale_type = "float";
  h.round_method = "half_even";
  h.is_dynamic = false;
  return *h.ToQuantizationSpec();
}

TEST(TensorQuantizer, StaticLifecycle) {
  auto q = TensorQuantizer::Create({Int8PerTensorStatic()});
  ASSERT_TRUE(q.ok()) << q.status();
  const at::Tensor a = testing::RandomData({4, 32}, 1), b = testing::RandomData({4, 32}, 2);
  EXPECT_EQ((*q)->Apply(a).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE((*q)->Observe(a).ok());
  ASSERT_TRUE((*q)->Observe(b).ok());
  ASSERT_TRUE((*q)->Freeze().ok());
  EXPECT_TRUE((*q)->frozen());
  EXPECT_EQ((*q)->Freeze().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*q)->Observe(a).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE((*q)->params().has_value());
  auto expected = ComputeQuantParams(Int8PerTensorStatic(), at::cat({a, b}));
  ASSERT_TRUE(expected.ok());
  EXPECT_TRUE(BitEqual((*q)->params()->scale, expected->scale));
  auto y = (*q)->Apply(b);
  ASSERT_TRUE(y.ok());
  auto want = FakeQuantize(b, Int8PerTensorStatic(), *expected);
  ASSERT_TRUE(want.ok());
  EXPECT_TRUE(BitEqual(*y, *want));
}

TEST(TensorQuantizer, DynamicNeedsNoCalibration) {
  QuantizationSpec s = *OCP_MXFP4Spec{}.ToQuantizationSpec();  // is_dynamic = true
  auto q = TensorQuantizer::Create({s});
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE((*q)->is_dynamic());
  const at::Tensor x = testing::RandomData({4, 64}, 3);
  auto y = (*q)->Apply(x);
  ASSERT_TRUE(y.ok()) << y.status();
  auto want = FakeQuantizeDynamic(x, s);
  ASSERT_TRUE(want.ok());
  EXPECT_TRUE(BitEqual(*y, *want));
}

// ProgressiveSpec(fp8 per tensor -> int4 per channel), Quark's int4_fp8 scheme.
TEST(TensorQuantizer, ProgressiveQuantizesTheQuantizedTensorAgain) {
  FP8E4M3PerTensorSpec first;
  first.observer_method = "min_max";
  first.scale_type = "float";
  first.is_dynamic = false;
  Int4PerChannelSpec second;
  second.symmetric = true;
  second.scale_type = "float";
  second.round_method = "half_even";
  second.ch_axis = 0;
  second.is_dynamic = false;
  auto stages = ProgressiveSpec{first, second}.ToQuantizationSpec();
  ASSERT_TRUE(stages.ok());
  auto q = TensorQuantizer::Create(*stages);
  ASSERT_TRUE(q.ok()) << q.status();
  const at::Tensor w = testing::RandomData({8, 64}, 4);
  ASSERT_TRUE((*q)->Observe(w).ok());
  ASSERT_TRUE((*q)->Freeze().ok());
  auto y = (*q)->Apply(w);
  ASSERT_TRUE(y.ok()) << y.status();
  // By hand: fp8 fake quantization, then int4 per channel of that.
  auto p1 = ComputeQuantParams((*stages)[0], w);
  ASSERT_TRUE(p1.ok());
  auto w1 = FakeQuantize(w, (*stages)[0], *p1);
  ASSERT_TRUE(w1.ok());
  auto p2 = ComputeQuantParams((*stages)[1], *w1);
  ASSERT_TRUE(p2.ok());
  auto w2 = FakeQuantize(*w1, (*stages)[1], *p2);
  ASSERT_TRUE(w2.ok());
  EXPECT_TRUE(BitEqual(*y, *w2));
  EXPECT_TRUE(BitEqual((*q)->params()->scale, p1->scale));
}

// ScaleQuantSpec(fp4 per group 16, fp8 per tensor): NVFP4. The fp8 global scale is
// max(amax) / (6 * 448) in one division; each block scale amax / 6 becomes
// fp8(s / g) * g.
TEST(TensorQuantizer, ScaleQuantQuantizesTheFirstStagesScales) {
  FP4PerGroupSpec first;
  first.group_size = 16;
  first.is_dynamic = false;
  FP8E4M3PerTensorSpec second;
  second.observer_method = "min_max";
  second.scale_type = "float32";
  second.is_dynamic = false;
  auto stages = ScaleQuantSpec{first, second}.ToQuantizationSpec();
  ASSERT_TRUE(stages.ok());
  EXPECT_TRUE((*stages)[1].is_scale_quant);
  auto q = TensorQuantizer::Create(*stages);
  ASSERT_TRUE(q.ok()) << q.status();
  const at::Tensor w = testing::RandomData({4, 64}, 5);
  ASSERT_TRUE((*q)->Observe(w).ok());
  ASSERT_TRUE((*q)->Freeze().ok());
  auto y = (*q)->Apply(w);
  ASSERT_TRUE(y.ok()) << y.status();

  const at::Tensor amax = w.reshape({4, 4, 16}).abs().amax(-1);
  const float global = amax.max().item<float>() / (6.0f * 448.0f);
  const numerics::FloatFormat& e4m3 = *numerics::FloatFormatOf(Dtype::kFp8E4M3);
  at::Tensor block_scale = (amax / 6.0f).contiguous();
  for (int64_t i = 0; i < block_scale.numel(); ++i) {
    float& s = block_scale.data_ptr<float>()[i];
    s = numerics::ref::QuantizeFp8Value(s / global, e4m3) * global;
  }
  EXPECT_TRUE(BitEqual((*q)->params()->scale, block_scale));
  QuantParams p;
  p.scale = block_scale;
  auto want = FakeQuantize(w, (*stages)[0], p);
  ASSERT_TRUE(want.ok());
  EXPECT_TRUE(BitEqual(*y, *want));
}

TEST(TensorQuantizer, RejectsInvalidStageLists) {
  EXPECT_EQ(TensorQuantizer::Create({}).status().code(), absl::StatusCode::kInvalidArgument);
  QuantizationSpec scale_first = Int8PerTensorStatic();
  scale_first.is_scale_quant = true;
  EXPECT_EQ(TensorQuantizer::Create({scale_first}).status().code(),
            absl::StatusCode::kInvalidArgument);
  QuantizationSpec scales_of_per_tensor = Int8PerTensorStatic();
  scales_of_per_tensor.is_scale_quant = true;
  EXPECT_EQ(TensorQuantizer::Create({Int8PerTensorStatic(), scales_of_per_tensor}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TensorQuantizer::Create({*MX6Spec{}.ToQuantizationSpec(), Int8PerTensorStatic()})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quarry
