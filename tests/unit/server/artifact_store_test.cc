// Staged files: nothing is visible under its final name until complete and verified; an upload
// resumes from the staged bytes; a checksum mismatch or a failing disk leaves no final file.
#include "store/artifact_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace quarry::server {
namespace {

// Fails appends once `budget` bytes were written through it: a full disk.
class FullDiskFileSystem : public FileSystem {
 public:
  explicit FullDiskFileSystem(uint64_t budget) : budget_(budget) {}
  absl::Status CreateDirs(const std::string& d) override { return real_->CreateDirs(d); }
  absl::StatusOr<uint64_t> FileSize(const std::string& p) override { return real_->FileSize(p); }
  bool Exists(const std::string& p) override { return real_->Exists(p); }
  absl::StatusOr<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& p,
                                                              uint64_t t) override {
    auto f = real_->OpenForAppend(p, t);
    if (!f.ok()) return f;
    return std::unique_ptr<WritableFile>(new Limited(std::move(*f), &budget_));
  }
  absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(const std::string& p) override {
    return real_->OpenForRead(p);
  }
  absl::Status Rename(const std::string& a, const std::string& b) override {
    return real_->Rename(a, b);
  }
  absl::Status Remove(const std::string& p) override { return real_->Remove(p); }
  absl::Status RemoveAll(const std::string& d) override { return real_->RemoveAll(d); }
  absl::StatusOr<std::vector<std::string>> ListFiles(const std::string& d) override {
    return real_->ListFiles(d);
  }

 private:
  class Limited : public WritableFile {
   public:
    Limited(std::unique_ptr<WritableFile> f, uint64_t* budget) : f_(std::move(f)), budget_(budget) {}
    absl::Status Append(absl::string_view d) override {
      if (d.size() > *budget_) return absl::ResourceExhaustedError("write: No space left on device");
      *budget_ -= d.size();
      return f_->Append(d);
    }
    absl::Status Sync() override { return f_->Sync(); }
    absl::Status Close() override { return f_->Close(); }

   private:
    std::unique_ptr<WritableFile> f_;
    uint64_t* budget_;
  };
  FileSystem* real_ = PosixFileSystem();
  uint64_t budget_;
};

class ArtifactStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("quarry_art_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::filesystem::path dir_;
};

// sha256("hello world")
constexpr char kHelloSha[] = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";

TEST_F(ArtifactStoreTest, CompleteFileAppearsOnlyAfterFinish) {
  ArtifactStore store(dir_.string(), PosixFileSystem());
  auto w = store.OpenArtifact("j1", 1, "model/model.safetensors", 0);
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE((*w)->Append("hello ").ok());
  StagedFile s = store.ArtifactStatus("j1", 1, "model/model.safetensors");
  EXPECT_FALSE(s.complete);
  EXPECT_EQ(s.received_bytes, 6u);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "artifacts/j1/1/files/model/model.safetensors"));
  ASSERT_TRUE((*w)->Append("world").ok());
  auto done = (*w)->Finish(11, kHelloSha);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->sha256, kHelloSha);
  EXPECT_EQ(Read(done->path), "hello world");
  s = store.ArtifactStatus("j1", 1, "model/model.safetensors");
  EXPECT_TRUE(s.complete);
  EXPECT_EQ(s.sha256, kHelloSha);
}

TEST_F(ArtifactStoreTest, ResumesFromStagedBytesAndDropsAResentTail) {
  ArtifactStore store(dir_.string(), PosixFileSystem());
  {
    auto w = store.OpenArtifact("j1", 1, "a.bin", 0);
    ASSERT_TRUE((*w)->Append("hello wXX").ok());  // the stream broke; "XX" was torn
  }
  EXPECT_EQ(store.OpenArtifact("j1", 1, "a.bin", 20).status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "a gap is refused";
  auto w = store.OpenArtifact("j1", 1, "a.bin", 7);  // resend from byte 7
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append("orld").ok());
  auto done = (*w)->Finish(11, kHelloSha);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(Read(done->path), "hello world");
}

TEST_F(ArtifactStoreTest, ChecksumMismatchLeavesNothing) {
  ArtifactStore store(dir_.string(), PosixFileSystem());
  auto w = store.OpenArtifact("j1", 1, "a.bin", 0);
  ASSERT_TRUE((*w)->Append("hello world").ok());
  auto done = (*w)->Finish(11, std::string(64, '0'));
  EXPECT_EQ(done.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(done.status().message().find(kHelloSha), std::string::npos);
  StagedFile s = store.ArtifactStatus("j1", 1, "a.bin");
  EXPECT_FALSE(s.complete);
  EXPECT_EQ(s.received_bytes, 0u) << "the bad bytes were discarded";
}

TEST_F(ArtifactStoreTest, FullDiskFailsTheUploadWithoutAFinalFile) {
  FullDiskFileSystem fs(8);
  ArtifactStore store(dir_.string(), &fs);
  auto w = store.OpenArtifact("j1", 1, "a.bin", 0);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append("hello ").ok());
  absl::Status st = (*w)->Append("world");
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(store.ArtifactStatus("j1", 1, "a.bin").complete);
}

TEST_F(ArtifactStoreTest, RejectsEscapingNames) {
  ArtifactStore store(dir_.string(), PosixFileSystem());
  for (const char* bad : {"../x", "/etc/passwd", "a/../../b", "", "a//b", "./a"})
    EXPECT_EQ(store.OpenArtifact("j1", 1, bad, 0).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  EXPECT_EQ(store.OpenUploadFile("u1", "../../quarry.db", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quarry::server
