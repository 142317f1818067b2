#include "server/store/job_row.h"

#include <cmath>
#include <mutex>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "server/store/metrics_json.h"
#include "server/store/store.h"

namespace attune::store {

using nlohmann::json;

const char kJobColumns[] =
    "id, owner, request_id, spec_json, state, created_us, started_us, finished_us, devices_json, "
    "latest_metrics_json, trainable_parameters, total_parameters, adapter_bytes, "
    "base_model_bytes, error, last_step, total_steps, output_dir, seq, crashed_attempts, "
    "shared_base_json";

std::string NewJobId() {
  static std::mutex mu;
  static std::mt19937_64* rng = new std::mt19937_64(std::random_device{}());
  std::lock_guard<std::mutex> lock(mu);
  return absl::StrFormat("j-%016x", (*rng)());
}

std::string LatestMetricsToJson(const Job& job) {
  json out = json::object();
  if (job.latest_step.has_value()) AddStepJson(*job.latest_step, &out);
  if (job.latest_eval.has_value()) AddEvalJson(*job.latest_eval, &out);
  return out.dump();
}

void LatestMetricsFromJson(const std::string& text, Job* job) {
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  job->latest_step = StepFromJson(parsed, job->last_step);
  job->latest_eval = EvalFromJson(parsed, job->last_step);
}

std::string EventDetailsToJson(const JobEvent& event) {
  json out = json::object();
  if (event.step_metrics.has_value()) AddStepJson(*event.step_metrics, &out);
  if (event.eval.has_value()) AddEvalJson(*event.eval, &out);
  if (event.best) out["best"] = 1;
  if (!event.devices.empty()) out["devices"] = event.devices;
  return out.dump();
}

void EventDetailsFromJson(const std::string& text, JobEvent* event) {
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return;
  switch (event->type) {
    case EventType::kMetrics:
      event->step_metrics = StepFromJson(parsed, event->step);
      break;
    case EventType::kEval:
      event->eval = EvalFromJson(parsed, event->step);
      break;
    case EventType::kCheckpoint:
      // Rows from before `best` was stored marked the best checkpoint with a message.
      event->best = parsed.value("best", 0) != 0 || !event->message.empty();
      break;
    case EventType::kStateChanged:
      if (parsed.contains("devices")) event->devices = DevicesFromJson(parsed["devices"].dump());
      break;
    default:
      break;
  }
}

std::vector<std::string> DevicesFromJson(const std::string& text) {
  std::vector<std::string> devices;
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_array()) return devices;
  for (const auto& device : parsed) {
    if (device.is_string()) devices.push_back(device.get<std::string>());
  }
  return devices;
}

Job ReadJob(const Statement& row) {
  Job job;
  job.id = row.Text(0);
  job.owner = row.Text(1);
  job.request_id = row.Text(2);
  job.created_us = row.Int(5);
  job.started_us = row.Int(6);
  job.finished_us = row.Int(7);
  job.devices = DevicesFromJson(row.Text(8));
  job.trainable_parameters = row.Int(10);
  job.total_parameters = row.Int(11);
  job.adapter_bytes = row.Int(12);
  job.base_model_bytes = row.Int(13);
  job.error = row.Text(14);
  job.last_step = row.Int(15);
  job.total_steps = row.Int(16);
  job.output_dir = row.Text(17);
  job.crashed_attempts = row.Int(19);
  job.shared_base_with = DevicesFromJson(row.Text(20));  // a JSON array of strings too
  LatestMetricsFromJson(row.Text(9), &job);
  absl::StatusOr<JobSpec> spec = JobSpecFromJson(row.Text(3));
  absl::StatusOr<JobState> state = ParseJobState(row.Text(4));
  if (spec.ok() && state.ok()) {
    job.spec = *std::move(spec);
    job.state = *state;
    return job;
  }
  job.unreadable = spec.ok()
                       ? absl::StrCat("stored state is unreadable: ", state.status().message())
                       : absl::StrCat("stored spec is unreadable: ", spec.status().message());
  // A failure already recorded for it (Store::FailJobAndAppendEvents) is its error; else this.
  if (!state.ok() || *state != JobState::kFailed || job.error.empty()) {
    job.error = absl::StrCat("the job's stored record cannot be read: ", job.unreadable);
  }
  job.state = JobState::kFailed;
  return job;
}

absl::Status UpdateJobLocked(sqlite3* db, const Job& job) {
  ASSIGN_OR_RETURN(
      Statement update,
      Statement::Prepare(db,
                         "UPDATE jobs SET state = ?, started_us = ?, finished_us = ?, "
                         "devices_json = ?, latest_metrics_json = ?, trainable_parameters = ?, "
                         "total_parameters = ?, adapter_bytes = ?, base_model_bytes = ?, "
                         "error = ?, last_step = ?, total_steps = ?, output_dir = ?, "
                         "crashed_attempts = ?, shared_base_json = ? WHERE id = ?"));
  update.Bind(1, JobStateName(job.state))
      .Bind(2, job.started_us)
      .Bind(3, job.finished_us)
      .Bind(4, json(job.devices).dump())
      .Bind(5, LatestMetricsToJson(job))
      .Bind(6, job.trainable_parameters)
      .Bind(7, job.total_parameters)
      .Bind(8, job.adapter_bytes)
      .Bind(9, job.base_model_bytes)
      .Bind(10, job.error)
      .Bind(11, job.last_step)
      .Bind(12, job.total_steps)
      .Bind(13, job.output_dir)
      .Bind(14, job.crashed_attempts)
      .Bind(15, json(job.shared_base_with).dump())
      .Bind(16, job.id);
  RETURN_IF_ERROR(update.Run());
  if (sqlite3_changes(db) == 0) {
    return absl::NotFoundError(absl::StrCat("job '", job.id, "' not found"));
  }
  return absl::OkStatus();
}

// ALREADY_EXISTS naming the job when (owner, request_id) is taken; OK for an empty request_id.
absl::Status CheckRequestIdFree(sqlite3* db, const std::string& owner,
                                const std::string& request_id) {
  if (request_id.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(
      Statement find,
      Statement::Prepare(db, "SELECT id FROM jobs WHERE owner = ? AND request_id = ?"));
  find.Bind(1, owner).Bind(2, request_id);
  ASSIGN_OR_RETURN(bool row, find.Step());
  if (!row) return absl::OkStatus();
  return absl::AlreadyExistsError(
      absl::StrCat("request_id '", request_id, "' was already used for job ", find.Text(0)));
}

// Inserts a new row for `job` with every column. The caller holds a transaction.
absl::Status InsertJobRowLocked(sqlite3* db, const Job& job) {
  ASSIGN_OR_RETURN(Statement insert,
                   Statement::Prepare(db,
                                      "INSERT INTO jobs (id, owner, request_id, spec_json, "
                                      "priority, gpus, state, created_us) "
                                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
  insert.Bind(1, job.id).Bind(2, job.owner);
  if (job.request_id.empty()) {
    insert.BindNull(3);
  } else {
    insert.Bind(3, job.request_id);
  }
  insert.Bind(4, JobSpecToJson(job.spec))
      .Bind(5, int64_t{job.spec.priority})
      .Bind(6, int64_t{job.spec.gpus})
      .Bind(7, JobStateName(job.state))
      .Bind(8, job.created_us);
  absl::Status inserted = insert.Run();
  if (absl::IsAlreadyExists(inserted)) {
    return absl::AlreadyExistsError(absl::StrCat("job id '", job.id, "' is already taken"));
  }
  RETURN_IF_ERROR(inserted);
  return UpdateJobLocked(db, job);  // the remaining columns
}

}  // namespace attune::store
