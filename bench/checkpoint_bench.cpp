// Checkpoint I/O on this machine's filesystem: hash rates (XXH3-128, OpenSSL SHA-256),
// raw write+fsync throughput against the checkpointer's safetensors writer (hashing as
// it writes), and the time to verify the file by its chunk digests.
//   build/bench/checkpoint_bench [DIR] [MB] [ROUNDS]     (default: /tmp, 2048 MB, 3 rounds)
// Page cache: the files are written then read back at once, so verification reads
// from memory; it measures the hash, as a resume right after a save would.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "core/hash.h"
#include "model/safetensors.h"
#include "trainer/checkpoint_layout.h"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void raw_write(const std::filesystem::path& path, const char* data, size_t bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + path.string());
  for (size_t off = 0; off < bytes;) {
    const ssize_t n = ::write(fd, data + off, std::min<size_t>(bytes - off, size_t{1} << 30));
    if (n <= 0) throw std::runtime_error("write failed");
    off += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : "/tmp";
  const int64_t mb = argc > 2 ? std::stoll(argv[2]) : 2048;
  const int64_t bytes = mb * 1000000;
  torch::Tensor t = torch::rand({bytes / 4});
  const char* data = static_cast<const char*>(t.data_ptr());

  for (auto a : {pajama::HashAlgorithm::kXxh3_128, pajama::HashAlgorithm::kSha256}) {
    pajama::Hasher h(a);
    const auto s = Clock::now();
    h.update(data, static_cast<size_t>(bytes));
    (void)h.hex_digest();
    const double sec = since(s);
    std::printf("hash %-9s  %7.2f GB/s (one core, %lld MB in memory)\n", pajama::hash_algorithm_name(a).c_str(),
                static_cast<double>(bytes) / sec / 1e9, static_cast<long long>(mb));
  }

  // Write throughput: the raw baseline (write + fsync, nothing else) and the
  // checkpointer's writer (safetensors + XXH3-128 while writing + fsync), alternated over
  // `rounds` rounds, each after a sync() so that neither pays for the other's writeback.
  const auto raw_path = dir / "checkpoint_bench.raw";
  const auto st_path = dir / "checkpoint_bench.safetensors";
  const int rounds = argc > 3 ? std::stoi(argv[3]) : 3;
  std::vector<double> raw_s, ours_s;
  pajama::FileEntry entry;
  for (int round = 0; round < rounds; ++round) {
    ::sync();
    auto s = Clock::now();
    raw_write(raw_path, data, static_cast<size_t>(bytes));
    raw_s.push_back(since(s));
    std::filesystem::remove(raw_path);
    ::sync();
    pajama::ChunkedHasher hasher;
    s = Clock::now();
    pajama::save_safetensors(st_path, {{"w", t}}, {{"format", "pt"}},
                             [&](const void* d, size_t n) { hasher.update(d, n); });
    entry = hasher.finish();
    ours_s.push_back(since(s));
    std::printf("round %d: raw write+fsync %.2f GB/s, safetensors + xxh3 %.2f GB/s\n", round + 1,
                static_cast<double>(bytes) / raw_s.back() / 1e9, static_cast<double>(bytes) / ours_s.back() / 1e9);
    if (round + 1 < rounds) std::filesystem::remove(st_path);
  }
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double raw = median(raw_s), ours = median(ours_s);
  std::printf("raw write+fsync        %7.2f GB/s (median of %d, %.2f s)\n", static_cast<double>(bytes) / raw / 1e9,
              rounds, raw);
  std::printf("safetensors + xxh3     %7.2f GB/s (median of %d, %.2f s) = %.0f%% of raw\n",
              static_cast<double>(bytes) / ours / 1e9, rounds, ours, 100.0 * raw / ours);

  pajama::Manifest m;
  m.format_version = 2;
  m.files[st_path.filename().string()] = entry;
  auto s = Clock::now();
  for (const auto& task : pajama::verify_tasks(m)) {
    const std::string problem = pajama::verify_task(dir, m, task);
    if (!problem.empty()) std::printf("verify failed: %s\n", problem.c_str());
  }
  const double verify = since(s);
  std::printf("verify (xxh3 chunks)   %7.2f GB/s (%.2f s, one process)\n", static_cast<double>(bytes) / verify / 1e9,
              verify);
  s = Clock::now();
  (void)pajama::sha256_file_hex(st_path);
  const double sha = since(s);
  std::printf("verify (sha256, fmt 1) %7.2f GB/s (%.2f s, one process)\n", static_cast<double>(bytes) / sha / 1e9, sha);
  std::filesystem::remove(st_path);
  return 0;
}
