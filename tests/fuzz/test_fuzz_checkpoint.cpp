// Fuzzing trainer/'s readers: the checkpoint manifest and the files it covers
// (read_manifest / verify_checkpoint / read_checkpoint_model, on the format-1 fixture
// tests/fixtures/checkpoint_v1) and the YAML training config (load_train_config).
// See fuzz_util.h for the contract.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "trainer/checkpoint_layout.h"
#include "trainer/train_config.h"

namespace pajama::testing::fuzz {
namespace {

fs::path source_dir() { return testing::source_dir(); }

// A manifest verify_checkpoint accepted must describe a loadable checkpoint.
void check_manifest(const Manifest& m, const fs::path& dir) {
  FUZZ_EXPECT(m.world_size >= 1, "world_size ", m.world_size, " accepted");
  FUZZ_EXPECT(m.step >= 0, "step ", m.step, " accepted");
  FUZZ_EXPECT(m.ranks.is_array() && static_cast<int64_t>(m.ranks.size()) == m.world_size, "ranks ",
              m.ranks.dump().substr(0, 80), " accepted for world_size ", m.world_size);
  for (const auto& r : m.ranks) {
    FUZZ_EXPECT(r.is_object() && r.contains("file") && r["file"].is_string() && m.files.count(r["file"].get<std::string>()),
                "rank entry without a file of the manifest accepted");
    FUZZ_EXPECT(r.contains("slices") && r["slices"].is_array(), "rank entry without slices accepted");
    for (const auto& s : r["slices"]) {
      FUZZ_EXPECT(s.is_object() && s.contains("name") && s["name"].is_string() && s.contains("begin") &&
                      s["begin"].is_number_unsigned() && s.contains("end") && s["end"].is_number_unsigned() &&
                      s["begin"].get<uint64_t>() <= s["end"].get<uint64_t>() && s.contains("shape") && s["shape"].is_array(),
                  "malformed slice ", s.dump().substr(0, 80), " accepted");
      uint64_t numel = 1;
      for (const auto& d : s["shape"]) {
        FUZZ_EXPECT(d.is_number_unsigned(), "slice shape ", s["shape"].dump(), " accepted");
        numel *= d.get<uint64_t>();
      }
      FUZZ_EXPECT(s["end"].get<uint64_t>() <= numel, "slice [", s["begin"].dump(), ", ", s["end"].dump(),
                  ") beyond its ", numel, "-element parameter accepted");
    }
  }
  for (const auto& [name, e] : m.files) {
    FUZZ_EXPECT(e.bytes >= 0, name, ": bytes ", e.bytes, " accepted");
    FUZZ_EXPECT(fs::exists(dir / name) && static_cast<int64_t>(fs::file_size(dir / name)) == e.bytes, name,
                ": accepted without its file");
  }
}

TEST(FuzzReaders, CheckpointManifestAndFiles) {
  Tally t{"checkpoint (read_manifest, verify_checkpoint, read_checkpoint_model)", fuzz_seed(0xc4e7)};
  const fs::path fixture = source_dir() / "tests/fixtures/checkpoint_v1/step_00000004";
  ASSERT_TRUE(fs::exists(fixture / "manifest.json")) << fixture;
  const TempDir tmp("fuzz-ckpt");
  const fs::path dir = tmp.path() / "step_00000004";
  fs::create_directories(dir.parent_path());
  fs::copy(fixture, dir);
  {
    Manifest m;
    ASSERT_EQ(verify_checkpoint(dir, m), "");
    check_manifest(m, dir);
    const CheckpointModel model = read_checkpoint_model(dir, m);
    ASSERT_EQ(model.shape.dim, 32);
  }
  const std::vector<std::string> files = {"manifest.json", "config.yaml", "model.safetensors", "rank00000.json",
                                          "trainer_state.json", "optim_rank00001.safetensors"};
  std::map<std::string, std::string> originals;
  for (const auto& f : files) originals[f] = read_file(dir / f);

  std::mt19937_64 rng(t.seed);
  for (int m = 0; m < 360; ++m) {
    // Half the mutations hit the manifest, the rest the files it covers.
    const std::string file = m % 2 == 0 ? files[0] : files[1 + rng() % (files.size() - 1)];
    const std::string& orig = originals[file];
    std::string desc;
    std::string bytes = orig;
    const bool text = file.ends_with(".json") || file.ends_with(".yaml");
    if (text && rng() % 2 == 0) {
      if (!mutate_number(bytes, rng, desc, file.ends_with(".json"))) bytes = mutate_bytes(orig, rng, {}, desc);
    } else {
      bytes = mutate_bytes(orig, rng, {{0, 8, "safetensors header length"}}, desc);
    }
    write_file(dir / file, bytes);
    desc = file + ": " + desc;
    const bool changed = bytes != orig;
    t.record(m, desc, run_isolated([&] {
               Manifest man;
               const std::string problem = verify_checkpoint(dir, man);
               if (file != "manifest.json") {
                 FUZZ_EXPECT(!changed || !problem.empty(), "a changed ", file, " passed verification");
                 // What the loader reads after verification, read even when it failed.
                 Manifest good;
                 PAJAMA_CHECK(read_manifest(dir, good).empty(), "fixture manifest unreadable");
                 const CheckpointModel model = read_checkpoint_model(dir, good);
                 FUZZ_EXPECT(model.shape.dim > 0, "bad shape");
                 return;
               }
               if (!problem.empty()) throw CheckpointError(str((dir / file).string(), ": ", problem));
               check_manifest(man, dir);
               (void)read_checkpoint_model(dir, man);
             }, file));
    write_file(dir / file, orig);
  }
  fs::remove_all(dir.parent_path());
}

TEST(FuzzReaders, YamlConfig) {
  Tally t{"load_train_config (YAML)", fuzz_seed(0x7a31)};
  const TempDir tmp("fuzz-yaml");
  const fs::path dir = tmp.path();
  const std::string base = read_file(source_dir() / "configs/tiny.yaml");
  ASSERT_FALSE(base.empty());
  write_file(dir / "mut.yaml", base);
  (void)load_train_config((dir / "mut.yaml").string(), {});
  std::mt19937_64 rng(t.seed);
  for (int m = 0; m < 300; ++m) {
    std::string desc;
    std::string text = base;
    if (rng() % 2 == 0) {
      if (!mutate_number(text, rng, desc, false)) text = mutate_bytes(base, rng, {}, desc);
    } else {
      text = mutate_bytes(base, rng, {}, desc);
    }
    write_file(dir / "mut.yaml", text);
    t.record(m, desc, run_isolated([&] { (void)load_train_config((dir / "mut.yaml").string(), {}); }, "mut.yaml"));
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace pajama::testing::fuzz
