// Small file helpers: whole-file reads, read-only mappings, crash-safe writes (temporary
// name, fsync, rename), and directory fsync so a rename survives power loss.
//
// Removing trees: use std::filesystem::remove_all. The LibTorch wheel exports its own copy
// of std::filesystem; cmake/PajamaHelpers.cmake links every target so that libstdc++'s
// copy wins (see the comment there), which is the one fix for that clash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace pajama {

// Every helper throws the error type its caller names (ErrorT: Error, DataError or
// CheckpointError), so that a failure while saving a checkpoint is a CheckpointError
// whichever helper failed; each message names the path once.

// Reads a whole file; throws ErrorT "cannot open <path>: <reason>" when it cannot.
template <typename ErrorT = DataError>
std::string read_file(const std::filesystem::path& path);

// Writes all `size` bytes to `fd`, looping over short writes and EINTR; throws ErrorT
// "writing <name>: <reason>" when it cannot. ErrorT: Error, DataError or CheckpointError.
template <typename ErrorT = Error>
void write_all(int fd, const void* data, size_t size, const std::filesystem::path& name);

// Atomic write-and-rename: `fill(fd, tmp)` writes the contents to the temporary file `tmp`
// beside `path` (temp_path_for), which is then fsynced, closed and renamed over `path`,
// and the directory fsynced, so readers see the old or the new file, never half. On any
// failure the temporary is removed; the helper's own failures throw ErrorT ("cannot create
// <tmp>", "flushing <tmp>", "closing <tmp>", "renaming <tmp> to <path>").
template <typename ErrorT = Error>
void write_file_atomic(const std::filesystem::path& path,
                       const std::function<void(int fd, const std::filesystem::path& tmp)>& fill);

// write_file_atomic of a string held in memory.
template <typename ErrorT = Error>
void write_file_atomic(const std::filesystem::path& path, std::string_view contents);

// Renames a finished, fsynced temporary file over `path` and fsyncs the directory; on
// failure removes `tmp` and throws ErrorT "renaming <tmp> to <path>: <reason>".
template <typename ErrorT = Error>
void rename_into_place(const std::filesystem::path& tmp, const std::filesystem::path& path);

// fsyncs a directory so renames inside it are durable.
void fsync_directory(const std::filesystem::path& dir);

// A temporary name beside `path` unique to this process: "<path>.tmp.<pid>".
std::filesystem::path temp_path_for(const std::filesystem::path& path);

// A read-only mapping of a whole file (none for an empty file); unmapped on destruction.
// open() throws ErrorT "cannot open <path>: ...", "cannot stat <path>: ..." or
// "cannot map <path>: ...".
class MappedFile {
 public:
  template <typename ErrorT = Error>
  static MappedFile open(const std::filesystem::path& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace pajama
