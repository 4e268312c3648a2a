#include "job_options.h"

#include "absl/strings/str_cat.h"
#include "convert/config_convert.h"
#include "quarry/status.h"

namespace quarry::worker {

namespace v1 = ::quarry::v1;

absl::StatusOr<QuantizeOptions> BuildQuantizeOptions(const v1::JobAssignment& a,
                                                     const LocalInputs& inputs,
                                                     const std::string& output_dir,
                                                     const std::string& device, int threads,
                                                     std::vector<std::string>* warnings) {
  QuantizeOptions o;
  o.model_dir = inputs.model_dir;
  if (!a.has_config()) return absl::InvalidArgumentError("assignment: no resolved config");
  auto config = convert::FromProto(a.config());
  if (!config.ok()) return Annotate(config.status(), "config");
  o.config = std::move(*config);

  const v1::JobSpec& spec = a.spec();
  const v1::CalibrationData& c = spec.calibration();
  o.calibration.path = inputs.calibration_path;
  switch (c.format()) {
    case v1::DATA_FORMAT_JSONL: o.calibration.format = CalibrationOptions::Format::kJsonl; break;
    case v1::DATA_FORMAT_TEXT: o.calibration.format = CalibrationOptions::Format::kText; break;
    case v1::DATA_FORMAT_TOKENS: o.calibration.format = CalibrationOptions::Format::kTokens; break;
    default: o.calibration.format = CalibrationOptions::Format::kAuto; break;
  }
  if (c.has_num_samples()) {
    if (c.num_samples() <= 0) return absl::InvalidArgumentError("calibration.num_samples: must be > 0");
    o.calibration.num_samples = c.num_samples();
  }
  if (c.has_seq_len()) {
    if (c.seq_len() <= 0) return absl::InvalidArgumentError("calibration.seq_len: must be > 0");
    o.calibration.seq_len = c.seq_len();
  }
  if (c.has_seed()) o.calibration.seed = c.seed();

  if (spec.has_eval()) {
    EvalOptions e;
    e.path = inputs.eval_path;
    if (spec.eval().has_seq_len()) e.seq_len = spec.eval().seq_len();
    if (spec.eval().has_max_windows()) e.max_windows = spec.eval().max_windows();
    e.float_baseline = !spec.eval().skip_float_baseline();
    if (e.path.empty()) return absl::InvalidArgumentError("eval: no evaluation data");
    o.eval = e;
  }

  const v1::ExportOptions& x = spec.export_options();
  o.export_options.real_quantized = x.weight_format() == v1::WEIGHT_FORMAT_REAL_QUANTIZED;
  o.export_options.pack_reorder = x.pack_method() == v1::PACK_METHOD_REORDER;
  switch (x.export_format()) {
    case v1::EXPORT_FORMAT_QUARK: o.export_options.format = ExportFormat::kQuark; break;
    case v1::EXPORT_FORMAT_AWQ: o.export_options.format = ExportFormat::kAwq; break;
    case v1::EXPORT_FORMAT_GPTQ: o.export_options.format = ExportFormat::kGptq; break;
    case v1::EXPORT_FORMAT_GGUF: o.export_options.format = ExportFormat::kGguf; break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "export_options.export_format: unknown value ", static_cast<int>(x.export_format())));
  }
  if (x.max_shard_bytes() > 0) o.export_options.max_shard_bytes = x.max_shard_bytes();
  o.export_options.write_report = !x.skip_report();
  if (!x.output_dtype().empty() && warnings != nullptr)
    warnings->push_back(absl::StrCat("export_options.output_dtype '", x.output_dtype(),
                                     "' is not supported by this worker's pipeline; ignored"));
  o.output_dir = output_dir;
  o.device = device;
  o.threads = threads;
  return o;
}

std::string DescribeOptions(const QuantizeOptions& o) {
  return absl::StrCat(
      "model ", o.model_dir, "; calibration ", o.calibration.path.empty() ? "(none)" : o.calibration.path,
      " (", o.calibration.num_samples, " samples x ", o.calibration.seq_len, " tokens, seed ",
      o.calibration.seed, "); eval ", o.eval ? o.eval->path : "(none)", "; export ",
      o.export_options.real_quantized ? "real" : "fake", "-quantized",
      o.export_options.format == ExportFormat::kAwq    ? " (AutoAWQ GEMM)"
      : o.export_options.format == ExportFormat::kGptq ? " (GPTQ checkpoint)"
      : o.export_options.format == ExportFormat::kGguf ? " (GGUF)"
                                                       : "",
      o.export_options.max_shard_bytes ? absl::StrCat(", shards of ", o.export_options.max_shard_bytes, " bytes") : "",
      "; device ", o.device, ", ", o.threads, " threads; output ", o.output_dir);
}

}  // namespace quarry::worker
