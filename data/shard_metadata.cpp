#include "data/shard_metadata.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"

namespace pajama {

std::string shard_metadata_path(const std::string& prefix) { return prefix + ".pajama.json"; }

std::optional<ShardMetadata> read_shard_metadata(const std::string& prefix) {
  const std::string path = shard_metadata_path(prefix);
  if (!std::filesystem::exists(path)) return std::nullopt;
  try {
    const auto j = nlohmann::json::parse(read_file(path));
    ShardMetadata m;
    m.format_version = j.at("format_version").get<int64_t>();
    PAJAMA_CHECK_AS(DataError, m.format_version == 1, "unsupported format_version ", m.format_version);
    const auto& t = j.at("tokenizer");
    m.tokenizer_path = t.at("path").get<std::string>();
    m.tokenizer_sha256 = t.at("sha256").get<std::string>();
    m.vocab_size = t.at("vocab_size").get<int64_t>();
    m.bos_id = t.at("bos_id").get<int64_t>();
    m.eos_id = t.at("eos_id").get<int64_t>();
    m.add_bos = j.at("add_bos").get<bool>();
    m.add_eos = j.at("add_eos").get<bool>();
    m.sources = j.at("sources").get<std::vector<std::string>>();
    m.documents = j.at("documents").get<int64_t>();
    m.tokens = j.at("tokens").get<int64_t>();
    m.skipped = j.at("skipped").get<int64_t>();
    m.dtype = j.at("dtype").get<std::string>();
    return m;
  } catch (const nlohmann::json::exception& e) {
    PAJAMA_FAIL_AS(DataError, path, ": not a valid pajama shard sidecar (", e.what(),
                   "); delete it to use the shard without a tokenizer check, or re-run pajama prepare");
  } catch (const DataError&) {
    rethrow_with_context(path);
  }
}

void write_shard_metadata(const std::string& prefix, const ShardMetadata& m) {
  nlohmann::json j;
  j["format"] = "pajama-shard";
  j["format_version"] = m.format_version;
  j["tokenizer"] = {{"path", m.tokenizer_path},
                    {"sha256", m.tokenizer_sha256},
                    {"vocab_size", m.vocab_size},
                    {"bos_id", m.bos_id},
                    {"eos_id", m.eos_id}};
  j["add_bos"] = m.add_bos;
  j["add_eos"] = m.add_eos;
  j["sources"] = m.sources;
  j["documents"] = m.documents;
  j["tokens"] = m.tokens;
  j["skipped"] = m.skipped;
  j["dtype"] = m.dtype;
  write_file_atomic(shard_metadata_path(prefix), j.dump(2) + "\n");
}

}  // namespace pajama
