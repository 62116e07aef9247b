// pajama convert --checkpoint DIR --to-hf OUT: a training checkpoint as a Hugging Face
// LLaMA directory (config.json, safetensors shards + index, tokenizer files) that
// transformers' LlamaForCausalLM.from_pretrained loads.
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "launch/command.h"
#include "model/hf_checkpoint.h"
#include "model/llama.h"
#include "model/safetensors.h"
#include "trainer/checkpoint_layout.h"

namespace {

namespace fs = std::filesystem;

struct ConvertOptions {
  std::string checkpoint;
  std::string to_hf;
  std::string tokenizer;
  double max_shard_gb = 5.0;
};

void write_tokenizer_files(const fs::path& tokenizer, const fs::path& out) {
  fs::copy_file(tokenizer, out / "tokenizer.model", fs::copy_options::overwrite_existing);
  const nlohmann::json cfg = {{"tokenizer_class", "LlamaTokenizer"},
                              {"add_bos_token", true},
                              {"add_eos_token", false},
                              {"bos_token", "<s>"},
                              {"eos_token", "</s>"},
                              {"unk_token", "<unk>"},
                              {"legacy", true},
                              {"model_max_length", 1000000000000000019884624838656.0}};
  pajama::write_file_atomic(out / "tokenizer_config.json", cfg.dump(2) + "\n");
  const nlohmann::json special = {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}};
  pajama::write_file_atomic(out / "special_tokens_map.json", special.dump(2) + "\n");
}

void run_convert(const ConvertOptions& o) {
  const fs::path dir = pajama::resolve_checkpoint_dir(o.checkpoint);
  pajama::Manifest manifest;
  const std::string problem = pajama::verify_checkpoint(dir, manifest);
  PAJAMA_CHECK_AS(pajama::CheckpointError, problem.empty(), dir.string(), ": ", problem);
  const pajama::CheckpointModel saved = pajama::read_checkpoint_model(dir, manifest);
  for (const auto& note : saved.notes) pajama::log_warn("checkpoint config: ", note);
  pajama::Llama model(saved.shape);
  {
    pajama::SafetensorsReader weights(dir / "model.safetensors");
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters()) p.value().copy_(weights.tensor(p.key()));
  }
  fs::create_directories(o.to_hf);
  pajama::save_hf(*model, o.to_hf, static_cast<int64_t>(o.max_shard_gb * 1e9));
  const std::string tokenizer = !o.tokenizer.empty() ? o.tokenizer : saved.tokenizer;
  if (!tokenizer.empty()) {
    PAJAMA_CHECK_AS(pajama::ConfigError, fs::exists(tokenizer), "tokenizer ", tokenizer,
                    " not found; pass --tokenizer PATH to name the SentencePiece model to include");
    write_tokenizer_files(tokenizer, o.to_hf);
  } else {
    pajama::log_warn("no tokenizer in the checkpoint's config (data.tokenizer); pass --tokenizer to include one");
  }
  pajama::log_info("wrote Hugging Face LLaMA directory ", o.to_hf, " from ", dir.string());
}

void register_convert(CLI::App& app) {
  auto opts = std::make_shared<ConvertOptions>();
  auto* sub = app.add_subcommand("convert", "Export a training checkpoint as a Hugging Face LLaMA directory");
  sub->add_option("--checkpoint", opts->checkpoint, "Checkpoint directory, or a run directory (its newest checkpoint)")
      ->required();
  sub->add_option("--to-hf", opts->to_hf, "Output directory (config.json, safetensors, tokenizer files)")->required();
  sub->add_option("--tokenizer", opts->tokenizer, "SentencePiece model to include (default: data.tokenizer of the run)");
  sub->add_option("--max-shard-gb", opts->max_shard_gb, "Largest safetensors shard in GB (default 5, as transformers)");
  sub->callback([opts] { run_convert(*opts); });
}

}  // namespace

PAJAMA_COMMAND(convert, register_convert);
