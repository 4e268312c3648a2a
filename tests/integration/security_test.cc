// Securing the service (issue 17, parts 1, 2 and 4): real quarry-server and quarry-worker
// processes on loopback (port 0) with certificates the test makes with the openssl CLI and a
// token file of hashes. Each test checks what a client or an operator would see: the status
// code and message of a refused call, the rows `quarry audit` shows, the certificate a new
// handshake gets.
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "quarry/client/client.h"
#include "security_helpers.h"
#include "service_harness.h"

namespace quarry::testing {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::quarry::v1;

// ----- Part 1: TLS -----

TEST(Security, TlsServerRefusesPlaintextClientsAndServesTlsOnes) {
  TempDir dir("sec_tls");
  const Pki& pki = TestPki();
  WriteText(dir.path() + "/tokens", BaseTokenFile());
  std::vector<std::string> flags = {"--tls-cert", pki.server_cert, "--tls-key", pki.server_key,
                                    "--auth-tokens", dir.path() + "/tokens",
                                    "--metrics-listen", "127.0.0.1:0"};
  ServerProcess s = StartServer(dir.path() + "/server", flags);
  ASSERT_FALSE(s.address.empty());

  auto plain = Client(s.address, kAlice);
  auto refused = plain->ListJobs(v1::ListJobsRequest());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();

  auto secure = Client(s.address, kAlice, /*tls=*/true);
  auto listed = secure->ListJobs(v1::ListJobsRequest());
  EXPECT_TRUE(listed.ok()) << listed.status();
  EXPECT_TRUE(absl::StrContains(PeerSubject(s.address), "server-localhost"));

  // The health endpoint is TLS too, and says how the server is secured.
  ASSERT_FALSE(s.metrics_address.empty());
  EXPECT_EQ(ScrapeMetrics(s.metrics_address), "");  // plaintext: no HTTP answer
  std::string health = HttpsGet(s.metrics_address, "/healthz");
  EXPECT_TRUE(absl::StrContains(health, "\"auth\":\"tokens\"")) << health;
  EXPECT_TRUE(absl::StrContains(health, "\"tls\":true")) << health;
  EXPECT_TRUE(absl::StrContains(HttpsGet(s.metrics_address, "/metrics"), "quarry_jobs"));
}

TEST(Security, PlaintextOnlyOnLoopbackUnlessAllowInsecure) {
  TempDir dir("sec_loopback");
  std::vector<std::string> argv = {BinaryDir() + "/server/quarry-server", "--listen",
                                   "0.0.0.0:0", "--data-dir", dir.path() + "/d"};
  auto p = Process::Start(argv, dir.path() + "/server.log");
  ASSERT_TRUE(p);
  auto status = p->WaitFor(std::chrono::seconds(30));
  ASSERT_TRUE(status.has_value()) << "the server kept running on 0.0.0.0 without TLS";
  EXPECT_NE(WEXITSTATUS(*status), 0);
  EXPECT_TRUE(absl::StrContains(p->Log(), "is not a loopback address")) << p->Log();

  ServerProcess s = StartServer(dir.path() + "/d2", {"--allow-insecure"}, "0.0.0.0:0");
  EXPECT_FALSE(s.address.empty());
}

TEST(Security, OpenServerSaysSoAtStartAndInHealthz) {
  TempDir dir("sec_open");
  ServerProcess s = StartServer(dir.path() + "/server", {"--metrics-listen", "127.0.0.1:0"});
  ASSERT_FALSE(s.address.empty());
  EXPECT_TRUE(absl::StrContains(s.process->Log(), "no --auth-tokens: the server is open"));
  size_t colon = s.metrics_address.rfind(':');
  std::string health = Shell(absl::StrCat(
      "bash -c 'exec 3<>/dev/tcp/127.0.0.1/", s.metrics_address.substr(colon + 1),
      "; printf \"GET /healthz HTTP/1.0\\r\\n\\r\\n\" >&3; cat <&3'"));
  EXPECT_TRUE(absl::StrContains(health, "\"auth\":\"open\"")) << health;
  EXPECT_TRUE(absl::StrContains(health, "warning")) << health;
}

// ----- Part 2: tokens, roles, tenants (plaintext loopback) -----

TEST(Security, TokensRolesAndTenantsAreEnforcedAndAudited) {
  TempDir dir("sec_auth");
  WriteText(dir.path() + "/tokens", BaseTokenFile());
  std::vector<std::string> flags = Roots();
  flags.push_back("--auth-tokens");
  flags.push_back(dir.path() + "/tokens");
  ServerProcess s = StartServer(dir.path() + "/server", flags);
  ASSERT_FALSE(s.address.empty());
  auto admin = Client(s.address, kAdmin);
  auto alice = Client(s.address, kAlice);
  auto bob = Client(s.address, kBob);

  // No, an unknown and an expired token: UNAUTHENTICATED.
  for (const auto& [token, why] :
       {std::pair<std::string, std::string>{"", "no bearer token"},
        {"tok-nobody", "unknown token"},
        {kExpired, "token old expired at 2020-01-01T00:00:00"}}) {
    auto st = Client(s.address, token)->ListJobs(v1::ListJobsRequest()).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kUnauthenticated) << st;
    EXPECT_TRUE(absl::StrContains(st.message(), why)) << st;
  }
  // A token without the role: PERMISSION_DENIED naming the role.
  auto reader = Client(s.address, kReader);
  auto denied = reader->SubmitJob(TinyJob());
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied) << denied.status();
  EXPECT_TRUE(absl::StrContains(denied.status().message(), "needs the submit role"));
  EXPECT_EQ(reader->CancelJob("j1").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(alice->ListAuditEvents({}).status().code(), absl::StatusCode::kPermissionDenied);

  // Alice's job (no worker: it stays queued) is invisible to Bob, as if it did not exist.
  auto job = alice->SubmitJob(TinyJob(), "same-key");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->tenant(), "a");
  const std::string unknown_msg =
      std::string(bob->GetJob("j-none").status().message());  // an id that does not exist
  auto expect_hidden = [&](const absl::Status& st, const std::string& what) {
    EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << what << ": " << st;
    EXPECT_TRUE(absl::StrContains(st.message(), absl::StrCat("job '", job->id(), "' not found")))
        << what << ": " << st << " (unknown id: " << unknown_msg << ")";
  };
  expect_hidden(bob->GetJob(job->id()).status(), "GetJob");
  client::WatchOptions w;
  w.job_id = job->id();
  w.follow = false;
  expect_hidden(bob->WatchJob(w, [](const v1::JobEvent&) { return true; }), "WatchJob");
  expect_hidden(bob->DownloadArtifact(job->id(), "report.json", dir.path() + "/x").status(),
                "DownloadArtifact");
  expect_hidden(bob->CancelJob(job->id()).status(), "CancelJob");
  auto bobs = bob->ListJobs(v1::ListJobsRequest());
  ASSERT_TRUE(bobs.ok());
  EXPECT_TRUE(bobs->empty());
  // Bob's same idempotency key makes his own job, not Alice's.
  auto bob_job = bob->SubmitJob(TinyJob(), "same-key");
  ASSERT_TRUE(bob_job.ok()) << bob_job.status();
  EXPECT_NE(bob_job->id(), job->id());
  EXPECT_EQ(bob_job->tenant(), "b");

  // Alice sees hers; admin sees both and may cancel Alice's.
  EXPECT_TRUE(alice->GetJob(job->id()).ok());
  auto all = admin->ListJobs(v1::ListJobsRequest());
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
  auto cancelled = admin->CancelJob(job->id());
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), v1::JOB_STATE_CANCELLED);

  // A client token cannot act as a worker.
  WriteText(dir.path() + "/alice.token", absl::StrCat(kAlice, "\n"));
  auto fake_worker = StartWorker(s.address, "fake", dir.path() + "/fake-worker.log",
                                 {"--token-file", dir.path() + "/alice.token"});
  EXPECT_TRUE(AwaitCondition(
      [&] { return HasRow(AuditRows(*admin, "permission_denied"), "a", "Connect",
                          "PERMISSION_DENIED"); },
      std::chrono::seconds(30)));
  fake_worker.reset();

  // The audit log has a row for each of these.
  auto failures = AuditRows(*admin, "auth_failure");
  EXPECT_GE(failures.size(), 3u) << Describe(failures);
  EXPECT_TRUE(HasRow(failures, "a", "ListJobs", "UNAUTHENTICATED")) << Describe(failures);
  EXPECT_TRUE(HasRow(failures, "", "ListJobs", "UNAUTHENTICATED")) << Describe(failures);
  auto perms = AuditRows(*admin, "permission_denied");
  EXPECT_TRUE(HasRow(perms, "a", "SubmitJob", "PERMISSION_DENIED")) << Describe(perms);
  EXPECT_TRUE(HasRow(perms, "a", "CancelJob", "PERMISSION_DENIED")) << Describe(perms);
  EXPECT_TRUE(HasRow(perms, "a", "ListAuditEvents", "PERMISSION_DENIED")) << Describe(perms);
  auto hidden = AuditRows(*admin, "not_found");
  for (const char* rpc : {"GetJob", "WatchJob", "DownloadArtifact", "CancelJob"}) {
    bool found = false;
    for (const auto& r : hidden)
      found |= r.tenant() == "b" && r.token_id() == "bob" && r.target() == job->id() &&
               absl::StrContains(r.detail(), rpc);
    EXPECT_TRUE(found) << rpc << "\n" << Describe(hidden);
  }
  auto submits = AuditRows(*admin, "submit");
  EXPECT_TRUE(HasRow(submits, "a", job->id(), "OK")) << Describe(submits);
  EXPECT_TRUE(HasRow(submits, "b", bob_job->id(), "OK")) << Describe(submits);
  for (const auto& r : submits) EXPECT_TRUE(absl::StartsWith(r.peer(), "ipv4:127.0.0.1:")) << r.peer();
  EXPECT_TRUE(HasRow(AuditRows(*admin, "cancel"), "ops", job->id(), "OK"));
  EXPECT_TRUE(HasRow(AuditRows(*admin, "download"), "b", job->id(), "NOT_FOUND"));
  // ... and as structured log lines.
  EXPECT_TRUE(absl::StrContains(s.process->Log(), "quarry-server: audit {\"action\":\"submit\""))
      << s.process->Log();
}

TEST(Security, TokenFileReloadTakesEffectWithoutRestart) {
  TempDir dir("sec_reload");
  const std::string tokens = dir.path() + "/tokens";
  WriteText(tokens, BaseTokenFile());
  std::vector<std::string> flags = Roots();
  flags.push_back("--auth-tokens");
  flags.push_back(tokens);
  ServerProcess s = StartServer(dir.path() + "/server", flags);
  ASSERT_FALSE(s.address.empty());
  auto admin = Client(s.address, kAdmin);
  auto carol = Client(s.address, kCarol);
  auto alice = Client(s.address, kAlice);
  ASSERT_EQ(carol->ListJobs({}).status().code(), absl::StatusCode::kUnauthenticated);
  auto job = alice->SubmitJob(TinyJob());
  ASSERT_TRUE(job.ok()) << job.status();

  // Carol joins tenant a, Alice's token is revoked: SIGHUP, no restart.
  std::string next = BaseTokenFile();
  next.replace(next.find(TokenLine(kAlice, "tenant=a roles=submit,read,cancel id=alice")),
               TokenLine(kAlice, "tenant=a roles=submit,read,cancel id=alice").size(),
               TokenLine(kCarol, "tenant=a roles=read id=carol"));
  WriteText(tokens, next);
  s.process->Signal(SIGHUP);
  EXPECT_TRUE(AwaitCondition([&] { return carol->GetJob(job->id()).ok(); },
                             std::chrono::seconds(20)));
  EXPECT_EQ(alice->ListJobs({}).status().code(), absl::StatusCode::kUnauthenticated);
  auto reloads = AuditRows(*admin, "reload");
  EXPECT_TRUE(HasRow(reloads, "", "tokens", "OK")) << Describe(reloads);

  // A broken file on reload changes nothing; the audit log says why.
  WriteText(tokens, "sha256:abc tenant=x roles=read\n");
  s.process->Signal(SIGHUP);
  EXPECT_TRUE(AwaitCondition(
      [&] { return HasRow(AuditRows(*admin, "reload"), "", "tokens", "INVALID_ARGUMENT"); },
      std::chrono::seconds(20)));
  EXPECT_TRUE(carol->GetJob(job->id()).ok());
  EXPECT_TRUE(absl::StrContains(s.process->Log(), "line 1: sha256: needs 64 hex digits"))
      << s.process->Log();
}

// ----- Part 1 + 2: mutual TLS workers, certificate reload under a running job -----

TEST(Security, MutualTlsWorkersAndCertificateReloadKeepRunningJobs) {
  TempDir dir("sec_mtls");
  const Pki& pki = TestPki();
  // The server reads its certificate from files the test replaces before SIGHUP.
  fs::copy_file(pki.server_cert, dir.path() + "/cert.pem");
  fs::copy_file(pki.server_key, dir.path() + "/key.pem");
  WriteText(dir.path() + "/tokens", BaseTokenFile());
  std::vector<std::string> flags = Roots();
  for (const std::string& f :
       {std::string("--tls-cert"), dir.path() + "/cert.pem", std::string("--tls-key"),
        dir.path() + "/key.pem", std::string("--tls-client-ca"), pki.ca,
        std::string("--auth-tokens"), dir.path() + "/tokens"})
    flags.push_back(f);
  ServerProcess s = StartServer(dir.path() + "/server", flags);
  ASSERT_FALSE(s.address.empty());
  auto admin = Client(s.address, kAdmin, true);
  auto alice = Client(s.address, kAlice, true);

  // A worker with a worker token but no client certificate is refused.
  WriteText(dir.path() + "/worker.token", absl::StrCat(kWorker, "\n"));
  auto nocert = StartWorker(s.address, "nocert", dir.path() + "/nocert.log",
                            {"--tls-ca", pki.ca, "--token-file", dir.path() + "/worker.token"});
  EXPECT_TRUE(AwaitCondition(
      [&] {
        for (const auto& r : AuditRows(*admin, "auth_failure"))
          if (r.target() == "Connect" && r.code() == "UNAUTHENTICATED") return true;
        return false;
      },
      std::chrono::seconds(30)));
  // (The server audits the refusal before the worker has printed it: wait for the line.)
  EXPECT_TRUE(AwaitCondition(
      [&] {
        return absl::StrContains(ReadFile(dir.path() + "/nocert.log"),
                                 "workers must present a client certificate");
      },
      std::chrono::seconds(30)))
      << ReadFile(dir.path() + "/nocert.log");
  nocert.reset();

  // With its certificate it registers (identity from the certificate) and runs a job.
  auto worker = StartWorker(s.address, "w1", dir.path() + "/w1.log",
                            {"--tls-ca", pki.ca, "--tls-cert", pki.worker_cert, "--tls-key",
                             pki.worker_key});
  auto job = alice->SubmitJob(SlowJob());
  ASSERT_TRUE(job.ok()) << job.status();
  WatchUntil(*alice, job->id(), [](const v1::JobEvent& e) { return e.has_progress(); });
  auto registered = AuditRows(*admin, "worker_register");
  ASSERT_FALSE(registered.empty());
  EXPECT_EQ(registered[0].token_id(), "cert:worker-1");
  EXPECT_EQ(registered[0].target(), "w1");

  // Swap the certificate while the job runs and its streams are open.
  ASSERT_TRUE(absl::StrContains(PeerSubject(s.address), "server-localhost"));
  fs::copy_file(pki.server2_cert, dir.path() + "/cert.pem", fs::copy_options::overwrite_existing);
  fs::copy_file(pki.server2_key, dir.path() + "/key.pem", fs::copy_options::overwrite_existing);
  s.process->Signal(SIGHUP);
  EXPECT_TRUE(AwaitCondition(
      [&] { return absl::StrContains(PeerSubject(s.address), "server2-localhost"); },
      std::chrono::seconds(20)));
  auto during = alice->GetJob(job->id());
  ASSERT_TRUE(during.ok());
  EXPECT_EQ(during->state(), v1::JOB_STATE_RUNNING) << "the reload should happen mid-job";
  WatchAll(*alice, job->id());
  auto final_job = alice->GetJob(job->id());
  ASSERT_TRUE(final_job.ok());
  EXPECT_EQ(final_job->state(), v1::JOB_STATE_SUCCEEDED) << final_job->error();
  EXPECT_EQ(final_job->attempts(), 1) << "the job was re-queued: its worker's stream dropped";
  auto dl = alice->DownloadArtifacts(job->id(), dir.path() + "/out");
  ASSERT_TRUE(dl.ok()) << dl.status();
  EXPECT_TRUE(HasRow(AuditRows(*admin, "reload"), "", "tls", "OK"));
  // The worker's stream from before the reload carried the job to the end: one registration.
  int w1_registrations = 0;
  for (const auto& r : AuditRows(*admin, "worker_register")) w1_registrations += r.target() == "w1";
  EXPECT_EQ(w1_registrations, 1) << Describe(AuditRows(*admin, "worker_register"));
  EXPECT_TRUE(HasRow(AuditRows(*admin, "download"), "a", job->id(), "OK"));
}

}  // namespace
}  // namespace quarry::testing
