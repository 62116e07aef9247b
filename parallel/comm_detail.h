// Internal to parallel/: pieces shared by the communicator backends (MPI runtime,
// byte accounting, argument checks). Not part of the public API.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "parallel/communicator.h"

namespace pajama::detail {

// Initialises MPI once per process (MPI_THREAD_SERIALIZED: CPU autograd hooks run
// collectives on the thread that called backward). Finalized at process exit unless
// a collective failed, because MPI_Finalize can block forever on a broken peer.
void ensure_mpi_initialized();
// Records that a collective failed or timed out (skips MPI_Finalize at exit).
void mark_comm_failed();
bool comm_failed();
// MPI_Abort(MPI_COMM_WORLD, code), never returns.
[[noreturn]] void mpi_abort_world(int code);

const char* op_name(ReduceOp op);
std::string dtype_name(torch::ScalarType t);  // "fp32", "bf16", "int64", ...

// Ring volumes as documented in communicator.h; integer shares rounded down.
int64_t all_reduce_bytes(int64_t bytes, int n);
int64_t scatter_gather_bytes(int64_t full_bytes, int n);

// Argument checks shared by the backends (messages name the rank and the operation).
void check_tensor(const torch::Tensor& t, const torch::Device& device, int rank, const char* op);
void check_counts(const std::vector<int64_t>& counts, int size, int rank, const char* op);
int64_t sum_counts(const std::vector<int64_t>& counts);

// What every backend says when a collective misses its deadline: "[rank r] <what> timed
// out after <s> s; another rank probably failed or stalled — check its log".
std::string timed_out_message(int rank, const std::string& what, double timeout_s);

// Polls `done()` until it returns true (then true) or `timeout_s` seconds have passed
// (then false). OpenMPI progresses non-blocking operations inside MPI_Test and NCCL's
// state is only learnt by asking, so the first polls follow each other at once (a yield
// between them); then short sleeps, so ranks that share cores leave each other time.
template <typename Done>
bool poll_until(double timeout_s, Done&& done) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  for (int64_t polls = 0;; ++polls) {
    if (done()) return true;
    if (Clock::now() > deadline) return false;
    if (polls < 2000) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(polls < 20000 ? 20 : 200));
    }
  }
}

// The hang forensics of a communicator: its last kCapacity collectives (sequence
// number, operation, element count, dtype, wall-clock start, CommSite, done or pending).
// A timed-out collective's error carries dump(), so every rank's log shows where it
// was; the first sequence number at which ranks disagree names the rank that diverged.
class CollectiveRing {
 public:
  static constexpr size_t kCapacity = 16;
  // Records the start of a collective; returns its sequence number (1, 2, ...).
  uint64_t begin(const char* op, int64_t numel, torch::ScalarType dtype);
  void end(uint64_t seq);
  // "recent collectives of rank R (oldest first):\n  seq ... " one line per entry.
  std::string dump(int rank) const;

 private:
  struct Entry {
    uint64_t seq = 0;
    const char* op = "";
    int64_t numel = 0;
    torch::ScalarType dtype = torch::kFloat32;
    std::chrono::system_clock::time_point start;
    std::chrono::steady_clock::time_point start_steady;
    double seconds = -1;  // duration once done; < 0 while pending
    const char* site = "";
  };
  mutable std::mutex mu_;  // NCCL completes collectives from its polling path
  std::vector<Entry> entries_;
  uint64_t next_ = 1;
};

// A test hook, not a user option: PAJAMA_TEST_COMM_STALL=RANK:SEQ makes that rank's
// collective number SEQ stall (as if a peer never joined) until its deadline passes.
struct CommStallHook {
  int rank = -1;
  uint64_t seq = 0;
  static CommStallHook from_env();
  bool fires(int r, uint64_t s) const { return r == rank && s == seq; }
};

std::unique_ptr<Communicator> make_mpi_communicator(const World& world, const CommConfig& config);
#ifdef PAJAMA_WITH_CUDA
std::unique_ptr<Communicator> make_nccl_communicator(const World& world, const torch::Device& device,
                                                     const CommConfig& config);
#endif

}  // namespace pajama::detail
