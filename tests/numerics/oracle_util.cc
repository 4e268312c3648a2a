#include "oracle_util.h"

#include <cmath>
#include <cstring>
#include <sstream>

#include "quarry/safetensors.h"
#include "quarry/tensor_io.h"

namespace quarry::testing {

std::string OraclePath(const std::string& file_name) {
  return std::string(QUARRY_TEST_DATA_DIR) + "/oracle/" + file_name;
}

OracleFile::OracleFile(const std::string& file_name) : path_(OraclePath(file_name)) {
  auto tensors = LoadAllTensors(path_);
  if (!tensors.ok()) {
    ADD_FAILURE() << "cannot load " << path_ << ": " << tensors.status();
    return;
  }
  tensors_ = *std::move(tensors);
  auto file = SafetensorsFile::Open(path_);
  if (!file.ok()) {
    ADD_FAILURE() << file.status();
    return;
  }
  for (const auto& [key, value] : (*file)->metadata()) {
    if (key.rfind("case.", 0) == 0) cases_[key.substr(5)] = nlohmann::json::parse(value);
  }
  ok_ = true;
}

const at::Tensor& OracleFile::Get(const std::string& name) const {
  static const at::Tensor kEmpty;
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    ADD_FAILURE() << path_ << " has no tensor " << name;
    return kEmpty;
  }
  return it->second;
}

const nlohmann::json& OracleFile::Case(const std::string& name) const {
  static const nlohmann::json kNull;
  auto it = cases_.find(name);
  if (it == cases_.end()) {
    ADD_FAILURE() << path_ << " has no case " << name;
    return kNull;
  }
  return it->second;
}

std::vector<std::string> OracleFile::CaseNames() const {
  std::vector<std::string> names;
  for (const auto& [name, unused] : cases_) {
    if (name != "_blocks") names.push_back(name);
  }
  return names;
}

std::string BitCompare::Describe(const std::string& what) const {
  std::ostringstream os;
  os << what << ": " << mismatches << " mismatching elements";
  if (first >= 0) {
    os.precision(9);
    os << "; first at flat index " << first << ": actual " << actual << " expected " << expected;
  }
  return os.str();
}

BitCompare CompareBits(const at::Tensor& actual_in, const at::Tensor& expected_in,
                       bool zero_sign_matters) {
  BitCompare r;
  const at::Tensor a = actual_in.to(at::kCPU, at::kFloat).contiguous().reshape({-1});
  const at::Tensor e = expected_in.to(at::kCPU, at::kFloat).contiguous().reshape({-1});
  if (a.numel() != e.numel()) {
    r.mismatches = std::max(a.numel(), e.numel());
    return r;
  }
  const float* ap = a.data_ptr<float>();
  const float* ep = e.data_ptr<float>();
  for (int64_t i = 0; i < a.numel(); ++i) {
    bool same;
    if (std::isnan(ap[i]) || std::isnan(ep[i])) {
      same = std::isnan(ap[i]) && std::isnan(ep[i]);
    } else if (!zero_sign_matters && ap[i] == 0.0f && ep[i] == 0.0f) {
      same = true;
    } else {
      same = std::memcmp(&ap[i], &ep[i], sizeof(float)) == 0;
    }
    if (!same) {
      if (r.first < 0) {
        r.first = i;
        r.actual = ap[i];
        r.expected = ep[i];
      }
      ++r.mismatches;
    }
  }
  return r;
}

::testing::AssertionResult BitEqual(const at::Tensor& actual, const at::Tensor& expected,
                                    bool zero_sign_matters) {
  if (!actual.defined() || !expected.defined()) {
    return ::testing::AssertionFailure() << "undefined tensor";
  }
  if (actual.numel() != expected.numel()) {
    return ::testing::AssertionFailure() << "numel " << actual.numel() << " vs " << expected.numel();
  }
  const BitCompare c = CompareBits(actual, expected, zero_sign_matters);
  if (c.mismatches == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << c.Describe("bitwise comparison");
}

Dtype DtypeFromName(const std::string& name) {
  auto d = ParseDtype(name);
  EXPECT_TRUE(d.has_value()) << "unknown dtype " << name;
  return d.value_or(Dtype::kInt8);
}

}  // namespace quarry::testing
