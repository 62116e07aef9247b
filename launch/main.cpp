// The `pajama` executable: parses the command line and hands over to a subcommand.
#include <algorithm>
#include <cstdio>
#include <exception>

#include "core/error.h"
#include "launch/command.h"

int main(int argc, char** argv) {
  CLI::App app{"pajama: pretrain LLaMA-architecture models from one CPU to many GPUs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "pajama 0.1");
  auto cmds = pajama::cli::commands();
  std::sort(cmds.begin(), cmds.end());
  for (auto& [name, registrar] : cmds) registrar(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
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
