// quarry: the command-line client. Subcommands only fill an options struct and call the client
// or core library (see cli/commands.h for exit codes).
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/commands.h"

namespace quarry::cli {

void Fail(const absl::Status& status) {
  std::fprintf(stderr, "quarry: %s\n", std::string(status.message()).c_str());
  const bool unreachable = status.code() == absl::StatusCode::kUnavailable ||
                           status.code() == absl::StatusCode::kDeadlineExceeded;
  throw CLI::RuntimeError(unreachable ? 3 : 1);
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail(absl::NotFoundError("cannot open '" + path + "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace quarry::cli

int main(int argc, char** argv) {
  CLI::App app{"quarry: quantize large language models with AMD Quark's configuration language"};
  app.require_subcommand(1);
  app.fallthrough();  // global options are accepted after the subcommand too
  quarry::cli::GlobalOptions global;
  app.add_option("--server", global.server,
                 "Server address host:port or unix:/path (default $QUARRY_SERVER, then "
                 "127.0.0.1:50051)");
  app.add_flag("--json", global.json, "Machine-readable JSON output");
  app.add_option("--token-file", global.token_file, "File whose first line is the bearer token "
                 "(default $QUARRY_TOKEN)");
  app.add_option("--tls-ca", global.tls_ca, "PEM file of the CA that signed the server's "
                 "certificate (enables TLS)");
  app.add_option("--tls-cert", global.tls_cert, "PEM client certificate chain (mutual TLS)");
  app.add_option("--tls-key", global.tls_key, "PEM private key of --tls-cert");
  app.add_option("--tls-server-name", global.tls_server_name, "Name to expect in the server's "
                 "certificate instead of the host of --server");
  quarry::cli::AddConfigCommands(app, global);
  quarry::cli::AddTensorCommands(app, global);
  quarry::cli::AddLocalCommands(app, global);
  quarry::cli::AddServiceCommands(app, global);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {  // a subcommand failed; it printed why
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {     // bad usage, or --help
    return app.exit(e) == 0 ? 0 : 2;
  }
  return 0;
}
