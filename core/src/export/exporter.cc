#include "export/exporter.h"

#include "absl/strings/str_cat.h"
#include "export/gguf_export.h"
#include "export/quark_export.h"
#include "quarry/quant_types.h"
#include "quarry/status.h"

namespace quarry {

const char* ExportFormatName(ExportFormat f) {
  switch (f) {
    case ExportFormat::kQuark: return "quark";
    case ExportFormat::kAwq: return "awq";
    case ExportFormat::kGptq: return "gptq";
    case ExportFormat::kGguf: return "gguf";
  }
  return "?";
}

std::optional<ExportFormat> ParseExportFormat(const std::string& name) {
  for (ExportFormat f : {ExportFormat::kQuark, ExportFormat::kAwq, ExportFormat::kGptq,
                         ExportFormat::kGguf})
    if (name == ExportFormatName(f)) return f;
  return std::nullopt;
}

namespace exporter {
namespace {

// Integer weight stages with a free float scale: the ones whose scale GGUF stores in float16.
int RoundScalesToHalf(std::optional<TensorSpecs>& specs) {
  if (!specs) return 0;
  int n = 0;
  for (QuantizationSpec& s : specs->specs) {
    if (!IsIntegerDtype(s.dtype)) continue;
    if (s.scale_type && *s.scale_type != ScaleType::kFloat && *s.scale_type != ScaleType::kFloat32)
      continue;  // pof2 / float16 / bfloat16 already fix the scale grid
    if (s.scale_format && *s.scale_format != "float32") continue;
    s.scale_type = ScaleType::kFloat16;
    // Q4_1 stores -scale * zero_point in float16 as well: make it exact (asymmetric specs).
    if (!s.symmetric.value_or(true)) s.exact_float16_min = true;
    ++n;
  }
  return n;
}

}  // namespace

std::vector<std::string> AdaptConfigToFormat(ExportFormat format, Config* config) {
  std::vector<std::string> lines;
  if (format != ExportFormat::kGguf) return lines;
  int n = RoundScalesToHalf(config->global_quant_config.weight);
  for (auto& [name, qc] : config->layer_type_quant_config) n += RoundScalesToHalf(qc.weight);
  for (auto& [name, qc] : config->layer_quant_config) n += RoundScalesToHalf(qc.weight);
  if (n > 0)
    lines.push_back(absl::StrCat(
        "export_format gguf: ", n, n == 1 ? " integer weight spec gets" : " integer weight specs get",
        " scale_type float16 (ggml stores block scales in float16; asymmetric ones also round "
        "each scale so that Q4_1's minimum -scale * zero_point is a float16: the job's weights "
        "are then exactly the GGUF's)"));
  return lines;
}

absl::StatusOr<std::unique_ptr<Exporter>> CreateExporter(const std::string& out_dir,
                                                         const ExportOptions& options,
                                                         model::CausalLM* source,
                                                         const Config& config,
                                                         const LayerPlan& plan) {
  if (options.format == ExportFormat::kGguf) {
    QUARRY_ASSIGN_OR_RETURN(auto e, GgufExporter::Create(out_dir, options, source, config, plan));
    return std::unique_ptr<Exporter>(std::move(e));
  }
  QUARRY_ASSIGN_OR_RETURN(auto e, QuarkExporter::Create(out_dir, options, source, config, plan));
  return std::unique_ptr<Exporter>(std::move(e));
}

}  // namespace exporter
}  // namespace quarry
