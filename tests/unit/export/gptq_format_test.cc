// GPTQ v1 export (export/gptq_format.h): hand-checked packing words, pack/unpack round trips,
// the independent reader against Quarry's fake-quantized weights (exact with float16 scales,
// within the float16 bound otherwise), the plan refusals, and whole jobs on the fixture whose
// perplexity re-measured from the exported directory equals the job's own.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "export/awq_format.h"
#include "export/gptq_format.h"
#include "quarry/config_json.h"
#include "quarry/eval.h"
#include "quarry/layer_plan.h"
#include "quarry/pipeline.h"
#include "quarry/presets.h"
#include "quarry/quantize.h"
#include "quarry/safetensors.h"
#include "quarry/tensor_io.h"

namespace quarry {
namespace {

namespace fs = std::filesystem;
namespace gptq = exporter::gptq;

const std::string kData = QUARRY_TEST_DATA_DIR;
const std::string kLlama = kData + "/models/tiny-llama-kjv";
const std::string kExamples = kData + "/../../examples";
// |fp16(s) - s| <= 2^-11 |s| for s in float16's normal range, plus float32 rounding of q * s.
const double kFp16ScaleBound = std::ldexp(1.0, -11) + std::ldexp(1.0, -22);

std::string OutDir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("quarry_gptq_" + std::to_string(::getpid())) / name;
  fs::remove_all(p);
  return p.string();
}

uint32_t Word(const at::Tensor& packed, int64_t r, int64_t c) {
  return static_cast<uint32_t>(packed[r][c].item<int32_t>());
}

// Input rows 0..7 of one output column with unsigned codes 0..7: row j sits in bits 4j, so the
// word reads 7,6,5,4,3,2,1,0 from the top nibble down.
TEST(GptqPacking, HandCheckedWords) {
  auto p = gptq::PackRows(at::arange(0, 8, at::kInt).view({8, 1}), 4);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->sizes(), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(Word(*p, 0, 0), 0x76543210u);
  // Codes 8..15 set the top bit: a negative int32 with its bits unchanged.
  p = gptq::PackRows(at::arange(8, 16, at::kInt).view({8, 1}), 4);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(Word(*p, 0, 0), 0xFEDCBA98u);
  EXPECT_LT((*p)[0][0].item<int32_t>(), 0);
  // 8 bit: four rows per word, row j in bits 8j.
  p = gptq::PackRows(at::tensor({1, 2, 3, 255}, at::kInt).view({4, 1}), 8);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(Word(*p, 0, 0), 0xFF030201u);
  // Rows 8..15 go to word row 1; columns stay columns.
  at::Tensor two = at::zeros({16, 2}, at::kInt);
  two[9][1] = 15;  // row 1 of word row 1 -> bits 4..7 of word [1, 1]
  p = gptq::PackRows(two, 4);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(Word(*p, 0, 0), 0u);
  EXPECT_EQ(Word(*p, 0, 1), 0u);
  EXPECT_EQ(Word(*p, 1, 0), 0u);
  EXPECT_EQ(Word(*p, 1, 1), 0xF0u);
  EXPECT_TRUE(at::equal(gptq::UnpackRows(*p, 4), two));
  // qzeros pack along columns: column j in bits 4j.
  auto z = gptq::PackColumns(at::arange(0, 8, at::kInt).view({1, 8}), 4);
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(Word(*z, 0, 0), 0x76543210u);
  // Out of range and ragged inputs are errors, not wrapped codes.
  at::Tensor bad = at::zeros({8, 1}, at::kInt);
  bad[3][0] = 16;
  auto e = gptq::PackRows(bad, 4);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("[3, 0]"), absl::string_view::npos) << e.status();
  EXPECT_FALSE(gptq::PackRows(at::zeros({12, 1}, at::kInt), 4).ok());
  EXPECT_FALSE(gptq::PackColumns(at::zeros({1, 6}, at::kInt), 8).ok());
  EXPECT_FALSE(gptq::PackRows(at::zeros({8, 1}, at::kInt), 3).ok());
}

// A whole linear by hand: out 8, in 16, one group of 16 per row, signed codes q[o, i] = i - 8
// (int4's -8..7) and scale 0.5: q_u = i, so each column's two words are 0x76543210 and
// 0xFEDCBA98; the symmetric zero 8 is stored as 7 in every nibble; g_idx is all 0.
TEST(GptqPacking, HandCheckedLinear) {
  at::Tensor codes = (at::arange(16, at::kInt) - 8).view({1, 16}).expand({8, 16}).contiguous();
  at::Tensor scale = at::full({8, 1}, 0.5f);
  auto t = gptq::PackLinear(codes, scale, 4);
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->qweight.sizes(), (std::vector<int64_t>{2, 8}));
  ASSERT_EQ(t->qzeros.sizes(), (std::vector<int64_t>{1, 1}));
  ASSERT_EQ(t->scales.sizes(), (std::vector<int64_t>{1, 8}));
  ASSERT_EQ(t->g_idx.sizes(), (std::vector<int64_t>{16}));
  for (int o = 0; o < 8; ++o) {
    EXPECT_EQ(Word(t->qweight, 0, o), 0x76543210u);
    EXPECT_EQ(Word(t->qweight, 1, o), 0xFEDCBA98u);
  }
  EXPECT_EQ(Word(t->qzeros, 0, 0), 0x77777777u);
  EXPECT_EQ(t->scales.scalar_type(), at::kHalf);
  EXPECT_EQ(t->g_idx.scalar_type(), at::kInt);
  EXPECT_EQ(t->g_idx.sum().item<int64_t>(), 0);
  at::Tensor q, z;
  auto w = gptq::Dequantize(*t, 4, 1, &q, &z);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_TRUE(at::equal(*w, codes.to(at::kFloat) * 0.5f));
  EXPECT_TRUE(at::equal(z, at::full({1, 8}, 7, at::kInt)));
  // int8 per-channel: zero 128 stored as 127 (0x7F7F7F7F), g_idx [in] of zeros.
  at::Tensor c8 = at::randint(-128, 128, {8, 8}, at::kInt);
  auto t8 = gptq::PackLinear(c8, at::full({8, 1}, 0.25f), 8);
  ASSERT_TRUE(t8.ok()) << t8.status();
  ASSERT_EQ(t8->qzeros.sizes(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(Word(t8->qzeros, 0, 0), 0x7F7F7F7Fu);
  EXPECT_EQ(Word(t8->qzeros, 0, 1), 0x7F7F7F7Fu);
  auto w8 = gptq::Dequantize(*t8, 8);
  ASSERT_TRUE(w8.ok());
  EXPECT_TRUE(at::equal(*w8, c8.to(at::kFloat) * 0.25f));
  // g_idx of two groups of 128.
  auto t2 = gptq::PackLinear(at::zeros({8, 256}, at::kInt), at::ones({8, 2}), 4);
  ASSERT_TRUE(t2.ok());
  EXPECT_EQ(t2->g_idx[127].item<int32_t>(), 0);
  EXPECT_EQ(t2->g_idx[128].item<int32_t>(), 1);
  // Codes outside int4 and scales beyond float16 are refused.
  EXPECT_FALSE(gptq::PackLinear(at::full({8, 8}, 8, at::kInt), at::ones({8, 1}), 4).ok());
  EXPECT_FALSE(gptq::PackLinear(at::zeros({8, 8}, at::kInt), at::full({8, 1}, 7e4), 4).ok());
  // The reader checks shapes and g_idx.
  gptq::LinearTensors broken = *t2;
  broken.g_idx = broken.g_idx + 1;
  EXPECT_FALSE(gptq::Dequantize(broken, 4).ok());
  EXPECT_FALSE(gptq::Dequantize(*t2, 8).ok());
}

TEST(GptqPacking, PackUnpackRoundTrip) {
  at::manual_seed(3);
  for (int bits : {4, 8}) {
    SCOPED_TRACE(bits);
    at::Tensor v = at::randint(0, 1 << bits, {64, 24}, at::kInt);
    auto rows = gptq::PackRows(v, bits);
    ASSERT_TRUE(rows.ok());
    EXPECT_EQ(rows->size(0), 64 / gptq::PackFactor(bits));
    EXPECT_TRUE(at::equal(gptq::UnpackRows(*rows, bits), v));
    auto cols = gptq::PackColumns(v, bits);
    ASSERT_TRUE(cols.ok());
    EXPECT_EQ(cols->size(1), 24 / gptq::PackFactor(bits));
    EXPECT_TRUE(at::equal(gptq::UnpackColumns(*cols, bits), v));
  }
}

QuantizationSpec WeightSpec(const std::string& preset) {
  return PresetConfig(preset)->global_quant_config.weight->front();
}

struct Case {
  const char* name;
  QuantizationSpec spec;
  int bits;
};

std::vector<Case> ReaderCases() {
  QuantizationSpec int8_channel = WeightSpec("int4_wo_per_channel");
  int8_channel.dtype = Dtype::kInt8;
  return {{"int4 g32", WeightSpec("int4_wo_32"), 4},
          {"int4 g128", WeightSpec("int4_wo_128"), 4},
          {"int8 per-channel", int8_channel, 8}};
}

// Scales [out, G] (per-channel [out] -> [out, 1]).
at::Tensor Scale2d(const QuantParams& p, int64_t out) {
  return p.scale.to(at::kFloat).reshape({out, -1});
}

// With scales float16 holds exactly, the GPTQ tensors dequantize to Quarry's fake-quantized
// weight bit for bit, and the stored codes are the signed codes offset by 8 / 128.
TEST(GptqReader, MatchesFakeQuantizationWithFp16ExactScales) {
  for (const Case& c : ReaderCases()) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(c.spec.symmetric.value_or(false));
    at::manual_seed(7);
    at::Tensor w = at::randn({32, 512}) * 0.05;
    auto params = ComputeQuantParams(c.spec, w);
    ASSERT_TRUE(params.ok()) << params.status();
    params->scale = params->scale.to(at::kHalf).to(at::kFloat);  // exactly representable
    auto fq = FakeQuantize(w, c.spec, *params);
    ASSERT_TRUE(fq.ok()) << fq.status();
    const at::Tensor s = Scale2d(*params, 32);
    auto codes = gptq::CodesOf(*fq, s, c.bits);
    ASSERT_TRUE(codes.ok()) << codes.status();
    auto t = gptq::PackLinear(*codes, s, c.bits);
    ASSERT_TRUE(t.ok()) << t.status();
    const int pack = gptq::PackFactor(c.bits);
    EXPECT_EQ(t->qweight.sizes(), (std::vector<int64_t>{512 / pack, 32}));
    EXPECT_EQ(t->scales.sizes(), (std::vector<int64_t>{s.size(1), 32}));
    at::Tensor q;
    auto deq = gptq::Dequantize(*t, c.bits, 1, &q);
    ASSERT_TRUE(deq.ok()) << deq.status();
    EXPECT_TRUE(at::equal(*deq, *fq)) << (*deq - *fq).abs().max().item<float>();
    EXPECT_TRUE(at::equal(q, (*codes + gptq::CodeOffset(c.bits)).t()));
    EXPECT_EQ(exporter::awq::MeasureScaleRounding(*fq, s).changed, 0);
    // Both ends of the range are used (the codes are not squeezed into the unsigned half).
    EXPECT_EQ(codes->max().item<int32_t>(), gptq::CodeOffset(c.bits) - 1);
    EXPECT_LE(codes->min().item<int32_t>(), -gptq::CodeOffset(c.bits) + 1);
  }
}

// With the quantizer's float32 scales, the difference is their float16 rounding, bounded and
// counted by MeasureScaleRounding.
TEST(GptqReader, Fp16ScaleRoundingIsBoundedAndCounted) {
  for (const Case& c : ReaderCases()) {
    SCOPED_TRACE(c.name);
    at::manual_seed(11);
    at::Tensor w = at::randn({32, 512}) * 0.02;
    auto params = ComputeQuantParams(c.spec, w);
    ASSERT_TRUE(params.ok());
    auto fq = FakeQuantize(w, c.spec, *params);
    ASSERT_TRUE(fq.ok());
    const at::Tensor s = Scale2d(*params, 32);
    auto codes = gptq::CodesOf(*fq, s, c.bits);
    ASSERT_TRUE(codes.ok()) << codes.status();
    auto t = gptq::PackLinear(*codes, s, c.bits);
    ASSERT_TRUE(t.ok());
    auto deq = gptq::Dequantize(*t, c.bits);
    ASSERT_TRUE(deq.ok());
    const at::Tensor diff = (*deq - *fq).abs();
    EXPECT_TRUE(at::all(diff <= fq->abs() * kFp16ScaleBound).item<bool>())
        << (diff / fq->abs()).nan_to_num(0).max().item<double>();
    const auto r = exporter::awq::MeasureScaleRounding(*fq, s);
    EXPECT_EQ(r.changed, (diff > 0).sum().item<int64_t>());
    EXPECT_GT(r.changed, 0);
    EXPECT_LE(r.max_rel_change, std::ldexp(1.0, -11));
    EXPECT_NE(r.Describe("gptq").find("export_format gptq: scales are stored as float16 (GPTQ's"),
              std::string::npos) << r.Describe("gptq");
  }
  // A weight off its grid is an internal error, not silently re-rounded codes.
  at::Tensor w = at::full({8, 8}, 0.3f);
  EXPECT_EQ(gptq::CodesOf(w, at::full({8, 1}, 0.25f), 4).status().code(),
            absl::StatusCode::kInternal);
}

// ---------------------------------------------------------------------------------------------
// Plan checks (the same function QuarkExporter::Create runs before any layer).

absl::Status CheckPlanOf(const Config& config, const ExportOptions& options = {}) {
  auto modules = ListModelModules(kLlama);
  if (!modules.ok()) return modules.status();
  auto plan = ResolveLayerPlan(config, *modules);
  if (!plan.ok()) return plan.status();
  return gptq::CheckPlan(*plan, config, options).status();
}

void ExpectRefusal(const absl::Status& s, const std::vector<std::string>& needles) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  for (const auto& n : needles)
    EXPECT_NE(s.message().find(n), absl::string_view::npos) << "'" << n << "' not in: " << s;
}

TEST(GptqPlan, AcceptsInt4GroupAndInt8PerChannel) {
  ExportOptions o;
  auto modules = ListModelModules(kLlama);
  ASSERT_TRUE(modules.ok());
  Config c = *PresetConfig("int4_wo_128");
  auto plan = ResolveLayerPlan(c, *modules);
  ASSERT_TRUE(plan.ok());
  auto info = gptq::CheckPlan(*plan, c, o);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->bits, 4);
  EXPECT_EQ(info->group_size, 128);
  EXPECT_EQ(info->modules_to_not_convert, std::vector<std::string>{"lm_head"});
  const auto q = gptq::QuantizationConfig(*info);
  EXPECT_EQ(q["quant_method"], "gptq");
  EXPECT_EQ(q["checkpoint_format"], "gptq");
  EXPECT_EQ(q["sym"], true);
  EXPECT_EQ(q["desc_act"], false);
  EXPECT_FALSE(q.contains("damp_percent"));  // RTN: no GPTQ settings to report
  Config c8 = c;
  QuantizationSpec s8 = WeightSpec("int4_wo_per_channel");
  s8.dtype = Dtype::kInt8;
  c8.global_quant_config.weight = TensorSpecs(s8);
  plan = ResolveLayerPlan(c8, *modules);
  ASSERT_TRUE(plan.ok());
  info = gptq::CheckPlan(*plan, c8, o);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->bits, 8);
  EXPECT_EQ(info->group_size, -1);
  EXPECT_EQ(gptq::QuantizationConfig(*info)["group_size"], -1);
}

TEST(GptqPlan, RefusesWhatGptqCannotHold) {
  const std::string q0 = "model.layers.0.self_attn.q_proj";
  ExpectRefusal(CheckPlanOf(*PresetConfig("uint4_wo_128")),
                {q0, "uint4 per_group(g128", "asymmetric weights",
                 "GPTQ-Marlin reads symmetric uint4b8/uint8b128 only", "export_format awq"});
  Config asym = *PresetConfig("int4_wo_128");
  asym.global_quant_config.weight->specs[0].symmetric = false;
  ExpectRefusal(CheckPlanOf(asym), {q0, "asymmetric weights"});
  ExpectRefusal(CheckPlanOf(*PresetConfig("int8")), {q0, "activation quantizers", "weight-only"});
  ExpectRefusal(CheckPlanOf(*PresetConfig("fp8+kv_fp8")), {"kv_cache_quant_config"});
  ExpectRefusal(CheckPlanOf(*PresetConfig("mxfp4_weight_only")), {q0, "4- or 8-bit integer"});
  // Mixed group sizes: down_proj in groups of 64, the rest 128.
  Config mixed = *PresetConfig("int4_wo_128");
  mixed.layer_quant_config.emplace_back("*.down_proj",
                                        PresetConfig("int4_wo_64")->global_quant_config);
  ExpectRefusal(CheckPlanOf(mixed), {"model.layers.0.mlp.down_proj", "group_size 64 differs from",
                                     "model.layers.0.self_attn.q_proj's 128"});
  // lm_head quantized.
  Config head = *PresetConfig("int4_wo_128");
  head.exclude.clear();
  ExpectRefusal(CheckPlanOf(head), {"lm_head: weight int4", "lm_head in float"});
  // Per-tensor and fake-quantized exports.
  Config tensor = *PresetConfig("int8");  // int8 per-tensor symmetric weights, inputs dropped
  tensor.global_quant_config.input_tensors.reset();
  ExpectRefusal(CheckPlanOf(tensor), {q0, "int8 per_tensor", "per_group or per_channel"});
  ExportOptions fake;
  fake.real_quantized = false;
  ExpectRefusal(CheckPlanOf(*PresetConfig("int4_wo_128"), fake), {"fake_quantized"});
  // Act-order without static groups has no per-group parameters to export.
  Config dyn = *PresetConfig("int4_wo_128");
  GPTQConfig g;
  g.desc_act = true;
  g.static_groups = false;
  dyn.algo_config.emplace();
  dyn.algo_config->push_back(g);
  ExpectRefusal(CheckPlanOf(dyn), {"desc_act true with static_groups false", "static_groups true"});
}

// ---------------------------------------------------------------------------------------------
// Whole jobs on the fixture.

class LogObserver : public JobObserver {
 public:
  void OnLog(LogSeverity, absl::string_view m) override { logs.emplace_back(m); }
  void OnProgress(const ProgressEvent& e) override {
    if (e.layer_index >= 0) ++layer_events;
  }
  std::vector<std::string> logs;
  int layer_events = 0;
};

constexpr int kEvalWindows = 4;

QuantizeOptions Job(const std::string& preset, const std::string& out) {
  QuantizeOptions o;
  o.model_dir = kLlama;
  o.config = *PresetConfig(preset);
  o.output_dir = out;
  o.export_options.format = ExportFormat::kGptq;
  o.export_options.write_report = false;
  o.error_sample_sequences = 0;
  EvalOptions e;
  e.path = kData + "/kjv-eval.txt";
  e.max_windows = kEvalWindows;
  o.eval = e;
  return o;
}

double ExportPerplexity(const std::string& dir) {
  PerplexityOptions po;
  po.model_dir = dir;
  po.data_path = kData + "/kjv-eval.txt";
  po.max_windows = kEvalWindows;
  auto r = EvaluatePerplexity(po);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return 0;
  EXPECT_TRUE(r->quantized_model);
  return r->perplexity;
}

at::Tensor Load(const SafetensorsFile& f, const std::string& name) {
  auto t = LoadTensor(f, name);
  EXPECT_TRUE(t.ok()) << name << ": " << t.status();
  return t.ok() ? *t : at::Tensor();
}

const char* const kLinears[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                "mlp.down_proj"};

// int4_wo_128 (RTN) exported as GPTQ: the files and config a loader reads, the tensors against
// the job's fake-quantized weights (its fake_quantized Quark export) within the float16 bound
// with the logged count, and the perplexity of the exported directory equal to the job's.
TEST(GptqExport, Int4Wo128JobWritesGptqV1AndReloadsWithItsPerplexity) {
  const std::string out = OutDir("int4_gptq"), ref = OutDir("int4_fake");
  LogObserver obs;
  auto r = QuantizeModel(Job("int4_wo_128", out), &obs);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->perplexity_quantized);
  QuantizeOptions f = Job("int4_wo_128", ref);
  f.export_options.format = ExportFormat::kQuark;
  f.export_options.real_quantized = false;
  f.eval.reset();
  auto rf = QuantizeModel(f);
  ASSERT_TRUE(rf.ok()) << rf.status();

  std::ifstream cin(out + "/config.json");
  const auto cfg = nlohmann::json::parse(cin);
  const auto& q = cfg["quantization_config"];
  EXPECT_EQ(q["quant_method"], "gptq");
  EXPECT_EQ(q["bits"], 4);
  EXPECT_EQ(q["group_size"], 128);
  EXPECT_EQ(q["sym"], true);
  EXPECT_EQ(q["desc_act"], false);
  EXPECT_EQ(q["checkpoint_format"], "gptq");
  EXPECT_EQ(q["lm_head"], false);
  EXPECT_FALSE(q.contains("export"));
  EXPECT_EQ(cfg["torch_dtype"], "bfloat16");  // kept: GPTQ-Marlin runs bfloat16 activations
  EXPECT_EQ(cfg["model_type"], "llama");

  auto st = SafetensorsFile::Open(out + "/model.safetensors");
  ASSERT_TRUE(st.ok()) << st.status();
  auto fake = SafetensorsFile::Open(ref + "/model.safetensors");
  ASSERT_TRUE(fake.ok()) << fake.status();
  EXPECT_EQ((*st)->Find("lm_head.weight")->dtype, StDtype::kBF16);  // excluded: as is
  int64_t linears = 0, changed = 0, total = 0;
  double worst = 0;
  for (int layer = 0; layer < 8; ++layer) {
    for (const char* m : kLinears) {
      const std::string p = "model.layers." + std::to_string(layer) + "." + m;
      SCOPED_TRACE(p);
      EXPECT_EQ((*st)->Find(p + ".weight"), nullptr);
      const StTensorInfo* qw = (*st)->Find(p + ".qweight");
      const StTensorInfo* qz = (*st)->Find(p + ".qzeros");
      const StTensorInfo* sc = (*st)->Find(p + ".scales");
      const StTensorInfo* gi = (*st)->Find(p + ".g_idx");
      ASSERT_TRUE(qw && qz && sc && gi);
      const at::Tensor wf = Load(**fake, p + ".weight");  // [out, in] on the grid
      const int64_t out_f = wf.size(0), in_f = wf.size(1);
      EXPECT_EQ(qw->dtype, StDtype::kI32);
      EXPECT_EQ(qz->dtype, StDtype::kI32);
      EXPECT_EQ(sc->dtype, StDtype::kF16);
      EXPECT_EQ(gi->dtype, StDtype::kI32);
      EXPECT_EQ(qw->shape, (std::vector<int64_t>{in_f / 8, out_f}));
      EXPECT_EQ(qz->shape, (std::vector<int64_t>{in_f / 128, out_f / 8}));
      EXPECT_EQ(sc->shape, (std::vector<int64_t>{in_f / 128, out_f}));
      EXPECT_EQ(gi->shape, (std::vector<int64_t>{in_f}));
      gptq::LinearTensors t{Load(**st, p + ".qweight"), Load(**st, p + ".qzeros"),
                            Load(**st, p + ".scales"), Load(**st, p + ".g_idx")};
      EXPECT_TRUE(at::all(t.qzeros == static_cast<int32_t>(0x77777777)).item<bool>());
      EXPECT_TRUE(at::equal(t.g_idx, at::floor_divide(at::arange(in_f, at::kInt), 128)));
      auto deq = gptq::Dequantize(t, 4);
      ASSERT_TRUE(deq.ok()) << deq.status();
      const at::Tensor diff = (*deq - wf).abs();
      EXPECT_TRUE(at::all(diff <= wf.abs() * kFp16ScaleBound).item<bool>());
      worst = std::max(worst, (diff / wf.abs()).nan_to_num(0).max().item<double>());
      changed += (diff > 0).sum().item<int64_t>();
      total += wf.numel();
      ++linears;
    }
  }
  EXPECT_EQ(linears, 56);
  EXPECT_LE(worst, kFp16ScaleBound);
  const std::string expect = std::to_string(changed) + " of " + std::to_string(total);
  bool logged = false;
  for (const auto& l : obs.logs)
    logged |= l.find("export_format gptq: scales are stored as float16") != std::string::npos &&
              l.find(expect) != std::string::npos;
  EXPECT_TRUE(logged) << "no log line with '" << expect << "'";

  const double job = *r->perplexity_quantized, file = ExportPerplexity(out);
  EXPECT_NEAR(file, job, 1e-4 * job);
  std::printf("gptq export int4 g128 RTN: %lld of %lld weights (%.1f%%) change with float16 "
              "scales, max rel %.3g; ppl job %.6f, export %.6f (rel %.2g)\n",
              static_cast<long long>(changed), static_cast<long long>(total),
              100.0 * changed / total, worst, job, file, std::abs(file - job) / job);
}

// GPTQ with act-order and static groups (examples/algos/gptq.json) on the same preset: desc_act
// is written false with g_idx = i / 128, the GPTQ settings are reported, and the exported
// directory's perplexity equals the job's.
TEST(GptqExport, ActOrderStaticGroupsJobReloadsWithItsPerplexity) {
  const std::string out = OutDir("int4_gptq_algo");
  QuantizeOptions o = Job("int4_wo_128", out);
  auto algo = LoadQuantAlgoConfigFromFile(kExamples + "/algos/gptq.json");
  ASSERT_TRUE(algo.ok()) << algo.status();
  ASSERT_TRUE(std::get<GPTQConfig>(*algo).desc_act);
  ASSERT_TRUE(std::get<GPTQConfig>(*algo).static_groups);
  o.config.algo_config.emplace();
  o.config.algo_config->push_back(*algo);
  o.calibration.path = kData + "/kjv-calib.jsonl";
  o.calibration.num_samples = 8;
  o.calibration.seq_len = 128;
  auto r = QuantizeModel(o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->perplexity_quantized);
  std::ifstream cin(out + "/config.json");
  const auto q = nlohmann::json::parse(cin)["quantization_config"];
  EXPECT_EQ(q["desc_act"], false);
  EXPECT_EQ(q["static_groups"], true);
  EXPECT_EQ(q["true_sequential"], true);
  EXPECT_DOUBLE_EQ(q["damp_percent"].get<double>(), 0.01);
  auto st = SafetensorsFile::Open(out + "/model.safetensors");
  ASSERT_TRUE(st.ok());
  const at::Tensor g_idx = Load(**st, "model.layers.3.mlp.down_proj.g_idx");
  EXPECT_TRUE(at::equal(g_idx, at::floor_divide(at::arange(768, at::kInt), 128)));
  const double job = *r->perplexity_quantized, file = ExportPerplexity(out);
  EXPECT_NEAR(file, job, 1e-4 * job);
  std::printf("gptq export int4 g128 GPTQ (act-order, static groups): ppl job %.6f, export %.6f "
              "(rel %.2g)\n", job, file, std::abs(file - job) / job);
}

// The same reader path opens AutoAWQ exports (quant_method "awq", pipeline/exported_model.cc):
// uint4_wo_128 exported as AWQ re-measures to the job's perplexity.
TEST(GptqExport, AwqExportAlsoReloadsWithItsPerplexity) {
  const std::string out = OutDir("uint4_awq");
  QuantizeOptions o = Job("uint4_wo_128", out);
  o.export_options.format = ExportFormat::kAwq;
  auto r = QuantizeModel(o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->perplexity_quantized);
  const double job = *r->perplexity_quantized, file = ExportPerplexity(out);
  EXPECT_NEAR(file, job, 1e-4 * job);
  std::printf("awq export uint4 g128 RTN: ppl job %.6f, export %.6f (rel %.2g)\n", job, file,
              std::abs(file - job) / job);
}

// Asymmetric weights: the job fails before any decoder layer runs, naming layer and reason.
TEST(GptqExport, AsymmetricJobFailsBeforeTheLayersRun) {
  const std::string out = OutDir("refused");
  LogObserver obs;
  QuantizeOptions o = Job("uint4_wo_128", out);
  auto r = QuantizeModel(o, &obs);
  ASSERT_FALSE(r.ok());
  ExpectRefusal(r.status(), {"export_format gptq", "model.layers.0.self_attn.q_proj",
                             "asymmetric weights", "use export_format awq for uint4 asymmetric"});
  EXPECT_EQ(obs.layer_events, 0);
  EXPECT_FALSE(fs::exists(fs::path(out) / "model.safetensors"));
}

}  // namespace
}  // namespace quarry
