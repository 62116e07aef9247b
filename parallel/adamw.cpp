#include "parallel/adamw.h"

#include "core/error.h"

namespace pajama {
namespace {

class AdamW final : public ShardOptimizer {
 public:
  AdamW(const AdamWConfig& config, const ShardLayout& layout) : cfg_(config), layout_(layout) {
    config.validate();
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(layout.device);
    exp_avg_ = torch::zeros({layout.numel}, f32);
    exp_avg_sq_ = torch::zeros({layout.numel}, f32);
    for (size_t i = 0; i < layout.segments.size(); ++i) steps_.push_back(torch::zeros({}, f32));
  }

  std::vector<std::string> state_names() const override { return {"exp_avg", "exp_avg_sq"}; }

  torch::Tensor state(const std::string& name) override {
    if (name == "exp_avg") return exp_avg_;
    if (name == "exp_avg_sq") return exp_avg_sq_;
    PAJAMA_FAIL_AS(CheckpointError, "AdamW has no state '", name, "'; expected exp_avg or exp_avg_sq");
  }

  void step(torch::Tensor& master, const torch::Tensor& grads, double lr) override {
    for (const bool decay : {true, false}) {
      std::vector<torch::Tensor> p, g, m, v, s;
      for (size_t i = 0; i < layout_.segments.size(); ++i) {
        const ShardSegment& seg = layout_.segments[i];
        if (seg.decay != decay || seg.length == 0) continue;
        p.push_back(master.narrow(0, seg.offset, seg.length));
        g.push_back(grads.narrow(0, seg.offset, seg.length));
        m.push_back(exp_avg_.narrow(0, seg.offset, seg.length));
        v.push_back(exp_avg_sq_.narrow(0, seg.offset, seg.length));
        s.push_back(steps_[i]);
      }
      if (p.empty()) continue;
      // As torch.optim.AdamW(fused=True): the caller advances the step counters, then
      // the fused kernel: decoupled decay p *= 1 - lr*wd, bias-corrected moments.
      at::_foreach_add_(s, 1.0);
      at::_fused_adamw_(p, g, m, v, {}, s, lr, cfg_.beta1, cfg_.beta2, decay ? cfg_.weight_decay : 0.0, cfg_.eps,
                        /*amsgrad=*/false, /*maximize=*/false);
    }
  }

  void set_step_count(int64_t steps) override {
    for (auto& s : steps_) s.fill_(static_cast<double>(steps));
  }

  void set_segment_step_count(size_t segment, int64_t steps) override {
    PAJAMA_CHECK(segment < steps_.size(), "AdamW: segment ", segment, " of ", steps_.size());
    steps_[segment].fill_(static_cast<double>(steps));
  }

 private:
  AdamWConfig cfg_;
  ShardLayout layout_;
  torch::Tensor exp_avg_, exp_avg_sq_;
  std::vector<torch::Tensor> steps_;  // one per segment: the fused kernel's state_steps
};

}  // namespace

ShardOptimizerFactory adamw_factory(const AdamWConfig& config) {
  return [config](const ShardLayout& layout) { return std::make_unique<AdamW>(config, layout); };
}

}  // namespace pajama
