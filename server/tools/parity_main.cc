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

#include "absl/status/status.h"
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
  std::cerr
      << "usage: attune-parity [--device cpu|cuda:N] [--dtype float32|bfloat16] FIXTURE_DIR...\n";
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

// Reads the flags into `options`; false on an unknown flag.
bool ParseFlags(int argc, char** argv, Options* options) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--device" && i + 1 < argc) {
      options->device = argv[++i];
    } else if (arg == "--dtype" && i + 1 < argc) {
      options->dtype = argv[++i];
    } else if (arg.rfind("--", 0) == 0) {
      return false;
    } else {
      options->fixtures.push_back(arg);
    }
  }
  return true;
}

// The golden tensor `key` ("input_ids", "attention_mask" or "logits") on `device`.
torch::Tensor Golden(const SafetensorsFile& golden, const char* key, const torch::Device& device) {
  const TensorView* view = golden.Find(key);
  return TensorFromView(*view, TorchDtype(view->dtype), device);
}

// The model's logits for the fixture's inputs, in eval mode; bf16 on CUDA runs under autocast.
torch::Tensor Logits(Model& model, const SafetensorsFile& golden, const Options& options,
                     const torch::Device& device) {
  const bool bf16 = options.dtype == "bfloat16";
  model.SetTraining(false);
#if TORCH_VERSION_MAJOR >= 2
  if (bf16 && device.is_cuda()) {
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  }
#endif
  torch::Tensor logits =
      model.Forward(Golden(golden, "input_ids", device), Golden(golden, "attention_mask", device));
#if TORCH_VERSION_MAJOR >= 2
  at::autocast::set_autocast_enabled(at::kCUDA, false);
  at::autocast::clear_cache();
#endif
  return logits;
}

// max |logits - transformers| / max |transformers|, in fp32.
double RelativeError(const torch::Tensor& logits, const SafetensorsFile& golden,
                     const torch::Device& device) {
  torch::Tensor want = Golden(golden, "logits", device).to(torch::kFloat32);
  // Padding positions of causal-LM logits are not compared: transformers computes them too,
  // but they depend on the padding implementation, not on the model.
  torch::Tensor got = logits.to(torch::kFloat32);
  if (got.dim() == 3) {
    torch::Tensor mask = Golden(golden, "attention_mask", device).unsqueeze(-1).to(torch::kBool);
    got = got.masked_fill(~mask, 0);
    want = want.masked_fill(~mask, 0);
  }
  return (got - want).abs().max().item<double>() / want.abs().max().item<double>();
}

// The fixture's name: the last component of its directory.
std::string FixtureName(const std::string& dir) {
  fs::path name = fs::path(dir).lexically_normal();
  if (name.filename().empty()) name = name.parent_path();
  return name.filename().string();
}

// Runs one fixture directory and prints its JSON line; the error if the model or the golden
// outputs cannot be loaded.
absl::Status RunFixture(const std::string& dir, const Options& options,
                        const torch::Device& device) {
  nlohmann::json config = nlohmann::json::parse(std::ifstream(fs::path(dir) / "config.json"));
  ModelOptions model_options;
  TaskFor(config, &model_options.task, &model_options.num_labels);
  model_options.device = device;
  model_options.frozen_dtype = options.dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
  auto model = LoadModel(dir, model_options);
  auto golden = SafetensorsFile::Open((fs::path(dir) / "golden.safetensors").string());
  if (!model.ok()) return model.status();
  if (!golden.ok()) return golden.status();
  torch::NoGradGuard no_grad;
  torch::Tensor logits = Logits(**model, **golden, options, device);
  const double error = RelativeError(logits, **golden, device);
  std::cout << nlohmann::json{{"fixture", FixtureName(dir)},
                              {"device", options.device},
                              {"dtype", options.dtype},
                              {"relative_error", error}}
                   .dump()
            << std::endl;
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!ParseFlags(argc, argv, &options)) return Usage();
  if (options.fixtures.empty() || (options.dtype != "float32" && options.dtype != "bfloat16")) {
    return Usage();
  }
  const torch::Device device(options.device);
  int failures = 0;
  for (const std::string& dir : options.fixtures) {
    if (absl::Status status = RunFixture(dir, options, device); !status.ok()) {
      std::cerr << dir << ": " << status << "\n";
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}
