#include "cli/commands.h"

namespace quarry::cli {

void AddServiceCommands(CLI::App& app, GlobalOptions& global) {}

}  // namespace quarry::cli
