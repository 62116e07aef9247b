// The import half of model/hf_checkpoint.h: config.json onto LlamaConfig, and the weights
// (one file or shards, Baichuan-7B's fused W_pack split) into a model's parameters.
#include "model/hf_checkpoint.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "model/safetensors.h"
#include "model/vocab_resize.h"

namespace pajama {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;


// Name -> shard file for a checkpoint directory.
std::map<std::string, std::string> weight_map(const fs::path& dir) {
  std::map<std::string, std::string> out;
  if (fs::exists(dir / kHfSingleFile)) {
    SafetensorsReader r(dir / kHfSingleFile);
    for (const auto& n : r.names()) out[n] = kHfSingleFile;
    return out;
  }
  const fs::path index = dir / kHfIndexFile;
  PAJAMA_CHECK_AS(CheckpointError, fs::exists(index), dir.string(), " holds neither ", kHfSingleFile, " nor ", kHfIndexFile,
                  "; expected a Hugging Face safetensors checkpoint (save_pretrained(safe_serialization=True))");
  json j;
  try {
    j = json::parse(read_file(index));
    for (const auto& [name, file] : j.at("weight_map").items()) out[name] = file.get<std::string>();
  } catch (const json::exception& e) {
    PAJAMA_FAIL_AS(CheckpointError, index.string(), ": not a valid index (", e.what(), ")");
  }
  return out;
}

}  // namespace

namespace {

// A config.json object and its file's name for errors.
class HfConfigJson {
 public:
  HfConfigJson(const json& j, const std::string& file) : j_(j), file_(file) {}

  const std::string& file() const { return file_; }
  bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }
  // The value of `key`, or `fallback` when absent or null. Integers are checked for type
  // and range: nlohmann converts 1.5 or 2^64 - 1 to an int64 silently (truncated,
  // wrapped), and sizes and counts beyond int32 are corrupt (token ids are int32).
  template <typename T>
  T get_or(const char* key, T fallback) const {
    if (!has(key)) return fallback;
    if constexpr (std::is_same_v<T, int64_t>) {
      const json& v = j_[key];
      PAJAMA_CHECK_AS(ConfigError, v.is_number_integer(), file_, ": ", key, " ", v.dump(), " is not an integer");
      PAJAMA_CHECK_AS(ConfigError,
                      v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t{INT32_MAX}
                                             : v.get<int64_t>() >= INT32_MIN && v.get<int64_t>() <= INT32_MAX,
                      file_, ": ", key, " ", v.dump(), " is out of range");
    }
    return j_[key].get<T>();
  }

  // Refuses what is not a LLaMA. Baichuan-7B is a LLaMA with q/k/v fused into one W_pack
  // matrix (split on load); its successors spelled "BaichuanForCausalLM" (Baichuan-13B:
  // ALiBi; Baichuan2: NormHead) are different models and are refused.
  void check_llama_family() const {
    const std::string model_type = j_.value("model_type", "");
    PAJAMA_CHECK_AS(ConfigError, model_type == "llama" || model_type == "baichuan", file_, ": model_type '", model_type,
                    "' is not supported; only 'llama' (LlamaForCausalLM) and Baichuan-7B ('baichuan', "
                    "BaiChuanForCausalLM) checkpoints can be loaded");
    const std::string arch = model_type == "llama" ? "LlamaForCausalLM" : "BaiChuanForCausalLM";
    if (has("architectures")) {
      bool ok = false;
      for (const auto& a : j_["architectures"]) ok = ok || a.get<std::string>() == arch;
      PAJAMA_CHECK_AS(ConfigError, ok, file_, ": architectures ", j_["architectures"].dump(), " do not include ", arch,
                      model_type == "baichuan" ? " (Baichuan-13B's ALiBi and Baichuan2's NormHead are not LLaMA)" : "");
    }
    const std::string act = get_or("hidden_act", std::string("silu"));
    PAJAMA_CHECK_AS(ConfigError, act == "silu", file_, ": hidden_act '", act, "' is not supported (LLaMA uses silu)");
    PAJAMA_CHECK_AS(ConfigError, !get_or("attention_bias", false) && !get_or("mlp_bias", false), file_,
                    ": attention_bias/mlp_bias are not supported (LLaMA has no biases)");
    PAJAMA_CHECK_AS(ConfigError, !has("rope_scaling"), file_, ": rope_scaling ",
                    j_.value("rope_scaling", json()).dump(), " is not supported");
  }

  // rope_theta from rope_parameters (transformers 5) when present, else `fallback`.
  double rope_theta(double fallback) const {
    if (!j_.contains("rope_parameters") || !j_["rope_parameters"].is_object()) return fallback;
    const json& rp = j_["rope_parameters"];
    const std::string type =
        rp.contains("rope_type") && !rp["rope_type"].is_null() ? rp["rope_type"].get<std::string>() : "default";
    PAJAMA_CHECK_AS(ConfigError, type == "default", file_, ": rope_parameters.rope_type '", type,
                    "' is not supported (only 'default')");
    return rp.contains("rope_theta") && !rp["rope_theta"].is_null() ? rp["rope_theta"].get<double>() : fallback;
  }

 private:
  const json& j_;
  const std::string& file_;
};

LlamaConfig llama_config_from(const HfConfigJson& j) {
  LlamaConfig c;
  c.vocab_size = j.get_or("vocab_size", int64_t{32000});
  c.vocab_multiple_of = j.get_or("pajama_vocab_multiple_of", int64_t{1});
  c.dim = j.get_or("hidden_size", int64_t{4096});
  c.ffn_dim = j.get_or("intermediate_size", int64_t{11008});
  c.n_layers = j.get_or("num_hidden_layers", int64_t{32});
  c.n_heads = j.get_or("num_attention_heads", int64_t{32});
  c.n_kv_heads = j.get_or("num_key_value_heads", c.n_heads);
  c.norm_eps = j.get_or("rms_norm_eps", 1e-6);
  c.max_seq_len = j.get_or("max_position_embeddings", int64_t{2048});
  c.tie_embeddings = j.get_or("tie_word_embeddings", false);
  c.init_std = j.get_or("initializer_range", 0.02);
  c.rope_theta = j.rope_theta(j.get_or("rope_theta", 10000.0));
  if (j.has("head_dim") && c.n_heads > 0) {
    const auto head_dim = j.get_or("head_dim", int64_t{0});
    PAJAMA_CHECK_AS(ConfigError, head_dim * c.n_heads == c.dim, j.file(), ": head_dim ", head_dim,
                    " != hidden_size / num_attention_heads = ", c.dim, " / ", c.n_heads,
                    "; decoupled head dimensions are not supported");
  }
  return c;
}

}  // namespace

LlamaConfig read_hf_config(const fs::path& dir) {
  const fs::path path = dir / "config.json";
  PAJAMA_CHECK_AS(ConfigError, fs::exists(path), "no config.json in ", dir.string());
  const std::string file = path.string();
  json j;
  try {
    j = json::parse(read_file(path));
  } catch (const json::exception& e) {
    PAJAMA_FAIL_AS(ConfigError, file, ": invalid JSON: ", e.what());
  }
  PAJAMA_CHECK_AS(ConfigError, j.is_object(), file, ": not a JSON object");
  try {
    const HfConfigJson config(j, file);
    config.check_llama_family();
    LlamaConfig c = llama_config_from(config);
    c.validate();
    return c;
  } catch (const json::exception& e) {
    PAJAMA_FAIL_AS(ConfigError, file, ": ", e.what());
  } catch (...) {
    rethrow_with_context("reading ", file);
  }
}

namespace {

// Where a model parameter's values live in the files: a whole tensor, or (Baichuan's
// W_pack) rows [row_begin, row_end) of a fused q/k/v tensor.
struct TensorSource {
  std::string file;
  std::string tensor;
  int64_t row_begin = -1;
  int64_t row_end = -1;
};

std::map<std::string, TensorSource> tensor_sources(const std::map<std::string, std::string>& files,
                                                   const LlamaConfig& cfg) {
  std::map<std::string, TensorSource> out;
  const std::string pack = ".self_attn.W_pack.weight";
  const int64_t q_rows = cfg.n_heads * cfg.head_dim();
  const int64_t kv_rows = cfg.kv_heads() * cfg.head_dim();
  for (const auto& [name, file] : files) {
    if (name.ends_with(pack)) {
      const std::string prefix = name.substr(0, name.size() - std::string("W_pack.weight").size());
      out[prefix + "q_proj.weight"] = {file, name, 0, q_rows};
      out[prefix + "k_proj.weight"] = {file, name, q_rows, q_rows + kv_rows};
      out[prefix + "v_proj.weight"] = {file, name, q_rows + kv_rows, q_rows + 2 * kv_rows};
    } else {
      out[name] = {file, name};
    }
  }
  return out;
}

// The safetensors files of a checkpoint directory, each opened on first use.
class ShardReaders {
 public:
  explicit ShardReaders(const fs::path& dir) : dir_(dir) {}
  SafetensorsReader& operator()(const std::string& file) {
    auto& r = readers_[file];
    if (!r) r = std::make_unique<SafetensorsReader>(dir_ / file);
    return *r;
  }

 private:
  fs::path dir_;
  std::map<std::string, std::unique_ptr<SafetensorsReader>> readers_;
};

// The part of a parameter the files fill: all of it, or (partial) the first `rows`
// vocabulary rows. When partial, the files' vocabulary tensors may have more rows
// (padding): those past `rows` are not read.
struct VocabRows {
  bool partial = false;
  int64_t rows = 0;
  torch::Tensor destination(const std::string& name, const torch::Tensor& t) const {
    return is_vocab_parameter(name) ? t.narrow(0, 0, rows) : t;
  }
  std::vector<int64_t> file_shape(const std::string& name, std::vector<int64_t> shape) const {
    if (partial && is_vocab_parameter(name) && shape.size() == 2 && shape[0] >= rows) shape[0] = rows;
    return shape;
  }
};

// Everything must line up before anything is copied: one CheckpointError listing every
// parameter the files lack, every file tensor the model lacks, and every shape mismatch.
void check_sources_match(const LlamaImpl& model, const torch::OrderedDict<std::string, torch::Tensor>& params,
                         const std::map<std::string, TensorSource>& sources, ShardReaders& reader, const VocabRows& vocab,
                         const fs::path& dir) {
  const LlamaConfig& cfg = model.config();
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [name, src] : sources) {
    if (params.contains(name)) continue;
    if (name.ends_with(".rotary_emb.inv_freq")) continue;  // a buffer older exports contain
    if (name == "lm_head.weight" && cfg.tie_embeddings) {
      log_warn(dir.string(), ": ignoring lm_head.weight because the config ties it to model.embed_tokens.weight");
      continue;
    }
    unexpected.push_back(name);
  }
  for (const auto& p : params) {
    auto it = sources.find(p.key());
    if (it == sources.end()) {
      missing.push_back(p.key());
      continue;
    }
    const TensorSource& src = it->second;
    std::vector<int64_t> shape = reader(src.file).entry(src.tensor).shape;
    if (src.row_begin >= 0) {
      const int64_t fused_rows = cfg.dim + 2 * cfg.kv_heads() * cfg.head_dim();
      if (shape.size() != 2 || shape[0] != fused_rows) {
        mismatched.push_back(str(src.tensor, " (checkpoint ", c10::IntArrayRef(shape), ", model expects [", fused_rows,
                                 ", ", cfg.dim, "] for fused q/k/v)"));
        continue;
      }
      shape[0] = src.row_end - src.row_begin;
    }
    shape = vocab.file_shape(p.key(), shape);
    if (c10::IntArrayRef(shape) != vocab.destination(p.key(), p.value()).sizes()) {
      mismatched.push_back(str(p.key(), " (checkpoint ", c10::IntArrayRef(shape), ", model ",
                               vocab.destination(p.key(), p.value()).sizes(), ")"));
    }
  }
  if (missing.empty() && unexpected.empty() && mismatched.empty()) return;
  std::string msg = "checkpoint does not match the model (" + std::to_string(cfg.n_layers) + " layers, dim " +
                    std::to_string(cfg.dim) + "):";
  if (!missing.empty()) msg += "\n  missing: " + join(missing);
  if (!unexpected.empty()) msg += "\n  unexpected: " + join(unexpected);
  if (!mismatched.empty()) msg += "\n  shape mismatch: " + join(mismatched);
  PAJAMA_FAIL_AS(CheckpointError, msg);
}

}  // namespace

void load_hf_weights(LlamaImpl& model, const fs::path& dir, int64_t vocab_rows) {
  const VocabRows vocab{vocab_rows >= 0, vocab_rows >= 0 ? vocab_rows : model.config().padded_vocab_size()};
  PAJAMA_CHECK(vocab.rows <= model.config().padded_vocab_size(), "load_hf_weights: ", vocab.rows,
               " vocabulary rows do not fit the model's ", model.config().padded_vocab_size());
  try {
    const std::map<std::string, TensorSource> sources = tensor_sources(weight_map(dir), model.config());
    auto params = model.named_parameters();
    ShardReaders reader(dir);
    check_sources_match(model, params, sources, reader, vocab, dir);
    torch::NoGradGuard no_grad;
    for (auto& p : params) {
      const TensorSource& s = sources.at(p.key());
      torch::Tensor src = reader(s.file).tensor(s.tensor);
      PAJAMA_CHECK_AS(CheckpointError, src.is_floating_point(), s.file, ": tensor '", s.tensor, "' has integer dtype ",
                      reader(s.file).entry(s.tensor).dtype);
      if (s.row_begin >= 0) src = src.narrow(0, s.row_begin, s.row_end - s.row_begin);
      if (vocab.partial && is_vocab_parameter(p.key())) src = src.narrow(0, 0, vocab.rows);
      // copy_ converts dtype and device and keeps the parameter's storage.
      vocab.destination(p.key(), p.value()).copy_(src);
    }
  } catch (...) {
    rethrow_with_context("loading Hugging Face weights from ", dir.string());
  }
}

void load_hf_weights(Llama& model, const fs::path& dir, int64_t vocab_rows) {
  load_hf_weights(*model, dir, vocab_rows);
}

}  // namespace pajama
