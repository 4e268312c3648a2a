// GGUF tensor types, exact spec mapping, block codecs and llama.cpp names (gguf_format.h).
// Sources (read for facts): ggml/include/ggml.h (enum ggml_type), ggml/src/ggml-common.h
// (block_q4_0, block_q4_1, block_q8_0, block_mxfp4, kvalues_mxfp4), ggml/src/ggml-quants.c
// (dequantize_row_q4_0 / q4_1 / q8_0 / mxfp4), ggml/src/ggml-impl.h (GGML_E8M0_TO_FP32_HALF),
// include/llama.h (enum llama_ftype), gguf-py/gguf/constants.py (MODEL_TENSOR names),
// convert_hf_to_gguf.py (LlamaModel.permute, tensor_map).
#include "export/gguf_format.h"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cmath>
#include <cstring>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "quarry/quant_types.h"
#include "quarry/status.h"

namespace quarry::exporter::gguf {
namespace {

constexpr int64_t kBlock = 32;
// ggml-common.h kvalues_mxfp4: twice the OCP E2M1 values, indexed by the 4-bit code.
constexpr int8_t kMxfp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

uint16_t HalfBits(float f) { return c10::Half(f).x; }
float HalfValue(uint16_t bits) { return static_cast<float>(c10::Half(bits, c10::Half::from_bits())); }

// ggml-impl.h GGML_E8M0_TO_FP32_HALF: 2^(e - 128) as a float32 (e = 0, 1 give the subnormals
// 2^-128 and 2^-127; 255 is NaN in OCP E8M0 and never written).
float E8m0Half(uint8_t e) { return std::ldexp(1.0f, static_cast<int>(e) - 128); }

void PutU16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v & 0xFF));
  out->push_back(static_cast<char>(v >> 8));
}
uint16_t GetU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

// "int8 per_group(g32, axis -1) sym static" for messages.
std::string SpecText(const LayerPlanEntry& e) { return DescribeSpecs(e.config.weight); }

constexpr const char* kFits =
    "types that fit: int8 symmetric per_group g32 -> Q8_0, int4 symmetric per_group g32 -> Q4_0, "
    "uint4 asymmetric per_group g32 -> Q4_1, OCP MXFP4 (fp4, e8m0 scales, g32) -> MXFP4";

}  // namespace

const char* Name(GgmlType t) {
  switch (t) {
    case GgmlType::kF32: return "F32";
    case GgmlType::kF16: return "F16";
    case GgmlType::kQ4_0: return "Q4_0";
    case GgmlType::kQ4_1: return "Q4_1";
    case GgmlType::kQ8_0: return "Q8_0";
    case GgmlType::kBF16: return "BF16";
    case GgmlType::kMXFP4: return "MXFP4";
  }
  return "?";
}

std::optional<GgmlType> TypeFromId(uint32_t id) {
  for (GgmlType t : {GgmlType::kF32, GgmlType::kF16, GgmlType::kQ4_0, GgmlType::kQ4_1,
                     GgmlType::kQ8_0, GgmlType::kBF16, GgmlType::kMXFP4})
    if (static_cast<uint32_t>(t) == id) return t;
  return std::nullopt;
}

int64_t BlockElements(GgmlType t) {
  switch (t) {
    case GgmlType::kQ4_0: case GgmlType::kQ4_1: case GgmlType::kQ8_0: case GgmlType::kMXFP4:
      return kBlock;
    default: return 1;
  }
}

int64_t BlockBytes(GgmlType t) {
  switch (t) {
    case GgmlType::kF32: return 4;
    case GgmlType::kF16: case GgmlType::kBF16: return 2;
    case GgmlType::kQ4_0: return 2 + 16;
    case GgmlType::kQ4_1: return 2 + 2 + 16;
    case GgmlType::kQ8_0: return 2 + 32;
    case GgmlType::kMXFP4: return 1 + 16;
  }
  return 0;
}

int64_t RowBytes(GgmlType t, int64_t n) { return n / BlockElements(t) * BlockBytes(t); }

uint32_t FileTypeFor(GgmlType t) {
  switch (t) {  // include/llama.h enum llama_ftype
    case GgmlType::kF32: return 0;    // LLAMA_FTYPE_ALL_F32
    case GgmlType::kF16: return 1;    // LLAMA_FTYPE_MOSTLY_F16
    case GgmlType::kQ4_0: return 2;   // LLAMA_FTYPE_MOSTLY_Q4_0
    case GgmlType::kQ4_1: return 3;   // LLAMA_FTYPE_MOSTLY_Q4_1
    case GgmlType::kQ8_0: return 7;   // LLAMA_FTYPE_MOSTLY_Q8_0
    case GgmlType::kBF16: return 32;  // LLAMA_FTYPE_MOSTLY_BF16
    case GgmlType::kMXFP4: return 38; // LLAMA_FTYPE_MOSTLY_MXFP4_MOE (the only MXFP4 ftype)
  }
  return 0;
}

absl::StatusOr<GgmlType> ExactType(const LayerPlanEntry& e) {
  auto fail = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "export_format gguf: ", e.name, " (", e.matched_rule, ": weight ", SpecText(e), "): ", why,
        "; ", kFits, " (or exclude the layer to keep it in float)"));
  };
  if (!e.config.weight)
    return fail("no weight spec, but the layer quantizes activations; GGUF holds weights only");
  if (e.config.input_tensors || e.config.output_tensors)
    return fail(absl::StrCat(e.config.input_tensors ? "input_tensors" : "output_tensors",
                             " are quantized: GGUF stores weights only and llama.cpp quantizes "
                             "activations its own way, so the file could not reproduce this job"));
  if (e.config.bias) return fail("the bias is quantized: GGUF biases are float");
  if (e.config.weight->specs.size() != 1)
    return fail("two-stage weight specs have no ggml type");
  const QuantizationSpec& s = e.config.weight->front();
  if (s.is_dynamic.value_or(false)) return fail("dynamic weight quantization has no stored scales");
  const bool per_group = s.qscheme == QSchemeType::kPerGroup;
  const int axis = s.ch_axis.value_or(-1);
  if (!per_group)
    return fail(absl::StrCat(s.qscheme ? Name(*s.qscheme) : "no qscheme",
                             ": ggml's quantized types are blocks of 32 along the row; there is no "
                             "per-channel or per-tensor type"));
  if (s.group_size.value_or(0) != kBlock)
    return fail(absl::StrCat("group_size ", s.group_size.value_or(0),
                             ": ggml's blocks hold 32 weights (Q8_0/Q4_0/Q4_1/MXFP4)"));
  if (axis != 1 && axis != -1)
    return fail(absl::StrCat("ch_axis ", axis, ": ggml's blocks run along the input dimension "
                             "(ch_axis -1 / 1)"));
  if (e.weight_shape.size() != 2 || e.weight_shape[1] % kBlock != 0)
    return fail("the input dimension is not a multiple of 32");
  const bool sym = s.symmetric.value_or(true);
  const bool float_scale = !s.scale_format || *s.scale_format == "float32";
  switch (s.dtype) {
    case Dtype::kInt8:
      if (!sym) return fail("asymmetric int8: Q8_0 has no zero point");
      if (!float_scale) return fail(absl::StrCat("scale_format ", *s.scale_format, " for int8"));
      return GgmlType::kQ8_0;
    case Dtype::kInt4:
      if (!sym) return fail("asymmetric int4: use uint4 asymmetric (Q4_1) or int4 symmetric (Q4_0)");
      if (!float_scale) return fail(absl::StrCat("scale_format ", *s.scale_format, " for int4"));
      return GgmlType::kQ4_0;
    case Dtype::kUint4:
      if (sym) return fail("symmetric uint4 has no ggml type (its zero is 8 only as int4 symmetric -> Q4_0)");
      if (!float_scale) return fail(absl::StrCat("scale_format ", *s.scale_format, " for uint4"));
      if (s.zero_point_type && *s.zero_point_type != ZeroPointType::kInt32)
        return fail("float zero points: Q4_1 stores the minimum -scale * zero_point, use int32 "
                    "zero points");
      return GgmlType::kQ4_1;
    case Dtype::kFp4:
      if (s.scale_format.value_or("") != "e8m0")
        return fail("fp4 without e8m0 scales (only OCP MXFP4 has a ggml type)");
      return GgmlType::kMXFP4;
    default:
      return fail(absl::StrCat(Name(s.dtype), " has no ggml type"));
  }
}

absl::StatusOr<std::string> Architecture(const ModelConfig& c) {
  switch (c.family) {
    case ModelFamily::kLlama: return std::string("llama");  // llama and mistral (convert_hf_to_gguf)
    case ModelFamily::kQwen2: return std::string("qwen2");
    case ModelFamily::kQwen3: return std::string("qwen3");
    case ModelFamily::kOpt:
      return absl::UnimplementedError(
          "export_format gguf: llama.cpp has no OPT architecture (its src/llama-arch.cpp lists "
          "none, and convert_hf_to_gguf.py converts no OPTForCausalLM); export OPT models as "
          "quark, awq or gptq");
  }
  return absl::InternalError("unknown model family");
}

namespace {

// (HF suffix within a decoder layer, llama.cpp name within blk.N), gguf-py MODEL_TENSOR.
const std::vector<std::pair<std::string, std::string>>& LayerNames() {
  static const auto* names = new std::vector<std::pair<std::string, std::string>>{
      {"input_layernorm", "attn_norm"},
      {"self_attn.q_proj", "attn_q"},
      {"self_attn.k_proj", "attn_k"},
      {"self_attn.v_proj", "attn_v"},
      {"self_attn.o_proj", "attn_output"},
      {"self_attn.q_norm", "attn_q_norm"},
      {"self_attn.k_norm", "attn_k_norm"},
      {"post_attention_layernorm", "ffn_norm"},
      {"mlp.gate_proj", "ffn_gate"},
      {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"},
  };
  return *names;
}

}  // namespace

std::optional<std::string> GgufName(const std::string& hf) {
  if (hf == "model.embed_tokens.weight") return std::string("token_embd.weight");
  if (hf == "model.norm.weight") return std::string("output_norm.weight");
  if (hf == "lm_head.weight") return std::string("output.weight");
  constexpr absl::string_view kPrefix = "model.layers.";
  if (!absl::StartsWith(hf, kPrefix)) return std::nullopt;
  const std::string rest = hf.substr(kPrefix.size());
  const size_t dot = rest.find('.');
  int layer = 0;
  if (dot == std::string::npos || !absl::SimpleAtoi(rest.substr(0, dot), &layer))
    return std::nullopt;
  const std::string tail = rest.substr(dot + 1);  // "self_attn.q_proj.weight"
  for (const auto& [h, g] : LayerNames()) {
    for (const char* kind : {".weight", ".bias"}) {
      if (tail == h + kind) return absl::StrCat("blk.", layer, ".", g, kind);
    }
  }
  return std::nullopt;
}

std::optional<std::string> HfName(const std::string& gg) {
  if (gg == "token_embd.weight") return std::string("model.embed_tokens.weight");
  if (gg == "output_norm.weight") return std::string("model.norm.weight");
  if (gg == "output.weight") return std::string("lm_head.weight");
  if (!absl::StartsWith(gg, "blk.")) return std::nullopt;
  const std::string rest = gg.substr(4);
  const size_t dot = rest.find('.');
  int layer = 0;
  if (dot == std::string::npos || !absl::SimpleAtoi(rest.substr(0, dot), &layer))
    return std::nullopt;
  const std::string tail = rest.substr(dot + 1);
  for (const auto& [h, g] : LayerNames()) {
    for (const char* kind : {".weight", ".bias"}) {
      if (tail == g + kind) return absl::StrCat("model.layers.", layer, ".", h, kind);
    }
  }
  return std::nullopt;
}

at::Tensor PermuteRows(const at::Tensor& w, int64_t n_head) {
  std::vector<int64_t> shape(w.sizes().begin(), w.sizes().end());
  std::vector<int64_t> v = {n_head, 2, shape[0] / n_head / 2};
  v.insert(v.end(), shape.begin() + 1, shape.end());
  return w.reshape(v).transpose(1, 2).reshape(shape).contiguous();
}

at::Tensor UnpermuteRows(const at::Tensor& w, int64_t n_head) {
  std::vector<int64_t> shape(w.sizes().begin(), w.sizes().end());
  std::vector<int64_t> v = {n_head, shape[0] / n_head / 2, 2};
  v.insert(v.end(), shape.begin() + 1, shape.end());
  return w.reshape(v).transpose(1, 2).reshape(shape).contiguous();
}

void EncodeStats::Add(const EncodeStats& o) {
  weights += o.weights;
  changed += o.changed;
  max_abs_change = std::max(max_abs_change, o.max_abs_change);
}

absl::StatusOr<std::string> EncodeBlocks(GgmlType t, const std::string& name, const at::Tensor& w_in,
                                         const at::Tensor& scale_in, const at::Tensor& zp_in,
                                         EncodeStats* stats) {
  if (BlockElements(t) != kBlock)
    return absl::InternalError(absl::StrCat(name, ": ", Name(t), " is not a block type"));
  if (w_in.dim() != 2 || w_in.size(1) % kBlock != 0)
    return absl::InvalidArgumentError(absl::StrCat(name, ": weight ", c10::str(w_in.sizes()),
                                                   " is not [rows, 32k]"));
  const at::Tensor w = w_in.to(at::kFloat).contiguous();
  const int64_t rows = w.size(0), cols = w.size(1), nb = cols / kBlock;
  const bool e8m0 = t == GgmlType::kMXFP4;
  at::Tensor scale;
  if (e8m0 && scale_in.scalar_type() != at::kByte) {
    // Float power-of-two scales (the quantizer's params) -> their E8M0 code 127 + log2(s).
    at::Tensor s = scale_in.to(at::kFloat).reshape({rows, nb}).contiguous();
    scale = at::empty({rows, nb}, at::kByte);
    const float* sp = s.data_ptr<float>();
    uint8_t* ep = scale.data_ptr<uint8_t>();
    for (int64_t k = 0; k < rows * nb; ++k) {
      int ex = 0;
      const float m = std::frexp(sp[k], &ex);  // s = m * 2^ex, m in [0.5, 1)
      if (!(sp[k] > 0) || m != 0.5f || ex - 1 + 127 < 0 || ex - 1 + 127 > 254)
        return absl::InternalError(absl::StrCat(name, ": MX scale ", sp[k], " (row ", k / nb,
                                                ", block ", k % nb, ") is not an E8M0 power of two"));
      ep[k] = static_cast<uint8_t>(ex - 1 + 127);
    }
  } else {
    scale = (e8m0 ? scale_in.to(at::kByte) : scale_in.to(at::kFloat)).reshape({rows, nb}).contiguous();
  }
  at::Tensor zp;
  if (t == GgmlType::kQ4_1) {
    if (!zp_in.defined())
      return absl::InternalError(absl::StrCat(name, ": Q4_1 needs the zero points"));
    zp = zp_in.to(at::kFloat).reshape({rows, nb}).contiguous();
  }
  const float* wp = w.data_ptr<float>();
  std::string out;
  out.reserve(static_cast<size_t>(rows * nb * BlockBytes(t)));
  EncodeStats st;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      const float* x = wp + r * cols + b * kBlock;
      int codes[kBlock];
      float vals[kBlock];  // what llama.cpp will dequantize
      auto bad = [&](int j, const char* why) {
        return absl::InternalError(absl::StrCat(
            name, ": row ", r, " column ", b * kBlock + j, " (value ", x[j], "): ", why,
            " for ", Name(t), "; the weight is not on its quantizer's grid"));
      };
      if (e8m0) {
        const uint8_t e = scale.data_ptr<uint8_t>()[r * nb + b];
        if (e == 0xFF) return bad(0, "NaN E8M0 scale");
        const float half = E8m0Half(e);
        out.push_back(static_cast<char>(e));
        for (int j = 0; j < kBlock; ++j) {
          const float v = x[j] / half;  // exact: a power of two
          int code = -1;
          for (int k = 0; k < 16; ++k)
            if (static_cast<float>(kMxfp4Values[k]) == v) { code = k; break; }  // +-0 -> code 0
          if (code < 0) return bad(j, "not an E2M1 value times the block scale");
          codes[j] = code;
          vals[j] = static_cast<float>(kMxfp4Values[code]) * half;
        }
      } else {
        const float s = scale.data_ptr<float>()[r * nb + b];
        if (!(std::abs(s) <= 65504.0f))
          return bad(0, absl::StrCat("scale ", s, " overflows float16").c_str());
        const uint16_t dbits = HalfBits(s);
        const float d = HalfValue(dbits);
        PutU16(&out, dbits);
        float z = 0;
        if (t == GgmlType::kQ4_1) {
          z = zp.data_ptr<float>()[r * nb + b];
          const uint16_t mbits = HalfBits(-s * z);
          PutU16(&out, mbits);
          const float m = HalfValue(mbits);
          for (int j = 0; j < kBlock; ++j) {
            const float qf = s != 0 ? x[j] / s : 0.0f;
            const float q = std::nearbyint(qf) + z;
            if (std::abs(qf + z - q) > 1e-3f) return bad(j, "not an integer multiple of the scale");
            if (q < 0 || q > 15) return bad(j, "code outside 0..15");
            codes[j] = static_cast<int>(q);
            vals[j] = static_cast<float>(codes[j]) * d + m;
          }
        } else {
          const int lo = t == GgmlType::kQ8_0 ? -128 : -8, hi = t == GgmlType::kQ8_0 ? 127 : 7;
          for (int j = 0; j < kBlock; ++j) {
            const float qf = s != 0 ? x[j] / s : 0.0f;
            const float q = std::nearbyint(qf);
            if (std::abs(qf - q) > 1e-3f) return bad(j, "not an integer multiple of the scale");
            if (q < lo || q > hi) return bad(j, "code out of range");
            codes[j] = static_cast<int>(q);
            vals[j] = static_cast<float>(codes[j]) * d;
          }
        }
      }
      if (t == GgmlType::kQ8_0) {
        for (int j = 0; j < kBlock; ++j) out.push_back(static_cast<char>(static_cast<int8_t>(codes[j])));
      } else {
        const int offset = t == GgmlType::kQ4_0 ? 8 : 0;
        for (int j = 0; j < 16; ++j) {
          const int lo = codes[j] + offset, hi = codes[j + 16] + offset;
          out.push_back(static_cast<char>((lo & 0x0F) | ((hi & 0x0F) << 4)));
        }
      }
      for (int j = 0; j < kBlock; ++j) {
        ++st.weights;
        if (vals[j] != x[j]) {
          ++st.changed;
          st.max_abs_change = std::max(st.max_abs_change, static_cast<double>(std::abs(vals[j] - x[j])));
        }
      }
    }
  }
  if (stats != nullptr) stats->Add(st);
  return out;
}

std::string EncodeFloat(GgmlType t, const at::Tensor& x) {
  at::Tensor c;
  switch (t) {
    case GgmlType::kF16: c = x.to(at::kHalf); break;
    case GgmlType::kBF16: c = x.to(at::kBFloat16); break;
    default: c = x.to(at::kFloat); break;
  }
  c = c.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
}

absl::StatusOr<at::Tensor> Dequantize(GgmlType t, const uint8_t* data, size_t bytes, int64_t rows,
                                      int64_t cols) {
  if (cols % BlockElements(t) != 0 ||
      bytes != static_cast<size_t>(rows * RowBytes(t, cols)))
    return absl::InvalidArgumentError(absl::StrCat(
        Name(t), " tensor of ", rows, " x ", cols, " needs ",
        cols % BlockElements(t) ? std::string("a multiple of 32 columns")
                                : absl::StrCat(rows * RowBytes(t, cols), " bytes"),
        ", got ", bytes, " bytes"));
  at::Tensor out = at::empty({rows, cols}, at::kFloat);
  float* y = out.data_ptr<float>();
  const int64_t n = rows * cols;
  switch (t) {
    case GgmlType::kF32:
      std::memcpy(y, data, bytes);
      return out;
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; ++i) y[i] = HalfValue(GetU16(data + 2 * i));
      return out;
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint32_t u = static_cast<uint32_t>(GetU16(data + 2 * i)) << 16;
        std::memcpy(&y[i], &u, 4);
      }
      return out;
    default: break;
  }
  const int64_t blocks = n / kBlock;
  const int64_t bb = BlockBytes(t);
  for (int64_t k = 0; k < blocks; ++k) {
    const uint8_t* p = data + k * bb;
    float* o = y + k * kBlock;
    switch (t) {
      case GgmlType::kQ8_0: {
        const float d = HalfValue(GetU16(p));
        for (int j = 0; j < kBlock; ++j) o[j] = static_cast<float>(static_cast<int8_t>(p[2 + j])) * d;
        break;
      }
      case GgmlType::kQ4_0: {
        const float d = HalfValue(GetU16(p));
        for (int j = 0; j < 16; ++j) {
          o[j] = static_cast<float>((p[2 + j] & 0x0F) - 8) * d;
          o[j + 16] = static_cast<float>((p[2 + j] >> 4) - 8) * d;
        }
        break;
      }
      case GgmlType::kQ4_1: {
        const float d = HalfValue(GetU16(p)), m = HalfValue(GetU16(p + 2));
        for (int j = 0; j < 16; ++j) {
          o[j] = static_cast<float>(p[4 + j] & 0x0F) * d + m;
          o[j + 16] = static_cast<float>(p[4 + j] >> 4) * d + m;
        }
        break;
      }
      case GgmlType::kMXFP4: {
        const float d = E8m0Half(p[0]);
        for (int j = 0; j < 16; ++j) {
          o[j] = static_cast<float>(kMxfp4Values[p[1 + j] & 0x0F]) * d;
          o[j + 16] = static_cast<float>(kMxfp4Values[p[1 + j] >> 4]) * d;
        }
        break;
      }
      default: return absl::InternalError("unreachable");
    }
  }
  return out;
}

}  // namespace quarry::exporter::gguf
