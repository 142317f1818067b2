#include "server/http/json_views.h"

#include <cmath>
#include <string>

namespace attune::http {
namespace {

using nlohmann::json;

// JSON has no NaN or infinity: a non-finite loss (a skipped step) becomes null.
json Number(double value) { return std::isfinite(value) ? json(value) : json(nullptr); }

json StepToJson(const StepMetrics& m) {
  json lrs = json::object();
  for (const auto& [group, rate] : m.learning_rates) lrs[group] = Number(rate);
  json out = {{"step", m.step},
              {"totalSteps", m.total_steps},
              {"epoch", Number(m.epoch)},
              {"trainLoss", Number(m.train_loss)},
              {"learningRates", lrs},
              {"gradNorm", Number(m.grad_norm)},
              {"tokensPerSecond", Number(m.tokens_per_second)},
              {"samplesPerSecond", Number(m.samples_per_second)},
              {"skipped", m.skipped}};
  if (m.device_memory) {
    out["deviceMemory"] = {{"allocatedBytes", m.device_memory->allocated_bytes},
                           {"reservedBytes", m.device_memory->reserved_bytes},
                           {"peakAllocatedBytes", m.device_memory->peak_allocated_bytes}};
  }
  return out;
}

json EvalToJson(const EvalMetrics& m) {
  json out = {{"step", m.step}, {"evalLoss", Number(m.loss)}, {"examples", m.examples}};
  if (m.accuracy) out["accuracy"] = Number(*m.accuracy);
  if (m.f1) out["f1"] = Number(*m.f1);
  if (m.mcc) out["mcc"] = Number(*m.mcc);
  if (m.pearson) out["pearson"] = Number(*m.pearson);
  if (m.spearman) out["spearman"] = Number(*m.spearman);
  if (m.perplexity) out["perplexity"] = Number(*m.perplexity);
  return out;
}

json SpecToJson(const JobSpec& spec) {
  const TrainSpec& t = spec.train;
  json ratios = json::object();
  for (const auto& [projection, ratio] : t.lr_ratios) ratios[projection] = ratio;
  return {{"model", t.model_dir},
          {"task", TaskName(t.task)},
          {"train", t.train_path},
          {"validation", t.validation_path},
          {"targets", t.targets},
          {"method", MethodName(t.method)},
          {"rank", t.lora_rank},
          {"alpha", t.lora_alpha},
          {"dropout", t.lora_dropout},
          {"useRslora", t.use_rslora},
          {"learningRate", t.learning_rate},
          {"lrRatios", ratios},
          {"loraplusRatio", t.loraplus_ratio},
          {"epochs", t.epochs},
          {"maxSteps", t.max_steps},
          {"batchSize", t.batch_size},
          {"maxSeqLen", t.max_seq_len},
          {"warmupSteps", t.warmup_steps},
          {"schedule", ScheduleName(t.schedule)},
          {"weightDecay", t.weight_decay},
          {"maxGradNorm", t.max_grad_norm},
          {"seed", t.seed},
          {"evalMetric", EvalMetricName(t.eval_metric)},
          {"earlyStoppingPatience", t.early_stopping_patience},
          {"gpus", spec.gpus},
          {"ranks", spec.ranks},
          {"priority", spec.priority},
          {"maxRetries", spec.max_retries}};
}

}  // namespace

json JobSummaryToJson(const JobView& job) {
  json out = {{"id", job.id},
              {"name", job.name},
              {"state", job.state},
              {"createdMs", job.created_unix_ms},
              {"startedMs", job.started_unix_ms},
              {"finishedMs", job.finished_unix_ms},
              {"devices", job.devices},
              {"error", job.error}};
  if (job.latest_step) {
    out["step"] = job.latest_step->step;
    out["totalSteps"] = job.latest_step->total_steps;
    out["trainLoss"] = Number(job.latest_step->train_loss);
  }
  if (job.latest_eval) out["evalLoss"] = Number(job.latest_eval->loss);
  return out;
}

json JobDetailToJson(const JobView& job) {
  json out = JobSummaryToJson(job);
  out["spec"] = SpecToJson(job.spec);
  out["trainableParameters"] = job.trainable_parameters;
  out["totalParameters"] = job.total_parameters;
  out["adapterBytes"] = job.adapter_bytes;
  out["baseModelBytes"] = job.base_model_bytes;
  if (job.adapter_bytes > 0 && job.base_model_bytes > 0) {
    out["adapterRatio"] =
        static_cast<double>(job.adapter_bytes) / static_cast<double>(job.base_model_bytes);
  }
  if (job.latest_step) out["latestStep"] = StepToJson(*job.latest_step);
  if (job.latest_eval) out["latestEval"] = EvalToJson(*job.latest_eval);
  return out;
}

json EventToJson(const JobEventView& event) {
  json out = {{"sequence", event.sequence}, {"timeMs", event.time_unix_ms}, {"type", event.type}};
  if (!event.state.empty()) out["state"] = event.state;
  if (!event.message.empty()) out["message"] = event.message;
  if (event.step) out.update(StepToJson(*event.step));
  if (event.eval) out.update(EvalToJson(*event.eval));
  if (event.checkpoint) {
    out["step"] = event.checkpoint->step;
    out["adapterBytes"] = event.checkpoint->adapter_bytes;
    out["sha256"] = event.checkpoint->sha256;
    out["best"] = event.checkpoint->best;
  }
  return out;
}

json EventsToJson(const std::string& job_id, int64_t after,
                  const std::vector<JobEventView>& events) {
  json list = json::array();
  for (const JobEventView& event : events) list.push_back(EventToJson(event));
  return {{"jobId", job_id},
          {"events", list},
          {"nextAfter", events.empty() ? after : events.back().sequence}};
}

}  // namespace attune::http
