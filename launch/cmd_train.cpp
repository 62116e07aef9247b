// pajama train --config X.yaml [--set key=value ...]
#include <memory>
#include <string>
#include <vector>

#include "launch/command.h"
#include "trainer/trainer.h"

namespace {

struct TrainOptions {
  std::string config;
  std::vector<std::string> overrides;
};

void register_train(CLI::App& app) {
  auto opts = std::make_shared<TrainOptions>();
  auto* sub = app.add_subcommand("train", "Train a LLaMA model from a YAML config (mpirun/srun for several ranks)");
  sub->add_option("--config,-c", opts->config, "YAML config, e.g. configs/tiny.yaml")->required();
  sub->add_option("--set", opts->overrides, "Override a config key: --set train.max_steps=100 (repeatable)")
      ->allow_extra_args(false);
  sub->callback([opts] {
    const int code = pajama::run_training(opts->config, opts->overrides);
    if (code != 0) throw pajama::cli::ExitCode{code};
  });
}

}  // namespace

PAJAMA_COMMAND(train, register_train);
