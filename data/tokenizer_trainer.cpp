#include "data/tokenizer_trainer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/splitmix64.h"
#include "data/corpus_reader.h"

namespace pajama {
namespace {

// Feeds the sampled lines to SentencePiece without a temporary file (0.1.97 has no
// vector<string> overload; a SentenceIterator works in every version).
class VectorSentenceIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorSentenceIterator(const std::vector<std::string>& v) : v_(v) {}
  bool done() const override { return i_ >= v_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return v_[i_]; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

 private:
  const std::vector<std::string>& v_;
  size_t i_ = 0;
};

void check_options(const TokenizerTrainOptions& o) {
  PAJAMA_CHECK_AS(ConfigError, !o.inputs.empty(), "tokenizer train: no --input given");
  PAJAMA_CHECK_AS(ConfigError, !o.output_prefix.empty(), "tokenizer train: --output is required");
  PAJAMA_CHECK_AS(ConfigError, o.vocab_size >= 300, "tokenizer train: --vocab-size ", o.vocab_size,
                  " is too small; byte fallback alone takes 259 pieces (3 specials + 256 bytes)");
  PAJAMA_CHECK_AS(ConfigError, o.model_type == "bpe" || o.model_type == "unigram",
                  "tokenizer train: --model-type must be bpe or unigram, got ", o.model_type);
  PAJAMA_CHECK_AS(ConfigError, o.max_sentences > 0, "tokenizer train: --max-sentences must be positive");
}

// The output's directory exists before minutes of training, or the run fails now.
void create_output_dir(const TokenizerTrainOptions& o) {
  const std::filesystem::path parent = std::filesystem::path(o.output_prefix).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    PAJAMA_CHECK_AS(ConfigError, !ec, "tokenizer train: cannot create the --output directory ", parent.string(), ": ",
                    ec.message());
  }
}

// A uniform sample of at most max_sentences non-empty lines of every document (Algorithm R:
// the i-th line replaces a random slot with probability k/i). A fixed, platform-independent
// generator, so the sample (and hence the tokenizer) is the same on every machine for the
// same inputs and seed. Counts documents, malformed records and lines into `stats`.
std::vector<std::string> sample_lines(const TokenizerTrainOptions& o, const std::vector<std::string>& files,
                                      TokenizerTrainStats& stats) {
  std::vector<std::string> reservoir;
  SplitMix64 rng(o.seed);
  RawRecord rec;
  std::string text;
  for (const auto& file : files) {
    CorpusReader reader(file);
    while (reader.next(rec)) {
      if (extract_text(reader.format(), rec.data, o.text_key, text) != RecordError::kNone) {
        ++stats.skipped;
        continue;
      }
      ++stats.documents;
      size_t start = 0;
      while (start <= text.size()) {
        size_t nl = text.find('\n', start);
        if (nl == std::string::npos) nl = text.size();
        std::string_view line(text.data() + start, nl - start);
        start = nl + 1;
        if (line.empty()) continue;
        const auto seen = static_cast<uint64_t>(stats.sentences_seen++);
        if (reservoir.size() < static_cast<size_t>(o.max_sentences)) {
          reservoir.emplace_back(line);
        } else {
          const uint64_t j = rng.below(seen + 1);
          if (j < reservoir.size()) reservoir[j].assign(line);
        }
      }
    }
  }
  return reservoir;
}

// SentencePiece's trainer arguments: LLaMA's recipe (docs/DATA.md).
std::unordered_map<std::string, std::string> llama_recipe(const TokenizerTrainOptions& o, int threads) {
  return {
      {"model_type", o.model_type},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"character_coverage", std::to_string(o.character_coverage)},
      {"input_sentence_size", "0"},  // we sampled already; SentencePiece takes all it is given
      {"shuffle_input_sentence", "false"},
      {"max_sentence_length", std::to_string(o.max_sentence_length)},
      {"num_threads", std::to_string(threads)},
      {"hard_vocab_limit", o.hard_vocab_limit ? "true" : "false"},
      {"split_digits", "true"},
      {"byte_fallback", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "true"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"minloglevel", "2"},
      {"model_prefix", ""},
  };
}

// Trains on `lines` and returns the serialized model. SentencePiece trains silently (its
// own log is muted): a thread says every 15 s that it still does.
std::string train_with_progress(const std::unordered_map<std::string, std::string>& args,
                                const std::vector<std::string>& lines) {
  VectorSentenceIterator it(lines);
  std::string model;
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  std::thread progress([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (!cv.wait_for(lock, std::chrono::seconds(15), [&] { return finished; })) {
      log_info("tokenizer train: still training (", static_cast<int>(elapsed()), " s)");
    }
  });
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &it, &model);
  {
    std::lock_guard<std::mutex> lock(mu);
    finished = true;
  }
  cv.notify_all();
  progress.join();
  log_info("tokenizer train: trained in ", elapsed(), " s");
  PAJAMA_CHECK_AS(DataError, status.ok(), "tokenizer train: SentencePiece failed: ", status.ToString());
  return model;
}

}  // namespace

TokenizerTrainStats train_tokenizer(const TokenizerTrainOptions& o) {
  check_options(o);
  const auto files = expand_corpus_inputs(o.inputs);
  create_output_dir(o);
  TokenizerTrainStats stats;
  const std::vector<std::string> lines = sample_lines(o, files, stats);
  PAJAMA_CHECK_AS(DataError, !lines.empty(), "tokenizer train: the inputs hold no usable text (", stats.skipped,
                  " malformed records skipped); check --text-key");
  stats.sentences_used = static_cast<int64_t>(lines.size());

  const int threads = o.num_threads > 0 ? o.num_threads : std::max(1u, std::thread::hardware_concurrency());
  log_info("tokenizer train: ", o.model_type, " on ", lines.size(), " of ", stats.sentences_seen, " lines (",
           stats.documents, " documents), vocabulary ", o.vocab_size, ", ", threads, " thread(s)");
  const std::string model = train_with_progress(llama_recipe(o, threads), lines);

  sentencepiece::SentencePieceProcessor sp;
  const auto load = sp.LoadFromSerializedProto(model);
  PAJAMA_CHECK_AS(DataError, load.ok(), "tokenizer train: the trained model does not load: ", load.ToString());
  stats.vocab_size = sp.GetPieceSize();
  std::ostringstream vocab;
  for (int i = 0; i < sp.GetPieceSize(); ++i) vocab << sp.IdToPiece(i) << '\t' << sp.GetScore(i) << '\n';
  write_file_atomic(o.output_prefix + ".model", model);
  write_file_atomic(o.output_prefix + ".vocab", vocab.str());
  if (stats.vocab_size < o.vocab_size) {
    log_warn("tokenizer train: the corpus yielded ", stats.vocab_size, " pieces, fewer than the requested ",
             o.vocab_size, "; use more text for the full vocabulary");
  }
  return stats;
}

}  // namespace pajama
