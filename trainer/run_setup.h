// What a run settles before its first step, from the config and the world: the device,
// the dtype, the CPU thread pool, the memory plan's verdict, the trainable parameters,
// and the peak FLOP/s MFU is reported against. The Trainer's constructor calls these.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "model/llama.h"
#include "parallel/world.h"
#include "parallel/zero_optimizer.h"
#include "trainer/train_config.h"

namespace pajama {

// train.device: cuda (a ConfigError when none is visible), cpu, or auto (this rank's GPU
// when there is one).
torch::Device resolve_device(const TrainLoopConfig& train, const World& world);
// train.dtype; auto is bf16 on a GPU, fp32 on the CPU.
torch::Dtype resolve_dtype(const TrainLoopConfig& train, const torch::Device& device);
// train.threads, else OMP_NUM_THREADS, else the node's cores shared by its ranks; on a
// GPU too, where the CPU pool is little used but one per core in every rank would
// oversubscribe the node. Sets LibTorch's pool and logs the choice.
void set_cpu_threads(const TrainLoopConfig& train, const World& world);
void check_memory_plan(const TrainConfig& cfg, const World& world, const torch::Device& device, torch::Dtype dtype);
NamedParameters trainable_parameters(Llama& model, const std::vector<std::string>& patterns);
// log.peak_flops, or when it is 0 (auto) on a GPU in bf16 the GPU's known dense peak (0
// when unknown: no MFU), with a log line saying which.
double resolve_peak_flops(double configured, const torch::Device& device, torch::Dtype dtype);

}  // namespace pajama
