// Errors carry context. Every failure that a user can cause (bad config, bad data,
// bad checkpoint, failed collective) throws a typed pajama error whose message names
// the file, key, line or rank involved and says what to do. Internal invariants use
// PAJAMA_CHECK, which stays on in every build type.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pajama {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// A setting as its owner names it: the member's name in the config struct
// ("seq_len", "datasets[1].weight") and its address. Components name only their own
// fields; trainer/config_binder maps the address to the YAML key path it was bound
// from ("train.seq_len") and its file:line, so no component hard-codes a trainer key.
struct ConfigField {
  std::string name;
  const void* value = nullptr;
};
#define PAJAMA_FIELD(member) (::pajama::ConfigField{#member, &(member)})

class ConfigError : public Error {
 public:
  using Error::Error;
  // An invalid setting: `fields` are the settings the message names by the same names,
  // the one at fault first.
  ConfigError(std::vector<ConfigField> fields, const std::string& message)
      : Error(message), fields_(std::move(fields)) {}
  const std::vector<ConfigField>& fields() const { return fields_; }

 private:
  std::vector<ConfigField> fields_;
};
class DataError : public Error { public: using Error::Error; };
class CheckpointError : public Error { public: using Error::Error; };
class CommError : public Error { public: using Error::Error; };

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

// str("a=", 1, " b=", 2.5) -> "a=1 b=2.5"
template <typename... Args>
std::string str(Args&&... args) {
  return detail::concat(std::forward<Args>(args)...);
}

// join(items, ", ") -> "a, b, c": the items (strings or anything += appends to a string)
// with `sep` between them.
template <typename Range>
std::string join(const Range& items, std::string_view sep = ", ") {
  std::string out;
  bool first = true;
  for (const auto& item : items) {
    if (!first) out += sep;
    first = false;
    out += item;
  }
  return out;
}

// Rethrows the exception in flight with `context` prepended, keeping its type:
//   try { load(path); } catch (...) { rethrow_with_context("loading checkpoint ", path); }
[[noreturn]] void rethrow_with_context(const std::string& context);
template <typename... Args>
[[noreturn]] void rethrow_with_context(Args&&... args) {
  // A named lvalue, so overload resolution picks the non-template above.
  const std::string context = str(std::forward<Args>(args)..., ": ");
  rethrow_with_context(context);
}

}  // namespace pajama

// PAJAMA_CHECK(cond, "message ", value, ...) throws pajama::Error.
// PAJAMA_CHECK_AS(ErrorType, cond, ...) throws the given error type.
#define PAJAMA_CHECK_AS(ErrorType, cond, ...)                                   \
  do {                                                                          \
    if (!(cond)) [[unlikely]] {                                                 \
      throw ErrorType(::pajama::str(__VA_ARGS__));                              \
    }                                                                           \
  } while (0)
#define PAJAMA_CHECK(cond, ...) PAJAMA_CHECK_AS(::pajama::Error, cond, __VA_ARGS__)
#define PAJAMA_FAIL_AS(ErrorType, ...) throw ErrorType(::pajama::str(__VA_ARGS__))
// In a config struct's validate(): PAJAMA_CHECK_FIELD(cond, member, "member must be ...")
// throws ConfigError about `member`; the message names it as the struct does.
#define PAJAMA_CHECK_FIELD(cond, member, ...)                                   \
  do {                                                                          \
    if (!(cond)) [[unlikely]] {                                                 \
      throw ::pajama::ConfigError({PAJAMA_FIELD(member)}, ::pajama::str(__VA_ARGS__)); \
    }                                                                           \
  } while (0)
