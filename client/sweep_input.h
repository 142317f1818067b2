// Expands a sweep file (`attune sweep --config sweep.yaml`) into the CreateJobRequests of its grid.
//
// The file is a `submit --config` file (job_spec_input.h) plus `grid:`, a mapping from a field to
// a non-empty list of values:
//
//   model: ./model
//   task: classification
//   train: train.jsonl
//   validation: validation.jsonl
//   grid:
//     targets: [[q, k, v], [q, v]]
//     lr_ratios: [{v: 1}, {v: 4}]
//     seed: [0, 1, 2]
//
// A field is any key the --config file accepts (`method`, `lr` or `learning_rate`, `rank` or
// `lora_rank`, `max_steps`, ...; `lora.rank` for a nested one), except `name` and `labels`, which
// the sweep sets. A grid value replaces the file's value of that field (and of its other
// spellings). The jobs are the cartesian product, the first grid field varying slowest, the last
// fastest; job i (0-based) gets:
// - labels `attune.sweep=<sweep id>`, `attune.sweep.index=<i>` and `attune.grid.<field>=<value>`
//   per grid field (common/sweep_table.h reads them), besides the file's own labels;
// - the name "<file's name> targets=q,v lr_ratios=v=4 seed=0" (the grid values, as labelled);
// - the idempotency key "<sweep id>-<i>", so that submitting the sweep again creates nothing new.
// A value is labelled as written: a scalar as is, a list as its items joined by ",", a mapping
// as "key=value" pairs joined by ",".
//
// The sweep id is "s-" and 16 hex digits of the SHA-256 of the jobs' specs, so the same file
// (with the same data paths) gives the same id and the same jobs; pass an id to start a second,
// separate run of the same grid.
//
// Pure functions of the file: thread-compatible.
#ifndef ATTUNE_CLIENT_SWEEP_INPUT_H_
#define ATTUNE_CLIENT_SWEEP_INPUT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "attune/v1/attune.pb.h"

namespace attune::client {

// At most this many jobs in one sweep.
inline constexpr int kMaxSweepJobs = 1000;

struct SweepJob {
  v1::CreateJobRequest request;
  // (field, value as labelled), in the grid's order.
  std::vector<std::pair<std::string, std::string>> grid_values;
};

struct SweepPlan {
  std::string sweep_id;
  std::vector<SweepJob> jobs;  // in grid order: jobs[i] has attune.sweep.index = i
};

// Reads the sweep file at `path`. `sweep_id` "" = derived from the specs (above). Every grid
// value is checked on its own before any job is built: INVALID_ARGUMENT naming the field and the
// value, e.g. "grid.method: value 'dorra': method: unknown method 'dorra'; expected one of lora,
// full", also for a missing or empty `grid`, a field that is not a list, `name`/`labels` in the
// grid, or more than kMaxSweepJobs jobs. NOT_FOUND when the file cannot be read. Range checks
// that need the server (e.g. rank 0) are `attune sweep`'s validate-only pass (sweep_command.h).
absl::StatusOr<SweepPlan> SweepPlanFromYamlFile(const std::string& path,
                                                const std::string& sweep_id);

// "targets=q,v lr_ratios=v=4 seed=0": the job's grid values, as its name ends.
std::string GridValuesText(const std::vector<std::pair<std::string, std::string>>& values);

}  // namespace attune::client

#endif  // ATTUNE_CLIENT_SWEEP_INPUT_H_
