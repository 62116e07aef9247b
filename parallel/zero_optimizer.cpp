#include "parallel/zero_optimizer.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/log.h"

namespace pajama {
namespace {

// Each rank's partition is a multiple of this many elements (64 bytes of fp32, 32 of
// bf16), so partitions start aligned; padding at the end of the flat buffer absorbs it.
constexpr int64_t kPartitionAlignment = 16;

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Elements of [lo, hi) that fall into rank r's partition, for every rank.
std::vector<int64_t> split_counts(int64_t lo, int64_t hi, int64_t partition, int n) {
  std::vector<int64_t> counts(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) {
    const int64_t a = std::max(lo, r * partition), b = std::min(hi, (r + 1) * partition);
    counts[static_cast<size_t>(r)] = std::max<int64_t>(0, b - a);
  }
  return counts;
}

}  // namespace

int64_t zero_partition_numel(int64_t num_params, int64_t num_ranks) {
  return round_up(num_params, kPartitionAlignment * num_ranks) / num_ranks;
}

int64_t zero_bucket_numel(int64_t reduce_bucket_size, int64_t num_params, int64_t num_ranks) {
  const int64_t padded = zero_partition_numel(num_params, num_ranks) * num_ranks;
  return std::min(round_up(reduce_bucket_size, num_ranks), padded);
}

struct ZeroOptimizer::Impl {
  struct Param {
    std::string name;
    torch::Tensor tensor;          // the model's parameter, a view of flat_param
    std::vector<int64_t> shape;
    int64_t offset = 0;            // first element in the flat buffer
    int64_t numel = 0;
    bool arrived = false;          // stage 2: its gradient arrived in this micro-step's backward
    int64_t steps = 0;             // optimizer steps this parameter has taken
  };
  // Stage 2: a contiguous range of the flat gradient space reduced by one reduce-scatter.
  struct Bucket {
    int64_t lo = 0, hi = 0;
    std::vector<int> params;       // parameters whose gradients land in [lo, hi)
    int pending = 0;               // of those, not yet arrived in this backward
    torch::Tensor whole;           // (bucket_numel) reduce dtype while open, else undefined
    torch::Tensor buffer;          // its first hi - lo elements
  };
  // How gradients reach the fp32 accumulation buffer.
  enum class GradPath {
    kViews,    // .grad are views of flat_grad (fp32 parameters): autograd accumulates in place
    kHooks,    // bf16 parameters: a hook adds each .grad into fp32 flat_grad and drops it
    kBuckets,  // stage 2 on several ranks: a hook copies .grad into bucket buffers, reduce-scattered
  };

  Impl(const NamedParameters& named, const ShardOptimizerFactory& make_optimizer, const ZeroConfig& z,
       Communicator& c)
      : comm(c), zero(z), n(c.size()), rank(c.rank()), device(c.device()) {
    zero.validate();
    PAJAMA_CHECK(!named.empty(), "ZeroOptimizer: no parameters");
    param_dtype = named.front().second.scalar_type();
    PAJAMA_CHECK_AS(ConfigError, param_dtype == torch::kFloat32 || param_dtype == torch::kBFloat16,
                    "ZeroOptimizer supports fp32 or bf16 parameters, got ", c10::toString(param_dtype));
    for (const auto& [name, t] : named) {
      PAJAMA_CHECK(t.defined() && t.requires_grad(), "ZeroOptimizer: parameter ", name,
                   " is undefined or does not require grad");
      PAJAMA_CHECK(t.scalar_type() == param_dtype && t.device() == device, "ZeroOptimizer: parameter ", name, " is ",
                   c10::toString(t.scalar_type()), " on ", t.device().str(), ", expected ", c10::toString(param_dtype),
                   " on ", device.str(), " like the first parameter and the communicator");
      Param p;
      p.name = name;
      p.tensor = t;
      p.shape = t.sizes().vec();
      p.offset = param_numel;
      p.numel = t.numel();
      param_numel += p.numel;
      params.push_back(std::move(p));
    }
    reduce_dtype = zero.reduce_dtype == "bf16" ? torch::kBFloat16 : torch::kFloat32;
    padded_numel = zero_partition_numel(param_numel, n) * n;
    partition_numel = padded_numel / n;
    own_lo = zero.stage == 0 ? 0 : rank * partition_numel;
    own_hi = zero.stage == 0 ? padded_numel : own_lo + partition_numel;
    path = zero.stage == 2 && n > 1 ? GradPath::kBuckets
           : param_dtype == torch::kFloat32 ? GradPath::kViews
                                            : GradPath::kHooks;

    torch::NoGradGuard no_grad;
    // Moved one parameter at a time, so the old storage of each is freed as soon as it
    // is copied: the model never exists twice.
    flat_param = torch::empty({padded_numel}, torch::TensorOptions().dtype(param_dtype).device(device));
    flat_param.narrow(0, param_numel, padded_numel - param_numel).zero_();
    for (auto& p : params) {
      torch::Tensor view = flat_param.narrow(0, p.offset, p.numel);
      view.copy_(p.tensor.detach().reshape({-1}));
      p.tensor.set_data(view.view(p.shape));
    }
    // Every rank starts from rank 0's values, whatever its own initialisation did.
    if (n > 1) {
      CommSite site("zero: broadcast parameters");
      comm.broadcast(flat_param, 0);
    }

    // fp32 parameters are their own master weights; bf16 ones get an fp32 copy.
    master = flat_param.narrow(0, own_lo, own_hi - own_lo);
    if (param_dtype != torch::kFloat32) master = master.to(torch::kFloat32).clone();

    ShardLayout layout;
    layout.numel = own_hi - own_lo;
    layout.device = device;
    for (int i = 0; i < static_cast<int>(params.size()); ++i) {
      const Param& p = params[static_cast<size_t>(i)];
      const int64_t lo = std::max(p.offset, own_lo), hi = std::min(p.offset + p.numel, own_hi);
      if (lo >= hi) continue;
      owned.push_back(i);
      layout.segments.push_back(ShardSegment{lo - own_lo, hi - lo, p.tensor.dim() >= 2});
    }
    update = make_optimizer(layout);

    const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(device);
    if (path == GradPath::kBuckets) {
      bucket_numel = zero_bucket_numel(zero.reduce_bucket_size, param_numel, n);
      param_buckets.resize(params.size());
      for (int64_t lo = 0; lo < padded_numel; lo += bucket_numel) {
        Bucket b;
        b.lo = lo;
        b.hi = std::min(lo + bucket_numel, padded_numel);
        const int index = static_cast<int>(buckets.size());
        for (int i = 0; i < static_cast<int>(params.size()); ++i) {
          const Param& p = params[static_cast<size_t>(i)];
          if (p.offset < b.hi && p.offset + p.numel > b.lo) {
            b.params.push_back(i);
            param_buckets[static_cast<size_t>(i)].push_back(index);
          }
        }
        buckets.push_back(std::move(b));
      }
      grad_partition = torch::zeros({partition_numel}, f32);
      // CPU: the two buffers backward needs, allocated now, before activations churn the
      // heap (allocated later, in the middle of backward, they would fragment it).
      if (device.is_cpu()) {
        for (int i = 0; i < 2; ++i) {
          free_buffers.push_back(torch::empty({bucket_numel}, torch::TensorOptions().dtype(reduce_dtype).device(device)));
        }
      }
    } else {
      flat_grad = torch::zeros({padded_numel}, f32);
      if (path == GradPath::kViews) point_grads_at_flat_grad();
    }
    if (path != GradPath::kViews) install_hooks();
    reset_micro_step();
    log_info("ZeRO-", zero.stage, ": ", param_numel, " parameters (", padded_numel, " padded) over ", n,
             " rank(s), partition ", partition_numel,
             path == GradPath::kBuckets
                 ? str(", ", buckets.size(), " reduce bucket(s) of <= ", bucket_numel, " elements per micro-step")
                 : std::string(", gradients accumulated in one fp32 buffer"));
  }

  ~Impl() {
    if (path != GradPath::kViews) {
      for (auto& p : params) torch::autograd::impl::set_post_acc_grad_hooks(p.tensor, nullptr);
    }
  }

  // A C++ post-accumulate-grad hook: runs after autograd has put a parameter's
  // gradient into its .grad.
  struct GradReadyHook : torch::autograd::PostAccumulateGradHook {
    GradReadyHook(Impl* o, int i) : owner(o), index(i) {}
    void operator()(const torch::autograd::Variable&) override { owner->on_grad_ready(index); }
    Impl* owner;
    int index;
  };

  void install_hooks() {
    for (int i = 0; i < static_cast<int>(params.size()); ++i) {
      torch::autograd::impl::set_post_acc_grad_hooks(params[static_cast<size_t>(i)].tensor,
                                                    std::make_unique<GradReadyHook>(this, i));
    }
  }

  void point_grads_at_flat_grad() {
    for (auto& p : params) {
      const auto& g = p.tensor.grad();
      const void* want = static_cast<char*>(flat_grad.data_ptr()) + p.offset * flat_grad.element_size();
      if (!g.defined() || g.data_ptr() != want) p.tensor.mutable_grad() = flat_grad.narrow(0, p.offset, p.numel).view(p.shape);
    }
  }

  void zero_grad() {
    torch::NoGradGuard no_grad;
    if (path == GradPath::kBuckets) {
      grad_partition.zero_();
    } else {
      flat_grad.zero_();
      // Someone may have replaced a .grad (e.g. set it to undefined); re-point it.
      if (path == GradPath::kViews) point_grads_at_flat_grad();
    }
    for (auto& p : params) {
      if (path != GradPath::kViews) p.tensor.mutable_grad().reset();
    }
    reset_micro_step();
    reduced_in_backward = 0;
    // NCCL: let backward run ahead of the bucket reductions; step() synchronizes.
    if (path == GradPath::kBuckets && zero.overlap_comm) comm.set_overlap(true);
  }

  void reset_micro_step() {
    for (auto& b : buckets) b.pending = static_cast<int>(b.params.size());
    for (auto& p : params) p.arrived = false;
    next_bucket = static_cast<int>(buckets.size()) - 1;
  }

  void begin_micro_step(int64_t micro_step, int64_t num_micro_steps) {
    PAJAMA_CHECK(num_micro_steps >= 1 && micro_step >= 0 && micro_step < num_micro_steps,
                 "begin_micro_step(", micro_step, ", ", num_micro_steps, "): micro step out of range");
    if (micro_step > 0) finish_micro_step();
  }

  void on_grad_ready(int index) {
    torch::NoGradGuard no_grad;
    Param& p = params[static_cast<size_t>(index)];
    torch::Tensor& g = p.tensor.mutable_grad();
    if (path == GradPath::kHooks) {
      flat_grad.narrow(0, p.offset, p.numel).add_(g.reshape({-1}));
      g.reset();
      return;
    }
    PAJAMA_CHECK(!p.arrived, "ZeroOptimizer: the gradient of ", p.name,
                 " arrived twice in one backward; call begin_micro_step() before each micro-step's backward");
    p.arrived = true;
    const torch::Tensor flat = g.reshape({-1});
    // A parameter's buckets from the highest down, reducing each one as soon as it is
    // complete: a parameter wider than a bucket never holds more than two open.
    const auto& mine = param_buckets[static_cast<size_t>(index)];
    for (auto it = mine.rbegin(); it != mine.rend(); ++it) {
      Bucket& b = buckets[static_cast<size_t>(*it)];
      PAJAMA_CHECK(b.pending > 0 && *it <= next_bucket, "ZeroOptimizer: gradient of ", p.name,
                   " arrived after its bucket was reduced");
      const int64_t lo = std::max(b.lo, p.offset), hi = std::min(b.hi, p.offset + p.numel);
      open(b).narrow(0, lo - b.lo, hi - lo).copy_(flat.narrow(0, lo - p.offset, hi - lo));
      --b.pending;
      reduce_ready_buckets();
    }
    g.reset();
  }

  // Buckets are reduced in one fixed order (last bucket first, the order backward
  // produces them when parameters are passed in forward order) so every rank issues the
  // same collectives in the same sequence even if gradients arrive in another order.
  void reduce_ready_buckets() {
    while (next_bucket >= 0 && buckets[static_cast<size_t>(next_bucket)].pending == 0) {
      reduce_bucket(buckets[static_cast<size_t>(next_bucket)]);
      --next_bucket;
      ++reduced_in_backward;
    }
  }

  // A bucket's transient buffer. On the CPU buffers are recycled through a free list
  // (no large allocation per bucket); on CUDA the caching allocator recycles them, and
  // the NCCL backend records them on its stream so none is reused before NCCL is done.
  torch::Tensor& open(Bucket& b) {
    if (!b.buffer.defined()) {
      if (!free_buffers.empty()) {
        b.whole = std::move(free_buffers.back());
        free_buffers.pop_back();
      } else {
        b.whole = torch::empty({bucket_numel}, torch::TensorOptions().dtype(reduce_dtype).device(device));
      }
      b.buffer = b.whole.narrow(0, 0, b.hi - b.lo);
      ++open_buckets;
      max_open_buckets = std::max(max_open_buckets, open_buckets);
    }
    return b.buffer;
  }

  void reduce_bucket(Bucket& b) {
    torch::NoGradGuard no_grad;
    torch::Tensor& buf = open(b);
    // Zeros where no gradient arrived: parameters unused in this backward, and the padding.
    int64_t covered = b.lo;
    for (int i : b.params) {
      const Param& p = params[static_cast<size_t>(i)];
      const int64_t lo = std::max(b.lo, p.offset), hi = std::min(b.hi, p.offset + p.numel);
      if (!p.arrived) buf.narrow(0, lo - b.lo, hi - lo).zero_();
      covered = hi;
    }
    if (covered < b.hi) buf.narrow(0, covered - b.lo, b.hi - covered).zero_();
    CommSite site("zero: reduce gradient bucket");
    const std::vector<int64_t> counts = split_counts(b.lo, b.hi, partition_numel, n);
    const int64_t mine = counts[static_cast<size_t>(rank)];
    const int64_t out_lo = mine > 0 ? std::max(b.lo, own_lo) - own_lo : 0;
    torch::Tensor output = grad_partition.narrow(0, out_lo, mine);
    comm.reduce_scatter_v_add(buf, output, counts, ReduceOp::kAvg);
    if (device.is_cpu()) free_buffers.push_back(std::move(b.whole));
    b.whole = torch::Tensor();
    b.buffer = torch::Tensor();
    --open_buckets;
  }

  // Stage 2: reduces the buckets whose gradients never all arrived (unused parameters)
  // in the same fixed order, then readies the next micro-step.
  void finish_micro_step() {
    if (path != GradPath::kBuckets) return;
    for (; next_bucket >= 0; --next_bucket) reduce_bucket(buckets[static_cast<size_t>(next_bucket)]);
    reset_micro_step();
  }

  // Finishes gradient reduction; returns this rank's fp32 gradients for [own_lo, own_hi).
  torch::Tensor finish_reduction() {
    torch::NoGradGuard no_grad;
    if (path == GradPath::kBuckets) {
      finish_micro_step();
      comm.synchronize();
      comm.set_overlap(false);
      return grad_partition;
    }
    CommSite site("zero: all-reduce gradients");
    const int64_t chunk = round_up(zero.reduce_bucket_size, n);
    for (int64_t lo = 0; lo < padded_numel && n > 1; lo += chunk) {
      torch::Tensor part = flat_grad.narrow(0, lo, std::min(chunk, padded_numel - lo));
      if (reduce_dtype == torch::kFloat32) {
        comm.all_reduce(part, ReduceOp::kAvg);
      } else {
        torch::Tensor low = part.to(reduce_dtype);
        comm.all_reduce(low, ReduceOp::kAvg);
        part.copy_(low);
      }
    }
    return flat_grad.narrow(0, own_lo, own_hi - own_lo);
  }

  // Copies master weights into this rank's part of the flat parameters (unless they
  // are that part) and all-gathers the partitions (stage 0: nothing to gather).
  void gather_params() {
    torch::NoGradGuard no_grad;
    torch::Tensor mine = flat_param.narrow(0, own_lo, own_hi - own_lo);
    if (master.data_ptr() != mine.data_ptr()) mine.copy_(master);
    if (zero.stage == 0 || n == 1) return;
    CommSite site("zero: all-gather parameters");
    const int64_t size = round_up(zero.allgather_bucket_size, n);
    for (int64_t lo = 0; lo < padded_numel; lo += size) {
      const int64_t hi = std::min(lo + size, padded_numel);
      const std::vector<int64_t> counts = split_counts(lo, hi, partition_numel, n);
      const int64_t count = counts[static_cast<size_t>(rank)];
      torch::Tensor output = flat_param.narrow(0, lo, hi - lo);
      torch::Tensor input = count > 0 ? flat_param.narrow(0, std::max(lo, own_lo), count) : flat_param.narrow(0, lo, 0);
      comm.all_gather_v(input, output, counts);
    }
  }

  // Finishes the reduction and learns the global gradient norm together with whether any
  // rank flagged a non-finite value (one all-reduce of [sum of squares, flags]).
  double prepare_step(const torch::Tensor& local_nonfinite) {
    PAJAMA_CHECK(!prepared, "ZeroOptimizer: prepare_step() called twice without apply_step()/skip_step()");
    grads = finish_reduction();
    torch::NoGradGuard no_grad;
    // Global norm: each rank sums the squares of one disjoint partition (padding is
    // zero), one all-reduce adds them up. Stage 0 holds everything reduced, so it
    // also sums only its nominal partition.
    torch::Tensor norm_part = zero.stage == 0 ? grads.narrow(0, rank * partition_numel, partition_numel) : grads;
    // Squares summed in fp64 (an fp32 reduction over millions of elements is off by
    // ~1e-4), chunk by chunk so no partition-sized temporary exists.
    constexpr int64_t kNormChunk = int64_t{1} << 22;
    torch::Tensor sums = torch::zeros({2}, norm_part.options().dtype(torch::kFloat64));
    torch::Tensor sq = sums.narrow(0, 0, 1);
    for (int64_t lo = 0; lo < norm_part.numel(); lo += kNormChunk) {
      sq += norm_part.narrow(0, lo, std::min(kNormChunk, norm_part.numel() - lo)).square().sum(torch::kFloat64);
    }
    if (local_nonfinite.defined()) sums.narrow(0, 1, 1).copy_(local_nonfinite.reshape({1}).to(sums.options()));
    CommSite site("zero: gradient norm");
    comm.all_reduce(sums, ReduceOp::kSum);
    norm = sums.narrow(0, 0, 1).sqrt();
    prepared = true;
    const torch::Tensor host = sums.cpu();
    const double flagged = host[1].item<double>();
    const double value = std::sqrt(host[0].item<double>());
    return flagged != 0 ? std::numeric_limits<double>::quiet_NaN() : value;
  }

  void apply_step(double lr, double grad_clip) {
    PAJAMA_CHECK(prepared, "ZeroOptimizer: apply_step() without prepare_step()");
    torch::NoGradGuard no_grad;
    if (grad_clip > 0) {
      // min(1, clip / (norm + 1e-6)) as torch.nn.utils.clip_grad_norm_, kept on the device.
      torch::Tensor coef = (grad_clip / (norm + 1e-6)).clamp_max(1.0);
      grads.mul_(coef.to(torch::kFloat32));
    }
    update->step(master, grads, lr);
    ++step_count;
    for (auto& p : params) ++p.steps;
    gather_params();
    finish_step();
  }

  // The update is dropped: master weights, moments and step counts stay as they were;
  // the next zero_grad() clears the gradients.
  void skip_step() {
    PAJAMA_CHECK(prepared, "ZeroOptimizer: skip_step() without prepare_step()");
    finish_step();
  }

  void finish_step() {
    prepared = false;
    grads = torch::Tensor();
    norm = torch::Tensor();
  }

  double step(double lr, double grad_clip) {
    const double value = prepare_step(torch::Tensor());
    apply_step(lr, grad_clip);
    return value;
  }

  Communicator& comm;
  ZeroConfig zero;
  int n;
  int rank;
  torch::Device device;
  torch::ScalarType param_dtype = torch::kFloat32;
  torch::ScalarType reduce_dtype = torch::kFloat32;
  GradPath path = GradPath::kViews;
  std::vector<Param> params;
  std::vector<int> owned;            // indices of parameters with elements in [own_lo, own_hi), in order
  int64_t param_numel = 0, padded_numel = 0, partition_numel = 0;
  int64_t own_lo = 0, own_hi = 0;    // flat range this rank updates (stage 0: everything)
  torch::Tensor flat_param;          // (padded_numel) param dtype; the model's parameters are views
  torch::Tensor flat_grad;           // (padded_numel) fp32; stages 0/1 and one-rank stage 2
  torch::Tensor grad_partition;      // (partition_numel) fp32; stage 2 on several ranks
  torch::Tensor master;              // (own_hi - own_lo) fp32; a view of flat_param for fp32 parameters
  std::unique_ptr<ShardOptimizer> update;
  std::vector<Bucket> buckets;
  std::vector<std::vector<int>> param_buckets;
  std::vector<torch::Tensor> free_buffers;  // CPU: bucket buffers ready for reuse
  int64_t bucket_numel = 0;
  int64_t open_buckets = 0, max_open_buckets = 0;
  int next_bucket = -1;
  int64_t reduced_in_backward = 0;
  int64_t step_count = 0;
  bool prepared = false;             // between prepare_step() and apply_step()/skip_step()
  torch::Tensor grads;               // this rank's reduced fp32 gradients while prepared
  torch::Tensor norm;                // (1) fp64 global norm on the device while prepared
};

ZeroOptimizer::ZeroOptimizer(const NamedParameters& params, const ShardOptimizerFactory& make_optimizer,
                             const ZeroConfig& zero, Communicator& comm)
    : impl_(std::make_unique<Impl>(params, make_optimizer, zero, comm)) {}

ZeroOptimizer::~ZeroOptimizer() = default;

void ZeroOptimizer::zero_grad() { impl_->zero_grad(); }

void ZeroOptimizer::begin_micro_step(int64_t micro_step, int64_t num_micro_steps) {
  impl_->begin_micro_step(micro_step, num_micro_steps);
}

double ZeroOptimizer::step(double lr, double grad_clip) { return impl_->step(lr, grad_clip); }

double ZeroOptimizer::prepare_step(const torch::Tensor& local_nonfinite) { return impl_->prepare_step(local_nonfinite); }

void ZeroOptimizer::apply_step(double lr, double grad_clip) { impl_->apply_step(lr, grad_clip); }

void ZeroOptimizer::skip_step() { impl_->skip_step(); }

ZeroMemoryStats ZeroOptimizer::memory_stats() const {
  const Impl& m = *impl_;
  ZeroMemoryStats s;
  s.param_numel = m.param_numel;
  s.padded_numel = m.padded_numel;
  s.partition_numel = m.partition_numel;
  s.master_numel = m.master.numel();
  s.master_is_separate = m.param_dtype != torch::kFloat32;
  for (const auto& name : impl_->update->state_names()) s.state_numel += impl_->update->state(name).numel();
  s.grad_numel_kept = m.path == Impl::GradPath::kBuckets ? m.grad_partition.numel() : m.flat_grad.numel();
  s.bucket_numel = m.bucket_numel;
  s.max_buckets_open = m.max_open_buckets;
  return s;
}

int64_t ZeroOptimizer::step_count() const { return impl_->step_count; }

int64_t ZeroOptimizer::num_buckets_reduced_in_backward() const { return impl_->reduced_in_backward; }

std::vector<ZeroOptimizer::OwnedSlice> ZeroOptimizer::owned_slices() const {
  std::vector<OwnedSlice> out;
  for (int i : impl_->owned) {
    const auto& p = impl_->params[static_cast<size_t>(i)];
    const int64_t lo = std::max(p.offset, impl_->own_lo), hi = std::min(p.offset + p.numel, impl_->own_hi);
    out.push_back(OwnedSlice{p.name, p.shape, lo - p.offset, hi - p.offset});
  }
  return out;
}

std::vector<std::string> ZeroOptimizer::state_kinds() const {
  std::vector<std::string> kinds = {"master"};
  for (auto& name : impl_->update->state_names()) kinds.push_back(name);
  return kinds;
}

torch::Tensor ZeroOptimizer::state_slice(const std::string& kind, const std::string& name) {
  const std::vector<std::string> kinds = state_kinds();
  if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) {
    std::string known;
    for (const auto& k : kinds) known += (known.empty() ? "" : ", ") + k;
    PAJAMA_FAIL_AS(CheckpointError, "optimizer state kind '", kind, "' is unknown; expected one of ", known);
  }
  const torch::Tensor state = kind == "master" ? impl_->master : impl_->update->state(kind);
  for (int i : impl_->owned) {
    const auto& p = impl_->params[static_cast<size_t>(i)];
    if (p.name != name) continue;
    const int64_t lo = std::max(p.offset, impl_->own_lo), hi = std::min(p.offset + p.numel, impl_->own_hi);
    return state.narrow(0, lo - impl_->own_lo, hi - lo);
  }
  PAJAMA_FAIL_AS(CheckpointError, "rank ", impl_->rank, " owns no optimizer state of parameter '", name, "'");
}

void ZeroOptimizer::set_step_count(int64_t steps) {
  PAJAMA_CHECK(steps >= 0, "set_step_count: negative step count ", steps);
  impl_->step_count = steps;
  for (auto& p : impl_->params) p.steps = steps;
  impl_->update->set_step_count(steps);
}

void ZeroOptimizer::sync_params_from_master() { impl_->gather_params(); }

std::vector<std::pair<std::string, int64_t>> ZeroOptimizer::parameter_steps() const {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& p : impl_->params) out.emplace_back(p.name, p.steps);
  return out;
}

void ZeroOptimizer::set_parameter_steps(const std::string& name, int64_t steps) {
  PAJAMA_CHECK(steps >= 0, "set_parameter_steps: negative step count ", steps, " for ", name);
  for (int i = 0; i < static_cast<int>(impl_->params.size()); ++i) {
    auto& p = impl_->params[static_cast<size_t>(i)];
    if (p.name != name) continue;
    p.steps = steps;
    const auto it = std::find(impl_->owned.begin(), impl_->owned.end(), i);
    if (it != impl_->owned.end()) {
      impl_->update->set_segment_step_count(static_cast<size_t>(it - impl_->owned.begin()), steps);
    }
    return;
  }
  PAJAMA_FAIL_AS(CheckpointError, "set_parameter_steps: the optimizer has no parameter '", name, "'");
}

void ZeroOptimizer::master_from_params() {
  torch::NoGradGuard no_grad;
  const torch::Tensor mine = impl_->flat_param.narrow(0, impl_->own_lo, impl_->own_hi - impl_->own_lo);
  if (impl_->master.data_ptr() != mine.data_ptr()) impl_->master.copy_(mine);
}

}  // namespace pajama
