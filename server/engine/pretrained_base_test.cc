// A real pretrained base checkpoint loads for a task its checkpoint has no head for: the
// RobertaForMaskedLM roberta-mini-en (../shared/models, sharded safetensors, lm_head.* unused)
// for classification and regression, and a LlamaForCausalLM (the parity fixture) for
// classification. The new head is transformers' init of a new nn.Linear (weight N(0,
// initializer_range), bias 0), drawn from the job's seed, and the warning names every tensor
// made. The shared directory is $ATTUNE_SHARED_DIR (set by CMake), else ../shared.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "server/engine/model.h"

namespace attune::engine {
namespace {

namespace fs = std::filesystem;

std::string SharedDir() {
  const char* dir = std::getenv("ATTUNE_SHARED_DIR");
  return dir != nullptr && *dir != '\0' ? dir : "../shared";
}

std::string RobertaMini() { return SharedDir() + "/models/roberta-mini-en"; }

ModelOptions Options(Task task, int num_labels, uint64_t seed) {
  ModelOptions o;
  o.task = task;
  o.num_labels = num_labels;
  o.targets = {"q", "v"};
  o.seed = seed;
  return o;
}

// The head's tensors by key ("classifier.dense.weight", ...).
std::map<std::string, torch::Tensor> Head(Model& model) {
  std::map<std::string, torch::Tensor> head;
  const std::string prefix = "base_model.model.";
  for (const TrainableParam& p : model.TrainableParameters()) {
    if (p.role == ParamRole::kHead) head[p.name.substr(prefix.size())] = p.tensor.detach();
  }
  return head;
}

TEST(PretrainedBaseTest, MaskedLmCheckpointGetsASeededClassificationHead) {
  ASSERT_TRUE(fs::exists(RobertaMini() + "/model.safetensors.index.json"))
      << RobertaMini() << " is missing; set ATTUNE_SHARED_DIR to the shared data directory";
  absl::StatusOr<std::unique_ptr<Model>> a =
      LoadModel(RobertaMini(), Options(Task::kSequenceClassification, 2, 42));
  ASSERT_TRUE(a.ok()) << a.status();  // lm_head.* is in the checkpoint and simply not used
  EXPECT_EQ((*a)->warnings(),
            (std::vector<std::string>{
                "head 'classifier.dense' is not in the checkpoint; initialised from the seed: "
                "classifier.dense.weight (normal, mean 0, std 0.02) and classifier.dense.bias "
                "(zeros)",
                "head 'classifier.out_proj' is not in the checkpoint; initialised from the seed: "
                "classifier.out_proj.weight (normal, mean 0, std 0.02) and "
                "classifier.out_proj.bias (zeros)"}));
  std::map<std::string, torch::Tensor> head = Head(**a);
  ASSERT_EQ(head.size(), 4u);
  EXPECT_EQ(head["classifier.dense.weight"].sizes(), (std::vector<int64_t>{256, 256}));
  EXPECT_EQ(head["classifier.out_proj.weight"].sizes(), (std::vector<int64_t>{2, 256}));
  // transformers' init: N(0, initializer_range = 0.02), biases zero. 65,536 draws: the sample
  // std is within 1% of 0.02, the mean within 5 standard errors (0.02 / 256 each) of 0.
  EXPECT_NEAR(head["classifier.dense.weight"].std().item<double>(), 0.02, 2e-4);
  EXPECT_NEAR(head["classifier.dense.weight"].mean().item<double>(), 0.0, 5 * 0.02 / 256);
  EXPECT_EQ(head["classifier.dense.bias"].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(head["classifier.out_proj.bias"].abs().sum().item<double>(), 0.0);

  // Same seed, same head; another seed, another head.
  absl::StatusOr<std::unique_ptr<Model>> same =
      LoadModel(RobertaMini(), Options(Task::kSequenceClassification, 2, 42));
  absl::StatusOr<std::unique_ptr<Model>> other =
      LoadModel(RobertaMini(), Options(Task::kSequenceClassification, 2, 43));
  ASSERT_TRUE(same.ok() && other.ok());
  std::map<std::string, torch::Tensor> same_head = Head(**same), other_head = Head(**other);
  for (const char* key : {"classifier.dense.weight", "classifier.out_proj.weight"}) {
    EXPECT_TRUE(torch::equal(head[key], same_head[key])) << key;
    EXPECT_FALSE(torch::equal(head[key], other_head[key])) << key;
  }
}

TEST(PretrainedBaseTest, MaskedLmCheckpointLoadsForRegression) {
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadModel(RobertaMini(), Options(Task::kRegression, 1, 7));
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_EQ((*model)->warnings().size(), 2u);
  EXPECT_THAT((*model)->warnings()[1],
              ::testing::HasSubstr("classifier.out_proj.weight (normal, mean 0, std 0.02)"));
  EXPECT_EQ(Head(**model)["classifier.out_proj.weight"].sizes(), (std::vector<int64_t>{1, 256}));
  // The pretrained encoder runs: [batch, 1] predictions from "<s> hello </s>"-like ids.
  torch::NoGradGuard no_grad;
  torch::Tensor ids = torch::tensor({{0, 400, 500, 2}}, torch::kInt64);
  torch::Tensor out = (*model)->Forward(ids, torch::ones_like(ids));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, 1}));
  EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
}

TEST(PretrainedBaseTest, CausalLmCheckpointGetsASeededScoreHead) {
  const std::string llama = "tests/fixtures/parity/llama_causal";  // LlamaForCausalLM, no score
  absl::StatusOr<std::unique_ptr<Model>> a =
      LoadModel(llama, Options(Task::kSequenceClassification, 3, 42));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)->warnings(),
            (std::vector<std::string>{"head 'score' is not in the checkpoint; initialised from "
                                      "the seed: score.weight (normal, mean 0, std 0.1)"}));
  std::map<std::string, torch::Tensor> head = Head(**a);
  ASSERT_EQ(head.size(), 1u);  // Llama's score has no bias
  EXPECT_EQ(head["score.weight"].sizes(), (std::vector<int64_t>{3, 32}));
  absl::StatusOr<std::unique_ptr<Model>> same =
      LoadModel(llama, Options(Task::kSequenceClassification, 3, 42));
  absl::StatusOr<std::unique_ptr<Model>> other =
      LoadModel(llama, Options(Task::kSequenceClassification, 3, 43));
  ASSERT_TRUE(same.ok() && other.ok());
  EXPECT_TRUE(torch::equal(head["score.weight"], Head(**same)["score.weight"]));
  EXPECT_FALSE(torch::equal(head["score.weight"], Head(**other)["score.weight"]));
}

}  // namespace
}  // namespace attune::engine
