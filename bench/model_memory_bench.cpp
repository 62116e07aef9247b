// Activation memory of one training step, measured against model/memory_estimate.h: for
// each shape and checkpointing mode a fresh child process builds the model (fp32, CPU, one
// thread), runs one warm-up forward + backward of Llama::loss (so weights and .grad exist),
// then measures the next step's peak RSS above the RSS before it. Run by hand:
//   model_memory_bench [--preset 125m] [--shapes 1x256,4x256,1x1024] [--modes none,full,selective]
//                      [--chunk 1024] [--time-steps 0]
// --time-steps N adds N timed steps per case, in a separate child with glibc's default
// malloc settings (the measuring child maps every large buffer freshly, see below).
//
// Measurement: the child sets M_MMAP_THRESHOLD to 64 KiB, which also turns off glibc's
// dynamic threshold, so every tensor buffer of the step is its own mapping and is returned
// to the kernel when freed; RSS then follows the live tensors instead of what malloc keeps.
// The high-water mark is reset by writing 5 to /proc/self/clear_refs just before the step.
#include <malloc.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "model/llama.h"
#include "model/memory_estimate.h"
#include "model/training_options.h"

extern char** environ;

namespace {

using pajama::ActivationCheckpointing;

// VmRSS or VmHWM from /proc/self/status, in bytes.
int64_t proc_status_bytes(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::atoll(line.c_str() + key.size() + 1) * 1024;
  }
  return -1;
}

bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

struct Case {
  std::string preset = "125m";
  int64_t batch = 4, seq = 256, chunk = 1024;
  ActivationCheckpointing mode = ActivationCheckpointing::kNone;
};

// The child: prints "measured <growth bytes>" or "seconds <s per step>".
int run_child(const Case& c, int time_steps) {
  at::set_num_threads(1);
  if (time_steps == 0) mallopt(M_MMAP_THRESHOLD, 64 * 1024);
  const pajama::LlamaConfig cfg = pajama::llama_preset(c.preset);
  pajama::Llama model(cfg);
  model->init_weights(1);
  pajama::TrainingOptions opts;
  opts.checkpointing = c.mode;
  opts.loss_chunk_tokens = c.chunk;
  model->set_training_options(opts);
  torch::manual_seed(0);
  const torch::Tensor tokens = torch::randint(0, cfg.vocab_size, {c.batch, c.seq}, torch::kInt64);
  const torch::Tensor targets = torch::randint(0, cfg.vocab_size, {c.batch, c.seq}, torch::kInt64);
  auto step = [&] {
    {
      torch::NoGradGuard ng;
      for (auto& p : model->parameters()) {
        if (p.grad().defined()) p.mutable_grad().zero_();
      }
    }
    model->loss(tokens, targets).backward();
  };
  step();  // warm-up: .grad buffers, RoPE tables, kernels' first use
  if (time_steps > 0) {
    double total = 0;
    for (int i = 0; i < time_steps; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      step();
      total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    std::printf("seconds %.4f\n", total / time_steps);
    return 0;
  }
  {
    torch::NoGradGuard ng;
    for (auto& p : model->parameters()) p.mutable_grad().zero_();
  }
  const int64_t before = proc_status_bytes("VmRSS");
  if (!reset_peak_rss()) {
    std::fprintf(stderr, "cannot write /proc/self/clear_refs\n");
    return 1;
  }
  model->loss(tokens, targets).backward();
  const int64_t peak = proc_status_bytes("VmHWM");
  std::printf("measured %lld\n", static_cast<long long>(peak - before));
  return 0;
}

// Runs this executable again with `args` and returns the number after `key` in its output.
double spawn_child(const std::vector<std::string>& args, const std::string& key) {
  std::vector<char*> argv;
  std::string self = "/proc/self/exe";
  argv.push_back(self.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  int fds[2];
  if (pipe(fds) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) return -1;
  std::string out;
  char buf[256];
  ssize_t n = 0;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  const auto pos = out.find(key + " ");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || pos == std::string::npos) return -1;
  return std::atof(out.c_str() + pos + key.size() + 1);
}

}  // namespace

int main(int argc, char** argv) {
  Case c;
  std::string shapes = "1x256,4x256,1x1024", modes = "none,full,selective";
  int time_steps = 0;
  bool child = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--preset") c.preset = value;
    else if (flag == "--shapes") shapes = value;
    else if (flag == "--modes") modes = value;
    else if (flag == "--chunk") c.chunk = std::atoll(value.c_str());
    else if (flag == "--time-steps") time_steps = std::atoi(value.c_str());
    else if (flag == "--child-batch") {  // --child-*: how the driver starts one measurement
      c.batch = std::atoll(value.c_str());
      child = true;
    } else if (flag == "--child-seq") c.seq = std::atoll(value.c_str());
    else if (flag == "--child-mode") c.mode = pajama::parse_activation_checkpointing(value);
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (child) return run_child(c, time_steps);

  const pajama::LlamaConfig cfg = pajama::llama_preset(c.preset);
  std::printf("%s, fp32, CPU, 1 thread, loss chunk %lld tokens; MB = 1e6 bytes, growth above weights + grads\n",
              c.preset.c_str(), static_cast<long long>(c.chunk));
  std::printf("%-6s %-10s %9s %9s %9s %10s %10s %7s%s\n", "shape", "mode", "saved", "loss", "bwd", "estimate",
              "measured", "est/meas", time_steps > 0 ? "   s/step" : "");
  for (const auto& shape : split(shapes, ',')) {
    const auto bt = split(shape, 'x');
    if (bt.size() != 2) {
      std::fprintf(stderr, "bad shape %s (want BxT)\n", shape.c_str());
      return 2;
    }
    for (const auto& mode : split(modes, ',')) {
      pajama::TrainingOptions opts;
      opts.checkpointing = pajama::parse_activation_checkpointing(mode);
      opts.loss_chunk_tokens = c.chunk;
      const auto est = pajama::estimate_activation_memory(cfg, opts, std::atoll(bt[0].c_str()),
                                                          std::atoll(bt[1].c_str()), 4);
      const std::vector<std::string> args = {"--preset", c.preset, "--chunk", std::to_string(c.chunk),
                                             "--child-batch", bt[0], "--child-seq", bt[1], "--child-mode", mode};
      const double measured = spawn_child(args, "measured");
      std::string timing;
      if (time_steps > 0) {
        auto timed = args;
        timed.push_back("--time-steps");
        timed.push_back(std::to_string(time_steps));
        char buf[32];
        std::snprintf(buf, sizeof(buf), " %8.2f", spawn_child(timed, "seconds"));
        timing = buf;
      }
      std::printf("%-6s %-10s %9.1f %9.1f %9.1f %10.1f %10.1f %7.3f%s\n", shape.c_str(), mode.c_str(),
                  static_cast<double>(est.saved_bytes) / 1e6, static_cast<double>(est.loss_bytes) / 1e6,
                  static_cast<double>(est.backward_peak_bytes) / 1e6, static_cast<double>(est.peak_bytes()) / 1e6,
                  measured / 1e6, static_cast<double>(est.peak_bytes()) / measured, timing.c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}
