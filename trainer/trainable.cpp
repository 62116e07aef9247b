#include "trainer/trainable.h"

#include <fnmatch.h>

#include <algorithm>

#include "core/error.h"

namespace pajama {

bool trains_everything(const std::vector<std::string>& patterns) {
  return patterns.size() == 1 && patterns.front() == "all";
}

void validate_trainable(const std::vector<std::string>& patterns) {
  const ConfigField field{"trainable", &patterns};
  if (patterns.empty()) {
    throw ConfigError({field}, "trainable is empty; use all, or a list of parameter names or glob patterns");
  }
  for (const auto& p : patterns) {
    if (p.empty()) throw ConfigError({field}, "trainable has an empty pattern");
    if (p == "all" && patterns.size() != 1) {
      throw ConfigError({field}, "trainable: `all` cannot be combined with other patterns");
    }
  }
}

std::vector<std::string> select_trainable(const std::vector<std::string>& names,
                                          const std::vector<std::string>& patterns) {
  validate_trainable(patterns);
  if (trains_everything(patterns)) return names;
  std::vector<bool> used(patterns.size(), false);
  std::vector<std::string> out;
  for (const auto& name : names) {
    bool match = false;
    for (size_t i = 0; i < patterns.size(); ++i) {
      if (fnmatch(patterns[i].c_str(), name.c_str(), 0) == 0) used[i] = match = true;
    }
    if (match) out.push_back(name);
  }
  for (size_t i = 0; i < patterns.size(); ++i) {
    if (used[i]) continue;
    std::string examples;
    for (size_t j = 0; j < std::min<size_t>(names.size(), 3); ++j) examples += "\n  " + names[j];
    if (!names.empty()) examples += "\n  ...\n  " + names.back();
    PAJAMA_FAIL_AS(ConfigError, "train.trainable: '", patterns[i], "' matches no parameter of the model; names are "
                   "Hugging Face's, e.g.:", examples);
  }
  return out;
}

}  // namespace pajama
