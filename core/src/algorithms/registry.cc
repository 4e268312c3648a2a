#include "absl/strings/str_cat.h"
#include "algorithms/algorithm.h"

namespace quarry::algorithms {

absl::StatusOr<std::vector<std::unique_ptr<LayerAlgorithm>>> CreateAlgorithms(const Config& config) {
  std::vector<std::unique_ptr<LayerAlgorithm>> out;
  if (!config.algo_config) return out;
  for (const AlgoConfig& a : *config.algo_config) {
    return absl::UnimplementedError(absl::StrCat(
        "algorithm '", AlgoName(a), "' is not implemented in this version of Quarry"));
  }
  return out;
}

}  // namespace quarry::algorithms
