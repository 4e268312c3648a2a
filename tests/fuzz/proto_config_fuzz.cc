// Fuzzes the proto -> core conversion: the input is a serialized quarry.v1.JobAssignment (what a
// worker receives); inputs that do not parse are skipped. Runs the worker's seam
// (worker/src/job_options.cc BuildQuantizeOptions, which converts the resolved Config through
// proto/convert/config_convert.cc), the server's conversions of the JobSpec's config and
// extra_algo_config (server/src/jobs/spec_resolver.cc), and checks the round trip a client relies
// on: a converted Config written back with ToProto converts again to the same Quark JSON.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <google/protobuf/stubs/logging.h>

#include "absl/strings/str_cat.h"
#include "convert/config_convert.h"
#include "fuzz_util.h"
#include "job_options.h"
#include "quarry/config_json.h"
#include "quarry/config_validate.h"
#include "quarry/v1/worker.pb.h"

namespace {

void CheckRoundTrip(const quarry::Config& config) {
  const std::string json = quarry::ConfigToJson(config);
  auto back = quarry::convert::FromProto(quarry::convert::ToProto(config));
  if (!back.ok()) {
    std::fprintf(stderr, "ToProto output does not convert back: %s\n%s\n",
                 back.status().ToString().c_str(), json.c_str());
    std::abort();
  }
  const std::string json2 = quarry::ConfigToJson(*back);
  if (json2 != json) {
    std::fprintf(stderr, "proto round trip changed the config:\n%s\n---\n%s\n", json.c_str(),
                 json2.c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // libprotobuf logs every string field that is not UTF-8; at fuzzing rates that is most of
  // the time spent. ParseFromArray still rejects such input.
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)quiet;
  quarry::v1::JobAssignment a;
  if (!a.ParseFromArray(data, static_cast<int>(size))) return 0;
  std::vector<std::string> warnings;
  auto options = quarry::worker::BuildQuantizeOptions(
      a, {"/nonexistent/model", "", a.eval_path()}, "/nonexistent/out", "cpu", 1, &warnings);
  if (options.ok()) {
    (void)quarry::worker::DescribeOptions(*options);
    (void)quarry::ValidateConfig(options->config);
    CheckRoundTrip(options->config);
  }
  if (a.spec().has_config()) {
    auto c = quarry::convert::FromProto(a.spec().config());
    if (c.ok()) CheckRoundTrip(*c);
  }
  for (int i = 0; i < a.spec().extra_algo_config_size(); ++i)
    (void)quarry::convert::FromProto(a.spec().extra_algo_config(i),
                                     absl::StrCat("extra_algo_config[", i, "]"));
  return 0;
}
