// Fuzzing model/'s readers: safetensors (SafetensorsReader) and Hugging Face config.json
// (read_hf_config). See fuzz_util.h for the contract.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fuzz_util.h"
#include "model/hf_checkpoint.h"
#include "model/llama_config.h"
#include "model/safetensors.h"

namespace pajama::testing::fuzz {
namespace {

using nlohmann::json;

uint64_t le64(const std::string& b) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[static_cast<size_t>(i)]);
  return v;
}

// An accepted file: every tensor lies inside the data buffer, sizes match shapes, and
// the bytes read back are the bytes at those offsets.
void check_safetensors(const SafetensorsReader& r, const std::string& bytes) {
  FUZZ_EXPECT(bytes.size() >= 8, "accepted a file shorter than 8 bytes");
  const uint64_t header_len = le64(bytes);
  FUZZ_EXPECT(header_len <= bytes.size() - 8, "header length ", header_len, " exceeds the file");
  const uint64_t data_size = bytes.size() - 8 - header_len;
  uint64_t covered = 0;
  for (const auto& name : r.names()) {
    const SafetensorsEntry& e = r.entry(name);
    FUZZ_EXPECT(e.begin <= e.end && e.end <= data_size, name, ": offsets [", e.begin, ", ", e.end,
                ") outside the ", data_size, "-byte buffer");
    int64_t numel = 1;
    for (const int64_t d : e.shape) {
      FUZZ_EXPECT(d >= 0, name, ": negative dimension ", d);
      numel *= d;
    }
    const torch::Tensor t = r.tensor(name);
    FUZZ_EXPECT(t.numel() == numel && static_cast<uint64_t>(t.nbytes()) == e.end - e.begin, name, ": size mismatch");
    if (t.nbytes() > 0) {
      FUZZ_EXPECT(std::memcmp(t.data_ptr(), bytes.data() + 8 + header_len + e.begin, t.nbytes()) == 0,
                  name, ": bytes differ from the file");
    }
    covered += e.end - e.begin;
  }
  FUZZ_EXPECT(covered == data_size, "tensors cover ", covered, " of ", data_size, " bytes");
}

TEST(FuzzReaders, Safetensors) {
  Tally t{"SafetensorsReader", fuzz_seed(0x5afe7)};
  const TempDir tmp("fuzz-st");
  const fs::path dir = tmp.path();
  torch::manual_seed(0);
  const NamedTensors tensors = {
      {"model.embed_tokens.weight", torch::randn({6, 4})},
      {"model.norm.weight", torch::randn({4}).to(torch::kBFloat16)},
      {"ids", torch::arange(6, torch::kInt64).reshape({2, 3})},
      {"scalar", torch::tensor(3.5f)},
      {"empty", torch::zeros({0, 3})},
  };
  const fs::path good = dir / "good.safetensors";
  save_safetensors(good, tensors, {{"format", "pt"}, {"note", "fuzz"}});
  const std::string base = read_file(good);
  {
    SafetensorsReader r(good);
    check_safetensors(r, base);
  }
  const uint64_t header_len = le64(base);
  const std::string header = base.substr(8, header_len);
  const std::string data = base.substr(8 + header_len);

  std::mt19937_64 rng(t.seed);
  const fs::path path = dir / "mut.safetensors";
  for (int m = 0; m < 400; ++m) {
    std::string desc;
    std::string bytes;
    if (rng() % 2 == 0) {
      // A JSON number of the header (data_offsets, shape) changed; the length field
      // follows the new header, so the change itself is what is tested.
      std::string h = header;
      mutate_number(h, rng, desc);
      std::string len(8, '\0');
      for (int i = 0; i < 8; ++i) len[static_cast<size_t>(i)] = static_cast<char>(static_cast<uint64_t>(h.size()) >> (8 * i));
      bytes = len + h + data;
      desc = "header " + desc;
    } else {
      bytes = mutate_bytes(base, rng, {{0, 8, "header length"}}, desc);
    }
    write_file(path, bytes);
    t.record(m, desc, run_isolated([&] {
               SafetensorsReader r(path);
               check_safetensors(r, bytes);
             }, "mut.safetensors"));
  }
  fs::remove_all(dir);
}

TEST(FuzzReaders, HfConfigJson) {
  Tally t{"read_hf_config (config.json)", fuzz_seed(0xcf61)};
  const TempDir tmp("fuzz-hfcfg");
  const fs::path dir = tmp.path();
  LlamaConfig cfg{.vocab_size = 512, .dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .ffn_dim = 128,
                  .max_seq_len = 128};
  const std::string base = hf_config_json(cfg, torch::kFloat32);
  write_file(dir / "config.json", base);
  const LlamaConfig back = read_hf_config(dir);
  ASSERT_EQ(back.dim, 64);
  ASSERT_EQ(back.vocab_size, 512);

  std::mt19937_64 rng(t.seed);
  for (int m = 0; m < 300; ++m) {
    std::string desc;
    std::string text = base;
    if (rng() % 3 != 0) {
      mutate_number(text, rng, desc);
    } else {
      text = mutate_bytes(base, rng, {}, desc);
    }
    write_file(dir / "config.json", text);
    t.record(m, desc, run_isolated([&] {
               const LlamaConfig c = read_hf_config(dir);
               // What was accepted must be what the file says, not a wrapped or truncated value.
               const json j = json::parse(text);
               auto same = [&](const char* key, int64_t got) {
                 if (!j.contains(key) || j[key].is_null()) return;
                 FUZZ_EXPECT(j[key].is_number_integer(), key, " = ", j[key].dump(), " accepted as ", got);
                 FUZZ_EXPECT(j[key].dump() == std::to_string(got), key, " = ", j[key].dump(), " read as ", got);
               };
               same("vocab_size", c.vocab_size);
               same("hidden_size", c.dim);
               same("intermediate_size", c.ffn_dim);
               same("num_hidden_layers", c.n_layers);
               same("num_attention_heads", c.n_heads);
               same("max_position_embeddings", c.max_seq_len);
               FUZZ_EXPECT(c.vocab_size <= std::numeric_limits<int32_t>::max(), "vocab_size ", c.vocab_size,
                           " does not fit int32 token ids");
             }, "config.json"));
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace pajama::testing::fuzz
