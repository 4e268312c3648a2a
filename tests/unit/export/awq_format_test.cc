// AutoAWQ "GEMM" export (export/awq_format.h): hand-checked packing words, a pack/unpack round
// trip against Quarry's own quantizer, the float16-scale rounding figures, and whole jobs on the
// fixture: the files and config.json a loader reads, dequantized tensors against the job's
// fake-quantized weights within the float16 bound, and the refusal of specs AWQ cannot hold.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "export/awq_format.h"
#include "quarry/packing.h"
#include "quarry/pipeline.h"
#include "quarry/presets.h"
#include "quarry/quantize.h"
#include "quarry/safetensors.h"
#include "quarry/tensor_io.h"

namespace quarry {
namespace {

namespace fs = std::filesystem;
using exporter::awq::DequantizeGemm;
using exporter::awq::GemmTensors;
using exporter::awq::MeasureScaleRounding;
using exporter::awq::PackColumns;
using exporter::awq::PackGemm;

const std::string kData = QUARRY_TEST_DATA_DIR;
const std::string kLlama = kData + "/models/tiny-llama-kjv";
// |fp16(s) - s| <= 2^-11 |s| for s in float16's normal range, plus float32 rounding of the two
// products (q - z) * s.
const double kFp16ScaleBound = std::ldexp(1.0, -11) + std::ldexp(1.0, -22);

std::string OutDir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("quarry_awq_" + std::to_string(::getpid())) / name;
  fs::remove_all(p);
  return p.string();
}

uint32_t Word(const at::Tensor& packed, int64_t r, int64_t c) {
  return static_cast<uint32_t>(packed[r][c].item<int32_t>());
}

// Codes 0..7 in one row of eight output columns: nibble j holds column {0,2,4,6,1,3,5,7}[j]
// (AutoAWQ gemm.py order_map), so the word reads 7,5,3,1,6,4,2,0 from the top nibble down.
TEST(AwqPacking, HandCheckedWords) {
  at::Tensor v = at::arange(0, 8, at::kInt).view({1, 8});
  auto p = PackColumns(v);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->sizes(), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(Word(*p, 0, 0), 0x75316420u);
  // 8..15 sets the top bit: the int32 is negative, its bits unchanged.
  p = PackColumns(at::arange(8, 16, at::kInt).view({1, 8}));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(Word(*p, 0, 0), 0xFDB9ECA8u);
  EXPECT_LT((*p)[0][0].item<int32_t>(), 0);
  // Two words in a row: columns 8..15 go to word 1.
  at::Tensor two = at::zeros({2, 16}, at::kInt);
  two[1][9] = 15;  // column 1 of word 1 -> nibble 4 (AWQ_REVERSE_ORDER[1])
  p = PackColumns(two);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(Word(*p, 0, 0), 0u);
  EXPECT_EQ(Word(*p, 1, 0), 0u);
  EXPECT_EQ(Word(*p, 1, 1), 0xFu << 16);
  // The reader undoes it.
  EXPECT_TRUE(at::equal(exporter::awq::UnpackColumns(*p), two));
  // Out of range and ragged inputs are errors, not wrapped nibbles.
  at::Tensor bad = at::zeros({1, 8}, at::kInt);
  bad[0][3] = 16;
  auto e = PackColumns(bad);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("[0, 3]"), absl::string_view::npos) << e.status();
  EXPECT_FALSE(PackColumns(at::zeros({1, 12}, at::kInt)).ok());
}

QuantizationSpec Uint4Spec(int g) {
  QuantizationSpec s = PresetConfig("uint4_wo_128")->global_quant_config.weight->front();
  s.group_size = g;
  return s;
}

// Codes [out, in] from Quarry's real quantizer (plain nibble order along in).
at::Tensor Codes(const at::Tensor& w, const QuantizationSpec& spec, const QuantParams& params) {
  auto q = Quantize(w, spec, params, PackOrder::kOrder);
  EXPECT_TRUE(q.ok()) << q.status();
  const at::Tensor d = q->data.contiguous();
  at::Tensor codes = at::zeros(w.sizes(), at::kInt);
  for (int64_t r = 0; r < w.size(0); ++r)
    for (int64_t c = 0; c < w.size(1); ++c)
      codes[r][c] = packing::UnpackInt4(static_cast<uint32_t>(d[r][c / 8].item<int32_t>()), c % 8,
                                        PackOrder::kOrder, false);
  return codes;
}

// With scales that float16 holds exactly, AWQ's tensors dequantize to the quantizer's
// fake-quantized weights bit for bit, and the reader returns the codes and zero points.
TEST(AwqPacking, RoundTripMatchesFakeQuantizationWithFp16ExactScales) {
  const int g = 64;
  const QuantizationSpec spec = Uint4Spec(g);
  ASSERT_EQ(spec.dtype, Dtype::kUint4);
  at::manual_seed(7);
  at::Tensor w = at::randn({24, 256}) * 0.05;
  auto params = ComputeQuantParams(spec, w);
  ASSERT_TRUE(params.ok()) << params.status();
  params->scale = params->scale.to(at::kHalf).to(at::kFloat);  // exactly representable
  auto fq = FakeQuantize(w, spec, *params);
  ASSERT_TRUE(fq.ok()) << fq.status();
  const at::Tensor codes = Codes(w, spec, *params);
  auto t = PackGemm(codes, params->zero_point, params->scale);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->qweight.sizes(), (std::vector<int64_t>{256, 3}));
  EXPECT_EQ(t->qzeros.sizes(), (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(t->scales.sizes(), (std::vector<int64_t>{4, 24}));
  EXPECT_EQ(t->qweight.scalar_type(), at::kInt);
  EXPECT_EQ(t->scales.scalar_type(), at::kHalf);
  at::Tensor rc, rz;
  auto deq = DequantizeGemm(*t, g, &rc, &rz);
  ASSERT_TRUE(deq.ok()) << deq.status();
  EXPECT_TRUE(at::equal(rc, codes.t()));
  EXPECT_TRUE(at::equal(rz, params->zero_point.to(at::kInt).t()));  // z as is (no GPTQ -1)
  EXPECT_TRUE(at::equal(*deq, *fq)) << (*deq - *fq).abs().max().item<float>();
  const auto r = MeasureScaleRounding(*fq, params->scale);
  EXPECT_EQ(r.changed, 0);
  EXPECT_EQ(r.weights, w.numel());
  // A wrong group size is an error naming the shapes.
  EXPECT_FALSE(DequantizeGemm(*t, 32).ok());
}

// With the quantizer's own float32 scales the difference is the float16 rounding of the scales,
// and MeasureScaleRounding's figures are the measured ones.
TEST(AwqPacking, Fp16ScaleRoundingIsBoundedAndCounted) {
  const int g = 128;
  const QuantizationSpec spec = Uint4Spec(g);
  at::manual_seed(11);
  at::Tensor w = at::randn({32, 512}) * 0.02;
  auto params = ComputeQuantParams(spec, w);
  ASSERT_TRUE(params.ok());
  auto fq = FakeQuantize(w, spec, *params);
  ASSERT_TRUE(fq.ok());
  auto t = PackGemm(Codes(w, spec, *params), params->zero_point, params->scale);
  ASSERT_TRUE(t.ok()) << t.status();
  auto deq = DequantizeGemm(*t, g);
  ASSERT_TRUE(deq.ok());
  const at::Tensor diff = (*deq - *fq).abs();
  EXPECT_TRUE(at::all(diff <= fq->abs() * kFp16ScaleBound).item<bool>())
      << (diff / fq->abs()).nan_to_num(0).max().item<double>();
  const auto r = MeasureScaleRounding(*fq, params->scale);
  EXPECT_EQ(r.changed, (diff > 0).sum().item<int64_t>());
  EXPECT_GT(r.changed, w.numel() / 2);  // float32 scales are almost never float16 values
  EXPECT_GT(r.max_rel_change, 0);
  EXPECT_LE(r.max_rel_change, std::ldexp(1.0, -11));
  const double rms = std::sqrt(diff.to(at::kDouble).square().sum().item<double>() /
                               fq->to(at::kDouble).square().sum().item<double>());
  EXPECT_NEAR(std::sqrt(r.err_sq / r.ref_sq), rms, 0.02 * rms);
  EXPECT_NE(r.Describe().find("of 16384 quantized weights"), std::string::npos) << r.Describe();
  // Scales beyond float16's range are refused, not written as infinities.
  EXPECT_FALSE(PackGemm(at::zeros({8, 128}, at::kInt), at::zeros({8, 1}), at::full({8, 1}, 7e4)).ok());
}

class LogObserver : public JobObserver {
 public:
  void OnLog(LogSeverity, absl::string_view m) override { logs.emplace_back(m); }
  std::vector<std::string> logs;
};

QuantizeOptions RtnJob(const std::string& preset, const std::string& out) {
  QuantizeOptions o;
  o.model_dir = kLlama;
  o.config = *PresetConfig(preset);
  o.output_dir = out;
  o.export_options.write_report = false;
  o.error_sample_sequences = 0;
  return o;
}

at::Tensor Load(const SafetensorsFile& f, const std::string& name) {
  auto t = LoadTensor(f, name);
  EXPECT_TRUE(t.ok()) << name << ": " << t.status();
  return t.ok() ? *t : at::Tensor();
}

// uint4_wo_128 (RTN, no calibration) exported as AWQ: what a loader reads, and the exported
// tensors dequantize to the job's fake-quantized weights (its fake_quantized Quark export)
// within the float16 scale bound, with the logged count of changed weights.
TEST(AwqExport, Uint4Wo128JobWritesAutoAwqGemm) {
  const std::string out = OutDir("uint4_awq"), ref = OutDir("uint4_fake");
  QuantizeOptions o = RtnJob("uint4_wo_128", out);
  o.export_options.format = ExportFormat::kAwq;
  LogObserver obs;
  auto r = QuantizeModel(o, &obs);
  ASSERT_TRUE(r.ok()) << r.status();
  QuantizeOptions f = RtnJob("uint4_wo_128", ref);
  f.export_options.real_quantized = false;
  auto rf = QuantizeModel(f);
  ASSERT_TRUE(rf.ok()) << rf.status();
  for (const char* name : {"model.safetensors", "config.json", "tokenizer.model"})
    EXPECT_TRUE(fs::exists(fs::path(out) / name)) << name;

  std::ifstream cin(out + "/config.json");
  const auto cfg = nlohmann::json::parse(cin);
  const auto& q = cfg["quantization_config"];
  EXPECT_EQ(q["quant_method"], "awq");
  EXPECT_EQ(q["bits"], 4);
  EXPECT_EQ(q["group_size"], 128);
  EXPECT_EQ(q["zero_point"], true);
  EXPECT_EQ(q["version"], "gemm");
  EXPECT_EQ(q["modules_to_not_convert"], nlohmann::json::array({"lm_head"}));
  EXPECT_FALSE(q.contains("export"));
  EXPECT_EQ(cfg["torch_dtype"], "float16");
  EXPECT_EQ(cfg["model_type"], "llama");

  auto st = SafetensorsFile::Open(out + "/model.safetensors");
  ASSERT_TRUE(st.ok()) << st.status();
  auto fake = SafetensorsFile::Open(ref + "/model.safetensors");
  ASSERT_TRUE(fake.ok()) << fake.status();
  EXPECT_EQ((*st)->Find("lm_head.weight")->dtype, StDtype::kBF16);  // excluded: as is
  EXPECT_EQ((*st)->Find("model.layers.0.input_layernorm.weight")->dtype, StDtype::kBF16);
  int64_t linears = 0, changed = 0, total = 0;
  double worst = 0;
  for (int layer = 0; layer < 8; ++layer) {
    for (const char* m : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                          "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}) {
      const std::string p = "model.layers." + std::to_string(layer) + "." + m;
      SCOPED_TRACE(p);
      EXPECT_EQ((*st)->Find(p + ".weight"), nullptr);
      EXPECT_EQ((*st)->Find(p + ".weight_scale"), nullptr);
      const StTensorInfo* qw = (*st)->Find(p + ".qweight");
      const StTensorInfo* qz = (*st)->Find(p + ".qzeros");
      const StTensorInfo* sc = (*st)->Find(p + ".scales");
      ASSERT_TRUE(qw && qz && sc);
      const at::Tensor wf = Load(**fake, p + ".weight");  // [out, in] float32 on the grid
      const int64_t out_f = wf.size(0), in_f = wf.size(1);
      EXPECT_EQ(qw->dtype, StDtype::kI32);
      EXPECT_EQ(qz->dtype, StDtype::kI32);
      EXPECT_EQ(sc->dtype, StDtype::kF16);
      EXPECT_EQ(qw->shape, (std::vector<int64_t>{in_f, out_f / 8}));
      EXPECT_EQ(qz->shape, (std::vector<int64_t>{in_f / 128, out_f / 8}));
      EXPECT_EQ(sc->shape, (std::vector<int64_t>{in_f / 128, out_f}));
      GemmTensors t{Load(**st, p + ".qweight"), Load(**st, p + ".qzeros"), Load(**st, p + ".scales")};
      at::Tensor codes, zeros;
      auto deq = DequantizeGemm(t, 128, &codes, &zeros);
      ASSERT_TRUE(deq.ok()) << deq.status();
      // Zero points are uint4 asymmetric's own (not all 8: the layout carries them).
      EXPECT_TRUE(at::all(zeros.le(15)).item<bool>());
      EXPECT_GT(zeros.max().item<int32_t>(), zeros.min().item<int32_t>());
      const at::Tensor diff = (*deq - wf).abs();
      EXPECT_TRUE(at::all(diff <= wf.abs() * kFp16ScaleBound).item<bool>());
      worst = std::max(worst, (diff / wf.abs()).nan_to_num(0).max().item<double>());
      changed += (diff > 0).sum().item<int64_t>();
      total += wf.numel();
      ++linears;
    }
  }
  EXPECT_EQ(linears, 56);
  EXPECT_GT(worst, 0);
  EXPECT_LE(worst, kFp16ScaleBound);
  // The job logged the same count of changed weights.
  const std::string expect = std::to_string(changed) + " of " + std::to_string(total);
  bool logged = false;
  for (const auto& l : obs.logs) logged |= l.find(expect) != std::string::npos;
  EXPECT_TRUE(logged) << "no log line with '" << expect << "'";
  std::printf("awq export: %lld of %lld weights change with float16 scales, max rel %.3g\n",
              static_cast<long long>(changed), static_cast<long long>(total), worst);
}

void ExpectRefused(const std::string& preset, const std::vector<std::string>& needles) {
  SCOPED_TRACE(preset);
  const std::string out = OutDir("refused");
  QuantizeOptions o = RtnJob(preset, out);
  o.export_options.format = ExportFormat::kAwq;
  o.calibration.path = kData + "/kjv-calib.jsonl";
  o.calibration.num_samples = 2;
  o.calibration.seq_len = 32;
  auto r = QuantizeModel(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  for (const auto& n : needles)
    EXPECT_NE(r.status().message().find(n), absl::string_view::npos) << r.status();
  EXPECT_FALSE(fs::exists(fs::path(out) / "model.safetensors"));
}

TEST(AwqExport, RefusesWhatAwqCannotHold) {
  ExpectRefused("int4_wo_128", {"model.layers.0.self_attn.q_proj", "int4 per_group(g128)", "sym",
                                "vLLM's AWQ path reads unsigned nibbles with zero points",
                                "uint4_wo_128"});
  ExpectRefused("uint4_wo_per_channel", {"model.layers.0.self_attn.q_proj", "per_group"});
  ExpectRefused("fp8", {"model.layers.0.self_attn.q_proj", "activation quantizers",
                        "weight-only"});
  ExpectRefused("fp8+kv_fp8", {"kv_cache_quant_config"});
}

}  // namespace
}  // namespace quarry
