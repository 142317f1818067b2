// Building blocks shared by the encoder (roberta.cc) and decoder (llama.cc) architectures:
// loading frozen tensors, target projections and task heads, and the norms and activations they
// use. Internal to the engine.
//
// A `BuildContext` carries what every load needs (the weights, the frozen dtype and device, the
// targets and adapter settings, the seeded generator) and collects warnings for the caller.
// Random draws happen in load order on one CPU generator seeded with ModelOptions::seed: every
// LoRA A layer by layer, then any head that the checkpoint lacks.
#ifndef ATTUNE_SERVER_ENGINE_LAYERS_H_
#define ATTUNE_SERVER_ENGINE_LAYERS_H_

#include <torch/torch.h>

#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "server/engine/lora.h"
#include "server/engine/model.h"
#include "server/engine/safetensors_torch.h"

namespace attune::engine {

struct BuildContext {
  const WeightLoader* weights = nullptr;
  torch::Dtype frozen_dtype = torch::kFloat32;
  torch::Device device = torch::kCPU;
  Method method = Method::kLora;
  LoraSettings lora;
  std::set<std::string> targets;  // projections, e.g. {"q", "v"}
  torch::Generator generator;
  std::vector<std::string> warnings;
  int64_t frozen_parameters = 0;  // elements of every frozen tensor loaded so far
};

inline BuildContext MakeBuildContext(const WeightLoader& weights, const ModelOptions& options) {
  BuildContext ctx;
  ctx.weights = &weights;
  ctx.frozen_dtype = options.frozen_dtype;
  ctx.device = options.device;
  ctx.method = options.method;
  ctx.lora = {options.lora_rank, options.lora_alpha, options.lora_dropout, options.use_rslora};
  ctx.targets.insert(options.targets.begin(), options.targets.end());
  ctx.generator = at::detail::createCPUGenerator(options.seed);
  return ctx;
}

// A frozen tensor (requires_grad false) in the frozen dtype.
inline absl::StatusOr<torch::Tensor> LoadFrozen(BuildContext& ctx, const std::string& key,
                                                const std::vector<int64_t>& shape) {
  ASSIGN_OR_RETURN(torch::Tensor t, ctx.weights->Load(key, shape, ctx.frozen_dtype, ctx.device));
  ctx.frozen_parameters += t.numel();
  return t;
}

// The projection at `module_path` (weight [out, in], optional bias), with an adapter when
// `projection` is one of the targets.
inline absl::StatusOr<AdaptedSite> LoadSite(BuildContext& ctx, const std::string& module_path,
                                            const std::string& projection, int64_t out, int64_t in,
                                            bool has_bias) {
  ASSIGN_OR_RETURN(torch::Tensor w, ctx.weights->Load(module_path + ".weight", {out, in},
                                                      ctx.frozen_dtype, ctx.device));
  torch::Tensor b;
  if (has_bias) {
    ASSIGN_OR_RETURN(b,
                     ctx.weights->Load(module_path + ".bias", {out}, ctx.frozen_dtype, ctx.device));
  }
  AdapterKind kind = AdapterKind::kNone;
  if (!projection.empty() && ctx.targets.count(projection)) {
    kind = ctx.method == Method::kFull   ? AdapterKind::kFull
           : ctx.method == Method::kDora ? AdapterKind::kDora
                                         : AdapterKind::kLora;
  }
  if (kind != AdapterKind::kFull)
    ctx.frozen_parameters += w.numel() + (b.defined() ? b.numel() : 0);
  return AdaptedSite{module_path, projection, AdaptedLinear(w, b, kind, ctx.lora, &ctx.generator)};
}

// A trainable head tensor set (fp32, requires_grad), under the base model's key.
struct HeadTensor {
  std::string key;  // e.g. "classifier.out_proj.weight"
  torch::Tensor tensor;
  bool no_decay = false;
};

// The head linear `module_path` [out, in] (+ bias): from the checkpoint when it holds it with this
// shape; otherwise drawn N(0, init_std) with a zero bias (transformers' init of a new nn.Linear,
// init_std = config.json's initializer_range), and a warning names each tensor so made, e.g.
// "head 'classifier.dense' is not in the checkpoint; initialised from the seed:
// classifier.dense.weight (normal, mean 0, std 0.02) and classifier.dense.bias (zeros)".
inline std::vector<HeadTensor> LoadHeadLinear(BuildContext& ctx, const std::string& module_path,
                                              int64_t out, int64_t in, bool has_bias,
                                              double init_std) {
  const std::string wkey = module_path + ".weight";
  const std::string bkey = module_path + ".bias";
  const TensorView* wv = ctx.weights->Find(wkey);
  const TensorView* bv = has_bias ? ctx.weights->Find(bkey) : nullptr;
  torch::Tensor w;
  torch::Tensor b;
  const std::vector<int64_t> wshape = {out, in};
  if (wv != nullptr && wv->shape == wshape &&
      (!has_bias || (bv && bv->shape == std::vector<int64_t>{out}))) {
    w = TensorFromView(*wv, torch::kFloat32, ctx.device);
    if (has_bias) b = TensorFromView(*bv, torch::kFloat32, ctx.device);
  } else {
    // Named tensor by tensor, as transformers' _init_weights draws a new nn.Linear head.
    const std::string drawn = absl::StrCat(wkey, " (normal, mean 0, std ", init_std, ")",
                                           has_bias ? absl::StrCat(" and ", bkey, " (zeros)") : "");
    ctx.warnings.push_back(absl::StrCat(
        "head '", module_path, "' ",
        wv == nullptr ? "is not in the checkpoint"
                      : absl::StrCat("has shape [", absl::StrJoin(wv->shape, ", "),
                                     "] in the checkpoint, the task needs [", out, ", ", in, "]"),
        "; initialised from the seed: ", drawn));
    w = torch::empty(wshape, torch::kFloat32);
    w.normal_(0.0, init_std, ctx.generator);
    w = w.to(ctx.device);
    if (has_bias) b = torch::zeros({out}, torch::TensorOptions().device(ctx.device));
  }
  std::vector<HeadTensor> head = {{wkey, w.set_requires_grad(true), false}};
  if (has_bias) head.push_back({bkey, b.set_requires_grad(true), true});
  return head;
}

// TrainableParams for head tensors: PEFT's "base_model.model.<key>" with LoRA, the base key with
// Method::kFull.
inline void AppendHeadParameters(const std::vector<HeadTensor>& head, Method method,
                                 std::vector<TrainableParam>* out) {
  for (const HeadTensor& h : head) {
    out->push_back({method == Method::kFull ? h.key : "base_model.model." + h.key, "",
                    ParamRole::kHead, h.no_decay, h.tensor});
  }
}

// Activations named by config.json's "hidden_act". INVALID_ARGUMENT for others.
inline absl::Status CheckActivation(const std::string& name) {
  if (name == "gelu" || name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "relu" ||
      name == "silu" || name == "swish") {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("config.json: hidden_act '", name,
                   "' is not supported; expected gelu, gelu_new, gelu_pytorch_tanh, relu or silu"));
}

inline torch::Tensor Activate(const std::string& name, const torch::Tensor& x) {
  if (name == "gelu") return torch::gelu(x);  // exact (erf)
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return torch::gelu(x, "tanh");
  if (name == "relu") return torch::relu(x);
  return torch::silu(x);
}

// Error for a target the architecture lacks, listing what it has.
inline absl::Status CheckTargets(const std::vector<std::string>& targets,
                                 const std::vector<std::string>& supported,
                                 const std::string& architecture) {
  for (const std::string& t : targets) {
    if (std::find(supported.begin(), supported.end(), t) == supported.end()) {
      return absl::InvalidArgumentError(absl::StrCat("targets: '", t, "' does not exist in ",
                                                     architecture, "; it has ",
                                                     absl::StrJoin(supported, ",")));
    }
  }
  return absl::OkStatus();
}

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_LAYERS_H_
