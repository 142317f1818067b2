#include "server/engine/roberta.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/engine/attention.h"
#include "server/engine/layers.h"
#include "server/engine/packed_attention.h"

namespace attune::engine {
namespace {

struct EncoderLayer {
  AdaptedSite q, k, v, o, up, down;
  torch::Tensor attn_ln_w, attn_ln_b, out_ln_w, out_ln_b;
};

class EncoderModel : public Model {
 public:
  torch::Tensor Forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                        const PackedLayout& packing) override {
    return Head(Trunk(input_ids, attention_mask, packing));
  }

  torch::Tensor HeadLogits(const torch::Tensor& trunk) override { return Head(trunk); }

  torch::Tensor TrunkLmLoss(const torch::Tensor&, const torch::Tensor&) override {
    TORCH_CHECK(false, "an encoder has no causal LM loss");
  }

  std::vector<AdaptedLinearImpl*> Projections() override {
    std::vector<AdaptedLinearImpl*> out;
    for (EncoderLayer& l : layers_) {
      for (AdaptedSite* s : {&l.q, &l.k, &l.v, &l.o, &l.up, &l.down})
        out.push_back(s->linear.get());
    }
    if (pooler_) out.push_back(pooler_.get());
    return out;
  }

  // Every layer; then each example's first token, [examples, hidden].
  torch::Tensor Trunk(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                      const PackedLayout& packing) override {
    const int64_t batch = input_ids.size(0);
    const int64_t seq = input_ids.size(1);
    const int64_t hidden = config_.hidden_size;
    torch::Tensor x = Embed(input_ids, attention_mask, packing);
    const double attn_p = training_ ? config_.attention_probs_dropout_prob : 0.0;
    if (packing.defined()) {
      PackedAttention attention(packing, /*causal=*/false, packed_attention_);
      for (EncoderLayer& l : layers_) {
        x = LayerForward(
            l, x, [&](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
              return attention(q, k, v, attn_p);
            });
      }
      return x.reshape({batch * seq, hidden}).index_select(0, packing.first);
    }
    // No mask given (no padding): no explicit mask, which lets SDPA use flash attention.
    torch::Tensor mask;
    if (attention_mask.defined()) {
      mask =
          AdditiveMask(attention_mask.to(torch::kBool).view({batch, 1, 1, seq}), x.scalar_type());
    }
    for (EncoderLayer& l : layers_) {
      x = LayerForward(
          l, x, [&](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
            return DotProductAttention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                       mask, /*causal=*/false, attn_p)
                .transpose(1, 2);
          });
    }
    return x.select(1, 0);
  }

  // Word, position and token-type embeddings, normalised. RoBERTa's positions count from
  // padding_idx + 1 (create_position_ids_from_input_ids); packed, they restart per example.
  torch::Tensor Embed(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                      const PackedLayout& packing) const {
    const int64_t batch = input_ids.size(0);
    const int64_t seq = input_ids.size(1);
    torch::Tensor positions;
    if (packing.defined()) {
      positions = roberta_ ? torch::where(attention_mask.to(torch::kBool),
                                          packing.positions + (pad_id_ + 1),
                                          torch::full_like(packing.positions, pad_id_))
                           : packing.positions;
    } else if (roberta_) {
      // padding_idx + 1 + index among non-padding tokens.
      torch::Tensor real = input_ids.ne(pad_id_).to(torch::kLong);
      positions = torch::cumsum(real, 1) * real + pad_id_;
    } else {
      positions = torch::arange(seq, input_ids.options()).unsqueeze(0).expand({batch, seq});
    }
    torch::Tensor x = torch::embedding(word_, input_ids) + torch::embedding(position_, positions) +
                      token_type_[0];
    x = torch::layer_norm(x, {config_.hidden_size}, emb_ln_w_, emb_ln_b_, config_.layer_norm_eps);
    return Dropout(x, config_.hidden_dropout_prob);
  }

  // One post-norm encoder layer. `attend` maps q, k, v [batch, seq, heads, head_dim] to the
  // attention's output in the same layout.
  template <typename Attend>
  torch::Tensor LayerForward(EncoderLayer& l, const torch::Tensor& x, Attend attend) {
    const int64_t batch = x.size(0);
    const int64_t seq = x.size(1);
    const int64_t hidden = config_.hidden_size;
    const int64_t heads = config_.num_attention_heads;
    auto split = [&](const torch::Tensor& t) {
      return t.view({batch, seq, heads, hidden / heads});
    };
    torch::Tensor a = attend(split(l.q.linear(x)), split(l.k.linear(x)), split(l.v.linear(x)));
    a = Dropout(l.o.linear(a.reshape({batch, seq, hidden})), config_.hidden_dropout_prob);
    torch::Tensor y =
        torch::layer_norm(a + x, {hidden}, l.attn_ln_w, l.attn_ln_b, config_.layer_norm_eps);
    torch::Tensor h = Activate(config_.hidden_act, l.up.linear(y));
    h = Dropout(l.down.linear(h), config_.hidden_dropout_prob);
    return torch::layer_norm(h + y, {hidden}, l.out_ln_w, l.out_ln_b, config_.layer_norm_eps);
  }

  // The classification head on each example's first token: [examples, hidden] -> logits.
  torch::Tensor Head(const torch::Tensor& first) {
    const double head_p = config_.classifier_dropout.value_or(config_.hidden_dropout_prob);
    torch::Tensor logits;
    if (roberta_) {
      torch::Tensor h = Dropout(first, head_p).to(torch::kFloat32);
      h = torch::tanh(torch::linear(h, head_[0].tensor, head_[1].tensor));
      h = Dropout(h, head_p);
      logits = torch::linear(h, head_[2].tensor, head_[3].tensor);
    } else {
      torch::Tensor pooled = torch::tanh(pooler_->forward(first));
      pooled = Dropout(pooled, head_p).to(torch::kFloat32);
      logits = torch::linear(pooled, head_[0].tensor, head_[1].tensor);
    }
    return logits.to(torch::kFloat32);
  }

  std::vector<TrainableParam> TrainableParameters() override {
    std::vector<AdaptedSite> sites;
    for (const EncoderLayer& l : layers_) {
      for (const AdaptedSite* s : {&l.q, &l.k, &l.v, &l.o, &l.up, &l.down}) sites.push_back(*s);
    }
    std::vector<TrainableParam> params = SiteParameters(sites);
    AppendHeadParameters(head_, method_, &params);
    return params;
  }

  void SetTraining(bool training) override {
    training_ = training;
    for (EncoderLayer& l : layers_) {
      for (AdaptedSite* s : {&l.q, &l.k, &l.v, &l.o, &l.up, &l.down}) s->linear->train(training);
    }
  }

  int64_t TotalParameters() const override {
    int64_t total = frozen_parameters_;
    for (const TrainableParam& p : const_cast<EncoderModel*>(this)->TrainableParameters()) {
      total += p.tensor.numel();
    }
    return total;
  }

  std::vector<std::string> TargetModuleNames() const override {
    std::vector<std::string> names;
    for (const std::string& t : targets_) {
      if (t == "q") names.push_back("query");
      if (t == "k") names.push_back("key");
      if (t == "v") names.push_back("value");
      if (t == "o") names.push_back("attention.output.dense");
      if (t == "up") names.push_back("intermediate.dense");
      if (t == "down") {
        // PEFT matches a name as a suffix, and "output.dense" would also match
        // "attention.output.dense": name each layer's FFN output instead.
        for (size_t i = 0; i < layers_.size(); ++i) {
          names.push_back(absl::StrCat("encoder.layer.", i, ".output.dense"));
        }
      }
    }
    return names;
  }

  std::string PeftTaskType() const override { return "SEQ_CLS"; }
  std::vector<std::string> ModulesToSave() const override { return {"classifier", "score"}; }
  const std::vector<std::string>& warnings() const override { return warnings_; }

  // Built by LoadEncoder.
  HfConfig config_;
  bool roberta_ = true;
  int64_t pad_id_ = 1;
  Method method_ = Method::kLora;
  std::vector<std::string> targets_;
  torch::Tensor word_, position_, token_type_, emb_ln_w_, emb_ln_b_;
  std::vector<EncoderLayer> layers_;
  AdaptedLinear pooler_{nullptr};  // BERT only; frozen
  std::vector<HeadTensor> head_;   // RoBERTa: dense w, b, out_proj w, b; BERT: classifier w, b
  int64_t frozen_parameters_ = 0;
  std::vector<std::string> warnings_;
  bool training_ = false;
  PackedAttentionKernel packed_attention_ = PackedAttentionKernel::kAuto;

 private:
  torch::Tensor Dropout(const torch::Tensor& x, double p) const {
    return training_ && p > 0 ? torch::dropout(x, p, /*train=*/true) : x;
  }
};

}  // namespace

bool IsEncoderModelType(const std::string& model_type) {
  return model_type == "bert" || model_type == "roberta";
}

std::vector<std::string> EncoderProjections() { return {"q", "k", "v", "o", "up", "down"}; }

absl::StatusOr<std::unique_ptr<Model>> LoadEncoder(const HfConfig& config,
                                                   const WeightLoader& weights,
                                                   const ModelOptions& options) {
  const std::string arch = config.model_type == "roberta" ? "RobertaForSequenceClassification"
                                                          : "BertForSequenceClassification";
  if (options.task == Task::kCausalLm) {
    return absl::InvalidArgumentError(
        absl::StrCat("task: causal-lm needs a decoder (llama, qwen2, mistral); '",
                     config.model_type, "' is an encoder; use classification or regression"));
  }
  RETURN_IF_ERROR(CheckTargets(options.targets, EncoderProjections(), arch));
  RETURN_IF_ERROR(CheckActivation(config.hidden_act));
  if (config.hidden_size % config.num_attention_heads != 0) {
    return absl::InvalidArgumentError(
        "config.json: hidden_size must be a multiple of num_attention_heads");
  }
  auto model = std::make_unique<EncoderModel>();
  model->config_ = config;
  model->roberta_ = config.model_type == "roberta";
  model->pad_id_ = config.pad_token_id.value_or(model->roberta_ ? 1 : 0);
  model->method_ = options.method;
  model->targets_ = options.targets;
  model->packed_attention_ = options.kernels == Kernels::kFused ? options.packed_attention
                                                                : PackedAttentionKernel::kBlockMask;
  const std::string p = model->roberta_ ? "roberta." : "bert.";
  const int64_t h = config.hidden_size;
  const int64_t ffn = config.intermediate_size;
  BuildContext ctx = MakeBuildContext(weights, options);

  ASSIGN_OR_RETURN(model->word_, LoadFrozen(ctx, p + "embeddings.word_embeddings.weight",
                                            {config.vocab_size, h}));
  ASSIGN_OR_RETURN(model->position_, LoadFrozen(ctx, p + "embeddings.position_embeddings.weight",
                                                {config.max_position_embeddings, h}));
  ASSIGN_OR_RETURN(
      model->token_type_,
      LoadFrozen(ctx, p + "embeddings.token_type_embeddings.weight", {config.type_vocab_size, h}));
  ASSIGN_OR_RETURN(model->emb_ln_w_, LoadFrozen(ctx, p + "embeddings.LayerNorm.weight", {h}));
  ASSIGN_OR_RETURN(model->emb_ln_b_, LoadFrozen(ctx, p + "embeddings.LayerNorm.bias", {h}));
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    const std::string l = absl::StrCat(p, "encoder.layer.", i, ".");
    EncoderLayer layer;
    ASSIGN_OR_RETURN(layer.q, LoadSite(ctx, l + "attention.self.query", "q", h, h, true));
    ASSIGN_OR_RETURN(layer.k, LoadSite(ctx, l + "attention.self.key", "k", h, h, true));
    ASSIGN_OR_RETURN(layer.v, LoadSite(ctx, l + "attention.self.value", "v", h, h, true));
    ASSIGN_OR_RETURN(layer.o, LoadSite(ctx, l + "attention.output.dense", "o", h, h, true));
    ASSIGN_OR_RETURN(layer.attn_ln_w,
                     LoadFrozen(ctx, l + "attention.output.LayerNorm.weight", {h}));
    ASSIGN_OR_RETURN(layer.attn_ln_b, LoadFrozen(ctx, l + "attention.output.LayerNorm.bias", {h}));
    ASSIGN_OR_RETURN(layer.up, LoadSite(ctx, l + "intermediate.dense", "up", ffn, h, true));
    ASSIGN_OR_RETURN(layer.down, LoadSite(ctx, l + "output.dense", "down", h, ffn, true));
    ASSIGN_OR_RETURN(layer.out_ln_w, LoadFrozen(ctx, l + "output.LayerNorm.weight", {h}));
    ASSIGN_OR_RETURN(layer.out_ln_b, LoadFrozen(ctx, l + "output.LayerNorm.bias", {h}));
    model->layers_.push_back(std::move(layer));
  }
  const int64_t labels = options.task == Task::kRegression ? 1 : options.num_labels;
  if (labels < 1) {
    return absl::InvalidArgumentError("num_labels: must be at least 1");
  }
  if (model->roberta_) {
    auto dense = LoadHeadLinear(ctx, "classifier.dense", h, h, true, config.initializer_range);
    auto out =
        LoadHeadLinear(ctx, "classifier.out_proj", labels, h, true, config.initializer_range);
    model->head_ = dense;
    model->head_.insert(model->head_.end(), out.begin(), out.end());
  } else {
    ASSIGN_OR_RETURN(AdaptedSite pooler, LoadSite(ctx, p + "pooler.dense", "", h, h, true));
    model->pooler_ = pooler.linear;
    model->head_ = LoadHeadLinear(ctx, "classifier", labels, h, true, config.initializer_range);
  }
  model->frozen_parameters_ = ctx.frozen_parameters;
  model->warnings_ = std::move(ctx.warnings);
  model->SetTraining(false);
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace attune::engine
