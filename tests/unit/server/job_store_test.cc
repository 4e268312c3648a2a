// SQLite persistence: WAL mode, jobs + events in one transaction, reopening keeps everything,
// ordering of active jobs, request-id uniqueness, state history, artifacts and uploads.
#include "store/job_store.h"

#include <sqlite3.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <tuple>

namespace quarry::server {
namespace {

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("quarry_store_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string db() const { return (dir_ / "quarry.db").string(); }

  static StoredJob Job(const std::string& id, v1::JobState state, const std::string& req = "") {
    StoredJob j;
    j.job.set_id(id);
    j.job.set_state(state);
    j.job.mutable_spec()->set_name("job " + id);
    j.assignment.set_model_path("/m/" + id);
    j.request_id = req;
    j.device_kind = "cpu";
    j.memory_bytes = 42;
    return j;
  }
  static v1::JobEvent StateEvent(const std::string& id, uint64_t seq, v1::JobState s) {
    v1::JobEvent e;
    e.set_job_id(id);
    e.set_seq(seq);
    e.mutable_state()->set_state(s);
    e.mutable_state()->set_reason("because");
    return e;
  }

  std::filesystem::path dir_;
};

TEST_F(JobStoreTest, UsesWalMode) {
  auto store = JobStore::Open(db());
  ASSERT_TRUE(store.ok()) << store.status();
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db().c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(raw);
}

TEST_F(JobStoreTest, ReopeningKeepsJobsEventsHistoryArtifactsAndUploads) {
  {
    auto store = JobStore::Open(db());
    ASSERT_TRUE(store.ok());
    StoredJob a = Job("a", v1::JOB_STATE_QUEUED, "req-1");
    ASSERT_TRUE((*store)->InsertJob(&a, {StateEvent("a", 1, v1::JOB_STATE_QUEUED)}).ok());
    StoredJob b = Job("b", v1::JOB_STATE_QUEUED);
    ASSERT_TRUE((*store)->InsertJob(&b, {StateEvent("b", 1, v1::JOB_STATE_QUEUED)}).ok());
    EXPECT_LT(a.submit_order, b.submit_order);
    a.job.set_state(v1::JOB_STATE_SUCCEEDED);
    v1::JobEvent log;
    log.set_job_id("a");
    log.set_seq(2);
    log.mutable_log()->set_severity(1);
    log.mutable_log()->set_message("hello");
    ArtifactRecord art;
    art.info.set_name("model.safetensors");
    art.info.set_size(3);
    art.info.set_sha256("abc");
    art.path = "/data/x";
    ASSERT_TRUE((*store)->UpdateJob(a.job, {log, StateEvent("a", 3, v1::JOB_STATE_SUCCEEDED)},
                                    {art})
                    .ok());
    UploadRecord u;
    u.id = "u1";
    u.kind = UploadKind::kDataset;
    u.complete = true;
    u.path = "/data/u1/files/x.jsonl";
    v1::ArtifactInfo f;
    f.set_name("x.jsonl");
    f.set_size(9);
    u.files.push_back(f);
    ASSERT_TRUE((*store)->PutUpload(u).ok());
  }
  auto store = JobStore::Open(db());
  ASSERT_TRUE(store.ok());
  auto a = (*store)->GetJob("a");
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->job.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ((*a)->assignment.model_path(), "/m/a");
  EXPECT_EQ((*a)->memory_bytes, 42u);
  auto events = (*store)->ReadEvents("a", 0, 100);
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[1].log().message(), "hello");
  EXPECT_EQ((*store)->ReadEvents("a", 2, 100)->size(), 1u) << "seq > after_seq";
  auto history = (*store)->ReadStateHistory("a");
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[1].state(), v1::JOB_STATE_SUCCEEDED);
  auto active = (*store)->LoadActiveJobs();
  ASSERT_EQ(active->size(), 1u);
  EXPECT_EQ((*active)[0].job.id(), "b");
  auto art = (*store)->GetArtifact("a", "model.safetensors");
  ASSERT_TRUE(art->has_value());
  EXPECT_EQ((*art)->path, "/data/x");
  EXPECT_EQ(*(*store)->FindJobByRequestId("req-1"), std::optional<std::string>("a"));
  auto u = (*store)->GetUpload("u1");
  ASSERT_TRUE(u->has_value());
  EXPECT_EQ((*u)->files.at(0).name(), "x.jsonl");
  auto counts = (*store)->CountJobsByState();
  EXPECT_EQ((*counts)[v1::JOB_STATE_SUCCEEDED], 1);
  EXPECT_EQ((*counts)[v1::JOB_STATE_QUEUED], 1);
  auto listed = (*store)->ListJobs({}, 10);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].id(), "b") << "newest first";
}

TEST_F(JobStoreTest, AFailedTransactionChangesNothing) {
  auto store = JobStore::Open(db());
  StoredJob a = Job("a", v1::JOB_STATE_QUEUED);
  ASSERT_TRUE((*store)->InsertJob(&a, {StateEvent("a", 1, v1::JOB_STATE_QUEUED)}).ok());
  a.job.set_state(v1::JOB_STATE_FAILED);
  // seq 1 again: the event insert violates the primary key, so the job row is not updated.
  absl::Status st = (*store)->UpdateJob(a.job, {StateEvent("a", 1, v1::JOB_STATE_FAILED)});
  EXPECT_FALSE(st.ok());
  EXPECT_EQ((*(*store)->GetJob("a"))->job.state(), v1::JOB_STATE_QUEUED);
  StoredJob dup = Job("a2", v1::JOB_STATE_QUEUED, "same");
  StoredJob dup2 = Job("a3", v1::JOB_STATE_QUEUED, "same");
  ASSERT_TRUE((*store)->InsertJob(&dup, {}).ok());
  EXPECT_EQ((*store)->InsertJob(&dup2, {}).code(), absl::StatusCode::kAlreadyExists);
}

// Quota accounting: bytes per tenant (unfinished uploads at what they declared), usage for the
// metrics, and DeleteJob / DeleteUpload removing exactly their rows.
TEST_F(JobStoreTest, TenantUsageAndDeletion) {
  auto store = JobStore::Open(db());
  ASSERT_TRUE(store.ok());
  auto add_job = [&](const std::string& id, const std::string& tenant, uint64_t artifact_bytes) {
    StoredJob j = Job(id, v1::JOB_STATE_QUEUED);
    j.job.set_tenant(tenant);
    ASSERT_TRUE((*store)->InsertJob(&j, {StateEvent(id, 1, v1::JOB_STATE_QUEUED)}).ok());
    j.job.set_state(v1::JOB_STATE_SUCCEEDED);
    ArtifactRecord art;
    art.info.set_name("model.safetensors");
    art.info.set_size(artifact_bytes);
    art.path = "/data/" + id;
    ASSERT_TRUE(
        (*store)->UpdateJob(j.job, {StateEvent(id, 2, v1::JOB_STATE_SUCCEEDED)}, {art}).ok());
  };
  add_job("a1", "a", 100);
  add_job("a2", "a", 50);
  add_job("b1", "b", 7);
  for (const auto& [id, tenant, bytes, complete] :
       {std::tuple<std::string, std::string, uint64_t, bool>{"u1", "a", 1000, true},
        {"u2", "a", 30, false},
        {"u3", "b", 5, true}}) {
    UploadRecord u;
    u.id = id;
    u.tenant = tenant;
    u.total_bytes = bytes;
    u.complete = complete;
    ASSERT_TRUE((*store)->PutUpload(u).ok());
  }
  EXPECT_EQ(*(*store)->TenantArtifactBytes("a"), 150u);
  EXPECT_EQ(*(*store)->TenantArtifactBytes("c"), 0u);
  EXPECT_EQ(*(*store)->TenantUploadBytes("a"), 1030u);
  EXPECT_EQ(*(*store)->TenantUploadBytes("a", "u2"), 1000u) << "leaves out the given upload";
  auto usage = (*store)->UsageByTenant();
  ASSERT_TRUE(usage.ok()) << usage.status();
  ASSERT_EQ(usage->size(), 2u);
  EXPECT_EQ(usage->at("a").jobs.at(v1::JOB_STATE_SUCCEEDED), 2);
  EXPECT_EQ(usage->at("a").upload_bytes, 1030u);
  EXPECT_EQ(usage->at("b").artifact_bytes, 7u);

  ASSERT_TRUE((*store)->DeleteJob("a1").ok());
  EXPECT_FALSE((*store)->GetJob("a1")->has_value());
  EXPECT_TRUE((*store)->ReadEvents("a1", 0, 10)->empty());
  EXPECT_TRUE((*store)->ReadStateHistory("a1")->empty());
  EXPECT_FALSE((*store)->GetArtifact("a1", "model.safetensors")->has_value());
  EXPECT_TRUE((*store)->GetJob("a2")->has_value()) << "only that job";
  EXPECT_EQ(*(*store)->TenantArtifactBytes("a"), 50u);
  EXPECT_EQ((*store)->DeleteJob("a1").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE((*store)->DeleteUpload("u1").ok());
  EXPECT_EQ(*(*store)->TenantUploadBytes("a"), 30u);
  EXPECT_EQ((*store)->DeleteUpload("u1").code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace quarry::server
