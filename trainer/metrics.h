// Training metrics: one console line per log step (step, loss, lr, grad norm,
// tokens/s, MFU, elapsed, ETA) on rank 0, the same figures as one JSON object per
// line in <run dir>/metrics.jsonl (a resumed run appends), and TensorBoard scalars
// in <run dir>/tb.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <memory>
#include <string>

#include "trainer/tensorboard_writer.h"

namespace pajama {

struct StepMetrics {
  int64_t step = 0;              // optimizer steps done (1-based after the first step)
  int64_t max_steps = 0;
  double loss = 0;               // mean training loss over the global batch of this step
  double lr = 0;
  double grad_norm = 0;          // global gradient norm before clipping
  double tokens_per_s = 0;       // over all ranks, since the previous log line
  std::optional<double> mfu;     // model FLOPs utilisation, when the device peak is known
  double elapsed_s = 0;          // since this process started training
  int64_t tokens_seen = 0;       // over the whole run, including before a resume
  double eta_s = 0;
  // Peak memory so far above the process at rest (before the model existed), the largest
  // over ranks, in MB: peak RSS (VmHWM) on the CPU, the caching allocator's peak on CUDA.
  double peak_memory_mb = 0;
  int64_t skipped_steps = 0;     // updates skipped so far in this process (train.nonfinite, train.spike_factor)
  // CUDA host synchronisations inside the training steps (train_step and the end-of-step
  // agreement; not logging, evaluation or saving) since the previous record, on rank 0;
  // only with PAJAMA_COUNT_HOST_SYNCS=1 (parallel/host_sync.h).
  std::optional<int64_t> host_syncs;
  int64_t host_sync_steps = 0;   // the steps host_syncs covers
};

class MetricsLogger {
 public:
  // Only the main rank writes; others construct it with enabled = false. A run resumed
  // at `resumed_step` > 0 first drops the records of later steps (logged before the
  // process that wrote them died) from metrics.jsonl, eval.jsonl and skipped_steps.jsonl,
  // and tells TensorBoard to do the same, so no step appears twice.
  MetricsLogger(const std::string& run_dir, bool enabled, int64_t resumed_step = 0);
  ~MetricsLogger();
  MetricsLogger(const MetricsLogger&) = delete;
  MetricsLogger& operator=(const MetricsLogger&) = delete;

  void log(const StepMetrics& m);
  // One more TensorBoard scalar (validation figures), flushed at once.
  void scalar(const std::string& tag, int64_t step, double value);

 private:
  bool enabled_;
  std::FILE* jsonl_ = nullptr;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
};

// Dense bf16 peak FLOP/s of a GPU by its product name (H100/H200/H800/GH200 SXM 989e12,
// H100 PCIe 756e12, A100/A800 312e12, L40S 362e12, B200 2.25e15); 0 when unknown.
double known_peak_flops(const std::string& device_name);

}  // namespace pajama
