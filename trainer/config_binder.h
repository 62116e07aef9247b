// A two-way, strict mapping between a YAML tree and the typed config structs that
// each module owns. One mapping function per section serves both directions:
//   void bind(ConfigBinder& b, LrScheduleConfig& c) { b.field("lr", c.lr); ... }
// In load mode a field present in the YAML overwrites the struct's default; a wrong
// type, an unknown key (finish()) or a missing section is a ConfigError that names the
// file, line and key path ("configs/tiny.yaml:12: train.micro_batch: unknown key;
// valid keys: ..."). Values set with --set are reported as "--set key=value".
// In dump mode the same calls write the resolved values into a YAML tree.
//
// The binding is also the one map from a component's fields to YAML key paths: in load
// mode every field() records its member's address with its key path, so a ConfigError
// that a module's validate() raises about its own fields (core/error.h ConfigField:
// "seq_len", at &cfg.train.seq_len) is reported with the key path and its location
// ("configs/tiny.yaml:7: train.seq_len must be positive, got 0") by describe().
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

namespace pajama {

// Where each key path came from, for error messages: "file:line" or "--set k=v".
struct ConfigOrigins {
  std::string file;
  std::map<std::string, std::string> overrides;  // key path -> "--set k=v"
  std::map<std::string, std::string> seen;       // key path -> location, filled while loading
  std::map<const void*, std::string> members;    // bound struct member -> key path, filled while loading
  // Lenient loading (a checkpoint's config.yaml written by another version): unknown keys
  // and values of the wrong type are recorded here and skipped instead of thrown.
  std::vector<std::string>* lenient_notes = nullptr;
  std::string locate(const std::string& path, const YAML::Node& node) const;
  // "<location>: <message>" with each of the error's fields named by its key path; the
  // location is that of the first field present in the YAML or --set (else the file).
  // A ConfigError without bound fields keeps its text after the file name.
  std::string describe(const ConfigError& e) const;
};

class ConfigBinder {
 public:
  enum class Mode { kLoad, kDump };

  static ConfigBinder loader(YAML::Node node, std::shared_ptr<ConfigOrigins> origins);
  static ConfigBinder dumper(YAML::Node out);

  Mode mode() const { return mode_; }
  bool loading() const { return mode_ == Mode::kLoad; }
  // True if the key is present in the YAML (load mode) — lets a section apply a
  // preset before its other fields.
  bool has(const std::string& key) const;

  void field(const std::string& key, int64_t& value);
  void field(const std::string& key, double& value);
  void field(const std::string& key, bool& value);
  void field(const std::string& key, std::string& value);
  void field(const std::string& key, std::vector<double>& value);
  // A list of strings; a single scalar is a one-element list.
  void field(const std::string& key, std::vector<std::string>& value);

  // Load mode: errors about these members name `key`, a field bound through a converted
  // local value (optim.betas as beta1 and beta2, log.peak_flops as a string).
  void attribute(const std::string& key, std::initializer_list<const void*> members);

  // A nested map. The callback binds its fields; finish() runs after it.
  void section(const std::string& key, const std::function<void(ConfigBinder&)>& bind_fn);
  // A list of maps, each bound by bind_item into a fresh T.
  template <typename T>
  void list(const std::string& key, std::vector<T>& items, const std::function<void(ConfigBinder&, T&)>& bind_item);

  // Load mode: every key of this map must have been bound, else ConfigError listing the valid keys.
  void finish();
  // Throws ConfigError "<location>: <path>.<key>: <message>".
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  // As fail() when loading strictly; in lenient mode records the message and returns.
  void problem(const std::string& key, const std::string& message) const;
  std::string path_of(const std::string& key) const { return prefix_.empty() ? key : prefix_ + "." + key; }

 private:
  ConfigBinder(Mode mode, YAML::Node node, std::string prefix, std::shared_ptr<ConfigOrigins> origins)
      : mode_(mode), node_(std::move(node)), prefix_(std::move(prefix)), origins_(std::move(origins)) {}
  YAML::Node child(const std::string& key);  // load mode: marks the key as known
  template <typename T>
  void scalar(const std::string& key, T& value, const char* type_name);
  size_t list_size(const std::string& key);
  ConfigBinder item(const std::string& key, size_t i);

  Mode mode_;
  YAML::Node node_;
  std::string prefix_;
  std::shared_ptr<ConfigOrigins> origins_;
  std::vector<std::string> known_;
};

template <typename T>
void ConfigBinder::list(const std::string& key, std::vector<T>& items,
                        const std::function<void(ConfigBinder&, T&)>& bind_item) {
  if (loading()) {
    known_.push_back(key);
    origins_->members[&items] = path_of(key);
    if (!node_[key]) return;
    origins_->seen[path_of(key)] = origins_->locate(path_of(key), node_[key]);
    const size_t n = list_size(key);
    items.assign(n, T{});
    for (size_t i = 0; i < n; ++i) {
      ConfigBinder b = item(key, i);
      bind_item(b, items[i]);
      b.finish();
    }
  } else {
    YAML::Node seq(YAML::NodeType::Sequence);
    for (auto& it : items) {
      YAML::Node m(YAML::NodeType::Map);
      ConfigBinder b(Mode::kDump, m, path_of(key), origins_);
      bind_item(b, it);
      seq.push_back(m);
    }
    node_[key] = seq;
  }
}

// Parses a YAML file into a tree and applies "a.b=c" overrides (c parsed as YAML).
// Throws ConfigError naming the file/line for syntax errors, and the override for bad ones.
YAML::Node load_yaml_with_overrides(const std::string& file, const std::vector<std::string>& overrides,
                                    ConfigOrigins& origins);

// Throws ConfigError(origins.describe(e)): a module's validate() error with key paths and location.
[[noreturn]] void rethrow_with_location(const ConfigOrigins& origins, const ConfigError& e);

}  // namespace pajama
