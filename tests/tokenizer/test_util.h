// Helpers shared by the tokenizer tests.
#pragma once

#include <openssl/sha.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace quarry::tokenizer_test {

inline const std::string kDataDir = QUARRY_TEST_DATA_DIR;
inline const std::string kKjvModelDir = kDataDir + "/models/tiny-llama-kjv";
inline const std::string kKjvModel = kKjvModelDir + "/tokenizer.model";
inline const std::string kTokenizerData = kDataDir + "/tokenizers";

inline std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline nlohmann::json ReadJson(const std::string& path) {
  return nlohmann::json::parse(ReadFileOrDie(path));
}

inline std::string Sha256Hex(const void* data, size_t size) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(static_cast<const unsigned char*>(data), size, digest);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

// sha256 of the ids as int32 little-endian (the fixture's ids_sha256_int32le).
inline std::string IdsSha256(const std::vector<int32_t>& ids) {
  std::string bytes;
  for (int32_t id : ids) {
    const uint32_t u = static_cast<uint32_t>(id);
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>(u >> (8 * i)));
  }
  return Sha256Hex(bytes.data(), bytes.size());
}

}  // namespace quarry::tokenizer_test
