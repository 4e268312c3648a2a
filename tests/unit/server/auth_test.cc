// Authentication pieces without gRPC: the token file's format and errors, constant-time lookup,
// and the job database's schema 2 (tenant column, audit table) opened over a version-1 database.
#include <sqlite3.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "auth/tenant_quotas.h"
#include "auth/token_file.h"
#include "store/job_store.h"

namespace quarry::server {
namespace {

std::string Line(const std::string& token, const std::string& rest) {
  return absl::StrCat("sha256:", HexOf(HashToken(token)), " ", rest, "\n");
}

TEST(TokenFile, ParsesTenantRolesExpiryIdAndComments) {
  const std::string text = absl::StrCat(
      "# a comment\n\n", Line("t1", "tenant=a roles=submit,read"),
      "  ", Line("t2", "tenant=ops roles=admin expires=2030-01-02T03:04:05Z id=ops-1  # note"));
  auto entries = ParseTokenFile(text, "tokens");
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].tenant, "a");
  EXPECT_EQ((*entries)[0].roles, kRoleSubmit | kRoleRead);
  EXPECT_EQ((*entries)[0].id, HexOf(HashToken("t1")).substr(0, 12));
  EXPECT_FALSE((*entries)[0].expires_unix_ms.has_value());
  EXPECT_EQ((*entries)[1].id, "ops-1");
  EXPECT_EQ((*entries)[1].roles, kRoleAdmin);
  EXPECT_EQ((*entries)[1].expires_unix_ms, 1893553445000);
  EXPECT_EQ((*entries)[1].line, 4);
  EXPECT_EQ(RoleNames(kRoleRead | kRoleWorker), "read,worker");

  EXPECT_EQ(FindToken(*entries, "t2"), &(*entries)[1]);
  EXPECT_EQ(FindToken(*entries, "t3"), nullptr);
  EXPECT_EQ(FindToken(*entries, ""), nullptr);
}

TEST(TokenFile, ErrorsNameTheLineAndTheField) {
  struct Case {
    std::string text, message;
  } cases[] = {
      {"t1 tenant=a roles=read\n", "line 1: the line must start with sha256:"},
      {"sha256:abcd tenant=a roles=read\n", "line 1: sha256: needs 64 hex digits"},
      {"\n" + Line("t", "roles=read"), "line 2: tenant= is required"},
      {Line("t", "tenant=a"), "roles= is required"},
      {Line("t", "tenant=a roles=read,root"), "unknown role 'root'"},
      {Line("t", "tenant=a/b roles=read"), "tenant=: 1-128 characters"},
      {Line("t", "tenant=a roles=read expires=tomorrow"), "expires=: not an RFC 3339 time"},
      {Line("t", "tenant=a roles=read colour=blue"), "unknown field 'colour'"},
      {Line("t", "tenant=a roles=read") + Line("t", "tenant=b roles=read"),
       "line 2: the same token hash appears twice"},
  };
  for (const Case& c : cases) {
    auto r = ParseTokenFile(c.text, "/etc/quarry/tokens");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(r.status().message(), c.message)) << r.status();
    EXPECT_TRUE(absl::StrContains(r.status().message(), "/etc/quarry/tokens")) << r.status();
    // No message shows a hash.
    EXPECT_FALSE(absl::StrContains(r.status().message(), HexOf(HashToken("t")))) << r.status();
  }
}

TEST(JobStoreSchema, Version1DatabaseMigratesKeepingJobsReadable) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("quarry_auth_schema_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "quarry.db").string();
  {
    // Schema 1 as the server before issue 17 wrote it, with one job.
    auto store = JobStore::Open(path);
    ASSERT_TRUE(store.ok());
  }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    // Undo version 2 to get a version-1 file (what an old server left behind).
    ASSERT_EQ(sqlite3_exec(db, "DROP TABLE audit; DROP INDEX jobs_tenant; "
                               "ALTER TABLE jobs DROP COLUMN tenant; "
                               "ALTER TABLE uploads DROP COLUMN tenant; PRAGMA user_version=1;",
                           nullptr, nullptr, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    v1::Job job;
    job.set_id("jold");
    job.set_state(v1::JOB_STATE_SUCCEEDED);
    std::string blob = job.SerializeAsString();
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "INSERT INTO jobs(id, submit_order, state, priority, created_ms, "
                                 "device_kind, memory_bytes, job, assignment) "
                                 "VALUES('jold', 1, 5, 0, 0, '', 0, ?, x'')",
                                 -1, &st, nullptr),
              SQLITE_OK);
    sqlite3_bind_blob(st, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    ASSERT_EQ(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
  auto store = JobStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  auto old = (*store)->GetJob("jold");
  ASSERT_TRUE(old.ok() && old->has_value());
  EXPECT_EQ((*old)->job.tenant(), "");  // old jobs: admin-only
  const std::string none, a = "a";
  EXPECT_EQ((*store)->ListJobs({}, 10, &none)->size(), 1u);
  EXPECT_EQ((*store)->ListJobs({}, 10, &a)->size(), 0u);
  EXPECT_EQ((*store)->ListJobs({}, 10)->size(), 1u);
  v1::AuditEvent e;
  e.set_action("submit");
  e.set_tenant("a");
  auto id = (*store)->AppendAudit(e);
  ASSERT_TRUE(id.ok()) << id.status();
  v1::ListAuditEventsRequest q;
  q.set_tenant("a");
  auto rows = (*store)->ListAudit(q);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].id(), *id);
  std::filesystem::remove_all(dir);
}

TEST(TenantQuotas, FileOverridesTheFlagDefaultsPerTenantAndNamesWhere) {
  EXPECT_EQ(ParseByteCount("4096"), 4096u);
  EXPECT_EQ(ParseByteCount("5G"), 5ull << 30);
  EXPECT_EQ(ParseByteCount("2t"), 2ull << 40);
  EXPECT_EQ(ParseByteCount("0"), 0u);
  for (const char* bad : {"", "G", "-1", "1.5G", "12X", "+3", "99999999999999999999",
                          "17000000T"})
    EXPECT_FALSE(ParseByteCount(bad).has_value()) << bad;

  const std::string path = ::testing::TempDir() + "/quotas_test.txt";
  std::FILE* f = std::fopen(path.c_str(), "w");
  std::fputs("# quotas\ntenant=* max_jobs=8\n\ntenant=a max_upload_bytes=1K  # small\n"
             "tenant=- max_artifact_bytes=3\n",
             f);
  std::fclose(f);
  QuotaOptions o;
  o.default_max_jobs = 2;
  o.default_max_artifact_bytes = 100;
  o.file = path;
  auto q = TenantQuotas::Create(o);
  ASSERT_TRUE(q.ok()) << q.status();
  TenantLimits a = (*q)->For("a");
  EXPECT_EQ(a.max_jobs.value, 8u);
  EXPECT_EQ(a.max_jobs.source, path + " line 2");
  EXPECT_EQ(a.max_upload_bytes.value, 1024u);
  EXPECT_EQ(a.max_upload_bytes.source, path + " line 4");
  EXPECT_EQ(a.max_artifact_bytes.value, 100u);
  EXPECT_EQ(a.max_artifact_bytes.source, "--tenant-max-artifact-bytes");
  EXPECT_EQ((*q)->For("").max_artifact_bytes.value, 3u) << "tenant=- is the tenant \"\"";
  EXPECT_FALSE((*q)->For("zz").max_upload_bytes.limited());
  EXPECT_TRUE((*q)->any());

  // A reload that fails keeps the old table.
  f = std::fopen(path.c_str(), "w");
  std::fputs("tenant=a max_jobs=x\n", f);
  std::fclose(f);
  EXPECT_EQ((*q)->Reload().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*q)->For("a").max_jobs.value, 8u);
  std::remove(path.c_str());
}

TEST(TenantQuotas, ErrorsNameTheLineAndTheField) {
  for (const auto& [text, want] : std::vector<std::pair<std::string, std::string>>{
           {"max_jobs=1\n", "line 1: tenant= is required"},
           {"tenant=a\ntenant=a max_jobs=2\n", "line 2: tenant 'a' is already set on line 1"},
           {"tenant=* \n tenant=*\n", "line 2: tenant=* is already set on line 1"},
           {"tenant=a max_jobs=1 max_jobs=2\n", "line 1: max_jobs= given twice"},
           {"tenant=a max_gpus=1\n", "unknown field 'max_gpus'"},
           {"tenant=a max_upload_bytes=1Q\n", "max_upload_bytes='1Q': expected a non-negative"},
           {"tenant=a max_jobs=5G\n", "max_jobs='5G'"},
           {"tenant=a/b\n", "tenant 'a/b'"},
           {"tenant=a junk\n", "'junk': expected key=value"}}) {
    auto parsed = ParseQuotaFile(text, "q.txt");
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(parsed.status().message(), "--tenant-quotas 'q.txt' " + want) ||
                absl::StrContains(parsed.status().message(), want))
        << parsed.status() << " wanted " << want;
  }
}

}  // namespace
}  // namespace quarry::server
