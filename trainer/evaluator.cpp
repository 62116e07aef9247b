#include "trainer/evaluator.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "trainer/micro_batch.h"

namespace pajama {

void EvalConfig::validate() const {
  PAJAMA_CHECK_FIELD(every_steps >= 0, every_steps, "every_steps must be >= 0 (0 = off), got ", every_steps);
  PAJAMA_CHECK_FIELD(batches > 0, batches, "batches must be positive, got ", batches);
}

Evaluator::Evaluator(const EvalConfig& cfg, std::vector<NamedSampleSource> sources, int64_t global_batch,
                     int64_t micro_batch, Communicator& comm, const std::string& run_dir, ScalarSink sink)
    : cfg_(cfg), comm_(comm), sink_(std::move(sink)) {
  if (sources.empty() || cfg.every_steps == 0) return;
  for (auto& s : sources) {
    auto loader = std::make_unique<TokenLoader>(std::move(s.source), global_batch, micro_batch, comm.rank(), comm.size());
    sources_.push_back(Source{s.name, s.weight, std::move(loader)});
  }
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
  // This rank's mean loss of each source, averaged over the ranks in one all-reduce.
  torch::Tensor means = torch::zeros({static_cast<int64_t>(sources_.size())}, torch::kFloat64);
  for (size_t i = 0; i < sources_.size(); ++i) {
    TokenLoader& loader = *sources_[i].loader;
    double local = 0;
    int64_t count = 0;
    loader.set_consumed_samples(0);
    for (int64_t batch = 0; batch < cfg_.batches; ++batch) {
      for (int64_t m = 0; m < loader.num_micro_steps(); ++m) {
        const MicroBatch mb = load_micro_batch(loader, m, buffer_, device);
        local += model->loss(mb.inputs, mb.targets).item<double>();
        ++count;
      }
      loader.advance();
    }
    means[static_cast<int64_t>(i)] = local / static_cast<double>(count);
  }
  // fp64 on the CPU (MPI); NCCL takes fp32 on the device.
  torch::Tensor reduced = comm_.device().is_cuda() ? means.to(torch::kFloat32).to(comm_.device()) : means;
  CommSite site("eval: mean loss");
  comm_.all_reduce(reduced, ReduceOp::kAvg);
  means = reduced.to(torch::kCPU, torch::kFloat64);
  double total = 0, weights = 0;
  nlohmann::ordered_json per_source = nlohmann::ordered_json::object();
  std::string line = str("eval  step ", step);
  std::string detail;
  for (size_t i = 0; i < sources_.size(); ++i) {
    const double loss = means[static_cast<int64_t>(i)].item<double>();
    total += sources_[i].weight * loss;
    weights += sources_[i].weight;
    per_source[sources_[i].name] = loss;
    detail += str(" | ", sources_[i].name, " ", loss);
    if (sink_) {
      sink_("eval/" + sources_[i].name + "/loss", step, loss);
      sink_("eval/" + sources_[i].name + "/ppl", step, std::exp(loss));
    }
  }
  const double loss = total / weights;
  log_info(line, " | loss ", loss, " | ppl ", std::exp(loss), sources_.size() > 1 ? detail : std::string());
  if (sink_) {
    sink_("eval/loss", step, loss);
    sink_("eval/ppl", step, std::exp(loss));
  }
  if (jsonl_ != nullptr) {
    nlohmann::ordered_json j;
    j["step"] = step;
    j["eval_loss"] = loss;
    j["sources"] = per_source;
    const std::string text = j.dump() + "\n";
    std::fwrite(text.data(), 1, text.size(), jsonl_);
    std::fflush(jsonl_);
  }
  return loss;
}

}  // namespace pajama
