#include "trainer/checkpoint_layout.h"

#include <charconv>
#include <cstdint>
#include <cstdio>

#include "core/error.h"
#include "core/fs.h"
#include "model/hf_checkpoint.h"
#include "model/safetensors.h"
#include "trainer/train_config.h"

namespace pajama {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string rank_tag(int rank) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%05d", rank);
  return buf;
}

}  // namespace

std::string checkpoint_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld", static_cast<long long>(step));
  return buf;
}

std::optional<int64_t> parse_checkpoint_dir_name(const std::string& name) {
  if (name.rfind("step_", 0) != 0 || name.size() != 13) return std::nullopt;
  int64_t step = 0;
  auto [p, ec] = std::from_chars(name.data() + 5, name.data() + name.size(), step);
  if (ec != std::errc() || p != name.data() + name.size()) return std::nullopt;
  return step;
}

std::string optim_file_name(int rank) { return "optim_rank" + rank_tag(rank) + ".safetensors"; }
std::string rank_file_name(int rank) { return "rank" + rank_tag(rank) + ".json"; }

namespace {

// A non-negative JSON integer (get<int64_t> would truncate 1.5 and wrap 2^64 - 1).
int64_t manifest_int(const json& v, const char* what) {
  if (!v.is_number_integer() || (v.is_number_unsigned() ? v.get<uint64_t>() > uint64_t{INT64_MAX} : v.get<int64_t>() < 0)) {
    throw json::other_error::create(501, str(what, " ", v.dump(), " is not a non-negative integer"), &v);
  }
  return v.get<int64_t>();
}

// The ranks table the loader reads: one {file, slices: [{name, shape, begin, end}]} per
// writing rank, each file listed in `files`, each slice a range of its parameter.
void check_ranks(const Manifest& m) {
  const json& ranks = m.ranks;
  if (!ranks.is_array() || static_cast<int64_t>(ranks.size()) != m.world_size) {
    throw json::other_error::create(501, str("ranks must list ", m.world_size, " ranks"), &ranks);
  }
  for (const json& r : ranks) {
    if (!r.is_object() || !r.contains("file") || !r["file"].is_string() || !m.files.count(r["file"].get<std::string>()) ||
        !r.contains("slices") || !r["slices"].is_array()) {
      throw json::other_error::create(501, "a rank entry needs a file listed in files and an array of slices", &r);
    }
    for (const json& s : r["slices"]) {
      if (!s.is_object() || !s.contains("name") || !s["name"].is_string() || !s.contains("shape") ||
          !s["shape"].is_array()) {
        throw json::other_error::create(501, "a slice needs a name and a shape", &s);
      }
      int64_t numel = 1;
      for (const json& d : s["shape"]) {
        const int64_t n = manifest_int(d, "a dimension");
        if (n != 0 && numel > INT64_MAX / n) throw json::other_error::create(501, "a slice's shape overflows", &s);
        numel *= n;
      }
      const int64_t begin = manifest_int(s.value("begin", json()), "begin");
      const int64_t end = manifest_int(s.value("end", json()), "end");
      if (begin > end || end > numel) {
        throw json::other_error::create(
            501, str("slice [", begin, ", ", end, ") of ", s["name"].get<std::string>(), " is outside its ", numel,
                     " elements"),
            &s);
      }
    }
  }
}

}  // namespace

json FileEntry::to_json() const {
  if (algorithm == HashAlgorithm::kSha256) return json{{"bytes", bytes}, {"sha256", digests.at(0)}};
  return json{{"bytes", bytes}, {"chunk_bytes", chunk_bytes}, {hash_algorithm_name(algorithm), digests}};
}

FileEntry FileEntry::from_json(const json& j) {
  FileEntry e;
  e.bytes = manifest_int(j.at("bytes"), "bytes");
  if (j.contains("sha256")) {
    e.algorithm = HashAlgorithm::kSha256;
    e.chunk_bytes = 0;
    e.digests = {j.at("sha256").get<std::string>()};
    return e;
  }
  e.algorithm = HashAlgorithm::kXxh3_128;
  e.chunk_bytes = manifest_int(j.at("chunk_bytes"), "chunk_bytes");
  e.digests = j.at(hash_algorithm_name(e.algorithm)).get<std::vector<std::string>>();
  const int64_t chunks =
      e.chunk_bytes > 0 ? std::max<int64_t>(1, e.bytes / e.chunk_bytes + (e.bytes % e.chunk_bytes != 0)) : 1;
  if (e.chunk_bytes <= 0 || static_cast<int64_t>(e.digests.size()) != chunks) {
    throw json::other_error::create(501, str("an entry of ", e.bytes, " bytes in chunks of ", e.chunk_bytes,
                                             " needs ", chunks, " digests, has ", e.digests.size()),
                                    &j);
  }
  return e;
}

ChunkedHasher::ChunkedHasher(int64_t chunk_bytes) : chunk_bytes_(chunk_bytes), current_(HashAlgorithm::kXxh3_128) {}

void ChunkedHasher::update(const void* data, size_t size) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const size_t take = std::min<size_t>(size, static_cast<size_t>(chunk_bytes_ - in_chunk_));
    current_.update(p, take);
    p += take;
    size -= take;
    in_chunk_ += static_cast<int64_t>(take);
    total_ += static_cast<int64_t>(take);
    if (in_chunk_ == chunk_bytes_) {
      digests_.push_back(current_.hex_digest());
      current_ = Hasher(HashAlgorithm::kXxh3_128);
      in_chunk_ = 0;
    }
  }
}

FileEntry ChunkedHasher::finish() {
  if (in_chunk_ > 0 || digests_.empty()) digests_.push_back(current_.hex_digest());
  FileEntry e;
  e.bytes = total_;
  e.algorithm = HashAlgorithm::kXxh3_128;
  e.chunk_bytes = chunk_bytes_;
  e.digests = std::move(digests_);
  return e;
}

FileEntry entry_of_bytes(std::string_view bytes) {
  ChunkedHasher h;
  h.update(bytes.data(), bytes.size());
  return h.finish();
}

json Manifest::to_json() const {
  json f = json::object();
  for (const auto& [name, e] : files) f[name] = e.to_json();
  return json{{"format", "pajama-checkpoint"}, {"format_version", format_version}, {"step", step},
              {"world_size", world_size},      {"files", f},                       {"ranks", ranks}};
}

std::string read_manifest(const fs::path& dir, Manifest& out) {
  const fs::path path = dir / "manifest.json";
  std::error_code ec;
  if (!fs::exists(path, ec)) return ec ? "manifest.json cannot be looked up: " + ec.message()
                                       : "no manifest.json (the save did not finish)";
  json m;
  try {
    m = json::parse(read_file<CheckpointError>(path));
  } catch (const std::exception& e) {
    return str("manifest.json is unreadable: ", e.what());
  }
  try {
    out = Manifest{};
    out.format_version = manifest_int(m.at("format_version"), "format_version");
    if (out.format_version < 1 || out.format_version > kCheckpointFormatVersion) {
      return str("format_version ", out.format_version, " is not supported (this pajama reads 1 to ",
                 kCheckpointFormatVersion, "; a newer pajama wrote it)");
    }
    out.step = manifest_int(m.at("step"), "step");
    out.world_size = manifest_int(m.at("world_size"), "world_size");
    if (out.world_size < 1) return "manifest.json is malformed: world_size must be >= 1";
    for (const auto& [name, entry] : m.at("files").items()) out.files[name] = FileEntry::from_json(entry);
    out.ranks = m.at("ranks");
    check_ranks(out);
  } catch (const json::exception& e) {
    return str("manifest.json is malformed: ", e.what());
  }
  return "";
}

std::vector<VerifyTask> verify_tasks(const Manifest& m) {
  std::vector<VerifyTask> tasks;
  for (const auto& [name, e] : m.files) {
    if (e.chunk_bytes <= 0) {
      tasks.push_back(VerifyTask{name, 0, e.bytes, 0});
      continue;
    }
    for (size_t c = 0; c < e.digests.size(); ++c) {
      const int64_t offset = static_cast<int64_t>(c) * e.chunk_bytes;
      tasks.push_back(VerifyTask{name, offset, std::min(e.chunk_bytes, e.bytes - offset), c});
    }
  }
  return tasks;
}

std::string verify_task(const fs::path& dir, const Manifest& m, const VerifyTask& t) {
  const FileEntry& e = m.files.at(t.file);
  const fs::path p = dir / t.file;
  std::error_code ec;
  const auto size = fs::file_size(p, ec);
  if (ec) return str("file ", t.file, " is missing");
  if (static_cast<int64_t>(size) != e.bytes) return str("file ", t.file, " has ", size, " bytes, manifest says ", e.bytes);
  try {
    if (hash_file_hex(p, e.algorithm, t.offset, t.length) != e.digests.at(t.chunk)) {
      if (e.chunk_bytes <= 0) return str("file ", t.file, " fails its ", hash_algorithm_name(e.algorithm), " check");
      return str("file ", t.file, " fails its ", hash_algorithm_name(e.algorithm), " check in bytes [", t.offset, ", ",
                 t.offset + t.length, ")");
    }
  } catch (const DataError& err) {
    return err.what();
  }
  return "";
}

std::string verify_checkpoint(const fs::path& dir, Manifest& m) {
  if (std::string problem = read_manifest(dir, m); !problem.empty()) return problem;
  for (const auto& t : verify_tasks(m)) {
    if (std::string problem = verify_task(dir, m, t); !problem.empty()) return problem;
  }
  return "";
}

CheckpointModel read_checkpoint_model(const fs::path& dir, const Manifest& m) {
  CheckpointModel out;
  const fs::path yaml = dir / "config.yaml";
  const TrainConfig saved = parse_train_config_lenient(read_file<CheckpointError>(yaml), yaml.string(), out.notes);
  out.tokenizer = saved.data.tokenizer;
  for (const auto& d : saved.data.datasets) out.shard_prefixes.push_back(d.path);
  out.shape = m.format_version >= 2 ? read_hf_config(dir) : saved.model.llama;
  SafetensorsReader weights(dir / "model.safetensors");
  PAJAMA_CHECK_AS(CheckpointError, !weights.names().empty(), (dir / "model.safetensors").string(), " holds no tensors");
  const std::string st = weights.entry(weights.names().front()).dtype;
  out.dtype = st == "F32" ? "float32" : st == "BF16" ? "bfloat16" : st == "F16" ? "float16" : st;
  return out;
}

fs::path resolve_checkpoint_dir(const fs::path& p) {
  // std::filesystem's own errors (a directory that cannot be searched) as CheckpointError.
  auto exists = [](const fs::path& path) {
    std::error_code ec;
    const bool yes = fs::exists(path, ec);
    PAJAMA_CHECK_AS(CheckpointError, !ec, "cannot look up ", path.string(), ": ", ec.message());
    return yes;
  };
  // A path that is not there is a command-line error (exit 2), as prepare's missing input.
  PAJAMA_CHECK_AS(ConfigError, exists(p), p.string(),
                  ": no such checkpoint or run directory; pass a step_N directory or a run's output_dir");
  if (exists(p / "manifest.json")) return p;
  for (const fs::path& dir : {p / "checkpoints", p}) {
    if (exists(dir / "latest")) {
      std::string name = read_file<CheckpointError>(dir / "latest");
      while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
      return dir / name;
    }
  }
  PAJAMA_FAIL_AS(CheckpointError, p.string(),
                 " is not a checkpoint (no manifest.json) nor a run directory with checkpoints/latest");
}

}  // namespace pajama
