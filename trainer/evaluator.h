// Validation loss every eval.every_steps steps: the same fixed validation samples each
// time (the first eval.batches global batches of the validation split), split over the
// ranks like training batches, forward only, averaged over all ranks. Results go to
// the console, <run dir>/eval.jsonl and TensorBoard (eval/loss).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "data/sample_source.h"
#include "data/token_loader.h"
#include "model/llama.h"
#include "parallel/communicator.h"

namespace pajama {

struct EvalConfig {
  int64_t every_steps = 0;  // 0 = no evaluation
  int64_t batches = 10;     // global batches of validation samples per evaluation
  void validate() const;
};

class Evaluator {
 public:
  // source may be null (no validation data): then enabled() is false.
  Evaluator(const EvalConfig& cfg, std::shared_ptr<const SampleSource> source, int64_t global_batch,
            int64_t micro_batch, Communicator& comm, const std::string& run_dir);
  ~Evaluator();

  bool enabled() const { return loader_ != nullptr; }
  bool should_run(int64_t step, int64_t max_steps) const;
  // Collective. Returns the mean validation loss.
  double run(Llama& model, const torch::Device& device, int64_t step);

 private:
  EvalConfig cfg_;
  Communicator& comm_;
  std::unique_ptr<TokenLoader> loader_;
  std::vector<int32_t> buffer_;
  std::FILE* jsonl_ = nullptr;
};

}  // namespace pajama
