// quarry submit | watch | jobs | show | logs | cancel | download | upload-model |
// upload-dataset | quantize: the service commands. Each callback fills a request from its
// options and calls the client library (or, for `quantize` without a server, an embedded server
// with one local worker).
#include <openssl/evp.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "cli/job_view.h"
#include "convert/config_convert.h"
#include "quarry/client/client.h"
#include "quarry/config_json.h"
#include "quarry/server/server.h"
#include "quarry/status.h"

namespace quarry::cli {
namespace {

namespace v1 = ::quarry::v1;
namespace fs = std::filesystem;

std::unique_ptr<client::Client> Connect(const GlobalOptions& global) {
  client::ClientOptions o;
  o.server = global.server.empty() ? client::DefaultServerAddress() : global.server;
  o.security.tls_ca = global.tls_ca;
  o.security.tls_cert = global.tls_cert;
  o.security.tls_key = global.tls_key;
  o.security.tls_server_name = global.tls_server_name;
  auto token = client::ResolveToken(global.token_file);
  if (!token.ok()) Fail(token.status());
  o.security.token = *token;
  auto c = client::Client::Create(o);
  if (!c.ok()) Fail(c.status());
  return std::move(*c);
}

// What `submit` and `quantize` share: the job's inputs and options.
struct JobFlags {
  std::string model, model_id;
  std::string config_file, preset;
  std::vector<std::string> algo_files;
  std::string calib, calib_id, calib_format = "auto";
  int num_samples = 0, seq_len = 0;
  int64_t seed = -1;
  std::string eval;
  int eval_seq_len = 0, max_windows = 0;
  bool skip_float_baseline = false;
  bool fake_quantized = false, pack_order = false, skip_report = false;
  std::string export_format = "quark";
  uint64_t max_shard_bytes = 0;
  int priority = 0;
  std::string device, name, request_id;
  std::vector<std::string> labels;
};

void AddJobFlags(CLI::App* sub, JobFlags& f, bool service) {
  auto* model = sub->add_option("--model", f.model, "Hugging Face model directory (a path the "
                                                    "server's workers can read)");
  if (service) {
    auto* id = sub->add_option("--model-id", f.model_id, "A model uploaded with `quarry "
                                                         "upload-model`");
    model->excludes(id);
    id->excludes(model);
  } else {
    model->required();
  }
  auto* config = sub->add_option("--config", f.config_file, "Config in Quark's JSON format");
  auto* preset = sub->add_option("--preset", f.preset, "Named preset, e.g. int4_wo_128, fp8 (see "
                                                       "`quarry config presets`)");
  config->excludes(preset);
  preset->excludes(config);
  sub->add_option("--algo", f.algo_files, "Algorithm config JSON (Quark's algo_config file, "
                                          "e.g. GPTQ); repeatable, appended in order");
  auto* calib = sub->add_option("--calib", f.calib, "Calibration data: .jsonl with \"text\", "
                                                    ".txt, or .json token ids");
  if (service) {
    auto* calib_id = sub->add_option("--calib-id", f.calib_id, "A dataset uploaded with "
                                                               "`quarry upload-dataset`");
    calib->excludes(calib_id);
    calib_id->excludes(calib);
  }
  sub->add_option("--calib-format", f.calib_format, "auto, jsonl, text or tokens")
      ->check(CLI::IsMember({"auto", "jsonl", "text", "tokens"}))
      ->capture_default_str();
  sub->add_option("--num-samples", f.num_samples, "Calibration samples (default: core's)");
  sub->add_option("--seq-len", f.seq_len, "Calibration sequence length (default: core's)");
  sub->add_option("--seed", f.seed, "Calibration sampling seed (default 42)");
  sub->add_option("--eval", f.eval, "Text file to measure perplexity on (before and after)");
  sub->add_option("--eval-seq-len", f.eval_seq_len, "Evaluation window length (default 256)");
  sub->add_option("--max-windows", f.max_windows, "Evaluate at most this many windows");
  sub->add_flag("--skip-float-baseline", f.skip_float_baseline, "Evaluate only the quantized "
                                                                "model");
  sub->add_flag("--fake-quantized", f.fake_quantized, "Export dequantized float weights");
  sub->add_flag("--pack-order", f.pack_order, "Plain int4 nibble order instead of Quark's "
                                              "reorder");
  sub->add_option("--export-format", f.export_format,
                  "quark (Quark's HF format), awq (AutoAWQ GEMM; uint4 asymmetric per-group "
                  "weight-only plans), gptq (GPTQ checkpoint; int4/int8 symmetric weight-only) or "
                  "gguf (llama.cpp model.gguf)")
      ->check(CLI::IsMember({"quark", "awq", "gptq", "gguf"}))
      ->capture_default_str();
  sub->add_flag("--skip-report", f.skip_report, "Do not write report.json / report.html");
  sub->add_option("--max-shard-bytes", f.max_shard_bytes, "Shard the exported safetensors into files of at most this many bytes (0 = the worker's default, 5 GB as Hugging Face)");
  sub->add_option("--priority", f.priority, "Higher runs first (default 0)");
  sub->add_option("--name", f.name, "A name for the job");
  sub->add_option("--label", f.labels, "key=value label; repeatable");
  sub->add_option("--request-id", f.request_id, "Idempotency key: submitting the same key "
                                                "again returns the same job");
}

std::string Absolute(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::absolute(path, ec);
  return ec ? path : p.lexically_normal().string();
}

v1::JobSpec BuildSpec(const JobFlags& f) {
  v1::JobSpec spec;
  if (!f.model_id.empty()) {
    spec.mutable_model()->set_uploaded_model_id(f.model_id);
  } else if (!f.model.empty()) {
    spec.mutable_model()->set_path(Absolute(f.model));
  } else {
    Fail(absl::InvalidArgumentError("give --model DIR or --model-id ID"));
  }
  if (!f.config_file.empty()) {
    spec.set_config_json(ReadFileOrDie(f.config_file));
  } else if (!f.preset.empty()) {
    spec.set_preset(f.preset);
  } else {
    Fail(absl::InvalidArgumentError("give --config FILE or --preset NAME"));
  }
  for (const std::string& file : f.algo_files) {
    auto algo = LoadQuantAlgoConfigFromFile(file);
    if (!algo.ok()) Fail(Annotate(algo.status(), file));
    *spec.add_extra_algo_config() = convert::ToProto(*algo);
  }
  v1::CalibrationData* c = spec.mutable_calibration();
  if (!f.calib_id.empty()) c->set_uploaded_dataset_id(f.calib_id);
  else if (!f.calib.empty()) c->set_path(Absolute(f.calib));
  static const std::map<std::string, v1::DataFormat> kFormats = {
      {"auto", v1::DATA_FORMAT_AUTO}, {"jsonl", v1::DATA_FORMAT_JSONL},
      {"text", v1::DATA_FORMAT_TEXT}, {"tokens", v1::DATA_FORMAT_TOKENS}};
  c->set_format(kFormats.at(f.calib_format));
  if (f.num_samples > 0) c->set_num_samples(f.num_samples);
  if (f.seq_len > 0) c->set_seq_len(f.seq_len);
  if (f.seed >= 0) c->set_seed(static_cast<uint64_t>(f.seed));
  if (!f.eval.empty()) {
    v1::EvalOptions* e = spec.mutable_eval();
    e->set_path(Absolute(f.eval));
    if (f.eval_seq_len > 0) e->set_seq_len(f.eval_seq_len);
    if (f.max_windows > 0) e->set_max_windows(f.max_windows);
    e->set_skip_float_baseline(f.skip_float_baseline);
  }
  v1::ExportOptions* x = spec.mutable_export_options();
  x->set_weight_format(f.fake_quantized ? v1::WEIGHT_FORMAT_FAKE_QUANTIZED
                                        : v1::WEIGHT_FORMAT_REAL_QUANTIZED);
  x->set_pack_method(f.pack_order ? v1::PACK_METHOD_ORDER : v1::PACK_METHOD_REORDER);
  x->set_export_format(f.export_format == "awq"    ? v1::EXPORT_FORMAT_AWQ
                       : f.export_format == "gptq" ? v1::EXPORT_FORMAT_GPTQ
                       : f.export_format == "gguf" ? v1::EXPORT_FORMAT_GGUF
                                                   : v1::EXPORT_FORMAT_QUARK);
  x->set_skip_report(f.skip_report);
  x->set_max_shard_bytes(f.max_shard_bytes);
  spec.set_priority(f.priority);
  spec.set_device(f.device);
  spec.set_name(f.name);
  for (const std::string& l : f.labels) {
    size_t eq = l.find('=');
    if (eq == std::string::npos)
      Fail(absl::InvalidArgumentError(absl::StrCat("--label '", l, "': expected key=value")));
    (*spec.mutable_labels())[l.substr(0, eq)] = l.substr(eq + 1);
  }
  return spec;
}

// Watches a job until it ends, rendering it; returns its final state.
v1::JobState WatchToEnd(client::Client& c, const std::string& job_id, bool json,
                        uint64_t from_seq = 0, int min_severity = 0) {
  JobView view(json);
  client::WatchOptions w;
  w.job_id = job_id;
  w.from_seq = from_seq;
  w.min_severity = min_severity;
  w.follow = true;
  absl::Status st = c.WatchJob(w, [&](const v1::JobEvent& e) {
    view.OnEvent(e);
    return true;
  });
  view.Close();
  if (!st.ok()) Fail(st);
  if (view.state() == v1::JOB_STATE_UNSPECIFIED) {
    auto job = c.GetJob(job_id);
    if (!job.ok()) Fail(job.status());
    return job->state();
  }
  return view.state();
}

int ExitCodeFor(v1::JobState s) { return s == v1::JOB_STATE_SUCCEEDED ? 0 : 1; }

void PrintJob(const v1::Job& j) {
  std::printf("job        %s%s\n", j.id().c_str(),
              j.spec().name().empty() ? "" : absl::StrCat("  (", j.spec().name(), ")").c_str());
  std::printf("state      %s\n", ShortState(j.state()).c_str());
  if (!j.error().empty()) std::printf("error      %s\n", j.error().c_str());
  const v1::ModelSource& m = j.spec().model();
  std::printf("model      %s\n",
              m.has_uploaded_model_id() ? absl::StrCat("upload ", m.uploaded_model_id()).c_str()
                                        : m.path().c_str());
  std::string config = j.spec().has_config()        ? "protobuf config"
                       : !j.spec().preset().empty() ? absl::StrCat("preset ", j.spec().preset())
                                                    : "Quark JSON config";
  std::printf("config     %s\n", config.c_str());
  std::printf("priority   %d\n", j.spec().priority());
  std::printf("created    %s\n", FormatTime(j.created_unix_ms()).c_str());
  std::printf("started    %s\n", FormatTime(j.started_unix_ms()).c_str());
  std::printf("finished   %s\n", FormatTime(j.finished_unix_ms()).c_str());
  std::printf("attempts   %d%s\n", j.attempts(),
              j.worker_id().empty() ? "" : absl::StrCat(" (worker ", j.worker_id(), ")").c_str());
  if (j.has_progress() && j.state() != v1::JOB_STATE_SUCCEEDED)
    std::printf("progress   %.0f%% %s layer %d/%d\n", j.progress().fraction() * 100,
                j.progress().stage().c_str(), j.progress().layer_index() + 1,
                j.progress().num_layers());
  if (j.has_result()) {
    std::printf("duration   %s\n", FormatDuration(j.result().duration_seconds()).c_str());
    if (j.result().perplexity_quantized() > 0)
      std::printf("perplexity %.4f (float %.4f)\n", j.result().perplexity_quantized(),
                  j.result().perplexity_float());
  }
  for (const auto& a : j.artifacts())
    std::printf("artifact   %s  %s  sha256 %s\n", a.name().c_str(), FormatBytes(a.size()).c_str(),
                a.sha256().c_str());
  std::printf("events     %llu\n", static_cast<unsigned long long>(j.last_event_seq()));
}

// The runtime verdicts of a finished job: its report.json artifact, fetched into a temporary
// file (the API has no other copy of them). Silent when the job has no report.
void PrintRuntimes(client::Client& c, const v1::Job& j) {
  bool has_report = false;
  for (const auto& a : j.artifacts()) has_report |= a.name() == "report.json";
  if (!has_report) return;
  std::string dir = (fs::temp_directory_path() / "quarry-show-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr) return;
  const std::string path = dir + "/report.json";
  auto info = c.DownloadArtifact(j.id(), "report.json", path);
  if (info.ok()) {
    std::printf("%s", FormatReportRuntimes(ReadFileOrDie(path)).c_str());
  } else {
    std::printf("runtimes   (report.json: %s)\n", std::string(info.status().message()).c_str());
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

// ----- quantize: through a server, or an embedded one -----

struct QuantizeFlags {
  JobFlags job;
  std::string out;
  std::string device = "cpu";
  std::string data_dir;
  std::string worker_binary;
  int threads = 0;
};

void RunQuantize(const GlobalOptions& global, QuantizeFlags& q) {
  v1::JobSpec spec = BuildSpec(q.job);
  const bool remote = !global.server.empty() || std::getenv("QUARRY_SERVER") != nullptr;
  std::unique_ptr<server::Server> embedded;
  std::string data_dir = q.data_dir;
  bool remove_data_dir = false;
  GlobalOptions g = global;
  if (!remote) {
    // An embedded server with one local worker; the inputs' directories are its model roots.
    if (data_dir.empty()) {
      std::string tmpl = (fs::temp_directory_path() / "quarry-quantize-XXXXXX").string();
      if (::mkdtemp(tmpl.data()) == nullptr)
        Fail(absl::InternalError("cannot create a temporary data directory"));
      data_dir = tmpl;
      remove_data_dir = true;
    }
    server::ServerOptions so;
    so.listen = "127.0.0.1:0";
    so.data_dir = data_dir;
    so.local_workers = 1;
    so.local_worker_device = q.device;
    so.local_worker_threads = q.threads;
    so.worker_binary = q.worker_binary;
    so.local_worker_log = data_dir + "/worker.log";
    so.log_level = 2;
    std::error_code ec;
    so.model_roots.push_back(fs::canonical(spec.model().path(), ec).string());
    if (ec) Fail(absl::InvalidArgumentError(absl::StrCat("--model '", q.job.model, "': ",
                                                          ec.message())));
    for (const std::string& p : {spec.calibration().path(), spec.eval().path()}) {
      if (p.empty()) continue;
      fs::path c = fs::canonical(p, ec);
      if (ec) Fail(absl::InvalidArgumentError(absl::StrCat("'", p, "': ", ec.message())));
      so.model_roots.push_back(c.parent_path().string());
    }
    auto s = server::Server::Start(so);
    if (!s.ok()) Fail(s.status());
    embedded = std::move(*s);
    g.server = embedded->address();
  }
  auto finish = [&](int code) {
    if (embedded) {
      embedded->Shutdown();
      embedded->Wait();
      embedded.reset();
      std::error_code ec;
      if (remove_data_dir) fs::remove_all(data_dir, ec);
    }
    if (code != 0) throw CLI::RuntimeError(code);
  };
  try {
    auto c = Connect(g);
    auto job = c->SubmitJob(spec, q.job.request_id);
    if (!job.ok()) Fail(job.status());
    if (!global.json)
      std::fprintf(stderr, "job %s submitted to %s\n", job->id().c_str(),
                   embedded ? "an embedded server" : g.server.c_str());
    v1::JobState state = WatchToEnd(*c, job->id(), global.json);
    if (state != v1::JOB_STATE_SUCCEEDED) {
      auto final_job = c->GetJob(job->id());
      std::fprintf(stderr, "quarry: job %s %s%s\n", job->id().c_str(), ShortState(state).c_str(),
                   final_job.ok() && !final_job->error().empty()
                       ? absl::StrCat(": ", final_job->error()).c_str()
                       : "");
      finish(1);
      return;
    }
    auto files = c->DownloadArtifacts(job->id(), q.out);
    if (!files.ok()) Fail(files.status());
    if (global.json) {
      auto final_job = c->GetJob(job->id());
      if (final_job.ok()) std::printf("%s\n", ToJson(*final_job).c_str());
    } else {
      std::printf("%s: %zu files, %s\n", q.out.c_str(), files->files.size(),
                  FormatBytes(files->bytes).c_str());
    }
  } catch (const CLI::RuntimeError&) {
    finish(0);
    throw;
  }
  finish(0);
}

}  // namespace

void AddServiceCommands(CLI::App& app, GlobalOptions& global) {
  // quarry submit
  {
    static JobFlags f;
    static bool wait = false;
    auto* sub = app.add_subcommand("submit", "Submit a quantization job to the server");
    AddJobFlags(sub, f, /*service=*/true);
    sub->add_option("--device", f.device, "Required device kind: cpu, cuda or hip (default any)")
        ->check(CLI::IsMember({"", "cpu", "cuda", "hip"}));
    sub->add_flag("--wait", wait, "Watch the job until it ends; exit 0 only if it succeeded");
    sub->callback([&global] {
      v1::JobSpec spec = BuildSpec(f);
      auto c = Connect(global);
      auto job = c->SubmitJob(spec, f.request_id);
      if (!job.ok()) Fail(job.status());
      if (global.json) {
        if (!wait) std::printf("%s\n", ToJson(*job).c_str());
      } else {
        std::printf("%s\n", job->id().c_str());
        std::fflush(stdout);
      }
      if (wait) {
        v1::JobState s = WatchToEnd(*c, job->id(), global.json);
        if (int code = ExitCodeFor(s); code != 0) throw CLI::RuntimeError(code);
      }
    });
  }

  // quarry watch JOB
  {
    static std::string job_id;
    static uint64_t from_seq = 0;
    static int min_severity = 0;
    auto* sub = app.add_subcommand("watch", "Follow a job live: progress bar, logs; resumes "
                                            "after a disconnect. Exit 0 if it succeeded");
    sub->add_option("JOB", job_id, "Job id")->required();
    sub->add_option("--from-seq", from_seq, "Start after this event sequence number");
    sub->add_option("--min-severity", min_severity, "Hide log records below 0 DEBUG .. 4 "
                                                    "CRITICAL");
    sub->callback([&global] {
      auto c = Connect(global);
      v1::JobState s = WatchToEnd(*c, job_id, global.json, from_seq, min_severity);
      if (int code = ExitCodeFor(s); code != 0) throw CLI::RuntimeError(code);
    });
  }

  // quarry jobs
  {
    static std::vector<std::string> states;
    static int limit = 50;
    static std::string label;
    auto* sub = app.add_subcommand("jobs", "List recent jobs, newest first");
    sub->add_option("--state", states, "Only these states (queued, running, succeeded, ...); "
                                       "repeatable");
    sub->add_option("--limit", limit, "At most this many")->capture_default_str();
    sub->add_option("--label", label, "Only jobs with this key=value label");
    sub->callback([&global] {
      v1::ListJobsRequest req;
      for (const std::string& s : states) {
        v1::JobState st;
        std::string name = absl::StrCat("JOB_STATE_", s);
        for (char& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        if (!v1::JobState_Parse(name, &st))
          Fail(absl::InvalidArgumentError(absl::StrCat("--state '", s, "': unknown state")));
        req.add_states(st);
      }
      req.set_limit(limit);
      req.set_label_selector(label);
      auto c = Connect(global);
      auto jobs = c->ListJobs(req);
      if (!jobs.ok()) Fail(jobs.status());
      if (global.json) {
        std::vector<std::string> items;
        for (const auto& j : *jobs) items.push_back(ToJson(j));
        std::printf("[%s]\n", absl::StrJoin(items, ",").c_str());
        return;
      }
      std::printf("%-18s %-10s %4s %6s  %-19s  %s\n", "ID", "STATE", "PRIO", "DONE", "CREATED",
                  "NAME / MODEL");
      for (const auto& j : *jobs) {
        std::string what = !j.spec().name().empty() ? j.spec().name()
                           : j.spec().model().has_uploaded_model_id()
                               ? absl::StrCat("upload ", j.spec().model().uploaded_model_id())
                               : j.spec().model().path();
        double frac = j.state() == v1::JOB_STATE_SUCCEEDED ? 1.0 : j.progress().fraction();
        std::printf("%-18s %-10s %4d %5.0f%%  %-19s  %s\n", j.id().c_str(),
                    ShortState(j.state()).c_str(), j.spec().priority(), frac * 100,
                    FormatTime(j.created_unix_ms()).c_str(), what.c_str());
      }
    });
  }

  // quarry show JOB
  {
    static std::string job_id;
    auto* sub = app.add_subcommand("show", "Show a job: state, attempts, error, artifacts");
    sub->add_option("JOB", job_id, "Job id")->required();
    sub->callback([&global] {
      auto c = Connect(global);
      auto job = c->GetJob(job_id);
      if (!job.ok()) Fail(job.status());
      if (global.json) {
        std::printf("%s\n", ToJson(*job).c_str());
      } else {
        PrintJob(*job);
        PrintRuntimes(*c, *job);
      }
    });
  }

  // quarry logs JOB
  {
    static std::string job_id;
    static int min_severity = 0;
    static bool follow = false;
    auto* sub = app.add_subcommand("logs", "Print a job's log records (and state changes)");
    sub->add_option("JOB", job_id, "Job id")->required();
    sub->add_option("--min-severity", min_severity, "Only records at or above 0 DEBUG, 1 INFO, "
                                                    "2 WARNING, 3 ERROR, 4 CRITICAL");
    sub->add_flag("-f,--follow", follow, "Keep printing new records until the job ends");
    sub->callback([&global] {
      auto c = Connect(global);
      client::WatchOptions w;
      w.job_id = job_id;
      w.min_severity = min_severity;
      w.follow = follow;
      absl::Status st = c->WatchJob(w, [&](const v1::JobEvent& e) {
        if (!e.has_log()) return true;
        if (global.json) {
          std::printf("%s\n", ToJson(e).c_str());
        } else {
          std::printf("%s  %-8s %-6s %s\n", FormatTime(e.time_unix_ms()).c_str(),
                      SeverityName(e.log().severity()).c_str(), e.log().source().c_str(),
                      e.log().message().c_str());
        }
        std::fflush(stdout);
        return true;
      });
      if (!st.ok()) Fail(st);
    });
  }

  // quarry cancel JOB
  {
    static std::string job_id;
    auto* sub = app.add_subcommand("cancel", "Cancel a job (a running one stops at its next "
                                             "layer)");
    sub->add_option("JOB", job_id, "Job id")->required();
    sub->callback([&global] {
      auto c = Connect(global);
      auto job = c->CancelJob(job_id);
      if (!job.ok()) Fail(job.status());
      if (global.json) {
        std::printf("%s\n", ToJson(*job).c_str());
      } else {
        std::printf("%s %s\n", job->id().c_str(), ShortState(job->state()).c_str());
      }
    });
  }

  // quarry delete JOB... / quarry delete-upload ID...
  {
    static std::vector<std::string> ids;
    auto* sub = app.add_subcommand("delete", "Delete finished jobs: their records, events and "
                                             "artifacts (frees the tenant's artifact quota)");
    sub->add_option("JOB", ids, "Job ids")->required();
    sub->callback([&global] {
      auto c = Connect(global);
      for (const std::string& id : ids) {
        auto freed = c->DeleteJob(id);
        if (!freed.ok()) Fail(freed.status());
        if (global.json)
          std::printf("{\"job_id\":\"%s\",\"freed_bytes\":%llu}\n", id.c_str(),
                      static_cast<unsigned long long>(*freed));
        else
          std::printf("%s deleted, %s freed\n", id.c_str(), FormatBytes(*freed).c_str());
      }
    });
  }
  {
    static std::vector<std::string> ids;
    auto* sub = app.add_subcommand("delete-upload", "Delete uploaded models or datasets (frees "
                                                    "the tenant's upload quota)");
    sub->add_option("ID", ids, "Upload ids")->required();
    sub->callback([&global] {
      auto c = Connect(global);
      for (const std::string& id : ids) {
        auto freed = c->DeleteUpload(id);
        if (!freed.ok()) Fail(freed.status());
        if (global.json)
          std::printf("{\"upload_id\":\"%s\",\"freed_bytes\":%llu}\n", id.c_str(),
                      static_cast<unsigned long long>(*freed));
        else
          std::printf("%s deleted, %s freed\n", id.c_str(), FormatBytes(*freed).c_str());
      }
    });
  }

  // quarry download JOB --out DIR
  {
    static std::string job_id, out;
    auto* sub = app.add_subcommand("download", "Download a job's artifacts (resumable, sha256 "
                                               "verified)");
    sub->add_option("JOB", job_id, "Job id")->required();
    sub->add_option("--out", out, "Directory to write the files into")->required();
    sub->callback([&global] {
      auto c = Connect(global);
      auto r = c->DownloadArtifacts(job_id, out);
      if (!r.ok()) Fail(r.status());
      if (global.json) {
        std::vector<std::string> items;
        for (const auto& f : r->files) items.push_back(ToJson(f));
        std::printf("[%s]\n", absl::StrJoin(items, ",").c_str());
        return;
      }
      for (const auto& f : r->files)
        std::printf("%s/%s  %s  sha256 %s\n", out.c_str(), f.name().c_str(),
                    FormatBytes(f.size()).c_str(), f.sha256().c_str());
    });
  }

  // quarry upload-model DIR / upload-dataset FILE
  {
    static std::string dir, name;
    auto* sub = app.add_subcommand("upload-model", "Upload a model directory to the server; "
                                                   "prints the id for --model-id");
    sub->add_option("DIR", dir, "Hugging Face model directory")->required();
    sub->add_option("--name", name, "Display name (default: the directory name)");
    sub->callback([&global] {
      auto c = Connect(global);
      auto r = c->UploadModel(dir, name);
      if (!r.ok()) Fail(r.status());
      if (global.json) {
        std::printf("%s\n", ToJson(*r).c_str());
      } else {
        std::printf("%s\n", r->id().c_str());
        std::fprintf(stderr, "uploaded %d files, %s\n", r->files_size(),
                     FormatBytes(r->total_bytes()).c_str());
      }
    });
  }
  {
    static std::string file;
    auto* sub = app.add_subcommand("upload-dataset", "Upload a calibration/eval file; prints "
                                                     "the id for --calib-id");
    sub->add_option("FILE", file, "Dataset file")->required();
    sub->callback([&global] {
      auto c = Connect(global);
      auto r = c->UploadDataset(file);
      if (!r.ok()) Fail(r.status());
      if (global.json) {
        std::printf("%s\n", ToJson(*r).c_str());
      } else {
        std::printf("%s\n", r->id().c_str());
      }
    });
  }

  // quarry audit
  {
    static int limit = 100;
    static std::string tenant, action, since;
    auto* sub = app.add_subcommand("audit", "Show the server's audit log, newest first (who did "
                                            "what, when; needs an admin token)");
    sub->add_option("--limit", limit, "At most this many rows")->capture_default_str();
    sub->add_option("--tenant", tenant, "Only this tenant's rows");
    sub->add_option("--action", action, "Only this action: submit, cancel, download, upload, "
                                        "worker_register, auth_failure, permission_denied, "
                                        "not_found, reload");
    sub->add_option("--since", since, "Only rows at or after this RFC 3339 time");
    sub->callback([&global] {
      v1::ListAuditEventsRequest req;
      req.set_limit(limit);
      req.set_tenant(tenant);
      req.set_action(action);
      if (!since.empty()) {
        absl::Time t;
        std::string why;
        if (!absl::ParseTime(absl::RFC3339_full, since, &t, &why))
          Fail(absl::InvalidArgumentError(absl::StrCat("--since '", since, "': ", why)));
        req.set_since_unix_ms(absl::ToUnixMillis(t));
      }
      auto c = Connect(global);
      auto events = c->ListAuditEvents(req);
      if (!events.ok()) Fail(events.status());
      if (global.json) {
        std::vector<std::string> items;
        for (const auto& e : *events) items.push_back(ToJson(e));
        std::printf("[%s]\n", absl::StrJoin(items, ",").c_str());
        return;
      }
      std::printf("%-19s  %-17s %-12s %-14s %-16s %-24s %s\n", "TIME", "ACTION", "TENANT",
                  "TOKEN", "CODE", "TARGET", "PEER / DETAIL");
      for (const auto& e : *events)
        std::printf("%-19s  %-17s %-12s %-14s %-16s %-24s %s%s%s\n",
                    FormatTime(e.time_unix_ms()).c_str(), e.action().c_str(),
                    e.tenant().empty() ? "-" : e.tenant().c_str(),
                    e.token_id().empty() ? "-" : e.token_id().c_str(), e.code().c_str(),
                    e.target().empty() ? "-" : e.target().c_str(), e.peer().c_str(),
                    e.detail().empty() ? "" : "  ", e.detail().c_str());
    });
  }

  // quarry token new
  {
    auto* token = app.add_subcommand("token", "Make bearer tokens for --auth-tokens files");
    token->require_subcommand(1);
    static std::string tenant, roles = "submit,read,cancel", expires, id;
    auto* sub = token->add_subcommand(
        "new", "Print a new random token and the line for the server's --auth-tokens file "
               "(the file keeps only the hash; give the token to its user)");
    sub->add_option("--tenant", tenant, "Tenant the token acts for")->required();
    sub->add_option("--roles", roles, "Comma-separated: submit, read, cancel, admin, worker")
        ->capture_default_str();
    sub->add_option("--expires", expires, "RFC 3339 expiry time (default: never)");
    sub->add_option("--id", id, "Token id shown in the audit log (default: hash prefix)");
    sub->callback([&global] {
      unsigned char raw[32];
      std::FILE* urandom = std::fopen("/dev/urandom", "rb");
      if (urandom == nullptr || std::fread(raw, 1, sizeof(raw), urandom) != sizeof(raw))
        Fail(absl::InternalError("cannot read /dev/urandom"));
      std::fclose(urandom);
      std::string secret = "qt_";
      static const char* kHex = "0123456789abcdef";
      for (unsigned char b : raw) {
        secret.push_back(kHex[b >> 4]);
        secret.push_back(kHex[b & 15]);
      }
      unsigned char d[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      EVP_Digest(secret.data(), secret.size(), d, &len, EVP_sha256(), nullptr);
      std::string hex;
      for (unsigned int i = 0; i < len; ++i) {
        hex.push_back(kHex[d[i] >> 4]);
        hex.push_back(kHex[d[i] & 15]);
      }
      std::string line = absl::StrCat("sha256:", hex, " tenant=", tenant, " roles=", roles,
                                      expires.empty() ? "" : " expires=", expires,
                                      id.empty() ? "" : " id=", id);
      if (global.json) {
        std::printf("{\"token\":\"%s\",\"line\":\"%s\"}\n", secret.c_str(), line.c_str());
      } else {
        std::printf("token: %s\nline:  %s\n", secret.c_str(), line.c_str());
      }
    });
  }

  // quarry quantize
  {
    static QuantizeFlags q;
    auto* sub = app.add_subcommand(
        "quantize", "Quantize a model and write the result to --out. Without --server (and "
                    "$QUARRY_SERVER) it starts an embedded server with one local worker, runs "
                    "the job through it and shuts it down");
    AddJobFlags(sub, q.job, /*service=*/false);
    sub->add_option("--out", q.out, "Output directory for the quantized model")->required();
    sub->add_option("--device", q.device, "Embedded worker's device: cpu, cuda:N or hip:N")
        ->capture_default_str();
    sub->add_option("--threads", q.threads, "Embedded worker's compute threads (0 = all)");
    sub->add_option("--data-dir", q.data_dir, "Embedded server's data dir (kept; default: a "
                                              "temporary one, removed)");
    sub->add_option("--worker-binary", q.worker_binary, "quarry-worker executable for the "
                                                        "embedded worker");
    sub->callback([&global] { RunQuantize(global, q); });
  }
}

}  // namespace quarry::cli
