#include "client/submit_command.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace attune::client {
namespace {

// Parses `attune submit ARGS` the way main does and builds the request.
absl::StatusOr<v1::CreateJobRequest> Build(std::vector<std::string> args) {
  CLI::App app;
  SubmitFlags flags;
  CLI::App* submit = app.add_subcommand("submit");
  AddSubmitFlags(submit, &flags);
  args.insert(args.begin(), "submit");
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments in reverse order
  app.parse(args);
  return BuildCreateRequest(*submit, flags);
}

TEST(BuildCreateRequestTest, GpusUnsetWhenNotGiven) {
  auto request = Build({"--model", "/m", "--rank", "4"});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_FALSE(request->spec().has_gpus());
  EXPECT_EQ(request->spec().lora().rank(), 4);
}

TEST(BuildCreateRequestTest, GpusZeroIsSentAsExplicitCpu) {
  auto zero = Build({"--gpus", "0"});
  ASSERT_TRUE(zero.ok()) << zero.status();
  ASSERT_TRUE(zero->spec().has_gpus());
  EXPECT_EQ(zero->spec().gpus(), 0);
  auto two = Build({"--gpus", "2"});
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(two->spec().gpus(), 2);
}

TEST(BuildCreateRequestTest, RanksIsSentOnlyWhenGiven) {
  auto unset = Build({"--gpus", "0"});
  ASSERT_TRUE(unset.ok()) << unset.status();
  EXPECT_FALSE(unset->spec().has_ranks());
  auto two = Build({"--gpus", "0", "--ranks", "2"});
  ASSERT_TRUE(two.ok()) << two.status();
  ASSERT_TRUE(two->spec().has_ranks());
  EXPECT_EQ(two->spec().ranks(), 2);
  EXPECT_EQ(two->spec().gpus(), 0);
}

TEST(BuildCreateRequestTest, MethodDoraIsSentAsMethodDora) {
  auto request = Build({"--method", "dora"});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->spec().method(), v1::METHOD_DORA);
  auto unknown = Build({"--method", "qlora"});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(unknown.status().message(),
            "method: unknown method 'qlora'; expected one of lora, full, dora");
}

TEST(BuildCreateRequestTest, UnknownTaskNamesTheField) {
  auto request = Build({"--task", "translation"});
  EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(request.status().message(),
            "task: unknown task 'translation'; expected one of classification, regression, "
            "causal-lm");
}

TEST(BuildCreateRequestTest, FlagsGivenAreSetOthersLeftUnset) {
  auto request = Build({"--lr", "0.001", "--lr-ratio", "v=4", "--max-steps", "30", "--label",
                        "team=nlp", "--request-id", "r1"});
  ASSERT_TRUE(request.ok()) << request.status();
  const v1::JobSpec& spec = request->spec();
  EXPECT_DOUBLE_EQ(spec.learning_rate(), 0.001);
  EXPECT_DOUBLE_EQ(spec.lr_ratios().at("v"), 4);
  EXPECT_EQ(spec.max_steps(), 30);
  EXPECT_EQ(spec.labels().at("team"), "nlp");
  EXPECT_EQ(request->request_id(), "r1");
  EXPECT_FALSE(spec.has_epochs());
  EXPECT_FALSE(spec.lora().has_rank());
}

TEST(BuildCreateRequestTest, MaxRetriesIsSentOnlyWhenGiven) {
  auto request = Build({"--max-retries", "0"});
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_TRUE(request->spec().has_max_retries());
  EXPECT_EQ(request->spec().max_retries(), 0);
  auto plain = Build({});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->spec().has_max_retries());  // the server's default
}

TEST(BuildCreateRequestTest, EvalMetricAndEarlyStopping) {
  auto request = Build({"--eval-metric", "mcc", "--early-stopping-patience", "3"});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->spec().eval_metric(), v1::EVAL_METRIC_MCC);
  EXPECT_EQ(request->spec().early_stopping_patience(), 3);
  // Not given: unset, so that the server picks the task's metric and leaves early stopping off.
  auto plain = Build({"--task", "regression"});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->spec().eval_metric(), v1::EVAL_METRIC_UNSPECIFIED);
  EXPECT_EQ(plain->spec().early_stopping_patience(), 0);
  EXPECT_FALSE(plain->spec().has_learning_rate());
  EXPECT_FALSE(plain->spec().has_batch_size());
  auto bad = Build({"--eval-metric", "auc"});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "eval_metric: unknown 'auc'; expected accuracy, f1, mcc, pearson, spearman or loss");
}

}  // namespace
}  // namespace attune::client
