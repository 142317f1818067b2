#include "server/scheduler/scheduler_events.h"

#include <iostream>
#include <utility>

namespace attune::scheduler {

store::JobEvent StateEvent(const store::Job& job, int64_t now_us, std::string message) {
  store::JobEvent event;
  event.job_id = job.id;
  event.time_us = now_us;
  event.type = store::EventType::kStateChanged;
  event.state = job.state;
  event.step = job.last_step;
  event.message = std::move(message);
  return event;
}

void ApplyProgress(const JobProgress& progress, store::Job* job) {
  if (progress.latest_step.has_value()) job->latest_step = progress.latest_step;
  if (progress.latest_eval.has_value()) job->latest_eval = progress.latest_eval;
  if (progress.last_step > 0) job->last_step = progress.last_step;
  if (progress.total_steps > 0) job->total_steps = progress.total_steps;
  if (progress.adapter_bytes > 0) job->adapter_bytes = progress.adapter_bytes;
  if (!progress.shared_base_with.empty()) job->shared_base_with = progress.shared_base_with;
  if (progress.setup.has_value()) {
    const engine::SpecCheck& setup = *progress.setup;
    if (setup.total_parameters > 0) job->total_parameters = setup.total_parameters;
    if (setup.trainable_parameters > 0) job->trainable_parameters = setup.trainable_parameters;
    if (setup.base_model_bytes > 0) job->base_model_bytes = setup.base_model_bytes;
  }
}

void LogJobError(const std::string& job_id, const std::string& message) {
  std::cerr << "attuned: scheduler: job " << job_id << ": " << message << std::endl;
}

}  // namespace attune::scheduler
