// Seeded mutation fuzzing of pajama's file readers (issue 13, "bad input, systematically").
// A case starts from a small valid file the test builds itself, applies one mutation drawn
// from a std::mt19937_64 with a printed seed, and runs the reader in a forked child (with
// an alarm for hangs). The contract for every corrupted input: a pajama::Error whose
// message names the file, or -- where the mutation leaves a valid file -- a result that
// passes the caller's independent checks. A crash, a hang, another exception type or a
// structurally invalid file accepted in silence fails the test with the seed, the
// mutation's number and what it did, so it can be replayed:
//   PAJAMA_FUZZ_SEED=<seed> test_fuzz --gtest_filter=<case>
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/support.h"
#include "core/error.h"

namespace pajama::testing::fuzz {

namespace fs = std::filesystem;

// Thrown by a case's acceptance check: the reader accepted a file it should have refused,
// or returned a wrong result.
struct BadAccept : std::exception {
  explicit BadAccept(std::string m) : msg(std::move(m)) {}
  const char* what() const noexcept override { return msg.c_str(); }
  std::string msg;
};
#define FUZZ_EXPECT(cond, ...)                                                            \
  do {                                                                                    \
    if (!(cond)) throw ::pajama::testing::fuzz::BadAccept(::pajama::str(__VA_ARGS__)); \
  } while (0)

inline uint64_t fuzz_seed(uint64_t fallback) {
  const char* s = std::getenv("PAJAMA_FUZZ_SEED");
  return s != nullptr && *s != '\0' ? std::strtoull(s, nullptr, 0) : fallback;
}

using testing::read_file;
using testing::TempDir;
using testing::write_file;

// A header field: `width` little-endian bytes at `offset` (a count, a length, a pointer).
struct Field {
  size_t offset = 0;
  size_t width = 8;
  std::string name;
};

inline uint64_t pick_huge(std::mt19937_64& rng, uint64_t file_size) {
  const uint64_t values[] = {0,
                             1,
                             0xFFFFFFFFFFFFFFFFull,
                             0x8000000000000000ull,
                             0x7FFFFFFFFFFFFFFFull,
                             0xFFFFFFFFull,
                             0x80000000ull,
                             0x7FFFFFFFull,
                             uint64_t{1} << 40,
                             uint64_t{1} << 32,
                             file_size,
                             file_size + 1,
                             file_size - 1,
                             file_size * 2,
                             file_size / 2 + 1};
  return values[rng() % std::size(values)];
}

// One random byte-level mutation of `in`; `desc` says what it did. `fields` are the
// format's header fields, targeted by the "huge value" mutation half the time.
inline std::string mutate_bytes(const std::string& in, std::mt19937_64& rng, const std::vector<Field>& fields,
                                std::string& desc) {
  std::string b = in;
  const size_t n = b.size();
  auto pos = [&](size_t limit) { return limit == 0 ? size_t{0} : static_cast<size_t>(rng() % limit); };
  switch (rng() % 7) {
    case 0: {  // truncate
      const size_t len = pos(n);
      b.resize(len);
      desc = str("truncate to ", len, " of ", n, " bytes");
      break;
    }
    case 1: {  // flip 1..8 bits
      const int bits = 1 + static_cast<int>(rng() % 8);
      desc = "flip bits at";
      for (int i = 0; i < bits && n > 0; ++i) {
        const size_t at = pos(n);
        const int bit = static_cast<int>(rng() % 8);
        b[at] = static_cast<char>(b[at] ^ (1 << bit));
        desc += str(" ", at, ":", bit);
      }
      break;
    }
    case 2: {  // zero a range
      const size_t at = pos(n);
      const size_t len = std::min(n - at, 1 + pos(64));
      std::fill(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + len), '\0');
      desc = str("zero [", at, ", ", at + len, ")");
      break;
    }
    case 3: {  // garbage range
      const size_t at = pos(n);
      const size_t len = std::min(n - at, 1 + pos(64));
      for (size_t i = 0; i < len; ++i) b[at + i] = static_cast<char>(rng());
      desc = str("garbage [", at, ", ", at + len, ")");
      break;
    }
    case 4: {  // insert or append garbage
      const size_t at = rng() % 2 ? n : pos(n + 1);
      const size_t len = 1 + pos(32);
      std::string g(len, '\0');
      for (auto& c : g) c = static_cast<char>(rng());
      b.insert(at, g);
      desc = str("insert ", len, " garbage bytes at ", at);
      break;
    }
    default: {  // a huge/edge value in a header field (or anywhere)
      Field f;
      if (!fields.empty() && rng() % 4 != 0) {
        f = fields[rng() % fields.size()];
      } else {
        f.width = rng() % 2 ? 8 : 4;
        f.offset = pos(n >= f.width ? n - f.width + 1 : 1);
        f.name = "anywhere";
      }
      const uint64_t v = pick_huge(rng, n);
      for (size_t i = 0; i < f.width && f.offset + i < n; ++i) b[f.offset + i] = static_cast<char>(v >> (8 * i));
      desc = str("write ", v, " (", f.width, " bytes) into ", f.name, " at ", f.offset);
      break;
    }
  }
  return b;
}

// Replaces one JSON/YAML number token of `text` (chosen at random) with an edge value,
// or, for JSON, changes its type. Returns false when the text has no number.
inline bool mutate_number(std::string& text, std::mt19937_64& rng, std::string& desc, bool json_types = true) {
  std::vector<std::pair<size_t, size_t>> spans;
  for (size_t i = 0; i < text.size();) {
    const bool start = (std::isdigit(static_cast<unsigned char>(text[i])) != 0 || text[i] == '-') &&
                       (i == 0 || std::strchr(" :[,\n", text[i - 1]) != nullptr);
    if (!start) {
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < text.size() && std::strchr("0123456789.eE+-", text[j]) != nullptr) ++j;
    if (j < text.size() && std::strchr(" ,]}\n\r", text[j]) == nullptr) {
      i = j;
      continue;
    }
    spans.emplace_back(i, j);
    i = j;
  }
  if (spans.empty()) return false;
  const auto [b, e] = spans[rng() % spans.size()];
  static const char* kValues[] = {"18446744073709551615", "18446744073709551616", "9223372036854775807",
                                  "-9223372036854775808", "-1",  "0",  "1e308", "-1e308", "1.5", "4294967296",
                                  "2147483648", "99999999999999999999999999", "1e-320", "3"};
  static const char* kTypes[] = {"null", "\"x\"", "[]", "{}", "true"};
  std::string v = kValues[rng() % std::size(kValues)];
  if (json_types && rng() % 5 == 0) v = kTypes[rng() % std::size(kTypes)];
  desc = str("number '", text.substr(b, e - b), "' at ", b, " -> ", v);
  text.replace(b, e - b, v);
  return true;
}

enum class Verdict { kAccepted, kNamedError, kUnnamedError, kOtherException, kBadAccept, kCrashed, kHung };

struct Outcome {
  Verdict verdict = Verdict::kCrashed;
  std::string detail;
};

// Runs `body` in a forked child with an alarm of `timeout_s`. `body` returns normally when
// the reader accepted the input (after checking the result), or throws. A pajama::Error
// must mention `must_name` (the file's name) to count as a named error.
inline Outcome run_isolated(const std::function<void()>& body, const std::string& must_name, unsigned timeout_s = 20) {
  int fds[2];
  if (::pipe(fds) != 0) return {Verdict::kCrashed, "pipe failed"};
  std::cout.flush();
  std::cerr.flush();
  const pid_t pid = ::fork();
  if (pid < 0) return {Verdict::kCrashed, "fork failed"};
  if (pid == 0) {
    ::close(fds[0]);
    ::alarm(timeout_s);
    char code = 'A';
    std::string msg;
    try {
      body();
    } catch (const BadAccept& e) {
      code = 'B';
      msg = e.what();
    } catch (const pajama::Error& e) {
      msg = e.what();
      code = msg.find(must_name) != std::string::npos ? 'E' : 'N';
      msg = std::string(typeid(e).name()) + ": " + msg;
    } catch (const std::exception& e) {
      code = 'X';
      msg = std::string(typeid(e).name()) + ": " + e.what();
    } catch (...) {
      code = 'X';
      msg = "unknown exception type";
    }
    const std::string out = std::string(1, code) + msg;
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t w = ::write(fds[1], out.data() + done, out.size() - done);
      if (w <= 0) break;
      done += static_cast<size_t>(w);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string got;
  char buf[4096];
  ssize_t r;
  while ((r = ::read(fds[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(r));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    if (sig == SIGALRM) return {Verdict::kHung, str("hung (no result within ", timeout_s, " s)")};
    return {Verdict::kCrashed, str("crashed with signal ", sig, " (", strsignal(sig), ")")};
  }
  if (got.empty()) return {Verdict::kCrashed, str("child exited with status ", WEXITSTATUS(status), " and no result")};
  const std::string detail = got.substr(1);
  switch (got[0]) {
    case 'A': return {Verdict::kAccepted, ""};
    case 'E': return {Verdict::kNamedError, detail};
    case 'N': return {Verdict::kUnnamedError, detail};
    case 'B': return {Verdict::kBadAccept, "accepted a bad input: " + detail};
    default: return {Verdict::kOtherException, "threw a non-pajama exception: " + detail};
  }
}

// Per-reader tallies, printed at the end of each case.
struct Tally {
  std::string reader;
  uint64_t seed = 0;
  int cases = 0, accepted = 0, errors = 0, failures = 0;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();

  // Records one outcome; fails the test (naming seed and mutation) unless it is allowed.
  void record(int mutation, const std::string& desc, const Outcome& o) {
    ++cases;
    switch (o.verdict) {
      case Verdict::kAccepted: ++accepted; return;
      case Verdict::kNamedError: ++errors; return;
      default: break;
    }
    ++failures;
    const char* what = o.verdict == Verdict::kUnnamedError ? "threw a pajama error that does not name the file: " : "";
    ADD_FAILURE() << reader << ": seed " << seed << " mutation " << mutation << " (" << desc << ") " << what
                  << o.detail;
  }
  ~Tally() {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "[fuzz] " << reader << ": seed " << seed << ", " << cases << " mutations, " << accepted
              << " accepted, " << errors << " rejected with a named error, " << failures << " failures, " << s
              << " s\n";
  }
};

}  // namespace pajama::testing::fuzz
