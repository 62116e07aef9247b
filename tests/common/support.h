// The one set of helpers the C++ tests share: the environment ctest sets (tests/CMake:
// pajama_test), running a command with its output captured, spawning and waiting on
// processes, scratch directories, whole-file reads and writes, and the run directory's
// metrics.jsonl. No LibTorch here: the data tests that do not link it use this too.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <dirent.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace pajama::testing {

namespace fs = std::filesystem;

// ---- environment -------------------------------------------------------------------

// The variable's value, or `fallback` when it is unset or empty.
inline std::string env_or(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

// A variable ctest sets for every test; its absence fails the calling test.
inline std::string env_or_fail(const char* name) {
  const std::string v = env_or(name);
  if (v.empty()) ADD_FAILURE() << name << " is not set; run the tests through ctest (scripts/test.sh)";
  return v;
}

inline std::string source_dir() { return env_or_fail("PAJAMA_SOURCE_DIR"); }
inline std::string pajama_exe() { return env_or_fail("PAJAMA_EXE"); }
// The Python with torch, transformers and sentencepiece that the parity tests use.
inline std::string python() { return env_or_fail("PAJAMA_PYTHON"); }

// ---- processes ---------------------------------------------------------------------

// `s` as one single-quoted shell word.
inline std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

struct CommandResult {
  int exit_code = -1;  // the exit status, or 128 + the signal that ended it
  std::string output;  // stdout and stderr together
};

inline int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Runs `cmd` through /bin/sh, capturing stdout and stderr together.
inline CommandResult run_command(const std::string& cmd) {
  CommandResult r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) {
    r.output = "popen failed for: " + cmd;
    return r;
  }
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  r.exit_code = exit_code_of(::pclose(p));
  return r;
}

// `$PAJAMA_EXE <args>`.
inline CommandResult run_pajama(const std::string& args) { return run_command(quote(pajama_exe()) + " " + args); }

// The mpiexec prefix for `np` ranks on this machine (oversubscribed, as root, unbound).
inline std::string mpirun(int np) {
  return "mpiexec -n " + std::to_string(np) +
         " --oversubscribe --allow-run-as-root --bind-to none -x OMP_NUM_THREADS=1 ";
}

// Starts `cmd` through /bin/sh with exec (so the pid is the command's own), its output
// to `log_path`; -1 when it cannot start.
inline pid_t spawn_command(const std::string& cmd, const std::string& log_path) {
  std::string full = "exec " + cmd + " > " + log_path + " 2>&1";
  std::string sh = "/bin/sh", dash_c = "-c";
  char* argv[] = {sh.data(), dash_c.data(), full.data(), nullptr};
  pid_t pid = -1;
  if (::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, argv, environ) != 0) return -1;
  return pid;
}

// Exit code of a spawned process (128 + signal when killed), -1 when it cannot be waited on.
inline int wait_exit(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) < 0) return -1;
  return exit_code_of(status);
}

// Direct children of `parent`, from /proc.
inline std::vector<pid_t> child_pids(pid_t parent) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    std::ifstream stat("/proc/" + std::string(e->d_name) + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

// ---- files -------------------------------------------------------------------------

// A fresh directory under the system temp dir (pajama-<tag>-XXXXXX), removed with
// everything in it when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "test") {
    std::string tmpl = (fs::temp_directory_path() / ("pajama-" + tag + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + tmpl);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  // The directory, or `name` inside it, as a string for command lines.
  std::string str(const std::string& name = "") const { return (name.empty() ? path_ : path_ / name).string(); }

 private:
  fs::path path_;
};

// The whole file as bytes; empty when it cannot be read.
inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Replaces the file's contents with `bytes`.
inline void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// ---- a run's structured output ----------------------------------------------------

// One record of <run dir>/metrics.jsonl: the fields every test reads, and the whole
// record for the others (peak_memory_mb, host_syncs, ...).
struct MetricRecord {
  int64_t step = 0;
  double loss = 0;
  double grad_norm = 0;
  double lr = 0;
  nlohmann::json json;
};

inline std::vector<MetricRecord> read_metrics(const fs::path& run_dir) {
  std::vector<MetricRecord> out;
  std::istringstream in(read_file(run_dir / "metrics.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    out.push_back({j.at("step").get<int64_t>(), j.at("loss").get<double>(), j.at("grad_norm").get<double>(),
                   j.at("lr").get<double>(), std::move(j)});
  }
  return out;
}

// The last JSON object a command printed on a line of its own (a `--json` report, or a
// test script's result after library warnings).
inline nlohmann::json last_json_line(const std::string& output) {
  std::istringstream in(output);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty() && line.front() == '{') last = line;
  }
  if (last.empty()) {
    ADD_FAILURE() << "no JSON line in the output:\n" << output;
    return nlohmann::json::object();
  }
  return nlohmann::json::parse(last);
}

}  // namespace pajama::testing
