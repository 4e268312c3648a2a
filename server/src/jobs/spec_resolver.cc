#include "jobs/spec_resolver.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "convert/config_convert.h"
#include "quarry/config_json.h"
#include "quarry/config_validate.h"
#include "quarry/pipeline.h"
#include "quarry/presets.h"
#include "quarry/safetensors.h"
#include "quarry/status.h"

namespace quarry::server {
namespace fs = std::filesystem;
namespace {

bool InsideRoot(const fs::path& path, const fs::path& root) {
  auto r = root.begin(), p = path.begin();
  for (; r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // a trailing '/' in the root
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::string> CheckPathInRoots(const std::string& path, const std::string& what,
                                             const std::vector<std::string>& roots,
                                             bool want_directory) {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": must not be empty"));
  if (path.front() != '/')
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", path, "': must be an absolute path on the server"));
  for (absl::string_view part : absl::StrSplit(path, '/'))
    if (part == "..")
      return absl::PermissionDeniedError(
          absl::StrCat(what, " '", path, "': '..' is not allowed in input paths"));
  if (roots.empty())
    return absl::PermissionDeniedError(absl::StrCat(
        what, " '", path, "': this server accepts no input paths (no --model-root); upload the "
        "data instead"));
  const fs::path lexical = fs::path(path).lexically_normal();
  std::error_code ec;
  bool lexically_inside = false;
  for (const std::string& root : roots) {
    fs::path r = fs::path(root).lexically_normal();
    fs::path rc = fs::weakly_canonical(r, ec);
    if (InsideRoot(lexical, r) || (!ec && InsideRoot(lexical, rc))) lexically_inside = true;
  }
  if (!lexically_inside)
    return absl::PermissionDeniedError(absl::StrCat(
        what, " '", path, "' is outside the server's model roots (", absl::StrJoin(roots, ", "),
        ")"));
  fs::path canonical = fs::canonical(lexical, ec);
  if (ec)
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", path, "': ", ec.message()));
  bool inside = false;
  for (const std::string& root : roots) {
    fs::path rc = fs::canonical(fs::path(root), ec);
    if (!ec && InsideRoot(canonical, rc)) inside = true;
  }
  if (!inside)
    return absl::PermissionDeniedError(absl::StrCat(
        what, " '", path, "' resolves to '", canonical.string(),
        "' through a symbolic link, outside the server's model roots"));
  const bool is_dir = fs::is_directory(canonical, ec);
  if (want_directory && !is_dir)
    return absl::InvalidArgumentError(absl::StrCat(what, " '", path, "': not a directory"));
  if (!want_directory && (is_dir || !fs::is_regular_file(canonical, ec)))
    return absl::InvalidArgumentError(absl::StrCat(what, " '", path, "': not a regular file"));
  return canonical.string();
}

absl::StatusOr<uint64_t> EstimateJobMemory(const std::string& model_dir, int num_samples,
                                           int seq_len) {
  QUARRY_ASSIGN_OR_RETURN(auto model, SafetensorsModel::Open(model_dir));
  static const std::regex kLayer(R"(\.layers\.(\d+)\.)");
  std::map<int, uint64_t> layer_f32;
  uint64_t other = 0;
  for (const std::string& name : model->TensorNames()) {
    QUARRY_ASSIGN_OR_RETURN(const StTensorInfo* info, model->Info(name));
    std::smatch m;
    if (std::regex_search(name, m, kLayer)) {
      layer_f32[std::stoi(m[1].str())] += static_cast<uint64_t>(info->numel()) * 4;
    } else {
      other += info->nbytes();
    }
  }
  uint64_t largest = 0;
  for (const auto& [i, b] : layer_f32) largest = std::max(largest, b);
  uint64_t hidden = 4096;
  std::ifstream in(model_dir + "/config.json");
  if (in) {
    nlohmann::json cfg = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (cfg.is_object()) {
      auto it = cfg.find("hidden_size");
      if (it == cfg.end()) it = cfg.find("d_model");
      if (it != cfg.end() && it->is_number_unsigned()) hidden = it->get<uint64_t>();
    }
  }
  const uint64_t activations = static_cast<uint64_t>(std::max(num_samples, 1)) *
                               static_cast<uint64_t>(std::max(seq_len, 1)) * hidden * 4 * 4;
  return other + 3 * largest + activations + (256ull << 20);
}

absl::StatusOr<std::string> SpecResolver::ResolveUpload(const std::string& id, UploadKind kind,
                                                        const std::string& what,
                                                        const std::string* tenant) {
  if (absl::Status st = ValidateRelativePath(id, what); !st.ok()) return st;
  QUARRY_ASSIGN_OR_RETURN(auto upload, store_->GetUpload(id));
  if (!upload.has_value() || upload->kind != kind ||
      (tenant != nullptr && upload->tenant != *tenant))
    return absl::InvalidArgumentError(absl::StrCat(what, " '", id, "': no such upload"));
  if (!upload->complete)
    return absl::InvalidArgumentError(absl::StrCat(what, " '", id, "': the upload is incomplete"));
  return upload->path;
}

absl::StatusOr<std::string> SpecResolver::ResolveModel(const v1::ModelSource& model,
                                                       const std::string* tenant) {
  switch (model.source_case()) {
    case v1::ModelSource::kPath:
      return CheckPathInRoots(model.path(), "model.path", roots_, /*want_directory=*/true);
    case v1::ModelSource::kUploadedModelId:
      return ResolveUpload(model.uploaded_model_id(), UploadKind::kModel,
                           "model.uploaded_model_id", tenant);
    default:
      return absl::InvalidArgumentError("model: a path or an uploaded_model_id is required");
  }
}

absl::StatusOr<Config> SpecResolver::ResolveConfig(const v1::Config* config,
                                                   const std::string* config_json,
                                                   const std::string* preset) {
  if (config != nullptr) return convert::FromProto(*config);
  if (config_json != nullptr) {
    auto c = ConfigFromJson(*config_json);
    if (!c.ok()) return Annotate(c.status(), "config_json");
    return c;
  }
  if (preset != nullptr) {
    auto c = PresetConfig(*preset);
    if (!c.ok()) return Annotate(c.status(), "preset");
    return c;
  }
  return absl::InvalidArgumentError(
      "config_source: one of config, config_json or preset is required");
}

absl::StatusOr<NewJob> SpecResolver::Resolve(const v1::JobSpec& spec,
                                             const std::string& request_id,
                                             const std::string* tenant) {
  NewJob out;
  out.spec = spec;
  out.request_id = request_id;
  v1::JobAssignment& a = out.assignment;
  QUARRY_ASSIGN_OR_RETURN(std::string model_dir, ResolveModel(spec.model(), tenant));
  a.set_model_path(model_dir);

  const v1::CalibrationData& calib = spec.calibration();
  switch (calib.source_case()) {
    case v1::CalibrationData::kPath: {
      QUARRY_ASSIGN_OR_RETURN(std::string p, CheckPathInRoots(calib.path(), "calibration.path",
                                                              roots_, false));
      a.set_calibration_path(p);
      break;
    }
    case v1::CalibrationData::kUploadedDatasetId: {
      QUARRY_ASSIGN_OR_RETURN(std::string p,
                              ResolveUpload(calib.uploaded_dataset_id(), UploadKind::kDataset,
                                            "calibration.uploaded_dataset_id", tenant));
      a.set_calibration_path(p);
      break;
    }
    default:
      break;  // no calibration data: core decides whether the config needs any
  }
  if (calib.has_num_samples() && calib.num_samples() <= 0)
    return absl::InvalidArgumentError("calibration.num_samples: must be > 0");
  if (calib.has_seq_len() && calib.seq_len() <= 0)
    return absl::InvalidArgumentError("calibration.seq_len: must be > 0");

  if (spec.has_eval()) {
    const v1::EvalOptions& ev = spec.eval();
    if (ev.source_case() == v1::EvalOptions::kPath) {
      QUARRY_ASSIGN_OR_RETURN(std::string p,
                              CheckPathInRoots(ev.path(), "eval.path", roots_, false));
      a.set_eval_path(p);
    } else if (ev.source_case() == v1::EvalOptions::kUploadedDatasetId) {
      QUARRY_ASSIGN_OR_RETURN(std::string p,
                              ResolveUpload(ev.uploaded_dataset_id(), UploadKind::kDataset,
                                            "eval.uploaded_dataset_id", tenant));
      a.set_eval_path(p);
    } else {
      return absl::InvalidArgumentError("eval: a path or an uploaded_dataset_id is required");
    }
    if (ev.has_seq_len() && ev.seq_len() <= 0)
      return absl::InvalidArgumentError("eval.seq_len: must be > 0");
  }

  const std::string& dev = spec.device();
  if (!dev.empty() && dev != "cpu" && dev != "cuda" && dev != "hip")
    return absl::InvalidArgumentError(
        absl::StrCat("device '", dev, "': expected \"\" (any), cpu, cuda or hip"));
  out.device_kind = dev;

  Config config;
  {
    auto c = ResolveConfig(spec.has_config() ? &spec.config() : nullptr,
                           spec.config_source_case() == v1::JobSpec::kConfigJson
                               ? &spec.config_json()
                               : nullptr,
                           spec.config_source_case() == v1::JobSpec::kPreset ? &spec.preset()
                                                                              : nullptr);
    if (!c.ok()) return c.status();
    config = std::move(*c);
  }
  for (int i = 0; i < spec.extra_algo_config_size(); ++i) {
    QUARRY_ASSIGN_OR_RETURN(
        AlgoConfig algo,
        convert::FromProto(spec.extra_algo_config(i), absl::StrCat("extra_algo_config[", i, "]")));
    if (!config.algo_config) config.algo_config.emplace();
    config.algo_config->push_back(std::move(algo));
  }
  if (absl::Status st = CheckConfig(config); !st.ok())
    return absl::InvalidArgumentError(absl::StrCat("invalid config: ", st.message()));
  const int level = config.log_severity_level.value_or(1);
  if (level < 0 || level > 4)
    return absl::InvalidArgumentError("config.log_severity_level: must be 0 (DEBUG) .. 4 (CRITICAL)");
  a.set_log_severity_level(level);
  *a.mutable_config() = convert::ToProto(config);

  const CalibrationOptions defaults;  // core's defaults for what the spec leaves out
  auto mem = EstimateJobMemory(
      model_dir, calib.has_num_samples() ? calib.num_samples() : defaults.num_samples,
      calib.has_seq_len() ? calib.seq_len() : defaults.seq_len);
  if (!mem.ok()) return absl::InvalidArgumentError(absl::StrCat("model: ", mem.status().message()));
  out.memory_bytes = *mem;
  return out;
}

}  // namespace quarry::server
