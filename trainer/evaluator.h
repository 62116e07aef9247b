// Validation loss every eval.every_steps steps, per validation source (each of
// data.valid_datasets, or each training dataset's valid_fraction part, by `name`): the
// same fixed samples each time (the first eval.batches global batches of that source),
// split over the ranks like training batches, forward only, averaged over all ranks in
// one all-reduce; the total is the sources' weighted mean. Results go to the console,
// <run dir>/eval.jsonl ({"step", "eval_loss", "sources": {name: loss}}) and TensorBoard
// (eval/loss, eval/<name>/loss, eval/<name>/ppl) through the scalar sink.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/sample_source.h"
#include "data/sample_source_factory.h"
#include "data/token_loader.h"
#include "model/llama.h"
#include "parallel/communicator.h"

namespace pajama {

struct EvalConfig {
  int64_t every_steps = 0;  // 0 = no evaluation
  int64_t batches = 10;     // global batches of validation samples per evaluation
  void validate() const;
};

// Where evaluation scalars go besides eval.jsonl (the trainer's TensorBoard writer).
using ScalarSink = std::function<void(const std::string& tag, int64_t step, double value)>;

class Evaluator {
 public:
  // sources may be empty (no validation data): then enabled() is false.
  Evaluator(const EvalConfig& cfg, std::vector<NamedSampleSource> sources, int64_t global_batch, int64_t micro_batch,
            Communicator& comm, const std::string& run_dir, ScalarSink sink = nullptr);
  ~Evaluator();

  bool enabled() const { return !sources_.empty(); }
  bool should_run(int64_t step, int64_t max_steps) const;
  // Collective. Returns the weighted mean validation loss over the sources.
  double run(Llama& model, const torch::Device& device, int64_t step);

 private:
  struct Source {
    std::string name;
    double weight = 1.0;
    std::unique_ptr<TokenLoader> loader;
  };
  EvalConfig cfg_;
  Communicator& comm_;
  std::vector<Source> sources_;
  std::vector<int32_t> buffer_;
  std::FILE* jsonl_ = nullptr;
  ScalarSink sink_;
};

}  // namespace pajama
