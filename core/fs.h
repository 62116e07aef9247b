// Small file helpers: whole-file reads, crash-safe writes (temporary name, fsync,
// rename), and directory fsync so a rename survives power loss.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace pajama {

// Reads a whole file; throws DataError naming the path when it cannot.
std::string read_file(const std::filesystem::path& path);

// Writes `contents` to `path` atomically: a temporary file beside it is written,
// fsynced and renamed over `path`, so readers see the old or the new file, never half.
void write_file_atomic(const std::filesystem::path& path, std::string_view contents);

// fsyncs a directory so renames inside it are durable.
void fsync_directory(const std::filesystem::path& dir);

// A temporary name beside `path` unique to this process: "<path>.tmp.<pid>".
std::filesystem::path temp_path_for(const std::filesystem::path& path);

}  // namespace pajama
