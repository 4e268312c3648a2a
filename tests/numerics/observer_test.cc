// Observer behaviour across calls: static observers keep running ranges, dynamic ones the last
// call; per-channel ranges restart when the channel count changes; power-of-two observers return
// the most frequent per-batch parameters; histogram growth keeps bins aligned.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "numerics/observers/observers.h"
#include "numerics/plan.h"
#include "oracle_util.h"
#include "quarry/quantize.h"

namespace quarry {
namespace {

using testing::BitEqual;

QuantizationSpec PerTensorInt8(bool dynamic, const char* observer = "PerTensorMinMaxObserver") {
  QuantizationSpec s;
  s.dtype = Dtype::kInt8;
  s.qscheme = QSchemeType::kPerTensor;
  s.symmetric = false;
  s.is_dynamic = dynamic;
  s.observer_cls = observer;
  return s;
}

TEST(Observers, StaticKeepsRunningRangeDynamicKeepsLast) {
  const at::Tensor a = at::tensor({-1.0f, 0.5f, 2.0f});
  const at::Tensor b = at::tensor({-3.0f, 0.25f, 1.0f});
  const at::Tensor both = at::cat({a, b});
  for (bool dynamic : {false, true}) {
    auto observer = Observer::Create(PerTensorInt8(dynamic));
    ASSERT_TRUE(observer.ok());
    ASSERT_TRUE((*observer)->Observe(a).ok());
    ASSERT_TRUE((*observer)->Observe(b).ok());
    auto params = (*observer)->Compute();
    ASSERT_TRUE(params.ok());
    auto expected = ComputeQuantParams(PerTensorInt8(false), dynamic ? b : both);
    ASSERT_TRUE(expected.ok());
    EXPECT_TRUE(BitEqual(params->scale, expected->scale)) << "dynamic " << dynamic;
    EXPECT_TRUE(BitEqual(params->zero_point.to(at::kFloat), expected->zero_point.to(at::kFloat)));
    (*observer)->Reset();
    EXPECT_FALSE((*observer)->has_observed());
  }
}

TEST(Observers, PerChannelRestartsWhenChannelsChange) {
  QuantizationSpec s;
  s.dtype = Dtype::kInt4;
  s.qscheme = QSchemeType::kPerChannel;
  s.ch_axis = 0;
  s.symmetric = true;
  auto observer = Observer::Create(s);
  ASSERT_TRUE(observer.ok());
  ASSERT_TRUE((*observer)->Observe(at::full({2, 4}, 100.0f)).ok());
  const at::Tensor small = at::randn({3, 4});
  ASSERT_TRUE((*observer)->Observe(small).ok());
  auto params = (*observer)->Compute();
  ASSERT_TRUE(params.ok());
  auto fresh = ComputeQuantParams(s, small);
  ASSERT_TRUE(fresh.ok());
  EXPECT_TRUE(BitEqual(params->scale, fresh->scale));
  EXPECT_EQ(params->scale.sizes(), at::IntArrayRef({3}));
}

TEST(Observers, PowOf2ReturnsTheMostFrequentBatchParameters) {
  auto observer = Observer::Create(PerTensorInt8(false, "PerTensorPowOf2MinMaxObserver"));
  ASSERT_TRUE(observer.ok());
  // Running range [-1, 1] twice, then [-100, 1]: the first parameters stay the most frequent.
  ASSERT_TRUE((*observer)->Observe(at::tensor({-1.0f, 1.0f})).ok());
  ASSERT_TRUE((*observer)->Observe(at::tensor({-0.5f, 0.5f})).ok());
  ASSERT_TRUE((*observer)->Observe(at::tensor({-100.0f, 1.0f})).ok());
  auto params = (*observer)->Compute();
  ASSERT_TRUE(params.ok());
  auto first = ComputeQuantParams(PerTensorInt8(false, "PerTensorPowOf2MinMaxObserver"),
                                  at::tensor({-1.0f, 1.0f}));
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(BitEqual(params->scale, first->scale));
  EXPECT_EQ(params->scale.item<float>(), 0.0078125f);  // 2/255 -> 2^-7
}

TEST(Observers, HistogramGrowsAlignedAcrossBatches) {
  QuantizationSpec s = PerTensorInt8(false, "PerTensorHistogramObserver");
  auto plan = numerics::MakePlan(s);
  ASSERT_TRUE(plan.ok());
  numerics::HistogramObserver observer(*plan, numerics::HistogramObserver::Kind::kRange);
  ASSERT_TRUE(observer.Observe(at::linspace(-1.0, 1.0, 100)).ok());
  ASSERT_TRUE(observer.Observe(at::linspace(-3.0, 0.5, 100)).ok());  // grows downwards
  const auto [lo, hi] = observer.SelectedRange();
  EXPECT_LE(lo, -3.0f);
  EXPECT_GE(lo, -3.0f - 2.0f / 2048.0f * 1.01f) << "within one bin of the new minimum";
  EXPECT_EQ(hi, 1.0f);
}

// Static BFP16 observation doubles amax only for blocks that would overflow int8.
TEST(Observers, Bfp16DoublesOverflowingBlocks) {
  QuantizationSpec s;
  s.dtype = Dtype::kBfp16;
  s.ch_axis = -1;
  s.group_size = 8;
  // Block 0: amax 1.99 -> scale 2^-6, 1.99 * 64 = 127.4 -> 127: no overflow.
  // Block 1: amax 1.999 -> 1.999 * 64 = 127.94 -> 128: overflow, scale doubles to 2^-5.
  at::Tensor x = at::zeros({16});
  x[0] = 1.99f;
  x[8] = 1.999f;
  auto params = ComputeQuantParams(s, x.reshape({1, 16}));
  ASSERT_TRUE(params.ok()) << params.status();
  EXPECT_EQ(params->scale[0][0].item<float>(), 0.015625f);
  EXPECT_EQ(params->scale[0][1].item<float>(), 0.03125f);
}

}  // namespace
}  // namespace quarry
