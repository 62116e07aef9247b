#include "parallel/communicator.h"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "core/error.h"
#include "parallel/comm_detail.h"

namespace pajama {
namespace detail {

const char* op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return "sum";
    case ReduceOp::kAvg: return "avg";
    case ReduceOp::kMax: return "max";
  }
  return "?";
}

std::string dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return "fp32";
    case torch::kFloat64: return "fp64";
    case torch::kBFloat16: return "bf16";
    case torch::kFloat16: return "fp16";
    case torch::kInt64: return "int64";
    case torch::kInt32: return "int32";
    case torch::kUInt8: return "uint8";
    case torch::kInt8: return "int8";
    case torch::kBool: return "bool";
    default: return c10::toString(t);
  }
}

int64_t all_reduce_bytes(int64_t bytes, int n) { return n <= 1 ? 0 : 2 * (n - 1) * bytes / n; }
int64_t scatter_gather_bytes(int64_t full_bytes, int n) { return n <= 1 ? 0 : (n - 1) * full_bytes / n; }

void check_tensor(const torch::Tensor& t, const torch::Device& device, int rank, const char* op) {
  PAJAMA_CHECK_AS(CommError, t.defined(), "[rank ", rank, "] ", op, ": tensor is undefined");
  PAJAMA_CHECK_AS(CommError, t.is_contiguous(), "[rank ", rank, "] ", op, ": tensor of shape ", t.sizes(),
                  " is not contiguous");
  PAJAMA_CHECK_AS(CommError, t.device() == device, "[rank ", rank, "] ", op, ": tensor is on ", t.device().str(),
                  " but this communicator works on ", device.str());
}

void check_counts(const std::vector<int64_t>& counts, int size, int rank, const char* op) {
  PAJAMA_CHECK_AS(CommError, static_cast<int>(counts.size()) == size, "[rank ", rank, "] ", op, ": ", counts.size(),
                  " counts for a world of ", size);
  for (int64_t c : counts) PAJAMA_CHECK_AS(CommError, c >= 0, "[rank ", rank, "] ", op, ": negative count ", c);
}

std::string timed_out_message(int rank, const std::string& what, double timeout_s) {
  return str("[rank ", rank, "] ", what, " timed out after ", timeout_s,
             " s; another rank probably failed or stalled — check its log");
}

int64_t sum_counts(const std::vector<int64_t>& counts) {
  int64_t s = 0;
  for (int64_t c : counts) s += c;
  return s;
}

uint64_t CollectiveRing::begin(const char* op, int64_t numel, torch::ScalarType dtype) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry e;
  e.seq = next_++;
  e.op = op;
  e.numel = numel;
  e.dtype = dtype;
  e.start = std::chrono::system_clock::now();
  e.start_steady = std::chrono::steady_clock::now();
  e.site = CommSite::current();
  if (entries_.size() == kCapacity) entries_.erase(entries_.begin());
  entries_.push_back(e);
  return e.seq;
}

void CollectiveRing::end(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& e : entries_) {
    if (e.seq == seq) e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - e.start_steady).count();
  }
}

std::string CollectiveRing::dump(int rank) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out = str("recent collectives of rank ", rank, " (oldest first; sequence numbers count this "
                        "communicator's collectives, equal on every rank that issued the same ones):");
  const auto now = std::chrono::steady_clock::now();
  for (const Entry& e : entries_) {
    const std::time_t t = std::chrono::system_clock::to_time_t(e.start);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(e.start.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char when[32];
    std::snprintf(when, sizeof when, "%02d:%02d:%02d.%03d UTC", tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    char line[256];
    const double pending = std::chrono::duration<double>(now - e.start_steady).count();
    std::snprintf(line, sizeof line, "\n  seq %6" PRIu64 "  %-18s %12" PRId64 " %-5s  started %s  from %-28s  %s %.3f s",
                  e.seq, e.op, e.numel, dtype_name(e.dtype).c_str(), when, e.site,
                  e.seconds >= 0 ? "done in" : "PENDING for", e.seconds >= 0 ? e.seconds : pending);
    out += line;
  }
  return out;
}

CommStallHook CommStallHook::from_env() {
  CommStallHook h;
  const char* v = std::getenv("PAJAMA_TEST_COMM_STALL");
  if (v == nullptr) return h;
  long long rank = -1;
  unsigned long long seq = 0;
  PAJAMA_CHECK(std::sscanf(v, "%lld:%llu", &rank, &seq) == 2 && rank >= 0 && seq >= 1,
               "PAJAMA_TEST_COMM_STALL must be RANK:SEQ, got '", v, "'");
  h.rank = static_cast<int>(rank);
  h.seq = seq;
  return h;
}

}  // namespace detail

namespace {
thread_local const char* t_comm_site = "?";
}  // namespace

CommSite::CommSite(const char* name) : previous_(t_comm_site) { t_comm_site = name; }
CommSite::~CommSite() { t_comm_site = previous_; }
const char* CommSite::current() { return t_comm_site; }

namespace {

// A world of one: every collective is an identity (copies where input and output differ).
class SingleCommunicator final : public Communicator {
 public:
  explicit SingleCommunicator(const torch::Device& device) : device_(device) {}
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "single"; }
  torch::Device device() const override { return device_; }

  void all_reduce(torch::Tensor& t, ReduceOp) override { detail::check_tensor(t, device_, 0, "all_reduce"); }
  void reduce_scatter(const torch::Tensor& input, torch::Tensor& output, ReduceOp) override {
    copy(input, output, "reduce_scatter");
  }
  void all_gather(const torch::Tensor& input, torch::Tensor& output) override { copy(input, output, "all_gather"); }
  void reduce_scatter_v(const torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& counts,
                        ReduceOp) override {
    detail::check_counts(counts, 1, 0, "reduce_scatter_v");
    copy(input, output, "reduce_scatter_v");
  }
  void reduce_scatter_v_add(torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& counts,
                            ReduceOp) override {
    detail::check_counts(counts, 1, 0, "reduce_scatter_v_add");
    detail::check_tensor(input, device_, 0, "reduce_scatter_v_add");
    detail::check_tensor(output, device_, 0, "reduce_scatter_v_add");
    PAJAMA_CHECK_AS(CommError, input.numel() == output.numel(), "reduce_scatter_v_add: input has ", input.numel(),
                    " elements, output ", output.numel(), " (world of 1)");
    torch::NoGradGuard no_grad;
    output.view(-1).add_(input.view(-1));
  }
  void all_gather_v(const torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& counts) override {
    detail::check_counts(counts, 1, 0, "all_gather_v");
    copy(input, output, "all_gather_v");
  }
  void broadcast(torch::Tensor& t, int root) override {
    PAJAMA_CHECK_AS(CommError, root == 0, "broadcast: root ", root, " outside a world of 1");
    detail::check_tensor(t, device_, 0, "broadcast");
  }
  void barrier() override {}
  int64_t bytes_sent() const override { return 0; }
  [[noreturn]] void abort(int code) override { std::_Exit(code); }

 private:
  void copy(const torch::Tensor& input, torch::Tensor& output, const char* op) {
    detail::check_tensor(input, device_, 0, op);
    detail::check_tensor(output, device_, 0, op);
    PAJAMA_CHECK_AS(CommError, input.numel() == output.numel(), op, ": input has ", input.numel(),
                    " elements, output ", output.numel(), " (world of 1)");
    if (input.data_ptr() != output.data_ptr()) {
      torch::NoGradGuard no_grad;
      output.view(-1).copy_(input.view(-1));
    }
  }
  torch::Device device_;
};

}  // namespace

std::unique_ptr<Communicator> make_communicator(const World& world, const torch::Device& device,
                                                const CommConfig& config) {
  config.validate();
  if (device.is_cuda()) {
#ifdef PAJAMA_WITH_CUDA
    // PAJAMA_NCCL_ONE_RANK=1 keeps NCCL on one rank (NCCL accepts a one-rank
    // communicator): the only way one GPU exercises the NCCL backend (scripts/gpu_check.sh).
    const char* force = std::getenv("PAJAMA_NCCL_ONE_RANK");
    const bool nccl_one_rank = force != nullptr && std::string(force) == "1";
    if (world.size == 1 && !nccl_one_rank) return std::make_unique<SingleCommunicator>(device);
    return detail::make_nccl_communicator(world, device, config);
#else
    PAJAMA_FAIL_AS(ConfigError, "device ", device.str(),
                   " needs NCCL, but this build has no CUDA/NCCL; rebuild with PAJAMA_CUDA=ON");
#endif
  }
  PAJAMA_CHECK_AS(ConfigError, device.is_cpu(), "no communicator for device ", device.str(), " (use cpu or cuda)");
  if (world.size == 1) return std::make_unique<SingleCommunicator>(device);
  return detail::make_mpi_communicator(world, config);
}

std::string broadcast_string(Communicator& comm, const std::string& value, int root) {
  if (comm.size() == 1) return value;
  const auto on = torch::TensorOptions().device(comm.device());
  torch::Tensor len = torch::full({1}, static_cast<int64_t>(value.size()), on.dtype(torch::kInt64));
  comm.broadcast(len, root);
  const int64_t n = len.cpu().item<int64_t>();
  if (n == 0) return std::string();
  torch::Tensor bytes = torch::empty({n}, torch::kUInt8);
  if (comm.rank() == root) std::memcpy(bytes.data_ptr(), value.data(), value.size());
  bytes = bytes.to(comm.device());
  comm.broadcast(bytes, root);
  bytes = bytes.cpu();
  return std::string(static_cast<const char*>(bytes.data_ptr()), static_cast<size_t>(n));
}

bool any_rank(Communicator& comm, bool flag) {
  if (comm.size() == 1) return flag;
  torch::Tensor t = torch::full({1}, flag ? 1 : 0, torch::TensorOptions().dtype(torch::kInt32).device(comm.device()));
  comm.all_reduce(t, ReduceOp::kMax);
  return t.cpu().item<int32_t>() != 0;
}

std::vector<int64_t> max_over_ranks(Communicator& comm, std::vector<int64_t> values) {
  if (comm.size() == 1 || values.empty()) return values;
  torch::Tensor t = torch::tensor(values, torch::kInt64).to(comm.device());
  comm.all_reduce(t, ReduceOp::kMax);
  t = t.cpu();
  for (size_t i = 0; i < values.size(); ++i) values[i] = t[static_cast<int64_t>(i)].item<int64_t>();
  return values;
}

}  // namespace pajama
