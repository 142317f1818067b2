#include "server/engine/llama.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/engine/attention.h"
#include "server/engine/fused_ops.h"
#include "server/engine/layers.h"
#include "server/engine/lm_loss.h"
#include "server/engine/packed_attention.h"

namespace attune::engine {
namespace {

struct DecoderLayer {
  torch::Tensor input_norm, post_norm;
  AdaptedSite q, k, v, o, gate, up, down;
};

class DecoderModel : public Model {
 public:
  torch::Tensor Forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                        const PackedLayout& packing) override {
    const int64_t batch = input_ids.size(0);
    const int64_t seq = input_ids.size(1);
    torch::Tensor x = Hidden(input_ids, attention_mask, packing);
    if (causal_lm_) return torch::linear(x, lm_head_).to(torch::kFloat32);

    torch::Tensor scores = torch::linear(x.to(torch::kFloat32), head_[0].tensor);
    if (packing.defined()) return scores.reshape({batch * seq, -1}).index_select(0, packing.last);
    torch::Tensor last = LastRealToken(input_ids, attention_mask);
    torch::Tensor rows = torch::arange(batch, last.options());
    return scores.index({rows, last});
  }

  torch::Tensor CausalLmLoss(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                             const torch::Tensor& labels, const PackedLayout& packing) override {
    if (!causal_lm_) return Model::CausalLmLoss(input_ids, attention_mask, labels, packing);
    return TrunkLmLoss(Hidden(input_ids, attention_mask, packing), labels);
  }

  torch::Tensor TrunkLmLoss(const torch::Tensor& x, const torch::Tensor& labels) override {
    TORCH_CHECK(causal_lm_, "a classification decoder has no causal LM loss");
    const int64_t seq = x.size(1);
    return ChunkedLinearCrossEntropy(x.slice(1, 0, seq - 1).reshape({-1, x.size(-1)}), lm_head_,
                                     labels.slice(1, 1).reshape({-1}));
  }

  // Causal LM: Hidden; classification: the last real token's hidden state, [examples, hidden].
  torch::Tensor Trunk(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                      const PackedLayout& packing) override {
    torch::Tensor x = Hidden(input_ids, attention_mask, packing);
    if (causal_lm_) return x;
    const int64_t batch = input_ids.size(0);
    const int64_t seq = input_ids.size(1);
    if (packing.defined()) return x.reshape({batch * seq, -1}).index_select(0, packing.last);
    torch::Tensor last = LastRealToken(input_ids, attention_mask);
    return x.index({torch::arange(batch, last.options()), last});
  }

  torch::Tensor HeadLogits(const torch::Tensor& trunk) override {
    return torch::linear(trunk.to(torch::kFloat32), head_[0].tensor);
  }

  std::vector<AdaptedLinearImpl*> Projections() override {
    std::vector<AdaptedLinearImpl*> out;
    for (AdaptedSite& s : Sites()) out.push_back(s.linear.get());
    return out;
  }

  // The last real token of each row: the highest position whose mask is 1 (the last one
  // without a mask).
  static torch::Tensor LastRealToken(const torch::Tensor& input_ids,
                                     const torch::Tensor& attention_mask) {
    const int64_t seq = input_ids.size(1);
    if (!attention_mask.defined()) {
      return torch::full({input_ids.size(0)}, seq - 1, input_ids.options().dtype(torch::kLong));
    }
    torch::Tensor index = torch::arange(seq, attention_mask.options().dtype(torch::kLong));
    return (index * attention_mask.to(torch::kLong)).argmax(-1);
  }

  // The final norm's output: [batch, seq, hidden].
  torch::Tensor Hidden(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                       const PackedLayout& packing) {
    torch::Tensor x = torch::embedding(embed_, input_ids);
    const double attn_p = training_ ? config_.attention_dropout : 0.0;
    if (packing.defined()) {
      const Rope rope = RotaryTables(packing.positions.reshape({-1}));
      PackedAttention attention(packing, /*causal=*/true, packed_attention_);
      for (DecoderLayer& l : layers_) {
        x = LayerForward(l, x, rope,
                         [&](const torch::Tensor& q, const torch::Tensor& k,
                             const torch::Tensor& v) { return attention(q, k, v, attn_p); });
      }
    } else {
      const Rope rope = RotaryTables(torch::arange(
          input_ids.size(1), torch::TensorOptions().dtype(torch::kLong).device(x.device())));
      const torch::Tensor mask = CausalPaddingMask(attention_mask, x.scalar_type());
      for (DecoderLayer& l : layers_) {
        x = LayerForward(
            l, x, rope,
            [&](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
              // Grouped-query attention: DotProductAttention shares each k/v head
              // among its q heads.
              return DotProductAttention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                         mask, /*causal=*/true, attn_p)
                  .transpose(1, 2);
            });
      }
    }
    return RmsNorm(x, norm_, config_.rms_norm_eps, kernels_);
  }

  // cos and sin of position x inverse frequency, fp32 [positions, head_dim / 2] (fused_ops.h).
  // Unpacked, `positions` is 0..seq-1 for every row; packed, one position per token of the
  // flattened rows, and the layers rotate the rows as one sequence.
  struct Rope {
    torch::Tensor cos;
    torch::Tensor sin;
  };
  Rope RotaryTables(const torch::Tensor& positions) const {
    const torch::Tensor freqs = torch::outer(positions.to(torch::kFloat32), inv_freq_);
    return Rope{freqs.cos().contiguous(), freqs.sin().contiguous()};
  }

  // Without padding (no mask given) the attention is causal with no explicit mask, which lets
  // SDPA use flash attention (an undefined tensor is returned); with padding, an explicit
  // causal-and-padding additive mask [batch, 1, seq, seq].
  static torch::Tensor CausalPaddingMask(const torch::Tensor& attention_mask,
                                         torch::ScalarType dtype) {
    if (!attention_mask.defined()) return torch::Tensor();
    const int64_t batch = attention_mask.size(0);
    const int64_t seq = attention_mask.size(1);
    torch::Tensor causal =
        torch::ones({seq, seq},
                    torch::TensorOptions().dtype(torch::kBool).device(attention_mask.device()))
            .tril();
    torch::Tensor allowed =
        causal.view({1, 1, seq, seq})
            .logical_and(attention_mask.to(torch::kBool).view({batch, 1, 1, seq}));
    return AdditiveMask(allowed, dtype);
  }

  // One decoder layer: pre-norm attention with rotary q/k and grouped-query k/v, then the
  // pre-norm MLP (SwiGLU for silu/swish), each added to the residual stream. `attend` maps q
  // [batch, seq, heads, head_dim] and k, v [batch, seq, kv_heads, head_dim] to the attention's
  // output [batch, seq, heads, head_dim].
  template <typename Attend>
  torch::Tensor LayerForward(DecoderLayer& l, torch::Tensor x, const Rope& rope, Attend attend) {
    const int64_t batch = x.size(0);
    const int64_t seq = x.size(1);
    const int64_t heads = config_.num_attention_heads;
    const int64_t kv_heads = config_.num_key_value_heads;
    const int64_t head_dim = config_.head_dim;
    const double eps = config_.rms_norm_eps;
    // Packed, the tables hold one row per token: the rows are rotated as one sequence.
    const int64_t rope_rows = rope.cos.size(0) == seq ? batch : 1;
    auto rotate = [&](const torch::Tensor& t, int64_t n_heads) {
      return ApplyRope(t.view({rope_rows, -1, n_heads, head_dim}), rope.cos, rope.sin, kernels_)
          .view({batch, seq, n_heads, head_dim});
    };
    torch::Tensor h = RmsNorm(x, l.input_norm, eps, kernels_);
    torch::Tensor q = rotate(l.q.linear(h), heads);
    torch::Tensor k = rotate(l.k.linear(h), kv_heads);
    torch::Tensor v = l.v.linear(h).view({batch, seq, kv_heads, head_dim});
    torch::Tensor a = attend(q, k, v).reshape({batch, seq, heads * head_dim});
    x = x + l.o.linear(a);
    h = RmsNorm(x, l.post_norm, eps, kernels_);
    torch::Tensor gate = l.gate.linear(h);
    torch::Tensor up = l.up.linear(h);
    const bool swiglu = config_.hidden_act == "silu" || config_.hidden_act == "swish";
    return x + l.down.linear(swiglu ? SiluMul(gate, up, kernels_)
                                    : Activate(config_.hidden_act, gate) * up);
  }

  std::vector<TrainableParam> TrainableParameters() override {
    std::vector<TrainableParam> params = SiteParameters(Sites());
    AppendHeadParameters(head_, method_, &params);
    return params;
  }

  void SetTraining(bool training) override {
    training_ = training;
    for (AdaptedSite& s : Sites()) s.linear->train(training);
  }

  int64_t TotalParameters() const override {
    int64_t total = frozen_parameters_;
    for (const TrainableParam& p : const_cast<DecoderModel*>(this)->TrainableParameters()) {
      total += p.tensor.numel();
    }
    return total;
  }

  std::vector<std::string> TargetModuleNames() const override {
    std::vector<std::string> names;
    for (const std::string& t : targets_) names.push_back(t + "_proj");
    return names;
  }

  std::string PeftTaskType() const override { return causal_lm_ ? "CAUSAL_LM" : "SEQ_CLS"; }
  std::vector<std::string> ModulesToSave() const override {
    if (causal_lm_) return {};
    return {"classifier", "score"};
  }
  const std::vector<std::string>& warnings() const override { return warnings_; }

  // Built by LoadDecoder.
  HfConfig config_;
  bool causal_lm_ = true;
  Method method_ = Method::kLora;
  std::vector<std::string> targets_;
  torch::Tensor embed_, norm_, lm_head_, inv_freq_;
  std::vector<DecoderLayer> layers_;
  std::vector<HeadTensor> head_;  // classification: score.weight
  int64_t frozen_parameters_ = 0;
  std::vector<std::string> warnings_;
  bool training_ = false;
  Kernels kernels_ = Kernels::kFused;  // ModelOptions::kernels
  PackedAttentionKernel packed_attention_ = PackedAttentionKernel::kAuto;

 private:
  std::vector<AdaptedSite> Sites() const {
    std::vector<AdaptedSite> sites;
    for (const DecoderLayer& l : layers_) {
      for (const AdaptedSite* s : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) {
        sites.push_back(*s);
      }
    }
    return sites;
  }
};

}  // namespace

std::vector<std::string> DecoderProjections() { return AllProjections(); }

torch::Tensor RopeInverseFrequencies(const RopeConfig& rope, int64_t head_dim) {
  torch::Tensor exponents = torch::arange(0, head_dim, 2, torch::kInt64).to(torch::kFloat32) /
                            static_cast<double>(head_dim);
  torch::Tensor inv_freq = 1.0 / torch::pow(rope.theta, exponents);
  if (rope.type == "linear") return inv_freq / rope.factor;
  if (rope.type != "llama3") return inv_freq;
  // Long wavelengths (beyond old_context / low_freq_factor) are divided by `factor`, short ones
  // (below old_context / high_freq_factor) kept, and the band between interpolated smoothly.
  const double old_context = static_cast<double>(rope.original_max_position_embeddings);
  const double low_wavelen = old_context / rope.low_freq_factor;
  const double high_wavelen = old_context / rope.high_freq_factor;
  torch::Tensor wavelen = 2 * M_PI / inv_freq;
  torch::Tensor scaled = torch::where(wavelen > low_wavelen, inv_freq / rope.factor, inv_freq);
  torch::Tensor smooth = (old_context / wavelen - rope.low_freq_factor) /
                         (rope.high_freq_factor - rope.low_freq_factor);
  torch::Tensor smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled;
  torch::Tensor medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
  return torch::where(medium, smoothed, scaled);
}

absl::StatusOr<std::unique_ptr<Model>> LoadDecoder(const HfConfig& config,
                                                   const WeightLoader& weights,
                                                   const ModelOptions& options) {
  const std::string arch = config.architecture.empty() ? config.model_type : config.architecture;
  RETURN_IF_ERROR(CheckTargets(options.targets, DecoderProjections(), arch));
  RETURN_IF_ERROR(CheckActivation(config.hidden_act));
  if (config.head_dim % 2 != 0) {
    return absl::InvalidArgumentError("config.json: head_dim must be even for rotary embeddings");
  }
  auto model = std::make_unique<DecoderModel>();
  model->config_ = config;
  model->causal_lm_ = options.task == Task::kCausalLm;
  model->method_ = options.method;
  model->kernels_ = options.kernels;
  model->packed_attention_ = options.kernels == Kernels::kFused ? options.packed_attention
                                                                : PackedAttentionKernel::kBlockMask;
  model->targets_ = options.targets;
  const int64_t h = config.hidden_size;
  const int64_t q_out = config.num_attention_heads * config.head_dim;
  const int64_t kv_out = config.num_key_value_heads * config.head_dim;
  const int64_t ffn = config.intermediate_size;
  const bool qkv_bias = config.attention_bias || config.qkv_bias;
  BuildContext ctx = MakeBuildContext(weights, options);

  ASSIGN_OR_RETURN(model->embed_,
                   LoadFrozen(ctx, "model.embed_tokens.weight", {config.vocab_size, h}));
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    const std::string l = absl::StrCat("model.layers.", i, ".");
    DecoderLayer layer;
    ASSIGN_OR_RETURN(layer.input_norm, LoadFrozen(ctx, l + "input_layernorm.weight", {h}));
    ASSIGN_OR_RETURN(layer.q, LoadSite(ctx, l + "self_attn.q_proj", "q", q_out, h, qkv_bias));
    ASSIGN_OR_RETURN(layer.k, LoadSite(ctx, l + "self_attn.k_proj", "k", kv_out, h, qkv_bias));
    ASSIGN_OR_RETURN(layer.v, LoadSite(ctx, l + "self_attn.v_proj", "v", kv_out, h, qkv_bias));
    ASSIGN_OR_RETURN(layer.o,
                     LoadSite(ctx, l + "self_attn.o_proj", "o", h, q_out, config.attention_bias));
    ASSIGN_OR_RETURN(layer.post_norm, LoadFrozen(ctx, l + "post_attention_layernorm.weight", {h}));
    ASSIGN_OR_RETURN(layer.gate,
                     LoadSite(ctx, l + "mlp.gate_proj", "gate", ffn, h, config.mlp_bias));
    ASSIGN_OR_RETURN(layer.up, LoadSite(ctx, l + "mlp.up_proj", "up", ffn, h, config.mlp_bias));
    ASSIGN_OR_RETURN(layer.down,
                     LoadSite(ctx, l + "mlp.down_proj", "down", h, ffn, config.mlp_bias));
    model->layers_.push_back(std::move(layer));
  }
  ASSIGN_OR_RETURN(model->norm_, LoadFrozen(ctx, "model.norm.weight", {h}));
  if (model->causal_lm_) {
    if (config.tie_word_embeddings) {
      model->lm_head_ = model->embed_;
    } else {
      ASSIGN_OR_RETURN(model->lm_head_, LoadFrozen(ctx, "lm_head.weight", {config.vocab_size, h}));
    }
  } else {
    const int64_t labels = options.task == Task::kRegression ? 1 : options.num_labels;
    if (labels < 1) return absl::InvalidArgumentError("num_labels: must be at least 1");
    model->head_ = LoadHeadLinear(ctx, "score", labels, h, false, config.initializer_range);
  }
  model->inv_freq_ = RopeInverseFrequencies(config.rope, config.head_dim).to(options.device);
  model->frozen_parameters_ = ctx.frozen_parameters;
  model->warnings_ = std::move(ctx.warnings);
  model->SetTraining(false);
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace attune::engine
