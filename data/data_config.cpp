#include "data/data_config.h"

#include <cmath>

#include "core/error.h"

namespace pajama {

void DataConfig::validate() const {
  PAJAMA_CHECK_FIELD(source == "mock" || source == "shards", source, "source must be mock or shards; got '", source,
                     "'");
  if (source == "shards" && datasets.empty()) {
    throw ConfigError({PAJAMA_FIELD(datasets), PAJAMA_FIELD(source)},
                      "datasets is empty; source: shards needs at least one {path: PREFIX, weight: W}");
  }
  for (const auto* list : {&datasets, &valid_datasets}) {
    const char* list_name = list == &datasets ? "datasets" : "valid_datasets";
    for (size_t i = 0; i < list->size(); ++i) {
      const DatasetSpec& d = (*list)[i];
      const std::string item = str(list_name, "[", i, "]");
      if (d.path.empty()) throw ConfigError({ConfigField{item + ".path", &d.path}}, item + ".path is empty");
      if (!(std::isfinite(d.weight) && d.weight > 0)) {
        throw ConfigError({ConfigField{item + ".weight", &d.weight}},
                          str(item, ".weight is ", d.weight, " (", d.path,
                              "); weights must be positive, leave a dataset out to not use it"));
      }
    }
  }
  PAJAMA_CHECK_FIELD(valid_fraction >= 0 && valid_fraction < 1, valid_fraction,
                     "valid_fraction must be in [0, 1), got ", valid_fraction);
  if (!valid_datasets.empty() && valid_fraction != 0) {
    throw ConfigError({PAJAMA_FIELD(valid_datasets), PAJAMA_FIELD(valid_fraction)},
                      "set either valid_datasets or valid_fraction, not both");
  }
}

}  // namespace pajama
