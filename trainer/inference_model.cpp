#include "trainer/inference_model.h"

#include <filesystem>

#include "core/error.h"
#include "model/hf_checkpoint.h"
#include "model/safetensors.h"
#include "trainer/checkpoint_layout.h"

namespace pajama {

namespace fs = std::filesystem;

InferenceModel load_inference_model(const std::string& checkpoint, const std::string& hf_dir, torch::Device device,
                                    std::optional<torch::ScalarType> dtype) {
  PAJAMA_CHECK_AS(ConfigError, checkpoint.empty() != hf_dir.empty(),
                  "give exactly one of --checkpoint RUN_OR_CHECKPOINT_DIR and --hf HF_DIR");
  InferenceModel out;
  torch::NoGradGuard no_grad;
  if (!hf_dir.empty()) {
    PAJAMA_CHECK_AS(ConfigError, fs::is_directory(hf_dir), "--hf ", hf_dir, " is not a directory");
    out.model = Llama(read_hf_config(hf_dir));
    load_hf_weights(out.model, hf_dir);
    if (fs::exists(fs::path(hf_dir) / "tokenizer.model")) out.tokenizer = (fs::path(hf_dir) / "tokenizer.model").string();
    out.source = hf_dir;
  } else {
    const fs::path dir = resolve_checkpoint_dir(checkpoint);
    Manifest manifest;
    const std::string problem = verify_checkpoint(dir, manifest);
    PAJAMA_CHECK_AS(CheckpointError, problem.empty(), dir.string(), ": ", problem);
    const CheckpointModel saved = read_checkpoint_model(dir, manifest);
    out.model = Llama(saved.shape);
    const SafetensorsReader weights(dir / "model.safetensors");
    for (auto& p : out.model->named_parameters()) {
      const torch::Tensor t = weights.tensor(p.key());
      PAJAMA_CHECK_AS(CheckpointError, t.sizes() == p.value().sizes(), dir.string(), "/model.safetensors: ", p.key(),
                      " has shape ", t.sizes(), ", the model expects ", p.value().sizes());
      p.value().copy_(t);
    }
    if (!dtype) dtype = saved.dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
    out.tokenizer = saved.tokenizer;
    out.source = dir.string();
  }
  out.model->to(device, dtype.value_or(out.model->parameters().front().scalar_type()));
  out.model->eval();
  return out;
}

torch::Device inference_device(const std::string& name, const std::string& option) {
  const bool cuda = torch::cuda::is_available();
  PAJAMA_CHECK_AS(ConfigError, name == "auto" || name == "cpu" || name == "cuda", option,
                  " must be auto, cpu or cuda; got '", name, "'");
  PAJAMA_CHECK_AS(ConfigError, name != "cuda" || cuda, option, " cuda: no CUDA device is visible (or this build has no CUDA)");
  return (name == "cuda" || (name == "auto" && cuda)) ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
}

std::optional<torch::ScalarType> inference_dtype(const std::string& name, const torch::Device& device,
                                                 const std::string& option) {
  PAJAMA_CHECK_AS(ConfigError, name == "auto" || name == "fp32" || name == "bf16", option,
                  " must be auto, fp32 or bf16; got '", name, "'");
  if (name == "fp32") return torch::kFloat32;
  if (name == "bf16" || device.is_cuda()) return torch::kBFloat16;
  return std::nullopt;
}

}  // namespace pajama
