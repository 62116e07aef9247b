// Internal to parallel/: pieces shared by the communicator backends (MPI runtime,
// byte accounting, argument checks). Not part of the public API.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
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

std::unique_ptr<Communicator> make_mpi_communicator(const World& world, const CommConfig& config);
#ifdef PAJAMA_WITH_CUDA
std::unique_ptr<Communicator> make_nccl_communicator(const World& world, const torch::Device& device,
                                                     const CommConfig& config);
#endif

}  // namespace pajama::detail
