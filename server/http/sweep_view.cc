#include "server/http/sweep_view.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/metrics.h"

namespace attune::http {
namespace {

using nlohmann::json;

constexpr int kEventsPerRead = 10000;

std::string Label(const JobView& job, const std::string& key) {
  auto it = job.spec.labels.find(key);
  return it == job.spec.labels.end() ? "" : it->second;
}

int64_t GridIndex(const JobView& job) {
  int64_t index = 0;
  return absl::SimpleAtoi(Label(job, kSweepIndexLabel), &index) ? index : INT64_MAX;
}

// Every event of job `id`, in order.
absl::StatusOr<std::vector<JobEventView>> AllEvents(JobsSource& source, const std::string& id) {
  std::vector<JobEventView> all;
  int64_t after = 0;
  while (true) {
    absl::StatusOr<std::vector<JobEventView>> events = source.ListEvents(id, after, kEventsPerRead);
    if (!events.ok()) return events.status();
    if (events->empty()) return all;
    after = events->back().sequence;
    const bool more = static_cast<int>(events->size()) == kEventsPerRead;
    all.insert(all.end(), events->begin(), events->end());
    if (!more) return all;
  }
}

// The train-loss curve, thinned to at most kMaxCurvePoints; non-finite losses are left out.
json CurveToJson(const std::vector<LossPoint>& losses) {
  std::vector<LossPoint> finite;
  for (const LossPoint& p : losses) {
    if (std::isfinite(p.loss)) finite.push_back(p);
  }
  json points = json::array();
  const size_t n = finite.size();
  const size_t stride = n > kMaxCurvePoints ? (n + kMaxCurvePoints - 1) / kMaxCurvePoints : 1;
  for (size_t i = 0; i < n; i += stride) points.push_back({finite[i].step, finite[i].loss});
  if (n > 0 && (n - 1) % stride != 0) points.push_back({finite[n - 1].step, finite[n - 1].loss});
  return points;
}

json CurveEntry(const JobView& job, const SweepRun& run) {
  json config = json::object();
  for (const auto& [key, value] : job.spec.labels) {
    if (!absl::StartsWith(key, kGridLabelPrefix)) continue;
    const std::string field = key.substr(std::string(kGridLabelPrefix).size());
    if (field != kSeedField) config[field] = value;
  }
  return {{"jobId", job.id},
          {"name", job.name},
          {"state", job.state},
          {"config", config},
          {"seed", Label(job, absl::StrCat(kGridLabelPrefix, kSeedField))},
          {"trainLoss", CurveToJson(run.train_loss)}};
}

}  // namespace

SweepRun SweepRunFromView(const JobView& job, const std::vector<JobEventView>& events) {
  SweepRun run;
  run.job_id = job.id;
  run.state = job.state;
  run.labels = job.spec.labels;
  run.eval_metric = EvalMetricName(job.spec.train.eval_metric);
  run.trainable_parameters = job.trainable_parameters;
  run.adapter_bytes = job.adapter_bytes;
  if (IsTerminalState(job.state) && job.started_unix_ms > 0 && job.finished_unix_ms > 0) {
    run.wall_seconds = static_cast<double>(job.finished_unix_ms - job.started_unix_ms) / 1000.0;
  }
  for (const JobEventView& event : events) {
    if (event.eval) run.evals.push_back(*event.eval);
    if (event.step) run.train_loss.push_back({event.step->step, event.step->train_loss});
  }
  return run;
}

absl::StatusOr<json> SweepsToJson(JobsSource& source, const JobFilter& visible) {
  absl::StatusOr<std::vector<JobView>> jobs = source.ListJobs();
  if (!jobs.ok()) return jobs.status();
  std::vector<std::string> order;
  std::map<std::string, json> sweeps;
  for (const JobView& job : *jobs) {
    if (visible && !visible(job)) continue;
    const std::string id = Label(job, kSweepLabel);
    if (id.empty()) continue;
    auto [it, added] =
        sweeps.emplace(id, json{{"id", id}, {"jobs", 0}, {"states", json::object()}});
    if (added) order.push_back(id);
    json& sweep = it->second;
    sweep["jobs"] = sweep["jobs"].get<int>() + 1;
    sweep["states"][job.state] = sweep["states"].value(job.state, 0) + 1;
  }
  json list = json::array();
  for (const std::string& id : order) list.push_back(sweeps[id]);
  return json{{"sweeps", list}};
}

absl::StatusOr<json> SweepToJson(JobsSource& source, const std::string& sweep_id,
                                 const std::string& metric, const JobFilter& visible) {
  absl::StatusOr<std::vector<JobView>> jobs = source.ListJobs();
  if (!jobs.ok()) return jobs.status();
  std::vector<JobView> members;
  for (const JobView& job : *jobs) {
    if (visible && !visible(job)) continue;
    if (Label(job, kSweepLabel) == sweep_id) members.push_back(job);
  }
  if (members.empty()) {
    return absl::NotFoundError(
        absl::StrCat("sweep '", sweep_id, "': no job has the label ", kSweepLabel, "=", sweep_id));
  }
  std::stable_sort(members.begin(), members.end(),
                   [](const JobView& a, const JobView& b) { return GridIndex(a) < GridIndex(b); });
  std::vector<SweepRun> runs;
  json curves = json::array();
  for (const JobView& job : members) {
    absl::StatusOr<std::vector<JobEventView>> events = AllEvents(source, job.id);
    if (!events.ok()) return events.status();
    runs.push_back(SweepRunFromView(job, *events));
    curves.push_back(CurveEntry(job, runs.back()));
  }
  absl::StatusOr<SweepTable> table = BuildSweepTable(sweep_id, runs, metric);
  if (!table.ok()) return table.status();
  json out = SweepTableToJson(*table);
  out["curves"] = std::move(curves);
  return out;
}

}  // namespace attune::http
