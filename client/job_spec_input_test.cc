#include "client/job_spec_input.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "gtest/gtest.h"

namespace attune::client {
namespace {

std::string WriteTempYaml(const std::string& text) {
  char path[] = "/tmp/attune_spec_XXXXXX.yaml";
  int fd = mkstemps(path, 5);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << text;
  return path;
}

TEST(JobSpecFromYamlFileTest, ReadsFieldsAndConveniences) {
  std::string path = WriteTempYaml(
      "model: model\n"
      "train: data/train.jsonl\n"
      "validation: /abs/validation.jsonl\n"
      "task: classification\n"
      "targets: q,v\n"
      "rank: 4\n"
      "alpha: 8\n"
      "lr: 0.001\n"
      "lr_ratios: {v: 4}\n"
      "schedule: cosine\n"
      "max_steps: 30\n"
      "seed: 7\n"
      "labels: {team: nlp}\n");
  auto spec = JobSpecFromYamlFile(path);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->model(), "/tmp/model");
  EXPECT_EQ(spec->train(), "/tmp/data/train.jsonl");
  EXPECT_EQ(spec->validation(), "/abs/validation.jsonl");
  EXPECT_EQ(spec->task(), v1::TASK_SEQUENCE_CLASSIFICATION);
  ASSERT_EQ(spec->targets_size(), 2);
  EXPECT_EQ(spec->targets(0), "q");
  EXPECT_EQ(spec->targets(1), "v");
  EXPECT_EQ(spec->lora().rank(), 4);
  EXPECT_DOUBLE_EQ(spec->lora().alpha(), 8);
  EXPECT_DOUBLE_EQ(spec->learning_rate(), 0.001);
  EXPECT_DOUBLE_EQ(spec->lr_ratios().at("v"), 4);
  EXPECT_EQ(spec->schedule(), v1::SCHEDULE_COSINE);
  EXPECT_EQ(spec->max_steps(), 30);
  EXPECT_EQ(spec->seed(), 7u);
  EXPECT_EQ(spec->labels().at("team"), "nlp");
  std::remove(path.c_str());
}

TEST(JobSpecFromYamlFileTest, MethodDora) {
  std::string path = WriteTempYaml("model: m\nmethod: dora\n");
  auto spec = JobSpecFromYamlFile(path);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->method(), v1::METHOD_DORA);
  std::remove(path.c_str());
}

// No `gpus:` key leaves the field unset (the server picks); `gpus: 0` asks for a CPU slot.
TEST(JobSpecFromYamlFileTest, GpusUnsetUnlessGiven) {
  std::string without = WriteTempYaml("model: m\n");
  auto unset = JobSpecFromYamlFile(without);
  ASSERT_TRUE(unset.ok()) << unset.status();
  EXPECT_FALSE(unset->has_gpus());
  std::remove(without.c_str());

  std::string with_zero = WriteTempYaml("model: m\ngpus: 0\n");
  auto zero = JobSpecFromYamlFile(with_zero);
  ASSERT_TRUE(zero.ok()) << zero.status();
  ASSERT_TRUE(zero->has_gpus());
  EXPECT_EQ(zero->gpus(), 0);
  std::remove(with_zero.c_str());
}

// `ranks:` is read like `gpus:`: unset unless given.
TEST(JobSpecFromYamlFileTest, RanksUnsetUnlessGiven) {
  std::string without = WriteTempYaml("model: m\ngpus: 0\n");
  auto unset = JobSpecFromYamlFile(without);
  ASSERT_TRUE(unset.ok()) << unset.status();
  EXPECT_FALSE(unset->has_ranks());
  std::remove(without.c_str());

  std::string with_two = WriteTempYaml("model: m\ngpus: 0\nranks: 2\n");
  auto two = JobSpecFromYamlFile(with_two);
  ASSERT_TRUE(two.ok()) << two.status();
  ASSERT_TRUE(two->has_ranks());
  EXPECT_EQ(two->ranks(), 2);
  std::remove(with_two.c_str());
}

TEST(JobSpecFromYamlFileTest, UnknownKeyIsInvalidArgument) {
  std::string path = WriteTempYaml("model: m\nbogus_field: 3\n");
  auto spec = JobSpecFromYamlFile(path);
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(spec.status().message().find("bogus_field"), std::string::npos);
  std::remove(path.c_str());
}

// Found by the job_yaml fuzzer: a byte that is not UTF-8 made the JSON conversion throw, which
// took the CLI down (tests/fuzz/crashes/job_yaml/ keeps the input).
TEST(JobSpecFromYamlFileTest, NonUtf8ValueIsInvalidArgument) {
  std::string path = WriteTempYaml("name: \xff\xfe\nmodel: m\n");
  auto spec = JobSpecFromYamlFile(path);
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(spec.status().message(), "config: " + path + ": a value is not valid UTF-8 text");
  std::remove(path.c_str());
}

// Found by the job_yaml fuzzer: a top-level `rank` with a `lora` that is not a mapping threw.
TEST(JobSpecFromYamlFileTest, RankBesideANonMappingLoraIsInvalidArgument) {
  std::string path = WriteTempYaml("lora: 5\nrank: 8\n");
  auto spec = JobSpecFromYamlFile(path);
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(spec.status().message(),
            "lora: expected a mapping (rank, alpha, dropout, use_rslora) when 'rank' is also "
            "given");
  std::remove(path.c_str());
}

TEST(JobSpecFromYamlFileTest, UnknownTaskNamesTheField) {
  std::string path = WriteTempYaml("task: translation\n");
  auto spec = JobSpecFromYamlFile(path);
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(spec.status().message().substr(0, 5), "task:");
  std::remove(path.c_str());
}

TEST(JobSpecFromYamlFileTest, MissingFileIsNotFound) {
  EXPECT_EQ(JobSpecFromYamlFile("/nonexistent/job.yaml").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ParseRatioListTest, ParsesPairsAndRejectsGarbage) {
  google::protobuf::Map<std::string, double> ratios;
  ASSERT_TRUE(ParseRatioList("v=4, k=2", &ratios).ok());
  EXPECT_DOUBLE_EQ(ratios.at("v"), 4);
  EXPECT_DOUBLE_EQ(ratios.at("k"), 2);
  EXPECT_EQ(ParseRatioList("v:4", &ratios).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRatioList("v=four", &ratios).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseLabelTest, NeedsEquals) {
  google::protobuf::Map<std::string, std::string> labels;
  ASSERT_TRUE(ParseLabel("team=nlp=x", &labels).ok());
  EXPECT_EQ(labels.at("team"), "nlp=x");
  EXPECT_EQ(ParseLabel("team", &labels).code(), absl::StatusCode::kInvalidArgument);
}

TEST(AbsolutePathTest, JoinsAndNormalises) {
  EXPECT_EQ(AbsolutePath("a/../b.jsonl", "/data"), "/data/b.jsonl");
  EXPECT_EQ(AbsolutePath("/x/y", "/data"), "/x/y");
  EXPECT_EQ(AbsolutePath("", "/data"), "");
}

}  // namespace
}  // namespace attune::client
