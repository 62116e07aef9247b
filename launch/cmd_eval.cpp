// pajama eval (--checkpoint RUN_OR_CHECKPOINT | --hf HF_DIR) --input FILES... [--tokenizer MODEL]
//   [--seq-len L] [--batch-size B] [--bos] [--no-eos] [--text-key KEY] [--device D] [--dtype T]
// Loss and perplexity per file and overall (trainer/text_eval.h has the windowing), on
// any number of ranks (mpirun); the last stdout line is the result as JSON.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "data/corpus_reader.h"
#include "data/tokenizer.h"
#include "launch/command.h"
#include "parallel/communicator.h"
#include "parallel/device_memory.h"
#include "parallel/world.h"
#include "trainer/inference_model.h"
#include "trainer/text_eval.h"

namespace {

struct EvalCli {
  std::string checkpoint, hf, tokenizer, device = "auto", dtype = "auto";
  std::vector<std::string> inputs;
  pajama::TextEvalOptions options;
  bool no_eos = false;
};

void run_eval(const EvalCli& c) {
  const pajama::World world = pajama::discover_world();
  pajama::set_log_rank(world.rank, world.size);
  const torch::Device device =
      world.size > 1 && c.device != "cpu" && torch::cuda::is_available()
          ? pajama::local_gpu(world.rank, world.local_rank)
          : pajama::inference_device(c.device, "--device");
  std::unique_ptr<pajama::Communicator> comm = pajama::make_communicator(world, device, pajama::CommConfig{});
  try {
    const std::vector<std::string> files = pajama::expand_corpus_inputs(c.inputs);
    pajama::InferenceModel m =
        pajama::load_inference_model(c.checkpoint, c.hf, device, pajama::inference_dtype(c.dtype, device, "--dtype"));
    const std::string tok_path = c.tokenizer.empty() ? m.tokenizer : c.tokenizer;
    PAJAMA_CHECK_AS(pajama::ConfigError, !tok_path.empty(),
                    "no tokenizer: the model has none recorded; pass --tokenizer MODEL");
    const pajama::Tokenizer tok(tok_path);
    pajama::TextEvalOptions o = c.options;
    o.add_eos = !c.no_eos;
    pajama::log_info("eval: ", m.source, " on ", files.size(), " file(s), windows of ", o.seq_len + 1, " tokens, ",
                     world.size, " rank(s)");
    const pajama::TextEvalResult r = pajama::evaluate_text_files(m.model, tok, files, o, *comm);
    nlohmann::ordered_json j;
    j["files"] = nlohmann::ordered_json::array();
    for (const auto& f : r.files) {
      pajama::log_info("eval: ", f.path, ": ", f.documents, " documents, ", f.predicted, " tokens, loss ", f.loss,
                       ", ppl ", std::exp(f.loss));
      j["files"].push_back({{"path", f.path}, {"documents", f.documents}, {"tokens", f.predicted}, {"loss", f.loss},
                            {"ppl", std::exp(f.loss)}});
    }
    pajama::log_info("eval: overall: ", r.predicted, " tokens, loss ", r.loss, ", ppl ", std::exp(r.loss));
    j["tokens"] = r.predicted;
    j["loss"] = r.loss;
    j["ppl"] = std::exp(r.loss);
    if (world.is_main()) std::printf("%s\n", j.dump().c_str());
  } catch (const std::exception& e) {
    if (world.size > 1) {
      pajama::log_error(e.what());
      comm->abort(dynamic_cast<const pajama::ConfigError*>(&e) != nullptr ? 2 : 1);
    }
    throw;
  }
}

void register_eval(CLI::App& app) {
  auto c = std::make_shared<EvalCli>();
  auto* sub = app.add_subcommand("eval", "Loss and perplexity of a model on text files (per file and overall)");
  sub->add_option("--checkpoint", c->checkpoint, "Training checkpoint, or a run directory (its newest checkpoint)");
  sub->add_option("--hf", c->hf, "Hugging Face LLaMA directory");
  sub->add_option("--input,-i", c->inputs, "Files, globs or directories in prepare's formats")->required();
  sub->add_option("--tokenizer", c->tokenizer, "SentencePiece model (default: the run's data.tokenizer or HF_DIR/tokenizer.model)");
  sub->add_option("--seq-len", c->options.seq_len, "Tokens of context per window")->capture_default_str();
  sub->add_option("--batch-size", c->options.batch_size, "Windows per forward")->capture_default_str();
  sub->add_flag("--bos", c->options.add_bos, "Put BOS before each document (prepare's --bos)");
  sub->add_flag("--no-eos", c->no_eos, "No EOS after each document (prepare's --no-eos)");
  sub->add_option("--text-key", c->options.text_key, "JSON field holding the text")->capture_default_str();
  sub->add_option("--device", c->device, "auto, cpu or cuda")->capture_default_str();
  sub->add_option("--dtype", c->dtype, "auto, fp32 or bf16")->capture_default_str();
  sub->callback([c] { run_eval(*c); });
}

}  // namespace

PAJAMA_COMMAND(eval, register_eval);
