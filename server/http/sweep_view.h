// The dashboard's sweep view: the sweeps among the jobs, and one sweep's comparison table with
// its jobs' train-loss curves, as JSON for /api/sweeps and /api/sweeps/<id>.
//
// The table is common/sweep_table.h's, the same `attune compare` prints; this file only reads the
// jobs through JobsSource and turns them into SweepRuns. Plain functions; thread-safe as the
// JobsSource is.
#ifndef ATTUNE_SERVER_HTTP_SWEEP_VIEW_H_
#define ATTUNE_SERVER_HTTP_SWEEP_VIEW_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/sweep_table.h"
#include "nlohmann/json.hpp"
#include "server/http/jobs_source.h"

namespace attune::http {

// At most this many train-loss points per job in a sweep's curves (evenly thinned beyond it,
// always keeping the last).
inline constexpr size_t kMaxCurvePoints = 500;

// {"sweeps": [{"id", "jobs", "states": {state: count}}]}: every sweep label among the listed
// jobs, the newest sweep first. The source's errors.
// Which jobs the caller may see (tenants, auth/); an empty filter = every job.
using JobFilter = std::function<bool(const JobView&)>;

absl::StatusOr<nlohmann::json> SweepsToJson(JobsSource& source, const JobFilter& visible = {});

// The sweep's table (SweepTableToJson, by the default dev metric, or by `metric` when not "")
// plus "curves": [{"jobId", "name", "state", "config", "seed", "trainLoss": [[step, loss], ...]}]
// in grid order. NOT_FOUND when no listed job has the label attune.sweep=<sweep_id>;
// INVALID_ARGUMENT for an unknown metric; the source's errors.
absl::StatusOr<nlohmann::json> SweepToJson(JobsSource& source, const std::string& sweep_id,
                                           const std::string& metric,
                                           const JobFilter& visible = {});

// The SweepRun of `job` with its `events` (in sequence order).
SweepRun SweepRunFromView(const JobView& job, const std::vector<JobEventView>& events);

}  // namespace attune::http

#endif  // ATTUNE_SERVER_HTTP_SWEEP_VIEW_H_
