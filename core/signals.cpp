#include "core/signals.h"

namespace pajama {
namespace {

std::atomic<int> g_signal{0};
std::atomic<bool> g_stop{false};
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<bool>::is_always_lock_free,
              "the handler may only touch lock-free atomics");

extern "C" void on_stop_signal(int sig) {
  g_signal.store(sig);
  g_stop.store(true);
}

void install(int sig, int flags, SavedSignalHandlers& saved) {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = flags;
  struct sigaction old {};
  sigaction(sig, &sa, &old);
  saved.emplace_back(sig, old);
}

}  // namespace

SavedSignalHandlers install_stop_signal_handlers(std::initializer_list<int> repeatable,
                                                 std::initializer_list<int> once) {
  SavedSignalHandlers saved;
  for (int sig : repeatable) install(sig, SA_RESTART, saved);
  for (int sig : once) install(sig, SA_RESTART | SA_RESETHAND, saved);
  return saved;
}

void restore_signal_handlers(const SavedSignalHandlers& saved) {
  for (const auto& [sig, old] : saved) sigaction(sig, &old, nullptr);
}

int stop_signal_received() { return g_signal.load(); }

const std::atomic<bool>& stop_requested() { return g_stop; }

}  // namespace pajama
