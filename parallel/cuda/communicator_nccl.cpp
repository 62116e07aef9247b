// NCCL backend for CUDA tensors (compiled only with PAJAMA_CUDA). One process per GPU
// (device = local rank); the ncclUniqueId travels from rank 0 over MPI.
//
// Stream discipline: each collective runs on this communicator's own high-priority
// stream. It first waits (an event, not a host sync) for the work already queued on the
// caller's current stream, so it sees the tensors as they will be; the buffers are
// recorded on the comm stream so the caching allocator does not hand them out again
// before NCCL is done with them. Afterwards the caller's stream waits for the result,
// unless overlap mode is on (stage-2 buckets during backward), in which case
// synchronize() does that once.
//
// Failures: the communicator is created non-blocking, so no NCCL call can hang the host;
// errors seen while issuing throw CommError naming the rank and the operation. A
// watchdog thread polls each collective's completion event and ncclCommGetAsyncError; a
// collective unfinished after timeout_s, or an asynchronous NCCL error, is logged with
// the rank and the operation, the NCCL communicator is aborted (ncclCommAbort) and the
// job ends through MPI_Abort. abort() does the same from the caller.
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "parallel/comm_detail.h"
#include "parallel/cuda/cuda_check.h"
#include "parallel/mpi_check.h"

namespace pajama::detail {
namespace {

using Clock = std::chrono::steady_clock;

Clock::time_point deadline_after(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}


// ncclInProgress is not an error on a non-blocking communicator: the call was queued.
#define NCCL_CHECK(rank, comm, call)                                                                  \
  do {                                                                                                \
    const ncclResult_t nccl_rc_ = (call);                                                             \
    if (nccl_rc_ != ncclSuccess && nccl_rc_ != ncclInProgress) [[unlikely]] {                         \
      ::pajama::detail::mark_comm_failed();                                                           \
      PAJAMA_FAIL_AS(::pajama::CommError, "[rank ", rank, "] ", #call, " failed: ", ncclGetErrorString(nccl_rc_), \
                     " (", ncclGetLastError(comm), ")");                                              \
    }                                                                                                 \
  } while (0)

ncclDataType_t nccl_type(torch::ScalarType t, int rank, const char* op) {
  switch (t) {
    case torch::kFloat32: return ncclFloat32;
    case torch::kBFloat16: return ncclBfloat16;
    case torch::kFloat16: return ncclFloat16;
    case torch::kFloat64: return ncclFloat64;
    case torch::kInt64: return ncclInt64;
    case torch::kInt32: return ncclInt32;
    case torch::kInt8: return ncclInt8;
    case torch::kUInt8:
    case torch::kBool: return ncclUint8;
    default: PAJAMA_FAIL_AS(CommError, "[rank ", rank, "] ", op, ": dtype ", dtype_name(t), " is not supported by NCCL");
  }
}

ncclRedOp_t nccl_op(ReduceOp op, const torch::Tensor& t, int rank, const char* name) {
  if (op == ReduceOp::kAvg) {
    PAJAMA_CHECK_AS(CommError, t.is_floating_point(), "[rank ", rank, "] ", name,
                    ": kAvg needs a floating-point tensor, got ", dtype_name(t.scalar_type()));
    return ncclAvg;
  }
  if (t.scalar_type() == torch::kBool) {
    PAJAMA_CHECK_AS(CommError, op == ReduceOp::kMax, "[rank ", rank, "] ", name, ": bool tensors reduce with kMax only");
  }
  return op == ReduceOp::kMax ? ncclMax : ncclSum;
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(const World& world, const torch::Device& device, const CommConfig& config)
      : rank_(world.rank),
        size_(world.size),
        device_(torch::kCUDA, device.has_index() ? device.index() : static_cast<c10::DeviceIndex>(world.local_rank)),
        timeout_s_(config.timeout_s) {
    ensure_mpi_initialized();
    int mpi_rank = 0, mpi_size = 0;
    MPI_CHECK(rank_, MPI_Comm_rank(MPI_COMM_WORLD, &mpi_rank));
    MPI_CHECK(rank_, MPI_Comm_size(MPI_COMM_WORLD, &mpi_size));
    PAJAMA_CHECK_AS(CommError, mpi_rank == rank_ && mpi_size == size_, "MPI sees rank ", mpi_rank, " of ", mpi_size,
                    " but the launcher environment says rank ", rank_, " of ", size_);
    const int num_gpus = c10::cuda::device_count();
    PAJAMA_CHECK_AS(ConfigError, device_.index() < num_gpus, "[rank ", rank_, "] needs GPU ", int(device_.index()),
                    " (its local rank) but this node has ", num_gpus, "; start at most one rank per GPU");
    PAJAMA_CUDA_CHECK(str("[rank ", rank_, "]"), cudaSetDevice(device_.index()));
    c10::cuda::CUDAGuard guard(device_);

    ncclUniqueId id;
    if (rank_ == 0) NCCL_CHECK(rank_, nullptr, ncclGetUniqueId(&id));
    {
      MPI_Request req;
      MPI_CHECK(rank_, MPI_Ibcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD, &req));
      const bool done = poll_until(timeout_s_, [&] {
        int flag = 0;
        MPI_CHECK(rank_, MPI_Test(&req, &flag, MPI_STATUS_IGNORE));
        return flag != 0;
      });
      if (!done) {
        mark_comm_failed();
        PAJAMA_FAIL_AS(CommError, timed_out_message(rank_, "broadcast of the NCCL unique id", timeout_s_));
      }
    }
    ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
    cfg.blocking = 0;  // no NCCL call may block the host; progress is polled with a deadline
    NCCL_CHECK(rank_, nullptr, ncclCommInitRankConfig(&comm_, size_, id, rank_, &cfg));
    wait_ready("ncclCommInitRank");
    stream_ = std::make_unique<c10::cuda::CUDAStream>(c10::cuda::getStreamFromPool(/*isHighPriority=*/true,
                                                                                   device_.index()));
    flag_ = torch::zeros({1}, torch::TensorOptions().dtype(torch::kInt32).device(device_));
    watchdog_ = std::thread([this] { watchdog_loop(); });
    log_info("NCCL ", NCCL_MAJOR, ".", NCCL_MINOR, ": ", size_, " ranks, rank ", rank_, " on ", device_.str());
  }

  ~NcclCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (watchdog_.joinable()) watchdog_.join();
    if (comm_ == nullptr) return;
    if (failed_.load() || comm_failed()) {
      abort_nccl();
      return;
    }
    // ncclCommFinalize flushes outstanding work; bounded, because a broken peer can make
    // it wait forever. On timeout, abort instead.
    ncclCommFinalize(comm_);
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    ncclResult_t state = ncclInProgress;
    while (Clock::now() < deadline) {
      if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess || state != ncclInProgress) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (state == ncclSuccess) {
      ncclCommDestroy(comm_);
      comm_ = nullptr;
    } else {
      abort_nccl();
    }
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }
  torch::Device device() const override { return device_; }

  void all_reduce(torch::Tensor& t, ReduceOp op) override {
    check_tensor(t, device_, rank_, "all_reduce");
    const ncclRedOp_t nop = nccl_op(op, t, rank_, "all_reduce");
    const ncclDataType_t type = nccl_type(t.scalar_type(), rank_, "all_reduce");
    run("all_reduce", t.numel(), t.scalar_type(), {t}, [&] {
      NCCL_CHECK(rank_, comm_, ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), type, nop,
                                             comm_, stream_->stream()));
    });
    bytes_sent_ += all_reduce_bytes(t.numel() * t.element_size(), size_);
  }

  void reduce_scatter(const torch::Tensor& input, torch::Tensor& output, ReduceOp op) override {
    check_pair(input, output, "reduce_scatter");
    PAJAMA_CHECK_AS(CommError, input.numel() == output.numel() * size_, "[rank ", rank_, "] reduce_scatter: input has ",
                    input.numel(), " elements, expected ", size_, " x ", output.numel());
    const ncclRedOp_t nop = nccl_op(op, input, rank_, "reduce_scatter");
    const ncclDataType_t type = nccl_type(input.scalar_type(), rank_, "reduce_scatter");
    run("reduce_scatter", input.numel(), input.scalar_type(), {input, output}, [&] {
      NCCL_CHECK(rank_, comm_, ncclReduceScatter(input.data_ptr(), output.data_ptr(), static_cast<size_t>(output.numel()),
                                                 type, nop, comm_, stream_->stream()));
    });
    bytes_sent_ += scatter_gather_bytes(input.numel() * input.element_size(), size_);
  }

  void all_gather(const torch::Tensor& input, torch::Tensor& output) override {
    check_pair(input, output, "all_gather");
    PAJAMA_CHECK_AS(CommError, output.numel() == input.numel() * size_, "[rank ", rank_, "] all_gather: output has ",
                    output.numel(), " elements, expected ", size_, " x ", input.numel());
    const ncclDataType_t type = nccl_type(input.scalar_type(), rank_, "all_gather");
    run("all_gather", output.numel(), output.scalar_type(), {input, output}, [&] {
      NCCL_CHECK(rank_, comm_, ncclAllGather(input.data_ptr(), output.data_ptr(), static_cast<size_t>(input.numel()),
                                             type, comm_, stream_->stream()));
    });
    bytes_sent_ += scatter_gather_bytes(output.numel() * output.element_size(), size_);
  }

  // Uneven segments: one ncclReduce per owning rank, fused into one NCCL group.
  void reduce_scatter_v(const torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& counts,
                        ReduceOp op) override {
    check_pair(input, output, "reduce_scatter");
    const int64_t total = check_scatter(input, output, counts, "reduce_scatter");
    run("reduce_scatter", total, input.scalar_type(), {input, output},
        [&] { enqueue_reduces(input, output.data_ptr(), counts, op, "reduce_scatter"); });
    bytes_sent_ += scatter_gather_bytes(total * input.element_size(), size_);
  }

  // In place: this rank's segment of input receives the reduction (ncclReduce allows
  // sendbuff == recvbuff), which is added to output on the comm stream, so overlap mode
  // needs no extra synchronisation.
  void reduce_scatter_v_add(torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& counts,
                            ReduceOp op) override {
    check_tensor(input, device_, rank_, "reduce_scatter_add");
    check_tensor(output, device_, rank_, "reduce_scatter_add");
    const int64_t total = check_scatter(input, output, counts, "reduce_scatter_add");
    int64_t offset = 0;
    for (int r = 0; r < rank_; ++r) offset += counts[static_cast<size_t>(r)];
    torch::Tensor mine = input.narrow(0, offset, output.numel());
    run("reduce_scatter_add", total, input.scalar_type(), {input, output}, [&] {
      enqueue_reduces(input, mine.data_ptr(), counts, op, "reduce_scatter_add");
      c10::cuda::CUDAStreamGuard on_comm(*stream_);
      torch::NoGradGuard no_grad;
      output.add_(mine);
    });
    bytes_sent_ += scatter_gather_bytes(total * input.element_size(), size_);
  }

  // Uneven segments: one ncclBroadcast per source rank, fused into one NCCL group.
  void all_gather_v(const torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& counts) override {
    check_pair(input, output, "all_gather");
    check_counts(counts, size_, rank_, "all_gather");
    const int64_t total = sum_counts(counts);
    PAJAMA_CHECK_AS(CommError, output.numel() == total && input.numel() == counts[static_cast<size_t>(rank_)],
                    "[rank ", rank_, "] all_gather: output has ", output.numel(), " elements (counts sum to ", total,
                    "), input ", input.numel());
    const ncclDataType_t type = nccl_type(output.scalar_type(), rank_, "all_gather");
    const size_t es = output.element_size();
    run("all_gather", total, output.scalar_type(), {input, output}, [&] {
      NCCL_CHECK(rank_, comm_, ncclGroupStart());
      int64_t offset = 0;
      for (int r = 0; r < size_; ++r) {
        const int64_t c = counts[static_cast<size_t>(r)];
        if (c > 0) {
          char* recv = static_cast<char*>(output.data_ptr()) + static_cast<size_t>(offset) * es;
          const void* send = r == rank_ ? input.data_ptr() : recv;  // send only used on the root
          NCCL_CHECK(rank_, comm_, ncclBroadcast(send, recv, static_cast<size_t>(c), type, r, comm_, stream_->stream()));
        }
        offset += c;
      }
      NCCL_CHECK(rank_, comm_, ncclGroupEnd());
    });
    bytes_sent_ += scatter_gather_bytes(total * output.element_size(), size_);
  }

  void broadcast(torch::Tensor& t, int root) override {
    check_tensor(t, device_, rank_, "broadcast");
    PAJAMA_CHECK_AS(CommError, root >= 0 && root < size_, "[rank ", rank_, "] broadcast: root ", root,
                    " outside a world of ", size_);
    const ncclDataType_t type = nccl_type(t.scalar_type(), rank_, "broadcast");
    run("broadcast", t.numel(), t.scalar_type(), {t}, [&] {
      NCCL_CHECK(rank_, comm_, ncclBroadcast(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), type, root,
                                             comm_, stream_->stream()));
    });
    if (rank_ == root) bytes_sent_ += t.numel() * t.element_size();
  }

  // A host-side barrier: a one-element all-reduce whose completion the host awaits
  // (polling, so the deadline holds).
  void barrier() override {
    c10::cuda::CUDAGuard guard(device_);
    run("barrier", 1, torch::kInt32, {flag_}, [&] {
      NCCL_CHECK(rank_, comm_, ncclAllReduce(flag_.data_ptr(), flag_.data_ptr(), 1, ncclInt32, ncclSum, comm_,
                                             stream_->stream()));
    });
    at::cuda::CUDAEvent done;
    done.record(*stream_);
    const bool finished = poll_until(timeout_s_, [&] {
      if (done.query()) return true;
      check_failed();
      return false;
    });
    if (!finished) fail(timed_out_message(rank_, "barrier", timeout_s_) + "\n" + ring_.dump(rank_));
  }

  void synchronize() override {
    check_failed();
    c10::cuda::CUDAGuard guard(device_);
    at::cuda::CUDAEvent done;
    done.record(*stream_);
    done.block(c10::cuda::getCurrentCUDAStream(device_.index()));
  }

  void set_overlap(bool on) override { overlap_ = on; }

  double timeout_s() const override { return timeout_s_; }
  void set_timeout_s(double seconds) override { timeout_s_ = seconds; }
  int64_t bytes_sent() const override { return bytes_sent_; }
  std::string recent_collectives() const override { return ring_.dump(rank_); }

  [[noreturn]] void abort(int code) override {
    abort_nccl();
    mpi_abort_world(code);
  }

 private:
  struct Pending {
    std::shared_ptr<at::cuda::CUDAEvent> done;
    Clock::time_point deadline;
    std::string what;
    uint64_t seq = 0;  // in ring_
  };

  void check_pair(const torch::Tensor& input, const torch::Tensor& output, const char* op) const {
    check_tensor(input, device_, rank_, op);
    check_tensor(output, device_, rank_, op);
    PAJAMA_CHECK_AS(CommError, input.scalar_type() == output.scalar_type(), "[rank ", rank_, "] ", op,
                    ": input and output dtypes differ");
  }

  int64_t check_scatter(const torch::Tensor& input, const torch::Tensor& output, const std::vector<int64_t>& counts,
                        const char* op) {
    check_counts(counts, size_, rank_, op);
    const int64_t total = sum_counts(counts);
    PAJAMA_CHECK_AS(CommError, input.numel() == total && output.numel() == counts[static_cast<size_t>(rank_)],
                    "[rank ", rank_, "] ", op, ": input has ", input.numel(), " elements (counts sum to ", total,
                    "), output ", output.numel());
    return total;
  }

  // One ncclReduce per rank with a non-empty segment, in one group; this rank's
  // segment lands at `recv`.
  void enqueue_reduces(const torch::Tensor& input, void* recv, const std::vector<int64_t>& counts, ReduceOp op,
                       const char* name) {
    const ncclRedOp_t nop = nccl_op(op, input, rank_, name);
    const ncclDataType_t type = nccl_type(input.scalar_type(), rank_, name);
    const size_t es = input.element_size();
    NCCL_CHECK(rank_, comm_, ncclGroupStart());
    int64_t offset = 0;
    for (int r = 0; r < size_; ++r) {
      const int64_t c = counts[static_cast<size_t>(r)];
      if (c > 0) {
        const char* send = static_cast<const char*>(input.data_ptr()) + static_cast<size_t>(offset) * es;
        void* dst = r == rank_ ? recv : const_cast<char*>(send);  // recv only used on the root
        NCCL_CHECK(rank_, comm_, ncclReduce(send, dst, static_cast<size_t>(c), type, nop, r, comm_, stream_->stream()));
      }
      offset += c;
    }
    NCCL_CHECK(rank_, comm_, ncclGroupEnd());
  }

  // Issues one collective on the comm stream, ordered after the caller's stream.
  template <typename Issue>
  void run(const char* op, int64_t numel, torch::ScalarType dtype, std::initializer_list<torch::Tensor> tensors,
           Issue&& issue) {
    check_failed();
    const uint64_t seq = ring_.begin(op, numel, dtype);
    c10::cuda::CUDAGuard guard(device_);
    const c10::cuda::CUDAStream compute = c10::cuda::getCurrentCUDAStream(device_.index());
    at::cuda::CUDAEvent ready;
    ready.record(compute);
    ready.block(*stream_);
    issue();
    wait_ready(op);
    for (const auto& t : tensors) {
      if (t.numel() > 0) c10::cuda::CUDACachingAllocator::recordStream(t.storage().data_ptr(), *stream_);
    }
    auto done = std::make_shared<at::cuda::CUDAEvent>();
    done->record(*stream_);
    if (!overlap_) done->block(compute);
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_.push_back(Pending{done, deadline_after(timeout_s_),
                                 str(op, " of ", numel, " ", dtype_name(dtype), " elements"), seq});
    }
    cv_.notify_all();
  }

  // On a non-blocking communicator a call may return before NCCL has queued the work;
  // poll until it has (or failed), bounded by the timeout.
  void wait_ready(const char* op) {
    const bool ready = poll_until(timeout_s_, [&] {
      ncclResult_t state = ncclSuccess;
      NCCL_CHECK(rank_, comm_, ncclCommGetAsyncError(comm_, &state));
      if (state != ncclSuccess && state != ncclInProgress) {
        fail(str("[rank ", rank_, "] ", op, " failed: ", ncclGetErrorString(state), " (", ncclGetLastError(comm_), ")"));
      }
      return state == ncclSuccess;
    });
    if (!ready) fail(timed_out_message(rank_, op, timeout_s_) + "\n" + ring_.dump(rank_));
  }

  // Watchdog: retires finished collectives. A collective still unfinished after the
  // timeout, or an asynchronous NCCL error, ends the job: the host thread may be blocked
  // in a CUDA synchronization behind the hung kernel, so no exception could reach it.
  // Abort NCCL (frees the GPU), log the cause with the rank, and MPI_Abort every rank.
  void watchdog_loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(100));
      while (!pending_.empty() && pending_.front().done->query()) {
        ring_.end(pending_.front().seq);
        pending_.pop_front();
      }
      std::string error;
      if (!pending_.empty() && Clock::now() > pending_.front().deadline) {
        error = timed_out_message(rank_, pending_.front().what, timeout_s_) + "\n" + ring_.dump(rank_);
      }
      if (error.empty() && !failed_.load()) {
        std::lock_guard<std::mutex> guard(abort_mu_);
        ncclResult_t state = ncclSuccess;
        if (comm_ != nullptr && ncclCommGetAsyncError(comm_, &state) == ncclSuccess && state != ncclSuccess &&
            state != ncclInProgress) {
          error = str("[rank ", rank_, "] NCCL error: ", ncclGetErrorString(state), " (", ncclGetLastError(comm_), ")");
        }
      }
      if (!error.empty() && !failed_.load()) {
        failed_.store(true);
        lock.unlock();
        log_error(error, "; aborting the job");
        abort_nccl();
        mpi_abort_world(1);
      }
    }
  }

  void check_failed() {
    if (failed_.load()) {
      std::lock_guard<std::mutex> lock(mu_);
      PAJAMA_FAIL_AS(CommError, error_);
    }
  }

  [[noreturn]] void fail(const std::string& message) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (error_.empty()) error_ = message;
    }
    failed_.store(true);
    mark_comm_failed();
    abort_nccl();
    PAJAMA_FAIL_AS(CommError, message);
  }

  void abort_nccl() {
    std::lock_guard<std::mutex> lock(abort_mu_);
    if (comm_ != nullptr) {
      ncclCommAbort(comm_);
      comm_ = nullptr;
    }
  }

  int rank_;
  int size_;
  torch::Device device_;
  double timeout_s_;
  ncclComm_t comm_ = nullptr;
  std::unique_ptr<c10::cuda::CUDAStream> stream_;
  torch::Tensor flag_;  // (1) int32, the barrier's payload
  bool overlap_ = false;
  int64_t bytes_sent_ = 0;
  CollectiveRing ring_;

  std::mutex mu_;  // guards pending_, error_, stop_
  std::condition_variable cv_;
  std::deque<Pending> pending_;
  std::string error_;
  bool stop_ = false;
  std::atomic<bool> failed_{false};
  std::mutex abort_mu_;
  std::thread watchdog_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(const World& world, const torch::Device& device,
                                                     const CommConfig& config) {
  return std::make_unique<NcclCommunicator>(world, device, config);
}

}  // namespace pajama::detail
