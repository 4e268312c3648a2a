// GPTQ against the original IST-DASLab code's outputs (tests/data/oracle/gptq_ist.safetensors,
// INDEX.md states the tolerances), the fast implementation against the LibTorch transcription,
// and Qronos' defining properties.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "algorithms/gptq/column_loop.h"
#include "quarry/gptq.h"
#include "quarry/safetensors.h"
#include "quarry/spec_helpers.h"
#include "quarry/tensor_io.h"

namespace quarry {
namespace {

const std::string kOracle = std::string(QUARRY_TEST_DATA_DIR) + "/oracle/gptq_ist.safetensors";

struct Oracle {
  std::unique_ptr<SafetensorsFile> file;
  at::Tensor Get(const std::string& name) {
    auto t = LoadTensor(*file, name);
    EXPECT_TRUE(t.ok()) << name;
    return t.ok() ? *t : at::Tensor();
  }
  nlohmann::json Case(const std::string& name) {
    return nlohmann::json::parse(file->metadata().at("case." + name));
  }
};

Oracle OpenOracle() {
  Oracle o;
  auto f = SafetensorsFile::Open(kOracle);
  EXPECT_TRUE(f.ok()) << f.status();
  o.file = std::move(*f);
  return o;
}

// IST's 4-bit grids are Quark's int4 symmetric (scale amax/7.5, codes -8..7) and uint4 asymmetric.
QuantizationSpec SpecFor(bool sym, int groupsize) {
  if (groupsize > 0) {
    if (sym) return *Int4PerGroupSpec{true, 1, false, "float", "half_even", groupsize}.ToQuantizationSpec();
    return *Uint4PerGroupSpec{false, 1, false, "float", "half_even", groupsize}.ToQuantizationSpec();
  }
  if (sym) return *Int4PerChannelSpec{true, "float", "half_even", 0, false}.ToQuantizationSpec();
  return *Uint4PerChannelSpec{false, "float", "half_even", 0, false}.ToQuantizationSpec();
}

const char* kCases[] = {"L96x256.pc_sym",         "L96x256.pc_sym_act",
                        "L96x256.g32_asym",       "L96x256.g128_asym",
                        "L96x256.g128_asym_act",  "L96x256.g128_asym_act_static",
                        "L96x256.g32_asym_act_static", "L96x256.g32_sym",
                        "L128x512.pc_sym",        "L128x512.g128_asym",
                        "L128x512.g128_asym_act_static", "L128x512.g32_asym_act"};

TEST(GptqOracle, HessianMatchesReference) {
  Oracle o = OpenOracle();
  for (const char* layer : {"L96x256", "L128x512"}) {
    at::Tensor X = o.Get(std::string(layer) + ".X");
    HessianAccumulator acc(X.size(1));
    // Batches of different sizes: the running mean must not depend on batching.
    ASSERT_TRUE(acc.Add(X.narrow(0, 0, 100)).ok());
    ASSERT_TRUE(acc.Add(X.narrow(0, 100, X.size(0) - 100)).ok());
    // The reference counts 8 "sequences" (H = 2/8 X^T X); we average over tokens.
    at::Tensor ours = acc.H() * (static_cast<double>(X.size(0)) / 8.0);
    at::Tensor ref = o.Get(std::string(layer) + ".H");
    const double rel = ((ours - ref).norm() / ref.norm()).item<double>();
    EXPECT_LT(rel, 1e-5) << layer;
    EXPECT_TRUE(at::allclose(ours, ours.t()));
  }
}

TEST(GptqOracle, InverseHessianFactorMatchesReference) {
  Oracle o = OpenOracle();
  for (const char* c : {"L96x256.pc_sym_act", "L96x256.g128_asym_act", "L128x512.g32_asym_act"}) {
    const std::string name = c;
    const std::string layer = name.substr(0, name.find('.'));
    at::Tensor H = o.Get(layer + ".H");
    auto perm = algorithms::DescendingDiagonalOrder(H);
    at::Tensor idx = algorithms::PermIndex(perm);
    at::Tensor Hp = H.index_select(0, idx).index_select(1, idx);
    int retries = 0;
    double damp = 0;
    auto U = algorithms::DampedInverseCholeskyUpper(Hp, 0.01, &retries, &damp);
    ASSERT_TRUE(U.ok());
    at::Tensor ref = o.Get(name + ".Hinv");
    EXPECT_LT(((*U - ref).norm() / ref.norm()).item<double>(), 1e-4) << name;
    at::Tensor ref_perm = o.Get(name + ".perm").to(at::kLong);
    EXPECT_TRUE(at::equal(idx, ref_perm)) << name;
  }
}

TEST(GptqOracle, QuantizedWeightsMatchReference) {
  Oracle o = OpenOracle();
  for (const char* c : kCases) {
    const std::string name = c;
    SCOPED_TRACE(name);
    const std::string layer = name.substr(0, name.find('.'));
    nlohmann::json meta = o.Case(name);
    at::Tensor W = o.Get(layer + ".W"), X = o.Get(layer + ".X");
    HessianAccumulator acc(X.size(1));
    ASSERT_TRUE(acc.Add(X).ok());
    GPTQConfig cfg;
    cfg.block_size = meta["blocksize"];
    cfg.damp_percent = meta["percdamp"];
    cfg.desc_act = meta["actorder"];
    cfg.static_groups = meta["static_groups"];
    const QuantizationSpec spec = SpecFor(meta["sym"], meta["groupsize"]);
    auto r = GptqQuantizeWeight(W, acc.H(), spec, cfg);
    ASSERT_TRUE(r.ok()) << r.status();
    at::Tensor Qref = o.Get(name + ".Q");
    const double identical = (r->weight == Qref).to(at::kDouble).mean().item<double>();
    // "Same grid point": equal up to the rounding of the group scale. Where group parameters are
    // computed from error-updated weights (non-static groups), BLAS summation order moves those
    // scales by a few ulps, so values differ in their last bits while the codes agree; a different
    // code differs by a whole grid step (amax/7.5 or /15), far above this bound.
    at::Tensor row_amax = Qref.abs().amax(1, true);
    const double same_point =
        ((r->weight - Qref).abs() <= 1e-5 * row_amax).to(at::kDouble).mean().item<double>();
    EXPECT_GE(same_point, 0.99) << "fraction on the reference's grid point (exactly identical: "
                                << identical << ")";
    if (meta["static_groups"] || meta["groupsize"] == -1) {
      EXPECT_GE(identical, 0.99);
    }
    const double err = LayerOutputError(X, W, r->weight);
    const double err_ref = meta["err_gptq"], err_rtn = meta["err_rtn"];
    EXPECT_NEAR(err / err_ref, 1.0, 0.01) << err << " vs " << err_ref;
    EXPECT_LT(err, err_rtn);
    // RTN: our scales and zero points are the reference's bit for bit.
    auto params = ComputeQuantParams(spec, W);
    ASSERT_TRUE(params.ok());
    at::Tensor ref_scale = o.Get(name + ".rtn_scale"), ref_zero = o.Get(name + ".rtn_zero");
    EXPECT_TRUE(at::equal(params->scale.reshape(ref_scale.sizes()), ref_scale));
    auto rtn = RtnQuantizeWeight(W, spec);
    ASSERT_TRUE(rtn.ok());
    at::Tensor Qrtn = o.Get(name + ".Q_rtn");
    // The values differ only where the reference's rounding of w / s (a division) and Quark's
    // rounding of w * (1/s) (the float32 reciprocal, our contract) land on different sides of a
    // .5 tie: exactly the elements computed here.
    const int64_t g = meta["groupsize"];
    at::Tensor s_full = g > 0 ? ref_scale.repeat_interleave(g, 1) : ref_scale.expand_as(W);
    at::Tensor by_division = at::round(W / s_full);
    at::Tensor by_reciprocal = at::round(W * (1.0f / s_full));
    at::Tensor tie_flips = by_division != by_reciprocal;
    at::Tensor rtn_diff = *rtn != Qrtn;
    EXPECT_TRUE(at::equal(rtn_diff, rtn_diff & tie_flips)) << "RTN differs away from tie flips";
    std::printf("%-32s identical %.4f same-point %.4f err %.3f (ref %.3f, rtn %.3f) rtn "
                "tie-flips %lld\n",
                c, identical, same_point, err, err_ref, err_rtn,
                static_cast<long long>(rtn_diff.sum().item<int64_t>()));
  }
}

TEST(Gptq, FastMatchesTranscription) {
  at::manual_seed(7);
  const int64_t rows = 64, cols = 384;
  at::Tensor W = at::randn({rows, cols}) * 0.02;
  at::Tensor X = at::randn({2000, cols}) * (1 + at::rand({cols}) * 3);
  HessianAccumulator acc(cols);
  ASSERT_TRUE(acc.Add(X).ok());
  at::Tensor H = acc.H();
  struct Variant {
    QuantizationSpec spec;
    bool act, stat;
    int block;
  };
  std::vector<Variant> variants = {
      {SpecFor(true, 32), true, true, 128},  {SpecFor(false, 128), false, false, 128},
      {SpecFor(false, 64), true, false, 50}, {SpecFor(true, -1), true, false, 128},
      {*FP8E4M3PerChannelSpec{true, "float", "half_even", 0, false}.ToQuantizationSpec(), true, true, 64},
      {*OCP_MXFP4Spec{false, -1, "even"}.ToQuantizationSpec(), true, true, 128},
      {*Int8PerTensorSpec{"min_max", true, "float", "half_even", false}.ToQuantizationSpec(), false, true, 128},
  };
  for (const auto& v : variants) {
    GPTQConfig cfg;
    cfg.desc_act = v.act;
    cfg.static_groups = v.stat;
    cfg.block_size = v.block;
    auto fast = GptqQuantizeWeight(W, H, v.spec, cfg);
    auto ref = GptqQuantizeWeightReference(W, H, v.spec, cfg);
    ASSERT_TRUE(fast.ok()) << fast.status();
    ASSERT_TRUE(ref.ok()) << ref.status();
    // Same algorithm; the lazy updates run as different BLAS calls (transposed layout), so the
    // weights differ in their last bits: the same grid point almost everywhere, and exactly the
    // same values where the grid does not depend on updated weights (static groups, per-channel).
    const double identical = (fast->weight == ref->weight).to(at::kDouble).mean().item<double>();
    at::Tensor amax = ref->weight.abs().amax(1, true);
    const double same_point =
        ((fast->weight - ref->weight).abs() <= 1e-5 * amax).to(at::kDouble).mean().item<double>();
    EXPECT_GE(same_point, 0.999) << Name(v.spec.dtype) << " act=" << v.act << " static=" << v.stat;
    if (v.stat || v.spec.qscheme != QSchemeType::kPerGroup) {
      EXPECT_GE(identical, 0.999);
    }
    const double ef = LayerOutputError(X, W, fast->weight), er = LayerOutputError(X, W, ref->weight);
    EXPECT_NEAR(ef / er, 1.0, 1e-3);
    auto rtn = RtnQuantizeWeight(W, v.spec);
    EXPECT_LT(ef, LayerOutputError(X, W, *rtn)) << Name(v.spec.dtype);
  }
}

TEST(Gptq, DeadColumnsAndBadInput) {
  at::manual_seed(3);
  at::Tensor W = at::randn({16, 64});
  at::Tensor X = at::randn({300, 64});
  X.select(1, 5).zero_();  // a dead input channel
  HessianAccumulator acc(64);
  ASSERT_TRUE(acc.Add(X).ok());
  GPTQConfig cfg;
  auto r = GptqQuantizeWeight(W, acc.H(), SpecFor(true, 32), cfg);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->weight.select(1, 5).abs().sum().item<double>(), 0.0);  // dead column zeroed
  EXPECT_FALSE(GptqQuantizeWeight(W, at::eye(10), SpecFor(true, 32), cfg).ok());
  EXPECT_FALSE(acc.Add(at::randn({3, 65})).ok());
  // An indefinite "Hessian" gets more dampening, and says so.
  at::Tensor bad = acc.H();
  bad.diagonal().sub_(bad.diagonal().max() * 0.2);
  auto d = GptqQuantizeWeight(W, bad, SpecFor(true, 32), cfg);
  if (d.ok()) {
    EXPECT_GT(d->damp_retries, 0);
  } else {
    EXPECT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition);
  }
}

TEST(Qronos, CorrectsTowardTheFloatOutputs) {
  // Float-model inputs X and quantized-model inputs Xq = X + noise: Qronos targets X W^T given
  // Xq, so its error against the float outputs beats GPTQ's (which only sees Xq).
  at::manual_seed(11);
  const int64_t rows = 48, cols = 256, n = 3000;
  at::Tensor W = at::randn({rows, cols}) * 0.05;
  at::Tensor X = at::randn({n, cols}) * (1 + at::rand({cols}) * 2);
  at::Tensor Xq = X + 0.3 * at::randn({n, cols});
  HessianAccumulator Hq(cols, 1.0);
  HessianAccumulator Hg(cols, 2.0);
  CrossCovarianceAccumulator G(cols);
  ASSERT_TRUE(Hq.Add(Xq).ok());
  ASSERT_TRUE(Hg.Add(Xq).ok());
  ASSERT_TRUE(G.Add(X, Xq).ok());
  const QuantizationSpec spec = SpecFor(false, 64);
  QronosConfig qc;
  qc.inside_layer_modules = {"x"};
  auto q = QronosQuantizeWeight(W, Hq.H(), G.G(), spec, qc);
  ASSERT_TRUE(q.ok()) << q.status();
  GPTQConfig gc;
  auto g = GptqQuantizeWeight(W, Hg.H(), spec, gc);
  ASSERT_TRUE(g.ok());
  auto err = [&](const at::Tensor& Q) {
    return (at::matmul(Xq, Q.t()) - at::matmul(X, W.t())).pow(2).sum().item<double>();
  };
  std::printf("output error vs float: qronos %.2f, gptq %.2f, rtn %.2f\n", err(q->weight),
              err(g->weight), err(*RtnQuantizeWeight(W, spec)));
  EXPECT_LT(err(q->weight), err(g->weight));
  // On its own grid: re-quantizing with the returned parameters changes nothing.
  ASSERT_TRUE(q->params.has_value());
  auto again = FakeQuantize(q->weight, spec, *q->params);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(at::equal(*again, q->weight));
}

}  // namespace
}  // namespace quarry
