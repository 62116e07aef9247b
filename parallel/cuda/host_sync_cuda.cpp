// CUDA side of parallel/host_sync.h: c10's sync debug mode set to warn, and a warning
// handler that counts its "synchronizing CUDA operation" warnings and passes every other
// warning on to the handler it replaced. c10's warning handler is per thread: the one
// that constructs the counter is the one counted (plus autograd's replayed warnings).
#include <c10/cuda/CUDAFunctions.h>
#include <c10/util/Exception.h>

#include <atomic>
#include <string>

#include "core/error.h"
#include "parallel/host_sync.h"

namespace pajama {

namespace {

std::atomic<bool> counter_alive{false};

class CudaHostSyncCounter final : public HostSyncCounter::Impl, public c10::WarningHandler {
 public:
  CudaHostSyncCounter() {
    PAJAMA_CHECK(!counter_alive.exchange(true), "HostSyncCounter: only one may be alive at a time");
    previous_ = c10::WarningUtils::get_warning_handler();
    c10::WarningUtils::set_warning_handler(this);
    previous_mode_ = c10::cuda::warning_state().get_sync_debug_mode();
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_WARN);
    // Every occurrence, not only the first at each call site.
    previous_warn_always_ = c10::WarningUtils::get_warnAlways();
    c10::WarningUtils::set_warnAlways(true);
  }

  ~CudaHostSyncCounter() override {
    c10::WarningUtils::set_warnAlways(previous_warn_always_);
    c10::cuda::warning_state().set_sync_debug_mode(previous_mode_);
    c10::WarningUtils::set_warning_handler(previous_);
    counter_alive.store(false);
  }

  int64_t take() override { return count_.exchange(0); }

  void process(const c10::Warning& warning) override {
    if (warning.msg().find("synchronizing CUDA operation") != std::string::npos) {
      count_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (previous_ != nullptr) previous_->process(warning);
  }

 private:
  std::atomic<int64_t> count_{0};
  c10::WarningHandler* previous_ = nullptr;
  c10::cuda::SyncDebugMode previous_mode_ = c10::cuda::SyncDebugMode::L_DISABLED;
  bool previous_warn_always_ = false;
};

}  // namespace

std::unique_ptr<HostSyncCounter::Impl> make_host_sync_counter() { return std::make_unique<CudaHostSyncCounter>(); }

}  // namespace pajama
