// NCCL on one GPU: a one-rank NCCL communicator (NCCL accepts them; the trainer uses one
// with PAJAMA_NCCL_ONE_RANK=1) against the MPI backend on the CPU, collective by collective
// and dtype by dtype, and a ZeRO-2 training step of a small LLaMA on CUDA with NCCL against
// the same steps on the CPU with MPI.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "model/llama.h"
#include "model/parameter_order.h"
#include "parallel/adamw.h"
#include "parallel/comm_detail.h"
#include "parallel/communicator.h"
#include "parallel/zero_optimizer.h"
#include "gpu_test_util.h"

namespace pajama {
namespace {

const torch::Device kCuda(torch::kCUDA, 0);

struct Comms {
  std::unique_ptr<Communicator> nccl, mpi;
};
Comms& comms() {
  static Comms c = [] {
    Comms r;
    CommConfig cfg;
    cfg.timeout_s = 60;
    r.nccl = detail::make_nccl_communicator(World{}, kCuda, cfg);
    r.mpi = detail::make_mpi_communicator(World{}, cfg);
    return r;
  }();
  return c;
}

torch::Tensor sample(torch::ScalarType dtype, int64_t n) {
  torch::manual_seed(n);
  if (dtype == torch::kInt64 || dtype == torch::kInt32) return torch::randint(-1000, 1000, {n}, dtype);
  return torch::randn({n}, torch::kFloat32).to(dtype);
}

TEST(GpuNccl, OneRankCollectivesEqualMpi) {
  PAJAMA_NEED_GPU();
  Comms& c = comms();
  ASSERT_EQ(c.nccl->backend(), "nccl");
  ASSERT_EQ(c.mpi->backend(), "mpi");
  for (const auto dtype : {torch::kFloat32, torch::kBFloat16, torch::kInt64}) {
    const std::string tag = c10::toString(dtype);
    for (const auto op : {ReduceOp::kSum, ReduceOp::kMax, ReduceOp::kAvg}) {
      if (op == ReduceOp::kAvg && dtype == torch::kInt64) continue;
      torch::Tensor on_gpu = sample(dtype, 1001).to(kCuda), on_cpu = sample(dtype, 1001);
      c.nccl->all_reduce(on_gpu, op);
      c.mpi->all_reduce(on_cpu, op);
      c.nccl->synchronize();
      EXPECT_TRUE(torch::equal(on_gpu.cpu(), on_cpu)) << tag << " all_reduce op " << static_cast<int>(op);
    }
    // reduce_scatter_v_add adds the (one-rank) reduction into the output.
    {
      torch::Tensor in_gpu = sample(dtype, 777).to(kCuda), out_gpu = sample(dtype, 778).narrow(0, 0, 777).to(kCuda);
      torch::Tensor in_cpu = sample(dtype, 777), out_cpu = sample(dtype, 778).narrow(0, 0, 777).clone();
      c.nccl->reduce_scatter_v_add(in_gpu, out_gpu, {777}, ReduceOp::kSum);
      c.mpi->reduce_scatter_v_add(in_cpu, out_cpu, {777}, ReduceOp::kSum);
      c.nccl->synchronize();
      EXPECT_TRUE(torch::equal(out_gpu.cpu(), out_cpu)) << tag << " reduce_scatter_v_add";
    }
    {
      torch::Tensor in_gpu = sample(dtype, 333).to(kCuda), out_gpu = torch::zeros({333}, in_gpu.options());
      torch::Tensor in_cpu = sample(dtype, 333), out_cpu = torch::zeros({333}, in_cpu.options());
      c.nccl->all_gather_v(in_gpu, out_gpu, {333});
      c.mpi->all_gather_v(in_cpu, out_cpu, {333});
      c.nccl->synchronize();
      EXPECT_TRUE(torch::equal(out_gpu.cpu(), out_cpu)) << tag << " all_gather_v";
    }
    {
      torch::Tensor t_gpu = sample(dtype, 99).to(kCuda), t_cpu = sample(dtype, 99);
      c.nccl->broadcast(t_gpu, 0);
      c.mpi->broadcast(t_cpu, 0);
      c.nccl->synchronize();
      EXPECT_TRUE(torch::equal(t_gpu.cpu(), t_cpu)) << tag << " broadcast";
    }
  }
  c.nccl->barrier();
  EXPECT_GT(c.nccl->bytes_sent(), 0) << "the NCCL backend counted no traffic";
}

LlamaConfig small_model() {
  return {.vocab_size = 384, .dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .ffn_dim = 160, .max_seq_len = 64};
}

// Four ZeRO-2 steps of two micro-batches each, clipped; returns the final parameters.
std::map<std::string, torch::Tensor> train_steps(Communicator& comm, const torch::Device& device) {
  Llama m(small_model());
  m->init_weights(21);
  m->to(device, torch::kFloat32);
  ZeroConfig zero;
  zero.stage = 2;
  zero.reduce_bucket_size = 5000;  // several buckets
  zero.allgather_bucket_size = 7000;
  AdamWConfig adamw;
  ZeroOptimizer opt(parameters_in_forward_order(*m), adamw_factory(adamw), zero, comm);
  for (int step = 0; step < 4; ++step) {
    opt.zero_grad();
    for (int micro = 0; micro < 2; ++micro) {
      torch::manual_seed(100 * step + micro);
      const torch::Tensor tokens = torch::randint(0, 384, {2, 48}, torch::kInt64).to(device);
      const torch::Tensor targets = torch::randint(0, 384, {2, 48}, torch::kInt64).to(device);
      opt.begin_micro_step(micro, 2);
      (m->loss(tokens, targets) / 2.0).backward();
    }
    opt.step(3e-3, /*grad_clip=*/0.5);
  }
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m->named_parameters()) out[p.key()] = p.value().detach().to(torch::kCPU, torch::kFloat64);
  return out;
}

// fp32 on both sides: the devices differ in reduction order only (cuBLAS vs MKL/oneDNN,
// no TF32 in LibTorch's C++ default), ~1e-6 relative per step; AdamW's normalised update
// can lift that for near-zero gradients, so 1e-4 of each tensor's largest value.
TEST(GpuNccl, ZeroStage2StepsEqualCpuMpi) {
  PAJAMA_NEED_GPU();
  Comms& c = comms();
  const auto gpu = train_steps(*c.nccl, kCuda);
  const auto cpu = train_steps(*c.mpi, torch::Device(torch::kCPU));
  ASSERT_EQ(gpu.size(), cpu.size());
  for (const auto& [name, t] : cpu) {
    const double scale = std::max(t.abs().max().item<double>(), 1e-12);
    EXPECT_LT((gpu.at(name) - t).abs().max().item<double>() / scale, 1e-4) << name;
  }
}

}  // namespace
}  // namespace pajama
