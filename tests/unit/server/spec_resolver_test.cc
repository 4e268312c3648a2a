// Input paths and the model roots: absolute only, no "..", inside a root lexically and after
// symlinks; a symlink inside a root that points outside is refused; and the job memory estimate
// from the tiny model's safetensors headers.
#include "jobs/spec_resolver.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace quarry::server {
namespace {

namespace fs = std::filesystem;

class PathsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() /
            ("quarry_paths_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base_);
    fs::create_directories(base_ / "root/model");
    fs::create_directories(base_ / "outside/secret");
    std::ofstream(base_ / "root/calib.jsonl") << "{}\n";
    std::ofstream(base_ / "outside/secret/data.txt") << "x";
    fs::create_directory_symlink(base_ / "outside/secret", base_ / "root/escape");
    fs::create_directory_symlink(base_ / "root/model", base_ / "root/alias");
    roots_ = {(base_ / "root").string()};
  }
  void TearDown() override { fs::remove_all(base_); }
  fs::path base_;
  std::vector<std::string> roots_;
};

TEST_F(PathsTest, AcceptsPathsInsideTheRoots) {
  auto p = CheckPathInRoots((base_ / "root/model").string(), "model.path", roots_, true);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, fs::canonical(base_ / "root/model").string());
  EXPECT_TRUE(CheckPathInRoots((base_ / "root/alias").string(), "model.path", roots_, true).ok())
      << "a symlink that stays inside is fine";
  EXPECT_TRUE(
      CheckPathInRoots((base_ / "root/calib.jsonl").string(), "calibration.path", roots_, false)
          .ok());
}

TEST_F(PathsTest, RefusesOutsideDotDotSymlinkEscapesAndRelativePaths) {
  auto outside = CheckPathInRoots((base_ / "outside/secret").string(), "model.path", roots_, true);
  EXPECT_EQ(outside.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(outside.status().message().find("outside the server's model roots"), std::string::npos)
      << outside.status();
  auto dotdot = CheckPathInRoots((base_ / "root/../outside/secret").string(), "model.path",
                                 roots_, true);
  EXPECT_EQ(dotdot.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(dotdot.status().message().find("'..'"), std::string::npos);
  auto link = CheckPathInRoots((base_ / "root/escape").string(), "model.path", roots_, true);
  EXPECT_EQ(link.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(link.status().message().find("symbolic link"), std::string::npos) << link.status();
  EXPECT_EQ(CheckPathInRoots("relative/model", "model.path", roots_, true).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckPathInRoots((base_ / "root/model").string(), "model.path", {}, true)
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied)
      << "no roots: no paths";
  EXPECT_EQ(CheckPathInRoots((base_ / "root/nope").string(), "model.path", roots_, true)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckPathInRoots((base_ / "root-sibling").string(), "model.path", roots_, true)
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied)
      << "a prefix of the name is not containment";
}

TEST(MemoryEstimate, FromTheTinyModelsHeaders) {
  const std::string model = std::string(QUARRY_TEST_DATA_DIR) + "/models/tiny-llama-kjv";
  auto small = EstimateJobMemory(model, 2, 32);
  auto large = EstimateJobMemory(model, 128, 512);
  ASSERT_TRUE(small.ok()) << small.status();
  ASSERT_TRUE(large.ok());
  // 256 MiB overhead + embeddings/lm_head (4096x256 bf16 each) + 3 float32 decoder layers.
  EXPECT_GT(*small, (256ull << 20) + 4 * 1024 * 1024);
  EXPECT_LT(*small, 300ull << 20);
  // 128 x 512 tokens x hidden 256 x 4 bytes x 4 buffers more activations.
  EXPECT_EQ(*large - *small, (128ull * 512 - 2 * 32) * 256 * 4 * 4);
  EXPECT_FALSE(EstimateJobMemory("/nonexistent", 1, 1).ok());
}

}  // namespace
}  // namespace quarry::server
