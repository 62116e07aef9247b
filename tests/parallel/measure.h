// Measurements for the parallel tests, taken outside the code under test:
// - RecordingCommunicator passes every call through to a real communicator and records
//   what was handed to it (operation, dtype, elements, bytes), so a test can state the
//   traffic a ZeRO stage must produce without trusting the communicator's own count;
// - CpuAllocations hooks c10's CPU allocator reporting (the profiler's memory hook) and
//   sums the bytes allocated (and freed again) while it is installed on this thread:
//   live bytes, as the allocator saw them.
#pragma once

#include <c10/core/Allocator.h>
#include <c10/util/ThreadLocalDebugInfo.h>

#include <cstdlib>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "parallel/communicator.h"

namespace pajama::testing {

struct CommCall {
  std::string op;  // all_reduce, reduce_scatter, all_gather, broadcast, barrier
  torch::ScalarType dtype = torch::kFloat32;
  int64_t elements = 0;  // the whole payload: all_reduce's tensor, reduce-scatter's input, all-gather's output
  int64_t bytes() const { return elements * static_cast<int64_t>(c10::elementSize(dtype)); }
};

class RecordingCommunicator final : public Communicator {
 public:
  explicit RecordingCommunicator(Communicator& inner) : inner_(inner) {}

  const std::vector<CommCall>& calls() const { return calls_; }
  void clear() { calls_.clear(); }

  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  std::string backend() const override { return inner_.backend(); }
  torch::Device device() const override { return inner_.device(); }
  void all_reduce(torch::Tensor& t, ReduceOp op) override {
    record("all_reduce", t);
    inner_.all_reduce(t, op);
  }
  void reduce_scatter(const torch::Tensor& input, torch::Tensor& output, ReduceOp op) override {
    record("reduce_scatter", input);
    inner_.reduce_scatter(input, output, op);
  }
  void all_gather(const torch::Tensor& input, torch::Tensor& output) override {
    record("all_gather", output);
    inner_.all_gather(input, output);
  }
  void reduce_scatter_v(const torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& counts,
                        ReduceOp op) override {
    record("reduce_scatter", input);
    inner_.reduce_scatter_v(input, output, counts, op);
  }
  void reduce_scatter_v_add(torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& counts,
                            ReduceOp op) override {
    record("reduce_scatter", input);
    inner_.reduce_scatter_v_add(input, output, counts, op);
  }
  void all_gather_v(const torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& counts) override {
    record("all_gather", output);
    inner_.all_gather_v(input, output, counts);
  }
  void broadcast(torch::Tensor& t, int root) override {
    record("broadcast", t);
    inner_.broadcast(t, root);
  }
  void barrier() override {
    calls_.push_back({"barrier", torch::kUInt8, 0});
    inner_.barrier();
  }
  void synchronize() override { inner_.synchronize(); }
  void set_overlap(bool on) override { inner_.set_overlap(on); }
  int64_t bytes_sent() const override { return inner_.bytes_sent(); }
  double timeout_s() const override { return inner_.timeout_s(); }
  void set_timeout_s(double seconds) override { inner_.set_timeout_s(seconds); }
  [[noreturn]] void abort(int code) override {
    inner_.abort(code);
    std::abort();  // not reached: the inner abort ends the job
  }
  std::string recent_collectives() const override { return inner_.recent_collectives(); }

 private:
  void record(const char* op, const torch::Tensor& t) { calls_.push_back({op, t.scalar_type(), t.numel()}); }

  Communicator& inner_;
  std::vector<CommCall> calls_;
};

// Bytes of CPU tensor storage allocated (and not yet freed) since install, from c10's
// allocator reporting on this thread. Only blocks allocated
// while installed count: c10 also reports frees of blocks it saw allocated under an
// earlier hook (its table is process-wide), and those are ignored here.
class CpuAllocations {
 public:
  CpuAllocations() : stats_(std::make_shared<Stats>()), guard_(c10::DebugInfoKind::PROFILER_STATE, stats_) {}
  int64_t live() const { return stats_->live; }

 private:
  struct Stats final : c10::MemoryReportingInfoBase {
    void reportMemoryUsage(void* ptr, int64_t alloc_size, size_t /*total_allocated*/, size_t /*total_reserved*/,
                           c10::Device device) override {
      if (!device.is_cpu()) return;
      if (alloc_size > 0) {
        sizes[ptr] = alloc_size;
        live += alloc_size;
      } else if (auto it = sizes.find(ptr); it != sizes.end()) {
        live -= it->second;
        sizes.erase(it);
      }
    }
    bool memoryProfilingEnabled() const override { return true; }
    std::unordered_map<void*, int64_t> sizes;
    int64_t live = 0;
  };
  std::shared_ptr<Stats> stats_;
  c10::DebugInfoGuard guard_;
};

}  // namespace pajama::testing
