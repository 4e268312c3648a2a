// Test oracle: the real libsentencepiece (Debian's 0.1.97), in a process of its own. It cannot
// share a process with LibTorch (its static copy of protobuf clashes with libprotobuf's), so
// core's tokenizer re-implements SentencePiece and tests/tokenizer compares the two through this
// executable, which links libsentencepiece and libsentencepiece_train and nothing else of ours.
//
//   quarry_spm_reference serve MODEL < requests > responses
//     One request per line, one response line per request:
//       E <hex of the text's bytes>   ->  the ids of Encode(text), space separated
//       D <id> <id> ...               ->  "OK <hex of Decode(ids)>" or "ERR <message>"
//       P <id>                        ->  hex of IdToPiece(id)
//       I                             ->  "<unk_id> <bos_id> <eos_id> <pad_id> <piece_size>"
//   quarry_spm_reference train --input=... --model_prefix=... [other spm_train flags]
//     Trains a model with SentencePieceTrainer::Train (the flags of spm_train).
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "sentencepiece_processor.h"
#include "sentencepiece_trainer.h"

namespace {

std::string ToHex(const std::string& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

bool FromHex(const std::string& hex, std::string* out) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return false;
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

int Serve(const char* model_path) {
  sentencepiece::SentencePieceProcessor sp;
  const auto status = sp.Load(model_path);
  if (!status.ok()) {
    std::cerr << "cannot load " << model_path << ": " << status.ToString() << "\n";
    return 2;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.size() < 1) continue;
    const char op = line[0];
    const std::string arg = line.size() > 2 ? line.substr(2) : "";
    if (op == 'E') {
      std::string text;
      if (!FromHex(arg, &text)) {
        std::cerr << "bad hex: " << arg << "\n";
        return 2;
      }
      std::vector<int> ids;
      const auto s = sp.Encode(text, &ids);
      if (!s.ok()) {
        std::cout << "ERR " << s.ToString() << "\n";
        continue;
      }
      for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
      std::cout << "\n";
    } else if (op == 'D') {
      std::vector<int> ids;
      std::istringstream in(arg);
      int id;
      while (in >> id) ids.push_back(id);
      std::string text;
      const auto s = sp.Decode(ids, &text);
      if (!s.ok()) {
        std::cout << "ERR " << s.ToString() << "\n";
      } else {
        std::cout << "OK " << ToHex(text) << "\n";
      }
    } else if (op == 'P') {
      std::cout << ToHex(sp.IdToPiece(std::stoi(arg))) << "\n";
    } else if (op == 'I') {
      std::cout << sp.unk_id() << " " << sp.bos_id() << " " << sp.eos_id() << " " << sp.pad_id()
                << " " << sp.GetPieceSize() << "\n";
    } else {
      std::cerr << "unknown request: " << line << "\n";
      return 2;
    }
  }
  std::cout.flush();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "serve") return Serve(argv[2]);
  if (argc >= 2 && std::string(argv[1]) == "train") {
    std::string flags;
    for (int i = 2; i < argc; ++i) flags += std::string(i > 2 ? " " : "") + argv[i];
    const auto s = sentencepiece::SentencePieceTrainer::Train(flags);
    if (!s.ok()) {
      std::cerr << "training failed: " << s.ToString() << "\n";
      return 1;
    }
    return 0;
  }
  std::cerr << "usage: quarry_spm_reference serve MODEL | train FLAGS...\n";
  return 2;
}
