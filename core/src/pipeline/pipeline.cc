// QuantizeModel: the layer-by-layer pipeline (see quarry/pipeline.h for the contract).
//
// Streams carried through the layers (each a set of equal-length batches):
//   calib_q  calibration activations through the quantized model (inputs of the next layer)
//   calib_f  the same through the float model (only when an algorithm needs it: Qronos)
//   eval_f / eval_q  evaluation windows through the float / quantized model (with --eval)
//   stats_q  the first error_sample_sequences calibration sequences through the quantized model,
//           with per-linear output-error statistics (report.json)
// The calibration streams exist only when something consumes activations (an algorithm, a static
// input/output/KV/softmax observer): a weight-only RTN plan runs no calibration forward at all.
// Per decoder layer:
//   1. load its weights; attach the quantizers of its plan entries
//   2. algorithms (GPTQ, Qronos) quantize the weights of the linears they handle
//   3. the remaining weights are quantized by rounding (weight observer over the weight)
//   4. if the layer has static activation quantizers: an observe pass over calib_q
//      (weights quantized, activations not), then freeze; k/v output scales merged
//   5. the quantized forward produces the next calib_q (and eval_q); the float forward eval_f
//   6. the layer's tensors are exported; the layer is freed
#include <ATen/Parallel.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "algorithms/algorithm.h"
#include "config/json_internal.h"
#include "export/exporter.h"
#include "export/report.h"
#include "model/transformer.h"
#include "pipeline/layer_checkpoint.h"
#include "pipeline/layerwise.h"
#include "pipeline/residency.h"
#include "pipeline/workspace_allocator.h"
#include "quarry/calibration.h"
#include "quarry/config_json.h"
#include "quarry/config_validate.h"
#include "quarry/eval.h"
#include "quarry/layer_plan.h"
#include "quarry/pipeline.h"
#include "quarry/status.h"
#include "quarry/tokenizer.h"

namespace quarry {
namespace {

using model::PassMode;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

bool HasStaticActivationQuantizer(const model::DecoderLayer& layer) {
  for (const model::QLinear* l : layer.linears) {
    if (l->input_q && !l->input_q->is_dynamic()) return true;
    if (l->output_q && !l->output_q->is_dynamic()) return true;
  }
  return layer.softmax_q && !layer.softmax_q->is_dynamic();
}

// ||approx - ref||^2 / ||ref||^2 accumulated in double, in one threaded pass over the float32
// tensors (no float64 copies of a weight).
double RelMse(const at::Tensor& approx_in, const at::Tensor& ref_in) {
  at::Tensor approx = approx_in.to(at::kFloat).contiguous();
  at::Tensor ref = ref_in.to(at::kFloat).contiguous();
  const float* a = approx.data_ptr<float>();
  const float* r = ref.data_ptr<float>();
  const int64_t n = ref.numel();
  constexpr int64_t kChunk = int64_t{1} << 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> num(chunks, 0.0), den(chunks, 0.0);
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double sn = 0, sd = 0;
      for (int64_t i = c * kChunk, e = std::min(n, (c + 1) * kChunk); i < e; ++i) {
        const double d = static_cast<double>(a[i]) - r[i];
        sn += d * d;
        sd += static_cast<double>(r[i]) * r[i];
      }
      num[c] = sn;
      den[c] = sd;
    }
  });
  double tn = 0, td = 0;
  for (int64_t c = 0; c < chunks; ++c) tn += num[c], td += den[c];
  if (td == 0) return tn == 0 ? 0 : INFINITY;
  return tn / td;
}

// True when the specs are set and static (their quantizer observes calibration data).
bool IsStatic(const std::optional<TensorSpecs>& specs) {
  if (!specs || specs->specs.empty()) return false;
  auto q = TensorQuantizer::Create(specs->specs);
  return q.ok() && *q && !(*q)->is_dynamic();
}

std::string HumanBytes(double b) {
  if (b >= 1e9) return absl::StrFormat("%.2f GB", b / 1e9);
  if (b >= 1e6) return absl::StrFormat("%.1f MB", b / 1e6);
  return absl::StrFormat("%.0f kB", b / 1e3);
}

class Runner {
 public:
  Runner(const QuantizeOptions& options, JobObserver* observer)
      : o_(options), config_(options.config), obs_(observer ? observer : &null_observer_) {}

  absl::StatusOr<QuantizeResult> Run() {
    start_ = Clock::now();
    rss_ = std::make_unique<pipeline::RssSampler>();
    // Reuse the large blocks each layer frees for the next layer (same shapes): no re-faulting
    // of gigabytes of fresh pages per layer. Trimmed when the run ends, however it ends.
    pipeline::WorkspaceAllocator::Install(o_.workspace_cache_bytes);
    struct TrimAtExit {
      ~TrimAtExit() { pipeline::WorkspaceAllocator::Trim(); }
    } trim;
    forwards_at_start_ = pipeline::LayerForwards();
    QUARRY_RETURN_IF_ERROR(Prepare());
    QUARRY_RETURN_IF_ERROR(EmbedStreams());
    const int n = model_->num_layers();
    QUARRY_ASSIGN_OR_RETURN(const int start, Resume());
    for (int i = start; i < n; ++i) {
      if (obs_->IsCancelled())
        return absl::CancelledError(absl::StrCat("cancelled before layer ", i, " of ", n));
      QUARRY_RETURN_IF_ERROR(Annotate(ProcessLayer(i), absl::StrCat("layer ", i)));
    }
    if (obs_->IsCancelled()) return absl::CancelledError("cancelled before the head");
    QUARRY_RETURN_IF_ERROR(Annotate(ProcessHead(), "lm_head"));
    return Finish();
  }

 private:
  void Log(LogSeverity s, const std::string& msg) { obs_->OnLog(s, msg); }

  void Progress(const std::string& stage, int layer, double layer_fraction,
                const std::string& message = "") {
    const int n = model_ ? model_->num_layers() : 0;
    ProgressEvent e;
    e.stage = stage;
    e.layer_index = layer;
    e.num_layers = n;
    // Layers are the bulk of the work: prepare = 2%, layers = 95%, head/export = 3%.
    double f = 0.02;
    if (layer >= 0 && n > 0) f += 0.95 * (layer + std::clamp(layer_fraction, 0.0, 1.0)) / n;
    // After the layers (layer < 0): head, evaluation and the final files.
    if (layer < 0 && (stage == "head" || stage == "eval" || stage == "export")) f = 0.97;
    if (stage == "done") f = 1.0;
    e.fraction = f;
    e.elapsed_seconds = Seconds(start_);
    e.eta_seconds = Eta(stage, layer, layer_fraction, f, e.elapsed_seconds);
    e.message = message;
    const double io_seconds = layers_started_ ? Seconds(layers_start_) : 0;
    if (io_seconds > 0.5) {  // layers_started_: model_ and exporter_ exist
      e.read_bytes_per_second = static_cast<double>(model_->bytes_read() - bytes_read_at_layers_) / io_seconds;
      e.write_bytes_per_second =
          static_cast<double>(exporter_->bytes_written() - bytes_written_at_layers_) / io_seconds;
    }
    obs_->OnProgress(e);
  }

  // Decoder layers take about the same time each: the ETA is the mean time per layer so far
  // times the layers left, plus the head and final files (estimated as half a layer); before a
  // layer has run, the share of the fixed progress budget.
  double Eta(const std::string& stage, int layer, double layer_fraction, double f, double elapsed) {
    const int n = model_ ? model_->num_layers() : 0;
    if (stage == "done") return 0;
    if (layer >= 0 && n > 0 && layers_started_) {
      const double done = layer + std::clamp(layer_fraction, 0.0, 1.0);
      if (done < 0.05) return -1;
      const double per_layer = Seconds(layers_start_) / done;
      return per_layer * (n - done) + 0.5 * per_layer;
    }
    if (layer < 0 && layers_started_ && n > 0 && stage != "load") {
      const double per_layer = (Seconds(layers_start_) - Seconds(layers_end_)) / n;
      return std::max(0.0, 0.5 * per_layer - Seconds(layers_end_));
    }
    return f > 0.03 ? elapsed * (1 - f) / f : -1;
  }

  absl::Status Prepare() {
    Progress("load", -1, 0, "opening model");
    if (o_.device != "cpu")
      return absl::UnimplementedError(absl::StrCat(
          "device '", o_.device, "': this build runs on cpu only (configure with "
                                 "QUARRY_ENABLE_CUDA / QUARRY_ENABLE_ROCM for accelerators)"));
    at::set_num_threads(o_.threads > 0 ? o_.threads
                                       : static_cast<int>(std::thread::hardware_concurrency()));
    if (o_.output_dir.empty()) return absl::InvalidArgumentError("output_dir is required");
    std::vector<std::string> warnings;
    QUARRY_RETURN_IF_ERROR(CheckConfig(config_, &warnings));
    for (const auto& w : warnings) Warn(w);
    for (const auto& line : exporter::AdaptConfigToFormat(o_.export_options.format, &config_))
      WorkPlan(line);
    QUARRY_ASSIGN_OR_RETURN(model_, model::CausalLM::Open(o_.model_dir));
    QUARRY_ASSIGN_OR_RETURN(plan_, ResolveLayerPlan(config_, model_->Modules()));
    for (const auto& issue : plan_.issues) {
      if (issue.is_error()) return absl::InvalidArgumentError(issue.ToString());
      Warn(issue.ToString());
    }
    for (const auto& l : plan_.layers) {
      if (l.type == "Embedding" && l.quantized())
        return absl::UnimplementedError(absl::StrCat(
            l.name, ": quantizing embeddings is not supported; exclude it or remove the rule ",
            l.matched_rule));
    }
    QUARRY_ASSIGN_OR_RETURN(algorithms_, algorithms::CreateAlgorithms(config_));
    for (const auto& a : algorithms_) needs_float_calib_ |= a->needs_float_inputs();
    for (const auto& a : algorithms_)
      QUARRY_RETURN_IF_ERROR(Annotate(a->Validate(*model_, plan_), a->name()));
    DecideCalibrationForward();
    QUARRY_ASSIGN_OR_RETURN(tokenizer_, Tokenizer::FromModelDir(o_.model_dir));
    if (needs_calib_forward_) {
      if (o_.calibration.path.empty())
        return absl::InvalidArgumentError(
            "this plan needs calibration data (see the 'calibration forward' line above); give "
            "--calib FILE (a .jsonl with \"text\" fields, plain text, or token-id arrays)");
      std::vector<std::string> calib_warnings;
      QUARRY_ASSIGN_OR_RETURN(calibration_,
                              LoadCalibration(o_.calibration, *tokenizer_,
                                              model_->config().max_position_embeddings,
                                              &calib_warnings));
      for (const auto& w : calib_warnings) Warn(w);
      Log(LogSeverity::kInfo, absl::StrCat("calibration: ", calibration_.summary));
      report_.calibration = calibration_.summary;
    } else {
      report_.calibration = "not used (nothing in the plan consumes activations)";
    }
    if (o_.eval) {
      std::ifstream in(o_.eval->path, std::ios::binary);
      if (!in) return absl::NotFoundError(absl::StrCat("cannot open eval data '", o_.eval->path, "'"));
      std::stringstream ss;
      ss << in.rdbuf();
      if (o_.eval->seq_len > model_->config().max_position_embeddings)
        return absl::InvalidArgumentError(absl::StrCat(
            "eval seq_len ", o_.eval->seq_len, " exceeds the model's ",
            model_->config().max_position_embeddings, " positions"));
      int64_t total = 0;
      QUARRY_ASSIGN_OR_RETURN(eval_windows_, EvalWindows(*tokenizer_, ss.str(), o_.eval->seq_len,
                                                         o_.eval->max_windows, &total));
      report_.evaluation = absl::StrFormat("%d windows of %d tokens from %s",
                                           eval_windows_.size(), o_.eval->seq_len,
                                           std::filesystem::path(o_.eval->path).filename().string());
    }
    QUARRY_ASSIGN_OR_RETURN(exporter_, exporter::CreateExporter(
                                           o_.output_dir, o_.export_options, model_.get(),
                                           config_, plan_));
    WorkPlan(absl::StrCat("evaluation: ", eval_windows_.empty()
                                              ? std::string("none (no evaluation data given)")
                                              : report_.evaluation));
    report_.model_dir = o_.model_dir;
    report_.model_type = model_->config().model_type;
    report_.config_json = ConfigToJson(config_);
    if (!o_.checkpoint_dir.empty() || !o_.resume_dir.empty()) {
      if (!exporter_->supports_journal()) {
        WorkPlan(absl::StrCat("layer checkpoints: none (", ExportFormatName(o_.export_options.format),
                              " exports keep none; a re-run starts at layer 0)"));
      } else {
        auto fp = pipeline::JobFingerprint(o_, report_.config_json, at::get_num_threads());
        if (!fp.ok()) {
          WorkPlan(absl::StrCat("layer checkpoints: none (cannot fingerprint the job's inputs: ",
                                fp.status().message(), ")"));
        } else {
          fingerprint_ = *fp;
        }
        if (!fingerprint_.empty() && !o_.checkpoint_dir.empty()) {
          checkpoints_ = std::make_unique<pipeline::CheckpointWriter>(o_.checkpoint_dir,
                                                                      fingerprint_);
          WorkPlan(absl::StrCat("layer checkpoints: after every layer, job fingerprint ",
                                fingerprint_.substr(0, 16)));
        }
      }
    }
    report_.weight_format = o_.export_options.real_quantized ? "real_quantized" : "fake_quantized";
    report_.runtimes = RuntimeVerdicts(plan_, config_, o_.export_options.format, &model_->config());
    for (const auto& v : report_.runtimes)
      WorkPlan(absl::StrCat("runtime ", v.runtime, ": ",
                            v.loads ? absl::StrCat("loads (", v.how, ")")
                                    : absl::StrCat("does not load: ", v.breaches.front().layer,
                                                   ": ", v.breaches.front().message)));
    Log(LogSeverity::kInfo, absl::StrCat("model ", model_->config().model_type, ": ",
                                         model_->num_layers(), " layers, hidden ",
                                         model_->config().hidden_size));
    return absl::OkStatus();
  }

  void WorkPlan(const std::string& line) {
    report_.work_plan.push_back(line);
    Log(LogSeverity::kInfo, line);
  }

  // Decides, from the resolved plan and the algorithms, whether calibration activations are
  // needed at all, and says why (or why not) at job start.
  void DecideCalibrationForward() {
    int inputs = 0, outputs = 0, kv = 0;
    for (const auto& e : plan_.layers) {
      if (e.type != "Linear") continue;
      if (IsStatic(e.config.input_tensors)) ++inputs;
      if (IsStatic(e.config.output_tensors)) ++(e.kv_cache ? kv : outputs);
    }
    std::vector<std::string> why;
    for (const auto& a : algorithms_)
      why.push_back(absl::StrCat(a->name(), " (captures the inputs of the linears it quantizes)"));
    auto plural = [](int n) { return absl::StrCat(n, n == 1 ? " linear" : " linears"); };
    if (inputs) why.push_back(absl::StrCat("static input observers of ", plural(inputs)));
    if (outputs) why.push_back(absl::StrCat("static output observers of ", plural(outputs)));
    if (kv) why.push_back(absl::StrCat("static KV-cache observers of ", plural(kv)));
    if (plan_.softmax_quant_spec && IsStatic(TensorSpecs(*plan_.softmax_quant_spec)))
      why.push_back("the static softmax-output observer");
    needs_calib_forward_ = !why.empty();
    if (needs_calib_forward_) {
      WorkPlan(absl::StrCat("calibration forward: needed by ", absl::StrJoin(why, ", ")));
      WorkPlan(o_.error_sample_sequences > 0
                   ? absl::StrCat("output-error statistics: on the first ", o_.error_sample_sequences,
                                  " calibration sequences")
                   : std::string("output-error statistics: off (error_sample_sequences 0)"));
    } else {
      WorkPlan("calibration forward: none (weight-only plan: no algorithm, no static activation "
               "observer; weights are rounded from the checkpoint alone)");
      WorkPlan("output-error statistics: not measured (no calibration forward); weight errors "
               "are reported");
    }
  }

  void Warn(const std::string& w) {
    report_.warnings.push_back(w);
    Log(LogSeverity::kWarning, w);
  }

  // The activation streams a layer hands to the next one (what a checkpoint keeps).
  std::vector<pipeline::NamedStream> CarriedStreams() {
    std::vector<pipeline::NamedStream> s;
    if (!calib_q_.empty()) s.push_back({"calib_q", &calib_q_});
    if (needs_float_calib_ && !calib_f_.empty()) s.push_back({"calib_f", &calib_f_});
    if (!stats_q_.empty()) s.push_back({"stats_q", &stats_q_});
    if (!eval_q_.empty()) s.push_back({"eval_q", &eval_q_});
    if (!eval_f_.empty()) s.push_back({"eval_f", &eval_f_});
    return s;
  }

  // With resume_dir: replays the checkpointed layers into the export, restores the streams and
  // the report, and returns the first layer to run (0 when nothing can be resumed).
  absl::StatusOr<int> Resume() {
    if (o_.resume_dir.empty() || fingerprint_.empty()) return 0;
    const int n = model_->num_layers();
    std::string why;
    pipeline::RestoredCheckpoints r =
        pipeline::ReadCheckpoints(o_.resume_dir, fingerprint_, n, &why);
    if (r.layers_done == 0) {
      Log(LogSeverity::kInfo, absl::StrCat("resume: starting at layer 0 (", why, ")"));
      return 0;
    }
    // Streams first, into copies: a checkpoint that does not fit this run changes nothing.
    std::vector<pipeline::NamedStream> streams = CarriedStreams();
    std::vector<pipeline::Batches> restored;
    for (const pipeline::NamedStream& s : streams) {
      pipeline::Batches copy = *s.batches;
      absl::Status st = pipeline::RestoreStream(*r.streams, s.name, &copy);
      if (!st.ok()) {
        Log(LogSeverity::kWarning,
            absl::StrCat("resume: starting at layer 0 (", st.message(), ")"));
        return 0;
      }
      restored.push_back(std::move(copy));
    }
    for (size_t k = 0; k < streams.size(); ++k) *streams[k].batches = std::move(restored[k]);
    const auto t = Clock::now();
    for (int i = 0; i < r.layers_done; ++i) {
      QUARRY_RETURN_IF_ERROR(Annotate(exporter_->ReplayJournal(*r.journals[i]),
                                      absl::StrCat("replaying the checkpoint of layer ", i)));
      pipeline::LayerReportPart& part = r.reports[i];
      report_.layers.push_back(part.layer);
      for (auto& l : part.linears) report_.linears.push_back(std::move(l));
      for (auto& a : part.algorithm_records) report_.algorithm_records.push_back(std::move(a));
      for (auto& w : part.warnings) report_.warnings.push_back(std::move(w));
    }
    report_.stage_seconds["resume"] += Seconds(t);
    report_.resumed_layers = r.layers_done;
    const std::string msg =
        absl::StrCat("resumed from checkpoint: layers 0-", r.layers_done - 1, " of ", n,
                     " replayed, starting at layer ", r.layers_done);
    Log(LogSeverity::kInfo, msg);
    Progress("resume", r.layers_done, 0.0, msg);
    return r.layers_done;
  }

  absl::Status EmbedStreams() {
    const auto t = Clock::now();
    if (needs_calib_forward_) {
      calib_q_ = pipeline::MakeBatches(calibration_.samples, kBatchTokens);
      QUARRY_RETURN_IF_ERROR(pipeline::EmbedAll(*model_, calib_q_));
      if (needs_float_calib_) calib_f_ = calib_q_;  // tensors are replaced, not mutated, per layer
      if (o_.error_sample_sequences > 0) {
        const size_t k = std::min(calibration_.samples.size(),
                                  static_cast<size_t>(o_.error_sample_sequences));
        std::vector<std::vector<int32_t>> sample(calibration_.samples.begin(),
                                                 calibration_.samples.begin() + k);
        stats_q_ = pipeline::MakeBatches(sample, kBatchTokens);
        QUARRY_RETURN_IF_ERROR(pipeline::EmbedAll(*model_, stats_q_));
      }
    }
    if (!eval_windows_.empty()) {
      eval_f_ = pipeline::MakeBatches(eval_windows_, kBatchTokens);
      QUARRY_RETURN_IF_ERROR(pipeline::EmbedAll(*model_, eval_f_));
      eval_q_ = eval_f_;
    }
    model_->ReleaseEmbeddings();
    for (const auto& name : model_->EmbeddingTensorNames())
      QUARRY_RETURN_IF_ERROR(exporter_->AddOriginal(name));
    report_.stage_seconds["embed"] += Seconds(t);
    return absl::OkStatus();
  }

  const LayerPlanEntry& PlanFor(const std::string& name) {
    const LayerPlanEntry* e = plan_.Find(name);
    if (e == nullptr) {
      static const LayerPlanEntry kNone;
      return kNone;
    }
    return *e;
  }

  static absl::StatusOr<std::unique_ptr<TensorQuantizer>> MakeQuantizer(
      const std::optional<TensorSpecs>& specs) {
    if (!specs) return std::unique_ptr<TensorQuantizer>();
    return TensorQuantizer::Create(specs->specs);
  }

  absl::Status AttachLinear(model::QLinear& l) {
    const LayerPlanEntry& e = PlanFor(l.name);
    QUARRY_ASSIGN_OR_RETURN(l.input_q, MakeQuantizer(e.config.input_tensors));
    QUARRY_ASSIGN_OR_RETURN(l.output_q, MakeQuantizer(e.config.output_tensors));
    QUARRY_ASSIGN_OR_RETURN(l.weight_q, MakeQuantizer(e.config.weight));
    QUARRY_ASSIGN_OR_RETURN(l.bias_q, MakeQuantizer(e.config.bias));
    l.collect_errors = false;  // only on the statistics sample (stats_q_)
    return absl::OkStatus();
  }

  // Rounds the weights (and biases) the algorithms did not handle; records weight errors.
  absl::Status QuantizeWeights(std::vector<model::QLinear*> linears,
                               const std::set<std::string>& done) {
    for (model::QLinear* l : linears) {
      if (l->weight_q) {
        if (!done.count(l->name)) {
          QUARRY_RETURN_IF_ERROR(l->weight_q->Observe(l->float_weight));
          QUARRY_RETURN_IF_ERROR(l->weight_q->Freeze());
          QUARRY_ASSIGN_OR_RETURN(l->weight, l->weight_q->Apply(l->float_weight));
          l->quant_input = l->float_weight;
          method_[l->name] = "rtn";
        }
        const double rel = RelMse(l->weight, l->FloatRef());
        weight_err_[l->name] = rel;
      }
      if (l->bias_q && l->float_bias.defined()) {
        QUARRY_RETURN_IF_ERROR(l->bias_q->Observe(l->float_bias));
        QUARRY_RETURN_IF_ERROR(l->bias_q->Freeze());
        QUARRY_ASSIGN_OR_RETURN(l->bias, l->bias_q->Apply(l->float_bias));
      }
    }
    return absl::OkStatus();
  }

  absl::Status FreezeActivations(model::DecoderLayer& layer) {
    for (model::QLinear* l : layer.linears) {
      if (l->input_q && !l->input_q->frozen()) QUARRY_RETURN_IF_ERROR(l->input_q->Freeze());
      if (l->output_q && !l->output_q->frozen()) QUARRY_RETURN_IF_ERROR(l->output_q->Freeze());
    }
    if (layer.softmax_q && !layer.softmax_q->frozen())
      QUARRY_RETURN_IF_ERROR(layer.softmax_q->Freeze());
    return MergeKvScales(layer);
  }

  // Quark's export merges each layer's k_proj / v_proj output (KV-cache) scales of the
  // kv_cache_group into max(k, v, min_kv_scale); we apply the merged scale already in the
  // quantized forward so evaluation sees what the exported model computes.
  absl::Status MergeKvScales(model::DecoderLayer& layer) {
    if (config_.kv_cache_group.empty()) return absl::OkStatus();
    std::vector<model::QLinear*> members;
    for (model::QLinear* l : layer.linears) {
      bool in_group = false;
      for (const auto& p : config_.kv_cache_group) in_group |= FnMatch(p, l->name);
      if (in_group && l->output_q && !l->output_q->is_dynamic() && l->output_q->params())
        members.push_back(l);
    }
    if (members.empty()) return absl::OkStatus();
    for (model::QLinear* l : members) {
      const auto& spec = l->output_q->stages().front();
      if (spec.qscheme != QSchemeType::kPerTensor || l->output_q->stages().size() != 1 ||
          (l->output_q->params()->zero_point.defined() &&
           l->output_q->params()->zero_point.abs().max().item<double>() != 0)) {
        Warn(absl::StrCat(l->name, ": KV-cache scale not merged (needs a static symmetric "
                                   "per-tensor output spec)"));
        return absl::OkStatus();
      }
    }
    double merged = config_.min_kv_scale;
    for (model::QLinear* l : members)
      merged = std::max(merged, l->output_q->params()->scale.item<double>());
    for (model::QLinear* l : members) {
      QuantParams p;
      p.scale = at::full({}, static_cast<float>(merged), at::kFloat);
      if (l->output_q->params()->zero_point.defined())
        p.zero_point = at::zeros_like(l->output_q->params()->zero_point);
      QUARRY_RETURN_IF_ERROR(l->output_q->SetFrozenParams(std::move(p)));
    }
    return absl::OkStatus();
  }

  absl::Status ProcessLayer(int i) {
    const int n = model_->num_layers();
    report::LayerReport lr;
    lr.index = i;
    const size_t linears_before = report_.linears.size();
    const size_t records_before = report_.algorithm_records.size();
    const size_t warnings_before = report_.warnings.size();
    const auto t_layer = Clock::now();
    auto stage_done = [&](const char* stage, Clock::time_point t0) {
      const double s = Seconds(t0);
      lr.stage_seconds[stage] += s;
      report_.stage_seconds[stage] += s;
    };

    auto t = Clock::now();
    Progress("load", i, 0.0, model_->config().LayerPrefix(i));
    if (!layers_started_) {
      layers_started_ = true;
      layers_start_ = Clock::now();
      bytes_read_at_layers_ = model_->bytes_read();
      bytes_written_at_layers_ = exporter_->bytes_written();
    }
    QUARRY_ASSIGN_OR_RETURN(auto layer, model_->LoadLayer(i));
    // Read-ahead of the next layer's bytes while this one is computed and written (the page
    // cache fills in the background; madvise only queues the reads).
    if (i + 1 < n) model_->weights().WillNeedPrefix(model_->config().LayerPrefix(i + 1) + ".");
    {
      std::vector<at::Tensor> owned;
      for (model::QLinear* l : layer->linears) {
        owned.push_back(l->float_weight);
        owned.push_back(l->float_bias);
      }
      for (const auto& [name, value] : layer->other_params) owned.push_back(value);
      residency_.Register(i, owned);
    }
    for (model::QLinear* l : layer->linears) QUARRY_RETURN_IF_ERROR(AttachLinear(*l));
    if (plan_.softmax_quant_spec) {
      QUARRY_ASSIGN_OR_RETURN(layer->softmax_q,
                              TensorQuantizer::Create({*plan_.softmax_quant_spec}));
    }
    stage_done("load", t);

    // 2. algorithms
    t = Clock::now();
    std::set<std::string> done;
    for (auto& algo : algorithms_) {
      algorithms::LayerContext ctx;
      ctx.model = model_.get();
      ctx.layer = layer.get();
      ctx.plan = &plan_;
      ctx.layer_index = i;
      ctx.num_layers = n;
      ctx.calib_q = &calib_q_;
      ctx.calib_f = needs_float_calib_ ? &calib_f_ : nullptr;
      ctx.observer = obs_;
      ctx.progress = [&, i](const std::string& msg, double f) {
        Progress("algorithm", i, 0.1 + 0.6 * f, absl::StrCat(algo->name(), ": ", msg));
      };
      ctx.log = [&](LogSeverity s, const std::string& m) { Log(s, m); };
      ctx.records = &report_.algorithm_records;
      std::set<std::string> handled, transformed;
      ctx.transformed = &transformed;
      QUARRY_RETURN_IF_ERROR(Annotate(algo->Apply(ctx, &handled), algo->name()));
      for (const auto& h : handled) method_[h] = algo->name();
      for (const auto& h : transformed) method_prefix_[h] += algo->name() + "+";
      done.insert(handled.begin(), handled.end());
      if (obs_->IsCancelled()) return absl::CancelledError(absl::StrCat("cancelled in layer ", i));
    }
    stage_done("algorithm", t);

    // 3. remaining weights by rounding
    t = Clock::now();
    Progress("quantize", i, 0.7, "weights");
    QUARRY_RETURN_IF_ERROR(QuantizeWeights(layer->linears, done));
    stage_done("quantize", t);

    // 4. static activation observers
    t = Clock::now();
    if (HasStaticActivationQuantizer(*layer)) {
      if (!needs_calib_forward_)
        return absl::InternalError("a static activation quantizer without calibration data");
      Progress("calibrate", i, 0.75, "observing activations");
      pipeline::Batches probe = calib_q_;
      QUARRY_RETURN_IF_ERROR(pipeline::ForwardAll(*model_, *layer, probe, PassMode::kObserve));
    }
    QUARRY_RETURN_IF_ERROR(FreezeActivations(*layer));
    stage_done("calibrate", t);

    // 5. quantized forward to the next layer (and the float forward where needed)
    t = Clock::now();
    if (needs_calib_forward_) {
      Progress("forward", i, 0.85, "quantized forward");
      QUARRY_RETURN_IF_ERROR(pipeline::ForwardAll(*model_, *layer, calib_q_, PassMode::kQuantized));
    }
    if (!stats_q_.empty()) {
      for (model::QLinear* l : layer->linears) l->collect_errors = l->weight_q || l->input_q;
      QUARRY_RETURN_IF_ERROR(pipeline::ForwardAll(*model_, *layer, stats_q_, PassMode::kQuantized));
      for (model::QLinear* l : layer->linears) l->collect_errors = false;
    }
    if (needs_float_calib_)
      QUARRY_RETURN_IF_ERROR(pipeline::ForwardAll(*model_, *layer, calib_f_, PassMode::kFloat));
    if (!eval_f_.empty()) {
      // The float stream is always carried: it gives the per-layer drift and the baseline.
      QUARRY_RETURN_IF_ERROR(pipeline::ForwardAll(*model_, *layer, eval_q_, PassMode::kQuantized));
      QUARRY_RETURN_IF_ERROR(pipeline::ForwardAll(*model_, *layer, eval_f_, PassMode::kFloat));
      double num = 0, den = 0;
      for (size_t b = 0; b < eval_f_.hidden.size(); ++b) {
        num += (eval_q_.hidden[b] - eval_f_.hidden[b]).to(at::kDouble).pow(2).sum().item<double>();
        den += eval_f_.hidden[b].to(at::kDouble).pow(2).sum().item<double>();
      }
      lr.hidden_rel_mse = den > 0 ? num / den : 0;
    }
    stage_done("forward", t);

    // 6. export (journalled into the layer's checkpoint)
    t = Clock::now();
    Progress("export", i, 0.95, "writing tensors");
    std::unique_ptr<SafetensorsWriter> journal;
    // The exporter never keeps a pointer to a journal past this block, whatever returns early.
    struct DetachJournal {
      exporter::Exporter* e;
      ~DetachJournal() { e->SetJournal(nullptr); }
    } detach{exporter_.get()};
    if (checkpoints_ != nullptr) {
      auto j = checkpoints_->BeginLayer(i);
      if (j.ok()) {
        journal = std::move(*j);
        exporter_->SetJournal(journal.get());
      } else {
        Warn(absl::StrCat("layer checkpoints stopped: ", j.status().message()));
        checkpoints_.reset();
      }
    }
    for (model::QLinear* l : layer->linears) {
      QUARRY_RETURN_IF_ERROR(exporter_->AddLinear(*l, PlanFor(l->name)));
      RecordLinear(*l);
    }
    for (const auto& [name, value] : layer->other_params)
      QUARRY_RETURN_IF_ERROR(exporter_->AddParam(name, value, layer->changed_params.count(name) > 0));
    // Quark's state-dict name for the attention softmax (prob) quantizer.
    QUARRY_RETURN_IF_ERROR(exporter_->AddQuantizerParams(
        absl::StrCat(model_->config().LayerPrefix(i), ".self_attn"), "prob_output",
        layer->softmax_q.get()));
    if (journal != nullptr) exporter_->SetJournal(nullptr);
    stage_done("export", t);
    lr.seconds = Seconds(t_layer);
    lr.rss_bytes = pipeline::CurrentRssBytes();
    const pipeline::RssFigures rss = pipeline::CurrentRss();
    lr.rss_anon_bytes = rss.anon_bytes;
    lr.rss_file_bytes = rss.file_bytes;
    residency_.Resident();
    if (i + 1 == n) layers_end_ = Clock::now();
    report_.layers.push_back(lr);
    Log(LogSeverity::kInfo,
        absl::StrFormat("layer %d/%d done in %.2f s%s", i + 1, n, lr.seconds,
                        lr.hidden_rel_mse ? absl::StrFormat(" (hidden-state rel. MSE %.3g)",
                                                            *lr.hidden_rel_mse)
                                          : std::string()));
    Progress("layer", i, 1.0);
    if (journal != nullptr) {
      pipeline::LayerReportPart part;
      part.layer = lr;
      part.linears.assign(report_.linears.begin() + linears_before, report_.linears.end());
      part.algorithm_records.assign(report_.algorithm_records.begin() + records_before,
                                    report_.algorithm_records.end());
      part.warnings.assign(report_.warnings.begin() + warnings_before, report_.warnings.end());
      auto files = checkpoints_->CommitLayer(i, n, std::move(journal), CarriedStreams(), part);
      if (files.ok()) {
        obs_->OnLayerCheckpoint(i, o_.checkpoint_dir, *files);
      } else {
        Warn(absl::StrCat("layer checkpoints stopped at layer ", i, ": ",
                          files.status().message()));
        checkpoints_.reset();
      }
    }
    return absl::OkStatus();
  }

  void RecordLinear(const model::QLinear& l) {
    const LayerPlanEntry& e = PlanFor(l.name);
    report::LinearReport r;
    r.name = l.name;
    r.rule = e.matched_rule;
    r.excluded = e.excluded;
    r.weight_spec = DescribeSpecs(e.config.weight);
    r.input_spec = DescribeSpecs(e.config.input_tensors);
    r.output_spec = DescribeSpecs(e.config.output_tensors);
    r.method = l.weight_q ? (method_.count(l.name) ? method_[l.name] : "rtn") : "none";
    if (method_prefix_.count(l.name)) r.method = method_prefix_[l.name] + r.method;
    if (weight_err_.count(l.name)) {
      r.weight_rel_mse = weight_err_[l.name];
      r.weight_sqnr_db = report::SqnrDb(*r.weight_rel_mse);
    }
    if (l.errors.ref_sq > 0) {
      r.output_rel_mse = l.errors.err_sq / l.errors.ref_sq;
      r.output_sqnr_db = report::SqnrDb(*r.output_rel_mse);
    }
    report_.linears.push_back(std::move(r));
  }

  absl::Status ProcessHead() {
    auto t = Clock::now();
    Progress("head", -1, 0, "final norm and lm_head");
    QUARRY_ASSIGN_OR_RETURN(auto head, model_->LoadHead());
    model::QLinear& lm = *head->lm_head;
    QUARRY_RETURN_IF_ERROR(AttachLinear(lm));
    QUARRY_RETURN_IF_ERROR(QuantizeWeights({&lm}, {}));
    if ((lm.input_q && !lm.input_q->is_dynamic()) || (lm.output_q && !lm.output_q->is_dynamic())) {
      for (const auto& h : calib_q_.hidden) {
        for (int64_t r = 0; r < h.size(0); ++r) {  // one row at a time: logits are vocab-wide
          QUARRY_RETURN_IF_ERROR(head->Forward(h.narrow(0, r, 1), PassMode::kObserve).status());
        }
      }
    }
    if (lm.input_q && !lm.input_q->frozen()) QUARRY_RETURN_IF_ERROR(lm.input_q->Freeze());
    if (lm.output_q && !lm.output_q->frozen()) QUARRY_RETURN_IF_ERROR(lm.output_q->Freeze());
    lm.collect_errors = false;
    if (!eval_f_.empty()) {
      Progress("eval", -1, 0, "perplexity");
      int64_t scored = 0;
      QUARRY_ASSIGN_OR_RETURN(auto nq, pipeline::SequenceNll(*head, eval_q_, PassMode::kQuantized, &scored));
      PerplexityResult rq = SummarizeNll(nq, scored);
      result_.perplexity_quantized = rq.perplexity;
      report_.ppl_quantized = rq.perplexity;
      report_.eval_tokens = scored;
      if (o_.eval->float_baseline) {
        QUARRY_ASSIGN_OR_RETURN(auto nf, pipeline::SequenceNll(*head, eval_f_, PassMode::kFloat, &scored));
        PerplexityResult rf = SummarizeNll(nf, scored);
        result_.perplexity_float = rf.perplexity;
        report_.ppl_float = rf.perplexity;
      }
      Log(LogSeverity::kInfo,
          absl::StrFormat("perplexity: float %s, quantized %.4f (%d scored tokens)",
                          result_.perplexity_float ? absl::StrFormat("%.4f", *result_.perplexity_float)
                                                   : std::string("-"),
                          *result_.perplexity_quantized, scored));
    }
    if (head->tied && !lm.weight_q && !lm.input_q && !lm.output_q) {
      // A tied, unquantized lm_head is the embedding: nothing to write.
    } else {
      if (head->tied) exporter_->UntieWordEmbeddings();
      QUARRY_RETURN_IF_ERROR(exporter_->AddLinear(lm, PlanFor("lm_head")));
    }
    RecordLinear(lm);
    for (const auto& [name, value] : head->other_params)
      QUARRY_RETURN_IF_ERROR(exporter_->AddOriginal(name));
    report_.stage_seconds["head"] += Seconds(t);
    return absl::OkStatus();
  }

  absl::StatusOr<QuantizeResult> Finish() {
    auto t = Clock::now();
    Progress("export", -1, 0, "writing files");
    for (const auto& w : exporter_->warnings()) Warn(w);
    QUARRY_ASSIGN_OR_RETURN(result_.files, exporter_->Finish());
    report_.stage_seconds["finish"] += Seconds(t);
    result_.seconds = Seconds(start_);
    result_.peak_rss_bytes = static_cast<uint64_t>(pipeline::PeakRssBytes());
    report_.total_seconds = result_.seconds;
    report_.peak_rss_bytes = static_cast<double>(result_.peak_rss_bytes);
    rss_->SampleNow();
    report_.peak_rss_anon_bytes = rss_->peak_anon_bytes();
    report_.peak_rss_file_bytes = rss_->peak_file_bytes();
    result_.peak_rss_anon_bytes = static_cast<uint64_t>(report_.peak_rss_anon_bytes);
    report_.max_resident_layers = residency_.peak();
    report_.bytes_read = static_cast<double>(model_->bytes_read());
    report_.bytes_written = static_cast<double>(exporter_->bytes_written());
    report_.calibration_forward = needs_calib_forward_;
    report_.layer_forwards = pipeline::LayerForwards() - forwards_at_start_;
    if (o_.export_options.write_report) {
      QUARRY_RETURN_IF_ERROR(report::WriteReport(report_, o_.output_dir));
      result_.files.push_back("report.json");
      result_.files.push_back("report.html");
    }
    Log(LogSeverity::kInfo,
        absl::StrFormat("done in %.1f s, peak RSS %.0f MiB (anonymous %.0f MiB, file-backed "
                        "%.0f MiB), read %s, wrote %s, at most %d decoder layer(s) resident",
                        result_.seconds, report_.peak_rss_bytes / (1 << 20),
                        report_.peak_rss_anon_bytes / (1 << 20),
                        report_.peak_rss_file_bytes / (1 << 20), HumanBytes(report_.bytes_read),
                        HumanBytes(report_.bytes_written), report_.max_resident_layers));
    Progress("done", -1, 1.0);
    return result_;
  }

  static constexpr int64_t kBatchTokens = 8192;

  const QuantizeOptions& o_;
  Config config_;  // o_.config as the export format adapts it (AdaptConfigToFormat)
  JobObserver null_observer_;
  JobObserver* obs_;
  Clock::time_point start_;
  std::unique_ptr<model::CausalLM> model_;
  LayerPlan plan_;
  std::vector<std::unique_ptr<algorithms::LayerAlgorithm>> algorithms_;
  bool needs_float_calib_ = false;
  bool needs_calib_forward_ = false;
  std::unique_ptr<pipeline::RssSampler> rss_;
  pipeline::LayerResidencyTracker residency_;
  bool layers_started_ = false;
  Clock::time_point layers_start_, layers_end_;
  uint64_t bytes_read_at_layers_ = 0, bytes_written_at_layers_ = 0;  // at the first layer
  int64_t forwards_at_start_ = 0;
  std::unique_ptr<Tokenizer> tokenizer_;
  CalibrationSet calibration_;
  std::vector<std::vector<int32_t>> eval_windows_;
  pipeline::Batches calib_q_, calib_f_, stats_q_, eval_f_, eval_q_;
  std::unique_ptr<exporter::Exporter> exporter_;
  std::map<std::string, std::string> method_;
  std::map<std::string, std::string> method_prefix_;  // "awq+" for weights an algorithm scaled
  std::map<std::string, double> weight_err_;
  report::RunReport report_;
  QuantizeResult result_;
  std::string fingerprint_;  // with checkpoint_dir / resume_dir (pipeline/layer_checkpoint.h)
  std::unique_ptr<pipeline::CheckpointWriter> checkpoints_;
};

}  // namespace

absl::StatusOr<QuantizeResult> QuantizeModel(const QuantizeOptions& options, JobObserver* observer) {
  Runner runner(options, observer);
  return CatchExceptions("quantize", [&] { return runner.Run(); });
}

}  // namespace quarry
