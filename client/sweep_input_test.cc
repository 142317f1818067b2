#include "client/sweep_input.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "gtest/gtest.h"

namespace attune::client {
namespace {

std::string WriteTempYaml(const std::string& text) {
  char path[] = "/tmp/attune_sweep_XXXXXX.yaml";
  int fd = mkstemps(path, 5);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << text;
  return path;
}

constexpr char kBase[] =
    "model: model\n"
    "train: train.jsonl\n"
    "task: classification\n"
    "name: sst2\n"
    "lr: 0.001\n"
    "rank: 4\n"
    "labels: {team: nlp}\n";

TEST(SweepPlanTest, ExpandsTheCartesianProductLastFieldFastest) {
  std::string path = WriteTempYaml(std::string(kBase) +
                                   "grid:\n"
                                   "  targets: [[q, k, v], [q, v]]\n"
                                   "  lr_ratios: [{v: 1}, {v: 4}]\n"
                                   "  seed: [0, 1, 2]\n");
  absl::StatusOr<SweepPlan> plan = SweepPlanFromYamlFile(path, "s-test");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->sweep_id, "s-test");
  ASSERT_EQ(plan->jobs.size(), 12u);
  const SweepJob& first = plan->jobs[0];
  EXPECT_EQ(GridValuesText(first.grid_values), "targets=q,k,v lr_ratios=v=1 seed=0");
  EXPECT_EQ(first.request.spec().targets_size(), 3);
  EXPECT_EQ(first.request.spec().lr_ratios().at("v"), 1.0);
  EXPECT_EQ(first.request.spec().seed(), 0u);
  EXPECT_EQ(first.request.spec().learning_rate(), 0.001);  // the file's fields stay
  EXPECT_EQ(first.request.spec().lora().rank(), 4);
  EXPECT_EQ(first.request.spec().model(), "/tmp/model");
  EXPECT_EQ(first.request.request_id(), "s-test-0");
  EXPECT_EQ(first.request.spec().name(), "sst2 targets=q,k,v lr_ratios=v=1 seed=0");
  const auto& labels = first.request.spec().labels();
  EXPECT_EQ(labels.at("team"), "nlp");
  EXPECT_EQ(labels.at("attune.sweep"), "s-test");
  EXPECT_EQ(labels.at("attune.sweep.index"), "0");
  EXPECT_EQ(labels.at("attune.grid.targets"), "q,k,v");
  EXPECT_EQ(labels.at("attune.grid.lr_ratios"), "v=1");
  EXPECT_EQ(labels.at("attune.grid.seed"), "0");

  const SweepJob& seventh = plan->jobs[7];  // (1, 0, 1): q,v / v=1 / seed 1
  EXPECT_EQ(GridValuesText(seventh.grid_values), "targets=q,v lr_ratios=v=1 seed=1");
  EXPECT_EQ(seventh.request.spec().targets(1), "v");
  EXPECT_EQ(seventh.request.request_id(), "s-test-7");
  EXPECT_EQ(plan->jobs[11].request.spec().lr_ratios().at("v"), 4.0);
  EXPECT_EQ(plan->jobs[11].request.spec().seed(), 2u);
}

TEST(SweepPlanTest, AGridValueReplacesEverySpellingOfItsField) {
  std::string path = WriteTempYaml(std::string(kBase) +
                                   "grid:\n"
                                   "  learning_rate: [0.01, 0.02]\n"
                                   "  lora_rank: [8]\n"
                                   "  method: [lora, full]\n");
  absl::StatusOr<SweepPlan> plan = SweepPlanFromYamlFile(path, "s-test");
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->jobs.size(), 4u);
  EXPECT_EQ(plan->jobs[0].request.spec().learning_rate(), 0.01);  // not the file's `lr`
  EXPECT_EQ(plan->jobs[2].request.spec().learning_rate(), 0.02);
  EXPECT_EQ(plan->jobs[0].request.spec().lora().rank(), 8);  // not the file's `rank`
  EXPECT_EQ(plan->jobs[1].request.spec().method(), v1::METHOD_FULL);
  EXPECT_EQ(plan->jobs[1].request.spec().labels().at("attune.grid.lora_rank"), "8");
}

TEST(SweepPlanTest, TheDerivedIdDependsOnTheJobsOnly) {
  const std::string grid = "grid:\n  seed: [0, 1]\n";
  auto a = SweepPlanFromYamlFile(WriteTempYaml(std::string(kBase) + grid), "");
  auto b = SweepPlanFromYamlFile(WriteTempYaml(std::string(kBase) + "# same\n" + grid), "");
  auto c = SweepPlanFromYamlFile(WriteTempYaml(std::string(kBase) + "grid:\n  seed: [0, 2]\n"), "");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->sweep_id, b->sweep_id);
  EXPECT_NE(a->sweep_id, c->sweep_id);
  EXPECT_EQ(a->sweep_id.size(), 18u);  // "s-" and 16 hex digits
  EXPECT_EQ(a->sweep_id.substr(0, 2), "s-");
  EXPECT_EQ(a->jobs[1].request.request_id(), a->sweep_id + "-1");
}

std::string last_path;  // of the file PlanError wrote last

absl::Status PlanError(const std::string& grid) {
  last_path = WriteTempYaml(std::string(kBase) + grid);
  return SweepPlanFromYamlFile(last_path, "s-test").status();
}

TEST(SweepPlanTest, BadGridEntriesNameTheFieldAndTheValue) {
  EXPECT_EQ(PlanError("grid:\n  seed: [0]\n  method: [lora, dorra]\n"),
            absl::InvalidArgumentError("grid.method: value 'dorra': method: unknown method "
                                       "'dorra'; expected one of lora, full, dora"));
  EXPECT_EQ(PlanError("grid:\n  seed: 3\n"),
            absl::InvalidArgumentError("grid.seed: expected a non-empty list of values"));
  EXPECT_EQ(PlanError("grid:\n  seed: []\n"),
            absl::InvalidArgumentError("grid.seed: expected a non-empty list of values"));
  EXPECT_EQ(PlanError("grid:\n  labels: [{a: b}]\n"),
            absl::InvalidArgumentError(
                "grid.labels: cannot be varied (the sweep sets names and labels)"));
  absl::Status unknown = PlanError("grid:\n  colour: [red]\n");
  EXPECT_EQ(unknown, absl::InvalidArgumentError("grid.colour: value 'red': config: " + last_path +
                                                ": colour: Cannot find field."));
  absl::Status no_grid = PlanError("");
  EXPECT_EQ(no_grid, absl::InvalidArgumentError("grid: " + last_path +
                                                " needs `grid:`, a mapping from a field to a "
                                                "list of values"));
  EXPECT_EQ(PlanError("grid:\n  seed: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n"
                      "  lr: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n  rank: [1, 2, 3, 4, 5, 6, 7, 8, "
                      "9, 10, 11]\n"),
            absl::InvalidArgumentError("grid: more than 1000 jobs; at most 1000 allowed in one "
                                       "sweep"));
}

}  // namespace
}  // namespace attune::client
