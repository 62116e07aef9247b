#include "trainer/run_setup.h"

#include <algorithm>
#include <cstdlib>
#include <set>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "model/parameter_order.h"
#include "parallel/device_memory.h"
#include "trainer/memory_plan.h"
#include "trainer/metrics.h"
#include "trainer/trainable.h"

namespace pajama {

torch::Device resolve_device(const TrainLoopConfig& train, const World& world) {
  const bool has_cuda = torch::cuda::is_available();
  if (train.device == "cuda") {
    PAJAMA_CHECK_AS(ConfigError, has_cuda,
                    "train.device is cuda but no CUDA device is visible (or this build has no CUDA); "
                    "use train.device: cpu or run on a GPU machine");
  }
  if (train.device == "cuda" || (train.device == "auto" && has_cuda)) {
    return local_gpu(world.rank, world.local_rank);
  }
  return torch::Device(torch::kCPU);
}

// bf16 runs the same mixed-precision path on every device: bf16 parameters and
// activations, fp32 master weights, optimizer state, gradient accumulation and loss.
torch::Dtype resolve_dtype(const TrainLoopConfig& train, const torch::Device& device) {
  if (train.dtype == "bf16") return torch::kBFloat16;
  if (train.dtype == "fp32") return torch::kFloat32;
  return device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
}

// Logs the plan's peak; on a GPU whose memory the plan exceeds, warns before the first
// step with what would make it fit (a plan, so a warning: the allocator has the last word).
void check_memory_plan(const TrainConfig& cfg, const World& world, const torch::Device& device, torch::Dtype dtype) {
  const std::string name = dtype == torch::kBFloat16 ? "bf16" : "fp32";
  const MemoryPlan plan = plan_memory(cfg, world.size, name);
  log_info("memory plan per rank: peak ", format_gib(static_cast<double>(plan.peak_bytes)), " (static ",
           format_gib(static_cast<double>(plan.static_bytes)), "; `pajama info` prints the terms)");
  const int64_t total = device_total_memory(device);
  if (total <= 0) return;
  const FitAdvice advice = advise_fit(cfg, world.size, name, total);
  if (advice.fits) return;
  std::string remedies = advice.reason.empty() ? "" : "\n  " + advice.reason;
  for (const auto& r : advice.remedies) remedies += "\n  would fit with: " + r;
  log_warn("the memory plan (", format_gib(static_cast<double>(plan.peak_bytes)), " per rank) exceeds ",
           device.str(), "'s ", format_gib(static_cast<double>(total)), "; expect out-of-memory.", remedies);
}

// The parameters train.trainable selects, in forward order; the others are frozen
// (requires_grad false: autograd computes no gradient for them, and the optimizer never
// sees them). Still-unfrozen parameters' gradients flow through frozen layers as usual.
NamedParameters trainable_parameters(Llama& model, const std::vector<std::string>& patterns) {
  const NamedParameters all = parameters_in_forward_order(*model);
  std::vector<std::string> names;
  for (const auto& p : model->named_parameters()) names.push_back(p.key());
  const std::vector<std::string> chosen = select_trainable(names, patterns);
  const std::set<std::string> trains(chosen.begin(), chosen.end());
  NamedParameters out;
  int64_t trained = 0, frozen = 0;
  for (const auto& [name, t] : all) {
    if (trains.count(name) != 0) {
      out.emplace_back(name, t);
      trained += t.numel();
    } else {
      t.set_requires_grad(false);
      frozen += t.numel();
    }
  }
  if (!trains_everything(patterns)) {
    log_info("train.trainable: ", out.size(), " of ", all.size(), " parameter tensors train (", trained,
             " parameters); ", frozen, " parameters are frozen");
  }
  return out;
}

void set_cpu_threads(const TrainLoopConfig& train, const World& world) {
  const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  int64_t threads = train.threads;
  const char* omp = std::getenv("OMP_NUM_THREADS");
  if (threads <= 0 && omp != nullptr && *omp != '\0') {
    char* end = nullptr;
    const long n = std::strtol(omp, &end, 10);
    PAJAMA_CHECK_AS(ConfigError, *end == '\0' && n > 0, "OMP_NUM_THREADS='", omp,
                    "' is not a positive integer (unset it or set train.threads)");
    threads = n;
  }
  if (threads <= 0) threads = std::max<int64_t>(1, cores / world.local_size);
  torch::set_num_threads(static_cast<int>(threads));
  log_info("CPU threads per rank: ", threads,
           train.threads > 0 ? " (train.threads)" : omp != nullptr ? " (OMP_NUM_THREADS)" : " (cores / ranks on the node)");
}

double resolve_peak_flops(double configured, const torch::Device& device, torch::Dtype dtype) {
  if (configured != 0 || !device.is_cuda()) return configured;
  const std::string gpu = device_name(device);
  const double peak = dtype == torch::kBFloat16 ? known_peak_flops(gpu) : 0;
  if (peak > 0) {
    log_info("MFU against ", gpu, "'s dense bf16 peak of ", peak / 1e12, " TFLOP/s (log.peak_flops: 0 = auto)");
  } else {
    log_info("no known bf16 peak for ", gpu, " in ", c10::toString(dtype), "; set log.peak_flops to report MFU");
  }
  return peak;
}

}  // namespace pajama
