// pajama tokenizer train --input FILES... --vocab-size N --output PREFIX: train a
// SentencePiece model with LLaMA's recipe (see data/tokenizer_trainer.h, docs/DATA.md).
// Exit codes: 0 done, 1 data error, 2 usage or option error.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "data/tokenizer_trainer.h"
#include "launch/command.h"

namespace {

void run_train(const pajama::TokenizerTrainOptions& o) {
  const pajama::TokenizerTrainStats s = pajama::train_tokenizer(o);
  std::fprintf(stderr,
               "tokenizer train: %lld documents (%lld malformed skipped), %lld of %lld lines sampled, "
               "%lld pieces; wrote %s.model and %s.vocab\n",
               static_cast<long long>(s.documents), static_cast<long long>(s.skipped),
               static_cast<long long>(s.sentences_used), static_cast<long long>(s.sentences_seen),
               static_cast<long long>(s.vocab_size), o.output_prefix.c_str(), o.output_prefix.c_str());
}

void register_tokenizer(CLI::App& app) {
  auto* sub = app.add_subcommand("tokenizer", "Tokenizer tools");
  sub->require_subcommand(1);
  auto o = std::make_shared<pajama::TokenizerTrainOptions>();
  auto* train = sub->add_subcommand("train", "Train a SentencePiece tokenizer (LLaMA recipe: BPE, byte fallback, split digits)");
  train->add_option("--input,-i", o->inputs, "Input files, globs or directories (formats as for prepare)")->required();
  train->add_option("--vocab-size", o->vocab_size, "Vocabulary size")->required();
  train->add_option("--output,-o", o->output_prefix, "Output prefix: writes PREFIX.model and PREFIX.vocab")->required();
  train->add_option("--text-key", o->text_key, "JSON field holding the document text")->capture_default_str();
  train->add_option("--max-sentences", o->max_sentences, "Lines sampled for training (reservoir over all input)")
      ->capture_default_str();
  train->add_option("--model-type", o->model_type, "bpe or unigram")->capture_default_str();
  train->add_option("--character-coverage", o->character_coverage, "Share of characters kept as pieces")
      ->capture_default_str();
  train->add_option("--threads", o->num_threads, "Training threads (0 = all cores)")->capture_default_str();
  train->add_option("--seed", o->seed, "Sampling seed")->capture_default_str();
  train->callback([o] { run_train(*o); });
}

}  // namespace

PAJAMA_COMMAND(tokenizer, register_tokenizer);
