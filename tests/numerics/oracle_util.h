// Helpers for the numerics tests: loading the reference vectors of tests/data/oracle (tensors and
// the per-case JSON metadata) and comparing float32 tensors bit for bit with readable failures.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "quarry/quant_config.h"

namespace quarry::testing {

// One oracle file: its tensors and the `case.<name>` metadata entries parsed as JSON.
class OracleFile {
 public:
  explicit OracleFile(const std::string& file_name);  // e.g. "quark_int_int8.safetensors"
  bool ok() const { return ok_; }
  const at::Tensor& Get(const std::string& name) const;  // fails the test when missing
  bool Has(const std::string& name) const { return tensors_.count(name) > 0; }
  const nlohmann::json& Case(const std::string& name) const;
  std::vector<std::string> CaseNames() const;  // sorted, without the "_blocks" entry

 private:
  bool ok_ = false;
  std::string path_;
  std::map<std::string, at::Tensor> tensors_;
  std::map<std::string, nlohmann::json> cases_;
};

// Result of a bitwise comparison of two float32 tensors of equal numel (flattened). NaN matches
// NaN whatever the payload; with `zero_sign_matters` false, +0 matches -0.
struct BitCompare {
  int64_t mismatches = 0;
  int64_t first = -1;
  float actual = 0, expected = 0;
  std::string Describe(const std::string& what) const;
};
BitCompare CompareBits(const at::Tensor& actual, const at::Tensor& expected,
                       bool zero_sign_matters = true);

// gtest assertion: actual and expected (any float dtype, any shape with the same numel) are equal
// bit for bit as float32.
::testing::AssertionResult BitEqual(const at::Tensor& actual, const at::Tensor& expected,
                                    bool zero_sign_matters = true);

// The oracle directory (QUARRY_TEST_DATA_DIR/oracle).
std::string OraclePath(const std::string& file_name);

// Quark dtype / qscheme names to Quarry enums; fail the test when unknown.
Dtype DtypeFromName(const std::string& name);

}  // namespace quarry::testing
