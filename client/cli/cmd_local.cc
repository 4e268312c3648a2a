#include "cli/commands.h"

namespace quarry::cli {

void AddLocalCommands(CLI::App& app, GlobalOptions& global) {}

}  // namespace quarry::cli
