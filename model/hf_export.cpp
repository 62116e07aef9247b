// The export half of model/hf_checkpoint.h: config.json for a LlamaConfig, and the
// weights as model.safetensors or as shards named by model.safetensors.index.json.
#include "model/hf_checkpoint.h"

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "model/safetensors.h"
#include "model/vocab_resize.h"

namespace pajama {
namespace {

namespace fs = std::filesystem;

std::string torch_dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return "float32";
    case torch::kBFloat16: return "bfloat16";
    case torch::kFloat16: return "float16";
    default: PAJAMA_FAIL_AS(CheckpointError, "cannot export weights of dtype ", t, " to Hugging Face format");
  }
}

}  // namespace

std::string hf_config_json(const LlamaConfig& cfg, torch::ScalarType dtype) {
  nlohmann::ordered_json j;
  j["architectures"] = {"LlamaForCausalLM"};
  j["model_type"] = "llama";
  j["vocab_size"] = cfg.vocab_size;
  // Training checkpoints keep padded vocabulary rows; HF exports never do (save_hf_tensors).
  if (cfg.padded_vocab_size() != cfg.vocab_size) j["pajama_vocab_multiple_of"] = cfg.vocab_multiple_of;
  j["hidden_size"] = cfg.dim;
  j["intermediate_size"] = cfg.hidden_ffn_dim();
  j["num_hidden_layers"] = cfg.n_layers;
  j["num_attention_heads"] = cfg.n_heads;
  j["num_key_value_heads"] = cfg.kv_heads();
  j["head_dim"] = cfg.head_dim();
  j["hidden_act"] = "silu";
  j["max_position_embeddings"] = cfg.max_seq_len;
  j["initializer_range"] = cfg.init_std;
  j["rms_norm_eps"] = cfg.norm_eps;
  // transformers < 5 reads the top-level rope_theta, >= 5 rope_parameters: write both.
  j["rope_theta"] = cfg.rope_theta;
  j["rope_scaling"] = nullptr;
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", cfg.rope_theta}};
  j["attention_bias"] = false;
  j["attention_dropout"] = 0.0;
  j["mlp_bias"] = false;
  j["pretraining_tp"] = 1;
  j["tie_word_embeddings"] = cfg.tie_embeddings;
  j["bos_token_id"] = 1;
  j["eos_token_id"] = 2;
  j["use_cache"] = true;
  j["torch_dtype"] = torch_dtype_name(dtype);
  j["dtype"] = torch_dtype_name(dtype);
  return j.dump(2) + "\n";
}

void save_hf_tensors(const LlamaConfig& cfg, torch::ScalarType dtype,
                     const std::vector<std::pair<std::string, int64_t>>& tensors, const HfTensorFetch& fetch,
                     const fs::path& dir, int64_t max_shard_bytes, const HfProgress& progress) {
  PAJAMA_CHECK_AS(CheckpointError, max_shard_bytes > 0, "save_hf: max_shard_bytes must be positive");
  PAJAMA_CHECK_AS(CheckpointError, !tensors.empty(), "save_hf: no tensors to write");
  // Padded vocabulary rows stay behind: the export holds vocab_size rows, as transformers
  // and the tokenizer expect.
  LlamaConfig out_cfg = cfg;
  out_cfg.vocab_multiple_of = 1;
  const int64_t padding_rows = cfg.padded_vocab_size() - cfg.vocab_size;
  std::vector<std::pair<std::string, int64_t>> sizes = tensors;
  for (auto& [name, numel] : sizes) {
    if (is_vocab_parameter(name)) numel -= padding_rows * cfg.dim;
  }
  const HfTensorFetch fetch_rows = [&](const std::string& name) {
    torch::Tensor t = fetch(name);
    return is_vocab_parameter(name) && padding_rows > 0 ? t.narrow(0, 0, cfg.vocab_size).contiguous() : t;
  };
  try {
    fs::create_directories(dir);
    // Greedy sharding in state-dict order, like huggingface_hub's split_torch_state_dict_into_shards.
    const auto element = static_cast<int64_t>(c10::elementSize(dtype));
    std::vector<std::vector<std::string>> shards(1);
    int64_t shard_bytes = 0, total_bytes = 0;
    for (const auto& [name, numel] : sizes) {
      const int64_t bytes = numel * element;
      if (!shards.back().empty() && shard_bytes + bytes > max_shard_bytes) {
        shards.emplace_back();
        shard_bytes = 0;
      }
      shards.back().push_back(name);
      shard_bytes += bytes;
      total_bytes += bytes;
    }
    write_file_atomic(dir / "config.json", hf_config_json(out_cfg, dtype));
    const std::map<std::string, std::string> metadata = {{"format", "pt"}};
    const size_t n = shards.size();
    nlohmann::ordered_json map = nlohmann::ordered_json::object();
    int64_t done = 0;
    for (size_t i = 0; i < n; ++i) {
      char name[64];
      std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", i + 1, n);
      const std::string file = n == 1 ? std::string(kHfSingleFile) : std::string(name);
      NamedTensors shard;  // only this shard's tensors are in memory
      for (const std::string& t : shards[i]) {
        shard.emplace_back(t, fetch_rows(t));
        PAJAMA_CHECK_AS(CheckpointError, shard.back().second.scalar_type() == dtype, "save_hf: ", t, " is ",
                        shard.back().second.scalar_type(), ", expected ", dtype);
        done += static_cast<int64_t>(shard.back().second.nbytes());
        map[t] = file;
      }
      save_safetensors(dir / file, shard, metadata);
      if (progress) progress(done, total_bytes);
    }
    if (n == 1) {
      fs::remove(dir / kHfIndexFile);  // shards of an earlier save would otherwise look current
      return;
    }
    nlohmann::ordered_json index;
    index["metadata"] = {{"total_size", total_bytes}};
    index["weight_map"] = map;
    write_file_atomic(dir / kHfIndexFile, index.dump(2) + "\n");
    fs::remove(dir / kHfSingleFile);  // HF prefers model.safetensors over the index; drop a stale one
  } catch (...) {
    rethrow_with_context("saving Hugging Face checkpoint to ", dir.string());
  }
}

void save_hf(LlamaImpl& model, const fs::path& dir, int64_t max_shard_bytes) {
  std::vector<std::pair<std::string, int64_t>> names;
  std::map<std::string, torch::Tensor> params;
  torch::ScalarType dtype = torch::kFloat32;
  for (const auto& p : model.named_parameters()) {
    names.emplace_back(p.key(), p.value().numel());
    params[p.key()] = p.value().detach();
    dtype = p.value().scalar_type();
  }
  save_hf_tensors(model.config(), dtype, names, [&](const std::string& name) { return params.at(name); }, dir,
                  max_shard_bytes);
}

void save_hf(Llama& model, const fs::path& dir, int64_t max_shard_bytes) { save_hf(*model, dir, max_shard_bytes); }

}  // namespace pajama
