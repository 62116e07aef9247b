#include "launch/command.h"

namespace pajama::cli {

std::vector<std::pair<std::string, CommandRegistrar>>& commands() {
  static std::vector<std::pair<std::string, CommandRegistrar>> registry;
  return registry;
}

bool add_command(const char* name, CommandRegistrar registrar) {
  commands().emplace_back(name, registrar);
  return true;
}

}  // namespace pajama::cli
