#include "core/fs.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace pajama {

template <typename ErrorT>
std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  PAJAMA_CHECK_AS(ErrorT, in.good(), "cannot open ", path.string(), ": ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  PAJAMA_CHECK_AS(ErrorT, !in.bad(), "reading ", path.string(), ": ", std::strerror(errno));
  return ss.str();
}

std::filesystem::path temp_path_for(const std::filesystem::path& path) {
  return std::filesystem::path(path.string() + ".tmp." + std::to_string(::getpid()));
}

template <typename ErrorT>
void write_all(int fd, const void* data, size_t size, const std::filesystem::path& name) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    // Linux caps one write at ~2 GiB; loop for large buffers.
    const ssize_t n = ::write(fd, p, std::min<size_t>(size, size_t{1} << 30));
    if (n < 0 && errno == EINTR) continue;
    PAJAMA_CHECK_AS(ErrorT, n >= 0, "writing ", name.string(), ": ", std::strerror(errno));
    p += n;
    size -= static_cast<size_t>(n);
  }
}

template <typename ErrorT>
void rename_into_place(const std::filesystem::path& tmp, const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    ::unlink(tmp.c_str());
    PAJAMA_FAIL_AS(ErrorT, "renaming ", tmp.string(), " to ", path.string(), ": ", ec.message());
  }
  const auto parent = path.parent_path();
  fsync_directory(parent.empty() ? std::filesystem::path(".") : parent);
}

template <typename ErrorT>
void write_file_atomic(const std::filesystem::path& path,
                       const std::function<void(int fd, const std::filesystem::path& tmp)>& fill) {
  const std::filesystem::path tmp = temp_path_for(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  PAJAMA_CHECK_AS(ErrorT, fd >= 0, "cannot create ", tmp.string(), ": ", std::strerror(errno));
  try {
    fill(fd, tmp);
    PAJAMA_CHECK_AS(ErrorT, ::fsync(fd) == 0, "flushing ", tmp.string(), ": ", std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    PAJAMA_FAIL_AS(ErrorT, "closing ", tmp.string(), ": ", std::strerror(err));
  }
  rename_into_place<ErrorT>(tmp, path);
}

template <typename ErrorT>
void write_file_atomic(const std::filesystem::path& path, std::string_view contents) {
  write_file_atomic<ErrorT>(path, [&](int fd, const std::filesystem::path& tmp) {
    write_all<ErrorT>(fd, contents.data(), contents.size(), tmp);
  });
}

void fsync_directory(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // best effort: some filesystems refuse directory handles
  ::fsync(fd);
  ::close(fd);
}

template <typename ErrorT>
MappedFile MappedFile::open(const std::filesystem::path& path) {
  const std::string file = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  PAJAMA_CHECK_AS(ErrorT, fd >= 0, "cannot open ", file, ": ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    PAJAMA_FAIL_AS(ErrorT, "cannot stat ", file, ": ", std::strerror(err));
  }
  MappedFile out;
  out.size_ = static_cast<size_t>(st.st_size);
  if (out.size_ == 0) {  // mmap refuses length 0
    ::close(fd);
    return out;
  }
  void* m = ::mmap(nullptr, out.size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);
  PAJAMA_CHECK_AS(ErrorT, m != MAP_FAILED, "cannot map ", file, ": ", std::strerror(err));
  out.data_ = static_cast<const uint8_t*>(m);
  return out;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

#define PAJAMA_FS_INSTANTIATE(E)                                                                   \
  template std::string read_file<E>(const std::filesystem::path&);                                 \
  template void write_file_atomic<E>(const std::filesystem::path&, std::string_view);              \
  template void write_all<E>(int, const void*, size_t, const std::filesystem::path&);              \
  template void rename_into_place<E>(const std::filesystem::path&, const std::filesystem::path&); \
  template void write_file_atomic<E>(const std::filesystem::path&,                                 \
                                     const std::function<void(int, const std::filesystem::path&)>&); \
  template MappedFile MappedFile::open<E>(const std::filesystem::path&);
PAJAMA_FS_INSTANTIATE(Error)
PAJAMA_FS_INSTANTIATE(DataError)
PAJAMA_FS_INSTANTIATE(CheckpointError)
#undef PAJAMA_FS_INSTANTIATE

}  // namespace pajama
