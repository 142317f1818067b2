// `attune sweep` and `attune compare`: submitting a sweep's jobs and reading them back for the
// comparison table (common/sweep_table.h computes it, sweep_table_text.h prints it).
//
// Both speak only the public API: CreateJob (validate-only, then for real, with idempotency
// keys), ListJobs filtered by the `attune.sweep` label, GetJob's fields and WatchJob's stored
// events. Thread-compatible: one AttuneClient per call.
#ifndef ATTUNE_CLIENT_SWEEP_COMMAND_H_
#define ATTUNE_CLIENT_SWEEP_COMMAND_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attune/v1/attune.pb.h"
#include "client/attune_client.h"
#include "client/sweep_input.h"
#include "common/sweep_table.h"

namespace attune::client {

// Checks every job of `plan` with CreateJob(validate_only) first, then creates them in grid
// order. Returns the job ids in grid order. A job the server refuses in the first pass fails the
// whole sweep before anything is created, with the server's code and a message naming the job's
// grid values: "grid: job 3 of 4 (targets=q,v rank=0): lora.rank: 0 is out of range; expected
// 1..4096". A failure in the second pass names the job too; the jobs before it exist, and running
// the same sweep again creates only the missing ones (the idempotency keys).
absl::StatusOr<std::vector<std::string>> SubmitSweep(AttuneClient& client, const SweepPlan& plan);

// Every job labelled `attune.sweep=<sweep_id>`, as the table reads it: GetJob's fields, and for
// a finished job its evaluations and step losses from WatchJob (a job still queued or running
// has none: it does not count in the table yet). NOT_FOUND when no job has the label; the RPCs'
// errors otherwise.
absl::StatusOr<std::vector<SweepRun>> FetchSweepRuns(AttuneClient& client,
                                                     const std::string& sweep_id);

// The proto's evaluation as common/metrics.h's. The one conversion on the client side.
EvalMetrics EvalMetricsFromProto(const v1::JobEvent::EvalMetrics& eval);

// The part of a SweepRun a Job message carries (no evaluations or losses).
SweepRun SweepRunFromJob(const v1::Job& job);

}  // namespace attune::client

#endif  // ATTUNE_CLIENT_SWEEP_COMMAND_H_
