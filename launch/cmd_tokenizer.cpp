// pajama tokenizer train --input FILES... --vocab-size N --output PREFIX: train a
// SentencePiece model with LLaMA's recipe (see data/tokenizer_trainer.h, docs/DATA.md).
// pajama tokenizer merge --base LLAMA.model --add ZH.model --output MERGED.model
// [--only-cjk] [--json]: append the added model's new pieces to the base
// (data/tokenizer_merge.h); --json also prints the counts as one JSON object on stdout.
// Exit codes: 0 done, 1 data error (unreadable or malformed model), 2 usage or option error.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/tokenizer_merge.h"
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

void print_merge_json(const pajama::TokenizerMergeOptions& o, const pajama::TokenizerMergeStats& s) {
  const nlohmann::ordered_json j = {{"output", o.output_path},
                                    {"base_pieces", s.base_pieces},
                                    {"added", s.added},
                                    {"total", s.total},
                                    {"already_in_base", s.already_in_base},
                                    {"skipped_special", s.skipped_special},
                                    {"skipped_non_cjk", s.skipped_non_cjk},
                                    {"base_min_score", s.base_min_score},
                                    {"score_step", s.score_step},
                                    {"dropped_self_test", s.dropped_self_test},
                                    {"loaded_vocab_size", s.loaded_vocab_size}};
  std::printf("%s\n", j.dump().c_str());
}

void run_merge(const pajama::TokenizerMergeOptions& o, bool json) {
  const pajama::TokenizerMergeStats s = pajama::merge_tokenizers(o);
  if (json) print_merge_json(o, s);
  const std::string non_cjk = o.only_cjk ? pajama::str(", ", s.skipped_non_cjk, " without CJK skipped") : "";
  std::fprintf(stderr,
               "tokenizer merge: added %lld pieces (base %lld + %lld = %lld); of the added model's pieces %lld were "
               "already in the base, %lld special/byte skipped%s\n",
               static_cast<long long>(s.added), static_cast<long long>(s.base_pieces), static_cast<long long>(s.added),
               static_cast<long long>(s.total), static_cast<long long>(s.already_in_base),
               static_cast<long long>(s.skipped_special), non_cjk.c_str());
  if (s.added > 0) {
    std::fprintf(stderr, "tokenizer merge: new scores from %.9g down in steps of %g (below the base's lowest %.9g)\n",
                 static_cast<double>(s.base_min_score) - s.score_step, static_cast<double>(s.score_step),
                 static_cast<double>(s.base_min_score));
  }
  if (s.dropped_self_test) std::fprintf(stderr, "tokenizer merge: dropped the base's self_test_data\n");
  std::fprintf(stderr, "tokenizer merge: wrote %s (loads with %lld pieces)\n", o.output_path.c_str(),
               static_cast<long long>(s.loaded_vocab_size));
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

  auto m = std::make_shared<pajama::TokenizerMergeOptions>();
  auto* merge =
      sub->add_subcommand("merge", "Append another model's missing pieces to a base BPE model (vocabulary expansion)");
  merge->footer(
      "Base ids, pieces, scores and settings stay as they are (trainer_spec.vocab_size becomes the new size; "
      "self_test_data is dropped). New pieces follow in the added model's order, scored below every base NORMAL "
      "piece: the added model's k-th highest distinct score becomes base_min - k*u, u the smallest power of two "
      ">= 1 that keeps the scores distinct in float32 (64 for LLaMA, whose lowest scores are -1e9). BPE uses "
      "scores only to order merges, so base merges keep priority and the added model's merge order is kept. "
      "See docs/DATA.md.");
  merge->add_option("--base", m->base_path, "Model to extend (e.g. LLaMA's tokenizer.model)")->required();
  merge->add_option("--add", m->add_path, "Model whose missing NORMAL/USER_DEFINED pieces are appended")->required();
  merge->add_option("--output,-o", m->output_path, "Merged .model to write (not an input; parent directories created)")
      ->required();
  merge->add_flag("--only-cjk", m->only_cjk,
                  "Append only pieces containing a CJK character (ideographs, CJK punctuation, kana, bopomofo, "
                  "fullwidth forms), so text without them tokenizes exactly as with the base");
  auto merge_json = std::make_shared<bool>(false);
  merge->add_flag("--json", *merge_json, "Also print the counts as one JSON object on stdout");
  merge->callback([m, merge_json] { run_merge(*m, *merge_json); });
}

}  // namespace

PAJAMA_COMMAND(tokenizer, register_tokenizer);
