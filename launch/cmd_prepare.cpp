// pajama prepare --input FILES... --tokenizer MODEL --output PREFIX: tokenize corpora
// into Megatron indexed datasets (see data/prepare.h and docs/DATA.md).
// Exit codes: 0 done (malformed records skipped and counted), 1 data error (bad or
// truncated input, --strict and a malformed record, I/O), 2 option error (CLI11's own
// parse errors keep CLI11's codes, e.g. 106 for a missing required option),
// 130/143 interrupted by SIGINT/SIGTERM (nothing written under the output names).
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/signals.h"
#include "data/prepare.h"
#include "launch/command.h"

namespace {

void run(const pajama::PrepareOptions& o) {
  // A second Ctrl-C or SIGTERM kills at once.
  pajama::ScopedStopSignalHandlers guard({}, {SIGINT, SIGTERM});
  try {
    const pajama::PrepareStats stats = pajama::run_prepare(o);
    std::fprintf(stderr, "%s\n", pajama::format_prepare_summary(stats).c_str());
  } catch (const pajama::PrepareInterrupted& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    throw pajama::cli::ExitCode{128 + (pajama::stop_signal_received() != 0 ? pajama::stop_signal_received() : SIGINT)};
  }
}

void register_prepare(CLI::App& app) {
  auto o = std::make_shared<pajama::PrepareOptions>();
  o->stop = &pajama::stop_requested();
  auto* sub = app.add_subcommand("prepare", "Tokenize corpora (JSONL/.json/.txt, optionally .gz/.zst) into Megatron .bin/.idx shards");
  sub->add_option("--input,-i", o->inputs, "Input files, globs or directories (in order)")->required();
  sub->add_option("--tokenizer,-t", o->tokenizer_path, "SentencePiece model file")->required();
  sub->add_option("--output,-o", o->output_prefix, "Output prefix: PREFIX.bin/.idx, or PREFIX_00000... with --shard-size")->required();
  sub->add_option("--text-key", o->text_key, "JSON field holding the document text")->capture_default_str();
  sub->add_option("--workers,-j", o->num_workers, "Tokenizer threads (0 = all cores)")->capture_default_str();
  sub->add_flag("--bos,!--no-bos", o->add_bos, "Prepend BOS to each document (default off)");
  sub->add_flag("--eos,!--no-eos", o->add_eos, "Append EOS to each document (default on, like Megatron's --append-eod)");
  sub->add_option("--min-doc-tokens", o->min_doc_tokens, "Drop documents with fewer text tokens")->capture_default_str();
  sub->add_option("--shard-size", o->shard_size, "Max tokens per shard, documents never split (0 = one output)")
      ->capture_default_str();
  sub->add_flag("--strict", o->strict, "Fail at the first malformed record instead of skipping it");
  sub->add_flag("!--no-progress", o->progress, "No progress line on stderr");
  sub->add_option("--batch-bytes", o->batch_bytes, "Raw input bytes per work batch")->capture_default_str()->group("Advanced");
  sub->callback([o] { run(*o); });
}

}  // namespace

PAJAMA_COMMAND(prepare, register_prepare);
