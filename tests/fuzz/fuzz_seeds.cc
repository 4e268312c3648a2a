// Writes the seed corpus of every fuzz target from the repository's fixtures:
//   fuzz_seeds SOURCE_DIR OUT_DIR  ->  OUT_DIR/<target>/<seed name>
// safetensors: small files of every dtype from SafetensorsWriter (whole-file mode) and the
//   fixture models' real headers (header mode); safetensors_index: indexes naming the shard the
//   target writes and the writer's own sharded index; config_json: examples/configs/*.json and
//   every preset's Quark JSON; proto_config: JobAssignments carrying those configs;
//   hf_tokenizer: tests/data/tokenizers/{gpt2,llama3}_tiny.json; sentencepiece: the fixture
//   models' tokenizer.model; gguf: small GGUFs from GgufWriter with a tensor of every type and the
//   SentencePiece / byte-level BPE tokenizer metadata.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "convert/config_convert.h"
#include "export/gguf_file.h"
#include "export/gguf_format.h"
#include "export/gguf_tokenizer.h"
#include "fuzz_util.h"
#include "quarry/config_json.h"
#include "quarry/presets.h"
#include "quarry/safetensors.h"
#include "quarry/tokenizer.h"
#include "quarry/v1/worker.pb.h"

namespace fs = std::filesystem;
namespace gguf = quarry::exporter::gguf;

namespace {

fs::path g_out;
int g_count = 0;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "fuzz_seeds: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Check(absl::StatusOr<T> v, const std::string& what) {
  if (!v.ok()) Die(what + ": " + v.status().ToString());
  return *std::move(v);
}
void Check(const absl::Status& s, const std::string& what) {
  if (!s.ok()) Die(what + ": " + s.ToString());
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) Die("cannot read " + p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void Seed(const std::string& target, const std::string& name, const std::string& bytes) {
  fs::create_directories(g_out / target);
  std::ofstream out(g_out / target / name, std::ios::binary);
  out << bytes;
  if (!out) Die("cannot write " + (g_out / target / name).string());
  ++g_count;
}

std::string Bytes(size_t n, int salt) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 37 + salt * 11) & 0xff);
  return s;
}

void SafetensorsSeeds(const fs::path& src) {
  using quarry::StDtype;
  // One tensor of every dtype, then a two-shard model (its index is an index seed).
  const fs::path dir = fs::path(quarry::fuzz::ScratchDir()) / "st";
  {
    auto w = Check(quarry::SafetensorsWriter::Create(dir.string(), {}), "SafetensorsWriter");
    const StDtype all[] = {StDtype::kBool, StDtype::kU8,   StDtype::kI8,     StDtype::kU16,
                           StDtype::kI16,  StDtype::kU32,  StDtype::kI32,    StDtype::kU64,
                           StDtype::kI64,  StDtype::kF16,  StDtype::kBF16,   StDtype::kF32,
                           StDtype::kF64,  StDtype::kF8E4M3, StDtype::kF8E5M2, StDtype::kF8E8M0};
    int k = 0;
    for (StDtype d : all) {
      std::vector<int64_t> shape = k % 3 == 0 ? std::vector<int64_t>{2, 3}
                                              : std::vector<int64_t>{static_cast<int64_t>(k % 4)};
      int64_t n = 1;
      for (int64_t s : shape) n *= s;
      Check(w->Add(std::string("t.") + std::string(quarry::StDtypeName(d)), d, shape,
                   absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(
                                           Bytes(n * quarry::StDtypeSize(d), k).data()),
                                       n * quarry::StDtypeSize(d))),
            "Add");
      ++k;
    }
    Check(w->Finish(), "Finish");
  }
  const std::string file = ReadFile(dir / "model.safetensors");
  Seed("safetensors", "all_dtypes", std::string(1, '\0') + file);
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(static_cast<uint8_t>(file[i])) << (8 * i);
  Seed("safetensors", "all_dtypes_header", "\x01" + file.substr(8, header_len));
  for (const char* model : {"tiny-llama-kjv", "tiny-opt-kjv"}) {
    auto f = Check(quarry::SafetensorsFile::Open(
                       (src / "tests/data/models" / model / "model.safetensors").string()),
                   model);
    Seed("safetensors", std::string(model) + "_header",
         "\x01" + quarry::SafetensorsHeaderJson(f->tensors(), f->metadata()));
  }
  {
    quarry::SafetensorsWriter::Options o;
    o.max_shard_bytes = 64;
    const fs::path sharded = fs::path(quarry::fuzz::ScratchDir()) / "sharded";
    auto w = Check(quarry::SafetensorsWriter::Create(sharded.string(), o), "SafetensorsWriter");
    for (int i = 0; i < 4; ++i) {
      const std::string b = Bytes(48, i);
      Check(w->Add("layers." + std::to_string(i) + ".weight", StDtype::kF32, {3, 4},
                   absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(b.data()), b.size())),
            "Add");
    }
    Check(w->Finish(), "Finish");
    Seed("safetensors_index", "writer_index", ReadFile(sharded / "model.safetensors.index.json"));
    Seed("safetensors", "shard_1", std::string(1, '\0') +
                                       ReadFile(sharded / "model-00001-of-00004.safetensors"));
  }
  Seed("safetensors_index", "shard_ab",
       R"({"metadata":{"total_size":8},"weight_map":{"a":"shard.safetensors",)"
       R"("b":"shard.safetensors"}})");
  Seed("safetensors_index", "missing_tensor",
       R"({"weight_map":{"a":"shard.safetensors","c":"shard.safetensors","d":"other.safetensors"}})");
}

std::vector<std::pair<std::string, quarry::Config>> ConfigSeeds(const fs::path& src) {
  std::vector<std::pair<std::string, quarry::Config>> configs;
  for (const auto& e : fs::directory_iterator(src / "examples/configs")) {
    if (e.path().extension() != ".json") continue;
    const std::string json = ReadFile(e.path());
    Seed("config_json", e.path().stem().string(), json);
    configs.emplace_back(e.path().stem().string(),
                         Check(quarry::ConfigFromJson(json), e.path().string()));
  }
  for (const quarry::PresetInfo& p : quarry::ListPresets()) {
    quarry::Config c = Check(quarry::PresetConfig(p.name), "preset " + p.name);
    Seed("config_json", "preset_" + p.name, quarry::ConfigToJson(c));
    configs.emplace_back("preset_" + p.name, std::move(c));
  }
  return configs;
}

void ProtoSeeds(const std::vector<std::pair<std::string, quarry::Config>>& configs) {
  int i = 0;
  for (const auto& [name, config] : configs) {
    quarry::v1::JobAssignment a;
    a.set_job_id("job-" + std::to_string(i));
    a.set_attempt(1);
    *a.mutable_config() = quarry::convert::ToProto(config);
    auto* spec = a.mutable_spec();
    if (i % 2 == 0) *spec->mutable_config() = a.config();
    auto* cal = spec->mutable_calibration();
    cal->set_num_samples(4 + i);
    cal->set_seq_len(64);
    if (i % 3 == 0) {
      spec->mutable_eval()->set_seq_len(128);
      a.set_eval_path("/data/eval.txt");
    }
    spec->mutable_export_options()->set_export_format(
        static_cast<quarry::v1::ExportFormat>(i % 4));
    if (config.algo_config && !config.algo_config->empty())
      *spec->add_extra_algo_config() = quarry::convert::ToProto(config.algo_config->front());
    Seed("proto_config", name, a.SerializeAsString());
    ++i;
  }
}

void TokenizerSeeds(const fs::path& src) {
  for (const char* t : {"gpt2_tiny", "llama3_tiny"})
    Seed("hf_tokenizer", t, ReadFile(src / "tests/data/tokenizers" / (std::string(t) + ".json")));
  Seed("sentencepiece", "tiny_llama_kjv",
       ReadFile(src / "tests/data/models/tiny-llama-kjv/tokenizer.model"));
}

void GgufSeeds(const fs::path& src) {
  const gguf::GgmlType types[] = {gguf::GgmlType::kF32,  gguf::GgmlType::kF16,
                                  gguf::GgmlType::kQ4_0, gguf::GgmlType::kQ4_1,
                                  gguf::GgmlType::kQ8_0, gguf::GgmlType::kBF16,
                                  gguf::GgmlType::kMXFP4};
  // A model directory holding only a byte-level BPE tokenizer.json.
  const fs::path bpe_dir = fs::path(quarry::fuzz::ScratchDir()) / "bpe";
  fs::create_directories(bpe_dir);
  fs::copy_file(src / "tests/data/tokenizers/gpt2_tiny.json", bpe_dir / "tokenizer.json",
                fs::copy_options::overwrite_existing);
  struct Variant {
    const char* name;
    std::string tokenizer_dir;  // "" = no tokenizer metadata
  };
  const Variant variants[] = {
      {"tensors_only", ""},
      {"sentencepiece", (src / "tests/data/models/tiny-llama-kjv").string()},
      {"bpe", bpe_dir.string()},
  };
  for (const Variant& v : variants) {
    const std::string path = (fs::path(quarry::fuzz::ScratchDir()) / "seed.gguf").string();
    auto w = Check(gguf::GgufWriter::Create(path), "GgufWriter");
    w->Set("general.architecture", gguf::Value::Str("llama"));
    w->Set("general.alignment", gguf::Value::U32(32));
    w->Set("llama.block_count", gguf::Value::U32(1));
    w->Set("llama.rope.freq_base", gguf::Value::F32(10000.0f));
    w->Set("quarry.flag", gguf::Value::Bool(true));
    w->Set("quarry.ints", gguf::Value::I32Array({-1, 0, 7}));
    if (!v.tokenizer_dir.empty())
      Check(gguf::AddTokenizerMetadata(
                v.tokenizer_dir,
                Check(quarry::Tokenizer::FromModelDir(v.tokenizer_dir), v.name)->vocab_size(),
                w.get()),
            v.name);
    // Tokenizer seeds keep one tensor (the data is not what they exercise); the others one of
    // each type, 2 rows of 32 (or 64) columns.
    int k = 0;
    for (gguf::GgmlType t : types) {
      if (!v.tokenizer_dir.empty() && k > 0) break;
      const int64_t cols = 32 * (1 + k % 2);
      Check(w->AddTensor(std::string("blk.0.t") + std::to_string(k), {cols, 2}, t,
                         Bytes(2 * gguf::RowBytes(t, cols), k)),
            "AddTensor");
      ++k;
    }
    Check(w->Finish(), "Finish");
    Seed("gguf", v.name, ReadFile(path));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) Die("usage: fuzz_seeds SOURCE_DIR OUT_DIR");
  const fs::path src = argv[1];
  g_out = argv[2];
  SafetensorsSeeds(src);
  ProtoSeeds(ConfigSeeds(src));
  TokenizerSeeds(src);
  GgufSeeds(src);
  std::printf("fuzz_seeds: %d seeds in %s\n", g_count, g_out.c_str());
  return 0;
}
