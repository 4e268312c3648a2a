// quarry_tokenize: core's tokenizer as a filter, for comparing with other implementations
// (tests/tools/hf_js_reference.mjs).
//
//   quarry_tokenize PATH [--special] < hex_lines > id_lines
// PATH is a model directory, a tokenizer.json or a tokenizer.model. Each input line is the hex of
// a text's bytes; each output line the ids of Encode(text, --special given), space separated.
#include <iostream>
#include <string>

#include "quarry/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: quarry_tokenize PATH [--special] < hex_lines\n";
    return 2;
  }
  const std::string path = argv[1];
  const bool special = argc > 2 && std::string(argv[2]) == "--special";
  auto tok = path.size() >= 5 && path.substr(path.size() - 5) == ".json"
                 ? quarry::Tokenizer::FromHfJson(path)
             : path.size() >= 6 && path.substr(path.size() - 6) == ".model"
                 ? quarry::Tokenizer::FromSentencePieceFile(path)
                 : quarry::Tokenizer::FromModelDir(path);
  if (!tok.ok()) {
    std::cerr << tok.status() << "\n";
    return 1;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    std::string text;
    for (size_t i = 0; i + 1 < line.size(); i += 2) {
      text.push_back(static_cast<char>(std::stoi(line.substr(i, 2), nullptr, 16)));
    }
    const auto ids = (*tok)->Encode(text, special);
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
    std::cout << "\n";
  }
  return 0;
}
