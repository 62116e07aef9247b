// Collectives on tensors behind one small interface. MPI implements it for CPU
// tensors, NCCL for CUDA tensors (its unique id broadcast over MPI); a world of one
// is an identity. Every collective is bounded by CommConfig::timeout_s: a failed or
// timed-out collective throws CommError naming the rank and the operation, and
// abort() brings every rank down so no peer waits forever.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "parallel/parallel_config.h"
#include "parallel/world.h"

namespace pajama {

enum class ReduceOp { kSum, kAvg, kMax };

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "single", "mpi", "nccl"
  // Where this communicator's tensors live (CPU for MPI, the rank's GPU for NCCL).
  virtual torch::Device device() const = 0;

  // In place over all ranks.
  virtual void all_reduce(torch::Tensor& t, ReduceOp op) = 0;
  // input holds size() equal contiguous chunks; rank r receives the reduction of chunk r.
  virtual void reduce_scatter(const torch::Tensor& input, torch::Tensor& output, ReduceOp op) = 0;
  // output holds size() chunks of input.numel(); chunk r comes from rank r.
  virtual void all_gather(const torch::Tensor& input, torch::Tensor& output) = 0;
  // Uneven variants over one contiguous range split into size() consecutive segments
  // of counts[r] elements (a count may be 0): rank r receives the reduction of segment r
  // into output (counts[rank()] elements) ...
  virtual void reduce_scatter_v(const torch::Tensor& input, torch::Tensor& output,
                                const std::vector<int64_t>& counts, ReduceOp op) = 0;
  // As reduce_scatter_v, but output += the reduction (output may be of a wider dtype,
  // e.g. fp32 accumulating bf16 traffic), and input is the backends' scratch: its
  // contents are undefined afterwards (no temporary is allocated). Ordered like the
  // collective itself: on NCCL the addition runs on the communicator's stream.
  virtual void reduce_scatter_v_add(torch::Tensor& input, torch::Tensor& output,
                                    const std::vector<int64_t>& counts, ReduceOp op) = 0;
  // ... and segment r of output (sum(counts) elements) receives rank r's input
  // (counts[r] elements). input may be output's own segment (in place).
  virtual void all_gather_v(const torch::Tensor& input, torch::Tensor& output,
                            const std::vector<int64_t>& counts) = 0;
  virtual void broadcast(torch::Tensor& t, int root) = 0;
  virtual void barrier() = 0;
  // Waits for every collective issued so far (NCCL: on its stream; MPI: no-op).
  // NCCL: the caller's current CUDA stream waits (an event, not a host sync).
  virtual void synchronize() {}
  // Overlap mode (NCCL only; a no-op elsewhere). By default the caller's current stream
  // waits for each collective's result, so results are safe to use at once. While
  // overlap is on, it does not: the compute stream runs ahead (backward keeps going while
  // buckets reduce) and the caller must call synchronize() before reading the results.
  virtual void set_overlap(bool /*on*/) {}

  // Payload bytes this rank has sent through collectives so far, counted with the
  // standard ring volumes: all_reduce 2(N-1)/N * bytes, reduce_scatter and
  // all_gather (N-1)/N * full bytes (the _v variants: of sum(counts) elements),
  // broadcast bytes on the root; barrier 0. Each call's share is rounded down; zero for N = 1.
  virtual int64_t bytes_sent() const = 0;
  // The deadline of each collective from now on (parallel.timeout_s at the start);
  // 0 for a world of one, which never waits. ScopedCommTimeout raises it for a scope.
  virtual double timeout_s() const { return 0; }
  virtual void set_timeout_s(double /*seconds*/) {}
  // Ends the whole job with `code` (MPI_Abort / ncclCommAbort + MPI_Abort).
  [[noreturn]] virtual void abort(int code) = 0;
  // This rank's last collectives (operation, sequence number, elements, dtype, start
  // time, CommSite, done or pending), one per line; a timed-out collective's CommError
  // carries the same text. Empty for a world of one.
  virtual std::string recent_collectives() const { return ""; }
};

// Names where this thread's collectives come from in recent_collectives() (a string
// literal such as "zero: reduce bucket"); scopes nest and restore the previous name.
class CommSite {
 public:
  explicit CommSite(const char* name);
  ~CommSite();
  CommSite(const CommSite&) = delete;
  CommSite& operator=(const CommSite&) = delete;
  static const char* current();

 private:
  const char* previous_;
};

// MPI is initialised once per process by this call (or earlier ones); safe to call again.
// A world of one -> identity ("single") on any device; device CPU -> MPI backend;
// device CUDA -> NCCL backend on GPU local_rank (ConfigError in a build without CUDA).
std::unique_ptr<Communicator> make_communicator(const World& world, const torch::Device& device,
                                                const CommConfig& config);

// Host-side helpers on top of a communicator (small control messages).
std::string broadcast_string(Communicator& comm, const std::string& value, int root);
// True on every rank if `flag` is true on any rank.
bool any_rank(Communicator& comm, bool flag);
// Element-wise maximum over ranks of a few host integers (one all-reduce).
std::vector<int64_t> max_over_ranks(Communicator& comm, std::vector<int64_t> values);

// Collectives that wait on another rank's file I/O (a checkpoint's save or verification)
// get their own deadline: at least `seconds`, never less than the communicator's own.
class ScopedCommTimeout {
 public:
  ScopedCommTimeout(Communicator& comm, double seconds) : comm_(comm), saved_(comm.timeout_s()) {
    if (seconds > saved_) comm_.set_timeout_s(seconds);
  }
  ~ScopedCommTimeout() { comm_.set_timeout_s(saved_); }
  ScopedCommTimeout(const ScopedCommTimeout&) = delete;
  ScopedCommTimeout& operator=(const ScopedCommTimeout&) = delete;

 private:
  Communicator& comm_;
  double saved_;
};

}  // namespace pajama
