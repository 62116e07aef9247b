#include "trainer/signals.h"

#include <csignal>

namespace pajama {
namespace {
volatile std::sig_atomic_t g_signal = 0;
extern "C" void on_stop_signal(int sig) { g_signal = sig; }
}  // namespace

void install_stop_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
  // A second Ctrl-C at the terminal ends the process at once (SIGTERM and SIGUSR1 may
  // arrive twice from schedulers and launchers, and must not cut a checkpoint short).
  sa.sa_flags = SA_RESTART | SA_RESETHAND;
  sigaction(SIGINT, &sa, nullptr);
}

int stop_signal_received() { return g_signal; }

}  // namespace pajama
