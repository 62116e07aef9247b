#include "data/corpus_reader.h"

#include <glob.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace pajama {

namespace fs = std::filesystem;

namespace {

constexpr size_t kReadChunk = size_t{1} << 20;

bool is_blank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

bool is_whitespace_only(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; });
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Byte sources: plain, gzip, zstd. read() returns 0 only at a clean end of the data and
// throws DataError naming the file on truncation or corruption.

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual size_t read(char* out, size_t cap) = 0;
  virtual uint64_t file_bytes_read() const = 0;
};

namespace {

class PlainSource : public ByteSource {
 public:
  explicit PlainSource(const std::string& path) : path_(path) {
    f_ = std::fopen(path.c_str(), "rb");
    PAJAMA_CHECK_AS(DataError, f_ != nullptr, "cannot open ", path, ": ", std::strerror(errno));
  }
  ~PlainSource() override { std::fclose(f_); }
  size_t read(char* out, size_t cap) override {
    const size_t n = std::fread(out, 1, cap, f_);
    PAJAMA_CHECK_AS(DataError, n > 0 || !std::ferror(f_), "reading ", path_, ": ", std::strerror(errno));
    consumed_ += n;
    return n;
  }
  uint64_t file_bytes_read() const override { return consumed_; }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  uint64_t consumed_ = 0;
};

class GzipSource : public ByteSource {
 public:
  explicit GzipSource(const std::string& path) : path_(path) {
    gz_ = gzopen(path.c_str(), "rb");
    PAJAMA_CHECK_AS(DataError, gz_ != nullptr, "cannot open ", path, ": ", std::strerror(errno));
    gzbuffer(gz_, 1 << 18);
  }
  ~GzipSource() override { gzclose(gz_); }
  size_t read(char* out, size_t cap) override {
    const int n = gzread(gz_, out, static_cast<unsigned>(std::min<size_t>(cap, 1u << 30)));
    if (first_read_) {
      first_read_ = false;
      // zlib reads non-gzip data transparently; a .gz name promising gzip must hold gzip.
      PAJAMA_CHECK_AS(DataError, n <= 0 || !gzdirect(gz_), path_,
                      ": not gzip-compressed (no gzip header); rename it without .gz or compress it");
    }
    int err = Z_OK;
    const char* msg = n <= 0 ? gzerror(gz_, &err) : "";
    // At the end of the file zlib returns 0 and leaves Z_BUF_ERROR set if the last
    // member was cut short; -1 means corrupt data (bad header, data or check value).
    if (n < 0 || err != Z_OK) {
      PAJAMA_FAIL_AS(DataError, path_, ": gzip data is ",
                     err == Z_BUF_ERROR ? "truncated (the file ends inside a gzip member)" : "corrupt", " (zlib: ", msg,
                     "); re-download or re-compress the file");
    }
    return static_cast<size_t>(n);
  }
  uint64_t file_bytes_read() const override { return static_cast<uint64_t>(std::max<z_off_t>(0, gzoffset(gz_))); }

 private:
  std::string path_;
  gzFile gz_ = nullptr;
  bool first_read_ = true;
};

class ZstdSource : public ByteSource {
 public:
  explicit ZstdSource(const std::string& path) : path_(path), in_buf_(ZSTD_DStreamInSize()) {
    f_ = std::fopen(path.c_str(), "rb");
    PAJAMA_CHECK_AS(DataError, f_ != nullptr, "cannot open ", path, ": ", std::strerror(errno));
    ctx_ = ZSTD_createDCtx();
    PAJAMA_CHECK(ctx_ != nullptr, "ZSTD_createDCtx failed");
  }
  ~ZstdSource() override {
    ZSTD_freeDCtx(ctx_);
    std::fclose(f_);
  }
  size_t read(char* out, size_t cap) override {
    ZSTD_outBuffer output{out, cap, 0};
    while (output.pos == 0) {
      if (in_.pos == in_.size) {
        const size_t n = std::fread(in_buf_.data(), 1, in_buf_.size(), f_);
        PAJAMA_CHECK_AS(DataError, n > 0 || !std::ferror(f_), "reading ", path_, ": ", std::strerror(errno));
        consumed_ += n;
        if (n == 0) {
          // End of the file: fine only between frames (the last call finished a frame).
          PAJAMA_CHECK_AS(DataError, consumed_ > 0, path_, ": empty file is not zstd data");
          PAJAMA_CHECK_AS(DataError, frame_done_, path_,
                          ": zstd data is truncated (the file ends inside a frame); re-download or re-compress it");
          return 0;
        }
        in_ = ZSTD_inBuffer{in_buf_.data(), n, 0};
      }
      const size_t ret = ZSTD_decompressStream(ctx_, &output, &in_);
      PAJAMA_CHECK_AS(DataError, !ZSTD_isError(ret), path_, ": zstd data is corrupt (", ZSTD_getErrorName(ret),
                      "); re-download or re-compress the file");
      frame_done_ = ret == 0;
    }
    return output.pos;
  }
  uint64_t file_bytes_read() const override { return consumed_; }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  ZSTD_DCtx* ctx_ = nullptr;
  std::vector<char> in_buf_;
  ZSTD_inBuffer in_{nullptr, 0, 0};
  uint64_t consumed_ = 0;
  bool frame_done_ = false;
};

}  // namespace

// ---------------------------------------------------------------------------------------

bool is_corpus_file_name(const std::string& path) {
  std::string name = fs::path(path).filename().string();
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  for (std::string_view z : {".gz", ".zst"}) {
    if (name.ends_with(z)) {
      name.resize(name.size() - z.size());
      break;
    }
  }
  return name.ends_with(".jsonl") || name.ends_with(".json") || name.ends_with(".ndjson") ||
         name.ends_with(".txt");
}

CorpusFileKind corpus_file_kind(const std::string& path) {
  std::string name = fs::path(path).filename().string();
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  CorpusFileKind kind;
  if (name.ends_with(".gz")) {
    kind.compression = Compression::kGzip;
    name.resize(name.size() - 3);
  } else if (name.ends_with(".zst")) {
    kind.compression = Compression::kZstd;
    name.resize(name.size() - 4);
  }
  if (name.ends_with(".jsonl") || name.ends_with(".json") || name.ends_with(".ndjson")) {
    kind.format = CorpusFormat::kJsonLines;
  } else if (name.ends_with(".txt")) {
    kind.format = CorpusFormat::kText;
  } else {
    PAJAMA_FAIL_AS(ConfigError, path,
                   ": unsupported input name; expected .jsonl/.json/.ndjson (JSON lines) or .txt (plain text), "
                   "optionally with .gz or .zst");
  }
  return kind;
}

std::vector<std::string> expand_corpus_inputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> out;
  for (const auto& input : inputs) {
    std::error_code ec;
    if (fs::is_directory(input, ec)) {
      std::vector<std::string> found;
      for (const auto& e : fs::recursive_directory_iterator(input, fs::directory_options::follow_directory_symlink)) {
        if (e.is_regular_file() && is_corpus_file_name(e.path().string())) found.push_back(e.path().string());
      }
      PAJAMA_CHECK_AS(ConfigError, !found.empty(), input,
                      ": directory holds no corpus files (.jsonl/.json/.ndjson/.txt, optionally .gz/.zst)");
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else if (fs::exists(input, ec)) {
      corpus_file_kind(input);  // rejects unsupported names now, before any work
      out.push_back(input);
    } else if (input.find_first_of("*?[") != std::string::npos) {
      glob_t g{};
      const int rc = ::glob(input.c_str(), 0, nullptr, &g);
      std::vector<std::string> found;
      if (rc == 0) {
        for (size_t i = 0; i < g.gl_pathc; ++i) {
          if (fs::is_regular_file(g.gl_pathv[i], ec)) found.emplace_back(g.gl_pathv[i]);
        }
      }
      ::globfree(&g);
      PAJAMA_CHECK_AS(ConfigError, !found.empty(), "input pattern ", input, " matches no files");
      std::sort(found.begin(), found.end());
      for (const auto& f : found) corpus_file_kind(f);
      out.insert(out.end(), found.begin(), found.end());
    } else {
      PAJAMA_FAIL_AS(ConfigError, "input ", input, " does not exist");
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------

CorpusReader::CorpusReader(const std::string& path) : path_(path), kind_(corpus_file_kind(path)) {
  switch (kind_.compression) {
    case Compression::kNone: source_ = std::make_unique<PlainSource>(path); break;
    case Compression::kGzip: source_ = std::make_unique<GzipSource>(path); break;
    case Compression::kZstd: source_ = std::make_unique<ZstdSource>(path); break;
  }
}

CorpusReader::~CorpusReader() = default;

uint64_t CorpusReader::file_bytes_read() const { return source_->file_bytes_read(); }

bool CorpusReader::next_line(std::string& line) {
  line.clear();
  for (;;) {
    const size_t nl = buf_.find('\n', pos_);
    if (nl != std::string::npos) {
      line.append(buf_, pos_, nl - pos_);
      pos_ = nl + 1;
      ++line_no_;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return true;
    }
    line.append(buf_, pos_, std::string::npos);
    buf_.clear();
    pos_ = 0;
    if (eof_) {
      if (line.empty()) return false;
      ++line_no_;  // last line without a trailing newline
      if (line.back() == '\r') line.pop_back();
      return true;
    }
    buf_.resize(kReadChunk);
    const size_t n = source_->read(buf_.data(), buf_.size());
    buf_.resize(n);
    if (n == 0) eof_ = true;
  }
}

bool CorpusReader::next(RawRecord& rec) {
  rec.data.clear();
  if (kind_.format == CorpusFormat::kJsonLines) {
    while (next_line(rec.data)) {
      if (!is_blank(rec.data)) {
        rec.line = line_no_;
        return true;
      }
    }
    return false;
  }
  // Text: skip blank lines, then gather lines up to the next blank line or the end.
  std::string line;
  bool in_doc = false;
  while (next_line(line)) {
    if (is_blank(line)) {
      if (in_doc) return true;
      continue;
    }
    if (!in_doc) {
      in_doc = true;
      rec.line = line_no_;
    } else {
      rec.data.push_back('\n');
    }
    rec.data.append(line);
  }
  return in_doc;
}

// ---------------------------------------------------------------------------------------

const char* record_error_name(RecordError error) {
  switch (error) {
    case RecordError::kNone: return "ok";
    case RecordError::kInvalidJson: return "invalid_json";
    case RecordError::kMissingText: return "missing_text";
    case RecordError::kInvalidUtf8: return "invalid_utf8";
    case RecordError::kEmpty: return "empty";
  }
  return "unknown";
}

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    // Fast path: 8 ASCII bytes at a time.
    if (end - p >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      if ((w & 0x8080808080808080ull) == 0) {
        p += 8;
        continue;
      }
    }
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n = 0;
    uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;  // continuation byte, overlong lead (C0/C1) or beyond U+10FFFF
    }
    if (end - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    // Reject overlong forms, surrogates and values above U+10FFFF.
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    p += n + 1;
  }
  return true;
}

RecordError extract_text(CorpusFormat format, std::string_view raw, const std::string& text_key, std::string& text) {
  text.clear();
  if (!is_valid_utf8(raw)) return RecordError::kInvalidUtf8;
  if (format == CorpusFormat::kText) {
    text.assign(raw);
  } else {
    const auto j = nlohmann::json::parse(raw, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return RecordError::kInvalidJson;
    if (!j.is_object()) return RecordError::kMissingText;
    const auto it = j.find(text_key);
    if (it == j.end() || !it->is_string()) return RecordError::kMissingText;
    text = it->get_ref<const std::string&>();
  }
  if (is_whitespace_only(text)) return RecordError::kEmpty;
  return RecordError::kNone;
}

}  // namespace pajama
