#include "data/prepare.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <span>
#include <thread>

#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "data/indexed_dataset.h"
#include "data/prepare_output.h"
#include "data/prepare_pipeline.h"
#include "data/progress.h"
#include "data/shard_metadata.h"
#include "data/tokenizer.h"

namespace pajama {

namespace fs = std::filesystem;
using prepare_detail::BatchResult;
using prepare_detail::DocResult;
using prepare_detail::kTooShort;

int64_t PrepareStats::skipped_malformed() const {
  int64_t n = 0;
  for (size_t i = 1; i < malformed.size(); ++i) n += malformed[i];
  return n;
}

namespace {

void validate(const PrepareOptions& o) {
  PAJAMA_CHECK_AS(ConfigError, !o.inputs.empty(), "prepare: no --input given");
  PAJAMA_CHECK_AS(ConfigError, !o.tokenizer_path.empty(), "prepare: --tokenizer is required");
  PAJAMA_CHECK_AS(ConfigError, !o.output_prefix.empty(), "prepare: --output is required");
  PAJAMA_CHECK_AS(ConfigError, !fs::path(o.output_prefix).filename().empty(), "prepare: --output ", o.output_prefix,
                  " must name a file prefix (e.g. data/corpus), not a directory");
  PAJAMA_CHECK_AS(ConfigError, !fs::is_directory(o.output_prefix), "prepare: --output ", o.output_prefix,
                  " is a directory; give a prefix inside it, e.g. ", (fs::path(o.output_prefix) / "corpus").string());
  PAJAMA_CHECK_AS(ConfigError, o.num_workers >= 0 && o.num_workers <= 1024, "prepare: --workers ", o.num_workers,
                  " out of range");
  PAJAMA_CHECK_AS(ConfigError, o.min_doc_tokens >= 0, "prepare: --min-doc-tokens must be >= 0");
  PAJAMA_CHECK_AS(ConfigError, o.shard_size >= 0, "prepare: --shard-size must be >= 0 (0 = one output)");
  PAJAMA_CHECK_AS(ConfigError, o.batch_bytes > 0, "prepare: batch size must be positive");
}

// The sidecar fields every shard of this run shares.
ShardMetadata base_metadata(const PrepareOptions& o, const std::string& model_bytes, const Tokenizer& probe,
                            TokenDType dtype) {
  ShardMetadata base;
  base.tokenizer_path = o.tokenizer_path;
  base.tokenizer_sha256 = sha256_hex(model_bytes);
  base.vocab_size = probe.vocab_size();
  base.add_bos = o.add_bos;
  base.add_eos = o.add_eos;
  base.bos_id = o.add_bos ? probe.bos_id() : -1;
  base.eos_id = o.add_eos ? probe.eos_id() : -1;
  base.dtype = dtype == TokenDType::kUInt16 ? "uint16" : "int32";
  return base;
}

// One batch's documents into the writer and the counts, in input order; a malformed
// record is skipped and counted, or with --strict an error naming its file:line.
void write_batch(const PrepareOptions& o, const std::string& file, const BatchResult& r,
                 prepare_detail::ShardWriter& writer, PrepareStats& stats, int& reported) {
  const int32_t* tokens = r.tokens.data();
  for (const DocResult& d : r.docs) {
    writer.note_source(file);
    if (d.status == 0) {
      writer.add(std::span<const int32_t>(tokens, static_cast<size_t>(d.num_tokens)));
      tokens += d.num_tokens;
      ++stats.documents;
      stats.tokens += d.num_tokens;
      stats.text_tokens += d.num_tokens - (o.add_bos ? 1 : 0) - (o.add_eos ? 1 : 0);
      stats.text_bytes += d.text_bytes;
      continue;
    }
    if (d.status == kTooShort) {
      ++stats.too_short;
      continue;
    }
    writer.note_skipped();
    const char* reason = record_error_name(static_cast<RecordError>(d.status));
    PAJAMA_CHECK_AS(DataError, !o.strict, file, ":", d.line, ": malformed record (", reason,
                    "); --strict stops at the first one (without it, malformed records are skipped and counted)");
    ++stats.malformed[static_cast<size_t>(d.status)];
    if (reported++ < o.max_reported) log_warn("prepare: ", file, ":", d.line, ": skipped (", reason, ")");
  }
}

}  // namespace

PrepareStats run_prepare(const PrepareOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  validate(o);
  const auto files = expand_corpus_inputs(o.inputs);
  const std::string model_bytes = read_file(o.tokenizer_path);
  const Tokenizer probe = Tokenizer::from_serialized(model_bytes, o.tokenizer_path);
  PAJAMA_CHECK_AS(ConfigError, !o.add_bos || probe.bos_id() >= 0, o.tokenizer_path,
                  ": the tokenizer has no BOS token; run with --no-bos");
  PAJAMA_CHECK_AS(ConfigError, !o.add_eos || probe.eos_id() >= 0, o.tokenizer_path,
                  ": the tokenizer has no EOS token; run with --no-eos");

  PrepareStats stats;
  stats.files = static_cast<int64_t>(files.size());
  for (const auto& f : files) stats.input_bytes += fs::file_size(f);

  const TokenDType dtype = optimal_token_dtype(probe.vocab_size());
  prepare_detail::StagingDir staging{fs::path(o.output_prefix)};
  prepare_detail::ShardWriter writer(o, staging.path(), base_metadata(o, model_bytes, probe, dtype), dtype);
  const int workers = o.num_workers > 0 ? o.num_workers : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ProgressMeter meter("prepare", stats.input_bytes, o.progress);
  int reported = 0;
  {
    prepare_detail::Pipeline pipeline(o, files, model_bytes, workers);
    while (auto r = pipeline.next()) {
      write_batch(o, files[static_cast<size_t>(r->file)], *r, writer, stats, reported);
      meter.update(stats.documents, stats.tokens, pipeline.bytes_read());
    }
  }
  meter.finish();
  PAJAMA_CHECK_AS(DataError, stats.documents > 0, "prepare: no documents to write (", stats.skipped_malformed(),
                  " malformed, ", stats.too_short, " shorter than --min-doc-tokens) in ", files.size(),
                  " input file(s); check --text-key and the inputs");
  const auto names = writer.finish();
  PAJAMA_CHECK_AS(PrepareInterrupted, o.stop == nullptr || !o.stop->load(), "prepare interrupted; no output was written");
  stats.outputs = staging.commit(names, o.shard_size > 0);
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return stats;
}

std::string format_prepare_summary(const PrepareStats& s) {
  std::string out = str("prepare: ", s.documents, " documents, ", s.tokens, " tokens (", s.text_tokens,
                        " text tokens) from ", s.files, " file(s), ", s.input_bytes, " bytes, in ");
  char buf[128];
  std::snprintf(buf, sizeof buf, "%.1fs (%.1f MB/s, %s tokens/s)", s.seconds,
                s.seconds > 0 ? static_cast<double>(s.input_bytes) / 1e6 / s.seconds : 0.0,
                human_count(s.seconds > 0 ? static_cast<double>(s.tokens) / s.seconds : 0.0).c_str());
  out += buf;
  if (s.text_tokens > 0) {
    std::snprintf(buf, sizeof buf, "\nprepare: %.2f bytes per token (UTF-8 text bytes / text tokens)",
                  static_cast<double>(s.text_bytes) / static_cast<double>(s.text_tokens));
    out += buf;
  }
  out += str("\nprepare: skipped ", s.skipped_malformed() + s.too_short, " records");
  bool first = true;
  for (size_t i = 1; i < s.malformed.size(); ++i) {
    out += str(first ? " (" : ", ", record_error_name(static_cast<RecordError>(i)), " ", s.malformed[i]);
    first = false;
  }
  out += str(", too_short ", s.too_short, ")");
  for (const auto& p : s.outputs) out += str("\nprepare: wrote ", p, ".bin/.idx/.pajama.json");
  return out;
}

}  // namespace pajama
