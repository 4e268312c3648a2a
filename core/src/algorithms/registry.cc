#include "absl/strings/str_cat.h"
#include "algorithms/algorithm.h"

namespace quarry::algorithms {

std::unique_ptr<LayerAlgorithm> MakeGptq(const GPTQConfig& c);
std::unique_ptr<LayerAlgorithm> MakeQronos(const QronosConfig& c);
std::unique_ptr<LayerAlgorithm> MakeSmoothQuant(const SmoothQuantConfig& c);
std::unique_ptr<LayerAlgorithm> MakeAutoSmoothQuant(const AutoSmoothQuantConfig& c);
std::unique_ptr<LayerAlgorithm> MakeAwq(const AWQConfig& c);

absl::StatusOr<std::vector<std::unique_ptr<LayerAlgorithm>>> CreateAlgorithms(const Config& config) {
  std::vector<std::unique_ptr<LayerAlgorithm>> out;
  if (!config.algo_config) return out;
  for (const AlgoConfig& a : *config.algo_config) {
    if (const auto* g = std::get_if<GPTQConfig>(&a)) {
      out.push_back(MakeGptq(*g));
    } else if (const auto* q = std::get_if<QronosConfig>(&a)) {
      out.push_back(MakeQronos(*q));
    } else if (const auto* sq = std::get_if<SmoothQuantConfig>(&a)) {
      out.push_back(MakeSmoothQuant(*sq));
    } else if (const auto* asq = std::get_if<AutoSmoothQuantConfig>(&a)) {
      out.push_back(MakeAutoSmoothQuant(*asq));
    } else if (const auto* awq = std::get_if<AWQConfig>(&a)) {
      out.push_back(MakeAwq(*awq));
    } else {
      return absl::UnimplementedError(absl::StrCat(
          "algorithm '", AlgoName(a), "' is not implemented in this version of Quarry "
          "(implemented: gptq, qronos, smoothquant, autosmoothquant, awq); remove it from algo_config"));
    }
  }
  return out;
}

}  // namespace quarry::algorithms
