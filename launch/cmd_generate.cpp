// pajama generate (--checkpoint RUN_OR_CHECKPOINT | --hf HF_DIR) (--prompt TEXT | --prompt-ids "1 450 ...")
//   [--tokenizer MODEL] [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]
//   [--print-ids] [--device auto|cpu|cuda] [--dtype auto|fp32|bf16]
// Decodes with a KV cache (model/generate.h) and prints the prompt and its continuation;
// --print-ids prints the continuation's ids on one line instead.
#include <cstdio>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "data/tokenizer.h"
#include "launch/command.h"
#include "model/generate.h"
#include "trainer/inference_model.h"

namespace {

struct GenerateCli {
  std::string checkpoint, hf, tokenizer, prompt, prompt_ids, device = "auto", dtype = "auto";
  pajama::GenerateOptions options;
  bool print_ids = false;
};

std::vector<int64_t> parse_ids(const std::string& text) {
  std::vector<int64_t> ids;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    try {
      size_t used = 0;
      ids.push_back(std::stoll(word, &used));
      PAJAMA_CHECK_AS(pajama::ConfigError, used == word.size(), "");
    } catch (const std::exception&) {
      PAJAMA_FAIL_AS(pajama::ConfigError, "--prompt-ids: '", word, "' is not an integer token id");
    }
  }
  return ids;
}

void run_generate(GenerateCli& c) {
  PAJAMA_CHECK_AS(pajama::ConfigError, c.prompt.empty() != c.prompt_ids.empty(),
                  "give exactly one of --prompt TEXT and --prompt-ids \"ID ID ...\"");
  const torch::Device device = pajama::inference_device(c.device, "--device");
  pajama::InferenceModel m =
      pajama::load_inference_model(c.checkpoint, c.hf, device, pajama::inference_dtype(c.dtype, device, "--dtype"));
  const std::string tok_path = c.tokenizer.empty() ? m.tokenizer : c.tokenizer;
  std::optional<pajama::Tokenizer> tok;
  if (!tok_path.empty()) tok.emplace(tok_path);
  std::vector<int64_t> prompt;
  if (!c.prompt_ids.empty()) {
    prompt = parse_ids(c.prompt_ids);
  } else {
    PAJAMA_CHECK_AS(pajama::ConfigError, tok.has_value(), "--prompt needs a tokenizer: the model has none recorded; "
                    "pass --tokenizer MODEL (or --prompt-ids)");
    // LLaMA's convention: BOS, then the text.
    if (tok->bos_id() >= 0) prompt.push_back(tok->bos_id());
    for (int32_t id : tok->encode(c.prompt)) prompt.push_back(id);
  }
  if (tok && c.options.eos_id < 0) c.options.eos_id = tok->eos_id();
  pajama::log_info("generate: ", m.source, " on ", device.str(), " (",
                   c10::toString(m.model->parameters().front().scalar_type()), "), ", prompt.size(),
                   " prompt tokens, ", c.options.temperature == 0 ? std::string("greedy") : "sampling");
  if (c.print_ids || !tok) {
    const std::vector<int64_t> out = pajama::generate(m.model, prompt, c.options);
    std::string line;
    for (int64_t id : out) line += (line.empty() ? "" : " ") + std::to_string(id);
    std::printf("%s\n", line.c_str());
    return;
  }
  // The text appears as it is produced: after each token the whole sequence is decoded
  // again (pieces join with spaces and bytes into characters only in context) and what
  // extends the text already shown is printed; an incomplete UTF-8 character waits.
  std::vector<int32_t> all(prompt.begin(), prompt.end());
  std::string shown = tok->decode(all);
  std::fputs(shown.c_str(), stdout);
  std::fflush(stdout);
  const auto show = [&](int64_t id) {
    all.push_back(static_cast<int32_t>(id));
    const std::string text = tok->decode(all);
    const bool complete = text.find("\xEF\xBF\xBD", shown.size()) == std::string::npos;  // no U+FFFD
    if (text.size() > shown.size() && text.starts_with(shown) && complete) {
      std::fputs(text.c_str() + shown.size(), stdout);
      std::fflush(stdout);
      shown = text;
    }
  };
  pajama::generate(m.model, prompt, c.options, show);
  const std::string text = tok->decode(all);
  if (text.size() > shown.size() && text.starts_with(shown)) std::fputs(text.c_str() + shown.size(), stdout);
  std::printf("\n");
}

void register_generate(CLI::App& app) {
  auto c = std::make_shared<GenerateCli>();
  auto* sub = app.add_subcommand("generate", "Continue a prompt with a trained model (KV cache; CPU or GPU)");
  sub->add_option("--checkpoint", c->checkpoint, "Training checkpoint, or a run directory (its newest checkpoint)");
  sub->add_option("--hf", c->hf, "Hugging Face LLaMA directory");
  sub->add_option("--tokenizer", c->tokenizer, "SentencePiece model (default: the run's data.tokenizer or HF_DIR/tokenizer.model)");
  sub->add_option("--prompt", c->prompt, "Prompt text (encoded with BOS first, as LLaMA)");
  sub->add_option("--prompt-ids", c->prompt_ids, "Prompt as token ids: \"1 450 4996\"");
  sub->add_option("--max-new-tokens", c->options.max_new_tokens, "Tokens to generate")->capture_default_str();
  sub->add_option("--temperature", c->options.temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
  sub->add_option("--top-k", c->options.top_k, "Sample among the k most likely tokens (0 = all)")->capture_default_str();
  sub->add_option("--top-p", c->options.top_p, "Nucleus sampling mass (1 = all)")->capture_default_str();
  sub->add_option("--seed", c->options.seed, "Sampling seed")->capture_default_str();
  sub->add_flag("--print-ids", c->print_ids, "Print the continuation's token ids on one line");
  sub->add_option("--device", c->device, "auto, cpu or cuda")->capture_default_str();
  sub->add_option("--dtype", c->dtype, "auto (bf16 on GPU, the weights' dtype on CPU), fp32 or bf16")
      ->capture_default_str();
  sub->callback([c] { run_generate(*c); });
}

}  // namespace

PAJAMA_COMMAND(generate, register_generate);
