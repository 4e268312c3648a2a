// quarry: the command-line client. Each subcommand only fills an options struct and calls the
// client or core library.
#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  CLI::App app{"quarry: quantize large language models with AMD Quark's configuration language"};
  CLI11_PARSE(app, argc, argv);
  return 0;
}
