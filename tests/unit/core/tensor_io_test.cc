// Core's LibTorch path: tensors written to safetensors come back bit-identical, in every dtype.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "quarry/safetensors.h"
#include "quarry/tensor_io.h"

namespace quarry {
namespace {

std::string TempPath(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("quarry_tensor_io_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

TEST(TensorIo, RoundTripsEveryDtype) {
  at::manual_seed(1);
  std::map<std::string, at::Tensor> tensors;
  tensors["f32"] = at::randn({3, 5});
  tensors["bf16"] = at::randn({4, 2}).to(at::kBFloat16);
  tensors["f16"] = at::randn({7}).to(at::kHalf);
  tensors["i32"] = at::arange(-5, 5, at::kInt).reshape({2, 5});
  tensors["u8"] = at::arange(0, 200, at::kByte);
  tensors["i8"] = at::arange(-100, 100, at::kChar);
  tensors["scalar"] = at::scalar_tensor(3.5f);
  tensors["empty"] = at::empty({0, 4});
  const std::string path = TempPath("rt.safetensors");
  ASSERT_TRUE(SaveTensors(path, tensors).ok());
  auto back = LoadAllTensors(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    const at::Tensor& b = back->at(name);
    EXPECT_EQ(b.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(b.sizes(), t.sizes()) << name;
    EXPECT_TRUE(at::equal(b, t)) << name;
  }
}

TEST(TensorIo, MatmulOfLoadedWeightsMatchesInMemory) {
  at::manual_seed(2);
  at::Tensor w = at::randn({16, 32});
  at::Tensor x = at::randn({4, 32});
  const std::string path = TempPath("w.safetensors");
  ASSERT_TRUE(SaveTensors(path, {{"weight", w}}).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok());
  auto loaded = LoadTensor(**file, "weight");
  ASSERT_TRUE(loaded.ok());
  EXPECT_TRUE(at::equal(at::matmul(x, loaded->t()), at::matmul(x, w.t())));
}

}  // namespace
}  // namespace quarry
