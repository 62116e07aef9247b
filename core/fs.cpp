#include "core/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace pajama {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  PAJAMA_CHECK_AS(DataError, in.good(), "cannot open ", path.string(), ": ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::filesystem::path temp_path_for(const std::filesystem::path& path) {
  return std::filesystem::path(path.string() + ".tmp." + std::to_string(::getpid()));
}

void write_file_atomic(const std::filesystem::path& path, std::string_view contents) {
  const auto tmp = temp_path_for(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  PAJAMA_CHECK(fd >= 0, "cannot create ", tmp.string(), ": ", std::strerror(errno));
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      PAJAMA_FAIL_AS(Error, "writing ", tmp.string(), ": ", std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    PAJAMA_FAIL_AS(Error, "flushing ", tmp.string(), ": ", std::strerror(err));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    ::unlink(tmp.c_str());
    PAJAMA_FAIL_AS(Error, "renaming ", tmp.string(), " to ", path.string(), ": ", ec.message());
  }
  auto parent = path.parent_path();
  fsync_directory(parent.empty() ? std::filesystem::path(".") : parent);
}

void fsync_directory(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // best effort: some filesystems refuse directory handles
  ::fsync(fd);
  ::close(fd);
}

}  // namespace pajama
