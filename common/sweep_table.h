// The comparison table of a sweep: one row per configuration, mean +- std over its seeds. The one
// computation behind `attune compare` (client/) and the dashboard's sweep view (server/http/).
//
// A sweep is a set of ordinary jobs that `attune sweep` submitted from one grid. Each carries
// labels that say where it belongs (the label names below): `attune.sweep` = the sweep's id,
// `attune.sweep.index` = its position in the grid (0-based), and `attune.grid.<field>` = its
// value of each grid field, written as in the sweep file (`targets` "q,v", `lr_ratios` "v=4",
// `seed` "1"). A configuration is the set of grid values other than the seed; its row summarises
// the jobs that share it.
//
// Per job (only SUCCEEDED jobs count in the numbers; the others are counted in `jobs`):
// - dev metric: the best of the job's evaluations of the chosen metric (higher is better, except
//   for loss and perplexity), read by name through EvalMetricByName.
// - steps to converge: the first step at which the train loss, as a trailing mean over
//   w = max(1, n/10) of the n steps, has come down by kConvergenceFraction (90%) of the way from
//   its start (the mean of the first w losses) to its end (the mean of the last w). Absent when
//   the loss did not go down.
// - eval AUC: the area under the dev metric's curve over steps (trapezoids between evaluations),
//   divided by the steps it spans, so that it is a mean metric over training and comparable
//   between runs of different length; a single evaluation gives its value.
// Summaries are mean and sample standard deviation (n - 1); std is absent below two values.
//
// Pure functions of plain values: no I/O, thread-safe. No proto or LibTorch types.
#ifndef ATTUNE_COMMON_SWEEP_TABLE_H_
#define ATTUNE_COMMON_SWEEP_TABLE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "nlohmann/json.hpp"

namespace attune {

inline constexpr char kSweepLabel[] = "attune.sweep";
inline constexpr char kSweepIndexLabel[] = "attune.sweep.index";
inline constexpr char kGridLabelPrefix[] = "attune.grid.";
// The grid field that varies between the runs of one configuration.
inline constexpr char kSeedField[] = "seed";
// Steps to converge = steps to this fraction of the train loss's whole reduction.
inline constexpr double kConvergenceFraction = 0.9;

struct LossPoint {
  int64_t step = 0;
  double loss = 0;
};

// One job of a sweep, as the table reads it.
struct SweepRun {
  std::string job_id;
  std::string state;                          // "SUCCEEDED", "RUNNING", ... (upper case)
  std::map<std::string, std::string> labels;  // all the job's labels
  std::string eval_metric;                    // the job's spec eval_metric ("mcc"); "" = unset
  std::vector<EvalMetrics> evals;             // every evaluation, in step order
  std::vector<LossPoint> train_loss;          // every step's train loss, in step order
  int64_t trainable_parameters = 0;
  int64_t adapter_bytes = 0;           // of the latest checkpoint
  std::optional<double> wall_seconds;  // finish - start; absent until finished
};

// Mean and sample standard deviation of `n` values; mean absent when n = 0, std when n < 2.
struct MeanStd {
  int n = 0;
  std::optional<double> mean;
  std::optional<double> std;
};

struct SweepGroup {
  std::map<std::string, std::string> config;  // grid field -> value, the seed left out
  int jobs = 0;                               // jobs of this configuration, in any state
  std::vector<std::string> job_ids;           // all of them, in grid order
  std::vector<std::string> seeds;             // of the SUCCEEDED ones, in grid order
  MeanStd dev_metric, trainable_parameters, adapter_bytes, wall_seconds, steps_to_converge,
      eval_auc;
};

struct SweepTable {
  std::string sweep_id;
  std::string metric;                    // the dev metric's name, e.g. "accuracy"
  bool higher_is_better = true;          // of `metric`
  std::vector<std::string> grid_fields;  // the fields of SweepGroup::config, sorted
  std::vector<SweepGroup> groups;        // in grid order (of each group's first job)
};

// The metric names EvalMetricByName knows: "accuracy", "loss", "pearson", "spearman",
// "perplexity".
const std::vector<std::string>& EvalMetricNames();

// The value of the metric `name` in `eval`; absent when the evaluation has none (or the name is
// unknown). The one place a dev metric is read by name.
std::optional<double> EvalMetricByName(const EvalMetrics& eval, std::string_view name);

// False for "loss" and "perplexity", true otherwise.
bool HigherIsBetter(std::string_view metric);

// The metric a table uses when none is asked for: the runs' eval_metric when those that name one
// agree (the metric that picked each job's best checkpoint: CoLA's "mcc", STS-B's "pearson"),
// else "accuracy" when any run's evaluation has one, else "loss" (as RankingMetric ranks).
std::string DefaultDevMetric(const std::vector<SweepRun>& runs);

// The per-job measures described at the top; absent when there is nothing to measure.
std::optional<double> BestDevMetric(const std::vector<EvalMetrics>& evals, std::string_view metric);
std::optional<int64_t> StepsToConverge(const std::vector<LossPoint>& losses, double fraction);
std::optional<double> EvalCurveArea(const std::vector<EvalMetrics>& evals, std::string_view metric);
MeanStd Summarize(const std::vector<double>& values);

// The table of `runs` (the jobs labelled with `sweep_id`, in any order) by `metric` ("" =
// DefaultDevMetric). INVALID_ARGUMENT when `metric` is not one of EvalMetricNames().
absl::StatusOr<SweepTable> BuildSweepTable(const std::string& sweep_id,
                                           const std::vector<SweepRun>& runs,
                                           const std::string& metric);

// The table as JSON (`attune compare --output json`, the dashboard's /api/sweeps/<id>):
// {"sweepId", "metric", "higherIsBetter", "convergenceFraction", "gridFields", "groups": [{
// "config": {field: value}, "jobs", "jobIds", "seeds", "devMetric": {"n", "mean", "std"},
// "trainableParameters", "adapterBytes", "wallSeconds", "stepsToConverge", "evalAuc"}]},
// absent values as null.
nlohmann::json SweepTableToJson(const SweepTable& table);

}  // namespace attune

#endif  // ATTUNE_COMMON_SWEEP_TABLE_H_
