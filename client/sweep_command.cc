#include "client/sweep_command.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "client/job_spec_input.h"
#include "client/job_text.h"
#include "common/status_macros.h"
#include "google/protobuf/util/time_util.h"

namespace attune::client {
namespace {

using google::protobuf::util::TimeUtil;

// `status` with "<what> job i of n (<grid values>): " before its message, same code.
absl::Status ForJob(const absl::Status& status, const std::string& what, size_t index,
                    const SweepPlan& plan) {
  return absl::Status(
      status.code(),
      absl::StrCat(what, "job ", index + 1, " of ", plan.jobs.size(), " (",
                   GridValuesText(plan.jobs[index].grid_values), "): ", status.message()));
}

bool IsTerminal(v1::JobState state) {
  return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELLED;
}

// Adds a finished job's evaluations and step losses, read from its stored events.
absl::Status AddEvents(AttuneClient& client, SweepRun* run) {
  return client.WatchJob(run->job_id, 0, [run](const v1::JobEvent& event) {
    if (event.has_eval()) run->evals.push_back(EvalMetricsFromProto(event.eval()));
    if (event.has_step()) {
      run->train_loss.push_back({event.step().step(), event.step().train_loss()});
    }
    return true;
  });
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SubmitSweep(AttuneClient& client, const SweepPlan& plan) {
  for (size_t i = 0; i < plan.jobs.size(); ++i) {
    v1::CreateJobRequest check = plan.jobs[i].request;
    check.set_validate_only(true);
    absl::StatusOr<v1::Job> checked = client.CreateJob(check);
    if (!checked.ok()) return ForJob(checked.status(), "grid: ", i, plan);
  }
  std::vector<std::string> ids;
  for (size_t i = 0; i < plan.jobs.size(); ++i) {
    absl::StatusOr<v1::Job> job = client.CreateJob(plan.jobs[i].request);
    if (!job.ok()) {
      return ForJob(job.status(), absl::StrCat("sweep ", plan.sweep_id, ": "), i, plan);
    }
    ids.push_back(job->id());
  }
  return ids;
}

EvalMetrics EvalMetricsFromProto(const v1::JobEvent::EvalMetrics& eval) {
  EvalMetrics out;
  out.step = eval.step();
  out.loss = eval.loss();
  if (eval.has_accuracy()) out.accuracy = eval.accuracy();
  if (eval.has_pearson()) out.pearson = eval.pearson();
  if (eval.has_spearman()) out.spearman = eval.spearman();
  if (eval.has_perplexity()) out.perplexity = eval.perplexity();
  if (eval.has_f1()) out.f1 = eval.f1();
  if (eval.has_mcc()) out.mcc = eval.mcc();
  out.examples = eval.examples();
  return out;
}

SweepRun SweepRunFromJob(const v1::Job& job) {
  SweepRun run;
  run.job_id = job.id();
  run.state = StateName(job.state());
  run.labels.insert(job.spec().labels().begin(), job.spec().labels().end());
  run.eval_metric = EvalMetricShortName(job.spec().eval_metric());
  run.trainable_parameters = job.trainable_parameters();
  run.adapter_bytes = job.adapter_bytes();
  if (IsTerminal(job.state()) && job.has_start_time() && job.has_finish_time()) {
    run.wall_seconds = TimeUtil::DurationToNanoseconds(job.finish_time() - job.start_time()) / 1e9;
  }
  return run;
}

absl::StatusOr<std::vector<SweepRun>> FetchSweepRuns(AttuneClient& client,
                                                     const std::string& sweep_id) {
  v1::ListJobsRequest request;
  request.set_page_size(1000);
  *request.add_label_selector() = absl::StrCat(kSweepLabel, "=", sweep_id);
  std::vector<SweepRun> runs;
  do {
    ASSIGN_OR_RETURN(v1::ListJobsResponse page, client.ListJobs(request));
    for (const v1::Job& job : page.jobs()) {
      SweepRun run = SweepRunFromJob(job);
      if (IsTerminal(job.state())) RETURN_IF_ERROR(AddEvents(client, &run));
      runs.push_back(std::move(run));
    }
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  if (runs.empty()) {
    return absl::NotFoundError(
        absl::StrCat("sweep '", sweep_id, "': no job has the label ", kSweepLabel, "=", sweep_id));
  }
  return runs;
}

}  // namespace attune::client
