// Loader throughput: tokens/s of TokenLoader::fill_micro_batch on one thread over a
// synthetic indexed dataset (uint16, documents of 50..2000 tokens), the way the
// trainer calls it. Run by hand, never inside tests:
//   loader_bench [--tokens 100000000] [--seq-len 2048] [--micro-batch 8] [--steps 6000]
//                [--min-doc 50] [--max-doc 2000] [--dir /tmp]
// Prints the epoch index build time, and tokens/s for a sequential pass (the first
// epoch of 100M tokens at seq_len 2048 is ~6100 steps of 8) and for random resume
// positions over two epochs. Small --max-doc gives many documents (index build cost).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "data/indexed_dataset.h"
#include "data/packed_dataset.h"
#include "data/token_loader.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  int64_t num_tokens = 100'000'000;
  int64_t seq_len = 2048;
  int64_t micro_batch = 8;
  int64_t steps = 6000;
  int min_doc = 50;
  int max_doc = 2000;
  std::string dir = std::filesystem::temp_directory_path().string();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--tokens") num_tokens = std::atoll(value);
    else if (flag == "--seq-len") seq_len = std::atoll(value);
    else if (flag == "--micro-batch") micro_batch = std::atoll(value);
    else if (flag == "--steps") steps = std::atoll(value);
    else if (flag == "--min-doc") min_doc = std::atoi(value);
    else if (flag == "--max-doc") max_doc = std::atoi(value);
    else if (flag == "--dir") dir = value;
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  const std::string prefix = dir + "/pajama_loader_bench";
  auto t0 = std::chrono::steady_clock::now();
  {
    pajama::IndexedDatasetBuilder builder(prefix, pajama::TokenDType::kUInt16);
    std::mt19937_64 rng(1);
    std::uniform_int_distribution<int> len(min_doc, max_doc);
    std::vector<int32_t> doc;
    while (builder.num_tokens() < num_tokens) {
      doc.resize(static_cast<size_t>(len(rng)));
      for (auto& t : doc) t = static_cast<int32_t>(rng() % 32000);
      builder.add_document(doc);
    }
    builder.finalize();
  }
  std::printf("wrote %s.{bin,idx}: %.1f s\n", prefix.c_str(), seconds_since(t0));

  t0 = std::chrono::steady_clock::now();
  auto dataset = std::make_shared<const pajama::IndexedDataset>(prefix);
  const double open_s = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  auto packed = std::make_shared<const pajama::PackedDataset>(dataset, 0, dataset->num_documents(), seq_len, 1234,
                                                              0, 32000);
  std::vector<int32_t> out(static_cast<size_t>(micro_batch * (seq_len + 1)));
  packed->get(0, out.data());  // builds epoch 0's index
  const double index_s = seconds_since(t0);
  std::printf("dataset: %lld documents, %lld tokens, %lld samples/epoch; open %.3f s, epoch index %.3f s\n",
              static_cast<long long>(dataset->num_documents()), static_cast<long long>(dataset->num_tokens()),
              static_cast<long long>(packed->samples_per_epoch()), open_s, index_s);

  pajama::TokenLoader loader(packed, micro_batch, micro_batch, 0, 1);
  auto run = [&](const char* label, bool random_resume) {
    std::mt19937_64 rng(7);
    const auto t = std::chrono::steady_clock::now();
    int64_t tokens = 0;
    uint64_t checksum = 0;
    for (int64_t s = 0; s < steps; ++s) {
      if (random_resume) loader.set_consumed_samples(static_cast<int64_t>(rng() % (2 * packed->samples_per_epoch())));
      loader.fill_micro_batch(0, out.data());
      loader.advance();
      checksum += static_cast<uint32_t>(out[static_cast<size_t>(s) % out.size()]);
      tokens += micro_batch * (seq_len + 1);
    }
    const double sec = seconds_since(t);
    std::printf("%-28s %lld steps, %.3f s, %.2f M tokens/s (checksum %llu)\n", label, static_cast<long long>(steps),
                sec, static_cast<double>(tokens) / sec / 1e6, static_cast<unsigned long long>(checksum));
  };
  run("sequential, epoch 0", false);
  run("random positions, 2 epochs", true);
  std::filesystem::remove(prefix + ".bin");
  std::filesystem::remove(prefix + ".idx");
  return 0;
}
