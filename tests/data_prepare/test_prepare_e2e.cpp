// `pajama tokenizer train` and `pajama prepare` end to end through the real executable
// on the bilingual sample corpus: tokens equal SentencePiece's own encoder plus the
// BOS/EOS policy, output is identical across worker counts and compressions, malformed
// input is skipped and counted (or fatal with --strict), truncated input and interrupts
// leave nothing under the output names. Plus the golden LLaMA ids when the real
// tokenizer is available.
#include <gtest/gtest.h>

#include <cstdlib>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "core/error.h"
#include "core/hash.h"
#include "data/indexed_dataset.h"
#include "data/shard_metadata.h"
#include "data/tokenizer.h"
#include "prepare_test_util.h"
#include "common/llama_tokenizer.h"

extern char** environ;

namespace pajama {
namespace {

namespace fs = std::filesystem;
using testing::quote;
using testing::run_pajama;

std::vector<std::string> outputs_named(const fs::path& dir, const std::string& stem) {
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.find(stem) != std::string::npos) found.push_back(n);
  }
  std::sort(found.begin(), found.end());
  return found;
}

std::string prepare_args(const std::vector<fs::path>& inputs, const fs::path& tok, const fs::path& out,
                         const std::string& extra = "") {
  std::string a = "prepare --no-progress --input";
  for (const auto& i : inputs) {
    a += ' ';
    a += quote(i.string());
  }
  return a + " --tokenizer " + quote(tok.string()) + " --output " + quote(out.string()) + " " + extra;
}

TEST(Prepare, TokensEqualSentencePieceWithEosPolicyInBothLanguages) {
  const auto& s = testing::sample_corpus();
  ASSERT_FALSE(s.tokenizer.empty());
  const testing::TempDir tmp("prep");
  const std::filesystem::path& dir = tmp.path();
  auto r = run_pajama(prepare_args({s.en, s.zh}, s.tokenizer, dir / "out", "--workers 2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("bytes per token"), std::string::npos) << r.output;

  std::vector<std::string> texts = s.en_texts;
  texts.insert(texts.end(), s.zh_texts.begin(), s.zh_texts.end());
  std::vector<std::vector<int32_t>> want;
  std::string why;
  ASSERT_TRUE(testing::reference_encode(s.tokenizer, texts, want, why)) << why;

  const auto got = testing::ref_read_indexed((dir / "out").string());
  EXPECT_EQ(got.dtype, 8);  // uint16 for a small vocabulary
  ASSERT_EQ(got.docs.size(), texts.size());
  size_t mismatches = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<int64_t> expect(want[i].begin(), want[i].end());
    expect.push_back(2);  // default policy: EOS appended, no BOS
    if (got.docs[i] != expect && mismatches++ < 3) ADD_FAILURE() << "document " << i << " differs: " << texts[i];
  }
  EXPECT_EQ(mismatches, 0u);

  // Sidecar: tokenizer hash, vocab, policy, counts.
  const auto meta = read_shard_metadata((dir / "out").string());
  ASSERT_TRUE(meta.has_value());
  EXPECT_EQ(meta->tokenizer_sha256, sha256_file_hex(s.tokenizer));
  EXPECT_EQ(meta->vocab_size, Tokenizer(s.tokenizer.string()).vocab_size());
  EXPECT_TRUE(meta->add_eos);
  EXPECT_FALSE(meta->add_bos);
  EXPECT_EQ(meta->eos_id, 2);
  EXPECT_EQ(meta->bos_id, -1);
  EXPECT_EQ(meta->documents, static_cast<int64_t>(texts.size()));
  EXPECT_EQ(meta->dtype, "uint16");
  EXPECT_EQ(meta->sources, (std::vector<std::string>{s.en.string(), s.zh.string()}));
  IndexedDataset ds((dir / "out").string());
  EXPECT_EQ(meta->tokens, ds.num_tokens());

  // BOS on, EOS off.
  r = run_pajama(prepare_args({s.zh}, s.tokenizer, dir / "bos", "--bos --no-eos --workers 1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto bos = testing::ref_read_indexed((dir / "bos").string());
  ASSERT_EQ(bos.docs.size(), s.zh_texts.size());
  for (size_t i = 0; i < s.zh_texts.size(); ++i) {
    std::vector<int64_t> expect{1};
    const auto& w = want[s.en_texts.size() + i];
    expect.insert(expect.end(), w.begin(), w.end());
    ASSERT_EQ(bos.docs[i], expect) << "zh document " << i;
  }
}

TEST(Prepare, ChineseRoundTripsThroughTheTokenizer) {
  const auto& s = testing::sample_corpus();
  ASSERT_FALSE(s.tokenizer.empty());
  const Tokenizer tok(s.tokenizer.string());
  EXPECT_EQ(tok.unk_id(), 0);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.pad_id(), -1);
  EXPECT_EQ(tok.piece(3), "<0x00>");  // byte fallback pieces follow the specials, as in LLaMA
  for (const auto& t : s.zh_texts) ASSERT_EQ(tok.decode(tok.encode(t)), t);
  const std::string rare = "龘靐齉 😀 2024年";  // characters outside the training text: byte fallback
  const auto ids = tok.encode(rare);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok.unk_id()), 0);
  EXPECT_EQ(tok.decode(ids), rare);
}

TEST(Prepare, IdenticalForAnyWorkerCountAndCompression) {
  const auto& s = testing::sample_corpus();
  ASSERT_FALSE(s.tokenizer.empty());
  const testing::TempDir tmp("prep");
  const std::filesystem::path& dir = tmp.path();
  const std::string small_batches = "--batch-bytes 4096";
  struct Run {
    std::string name;
    std::vector<fs::path> inputs;
    std::string extra;
  };
  const std::vector<Run> runs = {
      {"w1", {s.en, s.zh}, "--workers 1 " + small_batches},
      {"w2", {s.en, s.zh}, "--workers 2 " + small_batches},
      {"w3", {s.en, s.zh}, "--workers 3 --batch-bytes 100000"},
      {"gz", {s.dir / "en.jsonl.gz", s.dir / "zh.jsonl.gz"}, "--workers 2 " + small_batches},
      {"zst", {s.dir / "en.jsonl.zst", s.dir / "zh.jsonl.zst"}, "--workers 2 " + small_batches},
  };
  for (const auto& run : runs) {
    const auto r = run_pajama(prepare_args(run.inputs, s.tokenizer, dir / run.name, run.extra));
    ASSERT_EQ(r.exit_code, 0) << run.name << ": " << r.output;
  }
  const std::string bin = testing::read_file(dir / "w1.bin"), idx = testing::read_file(dir / "w1.idx");
  ASSERT_GT(bin.size(), 1000u);
  for (const auto& run : runs) {
    EXPECT_EQ(testing::read_file(dir / (run.name + ".bin")), bin) << run.name;
    EXPECT_EQ(testing::read_file(dir / (run.name + ".idx")), idx) << run.name;
  }
  // Sidecars differ only in nothing for the same inputs.
  EXPECT_EQ(testing::read_file(dir / "w1.pajama.json"), testing::read_file(dir / "w2.pajama.json"));

  // Plain text: the same documents, blank-line separated, give the same tokens.
  std::string txt;
  std::vector<std::string> kept;
  std::string jsonl;
  for (const auto& t : s.zh_texts) {
    if (t.find("\n\n") != std::string::npos) continue;  // would split into two text documents
    kept.push_back(t);
    txt += t + "\n\n\n";
  }
  ASSERT_GT(kept.size(), 100u);
  testing::write_file(dir / "zh.txt", txt);
  auto r = run_pajama(prepare_args({dir / "zh.txt"}, s.tokenizer, dir / "txt", "--workers 2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::vector<int32_t>> want;
  std::string why;
  ASSERT_TRUE(testing::reference_encode(s.tokenizer, kept, want, why)) << why;
  const auto got = testing::ref_read_indexed((dir / "txt").string());
  ASSERT_EQ(got.docs.size(), kept.size());
  for (size_t i = 0; i < kept.size(); ++i) {
    std::vector<int64_t> expect(want[i].begin(), want[i].end());
    expect.push_back(2);
    ASSERT_EQ(got.docs[i], expect) << "text document " << i;
  }
}

TEST(Prepare, ShardsRespectDocumentsAndConcatenateToTheSingleOutput) {
  const auto& s = testing::sample_corpus();
  ASSERT_FALSE(s.tokenizer.empty());
  const testing::TempDir tmp("prep");
  const std::filesystem::path& dir = tmp.path();
  ASSERT_EQ(run_pajama(prepare_args({s.zh}, s.tokenizer, dir / "one")).exit_code, 0);
  // A stale shard from an earlier, larger run must not survive next to the new ones.
  testing::write_file(dir / "sh_00999.idx", "stale");
  auto r = run_pajama(prepare_args({s.zh}, s.tokenizer, dir / "sh", "--shard-size 20000"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto single = testing::ref_read_indexed((dir / "one").string());
  std::vector<std::vector<int64_t>> joined;
  int64_t docs = 0;
  int shards = 0;
  for (;; ++shards) {
    char name[32];
    std::snprintf(name, sizeof name, "sh_%05d", shards);
    if (!fs::exists(dir / (std::string(name) + ".idx"))) break;
    const auto part = testing::ref_read_indexed((dir / name).string());
    int64_t tokens = 0;
    for (const auto& d : part.docs) tokens += static_cast<int64_t>(d.size());
    EXPECT_TRUE(tokens <= 20000 || part.docs.size() == 1) << name << " has " << tokens << " tokens";
    const auto meta = read_shard_metadata((dir / name).string());
    ASSERT_TRUE(meta.has_value()) << name;
    EXPECT_EQ(meta->documents, static_cast<int64_t>(part.docs.size()));
    EXPECT_EQ(meta->tokens, tokens);
    docs += meta->documents;
    joined.insert(joined.end(), part.docs.begin(), part.docs.end());
  }
  EXPECT_GT(shards, 2);
  EXPECT_EQ(docs, static_cast<int64_t>(single.docs.size()));
  EXPECT_EQ(joined, single.docs);
  EXPECT_FALSE(fs::exists(dir / "sh.idx"));
  EXPECT_FALSE(fs::exists(dir / "sh_00999.idx")) << "stale shard kept";
}

TEST(Prepare, MalformedRecordsAreSkippedCountedAndFatalWithStrict) {
  const auto& s = testing::sample_corpus();
  ASSERT_FALSE(s.tokenizer.empty());
  const testing::TempDir tmp("prep");
  const std::filesystem::path& dir = tmp.path();
  const fs::path in = dir / "mixed.jsonl";
  testing::write_file(in,
                    "{\"text\": \"good one\"}\n"              // 1
                    "{\"text\": \"broken\"\n"                 // 2 invalid_json
                    "{\"content\": \"wrong key\"}\n"          // 3 missing_text
                    "{\"text\": 17}\n"                        // 4 missing_text (not a string)
                    "{\"text\": \"bad \xff byte\"}\n"         // 5 invalid_utf8
                    "{\"text\": \"\"}\n"                      // 6 empty
                    "\n"                                      // 7 blank line: not a record
                    "{\"text\": \"好的第二条\"}\n"            // 8
                    "[1, 2, 3]\n"                             // 9 missing_text
                    "{\"text\": \"good three\"}\n");          // 10
  auto r = run_pajama(prepare_args({in}, s.tokenizer, dir / "out", "--workers 2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The counts from the shard's sidecar (FORMATS: <prefix>.pajama.json), the reasons from
  // the summary, the only place that breaks them down.
  const auto sidecar = nlohmann::json::parse(testing::read_file(dir / "out.pajama.json"));
  EXPECT_EQ(sidecar.at("documents"), 3) << sidecar.dump();
  EXPECT_EQ(sidecar.at("skipped"), 6) << sidecar.dump();
  EXPECT_NE(r.output.find("invalid_json 1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("missing_text 3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("invalid_utf8 1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("empty 1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(in.string() + ":2:"), std::string::npos) << r.output;  // first ones by file:line
  EXPECT_NE(r.output.find(in.string() + ":5:"), std::string::npos) << r.output;
  const auto got = testing::ref_read_indexed((dir / "out").string());
  const Tokenizer tok(s.tokenizer.string());
  ASSERT_EQ(got.docs.size(), 3u);
  auto with_eos = [&](const std::string& t) {
    auto ids = tok.encode(t);
    std::vector<int64_t> v(ids.begin(), ids.end());
    v.push_back(2);
    return v;
  };
  EXPECT_EQ(got.docs[0], with_eos("good one"));
  EXPECT_EQ(got.docs[1], with_eos("好的第二条"));
  EXPECT_EQ(got.docs[2], with_eos("good three"));
  const auto meta = read_shard_metadata((dir / "out").string());
  ASSERT_TRUE(meta.has_value());
  EXPECT_EQ(meta->skipped, 6);

  // --min-doc-tokens drops short documents without calling them malformed.
  r = run_pajama(prepare_args({in}, s.tokenizer, dir / "long", "--min-doc-tokens 4"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("too_short"), std::string::npos) << r.output;
  EXPECT_LT(testing::ref_read_indexed((dir / "long").string()).docs.size(), 3u);

  // --strict: exit 1 naming file:line of the first bad record, nothing written.
  r = run_pajama(prepare_args({in}, s.tokenizer, dir / "strict", "--strict --workers 2"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(in.string() + ":2: malformed record (invalid_json)"), std::string::npos) << r.output;
  EXPECT_EQ(join(outputs_named(dir, "strict"), " "), "") << "left behind after --strict failure";

  // Nothing usable at all is an error too.
  testing::write_file(dir / "none.jsonl", "{\"body\": \"x\"}\n");
  r = run_pajama(prepare_args({dir / "none.jsonl"}, s.tokenizer, dir / "none"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--text-key"), std::string::npos) << r.output;
  EXPECT_EQ(join(outputs_named(dir, "none."), " "), "none.jsonl");
}

TEST(Prepare, TruncatedCompressedInputFailsNamingTheFileAndLeavesNothing) {
  const auto& s = testing::sample_corpus();
  ASSERT_FALSE(s.tokenizer.empty());
  const testing::TempDir tmp("prep");
  const std::filesystem::path& dir = tmp.path();
  for (const std::string ext : {".jsonl.gz", ".jsonl.zst"}) {
    const std::string full = testing::read_file(s.dir / ("en" + ext));
    const fs::path cut = dir / ("cut" + ext);
    testing::write_file(cut, full.substr(0, full.size() * 2 / 3));
    const auto r = run_pajama(prepare_args({s.zh, cut}, s.tokenizer, dir / ("out" + ext), "--workers 2"));
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find(cut.string()), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("truncated"), std::string::npos) << r.output;
    EXPECT_EQ(join(outputs_named(dir, "out"), " "), "") << ext;
    // Sharded: earlier shards are complete before the error, yet none may appear.
    const auto r2 = run_pajama(prepare_args({s.zh, cut}, s.tokenizer, dir / ("sh" + ext), "--shard-size 5000"));
    EXPECT_EQ(r2.exit_code, 1) << r2.output;
    EXPECT_EQ(join(outputs_named(dir, "sh"), " "), "") << ext;
  }
}

TEST(Prepare, UsageErrorsExitWithTwo) {
  const auto& s = testing::sample_corpus();
  ASSERT_FALSE(s.tokenizer.empty());
  const testing::TempDir tmp("prep");
  const std::filesystem::path& dir = tmp.path();
  auto r = run_pajama(prepare_args({dir / "missing.jsonl"}, s.tokenizer, dir / "out"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("missing.jsonl"), std::string::npos) << r.output;
  testing::write_file(dir / "data.parquet", "x");
  r = run_pajama(prepare_args({dir / "data.parquet"}, s.tokenizer, dir / "out"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = run_pajama(prepare_args({s.zh}, s.tokenizer, dir / "out", "--shard-size -5"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = run_pajama("prepare --input " + quote(s.zh.string()));  // missing required options: CLI11's usage error
  EXPECT_NE(r.exit_code, 0) << r.output;
  r = run_pajama(prepare_args({s.zh}, dir / "missing.model", dir / "out"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("missing.model"), std::string::npos) << r.output;
  EXPECT_EQ(join(outputs_named(dir, "out"), " "), "");
}

TEST(Prepare, InterruptLeavesNoFinalNamedFiles) {
  const auto& s = testing::sample_corpus();
  ASSERT_FALSE(s.tokenizer.empty());
  const testing::TempDir tmp("prep");
  const std::filesystem::path& dir = tmp.path();
  const std::string exe = testing::env_or("PAJAMA_EXE", "");
  ASSERT_FALSE(exe.empty());
  // The sample corpus listed many times: far more work than the time before the signal.
  std::vector<std::string> args = {exe, "prepare", "--no-progress", "--workers", "1", "--tokenizer",
                                   s.tokenizer.string(), "--output", (dir / "big").string(), "--input"};
  for (int i = 0; i < 200; ++i) args.push_back(s.en.string());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(::posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv.data(), environ), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ::kill(pid, SIGINT);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_EQ(join(outputs_named(dir, "big"), " "), "") << "files left after SIGINT";

  // A staging directory left by a hard kill is removed by the next run.
  fs::create_directory(dir / ".small.prepare-tmp.999999999");
  testing::write_file(dir / ".small.prepare-tmp.999999999" / "small.bin", "junk");
  const auto r = run_pajama(prepare_args({s.zh}, s.tokenizer, dir / "small"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(join(outputs_named(dir, "small"), " "), "small.bin small.idx small.pajama.json");
}

TEST(Tokenizer, GoldenLlamaIds) {
  PAJAMA_REQUIRE_LLAMA_TOKENIZER();
  const Tokenizer tok(testing::llama_tokenizer_path().string());
  EXPECT_EQ(tok.vocab_size(), 32000);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.encode("Hello world"), (std::vector<int32_t>{15043, 3186}));
  EXPECT_EQ(tok.encode("你好，世界"), (std::vector<int32_t>{29871, 30919, 31076, 30214, 30793, 30967}));
  EXPECT_EQ(tok.encode("The year 2024 has 366 days"),
            (std::vector<int32_t>{450, 1629, 29871, 29906, 29900, 29906, 29946, 756, 29871, 29941, 29953, 29953, 3841}));
  EXPECT_EQ(tok.encode("😀"), (std::vector<int32_t>{29871, 243, 162, 155, 131}));
  EXPECT_EQ(tok.decode({15043, 3186}), "Hello world");
}

}  // namespace
}  // namespace pajama
