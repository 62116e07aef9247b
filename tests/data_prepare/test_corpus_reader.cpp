// Corpus readers: file kinds, glob/directory expansion, JSONL and blank-line text
// records, gzip and zstd streams (concatenated, truncated, corrupt), UTF-8 validation
// and record extraction.
#include <gtest/gtest.h>
#include <zlib.h>

#include "core/error.h"
#include "data/corpus_reader.h"
#include "prepare_test_util.h"

namespace pajama {
namespace {

using testing::quote;
using testing::run_command;
using testing::write_file;

std::vector<RawRecord> read_all(const std::string& path) {
  CorpusReader r(path);
  std::vector<RawRecord> out;
  RawRecord rec;
  while (r.next(rec)) out.push_back(rec);
  return out;
}

TEST(CorpusReader, FileKinds) {
  EXPECT_EQ(corpus_file_kind("a/b.jsonl").format, CorpusFormat::kJsonLines);
  EXPECT_EQ(corpus_file_kind("b.json.gz").compression, Compression::kGzip);
  EXPECT_EQ(corpus_file_kind("c4-train.00000-of-01024.JSONL.ZST").compression, Compression::kZstd);
  EXPECT_EQ(corpus_file_kind("x.txt.zst").format, CorpusFormat::kText);
  EXPECT_THROW(corpus_file_kind("x.parquet"), ConfigError);
  EXPECT_THROW(corpus_file_kind("x.gz"), ConfigError);
}

TEST(CorpusReader, JsonLinesSkipBlankLinesAndKeepLineNumbers) {
  const testing::TempDir tmp("reader");
  const std::filesystem::path& dir = tmp.path();
  write_file(dir / "a.jsonl", "{\"text\":\"one\"}\n\n  \r\n{\"text\":\"two\"}\r\n{\"text\":\"three\"}");
  const auto recs = read_all((dir / "a.jsonl").string());
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].line, 1);
  EXPECT_EQ(recs[1].line, 4);
  EXPECT_EQ(recs[1].data, "{\"text\":\"two\"}");  // CR stripped
  EXPECT_EQ(recs[2].line, 5);                     // last line without newline
}

TEST(CorpusReader, TextDocumentsAreSeparatedByBlankLines) {
  const testing::TempDir tmp("reader");
  const std::filesystem::path& dir = tmp.path();
  write_file(dir / "a.txt", "\n\n第一句。\n第二句。\n\n \t\n\nsecond doc\r\nline 2\n\n\nthird\n");
  const auto recs = read_all((dir / "a.txt").string());
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].data, "第一句。\n第二句。");
  EXPECT_EQ(recs[0].line, 3);
  EXPECT_EQ(recs[1].data, "second doc\nline 2");
  EXPECT_EQ(recs[1].line, 8);
  EXPECT_EQ(recs[2].data, "third");
  write_file(dir / "one.txt", "a whole file\nwithout blank lines\nis one document");
  ASSERT_EQ(read_all((dir / "one.txt").string()).size(), 1u);
}

TEST(CorpusReader, GzipAndZstdStreamsIncludingConcatenatedMembers) {
  const testing::TempDir tmp("reader");
  const std::filesystem::path& dir = tmp.path();
  std::string body;
  for (int i = 0; i < 20000; ++i) body += "{\"text\":\"record " + std::to_string(i) + "\"}\n";
  write_file(dir / "a.jsonl", body.substr(0, body.size() / 2));
  write_file(dir / "b.jsonl", body.substr(body.size() / 2));
  const std::string a = quote((dir / "a.jsonl").string()), b = quote((dir / "b.jsonl").string());
  ASSERT_EQ(run_command("gzip -c " + a + " > " + quote((dir / "c.jsonl.gz").string()) + " && gzip -c " + b + " >> " +
                    quote((dir / "c.jsonl.gz").string())).exit_code, 0);
  ASSERT_EQ(run_command("zstd -q -c " + a + " > " + quote((dir / "c.jsonl.zst").string()) + " && zstd -q -c " + b +
                    " >> " + quote((dir / "c.jsonl.zst").string())).exit_code, 0);
  for (const char* name : {"c.jsonl.gz", "c.jsonl.zst"}) {
    const auto recs = read_all((dir / name).string());
    ASSERT_EQ(recs.size(), 20000u) << name;
    EXPECT_EQ(recs[12345].data, "{\"text\":\"record 12345\"}") << name;
    EXPECT_EQ(recs[12345].line, 12346) << name;
  }
}

TEST(CorpusReader, TruncatedOrCorruptCompressedInputNamesTheFile) {
  const testing::TempDir tmp("reader");
  const std::filesystem::path& dir = tmp.path();
  std::string body;
  for (int i = 0; i < 50000; ++i) body += "{\"text\":\"record " + std::to_string(i * 7919) + "\"}\n";
  write_file(dir / "a.jsonl", body);
  const std::string a = quote((dir / "a.jsonl").string());
  ASSERT_EQ(run_command("gzip -c " + a + " > " + quote((dir / "full.jsonl.gz").string())).exit_code, 0);
  ASSERT_EQ(run_command("zstd -q -c " + a + " > " + quote((dir / "full.jsonl.zst").string())).exit_code, 0);
  for (const std::string ext : {".jsonl.gz", ".jsonl.zst"}) {
    const std::string full = testing::read_file(dir / ("full" + ext));
    write_file(dir / ("cut" + ext), full.substr(0, full.size() / 2));
    const std::string cut = (dir / ("cut" + ext)).string();
    try {
      read_all(cut);
      ADD_FAILURE() << "no error for truncated " << cut;
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find(cut), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    }
    std::string bad = full;
    for (size_t i = bad.size() / 3; i < bad.size() / 3 + 64; ++i) bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    write_file(dir / ("bad" + ext), bad);
    EXPECT_THROW(read_all((dir / ("bad" + ext)).string()), DataError) << ext;
  }
  write_file(dir / "plain.jsonl.gz", body);  // not gzip at all
  EXPECT_THROW(read_all((dir / "plain.jsonl.gz").string()), DataError);
}

TEST(CorpusReader, ExpandInputsFilesGlobsAndDirectories) {
  const testing::TempDir tmp("reader");
  const std::filesystem::path& dir = tmp.path();
  std::filesystem::create_directories(dir / "sub" / "deep");
  for (const char* n : {"b.jsonl", "a.jsonl.zst", "sub/c.txt", "sub/deep/d.json.gz", "sub/notes.md"}) {
    write_file(dir / n, "");
  }
  const auto files = expand_corpus_inputs({(dir / "b.jsonl").string(), (dir / "*.zst").string(), (dir / "sub").string()});
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(files[0], (dir / "b.jsonl").string());
  EXPECT_EQ(files[1], (dir / "a.jsonl.zst").string());
  EXPECT_EQ(files[2], (dir / "sub" / "c.txt").string());
  EXPECT_EQ(files[3], (dir / "sub" / "deep" / "d.json.gz").string());
  EXPECT_THROW(expand_corpus_inputs({(dir / "*.parquet").string()}), ConfigError);
  EXPECT_THROW(expand_corpus_inputs({(dir / "missing.jsonl").string()}), ConfigError);
  EXPECT_THROW(expand_corpus_inputs({(dir / "sub" / "notes.md").string()}), ConfigError);
}

TEST(CorpusReader, Utf8Validation) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii that is longer than eight bytes"));
  EXPECT_TRUE(is_valid_utf8("你好，世界 😀 é"));
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("abc\x80"));
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xe4\xbd"));          // cut in the middle
}

TEST(CorpusReader, ExtractText) {
  std::string t;
  EXPECT_EQ(extract_text(CorpusFormat::kJsonLines, R"({"text":"hi","meta":{"a":1}})", "text", t), RecordError::kNone);
  EXPECT_EQ(t, "hi");
  EXPECT_EQ(extract_text(CorpusFormat::kJsonLines, R"({"content":"\u4f60\u597d\n"})", "content", t), RecordError::kNone);
  EXPECT_EQ(t, "你好\n");
  EXPECT_EQ(extract_text(CorpusFormat::kJsonLines, R"({"text":"hi")", "text", t), RecordError::kInvalidJson);
  EXPECT_EQ(extract_text(CorpusFormat::kJsonLines, R"({"body":"hi"})", "text", t), RecordError::kMissingText);
  EXPECT_EQ(extract_text(CorpusFormat::kJsonLines, R"({"text":42})", "text", t), RecordError::kMissingText);
  EXPECT_EQ(extract_text(CorpusFormat::kJsonLines, R"(["text"])", "text", t), RecordError::kMissingText);
  EXPECT_EQ(extract_text(CorpusFormat::kJsonLines, "{\"text\":\"bad \xff\"}", "text", t), RecordError::kInvalidUtf8);
  EXPECT_EQ(extract_text(CorpusFormat::kJsonLines, R"({"text":" \n\t"})", "text", t), RecordError::kEmpty);
  EXPECT_EQ(extract_text(CorpusFormat::kJsonLines, R"({"text":""})", "text", t), RecordError::kEmpty);
  EXPECT_EQ(extract_text(CorpusFormat::kText, "raw \xe4 text", "text", t), RecordError::kInvalidUtf8);
  EXPECT_EQ(extract_text(CorpusFormat::kText, "第一句。\n第二句。", "text", t), RecordError::kNone);
}

}  // namespace
}  // namespace pajama
