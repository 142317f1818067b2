#include "common/sweep_table.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace attune {
namespace {

using nlohmann::json;

double Mean(const std::vector<double>& values, size_t begin, size_t end) {
  double sum = 0;
  for (size_t i = begin; i < end; ++i) sum += values[i];
  return sum / static_cast<double>(end - begin);
}

// The metric's (step, value) points of `evals`, in step order.
std::vector<std::pair<int64_t, double>> MetricCurve(const std::vector<EvalMetrics>& evals,
                                                    std::string_view metric) {
  std::vector<std::pair<int64_t, double>> curve;
  for (const EvalMetrics& eval : evals) {
    std::optional<double> value = EvalMetricByName(eval, metric);
    if (value && std::isfinite(*value)) curve.emplace_back(eval.step, *value);
  }
  std::stable_sort(curve.begin(), curve.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return curve;
}

// The configuration of a run: its grid labels other than the seed.
std::map<std::string, std::string> ConfigOf(const SweepRun& run) {
  std::map<std::string, std::string> config;
  for (const auto& [key, value] : run.labels) {
    if (!absl::StartsWith(key, kGridLabelPrefix)) continue;
    std::string field = key.substr(std::string_view(kGridLabelPrefix).size());
    if (field != kSeedField) config[field] = value;
  }
  return config;
}

// The run's position in the grid; runs without a readable index sort last.
int64_t GridIndex(const SweepRun& run) {
  auto it = run.labels.find(kSweepIndexLabel);
  int64_t index = 0;
  if (it == run.labels.end() || !absl::SimpleAtoi(it->second, &index)) {
    return std::numeric_limits<int64_t>::max();
  }
  return index;
}

std::string SeedOf(const SweepRun& run) {
  auto it = run.labels.find(absl::StrCat(kGridLabelPrefix, kSeedField));
  return it == run.labels.end() ? "" : it->second;
}

// The measures of the SUCCEEDED runs of one group, column by column.
struct GroupValues {
  std::vector<double> dev_metric, params, bytes, wall, steps, auc;
};

void AddRun(const SweepRun& run, const std::string& metric, GroupValues* v) {
  if (std::optional<double> best = BestDevMetric(run.evals, metric)) v->dev_metric.push_back(*best);
  v->params.push_back(static_cast<double>(run.trainable_parameters));
  v->bytes.push_back(static_cast<double>(run.adapter_bytes));
  if (run.wall_seconds) v->wall.push_back(*run.wall_seconds);
  if (std::optional<int64_t> steps = StepsToConverge(run.train_loss, kConvergenceFraction)) {
    v->steps.push_back(static_cast<double>(*steps));
  }
  if (std::optional<double> auc = EvalCurveArea(run.evals, metric)) v->auc.push_back(*auc);
}

json OptionalNumber(const std::optional<double>& value) {
  return value && std::isfinite(*value) ? json(*value) : json(nullptr);
}

json MeanStdToJson(const MeanStd& m) {
  return {{"n", m.n}, {"mean", OptionalNumber(m.mean)}, {"std", OptionalNumber(m.std)}};
}

}  // namespace

const std::vector<std::string>& EvalMetricNames() {
  static const auto* kNames = new std::vector<std::string>{
      "accuracy", "f1", "mcc", "loss", "pearson", "spearman", "perplexity"};
  return *kNames;
}

std::optional<double> EvalMetricByName(const EvalMetrics& eval, std::string_view name) {
  if (name == "accuracy") return eval.accuracy;
  if (name == "loss") return eval.loss;
  if (name == "pearson") return eval.pearson;
  if (name == "spearman") return eval.spearman;
  if (name == "perplexity") return eval.perplexity;
  if (name == "f1") return eval.f1;
  if (name == "mcc") return eval.mcc;
  return std::nullopt;
}

bool HigherIsBetter(std::string_view metric) { return metric != "loss" && metric != "perplexity"; }

std::string DefaultDevMetric(const std::vector<SweepRun>& runs) {
  std::string named;
  bool agree = true;
  for (const SweepRun& run : runs) {
    if (run.eval_metric.empty()) continue;
    if (!named.empty() && named != run.eval_metric) agree = false;
    named = run.eval_metric;
  }
  if (!named.empty() && agree) return named;
  for (const SweepRun& run : runs) {
    for (const EvalMetrics& eval : run.evals) {
      if (eval.accuracy.has_value()) return "accuracy";
    }
  }
  return "loss";
}

std::optional<double> BestDevMetric(const std::vector<EvalMetrics>& evals,
                                    std::string_view metric) {
  std::optional<double> best;
  for (const auto& [step, value] : MetricCurve(evals, metric)) {
    if (!best || (HigherIsBetter(metric) ? value > *best : value < *best)) best = value;
  }
  return best;
}

std::optional<int64_t> StepsToConverge(const std::vector<LossPoint>& losses, double fraction) {
  std::vector<double> loss;
  std::vector<int64_t> steps;
  for (const LossPoint& point : losses) {
    if (!std::isfinite(point.loss)) continue;  // a skipped step
    loss.push_back(point.loss);
    steps.push_back(point.step);
  }
  const size_t n = loss.size();
  if (n < 2) return std::nullopt;
  const size_t w = std::max<size_t>(1, n / 10);
  const double start = Mean(loss, 0, w);
  const double end = Mean(loss, n - w, n);
  if (!(start > end)) return std::nullopt;
  const double target = start - fraction * (start - end);
  for (size_t i = 0; i < n; ++i) {
    const size_t from = i + 1 >= w ? i + 1 - w : 0;
    if (Mean(loss, from, i + 1) <= target) return steps[i];
  }
  return steps[n - 1];  // not reached: the last trailing mean is `end` <= target
}

std::optional<double> EvalCurveArea(const std::vector<EvalMetrics>& evals,
                                    std::string_view metric) {
  const std::vector<std::pair<int64_t, double>> curve = MetricCurve(evals, metric);
  if (curve.empty()) return std::nullopt;
  const double span = static_cast<double>(curve.back().first - curve.front().first);
  if (span <= 0) {
    double sum = 0;
    for (const auto& point : curve) sum += point.second;
    return sum / static_cast<double>(curve.size());
  }
  double area = 0;
  for (size_t i = 1; i < curve.size(); ++i) {
    area += 0.5 * (curve[i].second + curve[i - 1].second) *
            static_cast<double>(curve[i].first - curve[i - 1].first);
  }
  return area / span;
}

MeanStd Summarize(const std::vector<double>& values) {
  MeanStd out;
  out.n = static_cast<int>(values.size());
  if (values.empty()) return out;
  const double mean = Mean(values, 0, values.size());
  out.mean = mean;
  if (values.size() < 2) return out;
  double squares = 0;
  for (double v : values) squares += (v - mean) * (v - mean);
  out.std = std::sqrt(squares / static_cast<double>(values.size() - 1));
  return out;
}

absl::StatusOr<SweepTable> BuildSweepTable(const std::string& sweep_id,
                                           const std::vector<SweepRun>& runs,
                                           const std::string& metric) {
  SweepTable table;
  table.sweep_id = sweep_id;
  table.metric = metric.empty() ? DefaultDevMetric(runs) : metric;
  const std::vector<std::string>& names = EvalMetricNames();
  if (std::find(names.begin(), names.end(), table.metric) == names.end()) {
    return absl::InvalidArgumentError(absl::StrCat("metric: unknown metric '", table.metric,
                                                   "'; expected one of ",
                                                   absl::StrJoin(names, ", ")));
  }
  table.higher_is_better = HigherIsBetter(table.metric);

  std::vector<const SweepRun*> ordered;
  for (const SweepRun& run : runs) ordered.push_back(&run);
  std::stable_sort(ordered.begin(), ordered.end(), [](const SweepRun* a, const SweepRun* b) {
    return GridIndex(*a) < GridIndex(*b);
  });
  std::map<std::map<std::string, std::string>, size_t> group_of;
  std::vector<GroupValues> values;
  for (const SweepRun* run : ordered) {
    std::map<std::string, std::string> config = ConfigOf(*run);
    auto [it, added] = group_of.emplace(config, table.groups.size());
    if (added) {
      table.groups.emplace_back().config = config;
      values.emplace_back();
      for (const auto& field : config) table.grid_fields.push_back(field.first);
    }
    SweepGroup& group = table.groups[it->second];
    ++group.jobs;
    group.job_ids.push_back(run->job_id);
    if (run->state != "SUCCEEDED") continue;
    group.seeds.push_back(SeedOf(*run));
    AddRun(*run, table.metric, &values[it->second]);
  }
  std::sort(table.grid_fields.begin(), table.grid_fields.end());
  table.grid_fields.erase(std::unique(table.grid_fields.begin(), table.grid_fields.end()),
                          table.grid_fields.end());
  for (size_t i = 0; i < table.groups.size(); ++i) {
    SweepGroup& g = table.groups[i];
    const GroupValues& v = values[i];
    g.dev_metric = Summarize(v.dev_metric);
    g.trainable_parameters = Summarize(v.params);
    g.adapter_bytes = Summarize(v.bytes);
    g.wall_seconds = Summarize(v.wall);
    g.steps_to_converge = Summarize(v.steps);
    g.eval_auc = Summarize(v.auc);
  }
  return table;
}

json SweepTableToJson(const SweepTable& table) {
  json groups = json::array();
  for (const SweepGroup& g : table.groups) {
    groups.push_back({{"config", g.config},
                      {"jobs", g.jobs},
                      {"jobIds", g.job_ids},
                      {"seeds", g.seeds},
                      {"devMetric", MeanStdToJson(g.dev_metric)},
                      {"trainableParameters", MeanStdToJson(g.trainable_parameters)},
                      {"adapterBytes", MeanStdToJson(g.adapter_bytes)},
                      {"wallSeconds", MeanStdToJson(g.wall_seconds)},
                      {"stepsToConverge", MeanStdToJson(g.steps_to_converge)},
                      {"evalAuc", MeanStdToJson(g.eval_auc)}});
  }
  return {{"sweepId", table.sweep_id},
          {"metric", table.metric},
          {"higherIsBetter", table.higher_is_better},
          {"convergenceFraction", kConvergenceFraction},
          {"gridFields", table.grid_fields},
          {"groups", groups}};
}

}  // namespace attune
