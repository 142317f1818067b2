// A packed batch gives each model the same per-example losses and the same gradients as its
// examples run one at a time (fp32 on the CPU, the reference varlen attention), for RoBERTa,
// BERT, Llama, Qwen2 and Mistral (the parity fixtures), classification, regression and causal
// LM.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <random>
#include <string>
#include <vector>

#include "server/engine/batches.h"
#include "server/engine/evaluate.h"
#include "server/engine/model.h"
#include "server/engine/packed_attention.h"
#include "server/engine/packing.h"

namespace attune::engine {
namespace {

constexpr double kTolerance = 1e-5;

struct Case {
  const char* fixture;
  Task task;
  int num_labels;
};

std::vector<Example> RandomExamples(const std::vector<int>& lengths, int64_t vocab) {
  std::mt19937_64 rng(17);
  std::vector<Example> examples;
  for (size_t i = 0; i < lengths.size(); ++i) {
    Example e;
    for (int t = 0; t < lengths[i]; ++t) {
      e.ids.push_back(static_cast<int32_t>(5 + rng() % static_cast<uint64_t>(vocab - 5)));
      e.loss_mask.push_back(t >= 1 && rng() % 4 != 0 ? 1 : 0);
    }
    e.label = static_cast<int64_t>(i % 2);
    e.target = 0.5f * static_cast<float>(i % 4);
    examples.push_back(std::move(e));
  }
  return examples;
}

// Each example's loss: classification/regression from the [E] logits; causal LM the sum of its
// tokens' losses (position t predicts t + 1), read from [rows, length, vocab] logits at `start`.
torch::Tensor TokenLossSum(const torch::Tensor& logits_row, int64_t start, const Example& e) {
  torch::Tensor sum = torch::zeros({}, torch::kFloat32);
  for (size_t t = 1; t < e.ids.size(); ++t) {
    if (!e.loss_mask[t]) continue;
    sum = sum + torch::nn::functional::cross_entropy(
                    logits_row[start + static_cast<int64_t>(t) - 1].unsqueeze(0),
                    torch::tensor({static_cast<int64_t>(e.ids[t])}, torch::kLong));
  }
  return sum;
}

torch::Tensor ExampleLoss(const torch::Tensor& logits, Task task, const Example& e) {
  if (task == Task::kRegression) return (logits.squeeze(-1) - e.target).pow(2).sum();
  return torch::nn::functional::cross_entropy(logits.view({1, -1}),
                                              torch::tensor({e.label}, torch::kLong));
}

int64_t LabelledTokens(const std::vector<Example>& examples) {
  int64_t n = 0;
  for (const Example& e : examples) {
    for (size_t t = 1; t < e.ids.size(); ++t) n += e.loss_mask[t];
  }
  return n;
}

std::vector<torch::Tensor> Gradients(std::vector<TrainableParam>& params) {
  std::vector<torch::Tensor> grads;
  for (TrainableParam& p : params) {
    grads.push_back(p.tensor.grad().defined() ? p.tensor.grad().clone()
                                              : torch::zeros_like(p.tensor));
    p.tensor.mutable_grad() = torch::Tensor();
  }
  return grads;
}

double RelativeError(const torch::Tensor& got, const torch::Tensor& want) {
  const double scale = std::max(want.abs().max().item<double>(), 1e-12);
  return (got - want).abs().max().item<double>() / scale;
}

class PackedModelTest : public ::testing::TestWithParam<Case> {};

TEST_P(PackedModelTest, PackedLossesAndGradientsEqualOneByOne) {
  const Case& c = GetParam();
  ModelOptions options;
  options.task = c.task;
  options.num_labels = c.num_labels;
  options.targets = {"q", "v"};
  options.lora_rank = 4;
  options.lora_alpha = 8;
  auto loaded = LoadModel(std::string("tests/fixtures/parity/") + c.fixture, options);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  Model& model = **loaded;
  std::vector<TrainableParam> params = model.TrainableParameters();
  {  // LoRA B starts at zero; make every adapter tensor non-zero so A gets gradients too.
    torch::NoGradGuard no_grad;
    torch::manual_seed(3);
    for (TrainableParam& p : params) p.tensor.copy_(torch::randn_like(p.tensor) * 0.05);
  }
  const std::vector<Example> examples = RandomExamples({5, 9, 3, 12, 7, 4, 6, 1}, 90);
  const int64_t row_length = 16;
  const std::vector<PackedRow> rows = PackRows(examples, {0, 1, 2, 3, 4, 5, 6, 7}, row_length);
  ASSERT_LT(rows.size(), examples.size());  // several examples share rows
  const BatchShape shape{static_cast<int64_t>(rows.size()) + 1, row_length, true, 10};
  Batch packed = MakePackedBatch(examples, rows, shape, c.task, 1, torch::kCPU);
  const bool causal = c.task == Task::kCausalLm;
  const double n =
      causal ? static_cast<double>(LabelledTokens(examples)) : static_cast<double>(examples.size());

  // Packed: each example's loss, and the gradients of the batch's loss.
  torch::Tensor logits = model.Forward(packed.input_ids, packed.attention_mask, packed.packing);
  std::vector<torch::Tensor> packed_losses;
  int64_t slot = 0;
  for (int64_t r = 0; r < static_cast<int64_t>(rows.size()); ++r) {
    int64_t col = 0;
    for (int64_t i : rows[r]) {
      packed_losses.push_back(causal ? TokenLossSum(logits[r], col, examples[i]).detach()
                                     : ExampleLoss(logits[slot], c.task, examples[i]).detach());
      col += static_cast<int64_t>(examples[i].ids.size());
      ++slot;
    }
  }
  torch::Tensor loss = causal ? model.CausalLmLoss(packed.input_ids, packed.attention_mask,
                                                   packed.labels, packed.packing)
                              : Loss(logits, packed, c.task);
  loss.backward();
  const std::vector<torch::Tensor> packed_grads = Gradients(params);

  // One by one, unpadded: the same losses; the mean's gradients summed example by example.
  torch::Tensor reference_loss = torch::zeros({}, torch::kFloat32);
  slot = 0;
  for (const PackedRow& row : rows) {
    for (int64_t i : row) {
      Batch one = MakeBatch(examples, {i}, c.task, 1, torch::kCPU);
      torch::Tensor l = model.Forward(one.input_ids, one.attention_mask);
      torch::Tensor example_loss =
          causal ? TokenLossSum(l[0], 0, examples[i]) : ExampleLoss(l[0], c.task, examples[i]);
      EXPECT_LT(RelativeError(packed_losses[slot], example_loss.detach()), kTolerance)
          << "example " << i;
      if (example_loss.requires_grad()) (example_loss / n).backward();
      reference_loss = reference_loss + example_loss.detach() / n;
      ++slot;
    }
  }
  EXPECT_LT(RelativeError(loss.detach(), reference_loss), kTolerance);
  const std::vector<torch::Tensor> reference_grads = Gradients(params);
  for (size_t p = 0; p < params.size(); ++p) {
    EXPECT_LT(RelativeError(packed_grads[p], reference_grads[p]), kTolerance) << params[p].name;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PackedModelTest,
                         ::testing::Values(Case{"roberta_cls", Task::kSequenceClassification, 3},
                                           Case{"bert_regression", Task::kRegression, 1},
                                           Case{"llama_causal", Task::kCausalLm, 0},
                                           Case{"llama_cls", Task::kSequenceClassification, 2},
                                           Case{"qwen2_causal", Task::kCausalLm, 0},
                                           Case{"mistral_causal", Task::kCausalLm, 0}),
                         [](const auto& info) { return std::string(info.param.fixture); });

}  // namespace
}  // namespace attune::engine

namespace attune::engine {
namespace {

// Packed evaluation reports what unpacked evaluation reports, and predictions in file order.
TEST(PackedEvaluateTest, SameMetricsAndPredictionsAsUnpacked) {
  for (const Case& c :
       {Case{"roberta_cls", Task::kSequenceClassification, 3},
        Case{"bert_regression", Task::kRegression, 1}, Case{"llama_causal", Task::kCausalLm, 0}}) {
    ModelOptions options;
    options.task = c.task;
    options.num_labels = c.num_labels;
    options.targets = {"q", "v"};
    auto model = LoadModel(std::string("tests/fixtures/parity/") + c.fixture, options);
    ASSERT_TRUE(model.ok()) << model.status();
    const std::vector<Example> examples =
        RandomExamples({5, 9, 3, 12, 7, 4, 6, 1, 15, 2, 8, 8, 11}, 90);
    TrainSpec spec;
    spec.task = c.task;
    spec.max_seq_len = 16;
    spec.batch_size = 2;  // packed: 2 rows of 16 tokens per evaluation step
    std::vector<double> packed_predictions, unpacked_predictions;
    spec.packing = true;
    const EvalMetrics packed =
        Evaluate(**model, examples, spec, 1, torch::kCPU, 7, &packed_predictions);
    spec.packing = false;
    const EvalMetrics unpacked =
        Evaluate(**model, examples, spec, 1, torch::kCPU, 7, &unpacked_predictions);
    EXPECT_NEAR(packed.loss, unpacked.loss, kTolerance * std::abs(unpacked.loss)) << c.fixture;
    EXPECT_EQ(packed.examples, unpacked.examples);
    ASSERT_EQ(packed_predictions.size(), unpacked_predictions.size());
    for (size_t i = 0; i < packed_predictions.size(); ++i) {
      EXPECT_NEAR(packed_predictions[i], unpacked_predictions[i], 1e-4) << c.fixture << " " << i;
    }
    if (c.task == Task::kSequenceClassification) {
      EXPECT_EQ(packed.accuracy, unpacked.accuracy);
    }
  }
}

// On CUDA (the GPU machine; skipped elsewhere): `kernel` gives the block mask's attention and
// gradients in bf16, causal and not, with kv_heads key/value heads for 8 query heads.
void ExpectKernelMatchesTheBlockMask(PackedAttentionKernel kernel, int64_t kv_heads) {
  const std::vector<Example> examples = RandomExamples({50, 9, 33, 120, 7, 64, 1, 90}, 90);
  const std::vector<PackedRow> rows = PackRows(examples, {0, 1, 2, 3, 4, 5, 6, 7}, 128);
  const BatchShape shape{static_cast<int64_t>(rows.size()) + 1, 128, true, 10};
  Batch b = MakePackedBatch(examples, rows, shape, Task::kCausalLm, 0, torch::kCUDA);
  for (bool causal : {false, true}) {
    torch::manual_seed(1);
    auto opts = torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA);
    torch::Tensor q = torch::randn({shape.rows, 128, 8, 64}, opts).requires_grad_();
    torch::Tensor k = torch::randn({shape.rows, 128, kv_heads, 64}, opts).requires_grad_();
    torch::Tensor v = torch::randn({shape.rows, 128, kv_heads, 64}, opts).requires_grad_();
    torch::Tensor real = b.attention_mask.to(torch::kBool).view({shape.rows, 128, 1, 1});
    auto run = [&](PackedAttentionKernel which) {
      PackedAttention attention(b.packing, causal, which);
      torch::Tensor out = attention(q, k, v, 0.0);
      // Padding rows attend among themselves; only real tokens are compared.
      out = out.masked_fill(real.logical_not(), 0);
      out.to(torch::kFloat32).pow(2).sum().backward();
      std::vector<torch::Tensor> r = {
          out.detach().to(torch::kFloat32), q.grad().to(torch::kFloat32).clone(),
          k.grad().to(torch::kFloat32).clone(), v.grad().to(torch::kFloat32).clone()};
      q.mutable_grad() = torch::Tensor();
      k.mutable_grad() = torch::Tensor();
      v.mutable_grad() = torch::Tensor();
      return r;
    };
    PackedAttention probe(b.packing, causal, kernel);
    EXPECT_EQ(probe.KernelFor(q, k), kernel);
    std::vector<torch::Tensor> fast = run(kernel);
    std::vector<torch::Tensor> reference = run(PackedAttentionKernel::kBlockMask);
    for (size_t i = 0; i < fast.size(); ++i) {
      EXPECT_LT(RelativeError(fast[i], reference[i]), 2e-2) << "causal " << causal << " " << i;
    }
  }
}

TEST(PackedAttentionCudaTest, FlashVarlenMatchesTheBlockMask) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  ExpectKernelMatchesTheBlockMask(PackedAttentionKernel::kFlashVarlen, /*kv_heads=*/2);
}

// kAuto's choice (packed_attention.h): the block mask on short rows with as many k/v heads as
// q heads, the flash varlen kernel with grouped-query heads or on long rows.
TEST(PackedAttentionCudaTest, AutoPicksTheBlockMaskOnlyOnShortRowsWithoutGroupedHeads) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  PackedLayout packing;
  PackedAttention attention(packing, /*causal=*/false, PackedAttentionKernel::kAuto);
  auto opts = torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA);
  auto kernel = [&](int64_t length, int64_t kv_heads) {
    return attention.KernelFor(torch::empty({1, length, 8, 64}, opts),
                               torch::empty({1, length, kv_heads, 64}, opts));
  };
  EXPECT_EQ(kernel(128, 8), PackedAttentionKernel::kBlockMask);
  EXPECT_EQ(kernel(kBlockMaskMaxLength, 8), PackedAttentionKernel::kBlockMask);
  EXPECT_EQ(kernel(128, 2), PackedAttentionKernel::kFlashVarlen);
  EXPECT_EQ(kernel(kBlockMaskMaxLength + 1, 8), PackedAttentionKernel::kFlashVarlen);
}

TEST(PackedAttentionCudaTest, EfficientVarlenMatchesTheBlockMask) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  ExpectKernelMatchesTheBlockMask(PackedAttentionKernel::kEfficientVarlen, /*kv_heads=*/8);
}

}  // namespace
}  // namespace attune::engine
