#include "model/safetensors.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"

namespace pajama {
namespace {

using json = nlohmann::json;

// The reference parser's limit (safetensors MAX_HEADER_SIZE).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
};
constexpr DtypeInfo kDtypes[] = {
    {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
    {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
    {"U8", torch::kUInt8},    {"BOOL", torch::kBool},
};

uint64_t read_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// The 8-byte length and the header JSON, padded with spaces to a multiple of 8 so the data
// starts 8-aligned (like the reference writer). Only dtypes and shapes are read here.
std::string make_header(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    PAJAMA_CHECK(name != "__metadata__" && seen.insert(name).second, "safetensors: duplicate or reserved tensor name '",
                 name, "'");
    PAJAMA_CHECK(t.defined(), "safetensors: tensor '", name, "' is undefined");
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", torch_dtype_to_safetensors(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (size_t i = 0; i < 8; ++i) out[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  return out + text;
}

torch::Tensor host_bytes(const torch::Tensor& t) { return t.detach().to(torch::kCPU).contiguous(); }

}  // namespace

torch::ScalarType safetensors_dtype_to_torch(const std::string& dtype) {
  for (const auto& d : kDtypes) {
    if (dtype == d.name) return d.type;
  }
  PAJAMA_FAIL_AS(CheckpointError, "unsupported safetensors dtype '", dtype,
                 "' (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
}

std::string torch_dtype_to_safetensors(torch::ScalarType dtype) {
  for (const auto& d : kDtypes) {
    if (dtype == d.type) return d.name;
  }
  PAJAMA_FAIL_AS(CheckpointError, "dtype ", dtype, " cannot be stored in safetensors by pajama");
}

namespace {

// The header's JSON object. Duplicate keys are an error in the reference parser while
// nlohmann keeps the last one, so they are caught during parsing.
json parse_header(const std::string& file, std::string_view text) {
  std::set<std::string> keys;
  std::string duplicate;
  json header;
  try {
    header = json::parse(text, [&](int depth, json::parse_event_t event, json& parsed) {
      if (depth == 1 && event == json::parse_event_t::key && !keys.insert(parsed.get<std::string>()).second) {
        duplicate = parsed.get<std::string>();
      }
      return true;
    });
  } catch (const json::exception& e) {
    PAJAMA_FAIL_AS(CheckpointError, file, ": header is not valid JSON: ", e.what());
  }
  PAJAMA_CHECK_AS(CheckpointError, duplicate.empty(), file, ": tensor '", duplicate, "' appears twice in the header");
  PAJAMA_CHECK_AS(CheckpointError, header.is_object(), file, ": header is not a JSON object");
  return header;
}

std::map<std::string, std::string> parse_metadata(const std::string& file, const json& value) {
  PAJAMA_CHECK_AS(CheckpointError, value.is_object(), file, ": __metadata__ is not an object");
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : value.items()) {
    PAJAMA_CHECK_AS(CheckpointError, v.is_string(), file, ": __metadata__ value of '", k, "' is not a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

// One tensor's entry, checked against the data buffer: a known dtype, non-negative
// dimensions whose product does not overflow, and offsets inside the buffer that hold
// exactly numel * itemsize bytes. `where` names the file and the tensor.
SafetensorsEntry parse_entry(const std::string& where, const json& value, uint64_t data_size) {
  PAJAMA_CHECK_AS(CheckpointError,
                  value.is_object() && value.contains("dtype") && value["dtype"].is_string() &&
                      value.contains("shape") && value["shape"].is_array() && value.contains("data_offsets") &&
                      value["data_offsets"].is_array() && value["data_offsets"].size() == 2 &&
                      value["data_offsets"][0].is_number_unsigned() && value["data_offsets"][1].is_number_unsigned(),
                  where, ": entry must be {\"dtype\": str, \"shape\": [int...], \"data_offsets\": [begin, end]}");
  SafetensorsEntry e;
  e.dtype = value["dtype"].get<std::string>();
  const torch::ScalarType type = [&] {
    try {
      return safetensors_dtype_to_torch(e.dtype);
    } catch (...) {
      rethrow_with_context(where);
    }
  }();
  uint64_t numel = 1;
  for (const auto& d : value["shape"]) {
    PAJAMA_CHECK_AS(CheckpointError, d.is_number_unsigned(), where, ": shape ", value["shape"].dump(),
                    " has a non-integer or negative dimension");
    const uint64_t n = d.get<uint64_t>();
    PAJAMA_CHECK_AS(CheckpointError, n <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), where,
                    ": shape ", value["shape"].dump(), " has a dimension beyond int64");
    PAJAMA_CHECK_AS(CheckpointError, n == 0 || numel <= std::numeric_limits<uint64_t>::max() / n, where,
                    ": shape overflows");
    numel *= n;
    e.shape.push_back(static_cast<int64_t>(n));
  }
  e.begin = value["data_offsets"][0].get<uint64_t>();
  e.end = value["data_offsets"][1].get<uint64_t>();
  const uint64_t itemsize = c10::elementSize(type);
  PAJAMA_CHECK_AS(CheckpointError, e.begin <= e.end && e.end <= data_size, where, ": data_offsets [", e.begin, ", ",
                  e.end, ") fall outside the ", data_size, "-byte data buffer");
  PAJAMA_CHECK_AS(CheckpointError,
                  numel <= std::numeric_limits<uint64_t>::max() / itemsize && e.end - e.begin == numel * itemsize,
                  where, ": data_offsets [", e.begin, ", ", e.end, ") hold ", e.end - e.begin, " bytes but ", e.dtype,
                  " ", value["shape"].dump(), " needs ", numel * itemsize);
  return e;
}

// Tensor names by data offset, after checking that the tensors tile the buffer exactly:
// no holes, no overlaps, nothing trailing.
std::vector<std::string> tiling_order(const std::string& file, const std::map<std::string, SafetensorsEntry>& entries,
                                      uint64_t data_size) {
  std::vector<std::pair<const std::string*, const SafetensorsEntry*>> order;
  for (const auto& [name, e] : entries) order.emplace_back(&name, &e);
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.second->begin != b.second->begin ? a.second->begin < b.second->begin : a.second->end < b.second->end;
  });
  std::vector<std::string> names;
  uint64_t reach = 0;
  for (const auto& [name, e] : order) {
    PAJAMA_CHECK_AS(CheckpointError, e->begin == reach, file, ": tensor '", *name, "' starts at byte ", e->begin,
                    " of the data buffer, expected ", reach, " (tensors must be contiguous, without holes or overlaps)");
    reach = e->end;
    names.push_back(*name);
  }
  PAJAMA_CHECK_AS(CheckpointError, reach == data_size, file, ": tensors cover ", reach,
                  " bytes but the data buffer has ", data_size, " (truncated or trailing bytes?)");
  return names;
}

}  // namespace

SafetensorsReader::SafetensorsReader(const std::filesystem::path& path)
    : path_(path), map_(MappedFile::open<CheckpointError>(path)) {
  const std::string file = path.string();
  const size_t map_size = map_.size();
  PAJAMA_CHECK_AS(CheckpointError, map_size >= 8, file, ": not a safetensors file (", map_size,
                  " bytes, shorter than the 8-byte header length)");
  const uint8_t* map = map_.data();
  const uint64_t header_len = read_le64(map);
  PAJAMA_CHECK_AS(CheckpointError, header_len <= kMaxHeaderBytes && header_len <= map_size - 8, file,
                  ": header length ", header_len, " is invalid for a file of ", map_size,
                  " bytes (is this a safetensors file?)");
  const char* text = reinterpret_cast<const char*>(map + 8);
  PAJAMA_CHECK_AS(CheckpointError, header_len > 0 && text[0] == '{', file,
                  ": header does not start with '{' (is this a safetensors file?)");
  data_ = map + 8 + header_len;
  const uint64_t data_size = map_size - 8 - header_len;

  const json header = parse_header(file, std::string_view(text, header_len));
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      metadata_ = parse_metadata(file, value);
    } else {
      entries_.emplace(name, parse_entry(file + ": tensor '" + name + "'", value, data_size));
    }
  }
  names_ = tiling_order(file, entries_, data_size);
}

const SafetensorsEntry& SafetensorsReader::entry(const std::string& name) const {
  auto it = entries_.find(name);
  PAJAMA_CHECK_AS(CheckpointError, it != entries_.end(), path_.string(), ": no tensor named '", name, "'");
  return it->second;
}

torch::Tensor SafetensorsReader::tensor(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(safetensors_dtype_to_torch(e.dtype)));
  // A copy, not a view of the mapping: offsets from other writers need not be aligned,
  // and the tensor must outlive this reader.
  if (e.end > e.begin) std::memcpy(t.data_ptr(), data_ + e.begin, e.end - e.begin);
  return t;
}

std::string serialize_safetensors(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
  std::string out = make_header(tensors, metadata);
  for (const auto& [name, t] : tensors) {
    const torch::Tensor c = host_bytes(t);
    out.append(static_cast<const char*>(c.data_ptr()), c.nbytes());
  }
  return out;
}

void save_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata, const ByteObserver& observe) {
  const std::string header = make_header(tensors, metadata);
  write_file_atomic<CheckpointError>(path, [&](int fd, const std::filesystem::path& tmp) {
    write_all<CheckpointError>(fd, header.data(), header.size(), tmp);
    if (observe) observe(header.data(), header.size());
    // One tensor at a time, so a shard of device tensors is never all on the host at once;
    // each tensor in 4 MiB pieces, each hashed right after it is written while it is still
    // in the cache (one pass over memory, not two), and the kernel told to start writing
    // back every 64 MiB so the final fsync does not find the whole file dirty.
    constexpr size_t kPiece = size_t{4} << 20;
    constexpr off_t kWriteback = off_t{64} << 20;
    off_t written = static_cast<off_t>(header.size()), flushed = 0;
    for (const auto& [name, t] : tensors) {
      const torch::Tensor c = host_bytes(t);
      const auto* bytes = static_cast<const char*>(c.data_ptr());
      for (size_t off = 0, total = c.nbytes(); off < total; off += kPiece) {
        const size_t n = std::min(kPiece, total - off);
        write_all<CheckpointError>(fd, bytes + off, n, tmp);
        if (observe) observe(bytes + off, n);
        written += static_cast<off_t>(n);
        if (written - flushed >= kWriteback) {
          ::sync_file_range(fd, flushed, written - flushed, SYNC_FILE_RANGE_WRITE);  // a hint: errors surface at fsync
          flushed = written;
        }
      }
    }
  });
}

}  // namespace pajama
