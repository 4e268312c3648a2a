#include "pipeline/layer_checkpoint.h"

#include <ATen/Version.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "quarry/status.h"

#ifndef QUARRY_VERSION
#define QUARRY_VERSION "unknown"
#endif

namespace quarry::pipeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  void Update(const void* p, size_t n) { EVP_DigestUpdate(ctx_, p, n); }
  void Update(const std::string& s) {
    Update(s.data(), s.size());
    Update("\n", 1);
  }
  std::string Hex() {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, d, &n);
    std::string out;
    for (unsigned int i = 0; i < n; ++i) absl::StrAppendFormat(&out, "%02x", d[i]);
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

absl::StatusOr<std::string> FileSha256(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return absl::NotFoundError(absl::StrCat("cannot read '", path, "'"));
  Sha256 h;
  std::vector<char> buf(1 << 20);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) h.Update(buf.data(), n);
  const bool err = std::ferror(f) != 0;
  std::fclose(f);
  if (err) return absl::DataLossError(absl::StrCat("error reading '", path, "'"));
  return h.Hex();
}

std::string Stem(const char* kind, int i) { return absl::StrFormat("%s-%05d", kind, i); }
std::string Name(const char* kind, int i, const char* ext) {
  return absl::StrCat(Stem(kind, i), ".", ext);
}

// Optional doubles; JSON has no inf/nan (an exact weight gives SQNR +inf), so those are strings.
void PutOpt(json& j, const char* key, const std::optional<double>& v) {
  if (!v) return;
  if (std::isfinite(*v)) j[key] = *v;
  else j[key] = std::isnan(*v) ? "nan" : (*v > 0 ? "inf" : "-inf");
}
void GetOpt(const json& j, const char* key, std::optional<double>* v) {
  if (!j.contains(key)) return;
  const json& x = j.at(key);
  if (x.is_string()) {
    const std::string s = x.get<std::string>();
    *v = s == "inf" ? INFINITY : s == "-inf" ? -INFINITY : NAN;
  } else {
    *v = x.get<double>();
  }
}

json ToJson(const LayerReportPart& p) {
  json layer = {{"index", p.layer.index},
                {"seconds", p.layer.seconds},
                {"stage_seconds", p.layer.stage_seconds},
                {"rss_bytes", p.layer.rss_bytes},
                {"rss_anon_bytes", p.layer.rss_anon_bytes},
                {"rss_file_bytes", p.layer.rss_file_bytes}};
  PutOpt(layer, "hidden_rel_mse", p.layer.hidden_rel_mse);
  json linears = json::array();
  for (const auto& l : p.linears) {
    json j = {{"name", l.name},           {"rule", l.rule},
              {"excluded", l.excluded},   {"weight_spec", l.weight_spec},
              {"input_spec", l.input_spec}, {"output_spec", l.output_spec},
              {"method", l.method}};
    PutOpt(j, "weight_rel_mse", l.weight_rel_mse);
    PutOpt(j, "weight_sqnr_db", l.weight_sqnr_db);
    PutOpt(j, "output_rel_mse", l.output_rel_mse);
    PutOpt(j, "output_sqnr_db", l.output_sqnr_db);
    linears.push_back(std::move(j));
  }
  json records = json::array();
  for (const auto& r : p.algorithm_records) {
    json j = {{"algorithm", r.algorithm}, {"layer", r.layer}, {"entry_index", r.entry_index},
              {"target", r.target},       {"choice", r.choice}};
    PutOpt(j, "value", r.value);
    PutOpt(j, "loss_before", r.loss_before);
    PutOpt(j, "loss_after", r.loss_after);
    PutOpt(j, "scale_min", r.scale_min);
    PutOpt(j, "scale_max", r.scale_max);
    records.push_back(std::move(j));
  }
  return {{"layer", layer}, {"linears", linears}, {"algorithm_records", records},
          {"warnings", p.warnings}};
}

LayerReportPart FromJson(const json& j) {
  LayerReportPart p;
  const json& layer = j.at("layer");
  p.layer.index = layer.at("index").get<int>();
  p.layer.seconds = layer.at("seconds").get<double>();
  p.layer.stage_seconds = layer.at("stage_seconds").get<std::map<std::string, double>>();
  p.layer.rss_bytes = layer.at("rss_bytes").get<double>();
  p.layer.rss_anon_bytes = layer.at("rss_anon_bytes").get<double>();
  p.layer.rss_file_bytes = layer.at("rss_file_bytes").get<double>();
  GetOpt(layer, "hidden_rel_mse", &p.layer.hidden_rel_mse);
  for (const json& l : j.at("linears")) {
    report::LinearReport r;
    r.name = l.at("name").get<std::string>();
    r.rule = l.at("rule").get<std::string>();
    r.excluded = l.at("excluded").get<bool>();
    r.weight_spec = l.at("weight_spec").get<std::string>();
    r.input_spec = l.at("input_spec").get<std::string>();
    r.output_spec = l.at("output_spec").get<std::string>();
    r.method = l.at("method").get<std::string>();
    GetOpt(l, "weight_rel_mse", &r.weight_rel_mse);
    GetOpt(l, "weight_sqnr_db", &r.weight_sqnr_db);
    GetOpt(l, "output_rel_mse", &r.output_rel_mse);
    GetOpt(l, "output_sqnr_db", &r.output_sqnr_db);
    p.linears.push_back(std::move(r));
  }
  for (const json& a : j.at("algorithm_records")) {
    report::AlgorithmRecord r;
    r.algorithm = a.at("algorithm").get<std::string>();
    r.layer = a.at("layer").get<int>();
    r.entry_index = a.at("entry_index").get<int>();
    r.target = a.at("target").get<std::string>();
    r.choice = a.at("choice").get<std::string>();
    GetOpt(a, "value", &r.value);
    GetOpt(a, "loss_before", &r.loss_before);
    GetOpt(a, "loss_after", &r.loss_after);
    GetOpt(a, "scale_min", &r.scale_min);
    GetOpt(a, "scale_max", &r.scale_max);
    p.algorithm_records.push_back(std::move(r));
  }
  p.warnings = j.at("warnings").get<std::vector<std::string>>();
  return p;
}

}  // namespace

absl::StatusOr<std::string> JobFingerprint(const QuantizeOptions& o,
                                           const std::string& adapted_config_json, int threads) {
  Sha256 h;
  h.Update("quarry layer checkpoints v1");
  h.Update(QUARRY_VERSION);
  h.Update(adapted_config_json);
  std::vector<std::string> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(o.model_dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec)) files.push_back(fs::relative(it->path(), o.model_dir).string());
  if (ec)
    return absl::InvalidArgumentError(
        absl::StrCat("model directory '", o.model_dir, "': ", ec.message()));
  std::sort(files.begin(), files.end());
  for (const std::string& f : files) {
    QUARRY_ASSIGN_OR_RETURN(std::string sha, FileSha256(o.model_dir + "/" + f));
    h.Update(absl::StrCat("model ", f, " ", sha));
  }
  const CalibrationOptions& c = o.calibration;
  std::string calib_sha = "-";
  if (!c.path.empty()) {
    QUARRY_ASSIGN_OR_RETURN(calib_sha, FileSha256(c.path));
  }
  h.Update(absl::StrCat("calibration ", calib_sha, " ", static_cast<int>(c.format), " ",
                        c.num_samples, " ", c.seq_len, " ", c.seed));
  if (o.eval) {
    QUARRY_ASSIGN_OR_RETURN(std::string eval_sha, FileSha256(o.eval->path));
    h.Update(absl::StrCat("eval ", eval_sha, " ", o.eval->seq_len, " ", o.eval->max_windows, " ",
                          o.eval->float_baseline));
  }
  const ExportOptions& e = o.export_options;
  h.Update(absl::StrCat("export ", ExportFormatName(e.format), " ", e.real_quantized, " ",
                        e.pack_reorder, " ", e.max_shard_bytes));
  h.Update(absl::StrCat("run ", o.device, " ", threads, " ", o.error_sample_sequences));
  // LibTorch's version, BLAS and the CPU capability its kernels dispatch to.
  h.Update(at::show_config());
  return h.Hex();
}

absl::StatusOr<std::unique_ptr<SafetensorsWriter>> CheckpointWriter::BeginLayer(int i) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec)
    return absl::InternalError(absl::StrCat("checkpoint dir '", dir_, "': ", ec.message()));
  SafetensorsWriter::Options wo;
  wo.basename = Stem("layer", i);
  wo.max_shard_bytes = 0;
  wo.insert_header_min_bytes = ~uint64_t{0};  // a plain copy: these files are read back only
  return SafetensorsWriter::Create(dir_, wo);
}

absl::StatusOr<std::vector<std::string>> CheckpointWriter::CommitLayer(
    int i, int num_layers, std::unique_ptr<SafetensorsWriter> journal,
    const std::vector<NamedStream>& streams, const LayerReportPart& report) {
  QUARRY_RETURN_IF_ERROR(journal->Finish().status());
  journal.reset();
  SafetensorsWriter::Options wo;
  wo.basename = Stem("streams", i);
  wo.max_shard_bytes = 0;
  wo.insert_header_min_bytes = ~uint64_t{0};
  QUARRY_ASSIGN_OR_RETURN(auto sw, SafetensorsWriter::Create(dir_, wo));
  for (const NamedStream& s : streams) {
    for (size_t b = 0; b < s.batches->hidden.size(); ++b) {
      at::Tensor t = s.batches->hidden[b].contiguous();
      if (t.scalar_type() != at::kFloat)
        return absl::InternalError(absl::StrCat("stream ", s.name, " is not float32"));
      std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
      QUARRY_RETURN_IF_ERROR(sw->Add(
          absl::StrCat(s.name, ".", b), StDtype::kF32, shape,
          absl::MakeConstSpan(static_cast<const uint8_t*>(t.data_ptr()), t.nbytes())));
    }
  }
  QUARRY_RETURN_IF_ERROR(sw->Finish().status());
  const std::string journal_name = Name("layer", i, "safetensors");
  const std::string streams_name = Name("streams", i, "safetensors");
  QUARRY_ASSIGN_OR_RETURN(std::string journal_sha, FileSha256(dir_ + "/" + journal_name));
  QUARRY_ASSIGN_OR_RETURN(std::string streams_sha, FileSha256(dir_ + "/" + streams_name));
  json commit = {{"fingerprint", fingerprint_},
                 {"layer", i},
                 {"num_layers", num_layers},
                 {"journal", {{"file", journal_name}, {"sha256", journal_sha}}},
                 {"streams", {{"file", streams_name}, {"sha256", streams_sha}}},
                 {"report", ToJson(report)}};
  const std::string commit_name = Name("layer", i, "json");
  const std::string tmp = dir_ + "/" + commit_name + ".partial";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << commit.dump() << "\n";
    if (!out) return absl::InternalError(absl::StrCat("cannot write '", tmp, "'"));
  }
  std::error_code ec;
  fs::rename(tmp, dir_ + "/" + commit_name, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename '", tmp, "': ", ec.message()));
  // The newest commit makes the previous layer's activations useless.
  if (i > 0) fs::remove(dir_ + "/" + Name("streams", i - 1, "safetensors"), ec);
  return std::vector<std::string>{journal_name, streams_name, commit_name};
}

RestoredCheckpoints ReadCheckpoints(const std::string& dir, const std::string& fingerprint,
                                    int num_layers, std::string* why) {
  RestoredCheckpoints r;
  std::string reason;
  std::vector<std::unique_ptr<SafetensorsFile>> streams;  // per layer read; null when missing
  for (int i = 0; i < num_layers; ++i) {
    const std::string commit_path = dir + "/" + Name("layer", i, "json");
    std::ifstream in(commit_path);
    if (!in) {
      if (i == 0) reason = "no checkpoint of layer 0";
      break;
    }
    std::stringstream text;
    text << in.rdbuf();
    json commit = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
    auto bad = [&](const std::string& what) {
      reason = absl::StrCat("the checkpoint of layer ", i, " ", what);
    };
    if (commit.is_discarded() || !commit.is_object() || !commit.contains("fingerprint")) {
      bad("is not a commit record");
      break;
    }
    if (commit.value("fingerprint", "") != fingerprint) {
      bad("is of other job inputs (model files, config, data, options, thread count or Quarry "
          "version differ)");
      break;
    }
    try {
      if (commit.at("layer").get<int>() != i || commit.at("num_layers").get<int>() != num_layers) {
        bad("names another layer");
        break;
      }
      const std::string journal_path = dir + "/" + commit.at("journal").at("file").get<std::string>();
      const std::string streams_path = dir + "/" + commit.at("streams").at("file").get<std::string>();
      auto journal_sha = FileSha256(journal_path);
      if (!journal_sha.ok() || *journal_sha != commit.at("journal").at("sha256").get<std::string>()) {
        bad("has a missing or corrupt journal");
        break;
      }
      auto journal = SafetensorsFile::Open(journal_path);
      if (!journal.ok()) {
        bad(absl::StrCat("has an unreadable journal: ", journal.status().message()));
        break;
      }
      LayerReportPart part = FromJson(commit.at("report"));
      // Only the newest layer's activations are kept (older ones are dropped as newer layers
      // commit), so a missing streams file is not an error here.
      std::unique_ptr<SafetensorsFile> s;
      auto streams_sha = FileSha256(streams_path);
      if (streams_sha.ok() && *streams_sha == commit.at("streams").at("sha256").get<std::string>()) {
        auto opened = SafetensorsFile::Open(streams_path);
        if (opened.ok()) s = std::move(*opened);
      }
      r.journals.push_back(std::move(*journal));
      r.reports.push_back(std::move(part));
      streams.push_back(std::move(s));
    } catch (const std::exception& e) {
      bad(absl::StrCat("is malformed: ", e.what()));
      break;
    }
  }
  // The resume point: after the last layer whose activations are there.
  size_t k = streams.size();
  while (k > 0 && streams[k - 1] == nullptr) --k;
  if (k < streams.size() && reason.empty())
    reason = absl::StrCat("the activations after layer ", streams.size() - 1, " are missing");
  r.journals.resize(k);
  r.reports.resize(k);
  r.layers_done = static_cast<int>(k);
  if (k > 0) r.streams = std::move(streams[k - 1]);
  if (why != nullptr) *why = reason;
  return r;
}

absl::Status RestoreStream(const SafetensorsFile& file, const std::string& name, Batches* b) {
  for (size_t i = 0; i < b->hidden.size(); ++i) {
    const std::string tname = absl::StrCat(name, ".", i);
    const StTensorInfo* info = file.Find(tname);
    const at::Tensor& want = b->hidden[i];
    std::vector<int64_t> shape(want.sizes().begin(), want.sizes().end());
    if (info == nullptr || info->dtype != StDtype::kF32 || info->shape != shape)
      return absl::InvalidArgumentError(absl::StrCat(
          "checkpoint streams: '", tname, "' is missing or not float32 of the batch's shape"));
    at::Tensor t = at::empty(want.sizes(), at::kFloat);
    absl::Span<const uint8_t> bytes = file.Bytes(*info);
    if (bytes.size() != t.nbytes())
      return absl::InvalidArgumentError(absl::StrCat("checkpoint streams: '", tname, "' size"));
    std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
    b->hidden[i] = t;
  }
  if (file.Find(absl::StrCat(name, ".", b->hidden.size())) != nullptr)
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint streams: more '", name, "' batches than this run makes"));
  return absl::OkStatus();
}

}  // namespace quarry::pipeline
