// The `pajama` executable: parses the command line and hands over to a subcommand.
// Exit codes: 0 done (or --help/--version); 1 an error; 2 a usage or config error;
// `pajama train` also returns kExitStopped (75) after a stop signal's checkpoint.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <ranges>
#include <string>

#include "core/error.h"
#include "launch/command.h"

int main(int argc, char** argv) {
  CLI::App app{"pajama: pretrain LLaMA-architecture models from one CPU to many GPUs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "pajama 0.1");
  auto cmds = pajama::cli::commands();
  std::sort(cmds.begin(), cmds.end());
  for (auto& [name, registrar] : cmds) registrar(app);
  // CLI11 would only say "A subcommand is required" for a misspelt one.
  if (argc > 1 && argv[1][0] != '-' &&
      std::none_of(cmds.begin(), cmds.end(), [&](const auto& c) { return c.first == argv[1]; })) {
    const std::string names = pajama::join(std::views::keys(cmds));
    std::fprintf(stderr, "error: unknown command '%s'; the commands are %s (pajama --help)\n", argv[1],
                 names.c_str());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints the message (or the help); --help and --version are CLI::Success and
    // exit 0. Every usage error is exit 2 like a config error, not CLI11's own codes
    // (106 for a missing option, 109 for an unknown argument, ...).
    const int cli_code = app.exit(e);
    return dynamic_cast<const CLI::Success*>(&e) != nullptr ? cli_code : 2;
  } catch (const pajama::cli::ExitCode& e) {
    return e.code;
  } catch (const pajama::ConfigError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
