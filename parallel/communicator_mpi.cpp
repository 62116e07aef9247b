// MPI backend for CPU tensors. Every collective is non-blocking (MPI_I*) and polled
// with MPI_Test against CommConfig::timeout_s, so a dead or stuck peer becomes a
// CommError naming this rank, the operation and its size instead of a silent hang.
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <climits>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "parallel/comm_detail.h"
#include "parallel/mpi_check.h"

namespace pajama::detail {
namespace {

std::atomic<bool> g_comm_failed{false};

// Finalizes MPI at normal process exit if this process initialised it and no
// collective failed (a broken peer can make MPI_Finalize block forever).
struct MpiRuntime {
  bool initialized_here = false;
  ~MpiRuntime() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (initialized_here && !finalized && !g_comm_failed.load()) MPI_Finalize();
  }
};
MpiRuntime g_mpi_runtime;

}  // namespace

std::string mpi_error_string(int code) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(buf, static_cast<size_t>(len));
}

void ensure_mpi_initialized() {
  static std::once_flag once;
  std::call_once(once, [] {
    int initialized = 0;
    MPI_CHECK("?", MPI_Initialized(&initialized));
    if (!initialized) {
      int provided = 0;
      const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
      PAJAMA_CHECK_AS(CommError, rc == MPI_SUCCESS, "MPI_Init_thread failed: ", mpi_error_string(rc),
                      "; start multi-rank runs with mpirun/srun");
      g_mpi_runtime.initialized_here = true;
    }
    // Errors come back as return codes (checked by MPI_CHECK), not as MPI's abort.
    MPI_CHECK("?", MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  });
}

void mark_comm_failed() { g_comm_failed.store(true); }
bool comm_failed() { return g_comm_failed.load(); }

void mpi_abort_world(int code) {
  mark_comm_failed();
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

namespace {


// bf16 / fp16 have no MPI datatype: they travel as 2-byte opaque elements and are
// reduced by user-defined ops (accumulating in float per element pair).
template <typename T, bool kMax>
void half_op(void* in, void* inout, int* len, MPI_Datatype*) {
  const T* a = static_cast<const T*>(in);
  T* b = static_cast<T*>(inout);
  for (int i = 0; i < *len; ++i) {
    const float x = static_cast<float>(a[i]), y = static_cast<float>(b[i]);
    b[i] = static_cast<T>(kMax ? (x > y ? x : y) : x + y);
  }
}

struct HalfTypes {
  MPI_Datatype type = MPI_DATATYPE_NULL;  // 2 opaque bytes
  MPI_Op bf16_sum = MPI_OP_NULL, bf16_max = MPI_OP_NULL, fp16_sum = MPI_OP_NULL, fp16_max = MPI_OP_NULL;
};

const HalfTypes& half_types() {
  static HalfTypes h = [] {
    HalfTypes t;
    MPI_CHECK("?", MPI_Type_contiguous(2, MPI_BYTE, &t.type));
    MPI_CHECK("?", MPI_Type_commit(&t.type));
    MPI_CHECK("?", MPI_Op_create(&half_op<c10::BFloat16, false>, 1, &t.bf16_sum));
    MPI_CHECK("?", MPI_Op_create(&half_op<c10::BFloat16, true>, 1, &t.bf16_max));
    MPI_CHECK("?", MPI_Op_create(&half_op<c10::Half, false>, 1, &t.fp16_sum));
    MPI_CHECK("?", MPI_Op_create(&half_op<c10::Half, true>, 1, &t.fp16_max));
    return t;
  }();
  return h;
}

MPI_Datatype mpi_type(torch::ScalarType t, int rank, const char* op) {
  switch (t) {
    case torch::kFloat32: return MPI_FLOAT;
    case torch::kFloat64: return MPI_DOUBLE;
    case torch::kInt64: return MPI_INT64_T;
    case torch::kInt32: return MPI_INT32_T;
    case torch::kInt16: return MPI_INT16_T;
    case torch::kInt8: return MPI_INT8_T;
    case torch::kUInt8: return MPI_UINT8_T;
    case torch::kBool: return MPI_C_BOOL;
    case torch::kBFloat16:
    case torch::kFloat16: return half_types().type;
    default: PAJAMA_FAIL_AS(CommError, "[rank ", rank, "] ", op, ": dtype ", dtype_name(t), " is not supported by MPI");
  }
}

MPI_Op mpi_op(ReduceOp op, torch::ScalarType t, int rank, const char* name) {
  if (t == torch::kBool) {
    PAJAMA_CHECK_AS(CommError, op == ReduceOp::kMax, "[rank ", rank, "] ", name, ": bool tensors reduce with kMax only");
    return MPI_LOR;
  }
  const bool max = op == ReduceOp::kMax;
  if (t == torch::kBFloat16) return max ? half_types().bf16_max : half_types().bf16_sum;
  if (t == torch::kFloat16) return max ? half_types().fp16_max : half_types().fp16_sum;
  return max ? MPI_MAX : MPI_SUM;
}

int to_int(int64_t n, int rank, const char* op) {
  PAJAMA_CHECK_AS(CommError, n <= INT_MAX, "[rank ", rank, "] ", op, " of ", n,
                  " elements exceeds MPI's int count; use smaller buckets");
  return static_cast<int>(n);
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(const World& world, const CommConfig& config) : timeout_s_(config.timeout_s) {
    ensure_mpi_initialized();
    MPI_CHECK(world.rank, MPI_Comm_dup(MPI_COMM_WORLD, &comm_));
    MPI_CHECK(world.rank, MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    MPI_CHECK(world.rank, MPI_Comm_rank(comm_, &rank_));
    MPI_CHECK(world.rank, MPI_Comm_size(comm_, &size_));
    PAJAMA_CHECK_AS(CommError, rank_ == world.rank && size_ == world.size, "MPI sees rank ", rank_, " of ", size_,
                    " but the launcher environment says rank ", world.rank, " of ", world.size,
                    "; start every rank with the same mpirun");
    (void)half_types();
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && !comm_failed()) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  torch::Device device() const override { return torch::kCPU; }

  void all_reduce(torch::Tensor& t, ReduceOp op) override {
    check_tensor(t, torch::kCPU, rank_, "all_reduce");
    check_avg(t, op, "all_reduce");
    const int n = to_int(t.numel(), rank_, "all_reduce");
    const uint64_t seq = start("all_reduce", t.numel(), t.scalar_type());
    MPI_Request req;
    MPI_CHECK(rank_, MPI_Iallreduce(MPI_IN_PLACE, t.data_ptr(), n, mpi_type(t.scalar_type(), rank_, "all_reduce"),
                                    mpi_op(op, t.scalar_type(), rank_, "all_reduce"), comm_, &req));
    wait(req, seq, "all_reduce", t.numel(), t.scalar_type());
    maybe_average(t, op);
    bytes_sent_ += all_reduce_bytes(t.numel() * t.element_size(), size_);
  }

  void reduce_scatter(const torch::Tensor& input, torch::Tensor& output, ReduceOp op) override {
    check_tensor(input, torch::kCPU, rank_, "reduce_scatter");
    check_tensor(output, torch::kCPU, rank_, "reduce_scatter");
    PAJAMA_CHECK_AS(CommError, input.numel() == output.numel() * size_, "[rank ", rank_, "] reduce_scatter: input has ",
                    input.numel(), " elements, expected ", size_, " x ", output.numel());
    reduce_scatter_v(input, output, std::vector<int64_t>(static_cast<size_t>(size_), output.numel()), op);
  }

  void all_gather(const torch::Tensor& input, torch::Tensor& output) override {
    check_tensor(input, torch::kCPU, rank_, "all_gather");
    check_tensor(output, torch::kCPU, rank_, "all_gather");
    PAJAMA_CHECK_AS(CommError, output.numel() == input.numel() * size_, "[rank ", rank_, "] all_gather: output has ",
                    output.numel(), " elements, expected ", size_, " x ", input.numel());
    all_gather_v(input, output, std::vector<int64_t>(static_cast<size_t>(size_), input.numel()));
  }

  void reduce_scatter_v(const torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& counts,
                        ReduceOp op) override {
    PAJAMA_CHECK_AS(CommError, input.scalar_type() == output.scalar_type(), "[rank ", rank_,
                    "] reduce_scatter: input and output dtypes differ");
    // A zero-sized output has no storage; MPI still wants a valid pointer.
    char dummy = 0;
    reduce_scatter_into(input, output, counts, op, "reduce_scatter", output.numel() > 0 ? output.data_ptr() : &dummy);
    maybe_average(output, op);
  }

  // In place (MPI_IN_PLACE): this rank's reduced segment lands at the start of input,
  // which the caller gives up as scratch, and is added to output from there.
  void reduce_scatter_v_add(torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& counts,
                            ReduceOp op) override {
    reduce_scatter_into(input, output, counts, op, "reduce_scatter_add", nullptr);
    torch::Tensor mine = input.narrow(0, 0, output.numel());
    maybe_average(mine, op);
    torch::NoGradGuard no_grad;
    output.add_(mine);
  }

  void all_gather_v(const torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& counts) override {
    const char* name = "all_gather";
    check_tensor(input, torch::kCPU, rank_, name);
    check_tensor(output, torch::kCPU, rank_, name);
    check_counts(counts, size_, rank_, name);
    const int64_t total = sum_counts(counts);
    PAJAMA_CHECK_AS(CommError, output.numel() == total && input.numel() == counts[static_cast<size_t>(rank_)],
                    "[rank ", rank_, "] all_gather: output has ", output.numel(), " elements (counts sum to ", total,
                    "), input ", input.numel(), " (expected ", counts[static_cast<size_t>(rank_)], ")");
    PAJAMA_CHECK_AS(CommError, input.scalar_type() == output.scalar_type(), "[rank ", rank_,
                    "] all_gather: input and output dtypes differ");
    std::vector<int> recv(counts.size()), displs(counts.size());
    int64_t offset = 0;
    for (size_t r = 0; r < counts.size(); ++r) {
      recv[r] = to_int(counts[r], rank_, name);
      displs[r] = to_int(offset, rank_, name);
      offset += counts[r];
    }
    const size_t es = output.element_size();
    char* out = static_cast<char*>(output.data_ptr());
    const bool in_place = input.numel() == 0 || input.data_ptr() == out + static_cast<size_t>(displs[static_cast<size_t>(rank_)]) * es;
    MPI_Datatype type = mpi_type(output.scalar_type(), rank_, name);
    const uint64_t seq = start(name, total, output.scalar_type());
    MPI_Request req;
    MPI_CHECK(rank_, MPI_Iallgatherv(in_place ? MPI_IN_PLACE : input.data_ptr(), recv[static_cast<size_t>(rank_)], type,
                                     out, recv.data(), displs.data(), type, comm_, &req));
    wait(req, seq, name, total, output.scalar_type());
    bytes_sent_ += scatter_gather_bytes(total * output.element_size(), size_);
  }

  void broadcast(torch::Tensor& t, int root) override {
    check_tensor(t, torch::kCPU, rank_, "broadcast");
    PAJAMA_CHECK_AS(CommError, root >= 0 && root < size_, "[rank ", rank_, "] broadcast: root ", root,
                    " outside a world of ", size_);
    const int n = to_int(t.numel(), rank_, "broadcast");
    const uint64_t seq = start("broadcast", t.numel(), t.scalar_type());
    MPI_Request req;
    MPI_CHECK(rank_, MPI_Ibcast(t.data_ptr(), n, mpi_type(t.scalar_type(), rank_, "broadcast"), root, comm_, &req));
    wait(req, seq, "broadcast", t.numel(), t.scalar_type());
    if (rank_ == root) bytes_sent_ += t.numel() * t.element_size();
  }

  void barrier() override {
    const uint64_t seq = start("barrier", 0, torch::kUInt8);
    MPI_Request req;
    MPI_CHECK(rank_, MPI_Ibarrier(comm_, &req));
    wait(req, seq, "barrier", 0, torch::kUInt8);
  }

  double timeout_s() const override { return timeout_s_; }
  void set_timeout_s(double seconds) override { timeout_s_ = seconds; }
  int64_t bytes_sent() const override { return bytes_sent_; }
  std::string recent_collectives() const override { return ring_.dump(rank_); }

  [[noreturn]] void abort(int code) override { mpi_abort_world(code); }

 private:
  void check_avg(const torch::Tensor& t, ReduceOp op, const char* name) const {
    PAJAMA_CHECK_AS(CommError, op != ReduceOp::kAvg || t.is_floating_point(), "[rank ", rank_, "] ", name,
                    ": kAvg needs a floating-point tensor, got ", dtype_name(t.scalar_type()));
  }
  // MPI has no average: sum, then divide (exact for power-of-two world sizes).
  // MPI_Ireduce_scatter of input's segments (counts) into recv, or in place into the
  // start of input when recv is null; checks, waits against the timeout, counts bytes.
  void reduce_scatter_into(const torch::Tensor& input, const torch::Tensor& output, const std::vector<int64_t>& counts,
                           ReduceOp op, const char* name, void* recv) {
    check_tensor(input, torch::kCPU, rank_, name);
    check_tensor(output, torch::kCPU, rank_, name);
    check_counts(counts, size_, rank_, name);
    check_avg(input, op, name);
    const int64_t total = sum_counts(counts);
    PAJAMA_CHECK_AS(CommError, input.numel() == total && output.numel() == counts[static_cast<size_t>(rank_)],
                    "[rank ", rank_, "] ", name, ": input has ", input.numel(), " elements (counts sum to ", total,
                    "), output ", output.numel(), " (expected ", counts[static_cast<size_t>(rank_)], ")");
    std::vector<int> sizes(counts.size());
    for (size_t r = 0; r < counts.size(); ++r) sizes[r] = to_int(counts[r], rank_, name);
    to_int(total, rank_, name);
    const void* send = recv != nullptr ? input.data_ptr() : MPI_IN_PLACE;
    void* dst = recv != nullptr ? recv : input.data_ptr();
    const uint64_t seq = start(name, total, input.scalar_type());
    MPI_Request req;
    MPI_CHECK(rank_, MPI_Ireduce_scatter(send, dst, sizes.data(), mpi_type(input.scalar_type(), rank_, name),
                                         mpi_op(op, input.scalar_type(), rank_, name), comm_, &req));
    wait(req, seq, name, total, input.scalar_type());
    bytes_sent_ += scatter_gather_bytes(total * input.element_size(), size_);
  }

  void maybe_average(torch::Tensor& t, ReduceOp op) const {
    if (op == ReduceOp::kAvg && t.numel() > 0) {
      torch::NoGradGuard no_grad;
      t.div_(static_cast<double>(size_));
    }
  }

  // Records a collective in the ring. Under the stall test hook this rank never posts
  // it: it waits out the deadline as if a peer never joined, then times out.
  uint64_t start(const char* op, int64_t numel, torch::ScalarType dtype) {
    const uint64_t seq = ring_.begin(op, numel, dtype);
    if (stall_.fires(rank_, seq)) {
      std::this_thread::sleep_for(std::chrono::duration<double>(timeout_s_));
      timed_out(op, numel, dtype);
    }
    return seq;
  }

  [[noreturn]] void timed_out(const char* op, int64_t numel, torch::ScalarType dtype) {
    mark_comm_failed();
    PAJAMA_FAIL_AS(CommError, timed_out_message(rank_, str(op, " of ", numel, " ", dtype_name(dtype), " elements"), timeout_s_),
                   "; compare the sequence numbers below with every rank's\n", ring_.dump(rank_));
  }

  // Polls a request until it completes or the deadline passes.
  void wait(MPI_Request& req, uint64_t seq, const char* op, int64_t numel, torch::ScalarType dtype) {
    const bool done = poll_until(timeout_s_, [&] {
      int flag = 0;
      MPI_CHECK(rank_, MPI_Test(&req, &flag, MPI_STATUS_IGNORE));
      return flag != 0;
    });
    if (!done) timed_out(op, numel, dtype);
    ring_.end(seq);
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  double timeout_s_;
  int64_t bytes_sent_ = 0;
  CollectiveRing ring_;
  CommStallHook stall_ = CommStallHook::from_env();
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(const World& world, const CommConfig& config) {
  return std::make_unique<MpiCommunicator>(world, config);
}

}  // namespace pajama::detail
