// attune-parity: runs the parity fixtures (tests/fixtures/parity/*) through attune's models on a
// chosen device and dtype and prints, per fixture, the relative error of the logits against
// transformers' fp32 golden outputs:
//
//   attune-parity --device cuda:0 --dtype bfloat16 tests/fixtures/parity/*/
//
// One JSON object per line: {"fixture", "device", "dtype", "relative_error"}, where the error is
// max |attune - transformers| / max |transformers|. The CPU tests check fp32 parity on every
// build; this tool exists to measure the CUDA fp32 and bf16 paths on the GPU machine.
#include <torch/torch.h>
#include <torch/version.h>
#if TORCH_VERSION_MAJOR >= 2
#include <ATen/autocast_mode.h>
#endif

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "server/engine/model.h"
#include "server/engine/safetensors.h"
#include "server/engine/safetensors_torch.h"

namespace {

using namespace attune;          // NOLINT: a small tool
using namespace attune::engine;  // NOLINT
namespace fs = std::filesystem;

struct Options {
  std::string device = "cpu";
  std::string dtype = "float32";  // of the frozen base weights: float32 or bfloat16
  std::vector<std::string> fixtures;
};

int Usage() {
  std::cerr << "usage: attune-parity [--device cpu|cuda:N] [--dtype float32|bfloat16] FIXTURE_DIR...\n";
  return 2;
}

// Task and label count from config.json's architecture.
void TaskFor(const nlohmann::json& config, Task* task, int* num_labels) {
  const std::string arch = config["architectures"][0].get<std::string>();
  if (arch.find("ForCausalLM") != std::string::npos) {
    *task = Task::kCausalLm;
    *num_labels = 0;
    return;
  }
  if (config.value("problem_type", "") == "regression") {
    *task = Task::kRegression;
    *num_labels = 1;
    return;
  }
  *task = Task::kSequenceClassification;
  // transformers writes id2label, or num_labels, or neither (then 2).
  *num_labels = config.contains("id2label") ? static_cast<int>(config["id2label"].size())
                                            : config.value("num_labels", 2);
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--device" && i + 1 < argc) {
      options.device = argv[++i];
    } else if (arg == "--dtype" && i + 1 < argc) {
      options.dtype = argv[++i];
    } else if (arg.rfind("--", 0) == 0) {
      return Usage();
    } else {
      options.fixtures.push_back(arg);
    }
  }
  if (options.fixtures.empty() || (options.dtype != "float32" && options.dtype != "bfloat16")) {
    return Usage();
  }
  const torch::Device device(options.device);
  const bool bf16 = options.dtype == "bfloat16";
  int failures = 0;
  for (const std::string& dir : options.fixtures) {
    nlohmann::json config = nlohmann::json::parse(std::ifstream(fs::path(dir) / "config.json"));
    ModelOptions model_options;
    TaskFor(config, &model_options.task, &model_options.num_labels);
    model_options.device = device;
    model_options.frozen_dtype = bf16 ? torch::kBFloat16 : torch::kFloat32;
    auto model = LoadModel(dir, model_options);
    auto golden = SafetensorsFile::Open((fs::path(dir) / "golden.safetensors").string());
    if (!model.ok() || !golden.ok()) {
      std::cerr << dir << ": " << (model.ok() ? golden.status() : model.status()) << "\n";
      ++failures;
      continue;
    }
    auto get = [&](const char* key) {
      const TensorView* view = (*golden)->Find(key);
      return TensorFromView(*view, TorchDtype(view->dtype), device);
    };
    torch::NoGradGuard no_grad;
    (*model)->SetTraining(false);
#if TORCH_VERSION_MAJOR >= 2
    if (bf16 && device.is_cuda()) {
      at::autocast::set_autocast_enabled(at::kCUDA, true);
      at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    }
#endif
    torch::Tensor logits = (*model)->Forward(get("input_ids"), get("attention_mask"));
#if TORCH_VERSION_MAJOR >= 2
    at::autocast::set_autocast_enabled(at::kCUDA, false);
    at::autocast::clear_cache();
#endif
    torch::Tensor want = get("logits").to(torch::kFloat32);
    // Padding positions of causal-LM logits are not compared: transformers computes them too,
    // but they depend on the padding implementation, not on the model.
    torch::Tensor got = logits.to(torch::kFloat32);
    if (got.dim() == 3) {
      torch::Tensor mask = get("attention_mask").unsqueeze(-1).to(torch::kBool);
      got = got.masked_fill(~mask, 0);
      want = want.masked_fill(~mask, 0);
    }
    const double error = (got - want).abs().max().item<double>() / want.abs().max().item<double>();
    fs::path name = fs::path(dir).lexically_normal();
    if (name.filename().empty()) name = name.parent_path();
    std::cout << nlohmann::json{{"fixture", name.filename().string()},
                                {"device", options.device},
                                {"dtype", options.dtype},
                                {"relative_error", error}}
                     .dump()
              << std::endl;
  }
  return failures == 0 ? 0 : 1;
}
