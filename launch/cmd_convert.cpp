// pajama convert --checkpoint DIR --to-hf OUT [--dtype D] [--tokenizer M]: a training
// checkpoint as a Hugging Face LLaMA directory (config.json, generation_config.json,
// safetensors shards + index, tokenizer files) that transformers' from_pretrained loads.
// The weights stream from the checkpoint one shard at a time (never the whole model in
// memory); the tokenizer files follow the BOS/EOS policy the training shards were made
// with (their `pajama prepare` sidecars).
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "data/shard_metadata.h"
#include "data/tokenizer.h"
#include "launch/command.h"
#include "model/hf_checkpoint.h"
#include "model/safetensors.h"
#include "trainer/checkpoint_layout.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct ConvertOptions {
  std::string checkpoint;
  std::string to_hf;
  std::string tokenizer;
  std::string dtype = "auto";
  double max_shard_gb = 5.0;
};

// --dtype: auto (the dtype the run trained in) or an HF torch_dtype name.
torch::ScalarType export_dtype(const std::string& requested, const std::string& trained) {
  const std::string d = requested == "auto" ? trained : requested;
  if (d == "float32" || d == "fp32") return torch::kFloat32;
  if (d == "bfloat16" || d == "bf16") return torch::kBFloat16;
  if (d == "float16" || d == "fp16") return torch::kHalf;
  PAJAMA_FAIL_AS(pajama::ConfigError, "--dtype ", requested,
                 " is not supported; use auto (the training dtype, here ", trained, "), float32, bfloat16 or float16");
}

// Whether BOS/EOS were added around documents: from the first training shard's sidecar;
// LLaMA's own policy (BOS yes, EOS no) when the run had no sidecar to read.
struct SpecialTokenPolicy {
  bool add_bos = true;
  bool add_eos = false;
  std::string from;
};

SpecialTokenPolicy token_policy(const pajama::CheckpointModel& saved) {
  for (const std::string& prefix : saved.shard_prefixes) {
    if (auto meta = pajama::read_shard_metadata(prefix)) {
      return {meta->add_bos, meta->add_eos, pajama::shard_metadata_path(prefix)};
    }
  }
  return {true, false, ""};
}

void write_tokenizer_files(const pajama::Tokenizer& tok, const SpecialTokenPolicy& policy, const fs::path& out) {
  fs::copy_file(tok.source(), out / "tokenizer.model", fs::copy_options::overwrite_existing);
  nlohmann::json special = nlohmann::json::object();
  for (const auto& [key, id] : {std::pair{"bos_token", tok.bos_id()}, std::pair{"eos_token", tok.eos_id()},
                                std::pair{"unk_token", tok.unk_id()}}) {
    if (id >= 0) special[key] = tok.piece(id);
  }
  nlohmann::json cfg = {{"tokenizer_class", "LlamaTokenizer"},
                        {"add_bos_token", policy.add_bos},
                        {"add_eos_token", policy.add_eos},
                        {"legacy", true},
                        {"model_max_length", 1000000000000000019884624838656.0}};
  cfg.update(special);
  pajama::write_file_atomic(out / "tokenizer_config.json", cfg.dump(2) + "\n");
  pajama::write_file_atomic(out / "special_tokens_map.json", special.dump(2) + "\n");
}

// transformers' generate() reads its defaults from here; ids as in config.json unless
// the tokenizer says otherwise.
void write_generation_config(const fs::path& out, int64_t bos_id, int64_t eos_id) {
  nlohmann::json gen = {{"_from_model_config", true}};
  if (bos_id >= 0) gen["bos_token_id"] = bos_id;
  if (eos_id >= 0) gen["eos_token_id"] = eos_id;
  pajama::write_file_atomic(out / "generation_config.json", gen.dump(2) + "\n");
}

void run_convert(const ConvertOptions& o) {
  const fs::path dir = pajama::resolve_checkpoint_dir(o.checkpoint);
  pajama::Manifest manifest;
  const std::string problem = pajama::verify_checkpoint(dir, manifest);
  PAJAMA_CHECK_AS(pajama::CheckpointError, problem.empty(), dir.string(), ": ", problem);
  const pajama::CheckpointModel saved = pajama::read_checkpoint_model(dir, manifest);
  for (const auto& note : saved.notes) pajama::log_warn("checkpoint config: ", note);
  const torch::ScalarType dtype = export_dtype(o.dtype, saved.dtype);
  const std::string tokenizer = !o.tokenizer.empty() ? o.tokenizer : saved.tokenizer;
  PAJAMA_CHECK_AS(pajama::ConfigError, tokenizer.empty() || fs::exists(tokenizer), "tokenizer ", tokenizer,
                  " not found; pass --tokenizer PATH to name the SentencePiece model to include");

  std::optional<pajama::Tokenizer> tok;  // checked before any weight is written
  if (!tokenizer.empty()) {
    tok.emplace(tokenizer);
    PAJAMA_CHECK_AS(pajama::ConfigError, tok->vocab_size() <= saved.shape.vocab_size, "tokenizer ", tokenizer,
                    " has ", tok->vocab_size(), " pieces but the model's vocabulary is ", saved.shape.vocab_size,
                    "; pass --tokenizer with the SentencePiece model the run was trained with");
  }

  const pajama::SafetensorsReader weights(dir / "model.safetensors");
  std::vector<std::pair<std::string, int64_t>> tensors;
  for (const std::string& name : weights.names()) {
    int64_t numel = 1;
    for (int64_t d : weights.entry(name).shape) numel *= d;
    tensors.emplace_back(name, numel);
  }
  const auto start = Clock::now();
  auto last = start;
  const auto progress = [&](int64_t done, int64_t total) {
    if (Clock::now() - last < std::chrono::seconds(10) && done < total) return;
    last = Clock::now();
    pajama::log_info("converting: ", done / 1000000, " of ", total / 1000000, " MB written (",
                     std::chrono::duration<double>(last - start).count(), " s)");
  };
  const auto fetch = [&](const std::string& name) { return weights.tensor(name).to(dtype); };
  pajama::save_hf_tensors(saved.shape, dtype, tensors, fetch, o.to_hf, static_cast<int64_t>(o.max_shard_gb * 1e9),
                          progress);
  if (!tok) {
    pajama::log_warn("no tokenizer in the checkpoint's config (data.tokenizer); pass --tokenizer to include one");
    write_generation_config(o.to_hf, 1, 2);  // the ids hf_config_json writes
  } else {
    const SpecialTokenPolicy policy = token_policy(saved);
    pajama::log_info("tokenizer files: add_bos_token ", policy.add_bos ? "true" : "false", ", add_eos_token ",
                     policy.add_eos ? "true" : "false", " (",
                     policy.from.empty() ? "LLaMA's policy: the run's shards have no pajama prepare sidecar"
                                         : "as the shards were made: " + policy.from,
                     ")");
    write_tokenizer_files(*tok, policy, o.to_hf);
    write_generation_config(o.to_hf, tok->bos_id(), tok->eos_id());
  }
  pajama::log_info("wrote Hugging Face LLaMA directory ", o.to_hf, " (", c10::toString(dtype), ") from ",
                   dir.string());
}

void register_convert(CLI::App& app) {
  auto opts = std::make_shared<ConvertOptions>();
  auto* sub = app.add_subcommand("convert", "Export a training checkpoint as a Hugging Face LLaMA directory");
  sub->add_option("--checkpoint", opts->checkpoint, "Checkpoint directory, or a run directory (its newest checkpoint)")
      ->required();
  sub->add_option("--to-hf", opts->to_hf, "Output directory (config.json, safetensors, tokenizer files)")->required();
  sub->add_option("--dtype", opts->dtype,
                  "Weights' dtype: auto (the dtype the run trained in), float32, bfloat16 or float16");
  sub->add_option("--tokenizer", opts->tokenizer, "SentencePiece model to include (default: data.tokenizer of the run)");
  sub->add_option("--max-shard-gb", opts->max_shard_gb, "Largest safetensors shard in GB (default 5, as transformers)");
  sub->callback([opts] { run_convert(*opts); });
}

}  // namespace

PAJAMA_COMMAND(convert, register_convert);
