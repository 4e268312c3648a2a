// Fuzzes Quark's JSON config reader (core/src/config/config_json.cc): ConfigFromJson (strict,
// and with allow_unknown_keys when the input's first byte is odd), SpecFromJson,
// TensorSpecsFromJson and AlgoConfigFromJson on the same text. What config_json.h promises is
// checked: a config read back from ConfigToJson gives the same JSON byte for byte (fixed point),
// and validation of whatever was read returns rather than crashes.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "quarry/config_json.h"
#include "quarry/config_validate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view json = quarry::fuzz::AsView(data, size);
  quarry::JsonReadOptions options;
  options.allow_unknown_keys = size > 0 && (data[0] & 1) != 0;
  std::vector<std::string> warnings;
  auto config = quarry::ConfigFromJson(json, options, &warnings);
  if (config.ok()) {
    const std::string once = quarry::ConfigToJson(*config);
    auto again = quarry::ConfigFromJson(once);
    if (!again.ok()) {
      std::fprintf(stderr, "ConfigToJson output does not read back: %s\n%s\n",
                   again.status().ToString().c_str(), once.c_str());
      std::abort();
    }
    const std::string twice = quarry::ConfigToJson(*again);
    if (twice != once) {
      std::fprintf(stderr, "ConfigToJson is not a fixed point:\n%s\n---\n%s\n", once.c_str(),
                   twice.c_str());
      std::abort();
    }
    (void)quarry::ValidateConfig(*config);
  }
  auto spec = quarry::SpecFromJson(json, options);
  if (spec.ok()) (void)quarry::SpecToJson(*spec);
  (void)quarry::TensorSpecsFromJson(json, options);
  auto algo = quarry::AlgoConfigFromJson(json, options);
  if (algo.ok()) (void)quarry::AlgoConfigToJson(*algo);
  return 0;
}
