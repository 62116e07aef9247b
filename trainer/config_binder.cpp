#include "trainer/config_binder.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/error.h"

namespace pajama {
namespace {

std::string render(const YAML::Node& n) {
  if (n.IsScalar()) return n.Scalar();
  YAML::Emitter e;
  e << YAML::Flow << n;
  return e.c_str();
}

}  // namespace

std::string ConfigOrigins::locate(const std::string& path, const YAML::Node& node) const {
  if (auto it = overrides.find(path); it != overrides.end()) return it->second;
  if (node && node.Mark().line >= 0) return file + ":" + std::to_string(node.Mark().line + 1);
  if (auto it = seen.find(path); it != seen.end()) return it->second;
  return file;
}

ConfigBinder ConfigBinder::loader(YAML::Node node, std::shared_ptr<ConfigOrigins> origins) {
  return ConfigBinder(Mode::kLoad, std::move(node), "", std::move(origins));
}

ConfigBinder ConfigBinder::dumper(YAML::Node out) {
  return ConfigBinder(Mode::kDump, std::move(out), "", std::make_shared<ConfigOrigins>());
}

bool ConfigBinder::has(const std::string& key) const { return loading() && node_.IsMap() && node_[key]; }

void ConfigBinder::fail(const std::string& key, const std::string& message) const {
  const std::string path = path_of(key);
  YAML::Node n = node_.IsMap() ? node_[key] : YAML::Node();
  const std::string where = origins_->locate(path, n ? n : node_);
  throw ConfigError(where + ": " + path + ": " + message);
}

void ConfigBinder::problem(const std::string& key, const std::string& message) const {
  if (origins_->lenient_notes == nullptr) fail(key, message);
  const std::string path = path_of(key);
  YAML::Node n = node_.IsMap() ? node_[key] : YAML::Node();
  origins_->lenient_notes->push_back(origins_->locate(path, n ? n : node_) + ": " + path + ": " + message);
}

YAML::Node ConfigBinder::child(const std::string& key) {
  known_.push_back(key);
  YAML::Node n = node_[key];
  if (n) origins_->seen[path_of(key)] = origins_->locate(path_of(key), n);
  return n;
}

template <typename T>
void ConfigBinder::scalar(const std::string& key, T& value, const char* type_name) {
  if (!loading()) {
    node_[key] = value;
    return;
  }
  origins_->members[&value] = path_of(key);
  YAML::Node n = child(key);
  if (!n) return;
  // A quoted scalar ("12") has the tag "!" and is a string, never a number.
  if (!n.IsScalar() || (n.Tag() == "!" && !std::is_same_v<T, std::string>)) {
    return problem(key, str("expected ", type_name, ", got '", render(n), "'"));
  }
  try {
    value = n.as<T>();
  } catch (const YAML::Exception&) {
    problem(key, str("expected ", type_name, ", got '", render(n), "'"));
  }
}

void ConfigBinder::field(const std::string& key, int64_t& value) { scalar(key, value, "an integer"); }
void ConfigBinder::field(const std::string& key, double& value) { scalar(key, value, "a number"); }
void ConfigBinder::field(const std::string& key, bool& value) { scalar(key, value, "true or false"); }
void ConfigBinder::field(const std::string& key, std::string& value) { scalar(key, value, "a string"); }

namespace {

// A list rendered inline ("[0.9, 0.95]"), as the resolved config shows lists.
template <typename T>
YAML::Node flow_sequence(const std::vector<T>& values) {
  YAML::Node seq(YAML::NodeType::Sequence);
  for (const auto& v : values) seq.push_back(v);
  seq.SetStyle(YAML::EmitterStyle::Flow);
  return seq;
}

}  // namespace

void ConfigBinder::field(const std::string& key, std::vector<double>& value) {
  if (!loading()) {
    node_[key] = flow_sequence(value);
    return;
  }
  origins_->members[&value] = path_of(key);
  YAML::Node n = child(key);
  if (!n) return;
  if (!n.IsSequence()) fail(key, str("expected a list of numbers, got '", render(n), "'"));
  std::vector<double> out;
  for (const auto& x : n) {
    try {
      out.push_back(x.as<double>());
    } catch (const YAML::Exception&) {
      fail(key, str("expected a list of numbers, got '", render(n), "'"));
    }
  }
  value = out;
}

void ConfigBinder::field(const std::string& key, std::vector<std::string>& value) {
  if (!loading()) {
    if (value.size() == 1) {
      node_[key] = value.front();
      return;
    }
    node_[key] = flow_sequence(value);
    return;
  }
  origins_->members[&value] = path_of(key);
  YAML::Node n = child(key);
  if (!n) return;
  if (n.IsScalar()) {
    value = {n.as<std::string>()};
    return;
  }
  if (!n.IsSequence()) return problem(key, str("expected a string or a list of strings, got '", render(n), "'"));
  std::vector<std::string> out;
  for (const auto& x : n) {
    if (!x.IsScalar()) return problem(key, str("expected a list of strings, got '", render(n), "'"));
    out.push_back(x.as<std::string>());
  }
  value = out;
}

void ConfigBinder::attribute(const std::string& key, std::initializer_list<const void*> members) {
  if (!loading()) return;
  const std::string path = path_of(key);
  // Drops the converted local's own entry: its address dies with the binding.
  std::erase_if(origins_->members, [&](const auto& entry) { return entry.second == path; });
  for (const void* m : members) origins_->members[m] = path;
}

void ConfigBinder::section(const std::string& key, const std::function<void(ConfigBinder&)>& bind_fn) {
  if (!loading()) {
    YAML::Node m(YAML::NodeType::Map);
    ConfigBinder b(Mode::kDump, m, path_of(key), origins_);
    bind_fn(b);
    node_[key] = m;
    return;
  }
  YAML::Node n = child(key);
  if (n && !n.IsMap() && !n.IsNull()) fail(key, str("expected a map of settings, got '", render(n), "'"));
  ConfigBinder b(Mode::kLoad, n && n.IsMap() ? n : YAML::Node(YAML::NodeType::Map), path_of(key), origins_);
  bind_fn(b);
  b.finish();
}

size_t ConfigBinder::list_size(const std::string& key) {
  YAML::Node n = node_[key];
  if (!n.IsSequence()) fail(key, str("expected a list, got '", render(n), "'"));
  return n.size();
}

ConfigBinder ConfigBinder::item(const std::string& key, size_t i) {
  YAML::Node n = node_[key][i];
  const std::string p = path_of(key) + "[" + std::to_string(i) + "]";
  if (!n.IsMap()) {
    throw ConfigError(origins_->locate(p, n) + ": " + p + ": expected a map, got '" + render(n) + "'");
  }
  origins_->seen[p] = origins_->locate(p, n);
  return ConfigBinder(Mode::kLoad, n, p, origins_);
}

void ConfigBinder::finish() {
  if (!loading() || !node_.IsMap()) return;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    if (std::find(known_.begin(), known_.end(), key) == known_.end()) {
      std::vector<std::string> valid = known_;
      std::sort(valid.begin(), valid.end());
      const std::string path = path_of(key);
      const std::string message = origins_->locate(path, it->first) + ": " + path + ": unknown key; valid keys" +
                                  (prefix_.empty() ? "" : " under " + prefix_) + ": " + join(valid);
      if (origins_->lenient_notes == nullptr) throw ConfigError(message);
      origins_->lenient_notes->push_back(message);
    }
  }
}

YAML::Node load_yaml_with_overrides(const std::string& file, const std::vector<std::string>& overrides,
                                    ConfigOrigins& origins) {
  origins.file = file;
  PAJAMA_CHECK_AS(ConfigError, std::filesystem::exists(file), file,
                  ": config file not found; pass --config with a path such as configs/tiny.yaml");
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(str(file, ":", e.mark.line + 1, ": YAML syntax error: ", e.msg));
  } catch (const YAML::Exception& e) {
    throw ConfigError(str(file, ": cannot read YAML: ", e.what()));
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  PAJAMA_CHECK_AS(ConfigError, root.IsMap(), file, ": the top level must be a map of sections (run:, model:, ...)");

  for (const auto& ov : overrides) {
    const auto eq = ov.find('=');
    PAJAMA_CHECK_AS(ConfigError, eq != std::string::npos && eq > 0, "--set ", ov,
                    ": expected key.path=value, e.g. --set train.max_steps=100");
    const std::string path = ov.substr(0, eq);
    const std::string text = ov.substr(eq + 1);
    YAML::Node value;
    try {
      value = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      throw ConfigError(str("--set ", ov, ": value is not valid YAML: ", e.what()));
    }
    // Walk/create the maps along the path; the last component takes the value.
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
      const auto dot = path.find('.', start);
      parts.push_back(path.substr(start, dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    // yaml-cpp nodes are handles: assigning a child through a copy would rebind the
    // copy, so the path is walked with explicit reset() on each level.
    YAML::Node cur;
    cur.reset(root);
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      PAJAMA_CHECK_AS(ConfigError, !parts[i].empty(), "--set ", ov, ": empty key in path");
      YAML::Node next = cur[parts[i]];
      if (!next || next.IsNull()) {
        cur[parts[i]] = YAML::Node(YAML::NodeType::Map);
        next = cur[parts[i]];
      }
      PAJAMA_CHECK_AS(ConfigError, next.IsMap(), "--set ", ov, ": ", parts[i], " is not a section");
      cur.reset(next);
    }
    cur[parts.back()] = value;
    origins.overrides[path] = "--set " + ov;
  }
  return root;
}

namespace {

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// `text` with every whole-word occurrence of a name replaced by its path, in one pass
// (a path never gets rewritten again). A name is whole when it is neither preceded by a
// word character or '.' nor followed by a word character.
std::string replace_names(const std::string& text, const std::vector<std::pair<std::string, std::string>>& names) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const bool starts_word = i == 0 || (!is_word_char(text[i - 1]) && text[i - 1] != '.');
    const std::pair<std::string, std::string>* hit = nullptr;
    for (const auto& entry : names) {
      const std::string& name = entry.first;
      if (!starts_word || name.empty() || text.compare(i, name.size(), name) != 0) continue;
      if (i + name.size() < text.size() && is_word_char(text[i + name.size()])) continue;
      if (hit == nullptr || name.size() > hit->first.size()) hit = &entry;
    }
    if (hit != nullptr) {
      out += hit->second;
      i += hit->first.size();
    } else {
      out += text[i++];
    }
  }
  return out;
}

}  // namespace

std::string ConfigOrigins::describe(const ConfigError& e) const {
  auto location_of = [&](const std::string& path) -> std::string {
    if (auto it = overrides.find(path); it != overrides.end()) return it->second;
    if (auto it = seen.find(path); it != seen.end()) return it->second;
    return "";
  };
  std::vector<std::pair<std::string, std::string>> names;  // field name -> key path
  std::string where;
  for (const ConfigField& f : e.fields()) {
    const auto member = members.find(f.value);
    if (member == members.end()) continue;
    names.emplace_back(f.name, member->second);
    if (where.empty()) where = location_of(member->second);
  }
  // A default value at fault (its key absent): the closest enclosing key that is present.
  for (std::string path = names.empty() ? "" : names.front().second; where.empty() && !path.empty();) {
    const size_t cut = path.find_last_of(".[");
    path = cut == std::string::npos ? "" : path.substr(0, cut);
    if (!path.empty()) where = location_of(path);
  }
  return (where.empty() ? file : where) + ": " + replace_names(e.what(), names);
}

void rethrow_with_location(const ConfigOrigins& origins, const ConfigError& e) {
  throw ConfigError(origins.describe(e));
}

}  // namespace pajama
