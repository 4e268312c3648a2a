#include "quarry/quant_config.h"

#include <algorithm>

namespace quarry {

absl::string_view AlgoName(const AlgoConfig& algo) {
  return std::visit([](const auto& a) -> absl::string_view { return a.name; }, algo);
}

namespace {
// Quark 0.10's observer sets (quark/torch/quantization/observer/__init__.py).
constexpr absl::string_view kPerTensor[] = {
    "PerTensorMinMaxObserver",     "PerTensorPowOf2MinMaxObserver",
    "PerTensorPowOf2MinMSEObserver", "PerTensorHistogramObserver",
    "PerTensorHistogramObserverPro", "PerTensorPercentileObserver",
    "PerTensorMSEObserver",        "TQTObserver",
    "LSQObserver"};
constexpr absl::string_view kPerChannel[] = {"PerChannelMinMaxObserver",
                                            "PerChannelPowOf2MinMaxObserver",
                                            "PerChannelPowOf2MinMSEObserver", "LSQObserver"};
constexpr absl::string_view kPerGroup[] = {"PerBlockMXObserver", "PerBlockMXDiffsObserver",
                                          "PerBlockBFPObserver", "PerGroupMinMaxObserver"};

template <size_t N>
bool In(const absl::string_view (&set)[N], absl::string_view v) {
  return std::find(std::begin(set), std::end(set), v) != std::end(set);
}
}  // namespace

const std::vector<absl::string_view>& KnownObserverClasses() {
  static const std::vector<absl::string_view> all = [] {
    std::vector<absl::string_view> v = {"PlaceholderObserver"};
    for (auto s : kPerTensor) v.push_back(s);
    for (auto s : kPerChannel)
      if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
    for (auto s : kPerGroup) v.push_back(s);
    return v;
  }();
  return all;
}

bool IsPerTensorObserver(absl::string_view cls) { return In(kPerTensor, cls); }
bool IsPerChannelObserver(absl::string_view cls) { return In(kPerChannel, cls); }
bool IsPerGroupObserver(absl::string_view cls) { return In(kPerGroup, cls); }

}  // namespace quarry
