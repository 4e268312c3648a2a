// Tenant quotas and limits (issue 17 part 3): real quarry-server / quarry-worker processes on
// loopback with a token file and a --tenant-quotas file. What a client sees when it passes a
// limit (RESOURCE_EXHAUSTED naming the limit and where it was set), how deleting a job or an
// upload gives the space back, the quota reload on SIGHUP, the per-tenant metrics and their
// bounded labels, and the audit rows of each.
#include <signal.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "quarry/client/client.h"
#include "security_helpers.h"
#include "service_harness.h"

namespace quarry::testing {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::quarry::v1;

void ExpectExhausted(const absl::Status& st, const std::vector<std::string>& parts) {
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  for (const std::string& p : parts) EXPECT_TRUE(absl::StrContains(st.message(), p)) << p << ": " << st;
}

bool Reloaded(client::Client& admin, int times) {
  int n = 0;
  for (const auto& r : AuditRows(admin, "reload")) n += r.target() == "quotas" && r.code() == "OK";
  return n >= times;
}

TEST(Quotas, JobUploadAndRequestLimitsPerTenantWithDeleteAndReload) {
  TempDir dir("quota_jobs");
  WriteText(dir.path() + "/tokens", BaseTokenFile());
  const uint64_t calib_bytes = fs::file_size(CalibrationFile());
  const std::string quotas = dir.path() + "/quotas";
  // Line 2 is tenant a's; b gets the flag defaults.
  WriteText(quotas, absl::StrCat("# tenant quotas\n", "tenant=a max_jobs=1 max_upload_bytes=",
                                 calib_bytes + calib_bytes / 2, "\n"));
  std::vector<std::string> flags = Roots();
  for (const std::string& f :
       {std::string("--auth-tokens"), dir.path() + "/tokens", std::string("--tenant-quotas"),
        quotas, std::string("--tenant-max-jobs"), std::string("2"),
        std::string("--metrics-listen"), std::string("127.0.0.1:0"),
        std::string("--metrics-max-tenants"), std::string("1"),
        std::string("--max-message-bytes"), std::string("2097152")})
    flags.push_back(f);
  ServerProcess s = StartServer(dir.path() + "/server", flags);
  ASSERT_FALSE(s.address.empty());
  auto admin = Client(s.address, kAdmin);
  auto alice = Client(s.address, kAlice);
  auto bob = Client(s.address, kBob);

  // max_jobs: a has 1 (the file, line 2), b the default 2 (--tenant-max-jobs). No worker runs,
  // so the jobs stay queued.
  auto a1 = alice->SubmitJob(TinyJob());
  ASSERT_TRUE(a1.ok()) << a1.status();
  ExpectExhausted(alice->SubmitJob(TinyJob()).status(),
                  {"quota: tenant 'a' has 1 jobs queued or running", "its limit is 1",
                   absl::StrCat(quotas, " line 2"), "cancel one"});
  ASSERT_TRUE(bob->SubmitJob(TinyJob()).ok());
  ASSERT_TRUE(bob->SubmitJob(TinyJob()).ok());
  ExpectExhausted(bob->SubmitJob(TinyJob()).status(),
                  {"tenant 'b' has 2 jobs", "its limit is 2 (--tenant-max-jobs)"});
  // A finished (cancelled) job no longer counts.
  ASSERT_TRUE(alice->CancelJob(a1->id()).ok());
  auto a2 = alice->SubmitJob(TinyJob());
  ASSERT_TRUE(a2.ok()) << a2.status();

  // max_upload_bytes: one calibration file fits, a second does not until the first is deleted.
  auto up1 = alice->UploadDataset(CalibrationFile());
  ASSERT_TRUE(up1.ok()) << up1.status();
  ExpectExhausted(alice->UploadDataset(CalibrationFile()).status(),
                  {"quota: tenant 'a' keeps", "dataset upload would keep",
                   absl::StrCat(quotas, " line 2"), "quarry delete-upload"});
  // Deleting: not another tenant's (NOT_FOUND), not without the cancel role, not while a
  // queued job uses it.
  EXPECT_EQ(bob->DeleteUpload(up1->id()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Client(s.address, kReader)->DeleteUpload(up1->id()).status().code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(alice->CancelJob(a2->id()).ok());
  v1::JobSpec uses = TinyJob();
  uses.mutable_calibration()->set_uploaded_dataset_id(up1->id());
  auto a3 = alice->SubmitJob(uses);
  ASSERT_TRUE(a3.ok()) << a3.status();
  auto busy = alice->DeleteUpload(up1->id());
  EXPECT_EQ(busy.status().code(), absl::StatusCode::kFailedPrecondition) << busy.status();
  EXPECT_TRUE(absl::StrContains(busy.status().message(), a3->id())) << busy.status();
  // Nor a job that has not finished.
  auto running = alice->DeleteJob(a3->id());
  EXPECT_EQ(running.status().code(), absl::StatusCode::kFailedPrecondition) << running.status();
  EXPECT_TRUE(absl::StrContains(running.status().message(), "cancel it first")) << running.status();
  ASSERT_TRUE(alice->CancelJob(a3->id()).ok());
  auto freed = alice->DeleteUpload(up1->id());
  ASSERT_TRUE(freed.ok()) << freed.status();
  EXPECT_EQ(*freed, calib_bytes);
  EXPECT_FALSE(fs::exists(dir.path() + "/server/uploads/" + up1->id()));
  auto up2 = alice->UploadDataset(CalibrationFile());
  ASSERT_TRUE(up2.ok()) << up2.status();
  // A finished job can be deleted: gone for its owner, as if it never existed.
  ASSERT_TRUE(alice->DeleteJob(a1->id()).ok());
  EXPECT_EQ(alice->GetJob(a1->id()).status().code(), absl::StatusCode::kNotFound);

  // Per-request size: a message over --max-message-bytes is refused by gRPC.
  v1::JobSpec huge = TinyJob();
  (*huge.mutable_labels())["blob"] = std::string(3 << 20, 'x');
  EXPECT_EQ(alice->SubmitJob(huge).status().code(), absl::StatusCode::kResourceExhausted);

  // Metrics per tenant; with --metrics-max-tenants 1, "a" keeps its label and the others are
  // summed as "_other" (tenant b's 2 queued jobs; admin's tenant "ops" has none).
  const std::string m = ScrapeMetrics(s.metrics_address);
  EXPECT_EQ(MetricValue(m, "quarry_tenant_jobs{tenant=\"a\",state=\"cancelled\"}"), 2) << m;
  EXPECT_EQ(MetricValue(m, "quarry_tenant_jobs{tenant=\"_other\",state=\"queued\"}"), 2) << m;
  EXPECT_EQ(MetricValue(m, "quarry_tenant_stored_bytes{tenant=\"a\",kind=\"upload\"}"),
            static_cast<double>(calib_bytes))
      << m;
  EXPECT_EQ(MetricValue(m, "quarry_tenant_jobs{tenant=\"b\",state=\"queued\"}"), -1) << m;

  // The quota file reloads on SIGHUP: a may now run 3 jobs at once.
  WriteText(quotas, absl::StrCat("tenant=a max_jobs=3 max_upload_bytes=", 2 * calib_bytes + 10,
                                 "\n"));
  s.process->Signal(SIGHUP);
  ASSERT_TRUE(AwaitCondition([&] { return Reloaded(*admin, 1); }, std::chrono::seconds(20)));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(alice->SubmitJob(TinyJob()).ok()) << i;
  ExpectExhausted(alice->SubmitJob(TinyJob()).status(), {"its limit is 3"});
  // A bad file keeps the old quotas (and says why in the audit log).
  WriteText(quotas, "tenant=a max_jobs=lots\n");
  s.process->Signal(SIGHUP);
  ASSERT_TRUE(AwaitCondition(
      [&] { return HasRow(AuditRows(*admin, "reload"), "", "quotas", "INVALID_ARGUMENT"); },
      std::chrono::seconds(20)));
  ExpectExhausted(alice->SubmitJob(TinyJob()).status(), {"its limit is 3"});

  // Audit rows for the refusals and the deletions.
  auto submits = AuditRows(*admin, "submit");
  EXPECT_TRUE(HasRow(submits, "a", "", "RESOURCE_EXHAUSTED")) << Describe(submits);
  EXPECT_TRUE(HasRow(submits, "b", "", "RESOURCE_EXHAUSTED")) << Describe(submits);
  EXPECT_TRUE(HasRow(AuditRows(*admin, "upload"), "a", "", "RESOURCE_EXHAUSTED"));
  auto deletes = AuditRows(*admin, "delete_upload");
  EXPECT_TRUE(HasRow(deletes, "a", up1->id(), "OK")) << Describe(deletes);
  EXPECT_TRUE(HasRow(deletes, "a", up1->id(), "FAILED_PRECONDITION")) << Describe(deletes);
  EXPECT_TRUE(HasRow(deletes, "b", up1->id(), "NOT_FOUND")) << Describe(deletes);
  EXPECT_TRUE(HasRow(AuditRows(*admin, "delete"), "a", a1->id(), "OK"));
}

TEST(Quotas, ArtifactQuotaFailsTheJobNamingTheLimitAndDeleteFreesIt) {
  TempDir dir("quota_artifacts");
  WriteText(dir.path() + "/tokens", BaseTokenFile());
  const std::string quotas = dir.path() + "/quotas";
  WriteText(quotas, "");
  std::vector<std::string> flags = Roots();
  for (const std::string& f : {std::string("--auth-tokens"), dir.path() + "/tokens",
                               std::string("--tenant-quotas"), quotas})
    flags.push_back(f);
  ServerProcess s = StartServer(dir.path() + "/server", flags);
  ASSERT_FALSE(s.address.empty());
  WriteText(dir.path() + "/worker.token", absl::StrCat(kWorker, "\n"));
  auto worker = StartWorker(s.address, "w1", dir.path() + "/w1.log",
                            {"--token-file", dir.path() + "/worker.token"});
  auto admin = Client(s.address, kAdmin);
  auto alice = Client(s.address, kAlice);
  auto bob = Client(s.address, kBob);
  auto run = [&](client::Client& c) {
    auto job = c.SubmitJob(TinyJob());
    EXPECT_TRUE(job.ok()) << job.status();
    if (!job.ok()) return v1::Job();
    WaitForEnd(c, job->id());
    auto done = c.GetJob(job->id());
    EXPECT_TRUE(done.ok());
    return *done;
  };

  // How many bytes one job keeps (tenant b has no limit).
  v1::Job sized = run(*bob);
  ASSERT_EQ(sized.state(), v1::JOB_STATE_SUCCEEDED) << sized.error();
  uint64_t job_bytes = 0;
  for (const auto& a : sized.artifacts()) job_bytes += a.size();
  ASSERT_GT(job_bytes, 0u);

  // a may keep one and a half jobs' artifacts: the first job fits, the second fails while
  // uploading, naming the limit; its staged files are removed.
  WriteText(quotas, absl::StrCat("tenant=a max_artifact_bytes=", job_bytes + job_bytes / 2, "\n"));
  s.process->Signal(SIGHUP);
  ASSERT_TRUE(AwaitCondition([&] { return Reloaded(*admin, 1); }, std::chrono::seconds(20)));
  v1::Job first = run(*alice);
  ASSERT_EQ(first.state(), v1::JOB_STATE_SUCCEEDED) << first.error();
  v1::Job second = run(*alice);
  ASSERT_EQ(second.state(), v1::JOB_STATE_FAILED);
  EXPECT_TRUE(absl::StrContains(second.error(), "quota: tenant 'a' keeps")) << second.error();
  EXPECT_TRUE(absl::StrContains(second.error(), absl::StrCat(quotas, " line 1")))
      << second.error();
  EXPECT_TRUE(absl::StrContains(second.error(), "quarry delete JOB")) << second.error();
  EXPECT_FALSE(fs::exists(dir.path() + "/server/artifacts/" + second.id()));

  // At the limit, a new job is refused at submission (a retry of an accepted one is not).
  auto accepted = alice->SubmitJob(TinyJob(), "retry-key");
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  ASSERT_EQ(WaitForEnd(*alice, accepted->id()), v1::JOB_STATE_FAILED) << "over the quota too";
  WriteText(quotas, absl::StrCat("tenant=a max_artifact_bytes=", job_bytes, "\n"));
  s.process->Signal(SIGHUP);
  ASSERT_TRUE(AwaitCondition([&] { return Reloaded(*admin, 2); }, std::chrono::seconds(20)));
  ExpectExhausted(alice->SubmitJob(TinyJob()).status(),
                  {"quota: tenant 'a' keeps", "of job artifacts", "quarry delete JOB"});
  auto retried = alice->SubmitJob(TinyJob(), "retry-key");
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->id(), accepted->id());

  // Deleting the first job frees its bytes and files; then a job runs again.
  EXPECT_EQ(bob->DeleteJob(first.id()).status().code(), absl::StatusCode::kNotFound);
  auto freed = alice->DeleteJob(first.id());
  ASSERT_TRUE(freed.ok()) << freed.status();
  EXPECT_EQ(*freed, job_bytes);
  EXPECT_FALSE(fs::exists(dir.path() + "/server/artifacts/" + first.id()));
  v1::Job third = run(*alice);
  EXPECT_EQ(third.state(), v1::JOB_STATE_SUCCEEDED) << third.error();
  EXPECT_TRUE(fs::exists(dir.path() + "/server/artifacts/" + third.id()));
  auto deletes = AuditRows(*admin, "delete");
  EXPECT_TRUE(HasRow(deletes, "a", first.id(), "OK")) << Describe(deletes);
  EXPECT_TRUE(HasRow(deletes, "b", first.id(), "NOT_FOUND")) << Describe(deletes);
}

}  // namespace
}  // namespace quarry::testing
