#include "absl/strings/str_cat.h"
#include "algorithms/algorithm.h"

namespace quarry::algorithms {

std::unique_ptr<LayerAlgorithm> MakeGptq(const GPTQConfig& c);
std::unique_ptr<LayerAlgorithm> MakeQronos(const QronosConfig& c);

absl::StatusOr<std::vector<std::unique_ptr<LayerAlgorithm>>> CreateAlgorithms(const Config& config) {
  std::vector<std::unique_ptr<LayerAlgorithm>> out;
  if (!config.algo_config) return out;
  for (const AlgoConfig& a : *config.algo_config) {
    if (const auto* g = std::get_if<GPTQConfig>(&a)) {
      out.push_back(MakeGptq(*g));
    } else if (const auto* q = std::get_if<QronosConfig>(&a)) {
      out.push_back(MakeQronos(*q));
    } else {
      return absl::UnimplementedError(absl::StrCat(
          "algorithm '", AlgoName(a), "' is not implemented in this version of Quarry "
          "(implemented: gptq, qronos); remove it from algo_config"));
    }
  }
  return out;
}

}  // namespace quarry::algorithms
