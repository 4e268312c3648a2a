#include "cli/commands.h"

namespace quarry::cli {

void AddTensorCommands(CLI::App& app, GlobalOptions& global) {}

}  // namespace quarry::cli
