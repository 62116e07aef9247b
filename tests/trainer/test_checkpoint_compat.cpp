// Checkpoints written by earlier releases keep working: the format-1 fixture in
// tests/fixtures/checkpoint_v1 (made by pajama c152e2d, 2 ranks, 8-step reference
// curve) resumes on 2 and on 1 ranks and follows the recorded curve, resumes when its
// config.yaml holds keys this version does not know, and converts to Hugging Face
// format that transformers loads.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/support.h"

namespace pajama {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

fs::path fixture() { return fs::path(testing::source_dir()) / "tests/fixtures/checkpoint_v1"; }

std::string train_cmd(const fs::path& run_dir, const fs::path& checkpoint) {
  const std::string data = fixture().string() + "/data/";
  return testing::pajama_exe() + " train --config " + (fixture() / "fixture.yaml").string() +
         " --set run.output_dir=" + run_dir.string() + " --set 'data.datasets=[{path: " + data +
         "a, weight: 0.7}, {path: " + data + "b, weight: 0.3}]' --set checkpoint.resume=" + checkpoint.string() +
         " --set train.threads=1";
}

// A writable copy of the fixture's checkpoint (resume never writes into it, but a test
// must not depend on that).
fs::path copy_checkpoint(const TempDir& dir) {
  const fs::path out = dir.path() / "step_00000004";
  fs::copy(fixture() / "step_00000004", out, fs::copy_options::recursive);
  return out;
}

void expect_reference_curve(const fs::path& run_dir) {
  const auto expected = testing::read_metrics(fixture() / "reference");
  const auto got = testing::read_metrics(run_dir);
  ASSERT_EQ(expected.size(), 8u);
  ASSERT_EQ(got.size(), 4u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].step, static_cast<int64_t>(5 + i));
    EXPECT_NEAR(got[i].loss, expected[4 + i].loss, 1e-4 * std::abs(expected[4 + i].loss)) << "step " << got[i].step;
  }
}

TEST(CheckpointCompat, FormatOneResumesOnTwoAndOneRanks) {
  for (int ranks : {2, 1}) {
    SCOPED_TRACE(std::to_string(ranks) + " rank(s)");
    TempDir dir;
    const fs::path ckpt = copy_checkpoint(dir);
    const auto r = testing::run_command((ranks > 1 ? testing::mpirun(ranks) : "") + train_cmd(dir.path() / "run", ckpt));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("format 1, written by 2 rank(s), now " + std::to_string(ranks)), std::string::npos)
        << r.output;
    expect_reference_curve(dir.path() / "run");
    // The checkpoints this version writes are format 2 and resume too.
    const fs::path own = dir.path() / "run/checkpoints/step_00000008";
    const auto m = nlohmann::json::parse(testing::read_file(own / "manifest.json"));
    EXPECT_EQ(m.at("format_version"), 2);
    EXPECT_TRUE(fs::exists(own / "config.json"));
  }
}

TEST(CheckpointCompat, UnknownConfigKeysAreReportedNotFatal) {
  TempDir dir;
  const fs::path ckpt = copy_checkpoint(dir);
  // As if a later version renamed train.grad_clip and added a section: the manifest's
  // hash of config.yaml is updated, as that version would have written it.
  std::string yaml = testing::read_file(ckpt / "config.yaml");
  const auto at = yaml.find("  grad_clip:");
  ASSERT_NE(at, std::string::npos);
  yaml.replace(at, 12, "  clip_grad_norm:");
  yaml += "telemetry:\n  endpoint: http://example.invalid\n";
  testing::write_file(ckpt / "config.yaml", yaml);
  auto m = nlohmann::json::parse(testing::read_file(ckpt / "manifest.json"));
  const auto hash = testing::run_command("sha256sum " + (ckpt / "config.yaml").string());
  ASSERT_EQ(hash.exit_code, 0);
  m["files"]["config.yaml"] = {{"bytes", yaml.size()}, {"sha256", hash.output.substr(0, 64)}};
  testing::write_file(ckpt / "manifest.json", m.dump(1));

  const auto r = testing::run_command(testing::mpirun(2) + train_cmd(dir.path() / "run", ckpt));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("train.clip_grad_norm: unknown key"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("telemetry: unknown key"), std::string::npos) << r.output;
  expect_reference_curve(dir.path() / "run");
}

TEST(CheckpointCompat, FormatOneConvertsToHuggingFace) {
  TempDir dir;
  const fs::path ckpt = copy_checkpoint(dir);
  auto r = testing::run_command(testing::pajama_exe() + " convert --checkpoint " + ckpt.string() + " --to-hf " +
                                dir.str("hf"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto cfg = nlohmann::json::parse(testing::read_file(dir.path() / "hf/config.json"));
  EXPECT_EQ(cfg.at("vocab_size"), 512);
  EXPECT_EQ(cfg.at("hidden_size"), 32);
  EXPECT_EQ(cfg.at("num_key_value_heads"), 1);
  // transformers loads it and scores a batch (a finite loss near ln(512) = 6.24).
  std::vector<int32_t> tokens(17);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(100 + i % 7);
  std::ofstream(dir.path() / "tokens.bin", std::ios::binary)
      .write(reinterpret_cast<const char*>(tokens.data()), static_cast<std::streamsize>(tokens.size() * 4));
  r = testing::run_command(testing::python() + " " + testing::source_dir() +
                           "/tests/trainer/hf_roundtrip.py loss " + dir.str("hf") + " " + dir.str("tokens.bin") +
                           " --batch 1 --width 17");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const double loss = testing::last_json_line(r.output).at("loss").get<double>();
  EXPECT_TRUE(std::isfinite(loss) && loss > 3 && loss < 9) << r.output;
}

}  // namespace
}  // namespace pajama
