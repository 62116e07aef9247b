// The safetensors file format (FORMATS.md 5.1): an 8-byte little-endian header length, a
// JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}} and the raw
// tensor bytes. The reader maps the file and checks everything the reference parser
// checks (header length and JSON, dtype, sizes == numel * itemsize, offsets contiguous
// from 0 and covering the buffer exactly); its errors name the file and the tensor.
// The writer pads the header with spaces to a multiple of 8 and writes atomically.
//
//   SafetensorsReader r(path);  torch::Tensor w = r.tensor("model.norm.weight");
//   save_safetensors(path, {{"w", t}}, {{"format", "pt"}});
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "core/fs.h"

namespace pajama {

struct SafetensorsEntry {
  std::string dtype;           // "F32", "BF16", ...
  std::vector<int64_t> shape;  // empty for a 0-dim scalar
  uint64_t begin = 0;          // byte offsets into the data buffer, end exclusive
  uint64_t end = 0;
};

class SafetensorsReader {
 public:
  // Maps and validates `path`; throws CheckpointError naming the file on any violation.
  explicit SafetensorsReader(const std::filesystem::path& path);
  SafetensorsReader(const SafetensorsReader&) = delete;
  SafetensorsReader& operator=(const SafetensorsReader&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Tensor names in the order of their data offsets.
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  const SafetensorsEntry& entry(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // A CPU tensor holding a copy of the bytes, in the file's dtype.
  torch::Tensor tensor(const std::string& name) const;

 private:
  std::filesystem::path path_;
  MappedFile map_;
  const uint8_t* data_ = nullptr;  // start of the byte buffer
  std::map<std::string, SafetensorsEntry> entries_;
  std::vector<std::string> names_;
  std::map<std::string, std::string> metadata_;
};

// Safetensors dtype string <-> torch dtype. Throws CheckpointError for unsupported ones.
torch::ScalarType safetensors_dtype_to_torch(const std::string& dtype);
std::string torch_dtype_to_safetensors(torch::ScalarType dtype);

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// The complete file contents (header + data) for `tensors`, in the given order.
// Tensors may live on any device and need not be contiguous.
std::string serialize_safetensors(const NamedTensors& tensors,
                                  const std::map<std::string, std::string>& metadata = {{"format", "pt"}});
// Writes `tensors` to `path` through a temporary file, fsync and rename; the bytes are
// streamed tensor by tensor, so a large shard is never held twice in memory.
// `observe`, when set, sees every byte written, in order (to hash while writing).
using ByteObserver = std::function<void(const void* data, size_t size)>;
void save_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}},
                      const ByteObserver& observe = nullptr);

}  // namespace pajama
