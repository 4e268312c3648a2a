// quarry tensor quantize | dequantize | gptq | qronos: tensor-level tools on safetensors files.
#include <cstdio>

#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "quarry/synthetic_model.h"
#include "quarry/tensor_tool.h"

namespace quarry::cli {

void AddTensorCommands(CLI::App& app, GlobalOptions& global) {
  CLI::App* tensor = app.add_subcommand("tensor", "Quantize tensors in safetensors files and run "
                                                  "GPTQ/Qronos on one layer");
  tensor->require_subcommand(1);
  {
    auto* sub = tensor->add_subcommand(
        "synth-model", "Write a random-weight Llama checkpoint of a given shape (default: "
                       "Llama-3-8B's) for measuring the pipeline at scale");
    static SyntheticModelOptions o;
    sub->add_option("--out", o.output_dir, "Output model directory")->required();
    sub->add_option("--tokenizer-from", o.tokenizer_from,
                    "Model directory whose tokenizer files are copied")->required();
    sub->add_option("--hidden", o.hidden_size, "hidden_size")->capture_default_str();
    sub->add_option("--ffn", o.intermediate_size, "intermediate_size")->capture_default_str();
    sub->add_option("--layers", o.num_layers, "num_hidden_layers")->capture_default_str();
    sub->add_option("--heads", o.num_heads, "num_attention_heads")->capture_default_str();
    sub->add_option("--kv-heads", o.num_kv_heads, "num_key_value_heads")->capture_default_str();
    sub->add_option("--vocab", o.vocab_size, "vocab_size (0 = the tokenizer's)")
        ->capture_default_str();
    sub->add_option("--seed", o.seed, "Seed of the weights")->capture_default_str();
    sub->add_option("--max-shard-bytes", o.max_shard_bytes, "Shard size")->capture_default_str();
    sub->callback([&global] {
      auto r = WriteSyntheticModel(o);
      if (!r.ok()) Fail(r.status());
      if (global.json)
        std::printf("{\"parameters\": %llu, \"bytes\": %llu, \"shards\": %d, \"seconds\": %.1f}\n",
                    static_cast<unsigned long long>(r->parameters),
                    static_cast<unsigned long long>(r->bytes), r->shards, r->seconds);
      else
        std::printf("%s: %.2fB parameters, %.2f GB in %d shard(s), %.1f s\n", o.output_dir.c_str(),
                    r->parameters / 1e9, r->bytes / 1e9, r->shards, r->seconds);
    });
  }
  {
    auto* sub = tensor->add_subcommand("quantize", "Apply a QuantizationSpec (Quark JSON dict) to "
                                                   "every float tensor of a safetensors file");
    static TensorQuantizeOptions o;
    static std::string spec_file;
    static bool fake = false, real = false, order = false;
    sub->add_option("--spec", spec_file, "QuantizationSpec JSON file (a dict; a list of two for "
                                         "two-stage fake quantization)")->required();
    auto* f = sub->add_flag("--fake", fake, "Write fake-quantized values (the input's dtype)");
    auto* r = sub->add_flag("--real", real, "Write packed codes plus <name>_scale / "
                                            "<name>_zero_point (and <name>_shape when packed)");
    f->excludes(r);
    sub->add_option("--input", o.input, "Input safetensors (float32/bfloat16/float16)")->required();
    sub->add_option("--output", o.output, "Output safetensors")->required();
    sub->add_flag("--pack-order", order, "Plain int4 nibble order instead of Quark's reorder");
    sub->callback([&global] {
      if (!fake && !real) Fail(absl::InvalidArgumentError("give --fake or --real"));
      o.spec_json = ReadFileOrDie(spec_file);
      o.real = real;
      o.pack_reorder = !order;
      auto lines = QuantizeTensorFile(o);
      if (!lines.ok()) Fail(lines.status());
      if (!global.json)
        for (const auto& l : *lines) std::printf("%s\n", l.c_str());
      else
        std::printf("{\"tensors\": %zu, \"output\": \"%s\"}\n", lines->size(), o.output.c_str());
    });
  }
  {
    auto* sub = tensor->add_subcommand("dequantize", "Reverse `quarry tensor quantize --real`");
    static TensorDequantizeOptions o;
    static std::string spec_file;
    static bool order = false;
    sub->add_option("--spec", spec_file, "The QuantizationSpec used to quantize")->required();
    sub->add_option("--input", o.input, "Safetensors written by quantize --real")->required();
    sub->add_option("--output", o.output, "Output safetensors")->required();
    sub->add_option("--dtype", o.dtype, "Output dtype: float32, bfloat16 or float16")
        ->capture_default_str();
    sub->add_flag("--pack-order", order, "Codes were packed in plain int4 order");
    sub->callback([&global] {
      o.spec_json = ReadFileOrDie(spec_file);
      o.pack_reorder = !order;
      auto lines = DequantizeTensorFile(o);
      if (!lines.ok()) Fail(lines.status());
      if (!global.json)
        for (const auto& l : *lines) std::printf("%s\n", l.c_str());
    });
  }
  for (const char* algo : {"gptq", "qronos"}) {
    const bool is_gptq = std::string(algo) == "gptq";
    auto* sub = tensor->add_subcommand(
        algo, is_gptq ? "GPTQ on one linear layer: W [out, in] and calibration inputs X [n, in]"
                      : "Qronos on one linear layer (X: quantized-model inputs; optional "
                        "inputs_float: the float model's)");
    auto* o = new LayerAlgorithmOptions();  // lives for the process
    auto* spec_file = new std::string();
    auto* algo_file = new std::string();
    o->algorithm = algo;
    sub->add_option("--weight", o->weight_path, "Safetensors holding `weight` [out, in]")->required();
    sub->add_option("--inputs", o->inputs_path, "Safetensors holding `inputs` [n, in]")->required();
    sub->add_option("--spec", *spec_file, "Weight QuantizationSpec (Quark JSON dict)")->required();
    sub->add_option("--algo", *algo_file, is_gptq ? "GPTQConfig JSON (default: the seed's defaults)"
                                                 : "QronosConfig JSON (default: the seed's defaults)");
    sub->add_option("--output", o->output, "Output safetensors with `weight` (fake-quantized)")
        ->required();
    sub->callback([o, spec_file, algo_file, &global] {
      o->spec_json = ReadFileOrDie(*spec_file);
      o->algo_json = algo_file->empty() ? "" : ReadFileOrDie(*algo_file);
      auto r = RunLayerAlgorithm(*o);
      if (!r.ok()) Fail(r.status());
      if (global.json) {
        std::printf("{\"algorithm\": \"%s\", \"error\": %.10g, \"error_rtn\": %.10g, "
                    "\"hessian_seconds\": %.4f, \"quant_seconds\": %.4f, \"damp_retries\": %d}\n",
                    o->algorithm.c_str(), r->error_algorithm, r->error_rtn, r->hessian_seconds,
                    r->quant_seconds, r->damp_retries);
      } else {
        std::printf("||XW^T - XQ^T||^2: %s %.6g, RTN %.6g (ratio %.4f); Hessian %.3f s, "
                    "quantization %.3f s over %lld rows\n",
                    o->algorithm.c_str(), r->error_algorithm, r->error_rtn,
                    r->error_rtn > 0 ? r->error_algorithm / r->error_rtn : 0.0, r->hessian_seconds,
                    r->quant_seconds, static_cast<long long>(r->rows));
      }
    });
  }
}

}  // namespace quarry::cli
