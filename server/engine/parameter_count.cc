#include "server/engine/parameter_count.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "server/engine/hf_config.h"
#include "server/engine/safetensors.h"

namespace attune::engine {
namespace {

// Adds up the tensors of one model as its loader reads them. Each call checks that the weights
// hold the tensor with the shape config.json implies (as WeightLoader::Load does).
class Counter {
 public:
  Counter(const SafetensorsModel& weights, const TrainSpec& spec, std::string base_prefix)
      : weights_(weights),
        spec_(spec),
        targets_(spec.targets.begin(), spec.targets.end()),
        base_prefix_(std::move(base_prefix)) {}

  // A frozen tensor (LoadFrozen).
  absl::Status Frozen(const std::string& key, const std::vector<int64_t>& shape) {
    ASSIGN_OR_RETURN(int64_t elements, Elements(key, shape));
    counts_.total += elements;
    return absl::OkStatus();
  }

  // A projection, with its adapter when `projection` is a target (LoadSite).
  absl::Status Site(const std::string& module, const std::string& projection, int64_t out,
                    int64_t in, bool has_bias) {
    ASSIGN_OR_RETURN(int64_t elements, Elements(module + ".weight", {out, in}));
    if (has_bias) {
      ASSIGN_OR_RETURN(int64_t bias, Elements(module + ".bias", {out}));
      elements += bias;
    }
    counts_.total += elements;
    if (projection.empty() || targets_.count(projection) == 0) return absl::OkStatus();
    // kFull trains the weights counted above; LoRA adds A [r, in] and B [out, r] beside them,
    // and DoRA also its magnitude [out].
    int64_t trainable =
        spec_.method == Method::kFull ? elements : int64_t{spec_.lora_rank} * (in + out);
    if (spec_.method == Method::kDora) trainable += out;
    if (spec_.method != Method::kFull) counts_.total += trainable;
    counts_.trainable += trainable;
    return absl::OkStatus();
  }

  // A trainable head linear [out, in] (+ bias), made when the checkpoint lacks it
  // (LoadHeadLinear): its size never depends on the file.
  void Head(int64_t out, int64_t in, bool has_bias) {
    const int64_t elements = out * in + (has_bias ? out : 0);
    counts_.total += elements;
    counts_.trainable += elements;
  }

  const ParameterCounts& counts() const { return counts_; }

 private:
  absl::StatusOr<int64_t> Elements(const std::string& key, const std::vector<int64_t>& shape) {
    const TensorView* view = nullptr;
    for (const std::string& k : HfKeySpellings(key, base_prefix_)) {
      if ((view = weights_.Find(k)) != nullptr) break;
    }
    if (view == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("model '", spec_.model_dir, "': weights lack tensor '", key, "'"));
    }
    if (view->shape != shape) {
      return absl::InvalidArgumentError(
          absl::StrCat("model '", spec_.model_dir, "': tensor '", key, "' has shape [",
                       absl::StrJoin(view->shape, ", "), "] but config.json implies [",
                       absl::StrJoin(shape, ", "), "]"));
    }
    if (view->dtype != DType::kF32 && view->dtype != DType::kF16 && view->dtype != DType::kBF16 &&
        view->dtype != DType::kF64) {
      return absl::InvalidArgumentError(absl::StrCat("model '", spec_.model_dir, "': tensor '", key,
                                                     "' is ", DTypeName(view->dtype),
                                                     "; expected F32, F16, BF16 or F64"));
    }
    return view->NumElements();
  }

  const SafetensorsModel& weights_;
  const TrainSpec& spec_;
  const std::set<std::string> targets_;
  const std::string base_prefix_;
  ParameterCounts counts_;
};

// LoadEncoder's tensors (roberta.cc).
absl::Status CountEncoder(const HfConfig& c, int labels, Counter& n) {
  const std::string p = c.model_type + ".";
  const int64_t h = c.hidden_size;
  const int64_t ffn = c.intermediate_size;
  RETURN_IF_ERROR(n.Frozen(p + "embeddings.word_embeddings.weight", {c.vocab_size, h}));
  RETURN_IF_ERROR(
      n.Frozen(p + "embeddings.position_embeddings.weight", {c.max_position_embeddings, h}));
  RETURN_IF_ERROR(n.Frozen(p + "embeddings.token_type_embeddings.weight", {c.type_vocab_size, h}));
  RETURN_IF_ERROR(n.Frozen(p + "embeddings.LayerNorm.weight", {h}));
  RETURN_IF_ERROR(n.Frozen(p + "embeddings.LayerNorm.bias", {h}));
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string l = absl::StrCat(p, "encoder.layer.", i, ".");
    RETURN_IF_ERROR(n.Site(l + "attention.self.query", "q", h, h, true));
    RETURN_IF_ERROR(n.Site(l + "attention.self.key", "k", h, h, true));
    RETURN_IF_ERROR(n.Site(l + "attention.self.value", "v", h, h, true));
    RETURN_IF_ERROR(n.Site(l + "attention.output.dense", "o", h, h, true));
    RETURN_IF_ERROR(n.Frozen(l + "attention.output.LayerNorm.weight", {h}));
    RETURN_IF_ERROR(n.Frozen(l + "attention.output.LayerNorm.bias", {h}));
    RETURN_IF_ERROR(n.Site(l + "intermediate.dense", "up", ffn, h, true));
    RETURN_IF_ERROR(n.Site(l + "output.dense", "down", h, ffn, true));
    RETURN_IF_ERROR(n.Frozen(l + "output.LayerNorm.weight", {h}));
    RETURN_IF_ERROR(n.Frozen(l + "output.LayerNorm.bias", {h}));
  }
  if (c.model_type == "roberta") {
    n.Head(h, h, true);       // classifier.dense
    n.Head(labels, h, true);  // classifier.out_proj
  } else {
    RETURN_IF_ERROR(n.Site(p + "pooler.dense", "", h, h, true));
    n.Head(labels, h, true);  // classifier
  }
  return absl::OkStatus();
}

// LoadDecoder's tensors (llama.cc).
absl::Status CountDecoder(const HfConfig& c, Task task, int labels, Counter& n) {
  const int64_t h = c.hidden_size;
  const int64_t q_out = c.num_attention_heads * c.head_dim;
  const int64_t kv_out = c.num_key_value_heads * c.head_dim;
  const int64_t ffn = c.intermediate_size;
  const bool qkv_bias = c.attention_bias || c.qkv_bias;
  RETURN_IF_ERROR(n.Frozen("model.embed_tokens.weight", {c.vocab_size, h}));
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string l = absl::StrCat("model.layers.", i, ".");
    RETURN_IF_ERROR(n.Frozen(l + "input_layernorm.weight", {h}));
    RETURN_IF_ERROR(n.Site(l + "self_attn.q_proj", "q", q_out, h, qkv_bias));
    RETURN_IF_ERROR(n.Site(l + "self_attn.k_proj", "k", kv_out, h, qkv_bias));
    RETURN_IF_ERROR(n.Site(l + "self_attn.v_proj", "v", kv_out, h, qkv_bias));
    RETURN_IF_ERROR(n.Site(l + "self_attn.o_proj", "o", h, q_out, c.attention_bias));
    RETURN_IF_ERROR(n.Frozen(l + "post_attention_layernorm.weight", {h}));
    RETURN_IF_ERROR(n.Site(l + "mlp.gate_proj", "gate", ffn, h, c.mlp_bias));
    RETURN_IF_ERROR(n.Site(l + "mlp.up_proj", "up", ffn, h, c.mlp_bias));
    RETURN_IF_ERROR(n.Site(l + "mlp.down_proj", "down", h, ffn, c.mlp_bias));
  }
  RETURN_IF_ERROR(n.Frozen("model.norm.weight", {h}));
  if (task != Task::kCausalLm) {
    n.Head(labels, h, false);  // score
  } else if (!c.tie_word_embeddings) {
    RETURN_IF_ERROR(n.Frozen("lm_head.weight", {c.vocab_size, h}));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ParameterCounts> CountParameters(const TrainSpec& spec, int num_labels,
                                                const std::vector<std::string>& data_roots) {
  ASSIGN_OR_RETURN(HfConfig config, LoadHfConfig(spec.model_dir, data_roots));
  const bool decoder = IsDecoderModelType(config.model_type);
  if (!decoder && config.model_type != "bert" && config.model_type != "roberta") {
    return absl::InvalidArgumentError(
        absl::StrCat("model: model_type '", config.model_type,
                     "' is not supported; expected one of bert, roberta, llama, qwen2, mistral"));
  }
  if (spec.method != Method::kFull && spec.lora_rank < 1) {
    return absl::InvalidArgumentError("lora_rank: must be at least 1");
  }
  const int labels = spec.task == Task::kRegression ? 1 : num_labels;
  if (spec.task != Task::kCausalLm && labels < 1) {
    return absl::InvalidArgumentError("num_labels: must be at least 1");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsModel> weights,
                   SafetensorsModel::Open(spec.model_dir, data_roots));
  // A base model (RobertaModel, LlamaModel) saves its keys without the prefix (model.cc).
  Counter counter(*weights, spec, decoder ? "model." : config.model_type + ".");
  RETURN_IF_ERROR(decoder ? CountDecoder(config, spec.task, labels, counter)
                          : CountEncoder(config, labels, counter));
  return counter.counts();
}

int64_t EstimateTrainingMemory(const TrainSpec& spec, const HfConfig& config,
                               const ParameterCounts& counts) {
  // In long double: batch x seq x seq x heads x layers alone can pass 2^63.
  using Real = long double;
  // Packed, a step is PackedRowsPerStep rows of max_seq_len tokens, each row a full batch row.
  const Real rows = spec.packing ? Real(PackedRowsPerStep(spec)) : Real(spec.batch_size);
  const Real seq = spec.max_seq_len;
  const Real per_layer =
      rows * seq * (34 * Real(config.hidden_size) + 5 * Real(config.num_attention_heads) * seq) * 2;
  Real bytes = 4 * Real(counts.total) + 16 * Real(counts.trainable) +
               Real(config.num_hidden_layers) * per_layer;
  if (spec.task == Task::kCausalLm) bytes += 8 * rows * seq * Real(config.vocab_size);
  const Real max = Real(std::numeric_limits<int64_t>::max());
  return bytes >= max ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(bytes);
}

}  // namespace attune::engine
