// The public numerics API on bad input (a Status naming the problem, never a crash), on
// non-float32 inputs (output keeps the input's dtype), on empty / 0-dim tensors, and on NaN/Inf
// for every format (no crash; NaN positions per the documented semantics).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "absl/strings/match.h"
#include "oracle_util.h"
#include "quarry/quantize.h"
#include "quarry/spec_helpers.h"
#include "test_data.h"

namespace quarry {
namespace {

using testing::BitEqual;

QuantizationSpec Int8PerGroup(int group = 32) {
  QuantizationSpec s;
  s.dtype = Dtype::kInt8;
  s.qscheme = QSchemeType::kPerGroup;
  s.ch_axis = -1;
  s.group_size = group;
  s.symmetric = true;
  return s;
}

void ExpectError(const absl::Status& status, absl::StatusCode code, const std::string& needle) {
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), needle)) << status.message();
}

TEST(NumericsApi, BadSpecsNameTheField) {
  const at::Tensor x = at::randn({4, 64});
  QuantizationSpec no_scheme;
  no_scheme.dtype = Dtype::kInt4;
  ExpectError(FakeQuantizeDynamic(x, no_scheme).status(), absl::StatusCode::kInvalidArgument, "qscheme");

  QuantizationSpec no_group = Int8PerGroup();
  no_group.group_size.reset();
  ExpectError(FakeQuantizeDynamic(x, no_group).status(), absl::StatusCode::kInvalidArgument, "group_size");

  ExpectError(FakeQuantizeDynamic(x, Int8PerGroup(0)).status(), absl::StatusCode::kInvalidArgument,
              "group_size 0");

  QuantizationSpec axis = Int8PerGroup();
  axis.ch_axis = 2;
  ExpectError(FakeQuantizeDynamic(x, axis).status(), absl::StatusCode::kInvalidArgument, "ch_axis 2");

  QuantizationSpec wrong_observer = Int8PerGroup();
  wrong_observer.observer_cls = "PerChannelMinMaxObserver";
  ExpectError(FakeQuantizeDynamic(x, wrong_observer).status(), absl::StatusCode::kInvalidArgument,
              "cannot observe per_group");

  QuantizationSpec unknown_observer = Int8PerGroup();
  unknown_observer.observer_cls = "NoSuchObserver";
  ExpectError(Observer::Create(unknown_observer).status(), absl::StatusCode::kInvalidArgument,
              "NoSuchObserver");

  QuantizationSpec pro;
  pro.dtype = Dtype::kInt8;
  pro.qscheme = QSchemeType::kPerTensor;
  pro.observer_cls = "PerTensorHistogramObserverPro";
  ExpectError(Observer::Create(pro).status(), absl::StatusCode::kUnimplemented, "HistogramObserverPro");

  QuantizationSpec fp_pof2;
  fp_pof2.dtype = Dtype::kFp8E4M3;
  fp_pof2.qscheme = QSchemeType::kPerTensor;
  fp_pof2.scale_type = ScaleType::kPof2;
  ExpectError(FakeQuantizeDynamic(x, fp_pof2).status(), absl::StatusCode::kInvalidArgument, "pof2");

  MX6Spec odd;
  odd.block_size = 7;
  ExpectError(FakeQuantizeDynamic(x, *odd.ToQuantizationSpec()).status(),
              absl::StatusCode::kInvalidArgument, "even");

  QuantizationSpec mx;
  mx.dtype = Dtype::kMx;
  mx.ch_axis = -1;
  mx.group_size = 32;
  ExpectError(FakeQuantizeDynamic(x, mx).status(), absl::StatusCode::kInvalidArgument, "mx_element_dtype");

  FP4PerGroupSpec bad_format;
  bad_format.group_size = 32;
  bad_format.scale_format = "e5m9";
  ExpectError(FakeQuantizeDynamic(x, *bad_format.ToQuantizationSpec()).status(),
              absl::StatusCode::kInvalidArgument, "scale_format");

  QuantizationSpec block;
  block.dtype = Dtype::kFp8E4M3;
  block.qscheme = QSchemeType::kPerBlock;
  ExpectError(FakeQuantizeDynamic(x, block).status(), absl::StatusCode::kUnimplemented, "per_block");
}

TEST(NumericsApi, BadTensorsAndParams) {
  const QuantizationSpec spec = Int8PerGroup();
  ExpectError(FakeQuantizeDynamic(at::arange(64, at::kInt), spec).status(),
              absl::StatusCode::kInvalidArgument, "dtype");
  ExpectError(FakeQuantizeDynamic(at::Tensor(), spec).status(), absl::StatusCode::kInvalidArgument,
              "undefined");
  const at::Tensor x = at::randn({4, 64});
  QuantParams wrong;
  wrong.scale = at::ones({4, 3});
  ExpectError(FakeQuantize(x, spec, wrong).status(), absl::StatusCode::kInvalidArgument, "[4, 2]");
  ExpectError(FakeQuantize(x, spec, QuantParams{}).status(), absl::StatusCode::kInvalidArgument,
              "scale is undefined");
  QuantParams zp_count;
  zp_count.scale = at::ones({4, 2});
  zp_count.zero_point = at::zeros({3}, at::kInt);
  ExpectError(FakeQuantize(x, spec, zp_count).status(), absl::StatusCode::kInvalidArgument, "zero_point");
  auto observer = Observer::Create(spec);
  ASSERT_TRUE(observer.ok());
  EXPECT_EQ((*observer)->Compute().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE((*observer)->has_observed());
  // An MX scale that is not a power of two cannot be stored as E8M0.
  QuantizationSpec mx = *OCP_MXFP4Spec{}.ToQuantizationSpec();
  QuantParams odd;
  odd.scale = at::full({4, 2}, 0.3f);
  ExpectError(Quantize(x, mx, odd).status(), absl::StatusCode::kInvalidArgument, "E8M0");
}

TEST(NumericsApi, ReducedPrecisionInputsKeepTheirDtype) {
  const at::Tensor x = at::randn({8, 64});
  for (at::ScalarType t : {at::kBFloat16, at::kHalf}) {
    const at::Tensor xt = x.to(t);
    auto y = FakeQuantizeDynamic(xt, Int8PerGroup());
    ASSERT_TRUE(y.ok()) << y.status();
    EXPECT_EQ(y->scalar_type(), t);
    // Computed in float32 from the exact input values, then rounded once to the input dtype.
    auto y32 = FakeQuantizeDynamic(xt.to(at::kFloat), Int8PerGroup());
    ASSERT_TRUE(y32.ok());
    EXPECT_TRUE(BitEqual(*y, y32->to(t)));
  }
}

TEST(NumericsApi, CastsAreRoundTrips) {
  const at::Tensor x = testing::EdgeData({4, 16}, 3);
  auto y = FakeQuantizeDynamic(x, *Bfloat16Spec{}.ToQuantizationSpec());
  ASSERT_TRUE(y.ok());
  EXPECT_TRUE(BitEqual(*y, x.to(at::kBFloat16).to(at::kFloat)));
  auto params = ComputeQuantParams(*Float16Spec{}.ToQuantizationSpec(), x);
  ASSERT_TRUE(params.ok());
  EXPECT_FALSE(params->scale.defined());
  auto q = Quantize(x, *Float16Spec{}.ToQuantizationSpec(), *params);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->data.scalar_type(), at::kHalf);
}

TEST(NumericsApi, ScalarsAndEmptyTensors) {
  QuantizationSpec pt;
  pt.dtype = Dtype::kInt8;
  pt.qscheme = QSchemeType::kPerTensor;
  pt.symmetric = true;
  auto y = FakeQuantizeDynamic(at::scalar_tensor(0.3f), pt);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->dim(), 0);
  auto params = ComputeQuantParams(pt, at::scalar_tensor(0.3f));
  ASSERT_TRUE(params.ok());
  EXPECT_EQ(params->scale.dim(), 0) << "per_tensor scales are 0-dim";
  auto q = Quantize(at::scalar_tensor(0.3f), pt, *params);
  ASSERT_TRUE(q.ok()) << q.status();
  auto d = Dequantize(*q, pt);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(BitEqual(*d, *y));
  EXPECT_EQ(ComputeQuantParams(pt, at::empty({0, 4})).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Every format on data full of NaN / Inf: no crash, outputs per the documented semantics.
TEST(NumericsApi, NanAndInfNeverCrash) {
  const at::Tensor x = testing::EdgeData({8, 64}, 21);
  const at::Tensor nan_in = at::isnan(x);
  std::vector<std::pair<std::string, QuantizationSpec>> specs = {
      {"int8", Int8PerGroup()},
      {"mxfp4", *OCP_MXFP4Spec{}.ToQuantizationSpec()},
      {"mxint8", *OCP_MXINT8Spec{}.ToQuantizationSpec()},
      {"mx6", *MX6Spec{}.ToQuantizationSpec()},
      {"bfp16", *BFP16Spec{}.ToQuantizationSpec()},
  };
  FP8E4M3PerTensorSpec fp8;
  fp8.observer_method = "min_max";
  specs.push_back({"fp8", *fp8.ToQuantizationSpec()});
  for (const auto& [name, spec] : specs) {
    SCOPED_TRACE(name);
    auto y = FakeQuantizeDynamic(x, spec);
    ASSERT_TRUE(y.ok()) << y.status();
    auto params = ComputeQuantParams(spec, x);
    ASSERT_TRUE(params.ok()) << params.status();
    auto q = Quantize(x, spec, *params);
    EXPECT_TRUE(q.ok()) << q.status();
    if (name == "bfp16") {
      EXPECT_FALSE(at::isnan(*y).any().item<bool>()) << "BFP16 maps NaN/Inf to 0";
    } else {
      EXPECT_TRUE(at::isnan(*y).masked_select(nan_in).all().item<bool>()) << "NaN stays NaN";
    }
  }
}

}  // namespace
}  // namespace quarry
