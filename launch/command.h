// Subcommand registry for the `pajama` executable. Each cmd_<name>.cpp defines
//   void register_<name>(CLI::App& app);   // adds its subcommand, options and callback
//   PAJAMA_COMMAND(<name>, register_<name>);
// The callback runs the command and throws pajama errors on failure; main() turns
// them into one "error: ..." line and the exit code (2 for ConfigError and command-line
// errors, 1 otherwise); a command may end with another code through ExitCode.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace pajama::cli {

using CommandRegistrar = void (*)(CLI::App&);
bool add_command(const char* name, CommandRegistrar registrar);
std::vector<std::pair<std::string, CommandRegistrar>>& commands();

}  // namespace pajama::cli

#define PAJAMA_COMMAND(name, registrar) \
  static const bool pajama_command_registered_##name = ::pajama::cli::add_command(#name, registrar)

namespace pajama::cli {
// Thrown by a command callback to end the process with a specific exit code after
// unwinding (destructors run, unlike std::exit).
struct ExitCode {
  int code;
};
}  // namespace pajama::cli
