// Reads pretraining corpora record by record, streaming, in bounded memory:
//   *.jsonl, *.json, *.ndjson   one JSON object per line (RedPajama, SlimPajama, SkyPile);
//                               the text is the string field `text_key` ("text", "content", ...)
//   *.txt                       plain UTF-8 text; documents are separated by one or more blank
//                               lines (CLUECorpus's pre-training layout). A file without blank
//                               lines is therefore one document (one-document-per-file corpora).
// each optionally compressed: *.gz (gzip, concatenated members allowed) or *.zst (zstd frames).
// The reader only splits records; extract_text() parses and validates one, so the
// expensive part can run on worker threads. A truncated or corrupt compressed file
// throws DataError naming the file.
//   CorpusReader r("c4-train.00000.jsonl.zst");
//   RawRecord rec;
//   while (r.next(rec)) { std::string text; if (extract_text(r.format(), rec.data, "text", text) == RecordError::kNone) ... }
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pajama {

enum class CorpusFormat { kJsonLines, kText };
enum class Compression { kNone, kGzip, kZstd };

struct CorpusFileKind {
  CorpusFormat format = CorpusFormat::kJsonLines;
  Compression compression = Compression::kNone;
};
// From the file name (see the header comment); throws ConfigError for other names.
CorpusFileKind corpus_file_kind(const std::string& path);
bool is_corpus_file_name(const std::string& path);

// Expands command-line inputs in order: a file is kept as is (any name is checked by
// corpus_file_kind), a glob pattern (* ? [) expands to its sorted matches, a directory to
// the corpus files below it, sorted. Throws ConfigError when an input matches nothing.
std::vector<std::string> expand_corpus_inputs(const std::vector<std::string>& inputs);

// One unparsed record: a JSONL line or a text document (its lines joined by '\n').
struct RawRecord {
  std::string data;
  int64_t line = 0;  // 1-based line where the record starts
};

class ByteSource;

class CorpusReader {
 public:
  explicit CorpusReader(const std::string& path);
  ~CorpusReader();
  CorpusReader(const CorpusReader&) = delete;
  CorpusReader& operator=(const CorpusReader&) = delete;

  // Next record; false at the end of the file. Empty JSONL lines are not records.
  bool next(RawRecord& rec);
  const std::string& path() const { return path_; }
  CorpusFormat format() const { return kind_.format; }
  // Bytes consumed from the file on disk (compressed bytes for .gz/.zst), for progress.
  uint64_t file_bytes_read() const;

 private:
  bool next_line(std::string& line);
  std::string path_;
  CorpusFileKind kind_;
  std::unique_ptr<ByteSource> source_;
  std::string buf_;
  size_t pos_ = 0;
  bool eof_ = false;
  int64_t line_no_ = 0;
};

enum class RecordError { kNone, kInvalidJson, kMissingText, kInvalidUtf8, kEmpty };
// Stable names used in summaries and the sidecar: "invalid_json", "missing_text", ...
const char* record_error_name(RecordError error);
inline constexpr int kNumRecordErrors = 5;

// Validates one raw record and extracts its text into `text`. JSON lines must be an
// object whose `text_key` is a string; text must be valid UTF-8 and not empty.
RecordError extract_text(CorpusFormat format, std::string_view raw, const std::string& text_key, std::string& text);

bool is_valid_utf8(std::string_view s);

}  // namespace pajama
