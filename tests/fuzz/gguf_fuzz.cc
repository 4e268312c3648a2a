// Fuzzes the GGUF reader (core/src/export/gguf_file.cc GgufFile::Open, which takes a path: the
// input is written to a scratch file), then what quarry eval does with an opened file: the typed
// metadata getters, TokenizerFromGguf (gguf_tokenizer.cc; a tokenizer that loads is run through
// ExerciseTokenizer) and Dequantize (gguf_format.cc) of every tensor's data.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "export/gguf_file.h"
#include "export/gguf_format.h"
#include "export/gguf_tokenizer.h"
#include "fuzz_util.h"
#include "tokenizer_checks.h"

namespace gguf = quarry::exporter::gguf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      quarry::fuzz::WriteScratchFile("model.gguf", quarry::fuzz::AsView(data, size));
  auto file = gguf::GgufFile::Open(path);
  if (!file.ok()) return 0;
  const gguf::GgufFile& f = **file;
  for (const auto& [key, value] : f.metadata()) {
    if (f.Find(key) != &value) std::abort();
    (void)f.GetString(key);
    (void)f.GetUInt(key);
    (void)f.GetFloat(key);
    (void)f.GetBool(key);
  }
  auto tok = gguf::TokenizerFromGguf(f);
  if (tok.ok()) quarry::fuzz::ExerciseTokenizer(**tok, "");
  for (const gguf::TensorInfo& t : f.tensors()) {
    if (f.FindTensor(t.name) != &t) std::abort();
    auto bytes = f.Data(t);
    // Dequantize allocates rows x ne[0] floats: leave out what a 1 MiB input cannot hold anyway.
    if (bytes.size() > (1u << 20)) continue;
    auto x = gguf::Dequantize(t.type, bytes.data(), bytes.size(), t.rows(), t.ne[0]);
    if (!x.ok()) std::abort();  // Open checked the sizes; the reader must read what it accepted
    f.Release(t);
  }
  return 0;
}
