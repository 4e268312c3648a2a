// The `quarry` CLI's subcommand groups. Each Add*Commands registers its subcommands; their
// callbacks only fill an options struct and call the client or core library. A callback reports
// failure by throwing CLI::RuntimeError(exit_code) after printing a message to stderr.
// Exit codes: 0 success, 1 the operation failed (invalid config, job failed, ...), 2 bad usage,
// 3 the server could not be reached.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"

namespace quarry::cli {

struct GlobalOptions {
  std::string server;  // --server; default $QUARRY_SERVER, then 127.0.0.1:50051
  bool json = false;   // --json: machine-readable output
  // --token-file (default $QUARRY_TOKEN), --tls-ca, --tls-cert, --tls-key, --tls-server-name;
  // default: no token, plaintext.
  std::string token_file;
  std::string tls_ca, tls_cert, tls_key, tls_server_name;
};

void AddConfigCommands(CLI::App& app, GlobalOptions& global);   // cmd_config.cc
void AddTensorCommands(CLI::App& app, GlobalOptions& global);   // cmd_tensor.cc
void AddLocalCommands(CLI::App& app, GlobalOptions& global);    // cmd_local.cc (quantize-local, eval)
void AddServiceCommands(CLI::App& app, GlobalOptions& global);  // cmd_service.cc (submit, watch, ...)

// Prints "quarry: <message>" to stderr and throws CLI::RuntimeError with the exit code that fits
// the status (3 for UNAVAILABLE / DEADLINE_EXCEEDED, else 1).
[[noreturn]] void Fail(const absl::Status& status);
// Reads a whole file; fails with a clear message.
std::string ReadFileOrDie(const std::string& path);

}  // namespace quarry::cli
