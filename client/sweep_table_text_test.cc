#include "client/sweep_table_text.h"

#include "gtest/gtest.h"

namespace attune::client {
namespace {

SweepTable TwoGroups() {
  SweepTable table;
  table.sweep_id = "s-1";
  table.metric = "accuracy";
  table.grid_fields = {"lr_ratios", "targets"};
  SweepGroup a;
  a.config = {{"lr_ratios", "v=1"}, {"targets", "q,k,v"}};
  a.jobs = 2;
  a.seeds = {"0", "1"};
  a.dev_metric = {2, 0.75, 0.01};
  a.trainable_parameters = {2, 1536, 0};
  a.adapter_bytes = {2, 6400, 0};
  a.wall_seconds = {2, 3.25, 0.5};
  a.steps_to_converge = {2, 12, 2};
  a.eval_auc = {2, 0.7, 0.02};
  SweepGroup b;
  b.config = {{"lr_ratios", "v=4"}, {"targets", "q,v"}};
  b.jobs = 2;
  b.seeds = {"0"};
  b.dev_metric = {1, 0.8, std::nullopt};
  b.trainable_parameters = {1, 1024, std::nullopt};
  b.adapter_bytes = {1, 4200, std::nullopt};
  b.wall_seconds = {1, 2.0, std::nullopt};
  b.eval_auc = {1, 0.75, std::nullopt};  // steps_to_converge absent
  table.groups = {a, b};
  return table;
}

TEST(SweepTableTextTest, AlignsOneRowPerConfiguration) {
  EXPECT_EQ(SweepTableText(TwoGroups()),
            "sweep s-1: 2 configurations; accuracy = best evaluation per job (higher is "
            "better), mean +- std over seeds (n-1); steps to 90% of the train-loss reduction; "
            "eval AUC = mean accuracy over the steps evaluated\n"
            "lr_ratios  targets  jobs  accuracy          params  adapter  wall s      "
            "steps to converge  eval AUC\n"
            "v=1        q,k,v    2/2   0.7500 +- 0.0100  1536    6.2 KiB  3.2 +- 0.5  "
            "12.0 +- 2.0        0.7000 +- 0.0200\n"
            "v=4        q,v      1/2   0.8000            1024    4.1 KiB  2.0         "
            "-                  0.7500\n");
}

TEST(SweepTableTextTest, CsvQuotesCommasAndLeavesAbsentCellsEmpty) {
  EXPECT_EQ(SweepTableCsv(TwoGroups()),
            "lr_ratios,targets,jobs,succeeded,accuracy_mean,accuracy_std,"
            "trainable_parameters_mean,adapter_bytes_mean,wall_seconds_mean,wall_seconds_std,"
            "steps_to_converge_mean,steps_to_converge_std,eval_auc_mean,eval_auc_std\r\n"
            "v=1,\"q,k,v\",2,2,0.75,0.01,1536,6400,3.25,0.5,12,2,0.7,0.02\r\n"
            "v=4,\"q,v\",2,1,0.8,,1024,4200,2,,,,0.75,\r\n");
}

}  // namespace
}  // namespace attune::client
