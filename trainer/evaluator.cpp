#include "trainer/evaluator.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"

namespace pajama {

void EvalConfig::validate() const {
  PAJAMA_CHECK_AS(ConfigError, every_steps >= 0, "eval.every_steps must be >= 0 (0 = off), got ", every_steps);
  PAJAMA_CHECK_AS(ConfigError, batches > 0, "eval.batches must be positive, got ", batches);
}

Evaluator::Evaluator(const EvalConfig& cfg, std::shared_ptr<const SampleSource> source, int64_t global_batch,
                     int64_t micro_batch, Communicator& comm, const std::string& run_dir)
    : cfg_(cfg), comm_(comm) {
  if (source == nullptr || cfg.every_steps == 0) return;
  loader_ = std::make_unique<TokenLoader>(std::move(source), global_batch, micro_batch, comm.rank(), comm.size());
  buffer_.resize(static_cast<size_t>(micro_batch * (loader_->seq_len() + 1)));
  if (comm.rank() == 0) {
    const auto path = std::filesystem::path(run_dir) / "eval.jsonl";
    jsonl_ = std::fopen(path.c_str(), "a");
    PAJAMA_CHECK(jsonl_ != nullptr, "cannot open ", path.string(), ": ", std::strerror(errno));
  }
}

Evaluator::~Evaluator() {
  if (jsonl_ != nullptr) std::fclose(jsonl_);
}

bool Evaluator::should_run(int64_t step, int64_t max_steps) const {
  return enabled() && (step % cfg_.every_steps == 0 || step == max_steps);
}

double Evaluator::run(Llama& model, const torch::Device& device, int64_t step) {
  torch::NoGradGuard no_grad;
  const int64_t b = loader_->micro_batch();
  const int64_t t = loader_->seq_len();
  double local = 0;
  int64_t count = 0;
  loader_->set_consumed_samples(0);
  for (int64_t batch = 0; batch < cfg_.batches; ++batch) {
    for (int64_t m = 0; m < loader_->num_micro_steps(); ++m) {
      loader_->fill_micro_batch(m, buffer_.data());
      auto tokens = torch::from_blob(buffer_.data(), {b, t + 1}, torch::kInt32).to(device, torch::kInt64);
      local += model->loss(tokens.narrow(1, 0, t), tokens.narrow(1, 1, t)).item<double>();
      ++count;
    }
    loader_->advance();
  }
  torch::Tensor mean = torch::full({1}, local / static_cast<double>(count), torch::kFloat32).to(comm_.device());
  CommSite site("eval: mean loss");
  comm_.all_reduce(mean, ReduceOp::kAvg);
  const double loss = mean.item<double>();
  log_info("eval  step ", step, " | loss ", loss, " | ppl ", std::exp(loss));
  if (jsonl_ != nullptr) {
    const std::string line = nlohmann::json{{"step", step}, {"eval_loss", loss}}.dump() + "\n";
    std::fwrite(line.data(), 1, line.size(), jsonl_);
    std::fflush(jsonl_);
  }
  return loss;
}

}  // namespace pajama
