// Checked MPI calls for the MPI and NCCL backends (private to parallel/). MPI_COMM_WORLD
// returns errors instead of aborting (ensure_mpi_initialized sets MPI_ERRORS_RETURN), so
// every call is checked: a failure marks the communicator failed (no MPI_Finalize at
// exit) and throws CommError naming the rank, the call and MPI's message. Calls in
// destructors and on the abort path stay unchecked: there is nothing left to report to.
#pragma once

#include <mpi.h>

#include <string>

#include "core/error.h"
#include "parallel/comm_detail.h"

namespace pajama::detail {

// MPI's text for an error code.
std::string mpi_error_string(int code);

}  // namespace pajama::detail

#define MPI_CHECK(rank, call)                                                                         \
  do {                                                                                                \
    const int mpi_rc_ = (call);                                                                       \
    if (mpi_rc_ != MPI_SUCCESS) [[unlikely]] {                                                        \
      ::pajama::detail::mark_comm_failed();                                                           \
      PAJAMA_FAIL_AS(::pajama::CommError, "[rank ", rank, "] ", #call, " failed: ",                   \
                     ::pajama::detail::mpi_error_string(mpi_rc_));                                    \
    }                                                                                                 \
  } while (0)
