#include "trainer/metrics.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"

namespace pajama {

namespace {

// Rewrites a JSON-lines file (atomically) without the records of steps after `step`.
void drop_records_after(const std::filesystem::path& path, int64_t step) {
  if (!std::filesystem::exists(path)) return;
  std::istringstream in(read_file(path));
  std::string kept, line;
  int64_t dropped = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded() && j.contains("step") && j["step"].is_number_integer() && j["step"].get<int64_t>() > step) {
      ++dropped;
      continue;
    }
    kept += line + "\n";
  }
  if (dropped == 0) return;
  write_file_atomic(path, kept);
  log_info("resumed at step ", step, ": dropped ", dropped, " record(s) of later steps from ", path.string());
}

}  // namespace

double known_peak_flops(const std::string& name) {
  const auto has = [&](const char* part) { return name.find(part) != std::string::npos; };
  if (has("H100") && (has("PCIe") || has("PCIE"))) return 756e12;
  if (has("H100") || has("H200") || has("H800") || has("GH200")) return 989e12;
  if (has("A100") || has("A800")) return 312e12;
  if (has("L40S")) return 362e12;
  if (has("B200")) return 2250e12;
  return 0;
}

MetricsLogger::MetricsLogger(const std::string& run_dir, bool enabled, int64_t resumed_step) : enabled_(enabled) {
  if (!enabled_) return;
  if (resumed_step > 0) {
    for (const char* name : {"metrics.jsonl", "eval.jsonl", "skipped_steps.jsonl"}) {
      drop_records_after(std::filesystem::path(run_dir) / name, resumed_step);
    }
  }
  const auto path = std::filesystem::path(run_dir) / "metrics.jsonl";
  jsonl_ = std::fopen(path.c_str(), "a");
  PAJAMA_CHECK(jsonl_ != nullptr, "cannot open ", path.string(), " for appending: ", std::strerror(errno));
  tensorboard_ = std::make_unique<TensorBoardWriter>((std::filesystem::path(run_dir) / "tb").string());
  if (resumed_step > 0) tensorboard_->add_session_start(resumed_step + 1);
}

MetricsLogger::~MetricsLogger() {
  if (jsonl_ != nullptr) std::fclose(jsonl_);
}

void MetricsLogger::log(const StepMetrics& m) {
  if (!enabled_) return;
  char line[320];
  char mfu_buf[16];
  if (m.mfu) std::snprintf(mfu_buf, sizeof mfu_buf, "%.1f%%", *m.mfu * 100.0);
  char skipped_buf[48];
  std::snprintf(skipped_buf, sizeof skipped_buf, " | skipped %lld", static_cast<long long>(m.skipped_steps));
  std::snprintf(line, sizeof line,
                "step %6lld/%lld | loss %.4f | lr %.3e | grad_norm %.3f | %.0f tok/s | mfu %s | mem %.0f MB | elapsed %s | eta %s%s",
                static_cast<long long>(m.step), static_cast<long long>(m.max_steps), m.loss, m.lr, m.grad_norm,
                m.tokens_per_s, m.mfu ? mfu_buf : "n/a", m.peak_memory_mb, format_duration(m.elapsed_s).c_str(),
                format_duration(m.eta_s).c_str(), m.skipped_steps > 0 ? skipped_buf : "");
  log_info(line);

  nlohmann::json j;
  j["step"] = m.step;
  j["loss"] = m.loss;
  j["lr"] = m.lr;
  j["grad_norm"] = m.grad_norm;
  j["tokens_per_s"] = m.tokens_per_s;
  j["mfu"] = m.mfu ? nlohmann::json(*m.mfu) : nlohmann::json(nullptr);
  j["elapsed_s"] = m.elapsed_s;
  j["tokens_seen"] = m.tokens_seen;
  j["peak_memory_mb"] = m.peak_memory_mb;
  j["skipped_steps"] = m.skipped_steps;
  if (m.host_syncs) {
    j["host_syncs"] = *m.host_syncs;
    j["host_sync_steps"] = m.host_sync_steps;
  }
  const std::string text = j.dump() + "\n";
  std::fwrite(text.data(), 1, text.size(), jsonl_);
  std::fflush(jsonl_);

  tensorboard_->add_scalar("train/loss", m.step, m.loss);
  tensorboard_->add_scalar("train/lr", m.step, m.lr);
  tensorboard_->add_scalar("train/grad_norm", m.step, m.grad_norm);
  tensorboard_->add_scalar("perf/tokens_per_s", m.step, m.tokens_per_s);
  if (m.mfu) tensorboard_->add_scalar("perf/mfu", m.step, *m.mfu);
  tensorboard_->add_scalar("perf/peak_memory_mb", m.step, m.peak_memory_mb);
  tensorboard_->add_scalar("train/skipped_steps", m.step, static_cast<double>(m.skipped_steps));
  tensorboard_->flush();
}

void MetricsLogger::scalar(const std::string& tag, int64_t step, double value) {
  if (!enabled_) return;
  tensorboard_->add_scalar(tag, step, value);
  tensorboard_->flush();
}

}  // namespace pajama
