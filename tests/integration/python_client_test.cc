// Python interoperability: stubs generated from the protos with Debian's protoc and
// grpc_python_plugin, run by /usr/bin/python3 with Debian's python3-grpcio / python3-protobuf,
// submit, watch (with a disconnect and resume) and download a job from a real server and worker.
#include <sys/wait.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service_harness.h"

namespace quarry::testing {
namespace {

namespace v1 = ::quarry::v1;

int RunShell(const std::string& cmd) {
  int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(PythonClient, GeneratedStubsSubmitWatchAndDownload) {
  TempDir dir("python");
  const std::string stubs = dir.path() + "/stubs";
  std::filesystem::create_directories(stubs);
  const std::string proto_dir = std::string(QUARRY_SOURCE_DIR) + "/proto";
  const std::string gen = absl::StrCat(
      "/usr/bin/protoc -I ", proto_dir, " --python_out=", stubs, " --grpc_python_out=", stubs,
      " --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin quarry/v1/config.proto "
      "quarry/v1/jobs.proto quarry/v1/worker.proto > ", dir.path(), "/protoc.log 2>&1");
  ASSERT_EQ(RunShell(gen), 0) << ReadFile(dir.path() + "/protoc.log");
  ASSERT_TRUE(std::filesystem::exists(stubs + "/quarry/v1/jobs_pb2_grpc.py"));

  ServerProcess server = StartServer(dir.path() + "/data", {"--model-root", TestDataDir()});
  auto worker = StartWorker(server.address, "w1", dir.path() + "/w1.log");
  const std::string out = dir.path() + "/out";
  const std::string log = dir.path() + "/python.log";
  const std::string cmd = absl::StrCat(
      "/usr/bin/python3 ", QUARRY_SOURCE_DIR, "/tests/integration/python/mlops_client.py",
      " --stubs ", stubs, " --server ", server.address, " --model ", TinyModel(), " --calib ",
      CalibrationFile(), " --out ", out, " > ", log, " 2>&1");
  ASSERT_EQ(RunShell(cmd), 0) << ReadFile(log) << "\nworker:\n" << worker->Log();
  const std::string output = ReadFile(log);
  ASSERT_TRUE(absl::StrContains(output, "\"summary\"")) << output;

  // The C++ client sees the job Python submitted, with the artifacts Python downloaded.
  auto c = NewClient(server.address);
  v1::ListJobsRequest req;
  req.set_label_selector("platform=mlops-test");
  auto jobs = c->ListJobs(req);
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->size(), 1u) << "the repeated request_id did not create a second job";
  const v1::Job& job = (*jobs)[0];
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_TRUE(absl::StrContains(output, absl::StrCat("\"events\": ", job.last_event_seq())))
      << output;
  ASSERT_GT(job.artifacts_size(), 0);
  for (const auto& a : job.artifacts())
    EXPECT_EQ(Sha256OfFile(out + "/" + a.name()), a.sha256()) << a.name();
}

}  // namespace
}  // namespace quarry::testing
