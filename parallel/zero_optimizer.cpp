#include "parallel/zero_optimizer.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/log.h"

namespace pajama {
namespace {

// Each rank's partition is a multiple of this many elements (64 bytes of fp32, 32 of
// bf16), so partitions start aligned; padding at the end of the flat buffer absorbs it.
constexpr int64_t kPartitionAlignment = 16;

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

}  // namespace

int64_t zero_partition_numel(int64_t num_params, int64_t num_ranks) {
  return round_up(num_params, kPartitionAlignment * num_ranks) / num_ranks;
}

struct ZeroOptimizer::Impl {
  struct Param {
    std::string name;
    torch::Tensor tensor;          // the model's parameter, a view of flat_param
    std::vector<int64_t> shape;
    int64_t offset = 0;            // first element in the flat buffer
    int64_t numel = 0;
    bool decay = false;            // weight decay applies (>= 2-D)
  };
  // The intersection of this rank's owned range with one parameter: one AdamW tensor.
  struct Segment {
    int param = 0;
    int64_t lo = 0, hi = 0;        // flat-buffer coordinates
    torch::Tensor step;            // AdamW step counter (the fused kernel's state_steps)
  };
  // Stage 2: a contiguous range of the flat gradient buffer reduced by one reduce-scatter.
  struct Bucket {
    int64_t lo = 0, hi = 0;
    int num_params = 0;            // parameters whose gradients land in [lo, hi)
    int pending = 0;               // of those, not yet produced in this backward
    bool reduced = false;
  };

  Impl(const NamedParameters& named, const AdamWConfig& a, const ZeroConfig& z, Communicator& c)
      : comm(c), adamw(a), zero(z), n(c.size()), rank(c.rank()), device(c.device()) {
    PAJAMA_CHECK_AS(ConfigError, zero.stage >= 0 && zero.stage <= 2, "parallel.zero_stage must be 0, 1 or 2, got ",
                    zero.stage, " (stage 3 is not implemented)");
    PAJAMA_CHECK_AS(ConfigError, zero.reduce_bucket_size > 0, "parallel.reduce_bucket_size must be positive, got ",
                    zero.reduce_bucket_size);
    PAJAMA_CHECK_AS(ConfigError, zero.allgather_bucket_size > 0, "parallel.allgather_bucket_size must be positive, got ",
                    zero.allgather_bucket_size);
    PAJAMA_CHECK_AS(ConfigError, zero.reduce_dtype == "fp32" || zero.reduce_dtype == "bf16",
                    "parallel.reduce_dtype must be fp32 or bf16, got '", zero.reduce_dtype, "'");
    PAJAMA_CHECK(!named.empty(), "ZeroOptimizer: no parameters");
    param_dtype = named.front().second.scalar_type();
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
      p.decay = t.dim() >= 2;
      param_numel += p.numel;
      params.push_back(std::move(p));
    }
    reduce_dtype = zero.reduce_dtype == "bf16" ? torch::kBFloat16 : torch::kFloat32;
    if (param_dtype == torch::kFloat32) reduce_dtype = torch::kFloat32;  // never reduce below the gradients' precision
    PAJAMA_CHECK_AS(ConfigError, param_dtype == torch::kFloat32 || param_dtype == torch::kBFloat16,
                    "ZeroOptimizer supports fp32 or bf16 parameters, got ", c10::toString(param_dtype));

    padded_numel = zero_partition_numel(param_numel, n) * n;
    partition_numel = padded_numel / n;
    own_lo = zero.stage == 0 ? 0 : rank * partition_numel;
    own_hi = zero.stage == 0 ? padded_numel : own_lo + partition_numel;

    torch::NoGradGuard no_grad;
    const auto opts = torch::TensorOptions().dtype(param_dtype).device(device);
    flat_param = torch::zeros({padded_numel}, opts);
    for (auto& p : params) flat_param.narrow(0, p.offset, p.numel).copy_(p.tensor.detach().reshape({-1}));
    // Every rank starts from rank 0's values, whatever its own initialisation did.
    if (n > 1) comm.broadcast(flat_param, 0);
    for (auto& p : params) p.tensor.set_data(flat_param.narrow(0, p.offset, p.numel).view(p.shape));

    const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(device);
    master = flat_param.narrow(0, own_lo, own_hi - own_lo).to(torch::kFloat32).clone();
    exp_avg = torch::zeros({own_hi - own_lo}, f32);
    exp_avg_sq = torch::zeros({own_hi - own_lo}, f32);
    for (int i = 0; i < static_cast<int>(params.size()); ++i) {
      const Param& p = params[static_cast<size_t>(i)];
      const int64_t lo = std::max(p.offset, own_lo), hi = std::min(p.offset + p.numel, own_hi);
      if (lo < hi) segments.push_back(Segment{i, lo, hi, torch::zeros({}, f32)});
    }

    // Buckets are multiples of n elements so every volume splits evenly (exact byte counts).
    if (zero.stage == 2) {
      const int64_t size = round_up(zero.reduce_bucket_size, n);
      param_buckets.resize(params.size());
      for (int64_t lo = 0; lo < padded_numel; lo += size) {
        Bucket b;
        b.lo = lo;
        b.hi = std::min(lo + size, padded_numel);
        const int index = static_cast<int>(buckets.size());
        for (size_t i = 0; i < params.size(); ++i) {
          if (params[i].offset < b.hi && params[i].offset + params[i].numel > b.lo) {
            ++b.num_params;
            param_buckets[i].push_back(index);
          }
        }
        buckets.push_back(b);
      }
      grad_partition = torch::zeros({partition_numel}, torch::TensorOptions().dtype(reduce_dtype).device(device));
      install_hooks();
    }
    allocate_grads();
    log_info("ZeRO-", zero.stage, ": ", param_numel, " parameters (", padded_numel, " padded) over ", n,
             " rank(s), partition ", partition_numel, ", ", buckets.size(), " reduce bucket(s) of <= ",
             round_up(zero.reduce_bucket_size, n), " elements");
  }

  ~Impl() {
    for (auto& p : params) torch::autograd::impl::set_post_acc_grad_hooks(p.tensor, nullptr);
  }

  // A C++ post-accumulate-grad hook: runs after autograd has added a parameter's
  // gradient into its .grad (our view of flat_grad).
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

  void allocate_grads() {
    torch::NoGradGuard no_grad;
    flat_grad = torch::zeros({padded_numel}, torch::TensorOptions().dtype(param_dtype).device(device));
    for (auto& p : params) p.tensor.mutable_grad() = flat_grad.narrow(0, p.offset, p.numel).view(p.shape);
  }

  void zero_grad() {
    torch::NoGradGuard no_grad;
    if (!flat_grad.defined()) {
      allocate_grads();
    } else {
      flat_grad.zero_();
      // Someone may have replaced a .grad (e.g. set it to undefined); re-point it.
      for (auto& p : params) {
        const auto& g = p.tensor.grad();
        if (!g.defined() || g.data_ptr() != static_cast<char*>(flat_grad.data_ptr()) + p.offset * flat_grad.element_size()) {
          p.tensor.mutable_grad() = flat_grad.narrow(0, p.offset, p.numel).view(p.shape);
        }
      }
    }
    for (auto& b : buckets) {
      b.pending = b.num_params;
      b.reduced = false;
    }
    next_bucket = static_cast<int>(buckets.size()) - 1;
    armed = false;
    reduced_in_backward = 0;
  }

  void begin_micro_step(int64_t micro_step, int64_t num_micro_steps) {
    PAJAMA_CHECK(num_micro_steps >= 1 && micro_step >= 0 && micro_step < num_micro_steps,
                 "begin_micro_step(", micro_step, ", ", num_micro_steps, "): micro step out of range");
    PAJAMA_CHECK(flat_grad.defined(), "begin_micro_step: call zero_grad() before the first micro step");
    armed = zero.stage == 2 && micro_step == num_micro_steps - 1;
    if (armed) {
      for (auto& b : buckets) b.pending = b.num_params;
      next_bucket = static_cast<int>(buckets.size()) - 1;
      // NCCL: let backward run ahead of the bucket reductions; step() synchronizes.
      if (zero.overlap_comm) comm.set_overlap(true);
    }
  }

  void on_grad_ready(int index) {
    if (!armed) return;
    for (int b : param_buckets[static_cast<size_t>(index)]) --buckets[static_cast<size_t>(b)].pending;
    // Buckets are reduced in one fixed order (last bucket first, the order backward
    // produces them) so every rank issues the same collectives in the same sequence
    // even if gradients arrive in a different order.
    while (next_bucket >= 0 && buckets[static_cast<size_t>(next_bucket)].pending <= 0) {
      reduce_bucket(buckets[static_cast<size_t>(next_bucket)]);
      --next_bucket;
      ++reduced_in_backward;
    }
  }

  void reduce_bucket(Bucket& b) {
    torch::NoGradGuard no_grad;
    std::vector<int64_t> counts(static_cast<size_t>(n));
    for (int r = 0; r < n; ++r) {
      const int64_t lo = std::max(b.lo, r * partition_numel), hi = std::min(b.hi, (r + 1) * partition_numel);
      counts[static_cast<size_t>(r)] = std::max<int64_t>(0, hi - lo);
    }
    torch::Tensor input = flat_grad.narrow(0, b.lo, b.hi - b.lo);
    if (input.scalar_type() != reduce_dtype) input = input.to(reduce_dtype);
    const int64_t mine = counts[static_cast<size_t>(rank)];
    const int64_t out_lo = mine > 0 ? std::max(b.lo, own_lo) - own_lo : 0;
    torch::Tensor output = grad_partition.narrow(0, out_lo, mine);
    comm.reduce_scatter_v(input, output, counts, ReduceOp::kAvg);
    b.reduced = true;
  }

  // Finishes gradient reduction; returns this rank's fp32 gradients for [own_lo, own_hi).
  torch::Tensor finish_reduction() {
    torch::NoGradGuard no_grad;
    PAJAMA_CHECK(flat_grad.defined(), "ZeroOptimizer::step: no gradients; call zero_grad() before backward");
    if (zero.stage == 2) {
      armed = false;
      // Buckets whose gradients never all arrived (unused parameters, or no
      // begin_micro_step) are reduced now, continuing the same fixed order.
      for (; next_bucket >= 0; --next_bucket) reduce_bucket(buckets[static_cast<size_t>(next_bucket)]);
      comm.synchronize();
      comm.set_overlap(false);
      // Keep only this rank's partition: the full gradient buffer is released.
      for (auto& p : params) p.tensor.mutable_grad().reset();
      flat_grad = torch::Tensor();
      return grad_partition.scalar_type() == torch::kFloat32 ? grad_partition : grad_partition.to(torch::kFloat32);
    }
    torch::Tensor g = flat_grad;
    if (g.scalar_type() != reduce_dtype) g = g.to(reduce_dtype);
    const int64_t chunk = round_up(zero.reduce_bucket_size, n);
    for (int64_t lo = 0; lo < padded_numel; lo += chunk) {
      torch::Tensor part = g.narrow(0, lo, std::min(chunk, padded_numel - lo));
      comm.all_reduce(part, ReduceOp::kAvg);
    }
    g = g.narrow(0, own_lo, own_hi - own_lo);
    return g.scalar_type() == torch::kFloat32 ? g : g.to(torch::kFloat32);
  }

  void run_adamw(const torch::Tensor& grads, double lr) {
    for (const bool decay : {true, false}) {
      std::vector<torch::Tensor> p, g, m, v, s;
      for (auto& seg : segments) {
        if (params[static_cast<size_t>(seg.param)].decay != decay) continue;
        const int64_t off = seg.lo - own_lo, len = seg.hi - seg.lo;
        p.push_back(master.narrow(0, off, len));
        g.push_back(grads.narrow(0, off, len));
        m.push_back(exp_avg.narrow(0, off, len));
        v.push_back(exp_avg_sq.narrow(0, off, len));
        s.push_back(seg.step);
      }
      if (p.empty()) continue;
      // As torch.optim.AdamW(fused=True): the caller advances the step counters, then
      // the fused kernel: decoupled decay p *= 1 - lr*wd, bias-corrected moments.
      at::_foreach_add_(s, 1.0);
      at::_fused_adamw_(p, g, m, v, {}, s, lr, adamw.beta1, adamw.beta2, decay ? adamw.weight_decay : 0.0, adamw.eps,
                        /*amsgrad=*/false, /*maximize=*/false);
    }
  }

  // Copies master weights into this rank's part of the flat parameters and all-gathers
  // the partitions (stage 0: every rank updated everything; nothing to gather).
  void gather_params() {
    torch::NoGradGuard no_grad;
    flat_param.narrow(0, own_lo, own_hi - own_lo).copy_(master);
    if (zero.stage == 0 || n == 1) return;
    const int64_t size = round_up(zero.allgather_bucket_size, n);
    for (int64_t lo = 0; lo < padded_numel; lo += size) {
      const int64_t hi = std::min(lo + size, padded_numel);
      std::vector<int64_t> counts(static_cast<size_t>(n));
      for (int r = 0; r < n; ++r) {
        const int64_t a = std::max(lo, r * partition_numel), b = std::min(hi, (r + 1) * partition_numel);
        counts[static_cast<size_t>(r)] = std::max<int64_t>(0, b - a);
      }
      const int64_t mine = counts[static_cast<size_t>(rank)];
      torch::Tensor output = flat_param.narrow(0, lo, hi - lo);
      torch::Tensor input = mine > 0 ? flat_param.narrow(0, std::max(lo, own_lo), mine) : flat_param.narrow(0, lo, 0);
      comm.all_gather_v(input, output, counts);
    }
  }

  double step(double lr, double grad_clip) {
    torch::Tensor g = finish_reduction();
    torch::NoGradGuard no_grad;
    // Global norm: each rank sums the squares of one disjoint partition (padding is
    // zero), one all-reduce adds them up. Stage 0 holds everything reduced, so it
    // also sums only its nominal partition.
    torch::Tensor norm_part = zero.stage == 0 ? g.narrow(0, rank * partition_numel, partition_numel) : g;
    torch::Tensor sq = norm_part.square().sum(torch::kFloat64).reshape({1});
    comm.all_reduce(sq, ReduceOp::kSum);
    torch::Tensor norm = sq.sqrt();
    if (grad_clip > 0) {
      // min(1, clip / (norm + 1e-6)) as torch.nn.utils.clip_grad_norm_, kept on the device.
      torch::Tensor coef = (grad_clip / (norm + 1e-6)).clamp_max(1.0);
      g.mul_(coef.to(torch::kFloat32));
    }
    run_adamw(g, lr);
    ++step_count;
    gather_params();
    return norm.item<double>();
  }

  Communicator& comm;
  AdamWConfig adamw;
  ZeroConfig zero;
  int n;
  int rank;
  torch::Device device;
  torch::ScalarType param_dtype = torch::kFloat32;
  torch::ScalarType reduce_dtype = torch::kFloat32;
  std::vector<Param> params;
  int64_t param_numel = 0, padded_numel = 0, partition_numel = 0;
  int64_t own_lo = 0, own_hi = 0;   // flat range this rank updates (stage 0: everything)
  torch::Tensor flat_param;          // (padded_numel) param dtype; the model's parameters are views
  torch::Tensor flat_grad;           // (padded_numel) param dtype; .grad views; released after a stage-2 reduction
  torch::Tensor grad_partition;      // (partition_numel) reduce dtype; stage 2 only
  torch::Tensor master, exp_avg, exp_avg_sq;  // (own_hi - own_lo) fp32
  std::vector<Segment> segments;
  std::vector<Bucket> buckets;
  std::vector<std::vector<int>> param_buckets;
  int next_bucket = -1;
  bool armed = false;
  int64_t reduced_in_backward = 0;
  int64_t step_count = 0;
};

ZeroOptimizer::ZeroOptimizer(const NamedParameters& params, const AdamWConfig& adamw, const ZeroConfig& zero,
                             Communicator& comm)
    : impl_(std::make_unique<Impl>(params, adamw, zero, comm)) {}

ZeroOptimizer::~ZeroOptimizer() = default;

void ZeroOptimizer::zero_grad() { impl_->zero_grad(); }

void ZeroOptimizer::begin_micro_step(int64_t micro_step, int64_t num_micro_steps) {
  impl_->begin_micro_step(micro_step, num_micro_steps);
}

double ZeroOptimizer::step(double lr, double grad_clip) { return impl_->step(lr, grad_clip); }

ZeroMemoryStats ZeroOptimizer::memory_stats() const {
  ZeroMemoryStats s;
  s.param_numel = impl_->param_numel;
  s.padded_numel = impl_->padded_numel;
  s.partition_numel = impl_->partition_numel;
  s.master_numel = impl_->master.numel();
  s.adam_m_numel = impl_->exp_avg.numel();
  s.adam_v_numel = impl_->exp_avg_sq.numel();
  s.grad_numel_kept = impl_->zero.stage == 2 ? impl_->grad_partition.numel() : impl_->padded_numel;
  return s;
}

int64_t ZeroOptimizer::step_count() const { return impl_->step_count; }

int64_t ZeroOptimizer::num_buckets_reduced_in_backward() const { return impl_->reduced_in_backward; }

std::vector<ZeroOptimizer::OwnedSlice> ZeroOptimizer::owned_slices() const {
  std::vector<OwnedSlice> out;
  for (const auto& seg : impl_->segments) {
    const auto& p = impl_->params[static_cast<size_t>(seg.param)];
    out.push_back(OwnedSlice{p.name, p.shape, seg.lo - p.offset, seg.hi - p.offset});
  }
  return out;
}

torch::Tensor ZeroOptimizer::state_slice(const std::string& kind, const std::string& name) {
  torch::Tensor* state = kind == "master"       ? &impl_->master
                         : kind == "exp_avg"    ? &impl_->exp_avg
                         : kind == "exp_avg_sq" ? &impl_->exp_avg_sq
                                                : nullptr;
  PAJAMA_CHECK_AS(CheckpointError, state != nullptr, "optimizer state kind '", kind,
                  "' is unknown; expected master, exp_avg or exp_avg_sq");
  for (const auto& seg : impl_->segments) {
    if (impl_->params[static_cast<size_t>(seg.param)].name == name) {
      return state->narrow(0, seg.lo - impl_->own_lo, seg.hi - seg.lo);
    }
  }
  PAJAMA_FAIL_AS(CheckpointError, "rank ", impl_->rank, " owns no optimizer state of parameter '", name, "'");
}

void ZeroOptimizer::set_step_count(int64_t steps) {
  PAJAMA_CHECK(steps >= 0, "set_step_count: negative step count ", steps);
  impl_->step_count = steps;
  for (auto& seg : impl_->segments) seg.step.fill_(static_cast<double>(steps));
}

void ZeroOptimizer::sync_params_from_master() { impl_->gather_params(); }

}  // namespace pajama
